"""Benchmark: does each dissection job's memory stay flat as images and shards grow (issue 12)?

For every combination of N and 8N images and 4 and 32 shards (synthetic Broden, all train), in
one run: the per-job stages run as the pipeline runs them, each a fresh ``cnninterp`` process
whose peak RSS (VmHWM of /proc/self/status: ru_maxrss would keep the forking parent's
size across exec) and CPU time are read at its exit:
- quantile job (``dissect-quantiles`` on the first shard, writing its part and cache),
- threshold merge (``dissect-thresholds`` over every shard's part and cache),
- tally job (``dissect-tally`` of the first shard from its cache),
- gather (``dissect-gather`` over every shard's tally part);
the other shards' parts, caches and tallies are made in this process (not measured). Also the
bytes of every part file (per kind: the mean and largest over shards). Writes JSON to --out.

    .venv/bin/python benchmarks/scale.py --images 80 --size 64 --out scale.json

``--project``: the full-Broden projection from measured figures instead. One case of
``--images`` images at ``--size`` px in ``--shards`` shards (stages and part bytes as above),
per-image CPU and cache bytes from it; then the activation cache of one shard job of each size
in ``--cache-shard-images`` as a job of a dataset of ``--broden-images`` images sees it (the
floor's rank is q x the dataset's values, so only the dataset's total matters, not the other
shards: ``quantile_tops`` is given that total); the cache's share of the maps at each size, and
how it depends on the cache quantile (``--cache-quantiles``) and on the number of jobs S of the
dataset (``--trend-shards``: one job of ``--trend-images`` images in a dataset of S such jobs);
the merge's refinement CPU per GiB of cache that holds whole maps. Then the projection to
``--broden-images`` at 64 and 1,000 shards beside ``dissect/resources.py``'s formula.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scale.py --project --images 192 --size 224 \
        --shards 2 --batch-size 64 --out project.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAYERS = ["layer1", "layer2", "layer3", "layer4"]
MODEL = ["--model", "torchvision:resnet18", "--init-seed", "1"]
# a child that runs the CLI and reports its own peak RSS and CPU time on stderr's last line
CHILD = (
    "import json, resource, sys\n"
    "from cnninterp.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "r = resource.getrusage(resource.RUSAGE_SELF)\n"
    "hwm = [int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:')][0]\n"
    "print(json.dumps({'rc': rc, 'rss_mb': hwm / 1024, 'cpu_s': r.ru_utime + r.ru_stime}), file=sys.stderr)\n"
)


def measure(argv: list[str], threads: int) -> dict:
    """Run ``cnninterp <argv>`` in a fresh process; return rc, peak RSS (MiB), CPU and wall seconds."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, "--threads", str(threads), *argv], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    stats = json.loads(proc.stderr.strip().splitlines()[-1])
    if stats["rc"] != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return {**stats, "wall_s": round(wall, 2), "rss_mb": round(stats["rss_mb"], 1), "cpu_s": round(stats["cpu_s"], 2)}


def make_shards(root: Path, images: int, shards: int, size: int) -> Path:
    from cnninterp.data.broden_shards import convert_broden
    from cnninterp.data.synthetic_broden import generate_broden

    generate_broden(root / "broden", images, size, seed=0, val_fraction=0.0)
    convert_broden(root / "broden", root / "shards", -(-images // shards), {"kind": "synthetic"}, {})
    return root / "shards"


def sizes(paths) -> dict:
    """Mean and largest bytes of files."""
    values = [p.stat().st_size for p in paths]
    return {"files": len(values), "mean_bytes": int(sum(values) / len(values)), "max_bytes": max(values)}


def one_case(root: Path, images: int, shards: int, size: int, q: float, batch: int, threads: int) -> dict:
    import torch

    from cnninterp.data.shards import read_manifest, shard_paths
    from cnninterp.dissect import engine
    from cnninterp.dissect.statefile import read_state, write_state
    from cnninterp.dissect.states import Thresholds
    from cnninterp.models.backbones import random_model

    torch.set_num_threads(threads)
    folder = make_shards(root, images, shards, size)
    paths = shard_paths(folder)
    manifest = read_manifest(folder)
    total = engine.dataset_images(manifest)
    model = random_model("resnet18", seed=1)
    parts = root / "parts"
    parts.mkdir()
    run = ["--layers", ",".join(LAYERS), "--batch-size", str(batch), "--device", "cpu"]
    common = ["--manifest", str(folder / "manifest.json")]
    out = {"images": total, "shards": len(paths)}
    # the first shard's quantile job measured; the others made here
    out["quantile_job"] = measure(["dissect-quantiles", *MODEL, *run, *common, "--shard", str(paths[0]), "--quantile", str(q), "--cache", str(parts / "cache-0.acts"), "--out", str(parts / "quantiles-0.npz")], threads)
    for i, path in enumerate(paths[1:], 1):
        part = engine.quantile_tops(model, LAYERS, [path], total, q, "imagenet", batch, "cpu", 8, parts / f"cache-{i}.acts")
        write_state(parts / f"quantiles-{i}.npz", part.state_dict())
    caches = [a for i in range(len(paths)) for a in ("--cache", str(parts / f"cache-{i}.acts"))]
    out["threshold_merge"] = measure(["dissect-thresholds", *common, "--layers", ",".join(LAYERS), "--quantile", str(q), *caches, "--out", str(root / "thresholds.npz"), *[str(parts / f"quantiles-{i}.npz") for i in range(len(paths))]], threads)
    out["tally_job"] = measure(["dissect-tally", *common, "--layers", ",".join(LAYERS), "--batch-size", str(batch), "--device", "cpu", "--shard", str(paths[0]), "--thresholds", str(root / "thresholds.npz"), "--cache", str(parts / "cache-0.acts"), "--out", str(parts / "tally-0.npz")], threads)
    thresholds = read_state(root / "thresholds.npz", Thresholds)
    for i, path in enumerate(paths[1:], 1):
        write_state(parts / f"tally-{i}.npz", engine.tally(None, LAYERS, [path], thresholds, manifest, "imagenet", batch, "cpu", parts / f"cache-{i}.acts"))
    out["gather"] = measure(["dissect-gather", *common, "--layers", ",".join(LAYERS), "--thresholds", str(root / "thresholds.npz"), "--out", str(root / "result"), *[str(parts / f"tally-{i}.npz") for i in range(len(paths))]], threads)
    out["bytes"] = {kind: sizes(sorted(parts.glob(f"{kind}-*"))) for kind in ("quantiles", "cache", "tally")}
    out["bytes"]["thresholds"] = (root / "thresholds.npz").stat().st_size
    out["images_per_shard"] = -(-total // len(paths))
    return out


def cache_share(root: Path, shard_images: int, dataset_images: int, size: int, quantiles, batch: int, threads: int) -> list[dict]:
    """Bytes of one quantile job's activation cache over a shard of ``shard_images`` images of a
    dataset of ``dataset_images``, per cache quantile, against the bytes of its maps (4 B each)."""
    import torch

    from cnninterp.data.shards import shard_paths
    from cnninterp.dissect import engine
    from cnninterp.dissect.cache import read_cache
    from cnninterp.models.backbones import random_model

    torch.set_num_threads(threads)
    folder = make_shards(root, shard_images, 1, size)
    model = random_model("resnet18", seed=1)
    out = []
    for q in quantiles:
        cache = root / f"cache-{q}.acts"
        start = time.process_time()
        engine.quantile_tops(model, LAYERS, shard_paths(folder), dataset_images, q, "imagenet", batch, "cpu", 8, cache)
        cpu = time.process_time() - start
        maps = sum(4 * a.numel() if not hasattr(a, "ids") else 4 * int(torch.tensor(a.shape).prod()) for _, layers in read_cache(cache) for a in layers.values())
        kinds = sorted({type(a).__name__ for _, layers in read_cache(cache) for a in layers.values()})
        out.append({"shard_images": shard_images, "dataset_images": dataset_images, "cache_quantile": q, "cache_bytes": cache.stat().st_size, "map_bytes": maps, "share": round(cache.stat().st_size / maps, 4), "kinds": kinds, "cpu_s": round(cpu, 1)})
        print(json.dumps(out[-1]), flush=True)
        cache.unlink()
    return out


def merge_rate(root: Path, images: int, size: int, batch: int, threads: int, q: float) -> dict:
    """CPU seconds of the threshold merge's two refinement passes per GiB of activation cache,
    when the cache holds whole maps (as every job's does at full Broden): one job over ``images``
    images whose cache is bounded for quantile 0.5 (so it keeps the maps), merged for ``q``."""
    import torch

    from cnninterp.data.shards import shard_paths
    from cnninterp.dissect import engine

    torch.set_num_threads(threads)
    folder = make_shards(root, images, 1, size)
    cache = root / "maps.acts"
    start = time.process_time()
    part = engine.quantile_tops(__import__("cnninterp.models.backbones", fromlist=["random_model"]).random_model("resnet18", seed=1), LAYERS, shard_paths(folder), images, 0.5, "imagenet", batch, "cpu", 8, cache)
    middle = time.process_time()
    engine.merge_thresholds([part], LAYERS, images, q, [cache])
    end = time.process_time()
    gib = cache.stat().st_size / 2**30
    out = {"images": images, "cache_bytes": cache.stat().st_size, "quantile_pass_cpu_s_per_image": round((middle - start) / images, 4), "merge_cpu_s": round(end - middle, 1), "merge_cpu_s_per_gib": round((end - middle) / gib, 1)}
    print(json.dumps(out), flush=True)
    return out


def project(args) -> dict:
    """The --project run (see the module's docstring)."""
    from cnninterp.dissect.resources import job_resources, layer_shapes

    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "stages"
        root.mkdir()
        case = one_case(root, args.images, int(args.shards), args.size, args.quantile, args.batch_size, args.threads)
        print(json.dumps(case), flush=True)
        result["case"] = case
        shares = []
        for n in (int(x) for x in args.cache_shard_images.split(",") if x):
            sub = Path(tmp) / f"cache-{n}"
            sub.mkdir()
            shares += cache_share(sub, n, args.broden_images, args.size, [float(q) for q in args.cache_quantiles.split(",")], args.batch_size, args.threads)
        for shards in (int(x) for x in args.trend_shards.split(",") if x):  # one job's share as S grows
            sub = Path(tmp) / f"trend-{shards}"
            sub.mkdir()
            shares += cache_share(sub, args.trend_images, shards * args.trend_images, args.size, [args.quantile], args.batch_size, args.threads)
        result["cache_share"] = shares
        sub = Path(tmp) / "merge"
        sub.mkdir()
        result["merge_rate"] = merge_rate(sub, args.merge_images, args.size, args.batch_size, args.threads, args.quantile)
    shapes = layer_shapes("resnet18", LAYERS, 224)
    per_image_bytes = 4 * sum(u * h * w for u, h, w in shapes)
    per_shard = case["images_per_shard"]
    rows = {}
    for shards in (64, 1000):
        n = -(-args.broden_images // shards)
        formula = {stage: job_resources(stage, shapes, args.batch_size, n, 8, 1199) for stage in ("quantiles", "thresholds", "tally", "gather")}
        rows[shards] = {
            "images_per_shard": n,
            "quantile_job_cpu_s": round(case["quantile_job"]["cpu_s"] / per_shard * n, 1),
            "tally_job_cpu_s": round(case["tally_job"]["cpu_s"] / per_shard * n, 1),
            "cache_mb_per_job_if_all_maps": round(per_image_bytes * n / 2**20, 1),
            "cache_gb_all_jobs_if_all_maps": round(per_image_bytes * args.broden_images / 2**30, 1),
            "measured_rss_mb": {s: case[k]["rss_mb"] for s, k in (("quantiles", "quantile_job"), ("thresholds", "threshold_merge"), ("tally", "tally_job"), ("gather", "gather"))},
            "formula": formula,
        }
    result["projection"] = rows
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=80, help="N (the run also uses 8N)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--shards", default="4,32")
    parser.add_argument("--quantile", type=float, default=0.005)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    parser.add_argument("--project", action="store_true", help="the full-Broden projection (see the docstring)")
    parser.add_argument("--broden-images", type=int, default=63305)
    parser.add_argument("--cache-shard-images", default="64,512", help="shard sizes whose cache share is measured (--project)")
    parser.add_argument("--cache-quantiles", default="0.005,0.01", help="cache quantiles measured (--project)")
    parser.add_argument("--trend-shards", default="1,2,4,8", help="dataset sizes, in jobs of --trend-images images, whose one-job cache share is measured (--project)")
    parser.add_argument("--trend-images", type=int, default=128)
    parser.add_argument("--merge-images", type=int, default=256, help="images of the merge-rate case (--project)")
    args = parser.parse_args()
    if args.project:
        start = time.perf_counter()
        result = {"command": " ".join(sys.argv), "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quantile": args.quantile, **project(args)}
        result["wall_s"] = round(time.perf_counter() - start, 1)
        print(json.dumps(result["projection"], indent=1))
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        return
    cases = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for images in (args.images, 8 * args.images):
            for shards in (int(s) for s in args.shards.split(",")):
                root = Path(tmp) / f"{images}-{shards}"
                root.mkdir()
                case = one_case(root, images, shards, args.size, args.quantile, args.batch_size, args.threads)
                cases.append(case)
                print(json.dumps(case), flush=True)
    stages = ("quantile_job", "threshold_merge", "tally_job", "gather")
    spread = {s: round(max(c[s]["rss_mb"] for c in cases) / min(c[s]["rss_mb"] for c in cases) - 1, 3) for s in stages}
    result = {
        "command": " ".join(sys.argv),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "model": "resnet18 (random init), layers " + ",".join(LAYERS),
        "image_size": args.size,
        "quantile": args.quantile,
        "cases": cases,
        "rss_spread": spread,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    print(json.dumps({"rss_spread": spread, "wall_s": result["wall_s"]}))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
