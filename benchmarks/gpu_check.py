"""Device against host: the same dissection on ``--device`` (e.g. cuda) and on the CPU.

Part of ``benchmarks/gpu.sh`` for a lent GPU machine; runs anywhere (``--device cpu`` compares the
CPU with itself, which must give equal counts). For a random resnet18 on synthetic Broden it
computes the quantile pass on both devices (key histograms counted on the device, candidates
found there, pinned-memory batches), then tallies at the same (host) thresholds, and prints one
JSON line: thresholds and counts per layer, equal or how many differ (cuDNN and the CPU round
convolutions differently, so a pixel within float rounding of a threshold may fall either side).

    .venv/bin/python benchmarks/gpu_check.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--layers", default="layer2,layer4")
    args = parser.parse_args()

    import torch

    from cnninterp.data.broden_shards import convert_broden
    from cnninterp.data.shards import read_manifest, shard_paths
    from cnninterp.data.synthetic_broden import generate_broden
    from cnninterp.dissect import engine
    from cnninterp.models.backbones import random_model

    layers = args.layers.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate_broden(tmp / "b", args.images, args.size, seed=0)
        convert_broden(tmp / "b", tmp / "s", 100, {}, {})
        manifest, paths = read_manifest(tmp / "s"), shard_paths(tmp / "s")
        model = random_model("resnet18", 0)
        record = {"device": args.device, "images": args.images, "size": args.size}
        parts, seconds = {}, {}
        for device in ("cpu", args.device):
            start = time.perf_counter()
            parts[device] = engine.quantile_tops(model, layers, paths, args.images, 0.005, "imagenet", 50, torch.device(device),
                                                 cache=tmp / f"{device}.acts", values_only=True)
            seconds[device] = round(time.perf_counter() - start, 2)
        record["quantile_pass_s"] = seconds
        host = engine.merge_thresholds([parts["cpu"]], layers, args.images, 0.005, [tmp / "cpu.acts"])
        other = engine.merge_thresholds([parts[args.device]], layers, args.images, 0.005, [tmp / f"{args.device}.acts"])
        tallies = {d: engine.tally(model, layers, paths, host, manifest, "imagenet", 50, torch.device(d)) for d in ("cpu", args.device)}
        for name in layers:
            t_cpu, t_dev = host.layers[name].threshold, other.layers[name].threshold
            a, b = tallies["cpu"].layers[name], tallies[args.device].layers[name]
            record[name] = {
                "thresholds_differ": int(np.sum(t_cpu != t_dev)),
                "max_threshold_difference": float(np.max(np.abs(t_cpu.astype(np.float64) - t_dev))),
                "intersections_differ": int(np.sum(a.inter != b.inter)),
                "intersection_count_difference": int(np.abs(a.inter - b.inter).sum()),
                "activation_count_difference": int(np.abs(a.act_total - b.act_total).sum()),
            }
        print(json.dumps(record))


if __name__ == "__main__":
    main()
