"""Per-batch IoU tallies of Network Dissection; every count is a sum, so shards add up.

Conventions: concepts are label numbers 0..C (0 = unlabeled, never counted); ``primary`` maps a
label number to its primary category index (-1 for none). For one layer with thresholds T (U,):
- ``inter[u, c]``: pixels where unit u's upsampled map exceeds T_u and label c is present
  (a pixel-level label in any layer, or a whole-image label, which covers the whole image);
- ``act_original[u, k]``: active pixels of u in images that hold any label of primary category k;
- ``act_lite[u, k]``: active pixels of u in images where u's active region touches a pixel of
  primary category k, or the image has a whole-image label of primary category k;
- ``area[c]`` (per dataset, not per layer): pixels of label c over all images (full image for
  whole-image labels).
IoU[u, c] = inter / (act[u, primary(c)] + area[c] - inter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK_PIXELS = 1 << 24  # upsampled pixels processed at once (bounds memory per chunk)


@dataclass
class LabelBatch:
    """A batch's labels on the device, ready for counting.

    ``size`` (sh, sw); ``image_labels`` float64 (B, C+1): 1 where the image has that whole-image
    label; ``has_category`` float64 (B, K): images holding any label of primary category k;
    ``image_category`` bool (B, K): images with a whole-image label of primary category k;
    ``seg`` int64 (B, L, sh, sw): pixel labels with a label repeated at a pixel in a later layer,
    or also given as a whole-image label, set to 0 (so each label counts once per pixel);
    ``area`` int64 (C+1,): each label's pixels in the batch (whole-image labels: sh*sw per image).
    """

    size: tuple
    image_labels: object
    has_category: object
    image_category: object
    seg: object
    area: object


def dedup_layers(seg: np.ndarray) -> np.ndarray:
    """Zero a pixel's label in layer l when an earlier layer holds the same label there.

    Takes and returns an integer array (B, L, sh, sw); afterwards each label counts once per pixel.
    """
    out = seg.copy()
    for layer in range(1, seg.shape[1]):
        same = (seg[:, layer : layer + 1] == seg[:, :layer]).any(1)
        out[:, layer][same] = 0
    return out


def make_label_batch(seg_np: np.ndarray, image_labels: list[list[int]], primary, num_labels: int, num_categories: int, device) -> LabelBatch:
    """Build a LabelBatch from uint16 seg (B, L, sh, sw), per-image whole-image label lists and
    ``primary`` (int64 tensor (C+1,) of category indices, -1 for none).

    A label's mask in an image is the union of its pixels over all layers, or the whole image
    when it is also a whole-image label of that image.
    """
    import torch

    b, _, sh, sw = seg_np.shape
    seg = dedup_layers(seg_np)
    primary_np = primary.cpu().numpy()
    whole = np.zeros((b, num_labels), dtype=np.float64)
    for i in range(b):
        if image_labels[i]:
            numbers = np.asarray(image_labels[i], dtype=np.int64)
            whole[i, numbers] = 1.0
            # a whole-image label already covers every pixel: drop its pixel-level copies
            seg[i][np.isin(seg[i], numbers)] = 0
    seg = seg.astype(np.int64)
    # per image, which labels occur: one bincount over (image, label) pairs
    occurs = np.bincount((np.arange(b)[:, None] * num_labels + seg.reshape(b, -1)).ravel(), minlength=b * num_labels)
    occurs = occurs.reshape(b, num_labels)
    area = occurs.sum(0)
    area[0] = 0
    area += (whole.sum(0) * sh * sw).astype(np.int64)
    has_cat = np.zeros((b, num_categories), dtype=bool)
    image_cat = np.zeros((b, num_categories), dtype=bool)
    for flags, table in ((has_cat, occurs), (image_cat, whole)):
        rows, labels = np.nonzero(table)
        ok = (labels > 0) & (primary_np[labels] >= 0)
        flags[rows[ok], primary_np[labels[ok]]] = True
    has_cat |= image_cat
    return LabelBatch(
        (sh, sw),
        torch.from_numpy(whole).to(device),
        torch.from_numpy(has_cat.astype(np.float64)).to(device),
        torch.from_numpy(image_cat).to(device),
        torch.from_numpy(seg).to(device),
        torch.from_numpy(area).to(device),
    )


class LayerTally:
    """Running sums for one layer: inter (U, C+1), act_original and act_lite (U, K), act_total (U,)."""

    def __init__(self, units: int, num_labels: int, num_categories: int, device):
        import torch

        self.units, self.num_labels, self.num_categories = units, num_labels, num_categories
        self.inter = torch.zeros((units, num_labels), dtype=torch.int64, device=device)
        self.act_original = torch.zeros((units, num_categories), dtype=torch.int64, device=device)
        self.act_lite = torch.zeros((units, num_categories), dtype=torch.int64, device=device)
        self.act_total = torch.zeros(units, dtype=torch.int64, device=device)

    def add(self, acts, thresholds, labels: LabelBatch, primary, maxima=None) -> None:
        """Count one batch: ``acts`` float32 (B, U, h, w), ``thresholds`` float32 (U,) on the same
        device, ``maxima`` (B, U) the maps' maxima when the caller already has them.

        Only (image, unit) pairs whose raw maximum exceeds T_u are upsampled: bilinear
        interpolation never exceeds its inputs, so the others have no active pixel.
        """
        import torch
        import torch.nn.functional as F

        b, u, _, _ = acts.shape
        sh, sw = labels.size
        if maxima is None:
            maxima = acts.amax(dim=(2, 3))
        pb, pu = torch.nonzero(maxima > thresholds[None, :], as_tuple=True)
        if pb.numel() == 0:
            return
        counts = torch.zeros((b, u), dtype=torch.float64, device=acts.device)
        step = max(1, CHUNK_PIXELS // (sh * sw))
        for start in range(0, pb.numel(), step):
            cb, cu = pb[start : start + step], pu[start : start + step]
            maps = acts[cb, cu].unsqueeze(1)
            up = F.interpolate(maps, size=(sh, sw), mode="bilinear", align_corners=False)[:, 0]
            mask = up > thresholds[cu][:, None, None]
            counts[cb, cu] = self._pixel_counts(mask, cb, cu, labels, primary).double()
        # whole-image labels: every active pixel of the image intersects them
        self.inter += (counts.T @ labels.image_labels).round().long()
        self.act_original += (counts.T @ labels.has_category).round().long()
        self.act_total += counts.sum(0).round().long()

    def _pixel_counts(self, mask, cb, cu, labels: LabelBatch, primary):
        """Count pixel-level intersections and lite activation terms of a chunk of (image, unit) pairs.

        ``mask`` bool (K, sh, sw) active pixels of pair k = (cb[k], cu[k]). Returns int64 (K,)
        active pixel counts per pair.
        """
        import torch

        j, y, x = torch.nonzero(mask, as_tuple=True)
        touched = labels.image_category[cb].clone()
        n_active = torch.bincount(j, minlength=cb.numel())  # far cheaper than summing a bool mask
        if j.numel():
            pix = labels.seg[cb[j], :, y, x]  # (P, L) labels under each active pixel
            unit = cu[j]
            keep = pix > 0
            rows = keep.nonzero(as_tuple=True)[0]
            lab = pix[keep]
            idx = unit[rows] * self.num_labels + lab
            self.inter += torch.bincount(idx, minlength=self.units * self.num_labels).view(self.units, self.num_labels)
            cat = primary[lab]
            ok = cat >= 0
            touched[j[rows[ok]], cat[ok]] = True
        self.act_lite.index_add_(0, cu, n_active[:, None] * touched.long())
        return n_active

    def arrays(self, prefix: str) -> dict:
        """Return the sums as numpy arrays keyed ``<prefix>|inter`` etc."""
        return {
            f"{prefix}|inter": self.inter.cpu().numpy(),
            f"{prefix}|act_original": self.act_original.cpu().numpy(),
            f"{prefix}|act_lite": self.act_lite.cpu().numpy(),
            f"{prefix}|act_total": self.act_total.cpu().numpy(),
        }


def iou(inter: np.ndarray, act: np.ndarray, area: np.ndarray, primary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (iou float64 (U, C+1), union int64 (U, C+1)) from tallies.

    ``inter`` (U, C+1), ``act`` (U, K) per primary category, ``area`` (C+1,), ``primary`` (C+1,)
    with -1 for labels without category (their IoU is 0).
    """
    has = primary >= 0
    act_c = np.where(has[None, :], act[:, np.clip(primary, 0, None)], 0)
    union = act_c + area[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where((union > 0) & has[None, :], inter / np.maximum(union, 1), 0.0)
    return out, union
