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
    """A batch's labels on the device: deduplicated layers, whole-image labels and category flags.

    ``seg`` int64 (B, L, sh, sw) where a label repeated at a pixel in a later layer is zeroed;
    ``image_labels`` float64 (B, C+1) 1 where the image has that whole-image label;
    ``has_category`` float64 (B, K) images holding any label of primary category k;
    ``image_category`` bool (B, K) images with a whole-image label of primary category k.
    """

    seg: object
    image_labels: object
    has_category: object
    image_category: object


def dedup_layers(seg):
    """Zero a pixel's label in layer l when an earlier layer holds the same label there.

    Takes and returns int64 (B, L, sh, sw); afterwards each label counts once per pixel.
    """
    out = seg.clone()
    for l in range(1, seg.shape[1]):
        same = (seg[:, l : l + 1] == seg[:, :l]).any(1)
        out[:, l][same] = 0
    return out


def make_label_batch(seg_np: np.ndarray, image_labels: list[list[int]], primary, num_labels: int, num_categories: int, device) -> LabelBatch:
    """Build a LabelBatch from uint16 seg (B, L, sh, sw), per-image whole-image label lists and
    ``primary`` (int64 tensor (C+1,) of category indices, -1 for none).

    A label's mask in an image is the union of its pixels over all layers, or the whole image
    when it is also a whole-image label of that image.
    """
    import torch

    b = seg_np.shape[0]
    seg = dedup_layers(torch.from_numpy(seg_np.astype(np.int64)).to(device))
    img = torch.zeros((b, num_labels), dtype=torch.float64, device=device)
    for i, labels in enumerate(image_labels):
        if labels:
            numbers = torch.tensor(labels, device=device)
            img[i, numbers] = 1.0
            # a whole-image label already covers every pixel: drop its pixel-level copies
            seg[i][torch.isin(seg[i], numbers)] = 0
    img_cat = torch.zeros((b, num_categories), dtype=torch.bool, device=device)
    ib, ic = torch.nonzero(img, as_tuple=True)
    cats = primary[ic]
    ok = cats >= 0
    img_cat[ib[ok], cats[ok]] = True
    has_cat = img_cat.clone()
    flat = seg.flatten(1)
    pb = torch.arange(b, device=device).repeat_interleave(flat.shape[1])
    pc = primary[flat.flatten()]
    ok = pc >= 0
    has_cat[pb[ok], pc[ok]] = True
    return LabelBatch(seg, img, has_cat.double(), img_cat)


def label_area(labels: LabelBatch, num_labels: int):
    """Return int64 (C+1,) pixel counts of each label in the batch (whole-image labels: sh*sw)."""
    import torch

    seg = labels.seg
    area = torch.bincount(seg.flatten(), minlength=num_labels)[:num_labels]
    area[0] = 0
    full = seg.shape[-1] * seg.shape[-2]
    return area + (labels.image_labels.sum(0) * full).long()


class LayerTally:
    """Running sums for one layer: inter (U, C+1), act_original and act_lite (U, K), act_total (U,)."""

    def __init__(self, units: int, num_labels: int, num_categories: int, device):
        import torch

        self.units, self.num_labels, self.num_categories = units, num_labels, num_categories
        self.inter = torch.zeros((units, num_labels), dtype=torch.int64, device=device)
        self.act_original = torch.zeros((units, num_categories), dtype=torch.int64, device=device)
        self.act_lite = torch.zeros((units, num_categories), dtype=torch.int64, device=device)
        self.act_total = torch.zeros(units, dtype=torch.int64, device=device)

    def add(self, acts, thresholds, labels: LabelBatch, primary) -> None:
        """Count one batch: ``acts`` float32 (B, U, h, w), ``thresholds`` float32 (U,) on the same device.

        Only (image, unit) pairs whose raw maximum exceeds T_u are upsampled: bilinear
        interpolation never exceeds its inputs, so the others have no active pixel.
        """
        import torch
        import torch.nn.functional as F

        b, u, _, _ = acts.shape
        sh, sw = labels.seg.shape[-2:]
        pb, pu = torch.nonzero(acts.amax(dim=(2, 3)) > thresholds[None, :], as_tuple=True)
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
        touched = torch.zeros((cb.numel(), self.num_categories), dtype=torch.bool, device=mask.device)
        n_active = torch.bincount(j, minlength=cb.numel())  # far cheaper than summing a bool mask
        if j.numel():
            pix = labels.seg[cb[j], :, y, x]  # (P, L)
            unit = cu[j]
            for layer in range(pix.shape[1]):
                lab = pix[:, layer]
                keep = lab > 0
                idx = unit[keep] * self.num_labels + lab[keep]
                self.inter += torch.bincount(idx, minlength=self.units * self.num_labels).view(self.units, self.num_labels)
                cat = primary[lab[keep]]
                ok = cat >= 0
                touched[j[keep][ok], cat[ok]] = True
        touched |= labels.image_category[cb]
        contrib = n_active[:, None] * touched.long()
        self.act_lite.index_add_(0, cu, contrib)
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
