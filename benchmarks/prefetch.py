"""Benchmark: the dissection's model pass with decoding overlapped (prefetch thread) vs serial.

Same process, same shards, alternated runs; wall and process CPU time of one pass over every
image through ``activation_batches`` (decode, preprocess, forward with hooks). Prints one JSON line.

    .venv/bin/python benchmarks/prefetch.py --images 600 --size 112 --arch resnet10
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from synthetic import synthetic_shards
from cnninterp.dissect.activations import activation_batches
from cnninterp.models.backbones import random_model

LAYERS = ["layer1", "layer2", "layer3", "layer4"]


def one_pass(model, paths, batch_size: int, depth: int) -> tuple[float, float]:
    """(wall s, CPU s) of one activation pass with ``depth`` batches decoded ahead."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in activation_batches(model, LAYERS, paths, "imagenet", batch_size, "cpu", check=False, prefetch_depth=depth):
        pass
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--arch", default="resnet10")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        paths = synthetic_shards(Path(tmp), args.images, args.size)
        model = random_model(args.arch, 0)
        one_pass(model, paths, args.batch_size, 0)  # warm-up: page cache, allocator
        runs = {0: [], 2: []}
        for _ in range(args.repeats):
            for depth in runs:
                runs[depth].append(one_pass(model, paths, args.batch_size, depth))
        best = {d: min(r) for d, r in runs.items()}
        print(json.dumps({
            "machine": platform.machine(), "threads": torch.get_num_threads(), "images": args.images, "size": args.size, "arch": args.arch,
            "serial_wall_s": round(best[0][0], 3), "serial_cpu_s": round(best[0][1], 3),
            "prefetch_wall_s": round(best[2][0], 3), "prefetch_cpu_s": round(best[2][1], 3),
            "speedup_wall": round(best[0][0] / best[2][0], 3),
            "all_serial": [[round(w, 3), round(c, 3)] for w, c in runs[0]], "all_prefetch": [[round(w, 3), round(c, 3)] for w, c in runs[2]],
        }))


if __name__ == "__main__":
    main()
