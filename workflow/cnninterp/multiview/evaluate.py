"""Evaluation of the three multi-view models on held-out poses, the DLT timing and the novel views.

Writes ``metrics.json`` with, at the top level:

- ``mpjpe_mm``: {baseline, fusion, canonical} on the ``test`` split (held-out poses, the rig's cameras);
- ``mpjpe_mm_unseen_camera``: the same on the ``unseen`` split (one camera moved to a position
  never used in training); {model: null} when the shards have no such split (Human3.6M's layout,
  ``data.h36m``, has train and test only), as are the unseen entries below;
- ``error_2d_px``: {split: {model: mean 2D error in crop pixels}};
- ``reprojection_px``: {split: {model: mean distance between each view's 2D joints and the
  reprojection of the triangulated joints}}: how far the views disagree (0 = consistent views,
  whose errors the DLT can no longer average out);
- ``dlt``: {sii_ms, svd_ms, speedup, max_abs_diff_mm}, each {noise px: value}, at batch × 17 joints,
  timed in ``dtype``, the one the models' triangulation uses;
- ``novel_view_px``: {in_plane, out_of_plane}: per angle, the canonical model's mean 2D error
  against the truth through the virtual camera, and ``unrotated_px``, the error of the angle-0
  decoding against the same truth (what a latent that ignored the rotation would score);
- ``parameters``, ``samples``.

Beside it: ``novel_in_plane.png`` and ``novel_out_of_plane.png`` (rows: test samples; columns:
the angles; truth grey, decoding red).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..atomic import write_json
from ..data import multiview as mvdata
from ..data.shards import read_manifest
from . import novel
from .model import KINDS, TRIANGULATION_DTYPE
from .timing import time_dlt
from .train import load_model, tensors

log = logging.getLogger(__name__)
FIGURES = {"in_plane": ("in", novel.IN_PLANE_DEG), "out_of_plane": ("out", novel.OUT_OF_PLANE_DEG)}


def mpjpe(pred, target) -> float:
    """Mean per-joint position error: mean of ‖pred − target‖₂ over samples and joints; (N, J, 3) arrays -> float."""
    return float(np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(target, np.float64), axis=-1).mean())


def reprojection_px(uv, X, P) -> float:
    """Mean ‖uv − π(P, X)‖ in pixels: uv (N, V, J, 2), X (N, J, 3) mm, P (N, V, 3, 4)."""
    Xh = np.concatenate([X, np.ones(X.shape[:-1] + (1,))], -1).astype(np.float64)
    x = np.einsum("nvij,nkj->nvki", P.astype(np.float64), Xh)
    return float(np.linalg.norm(uv - x[..., :2] / x[..., 2:], axis=-1).mean())


def predict(model, data: dict, batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """2D joints (N, V, J, 2) and triangulated 3D joints (N, J, 3) of ``model`` on a split's ``tensors``."""
    import torch

    from .model import triangulate

    uvs, Xs = [], []
    with torch.no_grad():
        for i in range(0, len(data["images"]), batch_size):
            uv = model(data["images"][i : i + batch_size], data["R"][i : i + batch_size])
            uvs.append(uv.numpy())
            Xs.append(triangulate(uv, data["P"][i : i + batch_size]).numpy())
    return np.concatenate(uvs), np.concatenate(Xs)


def evaluate(shards: str | Path, models: dict, out: str | Path, *, samples: int, dlt_batch: int, dlt_repeat: int,
             figure_rows: int, train_shards: str | Path | None = None) -> dict:
    """Metrics of ``models`` ({kind: model.pt}) on ``samples`` poses per split of ``shards``; write
    ``out`` and the figures beside it. ``train_shards``: the folder the models were trained on when
    it is not ``shards`` (the workflow's layout); each model must have been trained on it
    (``train.load_model``) and the two folders must belong together (``data.multiview.check_pair``);
    DataError otherwise, nothing written."""
    import torch

    from ..atomic import atomic_path
    from ..report.figures import save_rgb_png

    trained_on = shards if train_shards is None else train_shards
    mvdata.check_pair(trained_on, shards)
    loaded = {k: load_model(models[k], trained_on) for k in KINDS}
    result = {"mpjpe_mm": {}, "mpjpe_mm_unseen_camera": {}, "error_2d_px": {"test": {}, "unseen": {}},
              "reprojection_px": {"test": {}, "unseen": {}}, "samples": {}}
    raw = {}
    present = read_manifest(shards)["splits"]
    for split, key in (("test", "mpjpe_mm"), ("unseen", "mpjpe_mm_unseen_camera")):
        if split == "unseen" and split not in present:  # no moved camera in these shards: nothing to score
            result["samples"][split] = 0
            for table in (result[key], result["error_2d_px"][split], result["reprojection_px"][split]):
                table.update(dict.fromkeys(loaded))
            continue
        raw[split] = mvdata.load_split(shards, split, limit=samples)
        data = tensors(raw[split])
        result["samples"][split] = int(len(data["images"]))
        for kind, model in loaded.items():
            uv, X = predict(model, data)
            result[key][kind] = mpjpe(X, raw[split]["joints3d"])
            result["error_2d_px"][split][kind] = float(np.linalg.norm(uv - raw[split]["joints2d"], axis=-1).mean())
            result["reprojection_px"][split][kind] = reprojection_px(uv, X, data["P"].numpy())
    result["parameters"] = {k: int(sum(p.numel() for p in m.parameters())) for k, m in loaded.items()}
    timing = time_dlt(batch=dlt_batch, repeat=dlt_repeat, dtype=TRIANGULATION_DTYPE)
    result["dlt"] = {name: {px: r[name] for px, r in timing.items()} for name in ("sii_ms", "svd_ms", "speedup", "max_abs_diff_mm")}
    result["dlt"]["batch"] = [dlt_batch, 17]
    result["dlt"]["device"] = "cpu"
    result["dlt"]["dtype"] = TRIANGULATION_DTYPE
    result["dlt"]["threads"] = torch.get_num_threads()

    test = raw["test"]
    result["novel_view_px"] = {}
    out = Path(out)
    for name, (mode, angles) in FIGURES.items():
        pred, true = novel.novel_views(loaded["canonical"], test["images"], test["K"], test["R"], test["joints3d"], test["t"], mode, angles)
        err = np.linalg.norm(pred - true, axis=-1).mean(axis=(0, 2))  # per angle
        unrotated = np.linalg.norm(pred[:, :1] - true, axis=-1).mean(axis=(0, 2))
        result["novel_view_px"][name] = {"angles_deg": list(angles), "canonical_px": err.tolist(), "unrotated_px": unrotated.tolist()}
        image = novel.figure(pred[:figure_rows], true[:figure_rows], test["images"].shape[2])
        path = out.with_name(f"novel_{name}.png")
        with atomic_path(path) as tmp:
            save_rgb_png(image, tmp)
    write_json(out, result)
    log.info("multiview metrics: %s", result)
    return result
