"""Issue 11 (item 3, the random control): is the synthetic probe unrealistically easy for random filters?

Generates config.yaml's probe set with the asked photograph-like variation switched on
(``--realism``: names of :class:`cnninterp.data.synthetic_broden.Realism`'s switches, default none:
today's renderer), shards it and dissects the random control (config.yaml's ``baseline_random``);
with ``--train`` also generates the scene task with the same renderer, trains the default baseline
on it and dissects it, and adds the report's findings (``report.dissection.findings``). Prints per
layer detectors and unique concepts per category and the stage times as JSON. ``--checkpoint``
dissects an already trained model instead (the probe-only switches, texture_variation and
texture_kinds, leave the task's images unchanged). The chance level of the texture detectors:
``--permute-textures SEED`` shuffles the texture labels among the texture images before sharding;
``--n-images`` and ``--texture-share`` change the probe's size and its share of texture images.
One thread:

    OMP_NUM_THREADS=1 PYTHONPATH=workflow .venv/bin/python benchmarks/default_probe_realism.py --realism shading --train --out /tmp/realism
    OMP_NUM_THREADS=1 PYTHONPATH=workflow .venv/bin/python benchmarks/default_probe_realism.py --realism --permute-textures 0 --checkpoint /tmp/realism/model.pt --out /tmp/chance
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

CATEGORIES = ["color", "object", "part", "material", "scene", "texture"]


def profile(layers: dict) -> dict:
    """Per layer: detectors, detectors per category and unique concepts (from a dissection summary)."""
    return {
        name: {
            "detectors": l["detectors"],
            "per_category": {c: l["detectors_per_category"].get(c, 0) for c in CATEGORIES if l["detectors_per_category"].get(c, 0)},
            "unique": l["unique_concepts"],
            "unique_per_category": {c: l["unique_concepts_per_category"].get(c, 0) for c in CATEGORIES if l["unique_concepts_per_category"].get(c, 0)},
        }
        for name, l in layers.items()
    }


def permute_texture_labels(index_csv: Path, seed: int) -> None:
    """Rewrite ``index_csv`` (Broden's index.csv) with its texture cells permuted among the rows that
    have one (``numpy.random.default_rng(seed)``): each label keeps its image count, but no longer
    says anything about the image. The label files' statistics stay valid (same counts)."""
    import csv

    import numpy as np

    with open(index_csv, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header, rows = list(reader.fieldnames or []), list(reader)
    textured = [i for i, r in enumerate(rows) if r["texture"]]
    cells = [rows[i]["texture"] for i in textured]
    for i, k in zip(textured, np.random.default_rng(seed).permutation(len(cells))):
        rows[i]["texture"] = cells[k]
    with open(index_csv, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    """Run the experiment (see the module docstring) and print its JSON record."""
    import torch

    from cnninterp.config import dissect_settings, load_config
    from cnninterp.data.broden import BrodenFolder, coverage_statistics
    from cnninterp.data.broden_shards import convert_broden
    from cnninterp.data.synthetic_broden import REALISM, Realism, generate_broden, generate_scene_task
    from cnninterp.dissect.pipeline import dissect
    from cnninterp.models.backbones import load_model, random_model
    from cnninterp.report.dissection import findings
    from cnninterp.train.baseline import train_baseline

    switches = [f.name for f in dataclasses.fields(Realism)]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--realism", nargs="*", default=None, choices=switches, help="switches on (default: the generator's own default; none given: all off)")
    ap.add_argument("--train", action="store_true", help="also train and dissect the baseline on the scene task")
    ap.add_argument("--probe-seed", type=int, default=None, help="the probe set's seed (default: config.yaml's; another seed measures the sampling noise)")
    ap.add_argument("--n-images", type=int, default=None, help="probe images (default: config.yaml's)")
    ap.add_argument("--texture-share", type=float, default=None, help="share of texture (DTD-source) images in the probe (default: the generator's)")
    ap.add_argument("--permute-textures", type=int, default=None, metavar="SEED",
                    help="chance level: permute the texture labels among the probe's texture images (seeded) before sharding, so they say nothing about the image")
    ap.add_argument("--checkpoint", type=Path, default=None, help="also dissect this trained model (instead of --train)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True, help="a new folder")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(__file__).resolve().parents[1]
    config = load_config(root / "config.yaml")
    syn, task, t = config["broden"]["synthetic"], config["broden"]["scene_task"], config["train"]["baseline"]
    realism = REALISM if args.realism is None else Realism(**{k: k in args.realism for k in switches})
    out, record, times = args.out, {"realism": dataclasses.asdict(realism)}, {}

    start = time.time()
    generate_broden(out / "probe", args.n_images or syn["n_images"], syn["image_size"], syn["seed"] if args.probe_seed is None else args.probe_seed, syn["val_fraction"], realism=realism,
                    **({} if args.texture_share is None else {"texture_share": args.texture_share}))
    times["generate probe"] = time.time() - start
    if args.permute_textures is not None:
        permute_texture_labels(out / "probe" / "index.csv", args.permute_textures)
    record["coverage"] = {c: {k: round(e[k] * 100, 2) for k in ("min", "median", "max")} for c, e in coverage_statistics(BrodenFolder(out / "probe")).items()}
    start = time.time()
    convert_broden(out / "probe", out / "probe_shards", config["broden"]["shard_size"], {"kind": "synthetic"}, {})
    times["probe shards"] = time.time() - start
    models = [("baseline_random", lambda: random_model(t["arch"], dissect_settings(config, "baseline_random")["init_seed"]))]
    if args.train:
        start = time.time()
        generate_scene_task(out / "task", task["n_images"], syn["image_size"], task["seed"], task["val_fraction"], ground_rule=task["ground_rule"],
                            object_rule=task["object_rule"], third_object=task["third_object"], realism=realism)
        times["generate task"] = time.time() - start
        start = time.time()
        convert_broden(out / "task", out / "task_shards", task["shard_size"], {"kind": "synthetic_scene_task"}, {})
        times["task shards"] = time.time() - start
        start = time.time()
        trained = train_baseline(out / "task_shards", out / "model.pt", arch=t["arch"], task=t["task"], epochs=t["epochs"], batch_size=t["batch_size"],
                                 lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"], preprocess="imagenet", seed=config["seed"], bn_images=t["bn_images"])
        times["train"] = time.time() - start
        record["val_accuracy"] = trained["val_accuracy"]
        models.insert(0, ("baseline", lambda: load_model("checkpoint", out / "model.pt")))
    elif args.checkpoint:
        models.insert(0, ("baseline", lambda: load_model("checkpoint", args.checkpoint)))
    summaries = {}
    for name, make in models:
        s = dissect_settings(config, name)
        start = time.time()
        summaries[name] = {"layers": dissect(make(), s["layers"], out / "probe_shards", out / name, s["quantile"], s["iou_threshold"], s["denominator"], batch_size=s["batch_size"])}
        times[f"dissect {name}"] = time.time() - start
        record[name] = profile(summaries[name]["layers"])
    if "baseline" in summaries:
        f = findings(summaries["baseline"], summaries["baseline_random"], CATEGORIES)
        record["findings"] = {k: v for k, v in f.items() if k not in ("paper", "random_control", "layers")}
        record["findings"]["object_part_share"] = [None if l["object_part"] is None else round(l["object_part"], 3) for l in f["layers"]]
    record["wall_s"] = {k: round(v, 1) for k, v in times.items()}
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
