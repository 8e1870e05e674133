"""Benchmark: where a dissection's time goes beyond the forward pass, stage by stage, in one process.

resnet18 (random init) layer1..layer4 on synthetic Broden shards (made once under ``--data`` and
reused), on ``--device`` (CPU by default; on CUDA each stage's clock stops after a synchronize). After a warm-up forward pass, alternated ``--repeats`` times: the forward-only pass
(read + decode + preprocess + hooked forward, as ``benchmarks/dissect.py``), and the dissection's
stages one after the other, each timed (wall and process CPU seconds): the quantile pass
(``engine.quantile_tops`` writing the activation cache), the threshold merge with its refinement
reads (``engine.merge_thresholds``), the tally from the cache (``engine.tally``) and the gather
(``gather.gather``). Prints one JSON line: every run's figures and each stage's best, also as a
fraction of the best forward-only pass.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/dissect_stages.py --images 1000 --size 224
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dissect import LAYERS, Clock, forward_only, reuse_or_make_shards, torch_sync  # noqa: E402  (benchmarks/dissect.py)

STAGES = ("quantiles", "merge", "tally", "gather")


def stages_once(model, shards: Path, out_dir: Path, batch_size: int, device) -> dict:
    """One dissection, stage by stage: {stage: Clock}; the same calls as ``pipeline.dissect``."""
    from cnninterp.data.shards import read_manifest, shard_paths
    from cnninterp.dissect import engine
    from cnninterp.dissect.gather import gather

    manifest = read_manifest(shards)
    paths = shard_paths(shards)
    total = engine.dataset_images(manifest)
    cache = out_dir / "activations.acts"
    clocks = {}
    sync = torch_sync if device.type == "cuda" else (lambda: None)
    with Clock() as clocks["quantiles"]:
        tops = engine.quantile_tops(model, LAYERS, paths, total, 0.005, "imagenet", batch_size, device, 8, cache)
        sync()
    with Clock() as clocks["merge"]:
        thresholds = engine.merge_thresholds([tops], LAYERS, total, 0.005, [cache])
    with Clock() as clocks["tally"]:
        counts = engine.tally(None, LAYERS, paths, thresholds, manifest, "imagenet", batch_size, device, cache)
        sync()
    with Clock() as clocks["gather"]:
        settings = {"layers": LAYERS, "quantile": 0.005, "iou_threshold": 0.04, "denominator": "original", "preprocess": "imagenet"}
        gather([counts], thresholds, manifest, LAYERS, "original", 0.04, out_dir / "out", settings)
    cache.unlink()
    return clocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data", default=None, help="folder for the shards (made once, reused); a temporary one if not given")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    import torch

    from cnninterp.models.backbones import random_model

    from cnninterp.train.loop import pick_device

    device = pick_device(args.device)
    model = random_model("resnet18", seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        shards = reuse_or_make_shards(Path(args.data) if args.data else Path(tmp) / "data", args.images, args.size)
        forward_only(model, shards, args.batch_size, device)  # warm-up
        runs = []
        for _ in range(args.repeats):
            fwd = forward_only(model, shards, args.batch_size, device)
            clocks = stages_once(model, shards, Path(tmp), args.batch_size, device)
            runs.append({"forward": [round(fwd.wall, 2), round(fwd.cpu, 2)], **{k: [round(c.wall, 2), round(c.cpu, 2)] for k, c in clocks.items()}})
    best = {k: min(r[k][0] for r in runs) for k in ("forward", *STAGES)}
    best_cpu = {k: min(r[k][1] for r in runs) for k in ("forward", *STAGES)}
    result = {
        "images": args.images, "size": args.size, "torch_threads": torch.get_num_threads(), "runs": runs,
        "best_wall_over_forward": {k: round(best[k] / best["forward"], 3) for k in STAGES},
        "best_cpu_over_forward": {k: round(best_cpu[k] / best_cpu["forward"], 3) for k in STAGES},
        "dissection_over_forward_wall": round(min(sum(r[k][0] for k in STAGES) for r in runs) / best["forward"], 3),
        "dissection_over_forward_cpu": round(min(sum(r[k][1] for k in STAGES) for r in runs) / best_cpu["forward"], 3),
        "device": str(device),
        "machine": f"{platform.machine()} cores={os.cpu_count()}",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
