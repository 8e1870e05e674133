"""Issue 11: the random control's BatchNorm treatment, measured on the default probe set.

For each init seed, dissects the random resnet10 twice on the pipeline's probe shards
(``results/shards/broden``) with config.yaml's dissection settings and the chance level of
whole-image labels (1000 shuffles, alpha 0.01): ``init`` (torch's initial BatchNorm statistics,
the identity in eval mode) and ``task`` (statistics re-estimated on ``train.baseline.bn_images``
images of the scene-task shards, ``results/shards/scenes``, as the trained baseline's are:
``cnninterp.train.random_control``). Prints one JSON line per seed and variant: per layer the
detectors, those above chance, unique concepts (by IoU and above chance) and detectors per
category, and the totals.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/random_control_bn.py --out /tmp/rcbn --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main() -> None:
    """Parse the arguments, dissect both variants per seed, print the JSON lines."""
    import torch

    from cnninterp.config import dissect_settings, load_config
    from cnninterp.data.shards import read_manifest, shard_paths
    from cnninterp.dissect import engine
    from cnninterp.dissect.gather import gather
    from cnninterp.models.backbones import load_model, random_model
    from cnninterp.train.random_control import random_control

    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probe", type=Path, default=root / "results/shards/broden")
    ap.add_argument("--task", type=Path, default=root / "results/shards/scenes")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--variants", nargs="+", choices=["init", "task"], default=["init", "task"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(root / "config.yaml")
    t = config["train"]["baseline"]
    s = dissect_settings(config, "baseline_random")
    layers, q = s["layers"], s["quantile"]
    manifest = read_manifest(args.probe)
    paths, total = shard_paths(args.probe), engine.dataset_images(manifest)
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for variant in args.variants:
            if variant == "task":
                random_control(args.task, args.out / f"random-{seed}.pt", arch=t["arch"], task=t["task"], init_seed=seed,
                               batch_size=t["batch_size"], bn_images=t["bn_images"], preprocess="imagenet", seed=config["seed"])
                model = load_model("checkpoint", args.out / f"random-{seed}.pt")
            else:
                model = random_model(t["arch"], seed)
            with tempfile.TemporaryDirectory(dir=args.out) as tmp:
                cache = Path(tmp) / "acts"
                tops = engine.quantile_tops(model, layers, paths, total, q, s["preprocess"], s["batch_size"], "cpu", s["top_images"], cache)
                thresholds = engine.merge_thresholds([tops], layers, total, q, [cache], engine.manifest_shards(manifest))
                part = engine.tally(None, layers, paths, thresholds, manifest, s["preprocess"], s["batch_size"], "cpu", cache)
            settings = {"layers": layers, "quantile": q, "chance_permutations": 1000, "chance_alpha": 0.01, "chance_seed": 0}
            summary = gather([part], thresholds, manifest, layers, s["denominator"], s["iou_threshold"], args.out / f"{variant}-{seed}", settings)
            per_layer = {name: {"detectors": summary[name]["detectors"], "above_chance": summary[name].get("detectors_above_chance"),
                                "unique": summary[name]["unique_concepts"], "unique_above_chance": summary[name].get("unique_concepts_above_chance"),
                                "per_category": {c: n for c, n in summary[name]["detectors_per_category"].items() if n}} for name in layers}
            print(json.dumps({"seed": seed, "bn": variant, "layers": per_layer,
                              "total": [sum(v["detectors"] for v in per_layer.values()), sum(v["above_chance"] or 0 for v in per_layer.values())]}), flush=True)


if __name__ == "__main__":
    main()
