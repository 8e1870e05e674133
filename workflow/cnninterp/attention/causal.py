"""Causal filtering of attention maps (Kim & Canny 2017, section 3.3), and attention-on-cause scores.

Steps, per sequence:
1. ``attention_maps``: the attention weights α (T, L) on the h × w feature grid are upsampled
   bilinearly to the frame (H × W) and smoothed with a Gaussian of ``sigma`` pixels. The grid is
   registered on the cells' receptive-field centres: cell (r, c) of the encoder (three stride-2
   convolutions padded to keep the centre, ``STRIDE`` 8) is centred on pixel (8r, 8c), not on the
   middle of the 8 × 8 block 8r..8r+7 (3.5 px off, which half-pixel-centre resizing assumes).
2. ``find_blobs``: each frame's map is cut into connected regions (8-connectivity) above
   ``level`` × that frame's maximum. (The paper samples particles in proportion to attention and
   clusters them with DBSCAN over space and time; connected level sets are the deterministic
   counterpart and need no clustering parameters.)
3. ``blob_cells``: a blob's feature cells are those at least half covered by it (at least the
   most covered one); a cell's pixels are those nearer its centre than any other cell's.
4. ``causal_filter``: every blob is masked (its cells set to zero in its frame of the feature
   cube), the decoder is run once on all masked copies together, and a blob is kept when the
   output at its frame changes by more than ``threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

STRIDE = 8  # pixels between feature cells of the attention encoder; cell (r, c) is centred on pixel (STRIDE·r, STRIDE·c)


@dataclass
class Blob:
    """One attended region: its frame, pixels bool (H, W), feature cells bool (L,), the output
    change when it is masked, and whether causal filtering keeps it."""

    frame: int
    pixels: np.ndarray
    cells: np.ndarray
    delta: float = 0.0
    kept: bool = False


def _interpolation(n: int, cells: int, stride: int) -> np.ndarray:
    """float64 (n, cells): row y holds the linear-interpolation weights of the cells (centred on
    pixels 0, stride, 2·stride, ...) at pixel y; beyond the first and last centre the edge cell's value."""
    u = np.clip(np.arange(n) / stride, 0, cells - 1)
    lo = np.floor(u).astype(int)
    hi = np.minimum(lo + 1, cells - 1)
    weights = np.zeros((n, cells))
    np.add.at(weights, (np.arange(n), lo), 1 - (u - lo))
    np.add.at(weights, (np.arange(n), hi), u - lo)
    return weights


def upsample(alpha: np.ndarray, grid: tuple[int, int], size: tuple[int, int], stride: int = STRIDE) -> np.ndarray:
    """float (T, L) on the grid (h, w) -> float32 (T, H, W): bilinear between the cells' centres, cell
    (r, c) on pixel (stride·r, stride·c), the edge cells' values beyond them; each frame renormalised
    to sum 1 (a distribution over pixels)."""
    a = np.clip(np.asarray(alpha, np.float64).reshape(-1, *grid), 0, None)
    up = np.einsum("yh,thw,xw->tyx", _interpolation(size[0], grid[0], stride), a, _interpolation(size[1], grid[1], stride))
    up = up / np.maximum(up.sum(axis=(1, 2), keepdims=True), 1e-12)
    return up.astype(np.float32)


def attention_maps(alpha: np.ndarray, grid: tuple[int, int], size: tuple[int, int], sigma: float, stride: int = STRIDE) -> np.ndarray:
    """Upsampled (``upsample``) and smoothed attention: float32 (T, H, W)."""
    from scipy.ndimage import gaussian_filter

    up = upsample(alpha, grid, size, stride)
    if sigma > 0:
        up = np.stack([gaussian_filter(m, sigma, mode="nearest") for m in up])
    return up.astype(np.float32)


def find_blobs(maps: np.ndarray, level: float) -> list[tuple[int, np.ndarray]]:
    """(frame, bool (H, W)) for each connected region of ``maps[t] > level · max(maps[t])``, in frame
    order, then by label."""
    from scipy.ndimage import label

    blobs = []
    for t, m in enumerate(maps):
        labels, n = label(m > level * m.max(), structure=np.ones((3, 3), int))
        blobs += [(t, labels == k) for k in range(1, n + 1)]
    return blobs


def blob_cells(pixels: np.ndarray, grid: tuple[int, int], stride: int = STRIDE) -> np.ndarray:
    """bool (L,): the feature cells at least half covered by ``pixels`` (bool (H, W)); at least the
    most covered cell. Cell (r, c) covers the pixels nearest its centre (stride·r, stride·c): rows
    stride·r − stride/2 .. stride·r + stride/2 − 1 (the edge cells to the frame's edge), columns alike."""
    h, w = grid
    rows = np.clip((np.arange(pixels.shape[0]) + stride // 2) // stride, 0, h - 1)
    cols = np.clip((np.arange(pixels.shape[1]) + stride // 2) // stride, 0, w - 1)
    ids = (rows[:, None] * w + cols[None, :]).ravel()
    area = np.bincount(ids, minlength=h * w)
    cover = np.bincount(ids, weights=np.asarray(pixels, bool).ravel(), minlength=h * w) / np.maximum(area, 1)
    cells = cover >= 0.5
    if not cells.any():
        cells[int(cover.argmax())] = True
    return cells


def causal_filter(features, decode: Callable, alpha: np.ndarray, grid: tuple[int, int], size: tuple[int, int],
                  level: float = 0.5, sigma: float = 2.0, threshold: float = 0.1, stride: int = STRIDE) -> list[Blob]:
    """Blobs of one sequence's attention, each with its effect on the output and kept/dropped.

    features: float tensor (T, L, D); decode: float tensor (N, T, L, D) -> float tensor (N, T) (the
    output for N feature cubes at once); alpha: float (T, L). ``threshold`` is in the decoder's
    output units. All blobs go through ``decode`` in one call (N = 1 + number of blobs).
    """
    import torch

    maps = attention_maps(alpha, grid, size, sigma, stride)
    blobs = [Blob(t, px, blob_cells(px, grid, stride)) for t, px in find_blobs(maps, level)]
    t_len, length = features.shape[:2]
    keep = torch.ones(len(blobs) + 1, t_len, length, dtype=features.dtype)
    for k, blob in enumerate(blobs, start=1):
        keep[k, blob.frame, torch.as_tensor(blob.cells)] = 0
    with torch.no_grad():
        out = decode(features[None] * keep[..., None])
    for k, blob in enumerate(blobs, start=1):
        blob.delta = float((out[k, blob.frame] - out[0, blob.frame]).abs())
        blob.kept = blob.delta > threshold
    return blobs


def attention_on_cause(alpha: np.ndarray, cause: np.ndarray, grid: tuple[int, int], stride: int = STRIDE) -> dict:
    """Mean attention mass inside the causal mask, the mask's mean share of the frame, their ratio.

    alpha float (N, L) per frame; cause uint8/bool (N, H, W). The attention is upsampled to pixels
    (``upsample``, a distribution per frame). A ratio of 1 is what attention spread evenly gets.
    """
    up = upsample(alpha, grid, cause.shape[1:], stride)
    c = cause.astype(np.float32)
    mass = float((up * c).sum(axis=(1, 2)).mean())
    share = float(c.mean())
    return {"mass": mass, "area_share": share, "ratio": mass / share if share > 0 else float("nan")}


def attention_placement(alpha: np.ndarray, cause: np.ndarray, grid: tuple[int, int], stride: int = STRIDE) -> dict:
    """Where the attention lies relative to the cause, split into depth and side (a diagnosis beside
    ``attention_on_cause``, whose mask is the thin markings only).

    alpha float (N, L) per frame; cause uint8/bool (N, H, W). Returns
    - ``band_rows``: {mass, area_share, ratio}: attention mass (upsampled as in ``attention_on_cause``)
      on the image rows that hold causal pixels in that frame (the look-ahead band's depth, whole
      width), those rows' share of the frame, and the ratio (1 = no preference for the band's depth);
    - ``column_correlation``: Pearson correlation over frames between the attention's column centroid
      and the causal pixels' column centroid (+1: the attention follows the markings sideways, −1:
      it moves the other way; frames without causal pixels left out; None if fewer than 3).
    """
    up = upsample(alpha, grid, cause.shape[1:], stride)
    c = cause.astype(bool)
    rows = c.any(axis=2)  # (N, H)
    mass = float((up.sum(axis=2) * rows).sum(axis=1).mean())
    share = float(rows.mean())
    cols = np.arange(c.shape[2], dtype=np.float64)
    has = c.any(axis=(1, 2))
    corr = None
    if has.sum() >= 3:
        att_col = (up.sum(axis=1) * cols).sum(axis=1)[has]
        counts = c.sum(axis=1)[has].astype(np.float64)
        cause_col = (counts * cols).sum(axis=1) / counts.sum(axis=1)
        if att_col.std() > 1e-6 and cause_col.std() > 1e-6:  # pixels; below that it is float rounding of a constant
            corr = float(np.corrcoef(att_col, cause_col)[0, 1])
    return {"band_rows": {"mass": mass, "area_share": share, "ratio": mass / share if share > 0 else float("nan")},
            "column_correlation": corr}


def blob_scores(blobs: list[Blob], causal_region: np.ndarray) -> tuple[int, int, int]:
    """(kept causal, kept, causal) over blobs; a blob is causal when more than half of its pixels lie
    in ``causal_region`` bool (T, H, W)."""
    kept_causal = kept = causal = 0
    for b in blobs:
        is_causal = causal_region[b.frame][b.pixels].mean() > 0.5
        causal += is_causal
        kept += b.kept
        kept_causal += is_causal and b.kept
    return kept_causal, kept, causal
