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
            zero = ang.get("zero_guess", {})
            for factor, err in ang["ftl"].items():
                chance, how = factor_chance(m, dataset, factor)
                name = FACTOR_NAMES.get(factor, factor)
                lines.append((f"{name} angle error from its blocks, degrees (chance {chance:.0f}°: {how}) (seen / held-out)",
                              err.get("seen"), err.get("heldout")))
                if factor in zero:
                    lines.append((f"{name} angle error of always guessing 0°, degrees (reference) (seen / held-out)",
                                  zero[factor].get("seen"), zero[factor].get("heldout")))
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
        out.append(("Out of plane (ShapeNet chairs, Basel faces): turning the azimuth blocks re-renders the object from "
                    "another side, smoothly through a full turn.", objects3d_claim(m)))
    for dataset, v in inv.items():
        line = (f"{dataset}: block norms {v['block_norms']:.3f} vs {v['pixel_pca']:.3f} for the same classifier on as many pixel "
                f"features ({v['features']['block_norms']} inputs)")
        if "invariant_latent" in v:
            line += (f"; norms and identity part {v['invariant_latent']:.3f} vs {v['pixel_pca_invariant_latent']:.3f} "
                     f"({v['features']['invariant_latent']} inputs); all pixels {v['raw_pixels']:.3f}")
        out.append(("Block norms are rotation-invariant features: classification under rotation (rotated MNIST).", line + "."))
    return out


def objects3d_claim(m: dict) -> str:
    """What the run measured for the out-of-plane claim, from the merged metrics ``m`` (dataset
    ``objects3d``): the azimuth error read from its blocks (seen / held-out) against chance and the
    always-0 guess, and the turned re-renderings' MSE against leaving the azimuth blocks unturned on
    both splits. "The latent turns with the object" is said only of a split whose error is below both
    references; the MSE change is "below" or "above" by its sign."""
    ang, rec = m["angle_error_deg"]["objects3d"], m["reconstruction_mse"]["objects3d"]
    a = ang["ftl"]["azimuth"]
    chance, _ = factor_chance(m, "objects3d", "azimuth")
    zero = ang.get("zero_guess", {}).get("azimuth", {})
    splits = [s for s in ("seen", "heldout") if a.get(s) is not None]
    turns = {s: a[s] < chance and (zero.get(s) is None or a[s] < zero[s]) for s in splits}
    ref = f"chance {chance:.0f}°"
    if zero:
        ref += "; always guessing 0°: " + ", ".join(f"{zero[s]:.0f}° {SPLIT_WORDS[s]}" for s in splits if zero.get(s) is not None)
    text = (f"rendered polyhedra: the azimuth read from its blocks is "
            + ", ".join(f"{a[s]:.0f}°{' off' if i == 0 else ''} {SPLIT_WORDS[s]}" for i, s in enumerate(splits)) + f" ({ref}), ")
    if splits and all(turns.values()):
        text += "so the latent turns with the object" + (", also on the held-out azimuths" if "heldout" in turns else "")
    elif any(turns.values()):
        yes = [SPLIT_NAMES[s] for s in splits if turns[s]]
        no = [SPLIT_NAMES[s] for s in splits if not turns[s]]
        text += (f"so the latent turns with the object on the {' and '.join(yes)} azimuths but not on the "
                 f"{' and '.join(no)} ones (there it is not below both chance and always guessing 0°)")
    else:
        text += "not below both chance and always guessing 0°: the latent does not turn with the object"
    change = []
    for s in ("seen", "heldout"):
        turned, still = rec["ftl"].get(s), rec.get("ftl_azimuth_not_turned", {}).get(s)
        if turned is None or not still:
            continue
        diff = turned / still - 1
        change.append(f"{abs(diff):.0%} {'below' if diff < 0 else 'above'}"
                      + (" leaving the azimuth blocks unturned" if not change else "")
                      + f" on {SPLIT_NAMES[s]} azimuths ({turned:.4f} vs {still:.4f})")
    if change:
        text += "; the turned re-renderings' MSE is " + ", ".join(change)
    return text + " (the figure shows them; on the default settings they were grey blobs, see below why)."


def roll_chance_deg(range_deg: float) -> float:
    """Mean angle error (degrees) of a random guess of a relative roll θ = β − α, with α, β and the
    guess's own two rolls drawn uniformly on [−r, r] (``range_deg`` r in [0, 180]): the error is the
    sum X of four independent uniforms, wrapped to (−180°, 180°]. From the Fourier series of |x| on
    the circle, E|wrap X| = π/2 − (4/π) Σ_{k odd} E[cos kX] / k², with E[cos kX] = sinc(k r)⁴; for
    r ≤ 45° (no wrap) this is 14 r / 15, for r = 180° the uniform guess's 90°."""
    rho = np.radians(float(range_deg))
    k = np.arange(1, 200_000, 2, dtype=np.float64)
    terms = np.sinc(k * rho / np.pi) ** 4 / k**2
    return float(np.degrees(np.pi / 2 - 4 / np.pi * terms.sum()))


def factor_chance(m: dict, dataset: str, factor: str) -> tuple[float, str]:
    """(chance level in degrees, how it is defined) of the angle error of ``factor`` in ``dataset``:
    the roll of a dataset with ``inplane_range_deg`` r is a relative roll, so a guess drawn like it
    (``roll_chance_deg``); every other factor turns through the full circle, where a guess uniform on
    the circle errs by 90° on average (the metrics' ``chance``)."""
    r = m.get("inplane_range_deg", {}).get(dataset)
    if factor == "inplane" and r is not None and r < 180:
        return roll_chance_deg(r), f"a random guess drawn like the true roll difference, both rolls uniform on ±{r:.0f}°"
    return float(m["angle_error_deg"][dataset]["chance"]), "a guess uniform on the circle"


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
SPLIT_WORDS = {"seen": "seen", "heldout": "held out"}
SPLIT_NAMES = {"seen": "seen", "heldout": "held-out"}
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
