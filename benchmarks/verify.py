"""Benchmark: what checking each shard's sha256 against the manifest costs, next to decoding it.

Every job that reads shards hashes each one once (``cnninterp.data.shards.verify_shard``). This
measures, in one process on the same shards, the hash alone against one full read that decodes
every sample (image + labels), as a dissection pass does. Prints one JSON line.

    .venv/bin/python benchmarks/verify.py --images 600 --size 112
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from cnninterp.data.broden_shards import iter_broden
from cnninterp.data.digest import sha256_file
from synthetic import synthetic_shards


def timed(fn) -> tuple[float, float]:
    """(wall s, process CPU s) of one call of ``fn``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = synthetic_shards(Path(tmp), args.images, args.size)
        total_bytes = sum(p.stat().st_size for p in paths)
        hashes, decodes = [], []
        for _ in range(args.repeats):  # alternated, so both see the same page-cache state
            hashes.append(timed(lambda: [sha256_file(p) for p in paths]))
            decodes.append(timed(lambda: sum(1 for _ in iter_broden(paths, images=True))))
        best_hash, best_decode = min(hashes), min(decodes)
        print(json.dumps({
            "machine": platform.processor() or platform.machine(), "images": args.images, "size": args.size,
            "shard_bytes": total_bytes,
            "sha256_wall_s": round(best_hash[0], 4), "sha256_cpu_s": round(best_hash[1], 4),
            "decode_wall_s": round(best_decode[0], 4), "decode_cpu_s": round(best_decode[1], 4),
            "hash_over_decode": round(best_hash[1] / best_decode[1], 4),
        }))


if __name__ == "__main__":
    main()
