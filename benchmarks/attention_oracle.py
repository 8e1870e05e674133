"""Issue 14: how far the attention-on-cause ratio can go, and what the regularizer charges for it.

On a driving test split (default: the pipeline's ``results/shards/driving/test``) with the
evaluation's own projection of cell attention onto pixels (``attention.causal.upsample``):
- the best attainable ratio with attention on one cell per frame (the metric is linear-fractional
  in the attention, so its maximum over the simplex is at a vertex: no attention map scores more),
  and with one fixed cell for every frame; uniform attention scores 1;
- the regularizer Σ_i (1 − Σ_t α_{t,i})² of a sequence of T steps over L cells: its floor
  (uniform, L(1 − T/L)²), its value when all attention stays on one cell and when it follows the
  best cell of each frame (the attention that scores the first bound), and, from a trained
  attention checkpoint (default ``results/models/attention_reg/model.pt``), its last epoch's
  regularizer and steering loss per sequence, both as trained (loss = fit + λ·reg).
Prints one JSON line.

    .venv/bin/python benchmarks/attention_oracle.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    """Parse the arguments, compute the bounds, print the JSON line."""
    from cnninterp.attention.causal import upsample
    from cnninterp.attention.model import ModelSpec
    from cnninterp.data.driving import load_split

    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=Path, default=root / "results/shards/driving/test")
    ap.add_argument("--checkpoint-config", type=Path, default=root / "results/models/attention_reg/config.json")
    args = ap.parse_args()
    test = load_split(args.shards, "test")
    seq_len = test["cause"].shape[1]
    cause = test["cause"].reshape(-1, *test["cause"].shape[-2:]).astype(np.float32)
    n, height, width = cause.shape
    grid = ModelSpec(kind="attention", height=height, width=width).grid  # the models' own cell grid
    cells = grid[0] * grid[1]
    share = float(cause.mean())
    masses = np.zeros((n, cells))  # mass on the cause of all attention on one cell, per frame
    for c in range(cells):
        one = np.zeros((1, cells))
        one[0, c] = 1.0
        masses[:, c] = (cause * upsample(one, grid, (height, width))[0]).sum(axis=(1, 2))
    best = masses.argmax(axis=1).reshape(-1, seq_len)  # the best cell of each frame, per sequence
    tracking = [float(((1 - np.bincount(b, minlength=cells)) ** 2).sum()) for b in best]
    out = {"frames": n, "size": [height, width], "grid": list(grid), "area_share": round(share, 6),
           "best_cell_per_frame_ratio": round(float(masses.max(axis=1).mean() / share), 3),
           "best_fixed_cell_ratio": round(float(masses.mean(axis=0).max() / share), 3),
           "regularizer_uniform": round(cells * (1 - seq_len / cells) ** 2, 3),
           "regularizer_one_fixed_cell": round((1 - seq_len) ** 2 + (cells - 1), 3),
           "regularizer_best_cell_per_frame": round(float(np.mean(tracking)), 3), "seq_len": seq_len}
    if args.checkpoint_config.is_file():
        ckpt = json.loads(args.checkpoint_config.read_text())
        last = ckpt["history"][-1]
        out["trained"] = {"reg_weight": ckpt["config"]["reg_weight"], "epoch": last["epoch"],
                          "regularizer": round(last["regularizer"], 3),
                          "steering_loss_per_sequence": round(last["mae_std"] * seq_len, 3)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
