"""The causal-attention chain (driving data -> three steering models -> evaluation) on the schema's
default settings, or with overrides, timed per step (wall and CPU seconds, one thread).

    .venv/bin/python benchmarks/attention.py --out /tmp/attention [--set train.reg_weight=0.5 --set seed=1 ...]

Prints the timings and metrics.json; writes them to <out>/benchmark.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from method_settings import apply_overrides, method_defaults, timed






def main() -> None:
    import torch

    from cnninterp.attention.evaluate import evaluate
    from cnninterp.attention.train import train_model
    from cnninterp.data.driving import Camera, RoadSpec, generate_driving

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], help="block.key=value (YAML value), e.g. train.epochs=4")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = apply_overrides(method_defaults("attention", ("data", "model", "train", "eval")), args.set)
    out = Path(args.out)
    d, m, t, e, seed = cfg["data"], cfg["model"], cfg["train"], cfg["eval"], cfg["seed"]
    times = {}
    camera = Camera(height=d["height"], width=d["width"], lookahead=d["lookahead_m"], band=d["band"])
    spec = RoadSpec(camera=camera, seq_len=d["seq_len"], distractors=d["distractors"], outer=d["outer_road"],
                    lateral_scale=d["lateral_scale"], pitch_px=d["pitch_px"], ramp_m=d["ramp_m"])
    _, *times["data"] = timed(generate_driving, out / "driving", spec, d["train_sequences"], d["test_sequences"], seed=seed,
                              shard_size=d["shard_size"])
    models = {}
    for name, kind, lam in (("attention", "attention", t["reg_weight"]), ("attention_no_reg", "attention", 0.0), ("cnn", "cnn", 0.0)):
        models[name] = out / name / "model.pt"
        _, *times[f"train_{name}"] = timed(train_model, out / "driving", models[name], kind, lam, epochs=t["epochs"],
                                           batch_size=t["batch_size"], lr=t["lr"], seed=seed, device="cpu", hidden=m["hidden"],
                                           coords=m["coords"], located=m["located"], context_norm=m["context_norm"],
                    logit_scale=m["logit_scale"], learn_scale=m["learn_scale"], clip_grad=t["clip_grad"],
                                           uniform_start=m["uniform_start"])
    metrics, *times["evaluate"] = timed(evaluate, out / "driving", models, out / "eval" / "metrics.json", seed=seed, **e)
    total = [sum(v[i] for v in times.values()) for i in (0, 1)]
    result = {"config": cfg, "threads": args.threads, "seconds": {k: {"wall": round(v[0], 2), "cpu": round(v[1], 2)} for k, v in times.items()},
              "total": {"wall": round(total[0], 2), "cpu": round(total[1], 2)}, "metrics": metrics}
    (out / "benchmark.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
