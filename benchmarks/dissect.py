"""Benchmark: Network Dissection of resnet18 (random init) layer1..layer4 on synthetic Broden, CPU or CUDA.

Measured in one process on the same shards, after a warm-up pass:
- forward-only: reading + decoding + preprocessing + forward with the layer hooks, one pass;
- dissection: ``pipeline.dissect`` (quantile pass writing the activation cache, exact thresholds,
  tally pass reading it, gather); forward-only and dissection alternate ``--repeats`` times and
  the ratio is taken of each one's fastest run (this machine is shared: the minimum is the run
  least disturbed by other work);
- with ``--two-pass``, also the dissection without the cache (the model runs twice);
- tally throughput of layer4 alone (images/s): the tally pass from the cache, and model + tally;
and, in child processes (data made beforehand), peak RSS of the dissection at N/4 and N images.

    .venv/bin/python benchmarks/dissect.py --images 3000 --size 224
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAYERS = ["layer1", "layer2", "layer3", "layer4"]


def make_shards(root: Path, images: int, size: int) -> Path:
    from cnninterp.data.broden_shards import convert_broden
    from cnninterp.data.synthetic_broden import generate_broden

    root.mkdir(parents=True, exist_ok=True)
    generate_broden(root / "broden", images, size, seed=0)
    convert_broden(root / "broden", root / "shards", 500, {"kind": "synthetic"}, {})
    return root / "shards"


def reuse_or_make_shards(root: Path, images: int, size: int) -> Path:
    """The shards under ``root`` (``--data``) if they hold ``images`` images of ``size`` px, else made
    there when ``root`` holds none; SystemExit naming both when the folder holds other shards."""
    from cnninterp.data.shards import read_manifest
    from cnninterp.dissect.engine import dataset_images

    shards = root / "shards"
    if not (shards / "manifest.json").is_file():
        return make_shards(root, images, size)
    manifest = read_manifest(shards)
    held = (dataset_images(manifest), manifest["image_size"]["max_height"])
    if held != (images, size):
        raise SystemExit(f"--data {root} holds {held[0]} images of {held[1]} px, not the {images} of {size} px asked for; "
                         "give another folder or the same --images / --size")
    return shards


class Clock:
    """Wall and process-CPU seconds of a block (CPU time is less disturbed by other tenants)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def forward_only(model, shards: Path, batch_size: int, device) -> Clock:
    """Wall and CPU seconds of one pass of reading, decoding and the hooked forward over every shard."""
    from cnninterp.data.shards import shard_paths
    from cnninterp.dissect.activations import activation_batches

    with Clock() as clock:
        for _ in activation_batches(model, LAYERS, shard_paths(shards), "imagenet", batch_size, device, check=False):
            if device.type == "cuda":
                torch_sync()
    return clock


def torch_sync():
    import torch

    torch.cuda.synchronize()


def run_timing(args, shards: Path) -> dict:
    from cnninterp.data.shards import read_manifest, shard_paths
    from cnninterp.dissect import engine, pipeline
    from cnninterp.models.backbones import random_model
    from cnninterp.train.loop import pick_device

    device = pick_device(args.device)
    model = random_model("resnet18", seed=0)
    manifest = read_manifest(shards)
    paths = shard_paths(shards)
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        forward_only(model, shards, args.batch_size, device)  # warm-up pass (caches, allocator)
        forwards, dissects = [], []
        for _ in range(args.repeats):
            forwards.append(forward_only(model, shards, args.batch_size, device))
            with Clock() as clock:
                pipeline.dissect(model, LAYERS, shards, Path(tmp) / "out", batch_size=args.batch_size, device=device)
            dissects.append(clock)
        fwd, dis = min(c.wall for c in forwards), min(c.wall for c in dissects)
        fwd_cpu, dis_cpu = min(c.cpu for c in forwards), min(c.cpu for c in dissects)
        out.update(
            forward_only_s=[round(c.wall, 2) for c in forwards],
            dissect_s=[round(c.wall, 2) for c in dissects],
            dissect_over_forward=round(dis / fwd, 3),
            forward_only_cpu_s=[round(c.cpu, 1) for c in forwards],
            dissect_cpu_s=[round(c.cpu, 1) for c in dissects],
            dissect_over_forward_cpu=round(dis_cpu / fwd_cpu, 3),
        )
        if args.two_pass:
            with Clock() as clock:
                pipeline.dissect(model, LAYERS, shards, Path(tmp) / "two", batch_size=args.batch_size, device=device, cache=False)
            out["dissect_two_pass_over_forward"] = round(clock.wall / fwd, 3)
            out["dissect_two_pass_over_forward_cpu"] = round(clock.cpu / fwd_cpu, 3)
        # layer4 alone: quantile pass with cache, then the tally pass from the cache and with the model
        total = engine.dataset_images(manifest)
        cache = Path(tmp) / "layer4.acts"
        tops = engine.quantile_tops(model, ["layer4"], paths, total, 0.005, "imagenet", args.batch_size, device, 8, cache)
        thresholds = engine.merge_thresholds([tops], ["layer4"], total, 0.005, [cache])
        start = time.perf_counter()
        engine.tally(None, ["layer4"], paths, thresholds, manifest, "imagenet", args.batch_size, device, cache)
        from_cache = time.perf_counter() - start
        start = time.perf_counter()
        engine.tally(model, ["layer4"], paths, thresholds, manifest, "imagenet", args.batch_size, device)
        with_model = time.perf_counter() - start
        out.update(
            tally_layer4_images_per_s=round(total / from_cache, 1),
            tally_layer4_with_forward_images_per_s=round(total / with_model, 1),
        )
    return out


def run_memory(args, shard_dirs: dict) -> dict:
    """Peak RSS (MiB) of a child process dissecting N/4 and N images (the shards made beforehand)."""
    out = {}
    for n, shards in shard_dirs.items():
        proc = subprocess.run(
            [sys.executable, __file__, "--child-memory", str(shards), "--device", args.device, "--batch-size", str(args.batch_size)],
            capture_output=True, text=True, check=True,
        )
        out[f"peak_rss_mib_{n}_images"] = json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_mib"]
    small, large = out[f"peak_rss_mib_{args.images // 4}_images"], out[f"peak_rss_mib_{args.images}_images"]
    out["peak_rss_ratio_4n_over_n"] = round(large / small, 3)
    return out


def child_memory(args) -> None:
    from cnninterp.dissect import engine, pipeline
    from cnninterp.models.backbones import random_model
    from cnninterp.train.loop import pick_device

    with tempfile.TemporaryDirectory() as tmp:
        pipeline.dissect(random_model("resnet18", seed=0), LAYERS, args.child_memory, Path(tmp) / "out", batch_size=args.batch_size, device=pick_device(args.device))
    print(json.dumps({"peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--two-pass", action="store_true", help="also time the dissection without the activation cache")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--data", default=None, help="folder for the timing shards (made once, reused); a temporary one if not given")
    parser.add_argument("--child-memory", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory:
        return child_memory(args)
    import torch

    result = {"images": args.images, "size": args.size, "device": args.device, "torch_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        shards = reuse_or_make_shards(Path(args.data) if args.data else Path(tmp) / "n", args.images, args.size)
        result.update(run_timing(args, shards))
        if not args.skip_memory:
            quarter = make_shards(Path(tmp) / "quarter", args.images // 4, args.size)
            result.update(run_memory(args, {args.images // 4: quarter, args.images: shards}))
    result["machine"] = f"{platform.machine()} cores={os.cpu_count()}"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
