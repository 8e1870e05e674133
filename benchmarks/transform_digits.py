"""The transform method's digits chain (digits shards -> FTL model + θ-input baseline -> evaluation)
on the schema's default settings, or with overrides, timed per step (wall and CPU seconds, one thread).

    .venv/bin/python benchmarks/transform_digits.py --out /tmp/digits [--set train.equivariance_norm=latent --set seed=1 ...]

Prints the timings and the metrics; writes them to <out>/benchmark.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from method_settings import settings_parser, apply_overrides, method_defaults, timed


def main() -> None:
    parser = settings_parser(__doc__, "train.epochs=40")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import torch

    from cnninterp.data.digits import write_digits
    from cnninterp.transform.evaluate import evaluate
    from cnninterp.transform.model import ModelSpec
    from cnninterp.transform.train import train_model

    torch.set_num_threads(1)
    cfg = apply_overrides(method_defaults("transform", ("data", "model", "train", "eval")), args.set)
    d, m, t, e, seed = cfg["data"], cfg["model"], cfg["train"], cfg["eval"], cfg["seed"]
    out = Path(args.out)
    times = {}
    manifest, *times["data"] = timed(write_digits, out / "shards", seed=seed, **d)
    for kind in ("ftl", "baseline"):
        spec = ModelSpec(kind=kind, image_size=manifest["image_size"], **m)
        _, *times[f"train_{kind}"] = timed(train_model, out / "shards", out / kind / "model.pt", spec, epochs=t["epochs"],
                                           batch_size=t["batch_size"], lr=t["lr"], seed=seed, device="cpu",
                                           equivariance_weight=t["equivariance_weight"],
                                           equivariance_norm=t["equivariance_norm"])
    result, *times["evaluate"] = timed(evaluate, out / "shards", out / "ftl/model.pt", out / "baseline/model.pt",
                                       out / "eval/digits.json", seed=seed, **e)
    report = {"config": cfg, "seconds": {k: {"wall": round(w, 2), "cpu": round(c, 2)} for k, (w, c) in times.items()},
              "total": {"wall": round(sum(w for w, _ in times.values()), 2), "cpu": round(sum(c for _, c in times.values()), 2)},
              "metrics": result}
    (out / "benchmark.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("seconds", "total")}, indent=1))
    keys = ("reconstruction_mse", "equivariance_error", "angle_error_deg", "invariant_accuracy", "latent_share")
    print(json.dumps({k: result[k] for k in keys}, indent=1))


if __name__ == "__main__":
    main()
