"""The chance level of whole-image-label detectors: a permutation null computed from the tally.

A whole-image label (a scene, a texture that covers the image) intersects every active pixel of
the images that carry it, so on a small probe set, where a label sits on a handful of images, a
unit whose few most active images happen to include one of them can pass IoU 0.04 whatever it
responds to. The null asks how large a unit's best IoU over a category's whole-image labels gets
when the label sets are shuffled among the images that carry one.

For a category k with whole-image labels W_k (labels that occur only as whole-image labels: their
whole area comes from the images that carry them), over the N_k images holding a label of W_k,
with ``X`` the units' active pixels per image (N_k, U) and ``Y`` the images' label sets (N_k, |W_k|):

    inter_perm = X.T @ Y[perm]        area_perm = pixels @ Y[perm]        act: unchanged

``act`` is invariant for both denominators: ``original`` counts the active pixels of the images
holding any label of k, ``lite`` those of images touching a pixel of k or holding a whole-image
label of k, and a permutation among the images holding a label of W_k keeps both image sets.
``area`` is not when the images' segmentations differ in size, so it is permuted with the labels.
Per permutation a unit's statistic is its maximum IoU over W_k; its p-value for category k is
(1 + #{permutations with statistic >= observed}) / (1 + P) (no correction across units).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError
from .states import TallyPart
from .tally import iou

DEFAULT_PERMUTATIONS = 1000
DEFAULT_ALPHA = 0.01
DEFAULT_SEED = 0
# memory of one batch of permutations (their permuted count rows, P x N x U float64 at most;
# dissect.resources counts it in the gather's request)
CHUNK_BYTES = 64 << 20


def chance_settings(settings: dict) -> dict:
    """The null's settings from a dissection's ``settings`` (``chance_permutations`` int >= 0,
    0 = off; ``chance_alpha`` in (0, 1); ``chance_seed`` int), defaults filled in. ConfigError when
    a value is out of range or P permutations cannot reach a p-value below alpha (1/(1+P) >= alpha)."""
    out = {"chance_permutations": settings.get("chance_permutations", DEFAULT_PERMUTATIONS),
           "chance_alpha": settings.get("chance_alpha", DEFAULT_ALPHA),
           "chance_seed": settings.get("chance_seed", DEFAULT_SEED)}
    # the settings JSON of `cnninterp dissect-gather` and the API bypass the config schema
    for key in ("chance_permutations", "chance_seed"):
        value = out[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ConfigError(f"dissect {key} is {value!r}: give a whole number >= 0")
        out[key] = int(value)
    alpha = out["chance_alpha"]
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)):
        raise ConfigError(f"dissect chance_alpha is {alpha!r}: give a level in (0, 1), e.g. 0.01")
    out["chance_alpha"] = alpha = float(alpha)
    p = out["chance_permutations"]
    if not 0 < alpha < 1:
        raise ConfigError(f"dissect chance_alpha is {alpha}: give a level in (0, 1), e.g. 0.01")
    if p and 1.0 / (1 + p) >= alpha:
        raise ConfigError(f"dissect chance_permutations is {p}: the smallest p-value it gives, 1/{p + 1}, is not below chance_alpha {alpha}; "
                          f"give at least {int(np.floor(1 / alpha))} permutations")
    return out


def whole_image_only(part: TallyPart, primary: np.ndarray) -> np.ndarray:
    """bool (C+1,): labels that occur, have a category and only as whole-image labels (the area
    ``part.area`` int64 (C+1,) equals the pixels of the images carrying them as whole-image labels)."""
    whole = part.whole
    whole_area = np.bincount(whole.label, weights=whole.pixels[whole.image], minlength=part.area.size).astype(np.int64)
    return (part.area > 0) & (primary >= 0) & (whole_area == part.area)


def permutations(n: int, count: int, seed: int, category: int) -> np.ndarray:
    """int32 (count, n): ``count`` seeded permutations of 0..n-1 (the same for every layer and
    model of a category, so that trained and random networks face the same shuffles)."""
    rng = np.random.default_rng([seed, category])
    return rng.permuted(np.tile(np.arange(n, dtype=np.int32), (count, 1)), axis=1)


def inverse_permutations(perms: np.ndarray) -> np.ndarray:
    """int32 (P, N): the inverse of each permutation of ``perms`` int (P, N)."""
    return np.argsort(perms, axis=1).astype(np.int32)


# Permutation p gives image i the label set of image perms[p, i]: the same as image j = perms[p, i]
# taking the counts (and pixel count) of image inv[p, j], so the (small) count rows are permuted,
# not the (N, L) label sets (P x N x L: gigabytes for Broden's 468 scenes over ~20k images).


def permuted_areas(sets: np.ndarray, pixels: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """float64 (P, L): the labels' areas under the permutations whose inverses are ``inv`` (P, N)
    (``sets`` bool (N, L) the images' labels, ``pixels`` (N,) each image's pixel count); the same
    for every layer of a category."""
    return np.asarray(pixels, np.float64)[inv] @ np.asarray(sets, np.float64)


def permuted_intersections(counts: np.ndarray, sets: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """float64 (P, U, L): the units' intersections with the labels under the permutations whose
    inverses are ``inv`` (P, N); ``counts`` (N, U) active pixels per image and unit. Exact integers
    (the product runs in float32 when no unit's counts sum to 2**24 or more, else in float64)."""
    exact32 = counts.size == 0 or int(np.asarray(counts, np.int64).sum(0).max()) < 2**24
    x = np.asarray(counts, np.float32 if exact32 else np.float64)
    n, units = x.shape
    return (x[inv].transpose(0, 2, 1).reshape(-1, n) @ np.asarray(sets, x.dtype)).reshape(inv.shape[0], units, -1).astype(np.float64)


def permuted_tallies(counts: np.ndarray, sets: np.ndarray, pixels: np.ndarray, perms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intersections and label areas with the label sets permuted among the images.

    ``counts`` (N, U) active pixels per image and unit, ``sets`` bool (N, L) the images' labels,
    ``pixels`` (N,) each image's pixel count, ``perms`` int (P, N): permutation p gives image i the
    label set of image ``perms[p, i]``. Returns (inter float64 (P, U, L), area float64 (P, L)),
    exact integers (``permuted_intersections``, ``permuted_areas``).
    """
    inv = inverse_permutations(perms)
    return permuted_intersections(counts, sets, inv), permuted_areas(sets, pixels, inv)


def permuted_max_iou(counts: np.ndarray, sets: np.ndarray, act: np.ndarray, inv: np.ndarray, area: np.ndarray) -> np.ndarray:
    """float64 (P, U): per permutation each unit's maximum IoU over the labels. ``counts`` (N, U),
    ``sets`` bool (N, L), ``act`` (U,) the units' activation term (invariant under the
    permutations), ``inv`` (P, N) the inverse permutations and ``area`` (P, L) the labels' areas
    under them (``permuted_areas``, computed once per category, not per layer)."""
    act = np.asarray(act, np.float64)
    out = np.empty((inv.shape[0], counts.shape[1]))
    n, units = counts.shape
    # per permutation: its count rows (N, U) and its intersections (U, L), 8 bytes each at most
    chunk = max(1, CHUNK_BYTES // (8 * (n * units + units * sets.shape[1])))
    for start in range(0, inv.shape[0], chunk):
        inter = permuted_intersections(counts, sets, inv[start : start + chunk])
        union = act[None, :, None] + area[start : start + chunk, None, :] - inter
        out[start : start + chunk] = np.where(union > 0, inter / np.maximum(union, 1), 0.0).max(2)
    return out


def p_values(part: TallyPart, layers: list[str], primary: np.ndarray, num_categories: int, denominator: str, count: int, seed: int,
             assigned: dict | None = None) -> dict:
    """Per layer, the units' p-values under the permutation null, float64 (U, K): column k for the
    units' best whole-image-only label of category k, NaN where k has none. With ``assigned``
    ({layer: int (U,) the concept number each unit is labelled with, -1 for none}) only the units
    labelled with a whole-image-only label of k get column k (the others NaN: the cost scales with
    the units tested). DataError when the part's per-image rows do not add up to its sums (parts
    written without them)."""
    part.canonical()  # the rows in shard order whatever the parts' merge order: the same shuffles
    whole = part.whole
    for name in layers:
        rows = part.layers[name].whole_active.shape[0]
        if rows != whole.images:
            raise DataError(f"layer {name}: the tally parts hold per-image counts of {rows} images and "
                            f"labels of {whole.images}: rerun the tallies")
    only = whole_image_only(part, primary)
    held = whole.indicator(part.area.size)
    out = {name: np.full((part.layers[name].units, num_categories), np.nan) for name in layers}
    for k in range(num_categories):
        labels = np.nonzero(only & (primary == k))[0]
        if labels.size == 0:
            continue
        rows = np.nonzero(held[:, labels].any(1))[0]
        sets = held[np.ix_(rows, labels)]
        inv = inverse_permutations(permutations(rows.size, count, seed, k))
        area = permuted_areas(sets, whole.pixels[rows], inv)
        for name in layers:
            layer = part.layers[name]
            units = np.arange(layer.units) if assigned is None else np.nonzero(np.isin(assigned[name], labels))[0]
            if units.size == 0:
                continue
            x = layer.whole_active[np.ix_(rows, units)]
            inter = layer.inter[np.ix_(units, labels)]
            if not np.array_equal(x.T.astype(np.int64) @ sets.astype(np.int64), inter):
                raise DataError(f"layer {name}: the tally parts' per-image counts do not add up to their intersections: rerun the tallies")
            act = (layer.act_original if denominator == "original" else layer.act_lite)[units, k]
            observed = iou(inter, act[:, None], part.area[labels], np.zeros(labels.size, np.int64))[0].max(1)
            null = permuted_max_iou(x, sets, act, inv, area)
            out[name][units, k] = (1 + (null >= observed[None]).sum(0)) / (1 + count)
    return out


def annotate(summary: dict, pvals: dict, tested_labels: np.ndarray, categories: list[str], alpha: float) -> dict:
    """Add the chance level to ``labels.summarize``'s ``summary`` (in place; returns it).

    ``pvals`` from ``p_values``; ``tested_labels`` bool (C+1,) from ``whole_image_only``. Per unit
    ``chance_p``: the p-value of its assigned concept when that is a whole-image-only label (else
    None, untested). Per layer ``detectors_above_chance`` (detectors whose concept is
    untested, plus tested ones with p < ``alpha``), ``whole_image_detectors_at_chance`` (tested
    detectors with p >= alpha), ``detectors_above_chance_per_category`` and
    ``unique_concepts_above_chance`` (distinct concepts of those detectors, the paper's measure of
    a network's interpretability). Existing keys are kept.
    """
    for name, layer in summary.items():
        table = pvals[name]
        above = {c: 0 for c in categories}
        concepts = set()
        at_chance = 0
        for entry in layer["unit_labels"]:
            cat, number = entry["category"], entry["concept_number"]
            tested = number is not None and bool(tested_labels[number])
            p = table[entry["unit"], categories.index(cat)] if tested else np.nan
            entry["chance_p"] = float(p) if tested else None
            if entry["detector"]:
                if tested and p >= alpha:
                    at_chance += 1
                else:
                    above[cat] += 1
                    concepts.add(entry["label"])
        layer["detectors_above_chance"] = sum(above.values())
        layer["unique_concepts_above_chance"] = len(concepts)
        layer["detectors_above_chance_per_category"] = above
        layer["whole_image_detectors_at_chance"] = at_chance
    return summary
