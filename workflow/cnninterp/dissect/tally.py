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

For the permutation null of whole-image labels (``chance``) a tally also keeps, per image that
holds a whole-image label, in data order: each unit's active pixel count (``LayerTally.whole_active``)
and the image's whole-image label set and pixel count (``WholeImageLabels``, one per dataset).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from . import candidates as cand
from .bilinear import CellGrid


@dataclass
class LabelBatch:
    """A batch's labels, as numpy arrays ready for counting.

    ``size`` (sh, sw); ``image_labels`` float64 (B, C+1): 1 where the image has that whole-image
    label; ``has_category`` float64 (B, K): images holding any label of primary category k;
    ``image_category`` bool (B, K): images with a whole-image label of primary category k;
    ``pixels`` int32 (B*sh*sw, L): the labels at each pixel (row ``(b*sh + y)*sw + x``) per label
    layer, a label repeated at a pixel in a later layer, or also given as a whole-image label, set
    to 0 (so each label counts once per pixel); ``pixel_categories`` uint8 or int64 (B*sh*sw,): bit
    k set where a pixel holds a label of primary category k; ``area`` int64 (C+1,): each label's
    pixels in the batch (whole-image labels: sh*sw per image).
    """

    size: tuple
    image_labels: np.ndarray
    has_category: np.ndarray
    image_category: np.ndarray
    pixels: np.ndarray
    pixel_categories: np.ndarray
    area: np.ndarray


def make_label_batch(seg_np: np.ndarray, image_labels: list[list[int]], primary: np.ndarray, num_labels: int, num_categories: int) -> LabelBatch:
    """Build a LabelBatch from uint16 seg (B, L, sh, sw), per-image whole-image label lists and
    ``primary`` (int64 (C+1,) of category indices, -1 for none).

    A label's mask in an image is the union of its pixels over all layers, or the whole image
    when it is also a whole-image label of that image. Layers left without any label are dropped.
    DataError if a label number (pixel or whole-image) is outside the manifest's.
    """
    from .tally_kernels import pixel_labels

    b, depth, sh, sw = seg_np.shape
    primary = np.asarray(primary)
    if seg_np.size and int(seg_np.max()) >= num_labels:
        raise DataError(f"segmentation holds label number {int(seg_np.max())}; the manifest's labels end at {num_labels - 1}")
    whole = np.zeros((b, num_labels), dtype=bool)
    for i, numbers in enumerate(image_labels):
        numbers = np.asarray(numbers, dtype=np.int64)
        if numbers.size and (numbers.max() >= num_labels or numbers.min() < 0):
            raise DataError(f"image {i} of the batch has whole-image label number(s) {sorted(set(numbers.tolist()))}; the manifest's labels end at {num_labels - 1}")
        whole[i, numbers] = True
    label_bits = np.where(primary >= 0, np.left_shift(1, np.clip(primary, 0, None)), 0).astype(np.uint8 if num_categories <= 8 else np.int64)
    pixels, pixel_categories, occurs, used = pixel_labels(np.ascontiguousarray(seg_np, dtype=np.uint16), whole, label_bits)
    area = occurs.sum(0)
    area[0] = 0
    area += whole.sum(0) * (sh * sw)
    has_cat = np.zeros((b, num_categories), dtype=bool)
    image_cat = np.zeros((b, num_categories), dtype=bool)
    for flags, table in ((has_cat, occurs), (image_cat, whole)):
        rows, labels = np.nonzero(table)
        ok = (labels > 0) & (primary[labels] >= 0)
        flags[rows[ok], primary[labels[ok]]] = True
    has_cat |= image_cat
    if not used.all():  # layers left without any label: nothing to read per active pixel
        pixels = np.ascontiguousarray(pixels[:, used])
    return LabelBatch((sh, sw), whole.astype(np.float64), has_cat.astype(np.float64), image_cat, pixels, pixel_categories, area)


def whole_image_rows(labels: LabelBatch) -> np.ndarray:
    """bool (B,): the batch's images that hold a whole-image label (label 0 never counts)."""
    return labels.image_labels[:, 1:].any(1)


class WholeImageLabels:
    """The images of a dataset (or part) that hold a whole-image label, in data order: each one's
    pixel count ``pixels`` int64 (N,) (sh*sw of its segmentation) and its labels as pairs
    ``image`` int64 (M,) (row 0..N-1) and ``label`` int64 (M,) (label number), sorted by image.
    Rows line up with every ``LayerTally.whole_active`` of the same tally."""

    def __init__(self, pixels=None, image=None, label=None):
        self.pixels = np.zeros(0, np.int64) if pixels is None else np.asarray(pixels, np.int64).copy()
        self.image = np.zeros(0, np.int64) if image is None else np.asarray(image, np.int64).copy()
        self.label = np.zeros(0, np.int64) if label is None else np.asarray(label, np.int64).copy()

    @property
    def images(self) -> int:
        """N, the number of images recorded."""
        return int(self.pixels.size)

    def add(self, labels: LabelBatch) -> None:
        """Append the batch's images that hold a whole-image label (``whole_image_rows``)."""
        rows = np.nonzero(whole_image_rows(labels))[0]
        held = labels.image_labels[rows] > 0
        held[:, 0] = False
        image, label = np.nonzero(held)
        self.image = np.concatenate([self.image, image + self.images])
        self.label = np.concatenate([self.label, label])
        self.pixels = np.concatenate([self.pixels, np.full(rows.size, labels.size[0] * labels.size[1], np.int64)])

    def merge(self, other: "WholeImageLabels") -> "WholeImageLabels":
        """Concatenate ``other``'s images after this one's; return self."""
        self.image = np.concatenate([self.image, other.image + self.images])
        self.label = np.concatenate([self.label, other.label])
        self.pixels = np.concatenate([self.pixels, other.pixels])
        return self

    def reorder(self, rows: np.ndarray) -> "WholeImageLabels":
        """Put the images in the order ``rows`` (int (N,), a permutation of 0..N-1: new row i is old
        row ``rows[i]``); return self."""
        rows = np.asarray(rows, np.int64)
        new_of_old = np.empty_like(rows)
        new_of_old[rows] = np.arange(rows.size)
        image = new_of_old[self.image]
        keep = np.argsort(image, kind="stable")
        self.image, self.label, self.pixels = image[keep], self.label[keep], self.pixels[rows]
        return self

    def indicator(self, num_labels: int) -> np.ndarray:
        """bool (N, C+1): row i holds label c."""
        out = np.zeros((self.images, num_labels), dtype=bool)
        out[self.image, self.label] = True
        return out

    def state_dict(self) -> dict:
        """``pixels`` (N,), ``image`` (M,), ``label`` (M,), int64."""
        return {"pixels": self.pixels, "image": self.image, "label": self.label}

    @classmethod
    def from_state_dict(cls, state: dict) -> "WholeImageLabels":
        """Rebuild from ``state_dict()``."""
        return cls(state["pixels"], state["image"], state["label"])


class LayerTally:
    """Running sums for one layer: inter (U, C+1), act_original and act_lite (U, K), act_total (U,),
    int64 numpy; and ``whole_active`` int32 (N, U): each unit's active pixels in each image that
    holds a whole-image label (rows in data order, see ``WholeImageLabels``)."""

    def __init__(self, units: int, num_labels: int, num_categories: int):
        self.units, self.num_labels, self.num_categories = units, num_labels, num_categories
        self.inter = np.zeros((units, num_labels), dtype=np.int64)
        self.act_original = np.zeros((units, num_categories), dtype=np.int64)
        self.act_lite = np.zeros((units, num_categories), dtype=np.int64)
        self.act_total = np.zeros(units, dtype=np.int64)
        self._whole = [np.zeros((0, units), dtype=np.int32)]  # row blocks, joined when read
        self._grids: dict = {}

    @property
    def whole_active(self) -> np.ndarray:
        """int32 (N, U): active pixels per image holding a whole-image label and unit (data order)."""
        if len(self._whole) > 1:
            self._whole = [np.concatenate(self._whole)]
        return self._whole[0]

    @whole_active.setter
    def whole_active(self, value: np.ndarray) -> None:
        self._whole = [np.asarray(value, np.int32).reshape(-1, self.units)]

    def add(self, acts, thresholds, labels: LabelBatch) -> None:
        """Count one batch: ``acts`` the maps float32 (B, U, h, w) tensor (any device), or their
        ``candidates.Candidates`` at a bound <= ``thresholds`` float32 (U,) (tensor or numpy).

        Only the cells of the upsampled maps that can exceed T_u are evaluated (see ``bilinear``).
        """
        import torch

        if isinstance(acts, cand.Candidates):
            candidates = acts
        else:
            candidates = cand.find(acts, torch.as_tensor(thresholds, device=acts.device))
        t = np.ascontiguousarray(_host(thresholds), dtype=np.float32)
        b, u, h, w = candidates.shape
        key = ((h, w), labels.size)
        if key not in self._grids:
            self._grids[key] = CellGrid((h, w), labels.size)
        n_active = np.zeros(b * u, dtype=np.int64)
        touched = np.zeros(b * u, dtype=np.int64)
        self._grids[key].count(_host(candidates.ids), _host(candidates.values), candidates.shape, t, labels.pixels, labels.pixel_categories, self.inter, n_active, touched)
        # lite: does a pair's active region touch a pixel of category k (or the image a whole-image label of k)?
        flags = ((touched[:, None] >> np.arange(self.num_categories)) & 1).astype(bool)
        flags |= np.repeat(labels.image_category, u, axis=0)
        self.act_lite += (n_active[:, None] * flags).reshape(b, u, -1).sum(0)
        # whole-image labels: every active pixel of the image intersects them
        per_image = n_active.reshape(b, u).astype(np.float64)
        self.inter += np.rint(per_image.T @ labels.image_labels).astype(np.int64)
        self.act_original += np.rint(per_image.T @ labels.has_category).astype(np.int64)
        self.act_total += n_active.reshape(b, u).sum(0)
        self._whole.append(n_active.reshape(b, u)[whole_image_rows(labels)].astype(np.int32))

    def merge(self, other: "LayerTally") -> "LayerTally":
        """Add ``other``'s sums (same units, labels, categories) into this tally and concatenate its
        ``whole_active`` rows after this one's; return self."""
        if (other.units, other.num_labels, other.num_categories) != (self.units, self.num_labels, self.num_categories):
            raise ValueError("tallies of different units, labels or categories do not merge")
        for what in ("inter", "act_original", "act_lite", "act_total"):
            setattr(self, what, getattr(self, what) + getattr(other, what))
        self._whole = self._whole + other._whole
        return self

    def state_dict(self) -> dict:
        """The sums as int64 arrays: ``inter`` (U, C+1), ``act_original``/``act_lite`` (U, K),
        ``act_total`` (U,); and ``whole_active`` int32 (N, U)."""
        return {"inter": self.inter, "act_original": self.act_original, "act_lite": self.act_lite, "act_total": self.act_total,
                "whole_active": self.whole_active}

    @classmethod
    def from_state_dict(cls, state: dict) -> "LayerTally":
        """Rebuild a tally from ``state_dict()``'s arrays."""
        inter = np.asarray(state["inter"], np.int64)
        out = cls(inter.shape[0], inter.shape[1], np.asarray(state["act_original"]).shape[1])
        out.inter, out.act_total = inter.copy(), np.asarray(state["act_total"], np.int64).copy()
        out.act_original, out.act_lite = np.asarray(state["act_original"], np.int64).copy(), np.asarray(state["act_lite"], np.int64).copy()
        out.whole_active = np.asarray(state["whole_active"], np.int32).reshape(-1, out.units).copy()
        return out

    def result(self) -> dict:
        """The sums (see ``state_dict``, copies), label 0's intersections set to 0 (label 0 is
        "unlabeled", never a concept)."""
        inter = self.inter.copy()
        inter[:, 0] = 0
        return {"inter": inter, "act_original": self.act_original.copy(), "act_lite": self.act_lite.copy(), "act_total": self.act_total.copy()}


def _host(x) -> np.ndarray:
    """A tensor (any device) or array as a contiguous numpy array."""
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(x)
    return np.ascontiguousarray(x.detach().cpu().numpy())


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
