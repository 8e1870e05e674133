"""Why does the steering attention not lie on the cause? Measurements, one hypothesis at a time.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/attention_diagnosis.py --out /tmp/attdiag \
        [--height 40 --width 80 --epochs 12 --reg 0.1 --lr 0.001 --seed 0 --kinds attention,cnn]

Trains the models through the package's own ``train_model`` on synthetic roads, then measures on the
held-out sequences:

- ``probe``: is the target's information local in the feature cube? A ridge regression (fit on the
  training sequences, scored on the test ones) from ONE feature cell's 64 channels to the angle,
  per cell; its R² per cell row, beside the R² from the mean feature over the cells (what uniform
  attention hands the LSTM) and from all cells concatenated. The look-ahead band's cell rows are
  named. If every cell predicts the angle about as well as the band's cells, the encoder has spread
  the cause over the whole cube and uniform attention loses nothing.
- ``saliency``: does the model's decision depend on the causal pixels? |∂û/∂pixel| summed over
  channels, as a distribution per frame, its mass on the causal mask over the mask's area share
  (the same ratio as ``attention_on_cause``, on the input instead of the attention).
- ``attention``: entropy / log L, the std of the attention logits over the cells, the on-cause
  ratio, and the gradient norm reaching the attention MLP (w, W_x, W_h) against the rest, on one
  training batch after training.
- ``history``: per-epoch training MAE (standardised units), to see a collapse.
- ``--probe-only``: no training; for He-initialised encoders (seeds 0 and 1, the model's own
  initialisation) the ridge R² of the contexts the decoder could get: the mean feature (uniform
  attention), the mean *located* feature [x, x·col, x·row] (``model.locate``), the same two under
  an oracle attention on the causal cells and under attention on the bottom two cell rows (the
  near road), and all cells flattened (what the CNN baseline's head sees).

Prints and writes <out>/diagnosis-<tag>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def ridge_r2(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray, lam: float = 1e-2) -> float:
    """Held-out R² of ridge regression. x float (N, F), y float (N,). Features standardised on train."""
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    a, b = (xtr - mu) / sd, (xte - mu) / sd
    a1, b1 = np.c_[a, np.ones(len(a))], np.c_[b, np.ones(len(b))]
    reg = lam * len(a) * np.eye(a1.shape[1])
    reg[-1, -1] = 0
    coef = np.linalg.solve(a1.T @ a1 + reg, a1.T @ ytr)
    resid = yte - b1 @ coef
    return float(1 - (resid**2).mean() / yte.var())


def features_of(model, frames: np.ndarray) -> np.ndarray:
    """float32 (S*T, L, D) feature cubes of uint8 frames (S, T, 3, H, W)."""
    import torch

    from cnninterp.attention.model import encode
    from cnninterp.attention.train import to_input

    out = []
    with torch.no_grad():
        for s in range(0, len(frames), 16):
            out.append(encode(model.encoder, to_input(frames[s : s + 16])).flatten(0, 1).numpy())
    return np.concatenate(out)


def cause_weights(cause: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """float (S*T, L): each frame's causal pixels pooled onto the feature grid, as a distribution
    (an oracle attention that lies exactly on the cause). cause uint8 (S, T, H, W)."""
    import torch
    import torch.nn.functional as F

    c = torch.as_tensor(cause.reshape(-1, 1, *cause.shape[2:]), dtype=torch.float32)
    w = F.adaptive_avg_pool2d(c, grid).flatten(1).numpy()
    return w / np.clip(w.sum(1, keepdims=True), 1e-12, None)


def probe(model, train: dict, test: dict, grid: tuple[int, int]) -> dict:
    """Per-cell ridge R² (see the module docstring), and R² of the context that uniform attention
    and an oracle attention on the causal cells would hand the decoder."""
    ftr, fte = features_of(model, train["frames"]), features_of(model, test["frames"])
    ytr, yte = train["angle"].reshape(-1).astype(np.float64), test["angle"].reshape(-1).astype(np.float64)
    per_cell = np.array([ridge_r2(ftr[:, i], ytr, fte[:, i], yte) for i in range(ftr.shape[1])]).reshape(grid)
    wtr, wte = cause_weights(train["cause"], grid), cause_weights(test["cause"], grid)
    oracle = ridge_r2(np.einsum("nl,nld->nd", wtr, ftr), ytr, np.einsum("nl,nld->nd", wte, fte), yte)
    return {"r2_oracle_cause_context": oracle,"r2_cell_by_row_mean": per_cell.mean(1).round(3).tolist(), "r2_cell_by_row_max": per_cell.max(1).round(3).tolist(),
            "r2_best_cell": float(per_cell.max()), "r2_median_cell": float(np.median(per_cell)),
            "r2_mean_feature": ridge_r2(ftr.mean(1), ytr, fte.mean(1), yte),
            "r2_all_cells": ridge_r2(ftr.reshape(len(ftr), -1), ytr, fte.reshape(len(fte), -1), yte, lam=1.0)}


def context_probe(model, train: dict, test: dict, grid: tuple[int, int]) -> dict:
    """Ridge R² (held out) of the decoder's possible contexts: plain or located (``model.locate``)
    features averaged uniformly, over the causal cells (oracle) or over the bottom two cell rows."""
    import torch

    from cnninterp.attention.model import locate

    ftr, fte = features_of(model, train["frames"]), features_of(model, test["frames"])
    ytr, yte = train["angle"].reshape(-1).astype(np.float64), test["angle"].reshape(-1).astype(np.float64)
    ltr, lte = (locate(torch.as_tensor(f)[None], grid)[0].numpy() for f in (ftr, fte))
    near = np.zeros(grid[0] * grid[1])
    near[-2 * grid[1]:] = 1.0 / (2 * grid[1])
    weights = {"uniform": (None, None), "oracle_cause": (cause_weights(train["cause"], grid), cause_weights(test["cause"], grid)),
               "near_road": (np.tile(near, (len(ftr), 1)), np.tile(near, (len(fte), 1)))}
    out = {"r2_all_cells": ridge_r2(ftr.reshape(len(ftr), -1), ytr, fte.reshape(len(fte), -1), yte, lam=1.0)}
    for name, (wtr, wte) in weights.items():
        for code, (a, b) in (("plain", (ftr, fte)), ("located", (ltr, lte))):
            ctr = a.mean(1) if wtr is None else np.einsum("nl,nld->nd", wtr, a)
            cte = b.mean(1) if wte is None else np.einsum("nl,nld->nd", wte, b)
            out[f"r2_{name}_{code}"] = ridge_r2(ctr, ytr, cte, yte)
    return out


def saliency(model, frames: np.ndarray, cause: np.ndarray) -> dict:
    """Input-gradient mass on the causal pixels over their area share (ratio 1: no preference)."""
    import torch

    from cnninterp.attention.train import to_input

    x = to_input(frames[:16]).requires_grad_(True)
    model(x)["pred"].sum().backward()
    g = x.grad.abs().sum(2)  # (S, T, H, W)
    g = (g / g.sum(dim=(2, 3), keepdim=True)).numpy()
    c = cause[:16].astype(np.float32)
    mass = float((g * c).sum(axis=(2, 3)).mean())
    return {"mass": mass, "area_share": float(c.mean()), "ratio": mass / float(c.mean())}


def attention_stats(model, test: dict, train: dict, grid) -> dict:
    """Entropy, logit spread, on-cause ratio and the gradient reaching the attention MLP."""
    import torch

    from cnninterp.attention.causal import attention_on_cause
    from cnninterp.attention.model import encode, steering_loss
    from cnninterp.attention.train import to_input

    frames = test["frames"][:16]
    with torch.no_grad():
        out = model(to_input(frames))
    alpha = out["alpha"].numpy()
    # the spread of step 0's logits over the cells, as the model scaled them (log-softmax differs
    # from the logits by one constant per row, so its spread is theirs)
    logit_std = float(np.log(np.clip(alpha[:, 0], 1e-30, None)).std(-1).mean())
    length = alpha.shape[-1]
    entropy = float((-(alpha * np.log(np.clip(alpha, 1e-12, None))).sum(-1)).mean() / np.log(length))
    cause = test["cause"][:16].astype(bool)
    on = attention_on_cause(alpha.reshape(-1, length), cause.reshape(-1, *cause.shape[2:]), grid)
    model.zero_grad()
    x = to_input(train["frames"][:8])
    y = torch.as_tensor((train["angle"][:8] - train["angle"].mean()) / train["angle"].std())
    steering_loss(model(x)["pred"], y).backward()
    att = [model.w.weight, model.w_x.weight, model.w_h.weight]
    gn = lambda ps: float(torch.sqrt(sum((p.grad**2).sum() for p in ps if p.grad is not None)))  # noqa: E731
    rest = [p for n, p in model.named_parameters() if not n.startswith(("w.", "w_x.", "w_h."))]
    return {"entropy": entropy, "peak": float(alpha.max(-1).mean() * length), "logit_std": logit_std,
            "on_cause": on, "grad_attention_mlp": gn(att), "grad_rest": gn(rest),
            "weight_w_norm": float(model.w.weight.detach().norm())}


def main() -> None:
    import torch

    from cnninterp.attention.train import load_model, train_model
    from cnninterp.data.driving import Camera, RoadSpec, generate_driving, load_split

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--height", type=int, default=40)
    p.add_argument("--width", type=int, default=80)
    p.add_argument("--seq-len", type=int, default=8)
    p.add_argument("--train", type=int, default=128)
    p.add_argument("--test", type=int, default=32)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--reg", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-coords", action="store_true")
    p.add_argument("--logit-scale", type=float, default=1.0)
    p.add_argument("--kinds", default="attention,cnn")
    p.add_argument("--tag", default="")
    p.add_argument("--reuse", action="store_true", help="measure the models already trained under this tag")
    p.add_argument("--located", action="store_true", help="the attention model's cells are [x, x*col, x*row] (ModelSpec.located)")
    p.add_argument("--context-norm", action="store_true", help="batch-normalised context (ModelSpec.context_norm)")
    p.add_argument("--probe-only", action="store_true", help="no training: context probes of He-initialised encoders")
    a = p.parse_args()
    torch.set_num_threads(1)
    out = Path(a.out)
    shards = out / f"driving-{a.height}x{a.width}-s{a.seed}"
    if not (shards / "manifest.json").exists():
        spec = RoadSpec(camera=Camera(height=a.height, width=a.width), seq_len=a.seq_len)
        generate_driving(shards, spec, a.train, a.test, seed=a.seed)
    train, test = load_split(shards, "train"), load_split(shards, "test")
    if a.probe_only:
        from cnninterp.attention.model import ModelSpec, build_model

        result = {}
        for seed in (0, 1):
            torch.manual_seed(seed)
            model = build_model(ModelSpec(kind="cnn", height=a.height, width=a.width))
            result[f"init_seed{seed}"] = context_probe(model, train, test, model.spec.grid)
            print(seed, json.dumps(result[f"init_seed{seed}"]), flush=True)
        (out / f"probe-{a.height}x{a.width}-s{a.seed}.json").write_text(json.dumps(result, indent=1))
        return
    tag = a.tag or f"{a.height}x{a.width}-e{a.epochs}-lr{a.lr}-reg{a.reg}-s{a.seed}"
    result = {"args": vars(a), "mae_mean_predictor": float(np.abs(test["angle"] - train["angle"].mean()).mean())}
    for kind in a.kinds.split(","):
        path = out / tag / kind / "model.pt"
        w, c = time.perf_counter(), time.process_time()
        if a.reuse and path.is_file():
            fit = {"history": load_model(path)[1]["history"]}
        else:
            fit = train_model(shards, path, kind, a.reg if kind == "attention" else 0.0, a.epochs, a.batch_size, a.lr, seed=a.seed,
                              device="cpu", coords=not a.no_coords, logit_scale=a.logit_scale,
                              located=a.located, context_norm=a.context_norm)
        secs = {"wall": round(time.perf_counter() - w, 1), "cpu": round(time.process_time() - c, 1)}
        model, ckpt = load_model(path)
        from cnninterp.attention.evaluate import predict

        pred = predict(model, ckpt, test["frames"])["pred"]
        r = {"train_seconds": secs, "mae": float(np.abs(pred - test["angle"]).mean()),
             "history_mae_std": [round(h["mae_std"], 3) for h in fit["history"]],
             "probe": probe(model, train, test, model.spec.grid),
             "saliency": saliency(model, test["frames"], test["cause"])}
        r["context_probe"] = context_probe(model, train, test, model.spec.grid)
        if kind == "attention":
            r["attention"] = attention_stats(model, test, train, model.spec.grid)
        result[kind] = r
        print(kind, json.dumps(r), flush=True)
    band_rows = np.nonzero(test["cause"].reshape(-1, a.height, a.width).any(axis=(0, 2)))[0]
    result["cause_rows"] = [int(band_rows.min()), int(band_rows.max())] if band_rows.size else []
    result["cause_cell_rows"] = sorted({int(r) // 8 for r in band_rows})
    (out / f"diagnosis-{tag}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k not in ("attention", "cnn")}))


if __name__ == "__main__":
    main()
