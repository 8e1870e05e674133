"""Report section "Interpretable transformations": the metrics table, the full-turn figure, the paper's claims.

Reads ``results/eval/transform/metrics.json`` (``cnninterp transform merge``), ``turn_digits.npy``
(``evaluate``) and ``turn_objects3d.npy`` (``evaluate-objects3d``, when the 3-D set ran).
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
    """Template data: metric rows per dataset and the full-turn figure (a switched-off method never gets here: the report renders its not-run note)."""
    from ..report.context import read_json

    folder = ctx.results / "eval" / "transform"
    m = read_json(folder / "metrics.json", "the transform metrics")
    rows = []
    for dataset, rec in m["reconstruction_mse"].items():
        ang = m["angle_error_deg"][dataset]
        inv = m["invariant_accuracy"][dataset]
        eq = m["equivariance_error"][dataset]
        lines = [
            ("reconstruction MSE, FTL (seen / held-out angles)", rec["ftl"]["seen"], rec["ftl"]["heldout"]),
            ("reconstruction MSE, θ-input baseline (seen / held-out)", rec["baseline"]["seen"], rec["baseline"]["heldout"]),
            ("equivariance error ‖e(x_θ) − F_θ e(x)‖/‖e(x)‖ (seen / held-out)", eq["seen"], eq["heldout"]),
        ]
        for factor, err in m.get("equivariance_error_blocks", {}).get(dataset, {}).items():
            lines.append((f"equivariance error of the {FACTOR_NAMES.get(factor, factor)} blocks alone ‖b_θ − R(θ)b‖/‖b‖ (seen / held-out)",
                          err.get("seen"), err.get("heldout")))
        if "ftl_azimuth_not_turned" in rec:
            lines.insert(1, ("reconstruction MSE, FTL with its azimuth blocks not turned (reference)",
                             rec["ftl_azimuth_not_turned"]["seen"], rec["ftl_azimuth_not_turned"]["heldout"]))
        if "seen" in ang["ftl"]:
            lines.append((f"angle error from latents, degrees (chance {ang['chance']:.0f}°) (seen / held-out)", ang["ftl"]["seen"], ang["ftl"]["heldout"]))
        else:
            for factor, err in ang["ftl"].items():
                lines.append((f"{FACTOR_NAMES.get(factor, factor)} angle error from its blocks, degrees (chance {ang['chance']:.0f}°) (seen / held-out)",
                              err.get("seen"), err.get("heldout")))
        rows.append({
            "dataset": dataset,
            "what": DATASET_NOTES.get(dataset, ""),
            "heldout": m.get("heldout_deg", {}).get(dataset),
            "lines": lines,
            "classes": "digit" if dataset == "digits" else "shape",
            "invariant": [(INVARIANT_NAMES[name], inv[name], inv["features"][name], inv.get("parameters", {}).get(name))
                          for name in INVARIANT_NAMES if name in inv],
            "chance": inv.get("chance"),
            "share": ", ".join(f"{FACTOR_NAMES.get(k, k)} {v:.1%}" for k, v in m.get("latent_share", {}).get(dataset, {}).items()),
        })
    figures = []
    from ..report.figures import save_rgb_png

    for dataset in ("digits", "objects3d"):
        turn_path = folder / f"turn_{dataset}.npy"
        if dataset not in m["reconstruction_mse"] or not turn_path.is_file():
            continue
        turn = np.load(turn_path, allow_pickle=False)
        path, href = ctx.asset("transform", f"turn_{dataset}.png")
        width, height = save_rgb_png(turn_image(turn), path)
        steps = turn.shape[1] - 1
        if dataset == "digits":
            caption = f"Test digits. First column: the input; then its latent turned by {', '.join(f'{360 * k // steps}°' for k in range(steps))} and decoded."
        else:
            start = m.get("turn", {}).get(dataset, {}).get("start_azimuth_deg", 0.0)
            arc = m.get("heldout_deg", {}).get(dataset) or [0.0, 0.0]
            held = [k for k in range(steps) if in_arc(start + 360.0 * k / steps, arc)]
            caption = (f"Test objects (instances not trained on), two rows each: the true renders at azimuth {start:.0f}° + 360°·k/{steps}, "
                       f"then the model's re-rendering of the first view with only its azimuth blocks turned by 360°·k/{steps}. "
                       f"First column: the input. Columns {', '.join(str(k + 2) for k in held) or 'none'} lie on the held-out azimuths "
                       f"{arc[0]:.0f}°–{arc[1]:.0f}° (never rendered for training).")
        figures.append({"href": href, "width": width, "height": height, "caption": caption, "dataset": dataset})
    tr = ctx.config["transform"]
    weight = tr["train"]["equivariance_weight"]
    obj = tr.get("objects3d", {})
    return {"rows": rows, "figures": figures, "paper": PAPER, "claims": claims(m), "equivariance_weight": weight,
            "equivariance_norm": tr["train"]["equivariance_norm"],
            "objects3d": obj if obj.get("enabled") and "objects3d" in m["reconstruction_mse"] else None}


def claims(m: dict) -> list[tuple[str, str]]:
    """(the paper's claim, what this run measured) rows from the merged metrics ``m``; a claim whose
    dataset did not run is left out."""
    out = []
    ang, rec, inv = m["angle_error_deg"], m["reconstruction_mse"], m["invariant_accuracy"]
    if "digits" in ang:
        a, r = ang["digits"]["ftl"], rec["digits"]
        out.append(("In plane (rotated MNIST): turning the latent by θ turns the re-rendered digit by θ, also at angles not "
                    "seen in training (shown as pictures, no number).",
                    f"digits: the angle read back from the latents is {a['seen']:.1f}° off on seen angles and {a['heldout']:.1f}° "
                    f"on held-out ones (chance {ang['digits']['chance']:.0f}°); reconstruction MSE {r['ftl']['seen']:.4f} / "
                    f"{r['ftl']['heldout']:.4f} vs the θ-input baseline's {r['baseline']['seen']:.4f} / {r['baseline']['heldout']:.4f}."))
    if "objects3d" in ang:
        a, r = ang["objects3d"]["ftl"]["azimuth"], rec["objects3d"]
        gain = 1 - r["ftl"]["seen"] / r["ftl_azimuth_not_turned"]["seen"]
        out.append(("Out of plane (ShapeNet chairs, Basel faces): turning the azimuth blocks re-renders the object from "
                    "another side, smoothly through a full turn.",
                    f"rendered polyhedra: the azimuth read from its blocks is {a['seen']:.0f}° off seen, {a['heldout']:.0f}° held out "
                    f"(chance {ang['objects3d']['chance']:.0f}°), so the latent turns with the object; the turned re-renderings' "
                    f"MSE is {gain:.0%} below leaving the azimuth blocks unturned (the figure shows them; on the default "
                    f"settings they were grey blobs, see below why)."))
    for dataset, v in inv.items():
        line = (f"{dataset}: block norms {v['block_norms']:.3f} vs {v['pixel_pca']:.3f} for the same classifier on as many pixel "
                f"features ({v['features']['block_norms']} inputs)")
        if "invariant_latent" in v:
            line += (f"; norms and identity part {v['invariant_latent']:.3f} vs {v['pixel_pca_invariant_latent']:.3f} "
                     f"({v['features']['invariant_latent']} inputs); all pixels {v['raw_pixels']:.3f}")
        out.append(("Block norms are rotation-invariant features: classification under rotation (rotated MNIST).", line + "."))
    return out


def in_arc(angle_deg: float, arc) -> bool:
    """Whether an angle (degrees, any value) lies on the arc [start, end) modulo 360°."""
    return (angle_deg - arc[0]) % 360.0 < (arc[1] - arc[0])


INVARIANT_NAMES = {
    "block_norms": "block norms of e(x) (rotation-invariant)",
    "pixel_pca": "pixels on as many principal axes (PCA of the training images): the same classifier, the same size",
    "invariant_latent": "block norms and the identity part of e(x) (all the FTL leaves invariant)",
    "pixel_pca_invariant_latent": "pixels on as many principal axes: the same size as the row above",
    "raw_pixels": "all pixels (a larger classifier, for reference)",
}
FACTOR_NAMES = {"inplane": "in-plane", "azimuth": "azimuth (out-of-plane)"}
DATASET_NOTES = {
    "digits": "scikit-learn's handwritten digits, turned in plane",
    "objects3d": "rendered polyhedra, turned in azimuth (out of plane; stored views) and rolled in plane (drawn in training); "
                 "held-out: target views on the held-out azimuth arc, of test objects",
}


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
