"""A brute-force Network Dissection: plain loops over images, units and concepts.

Written straight from the paper's formula so the engine can be checked against it; slow on
purpose. Activations are float32 numpy arrays (N, U, h, w); seg is (N, L, sh, sw) label numbers;
image_labels is a list (per image) of whole-image label numbers; primary maps a label number to
its primary category index (-1: none).
"""

import numpy as np


def thresholds(acts, q):
    """np.quantile(a_k, 1 - q) per unit over all images and positions."""
    n, u = acts.shape[:2]
    return np.array([np.quantile(acts[:, k].ravel().astype(np.float64), 1 - q) for k in range(u)], dtype=np.float32)


def upsample(map2d, size):
    """One raw map (h, w) bilinearly upsampled (align_corners=False, half-pixel centres) to size.

    Evaluated per output pixel in float64 as (1-ly)*((1-lx)*x00 + lx*x01) + ly*((1-lx)*x10 + lx*x11),
    the order the engine documents, so the two agree bit for bit.
    """
    x = np.asarray(map2d, dtype=np.float64)
    h, w = x.shape
    out = np.empty(size)
    for r in range(size[0]):
        sy = max((r + 0.5) * (h / size[0]) - 0.5, 0.0)
        y0 = min(int(np.floor(sy)), h - 1)
        y1, ly = min(y0 + 1, h - 1), sy - y0
        for c in range(size[1]):
            sx = max((c + 0.5) * (w / size[1]) - 0.5, 0.0)
            x0 = min(int(np.floor(sx)), w - 1)
            x1, lx = min(x0 + 1, w - 1), sx - x0
            out[r, c] = (1 - ly) * ((1 - lx) * x[y0, x0] + lx * x[y0, x1]) + ly * ((1 - lx) * x[y1, x0] + lx * x[y1, x1])
    return out


def label_mask(seg_x, image_labels_x, c):
    """L_c(x): union over layers of pixels labelled c, or the whole image for a whole-image label."""
    if c in image_labels_x:
        return np.ones(seg_x.shape[1:], dtype=bool)
    return (seg_x == c).any(0)


def dissect(acts, seg, image_labels, primary, num_categories, T, denominator):
    """Return (iou, inter, union, area) with iou (U, C+1) from loops over images, units, concepts."""
    n, u = acts.shape[:2]
    c1 = len(primary)
    size = seg.shape[2:]
    inter = np.zeros((u, c1), np.int64)
    act = np.zeros((u, num_categories), np.int64)
    area = np.zeros(c1, np.int64)
    for x in range(n):
        present = set(np.unique(seg[x]).tolist()) | set(image_labels[x])
        present.discard(0)
        masks = {c: label_mask(seg[x], image_labels[x], c) for c in present}
        for c, m in masks.items():
            area[c] += int(m.sum())
        cats_in_image = {int(primary[c]) for c in present if primary[c] >= 0}
        whole_cats = {int(primary[c]) for c in image_labels[x] if primary[c] >= 0}
        for k in range(u):
            M = upsample(acts[x, k], size) > T[k]
            size_m = int(M.sum())
            for c, m in masks.items():
                inter[k, c] += int((M & m).sum())
            for cat in range(num_categories):
                if denominator == "original":
                    counted = cat in cats_in_image
                else:
                    touched = any(primary[c] == cat and (M & m).any() for c, m in masks.items() if c not in image_labels[x])
                    counted = touched or cat in whole_cats
                if counted:
                    act[k, cat] += size_m
    iou = np.zeros((u, c1))
    union = np.zeros((u, c1), np.int64)
    for k in range(u):
        for c in range(1, c1):
            if primary[c] < 0:
                continue
            union[k, c] = act[k, primary[c]] + area[c] - inter[k, c]
            iou[k, c] = inter[k, c] / union[k, c] if union[k, c] > 0 else 0.0
    return iou, inter, union, area
