"""Report section "Multi-view pose": the MPJPE table, DLT timing, novel-view figures, the paper's claims.

Reads ``results/eval/multiview/metrics.json`` and the ``novel_*.png`` figures beside it (written
by ``cnninterp multiview evaluate``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

TITLE = "Multi-view pose"
TEMPLATE = "multiview.html.j2"
PAPER = (
    "Remelli et al. (CVPR 2020) report an MPJPE of 30.2 mm for canonical fusion on Human3.6M (21.0 mm with extra 2D "
    "training data) and 27.5 mm on TotalCapture, below their per-view baseline and their fusion without camera "
    "rotations; their DLT by shifted inverse iteration (B = AᵀA + 0.001·I, 2 iterations) matches SVD and is claimed up "
    "to two orders of magnitude faster on GPU (their benchmark does not synchronise CUDA). They show novel views of the "
    "canonical representation rotated in plane (0–30°) and out of plane (0–180°)."
)
NAMES = {"baseline": "Baseline (views independent, 2D + DLT)", "fusion": "Fusion (no camera rotations)",
         "canonical": "Canonical fusion (FTL with the camera rotations)"}


def available(results: Path) -> bool:
    """Always offered (the registry also checks that metrics.json exists)."""
    return True


def render(ctx) -> dict:
    """Template data: MPJPE rows, DLT rows, novel-view rows and figures (a switched-off method never gets here: the report renders its not-run note)."""
    from ..report.context import read_json
    from ..report.figures import png_size

    folder = ctx.results / "eval" / "multiview"
    m = read_json(folder / "metrics.json", "the multiview metrics")
    rows = [{"name": NAMES.get(k, k), "test": m["mpjpe_mm"][k], "unseen": m["mpjpe_mm_unseen_camera"][k],
             "px": m["error_2d_px"]["test"][k], "parameters": m["parameters"][k]} for k in m["mpjpe_mm"]]
    dlt = m["dlt"]
    dlt_rows = [{"noise": px, **{k: dlt[k][px] for k in ("sii_ms", "svd_ms", "speedup", "max_abs_diff_mm")}} for px in dlt["sii_ms"]]
    figures = []
    for name, title in (("in_plane", "in plane, Rz"), ("out_of_plane", "out of plane, φ")):
        src = folder / f"novel_{name}.png"
        nv = m["novel_view_px"][name]
        entry = {"title": title, "angles": nv["angles_deg"], "canonical": nv["canonical_px"], "unrotated": nv["unrotated_px"]}
        entry.update(href=None, width=None, height=None, file=src.name)
        if src.is_file():
            path, href = ctx.asset("multiview", src.name)
            shutil.copyfile(src, path)
            entry["width"], entry["height"] = png_size(path)
            entry["href"] = href
        figures.append(entry)
    unseen = bool(m["samples"].get("unseen")) and any(r["unseen"] is not None for r in rows)
    return {"rows": rows, "dlt": dlt_rows, "dlt_batch": dlt.get("batch"), "dlt_dtype": dlt.get("dtype", "float32"), "figures": figures,
            "samples": m["samples"], "paper": PAPER, "unseen": unseen, "data": data_source(ctx.config.get("multiview", {}))}


def data_source(block: dict) -> dict:
    """What the evaluated data was, from the config's ``multiview`` block: ``{"h36m": bool, "subjects":
    "S9, S11"}`` (the test subjects of a Human3.6M-style root, ``data.source: h36m``; empty for the
    synthetic rig, also when the block has no ``data`` key)."""
    data = block.get("data", {})
    if data.get("source", "synthetic") != "h36m":
        return {"h36m": False, "subjects": ""}
    return {"h36m": True, "subjects": ", ".join(data.get("h36m", {}).get("test_subjects", []))}
