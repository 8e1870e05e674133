"""Report section "Interpretable transformations": the metrics table, the full-turn figure, the paper's claims.

Reads ``results/eval/transform/metrics.json`` and ``turn_digits.npy`` (written by
``cnninterp transform evaluate``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TITLE = "Interpretable transformations"
TEMPLATE = "transform.html.j2"
SCALE = 3
GAP = 2
PAPER = (
    "Worrall et al. (ICCV 2017) report no single number for these quantities: they show rotated MNIST, "
    "Basel faces and ShapeNet chairs re-rendered by turning the latent (in plane and out of plane), "
    "and classification from rotation-invariant block norms on rotated MNIST; their claim is qualitative "
    "(smooth, correct re-rendering through a full turn, including angles not seen in training)."
)


def available(results: Path) -> bool:
    """Always offered (the registry also checks that metrics.json exists)."""
    return True


def render(ctx) -> dict:
    """Template data: metric rows per dataset and the full-turn figure (or a not-run note)."""
    from ..report.context import read_json

    if not ctx.config["transform"]["enabled"]:
        return {"enabled": False, "note": "not run (transform.enabled: false)"}
    folder = ctx.results / "eval" / "transform"
    m = read_json(folder / "metrics.json", "the transform metrics")
    rows = []
    for dataset, rec in m["reconstruction_mse"].items():
        ang = m["angle_error_deg"][dataset]
        inv = m["invariant_accuracy"][dataset]
        eq = m["equivariance_error"][dataset]
        rows.append({
            "dataset": dataset,
            "heldout": m.get("heldout_deg", {}).get(dataset),
            "lines": [
                ("reconstruction MSE, FTL (seen / held-out angles)", rec["ftl"]["seen"], rec["ftl"]["heldout"]),
                ("reconstruction MSE, θ-input baseline (seen / held-out)", rec["baseline"]["seen"], rec["baseline"]["heldout"]),
                ("equivariance error ‖e(x_θ) − F_θ e(x)‖/‖e(x)‖ (seen / held-out)", eq["seen"], eq["heldout"]),
                (f"angle error from latents, degrees (chance {ang['chance']:.0f}°) (seen / held-out)", ang["ftl"]["seen"], ang["ftl"]["heldout"]),
            ],
            "invariant": [("block norms of e(x)", inv["block_norms"], inv["features"]["block_norms"]),
                          ("raw pixels", inv["raw_pixels"], inv["features"]["raw_pixels"])],
        })
    figure = None
    turn_path = folder / "turn_digits.npy"
    if turn_path.is_file():
        turn = np.load(turn_path, allow_pickle=False)
        path, href = ctx.asset("transform", "turn_digits.png")
        from ..report.figures import save_rgb_png

        width, height = save_rgb_png(turn_image(turn), path)
        steps = turn.shape[1] - 1
        figure = {"href": href, "width": width, "height": height,
                  "angles": ", ".join(f"{360 * k // steps}°" for k in range(steps))}
    weight = ctx.config["transform"]["train"]["equivariance_weight"]
    return {"enabled": True, "rows": rows, "figure": figure, "paper": PAPER, "equivariance_weight": weight}


def turn_image(turn: np.ndarray) -> np.ndarray:
    """float (rows, cols, S, S) in [0, 1] -> uint8 (H, W, 3): tiles scaled ×SCALE, white gaps, the input column first."""
    rows, cols, s, _ = turn.shape
    tile = s * SCALE
    out = np.full((rows * (tile + GAP), cols * (tile + GAP), 3), 255, np.uint8)
    for r in range(rows):
        for c in range(cols):
            img = np.kron(np.clip(turn[r, c], 0, 1), np.ones((SCALE, SCALE)))
            px = (255 - img * 255).astype(np.uint8)
            out[r * (tile + GAP) : r * (tile + GAP) + tile, c * (tile + GAP) : c * (tile + GAP) + tile] = px[..., None]
    return out
