"""Issue 11 (a): which training task makes the baseline object- and part-selective?

Generates config.yaml's probe set (unchanged) and a scene task with the given scene rules
(``--ground-rule``: probability that the ground is the scene's material, 0 = a nuisance;
``--object-rule``: probability that each of the scene's two objects is kept; ``--third-object``:
probability of a third, random object), trains the default
baseline on it, dissects it and its random control on the probe set with config.yaml's settings,
and prints the held-out task accuracy and the per-layer category profile (detectors and unique
concepts per category) as JSON. One thread, like the measurements in benchmarks/RESULTS.md:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/default_task_rules.py --ground-rule 0 --object-rule 1 --out /tmp/rules
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

CATEGORIES = ["color", "object", "part", "material", "scene", "texture"]


def profile(layers: dict) -> dict:
    """Per layer: units, detectors, detectors and unique concepts per category (from a summary)."""
    return {
        name: {
            "units": l["units"],
            "detectors": l["detectors"],
            "per_category": {c: l["detectors_per_category"].get(c, 0) for c in CATEGORIES},
            "unique": l["unique_concepts"],
            "unique_per_category": {c: l["unique_concepts_per_category"].get(c, 0) for c in CATEGORIES},
        }
        for name, l in layers.items()
    }


def main() -> None:
    """Run the experiment (see the module docstring) and print its JSON record."""
    import torch

    from cnninterp.config import dissect_settings, load_config
    from cnninterp.data.broden_shards import convert_broden
    from cnninterp.data.synthetic_broden import generate_broden, generate_scene_task
    from cnninterp.dissect.pipeline import dissect
    from cnninterp.models.backbones import load_model, random_model
    from cnninterp.train.baseline import train_baseline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ground-rule", type=float, required=True)
    ap.add_argument("--object-rule", type=float, required=True)
    ap.add_argument("--third-object", type=float, default=None, help="probability of a third, random object (default: generate_scene_task's)")
    ap.add_argument("--bn-images", type=int, default=1024, help="training images the BatchNorm statistics are re-estimated on after training (0: off)")
    ap.add_argument("--train-seed", type=int, default=None, help="training seed (default: config.yaml's seed)")
    ap.add_argument("--epochs", type=int, default=None, help="default: config.yaml's")
    ap.add_argument("--out", type=Path, required=True, help="a new folder")
    ap.add_argument("--random", action="store_true", help="also dissect the random control")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(__file__).resolve().parents[1]
    config = load_config(root / "config.yaml")
    syn, task, t = config["broden"]["synthetic"], config["broden"]["scene_task"], config["train"]["baseline"]
    out = args.out
    generate_broden(out / "probe", syn["n_images"], syn["image_size"], syn["seed"], syn["val_fraction"])
    convert_broden(out / "probe", out / "probe_shards", config["broden"]["shard_size"], {"kind": "synthetic"}, {})
    generate_scene_task(out / "task", task["n_images"], syn["image_size"], task["seed"], task["val_fraction"], ground_rule=args.ground_rule, object_rule=args.object_rule,
                        **({} if args.third_object is None else {"third_object": args.third_object}))
    convert_broden(out / "task", out / "task_shards", task["shard_size"], {"kind": "synthetic_scene_task"}, {})
    epochs = args.epochs or t["epochs"]
    start = time.time()
    trained = train_baseline(out / "task_shards", out / "model.pt", arch=t["arch"], task=t["task"], epochs=epochs, batch_size=t["batch_size"],
                             lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"], preprocess="imagenet",
                             seed=config["seed"] if args.train_seed is None else args.train_seed, bn_images=args.bn_images)
    record = {"ground_rule": args.ground_rule, "object_rule": args.object_rule, "third_object": args.third_object, "bn_images": args.bn_images, "train_seed": args.train_seed, "epochs": epochs, "task_images": task["n_images"], "val_accuracy": trained["val_accuracy"], "train_wall_s": round(time.time() - start, 1)}
    models = [("baseline", lambda: load_model("checkpoint", out / "model.pt"))]
    if args.random:
        models.append(("baseline_random", lambda: random_model(t["arch"], dissect_settings(config, "baseline_random")["init_seed"])))
    for name, make in models:
        s = dissect_settings(config, name)
        record[name] = profile(dissect(make(), s["layers"], out / "probe_shards", out / name, s["quantile"], s["iou_threshold"], s["denominator"], batch_size=s["batch_size"]))
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
