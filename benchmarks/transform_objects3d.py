"""The transform method's 3-D chain (objects3d shards -> FTL model + θ-input baseline -> evaluation)
on the schema's default settings, or with overrides, timed per step (wall and CPU seconds, one thread).

    .venv/bin/python benchmarks/transform_objects3d.py --out /tmp/obj3d [--set objects3d.epochs=40 --set model.channels=8 ...]

Prints the timings and the metrics; writes them to <out>/benchmark.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from method_settings import settings_parser, apply_overrides, method_defaults, timed


def main() -> None:
    parser = settings_parser(__doc__, "objects3d.epochs=40")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import torch

    from cnninterp.data.objects3d import write_objects3d
    from cnninterp.transform.evaluate3d import evaluate_objects3d
    from cnninterp.transform.model import ModelSpec
    from cnninterp.transform.train import train_model

    torch.set_num_threads(1)
    cfg = apply_overrides(method_defaults("transform", ("model", "train", "objects3d")), args.set)
    o, m, t, seed = cfg["objects3d"], cfg["model"], cfg["train"], cfg["seed"]
    out = Path(args.out)
    times = {}
    _, *times["data"] = timed(write_objects3d, out / "shards", objects_train=o["objects_train"], objects_test=o["objects_test"],
                              image_size=o["image_size"], azimuth_step_deg=o["azimuth_step_deg"], elevation_deg=o["elevation_deg"],
                              heldout_start_deg=o["heldout_start_deg"], heldout_width_deg=o["heldout_width_deg"], seed=seed,
                              shard_size=o["shard_size"], inplane_range_deg=o["inplane_range_deg"])
    for kind in ("ftl", "baseline"):
        spec = ModelSpec(kind=kind, image_size=o["image_size"], channels=m["channels"], blocks=m["blocks"],
                         identity_dim=m["identity_dim"], azimuth_blocks=o["azimuth_blocks"])
        _, *times[f"train_{kind}"] = timed(train_model, out / "shards", out / kind / "model.pt", spec, epochs=o["epochs"],
                                           batch_size=t["batch_size"], lr=o["lr"], seed=seed, device="cpu",
                                           equivariance_weight=o["equivariance_weight"], equivariance_norm=o["equivariance_norm"])
    result, *times["evaluate"] = timed(evaluate_objects3d, out / "shards", out / "ftl/model.pt", out / "baseline/model.pt",
                                       out / "eval/objects3d.json", samples=o["samples"], turn_rows=o["turn_rows"],
                                       turn_steps=o["turn_steps"], seed=seed)
    report = {"config": cfg, "seconds": {k: {"wall": round(w, 2), "cpu": round(c, 2)} for k, (w, c) in times.items()},
              "total": {"wall": round(sum(w for w, _ in times.values()), 2), "cpu": round(sum(c for _, c in times.values()), 2)},
              "metrics": result}
    (out / "benchmark.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("seconds", "total")}, indent=1))
    print(json.dumps({k: result[k] for k in ("reconstruction_mse", "equivariance_error", "angle_error_deg", "invariant_accuracy")}, indent=1))


if __name__ == "__main__":
    main()
