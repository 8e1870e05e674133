"""The ICNN chain through the CUB path, on birds whose truth is known: a CUB-200-2011-layout folder
(JPEG images, images.txt, train_test_split.txt, parts/part_locs.txt, ...) whose "birds" are the
synthetic parts objects, converted by ``data.cub.write_cub_parts`` (disc masks, CUB's split, negatives
= synthetic cluttered backgrounds without parts), then both networks trained and evaluated with the
default model, training and evaluation settings.

Beside ``icnn_effect.py`` it changes two things at once, as a CUB user would get them: the negatives
hold no scattered parts, and the part masks are discs. Prints one JSON line per seed.

    .venv/bin/python benchmarks/icnn_cub_layout.py --seeds 0 1 2 [--train 2000 --test 400]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from icnn_effect import SECTIONS, cpu, train_and_evaluate  # noqa: E402
from method_settings import settings_parser, apply_overrides, method_defaults  # noqa: E402


def write_layout(root: Path, train: int, test: int, size: int, seed: int) -> None:
    """A CUB-layout folder of ``train + test`` synthetic objects (quality-95 JPEGs), image id i is test
    when i > train; every part's landmark and visibility as the generator drew them."""
    from PIL import Image

    from cnninterp.data.parts import PARTS, render

    (root / "parts").mkdir(parents=True)
    rows = {k: [] for k in ("images.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt", "parts/part_locs.txt")}
    for i in range(1, train + test + 1):
        r = render(np.random.default_rng([seed, 99, i]), size, True)
        name = f"001.Synthetic_object/object_{i:05d}.jpg"
        (root / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(r["image"]).save(root / "images" / name, quality=95)
        rows["images.txt"].append(f"{i} {name}")
        rows["image_class_labels.txt"].append(f"{i} 1")
        rows["train_test_split.txt"].append(f"{i} {int(i <= train)}")
        rows["bounding_boxes.txt"].append(f"{i} 0.0 0.0 {size}.0 {size}.0")
        for p in range(len(PARTS)):
            x, y = r["landmarks"][p] if r["visible"][p] else (0.0, 0.0)
            rows["parts/part_locs.txt"].append(f"{i} {p + 1} {x:.1f} {y:.1f} {int(r['visible'][p])}")
    rows["parts/parts.txt"] = [f"{p + 1} {name}" for p, name in enumerate(PARTS)]
    for name, lines in rows.items():
        (root / name).write_text("\n".join(lines) + "\n")


def main() -> None:
    import torch

    from cnninterp.data.cub import write_cub_parts

    parser = settings_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--train", type=int, default=1000, help="objects in the train split (as many negatives are added)")
    parser.add_argument("--test", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = apply_overrides(method_defaults("icnn", SECTIONS), args.set)
    d = cfg["data"]
    print(json.dumps({"config": cfg, "objects": {"train": args.train, "test": args.test}}))
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            w0, c0 = time.perf_counter(), cpu()
            write_layout(root / "cub", args.train, args.test, d["image_size"], seed)
            write_cub_parts(root / "cub", root / "parts", root / "probe", image_size=d["image_size"], disc_radius=d["disc_radius"],
                            positive_fraction=0.5, probe_images=d["probe_images"], seed=seed, shard_size=d["shard_size"])
            record = train_and_evaluate(cfg, seed, root, {"data": (time.perf_counter() - w0, cpu() - c0)})
            print(json.dumps(record), flush=True)

if __name__ == "__main__":
    main()
