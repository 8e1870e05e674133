"""Issue 14 levers at 80x160: train only the models asked for (the attention model with lambda > 0
by default) on driving data cached per data setting and seed, print the on-cause metrics.

    PYTHONPATH=workflow .venv/bin/python benchmarks/attention_levers.py --out /tmp/lev --seeds 0 1 \
        --models attention,cnn --set data.height=80 ... [--tag name]

Issue 14's runs (2026-12-03, 1 thread; BASE = --set data.height=80 --set data.width=160 --set
model.located=true --set model.context_norm=true --set model.logit_scale=16 --set model.learn_scale=true
--set train.clip_grad=1.0 --set train.epochs=8 --set train.batch_size=4): BASE; BASE + data.lateral_scale=3;
+ data.pitch_px=16; + data.train_sequences=256 train.epochs=4; + model.uniform_start=true; + data.distractors=15;
+ train.reg_weight=0.01 / 0.03; + data.seq_len=20 data.train_sequences=52 train.batch_size=2 (tables in the
report of that session and tests/test_attention_effect.py's docstring).

Per seed prints one JSON line: MAE (rad) per model, the mean predictor's MAE, the MAE gap
(attention - cnn) / mean where the cnn was trained, the attention's on-cause ratio and placement,
the input-gradient on-cause ratio per model (cnninterp.attention.saliency), seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from method_settings import apply_overrides, method_defaults


def main() -> None:
    import torch

    from cnninterp.attention.causal import attention_on_cause, attention_placement
    from cnninterp.attention.evaluate import attention_use, predict
    from cnninterp.attention.saliency import gradient_on_cause
    from cnninterp.attention.train import load_model, train_model
    from cnninterp.data.driving import Camera, RoadSpec, generate_driving, load_split

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="where the models train (cpu, cuda); evaluation runs on the CPU")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--models", default="attention")
    p.add_argument("--tag", default="")
    p.add_argument("--set", action="append", default=[])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for seed in args.seeds:
        cfg = apply_overrides(method_defaults("attention", ("data", "model", "train", "eval")), args.set + [f"seed={seed}"])
        d, m, t = cfg["data"], cfg["model"], cfg["train"]
        key = hashlib.sha256(json.dumps([d, seed], sort_keys=True).encode()).hexdigest()[:10]
        data = Path(args.out) / f"data-{key}"
        t0 = time.time()
        if not (data / "manifest.json").exists():
            camera = Camera(height=d["height"], width=d["width"], lookahead=d["lookahead_m"], band=d["band"])
            spec = RoadSpec(camera=camera, seq_len=d["seq_len"], distractors=d["distractors"], outer=d["outer_road"],
                            lateral_scale=d["lateral_scale"], pitch_px=d["pitch_px"], ramp_m=d["ramp_m"])
            generate_driving(data, spec, d["train_sequences"], d["test_sequences"], seed=seed, shard_size=d["shard_size"])
        secs = {"data": round(time.time() - t0, 1)}
        test = load_split(data, "test")
        frames, angle, cause = test["frames"], test["angle"].astype(np.float64), test["cause"].astype(bool)
        row = {"tag": args.tag, "seed": seed, "mae": {}, "gradient_ratio": {}}
        mkey = hashlib.sha256(json.dumps([m, t], sort_keys=True).encode()).hexdigest()[:10]
        # the CNN ignores lambda and the attention's own model settings: keyed by what it trains with
        ckey = hashlib.sha256(json.dumps([{k: v for k, v in t.items() if k != "reg_weight"}, m["hidden"], m["coords"]],
                                         sort_keys=True).encode()).hexdigest()[:10]
        for name in args.models.split(","):
            kind, lam = {"attention": ("attention", t["reg_weight"]), "attention_no_reg": ("attention", 0.0), "cnn": ("cnn", 0.0)}[name]
            path = data / f"{name}-{mkey if name != 'cnn' else ckey}" / "model.pt"
            t0 = time.time()
            if not path.exists():
                train_model(data, path, kind, lam, epochs=t["epochs"], batch_size=t["batch_size"], lr=t["lr"], seed=seed,
                            device=args.device, hidden=m["hidden"], coords=m["coords"], located=m["located"],
                            context_norm=m["context_norm"], logit_scale=m["logit_scale"], learn_scale=m["learn_scale"],
                            clip_grad=t["clip_grad"], uniform_start=m.get("uniform_start", False))
            secs[name] = round(time.time() - t0, 1)
            model, ckpt = load_model(path)
            out = predict(model, ckpt, frames)
            row["mae"][name] = float(np.abs(out["pred"] - angle).mean())
            row["mae_mean"] = float(np.abs(angle - ckpt["target_mean"]).mean())
            row["gradient_ratio"][name] = round(gradient_on_cause(model, frames, cause)["ratio"], 3)
            if "alpha" in out:
                a = out["alpha"].reshape(-1, out["alpha"].shape[-1])
                c = cause.reshape(-1, *frames.shape[-2:])
                pl = attention_placement(a, c, model.spec.grid)
                use = attention_use(model, ckpt, frames, angle, out["alpha"])
                row[name] = {"ratio": round(attention_on_cause(a, c, model.spec.grid)["ratio"], 3),
                             "band_rows": round(pl["band_rows"]["ratio"], 3),
                             "col_corr": None if pl["column_correlation"] is None else round(pl["column_correlation"], 3),
                             "entropy": round(use["entropy"], 3)}
        cnn = data / f"cnn-{ckey}" / "model.pt"
        if "cnn" not in row["mae"] and cnn.exists():
            model, ckpt = load_model(cnn)
            row["mae"]["cnn"] = float(np.abs(predict(model, ckpt, frames)["pred"] - angle).mean())
        if "cnn" in row["mae"] and "attention" in row["mae"]:
            row["gap"] = round((row["mae"]["attention"] - row["mae"]["cnn"]) / row["mae_mean"], 3)
        row["mae"] = {k: round(v * 1000, 2) for k, v in row["mae"].items()}
        row["seconds"] = secs
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
