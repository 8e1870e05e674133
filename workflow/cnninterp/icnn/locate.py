"""Where a filter fires, in image coordinates, and its location instability on the parts data.

Mapping back: the top layer's n×n map covers the S×S image with stride S/n (two 2× poolings, 'same'
padding), so map cell (i, j) is centred on the image point ((j + ½)·S/n, (i + ½)·S/n) in pixel units
(pixel k covers [k, k + 1)), the centre of its receptive field up to the half-pixel offset of the
poolings. The inferred location of a filter on an image is that point for its argmax cell.
"""

from __future__ import annotations

import math

import numpy as np

from .metrics import location_instability


def argmax_points(maps: np.ndarray, image_size: int) -> np.ndarray:
    """maps float (N, F, n, n) -> float64 (N, F, 2): the (x, y) image point of each map's argmax cell."""
    n_img, f, n, _ = maps.shape
    k = maps.reshape(n_img, f, n * n).argmax(axis=2)
    stride = image_size / n
    return np.stack([(k % n + 0.5) * stride, (k // n + 0.5) * stride], axis=-1)


def top_images(maps: np.ndarray, candidates: np.ndarray, m: int) -> np.ndarray:
    """int64 (F, M): per filter the indices (into N) of the ``m`` candidate images with the highest peak
    activation, highest first (ties by index). maps float (N, F, n, n); candidates bool (N,)."""
    peak = maps.reshape(maps.shape[0], maps.shape[1], -1).max(axis=2)  # (N, F)
    idx = np.flatnonzero(candidates)
    m = min(m, idx.size)
    order = np.argsort(-peak[idx], axis=0, kind="stable")[:m]  # (M, F)
    return idx[order].T


def filter_instability(maps: np.ndarray, landmarks: np.ndarray, visible: np.ndarray, candidates: np.ndarray,
                       image_size: int, top: int, best: int) -> dict:
    """Location instability of every filter and their mean.

    maps float (N, F, n, n); landmarks float (N, P, 2) (x, y); visible bool (N, P); candidates bool (N,)
    (the images of the filters' category). Per filter: its ``top`` candidate images by peak activation;
    per landmark, std over those images of ‖inferred − landmark‖ / diagonal (S·√2); the filter's score
    is the mean over its ``best`` most stable landmarks (``best`` = P: all landmarks). Returns
    ``mean`` (float), ``per_filter`` float64 (F,), ``best_landmark`` int64 (F,) (each filter's most
    stable landmark), ``images`` (M), ``chosen`` int64 (F, M) the top images, ``inferred`` float64 (F, M, 2)
    the inferred (x, y) on them.
    """
    points = argmax_points(maps, image_size)  # (N, F, 2)
    chosen = top_images(maps, candidates, top)  # (F, M)
    f_idx = np.arange(maps.shape[1])[:, None]
    inferred = points[chosen, f_idx]  # (F, M, 2)
    lm = landmarks[chosen]  # (F, M, P, 2)
    vis = visible[chosen]  # (F, M, P)
    diag = image_size * math.sqrt(2)
    per = np.array([location_instability(inferred[f : f + 1], lm[f : f + 1], vis[f : f + 1], diag, best) for f in range(maps.shape[1])])
    per_landmark = np.full((maps.shape[1], landmarks.shape[1]), np.inf)
    for f in range(maps.shape[1]):
        for p in range(landmarks.shape[1]):
            if vis[f, :, p].sum() >= 2:
                per_landmark[f, p] = location_instability(inferred[f : f + 1], lm[f : f + 1, :, p : p + 1], vis[f : f + 1, :, p : p + 1], diag)
    return {"mean": float(per.mean()), "per_filter": per, "best_landmark": per_landmark.argmin(axis=1), "images": int(chosen.shape[1]),
            "chosen": chosen, "inferred": inferred}


def peak_parts(inferred: np.ndarray, chosen: np.ndarray, seg: np.ndarray, num_parts: int) -> dict:
    """What lies under each filter's peak: the part mask at the inferred location on its top images.

    inferred float (F, M, 2) (x, y) image points (``filter_instability``'s), chosen int (F, M) their
    image indices, seg uint (N, S, S) part label maps (0 none, p + 1 part p). Returns ``counts``
    int64 (F, P + 1): per filter how many of its top images have label k at the peak (column 0: no
    part), ``label`` int64 (F,) the most frequent label (ties: the lower), ``share`` float64 (F,) its fraction.
    """
    size = seg.shape[1]
    cols = np.clip(np.floor(inferred[..., 0]).astype(np.int64), 0, size - 1)
    rows = np.clip(np.floor(inferred[..., 1]).astype(np.int64), 0, size - 1)
    labels = seg[chosen, rows, cols].astype(np.int64)  # (F, M)
    counts = np.stack([np.bincount(row, minlength=num_parts + 1) for row in labels])
    label = counts.argmax(axis=1)
    return {"counts": counts, "label": label, "share": counts[np.arange(len(label)), label] / labels.shape[1]}


ROLES = ("dead", "object", "negative")
DEAD_FRACTION = 0.01


def filter_roles(maps: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """Each filter's role, int64 (F,) indexing ``ROLES``, from maps float (N, F, n, n) and objects bool (N,)
    (both classes present): ``dead`` if its peak over the object images is at most ``DEAD_FRACTION`` of the
    largest filter's (its argmax is then the first cell, whatever the image); else ``object`` if its mean
    per-image peak is higher on the object images than on the others, ``negative`` otherwise.
    DataError if either class is absent (the comparison would be against an empty mean)."""
    from ..errors import DataError

    objects = np.asarray(objects, bool)
    if objects.all() or not objects.any():
        raise DataError(f"filter_roles: {int(objects.sum())} object and {int((~objects).sum())} negative images; "
                        "the roles compare the two classes, so both must be present")
    peaks = maps.reshape(maps.shape[0], maps.shape[1], -1).max(axis=2)  # (N, F)
    top = peaks[objects].max(axis=0)
    dead = top <= DEAD_FRACTION * top.max()
    prefers_objects = peaks[objects].mean(axis=0) > peaks[~objects].mean(axis=0)
    return np.where(dead, 0, np.where(prefers_objects, 1, 2)).astype(np.int64)