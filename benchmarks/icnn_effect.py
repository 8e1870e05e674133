"""The ICNN effect on the default settings over several seeds: location instability, accuracy and
dissection of both networks, with the CPU and wall time of each step.

    .venv/bin/python benchmarks/icnn_effect.py --seeds 0 1 2 --threads 1 [--set train.filter_weight=1.0]
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from pathlib import Path

from method_settings import settings_parser, apply_overrides, method_defaults

SECTIONS = ("data", "model", "train", "eval")


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run(cfg: dict, seed: int, root: Path) -> dict:
    """The default chain: synthetic parts data under ``root``, then ``train_and_evaluate``."""
    from cnninterp.data.parts import write_parts

    d = cfg["data"]
    w0, c0 = time.perf_counter(), cpu()
    kw = dict(image_size=d["image_size"], positive_fraction=d["positive_fraction"], shard_size=d["shard_size"])
    write_parts(root / "parts", splits={"train": d["train_images"], "test": d["test_images"]}, seed=seed, **kw)
    write_parts(root / "probe", splits={"probe": d["probe_images"]}, seed=seed + 1, **kw)
    return train_and_evaluate(cfg, seed, root, {"data": (time.perf_counter() - w0, cpu() - c0)})


def train_and_evaluate(cfg: dict, seed: int, root: Path, times: dict) -> dict:
    """Train both networks on ``root/parts``, evaluate them with ``root/probe``; return the JSON
    record (metrics, filter parts without the per-filter list, wall and CPU seconds per step,
    ``times`` holding the data step's)."""
    from cnninterp.icnn.evaluate import evaluate
    from cnninterp.icnn.model import NetSpec
    from cnninterp.icnn.train import train_net

    d, m, t, e = cfg["data"], cfg["model"], cfg["train"], cfg["eval"]
    for kind in ("icnn", "cnn"):
        w0, c0 = time.perf_counter(), cpu()
        spec = NetSpec(interpretable=kind == "icnn", image_size=d["image_size"], channels=m["channels"], filters=m["filters"])
        train_net(root / "parts", root / kind / "model.pt", spec, epochs=t["epochs"], batch_size=t["batch_size"], lr=t["lr"],
                  filter_weight=t["filter_weight"], seed=seed, device="cpu")
        times[f"train_{kind}"] = (time.perf_counter() - w0, cpu() - c0)
    w0, c0 = time.perf_counter(), cpu()
    result = evaluate(root / "parts", root / "probe", {"icnn": root / "icnn/model.pt", "cnn": root / "cnn/model.pt"},
                      root / "eval/metrics.json", top_images=e["top_images"], quantile=e["quantile"],
                      iou_threshold=e["iou_threshold"], figure_rows=e["figure_rows"], figure_cols=e["figure_cols"])
    times["evaluate"] = (time.perf_counter() - w0, cpu() - c0)
    keys = ("location_instability", "location_instability_best_part", "accuracy", "part_detectors", "mean_part_iou", "detectors_per_part",
            "part_statistics")
    parts = {k: {n: v for n, v in result["filter_parts"][k].items() if n != "per_filter"} for k in result["filter_parts"]}
    return {"seed": seed, **{k: result[k] for k in keys}, "filter_parts": parts, "seconds_wall_cpu": {k: [round(a, 1), round(b, 1)] for k, (a, b) in times.items()}}


def main() -> None:
    import torch

    parser = settings_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = apply_overrides(method_defaults("icnn", SECTIONS), args.set)
    print(json.dumps({"config": cfg, "threads": args.threads}))
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run(cfg, seed, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
