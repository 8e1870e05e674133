"""Report section "Interpretable CNNs": the metrics table, the Figure-1-like panel, the paper's claim.

Reads ``results/eval/icnn/metrics.json`` and ``figure.npz`` (written by ``cnninterp icnn evaluate``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TITLE = "Interpretable CNNs"
TEMPLATE = "icnn.html.j2"
SCALE = 3
GAP = 3
LANDMARK = (0, 255, 0)
PAPER = (
    "Zhang, Wu and Zhu (CVPR 2018) report that the filter loss lowers the location instability of the top "
    "conv layer's filters to about 0.55-0.65 of the ordinary network's (VGG-16: ILSVRC Part 0.144 → 0.085, "
    "Pascal-Part 0.139 → 0.096, CUB200 0.137 → 0.076), at a cost of 1-3 accuracy points in the single-category "
    "setting (VGG-16 on ILSVRC Part 98.58% → 96.67%)."
)


def available(results: Path) -> bool:
    """Always offered (the registry also checks that metrics.json exists)."""
    return True


def render(ctx) -> dict:
    """Template data: the metrics rows, the measured ratio, the figure (a switched-off method never gets here: the report renders its not-run note)."""
    from ..report.context import read_json

    folder = ctx.results / "eval" / "icnn"
    m = read_json(folder / "metrics.json", "the icnn metrics")
    li = m["location_instability"]
    rows = [
        ("location instability (all landmarks; lower = filters fire at one part)", li["icnn"], li["cnn"], 4),
        ("location instability (each filter's most stable landmark)", m["location_instability_best_part"]["icnn"], m["location_instability_best_part"]["cnn"], 4),
        ("test accuracy", m["accuracy"]["icnn"], m["accuracy"]["cnn"], 3),
        (f"part detectors of {m['filters']} filters (dissection, IoU > {m['settings']['iou_threshold']})", m["part_detectors"]["icnn"], m["part_detectors"]["cnn"], 0),
        ("mean best part IoU over filters (dissection)", m["mean_part_iou"]["icnn"], m["mean_part_iou"]["cnn"], 4),
    ]
    figure = None
    fig_path = folder / "figure.npz"
    if fig_path.is_file():
        from ..report.figures import save_rgb_png

        with np.load(fig_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        path, href = ctx.asset("icnn", "filters.png")
        width, height = save_rgb_png(figure_image(arrays), path)
        figure = {"href": href, "width": width, "height": height, "rows": int(len(arrays["icnn_filters"])), "cols": int(len(arrays["images"])),
                  "icnn_filters": arrays["icnn_filters"].tolist(), "cnn_filters": arrays["cnn_filters"].tolist()}
    ratio = li["icnn"] / li["cnn"] if li["cnn"] else float("nan")
    return {"rows": rows, "ratio": ratio, "figure": figure, "paper": PAPER, "metrics": m,
            "weight": ctx.config["icnn"]["train"]["filter_weight"], "detectors_per_part": m.get("detectors_per_part", {}),
            "filter_parts": filter_parts_sentence(m), "paper_parts": PAPER_PARTS,
            "source": "CUB-200-2011 birds against negatives" if m.get("data_source") == "cub-200-2011" else "synthetic objects of five known parts"}


PAPER_PARTS = "The paper: after training, each filter of the interpretable layer represents one object part, and different filters represent different parts."


def part_histogram(counts: dict) -> str:
    """'body 12, back_leg 3, head 1' from {part: filters}, largest first, zeros left out."""
    items = sorted(((c, p) for p, c in counts.items() if c), key=lambda t: (-t[0], t[1]))
    return ", ".join(f"{p} {c}" for c, p in items) or "none"


def filter_parts_sentence(m: dict) -> str | None:
    """One sentence on what the filters became (from metrics.json's ``filter_parts``), or None for
    metrics written before that key existed."""
    fp = m.get("filter_parts")
    if not fp:
        return None
    nets = {"icnn": "interpretable", "cnn": "ordinary"}
    best = "; ".join(f"{name} {part_histogram(fp[k]['best_landmark'])} ({fp[k]['distinct_best_landmarks']} distinct)" for k, name in nets.items())
    peak = "; ".join(f"{name} {part_histogram(fp[k]['under_peak'])}" for k, name in nets.items())
    share = "; ".join(f"{name} " + ", ".join(f"{p} {v:.2f}" for p, v in fp[k]["under_peak_share"].items() if v >= 0.005)
                      for k, name in nets.items())
    roles = "; ".join(f"{name} {fp[k]['roles']['dead']} / {fp[k]['roles']['object']} / {fp[k]['roles']['negative']}" for k, name in nets.items())
    obj = {k: fp[k]["location_instability_by_role"]["object"] for k in nets}
    obj_text = ", ".join(f"{name} {'n/a' if obj[k] is None else f'{obj[k]:.4f}'}" for k, name in nets.items())
    return (f"What the {m['filters']} filters became, by each filter's most stable landmark (the paper's choice): {best}. "
            f"The part under the peak, majority over each filter's top images (none = background): {peak}; "
            f"pooled over the object-preferring filters' top images: {share}. "
            f"Filters dead / object-preferring / negative-preferring: {roles}; location instability of the "
            f"object-preferring filters alone: {obj_text}.")


def tile(image: np.ndarray, amap: np.ndarray, peak: float, landmark: np.ndarray) -> np.ndarray:
    """One panel: image uint8 (S, S, 3) in dimmed gray, the map float (n, n) (scaled by ``peak``, nearest
    upsampling) added in red to yellow, ×SCALE, with the landmark (x, y) (image pixels; NaN = hidden) marked by a green cross."""
    s, n = image.shape[0], amap.shape[0]
    heat = np.kron(np.clip(amap / peak, 0, 1) if peak > 0 else np.zeros_like(amap), np.ones((s // n, s // n)))
    gray = image.astype(np.float64).mean(axis=2, keepdims=True) * 0.5
    out = np.concatenate([gray + 205 * heat[..., None], gray + 120 * heat[..., None] ** 2, gray], axis=2)
    out = np.kron(out, np.ones((SCALE, SCALE, 1)))
    if np.isfinite(landmark).all():
        x, y = int(landmark[0] * SCALE), int(landmark[1] * SCALE)
        for d in range(-4, 5):
            for yy, xx in ((y + d, x), (y, x + d)):
                if 0 <= yy < out.shape[0] and 0 <= xx < out.shape[1]:
                    out[yy, xx] = LANDMARK
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def figure_image(arrays: dict) -> np.ndarray:
    """uint8 (H, W, 3): the interpretable network's filters (rows) over the test objects (columns), a white
    band, then the ordinary network's; each row scaled by its own peak activation."""
    images = arrays["images"]
    blocks = []
    for kind in ("icnn", "cnn"):
        maps, marks = arrays[f"{kind}_maps"], arrays[f"{kind}_landmark"]
        for r in range(maps.shape[0]):
            peak = float(maps[r].max())
            tiles = [tile(images[c], maps[r, c], peak, marks[r, c]) for c in range(maps.shape[1])]
            row = np.full((tiles[0].shape[0], len(tiles) * (tiles[0].shape[1] + GAP) - GAP, 3), 255, np.uint8)
            for c, t in enumerate(tiles):
                row[:, c * (t.shape[1] + GAP) : c * (t.shape[1] + GAP) + t.shape[1]] = t
            blocks += [row, np.full((GAP, row.shape[1], 3), 255, np.uint8)]
        blocks.append(np.full((4 * GAP, blocks[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(blocks[:-1], axis=0)
