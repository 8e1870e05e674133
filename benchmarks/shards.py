"""Benchmark: Broden folder -> shards conversion, and reading shards vs reading the folder.

Both readers deliver the same thing per sample: the decoded RGB image and every pixel-level label
layer decoded to label numbers. The folder reader is PIL per file, as a Broden loader does it.
Prints one JSON line and appends nothing; copy the figures into benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/shards.py --images 1000 --size 224
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cnninterp.data.broden import BrodenFolder
from cnninterp.data.broden_shards import convert_broden, iter_broden
from cnninterp.data.shards import shard_paths
from cnninterp.data.synthetic_broden import generate_broden


def read_folder(root: Path) -> int:
    """Decode every image and label layer straight from the Broden folder; return pixels read."""
    folder = BrodenFolder(root)
    total = 0
    for row in folder.rows:
        image = np.asarray(Image.open(folder.image_path(row.image)).convert("RGB"))
        layers = []
        for _, rel in row.layers:
            rgb = np.asarray(Image.open(folder.image_path(rel)).convert("RGB"))
            layers.append(rgb[..., 0].astype(np.uint16) + (rgb[..., 1].astype(np.uint16) << 8))
        total += image.size + sum(l.size for l in layers)
    return total


def read_shards(shard_dir: Path) -> int:
    """Decode every image and label layer from the shards; return pixels read."""
    total = 0
    for sample in iter_broden(shard_paths(shard_dir)):
        total += sample["image"].size + sample["seg"].size
    return total


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--shard-size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, shards = Path(tmp) / "broden", Path(tmp) / "shards"
        generate_broden(root, args.images, args.size, seed=0)
        convert_s, _ = timed(convert_broden, root, shards, args.shard_size, {"kind": "synthetic"}, {})
        folder_s, shard_s = [], []
        for _ in range(args.repeats):  # interleaved, so both see the same machine state
            t, n_folder = timed(read_folder, root)
            folder_s.append(t)
            t, n_shard = timed(read_shards, shards)
            shard_s.append(t)
        assert n_folder == n_shard, (n_folder, n_shard)
        folder_best, shard_best = min(folder_s), min(shard_s)
        print(json.dumps({
            "images": args.images,
            "size": args.size,
            "convert_samples_per_s": round(args.images / convert_s, 1),
            "folder_read_samples_per_s": round(args.images / folder_best, 1),
            "shard_read_samples_per_s": round(args.images / shard_best, 1),
            "shard_over_folder_speedup": round(folder_best / shard_best, 2),
            "machine": f"{platform.machine()} {platform.processor() or ''} cores={__import__('os').cpu_count()}".strip(),
        }))


if __name__ == "__main__":
    main()
