"""The scene-classification training task, separate from the Broden probe set.

As in the paper, the dissected network is trained on a task dataset that is not the probe
set: here a scene-classification task rendered by the synthetic Broden renderer. A scene is
defined by which two objects appear, how they are arranged and on which ground material
(``synthetic_broden.SCENES``), so object, part and material detectors help the classifier.
The task is written in Broden's on-disk layout with only the whole-image ``scene`` column
filled (no segmentation), so ``cnninterp data shard-broden`` shards it and the baseline trainer
reads it like any Broden shard set. Its random stream differs from every probe set's, so its
images are not probe images (``tests/test_scenes.py`` checks the pixels).

Run as ``python -m cnninterp.data.scenes --out DIR --n-images N --image-size S --seed K
--val-fraction F`` (the ``scenes_synthesize`` rule); a previous incomplete output is replaced.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from .synthetic_broden import SCENES, generate_scene_task

__all__ = ["SCENES", "generate_scene_task", "main"]


def main(argv: list[str] | None = None) -> int:
    """Command line: write the task dataset; prints its summary as JSON. Exit 2 on bad arguments."""
    parser = argparse.ArgumentParser(prog="python -m cnninterp.data.scenes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder to write (replaced if present)")
    parser.add_argument("--n-images", type=int, default=3000)
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        if out.exists():
            shutil.rmtree(out)  # a previous, incomplete output of this same step
        summary = generate_scene_task(out, args.n_images, args.image_size, args.seed, args.val_fraction)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
