"""Issue 11 (item 1): which lever lifts the object-defined scene task to held-out accuracy >= 0.8?

Generates a scene task (``--ground-rule``, ``--object-rule``, ``--third-object``: the scene rules of
``data.synthetic_broden.SceneRules``; ``--n-images``), shards it, trains config.yaml's baseline
with the given epochs / learning rate / batch size and prints held-out accuracy, per-epoch train
accuracy and the training wall time as JSON. No dissection (``benchmarks/default_task_rules.py``
dissects). Generated task shards are reused from ``--cache`` when the same rules were asked before.
One thread, like the measurements in benchmarks/RESULTS.md:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/default_task_levers.py --ground-rule 0 --object-rule 1 --third-object 0 --cache /tmp/levers
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    """Run one lever setting (see the module docstring) and print its JSON record."""
    import torch

    from cnninterp.config import load_config
    from cnninterp.data.broden_shards import convert_broden
    from cnninterp.data.synthetic_broden import generate_scene_task
    from cnninterp.train.baseline import train_baseline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ground-rule", type=float, default=0.0)
    ap.add_argument("--object-rule", type=float, default=1.0)
    ap.add_argument("--third-object", type=float, default=0.5)
    ap.add_argument("--n-images", type=int, default=None, help="default: config.yaml's")
    ap.add_argument("--epochs", type=int, default=None, help="default: config.yaml's")
    ap.add_argument("--lr", type=float, default=None, help="default: config.yaml's")
    ap.add_argument("--batch-size", type=int, default=None, help="default: config.yaml's")
    ap.add_argument("--arch", default=None, help="default: config.yaml's")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", type=Path, required=True, help="folder for task shards and models")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(__file__).resolve().parents[1]
    config = load_config(root / "config.yaml")
    syn, task, t = config["broden"]["synthetic"], config["broden"]["scene_task"], config["train"]["baseline"]
    n = args.n_images or task["n_images"]
    key = f"g{args.ground_rule}_o{args.object_rule}_t{args.third_object}_n{n}"
    data = args.cache / key
    if not (data / "shards" / "manifest.json").exists():
        generate_scene_task(data / "task", n, syn["image_size"], task["seed"], task["val_fraction"], ground_rule=args.ground_rule, object_rule=args.object_rule, third_object=args.third_object)
        convert_broden(data / "task", data / "shards", task["shard_size"], {"kind": "synthetic_scene_task"}, {})
    epochs, lr, bs, arch = args.epochs or t["epochs"], args.lr or t["lr"], args.batch_size or t["batch_size"], args.arch or t["arch"]
    out = args.cache / f"{key}_{arch}_e{epochs}_lr{lr}_b{bs}" / "model.pt"
    start, cpu = time.time(), time.process_time()
    trained = train_baseline(data / "shards", out, arch=arch, task=t["task"], epochs=epochs, batch_size=bs, lr=lr,
                             momentum=t["momentum"], weight_decay=t["weight_decay"], preprocess="imagenet", seed=config["seed"])
    record = {"rules": key, "arch": arch, "epochs": epochs, "lr": lr, "batch_size": bs, "val_accuracy": trained["val_accuracy"],
              "train_accuracy": [round(h["accuracy"], 3) for h in trained["history"]],
              "train_wall_s": round(time.time() - start, 1), "train_cpu_s": round(time.process_time() - cpu, 1)}
    print(json.dumps(record))


if __name__ == "__main__":
    main()
