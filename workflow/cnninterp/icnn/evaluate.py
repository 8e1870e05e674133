"""Evaluation of the interpretable and the ordinary network on the parts data.

Writes ``metrics.json`` with, at the top level, one entry per network (``icnn``, ``cnn``):
- ``location_instability``: the paper's measure on the test objects (``locate.filter_instability``):
  per filter its top ``top_images`` object images by peak activation, mean over *all* the object's
  landmarks (as the paper averages over the landmarks of the category), then over filters;
  ``location_instability_best_part``: the same with each filter's single most stable landmark;
- ``accuracy`` on the test split;
- ``part_detectors``, ``mean_part_iou``: the top conv layer (``top``, before the mask) of both
  networks dissected by the project's dissection engine (``dissect.pipeline.dissect``, the stages
  the dissection rules run) on the probe shards (the same parts generator, other images), part
  masks as the ``part`` category; a part detector is a unit whose best part IoU exceeds
  ``iou_threshold``; ``mean_part_iou`` is the mean over units of their best part IoU;
- ``filter_parts``: what the filters became, per network: the histogram over parts of each filter's
  best landmark (its most stable one, the paper's choice), of the part under its peak (the part mask at
  the inferred location, majority over its top images; ``none`` = background) and its pooled shares,
  the number of distinct best landmarks, the filters' roles (dead, object-preferring,
  negative-preferring: ``locate.filter_roles``) with the location instability of each role, and per
  filter all of it (``filter_part_summary``);
- ``part_statistics``: of the test objects, each part's mean share of the object's part pixels and
  the fraction of objects on which it is visible (is one part the largest, always-visible one?);
and ``figure.npz`` beside it: the same filters' maps over several test objects (see ``figure_data``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, write_json
from ..data import parts
from ..data.shards import read_manifest
from ..errors import DataError
from .locate import ROLES, argmax_points, filter_instability, filter_roles, peak_parts
from .model import TOP_LAYER
from .train import PREPROCESS, load_net, to_input

log = logging.getLogger(__name__)
KINDS = ("icnn", "cnn")


def forward(model, images: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, S, S, 3) -> (predicted class int64 (N,), top maps float32 (N, F, n, n) before the mask)."""
    import torch

    preds, maps = [], []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            logits, m = model.forward_maps(to_input(images[i : i + batch_size]))
            preds.append(logits.argmax(1).numpy())
            maps.append(m.numpy())
    return np.concatenate(preds), np.concatenate(maps)


def part_scores(summary: dict, iou_threshold: float) -> dict:
    """From a dissection summary of the ``top`` layer: detectors (units whose best ``part`` IoU
    exceeds ``iou_threshold``), mean best part IoU over units, and detectors per part label."""
    units = summary[TOP_LAYER]["unit_labels"]
    best = [u["per_category"].get("part", {"label": None, "iou": 0.0}) for u in units]
    detectors = [b for b in best if b["iou"] > iou_threshold]
    per_part: dict[str, int] = {}
    for b in detectors:
        per_part[b["label"]] = per_part.get(b["label"], 0) + 1
    return {"part_detectors": len(detectors), "mean_part_iou": float(np.mean([b["iou"] for b in best])) if best else 0.0,
            "detectors_per_part": dict(sorted(per_part.items())), "units": len(units)}


def dissect_top(model, probe: str | Path, out_dir: str | Path, *, quantile: float, iou_threshold: float, batch_size: int) -> dict:
    """Dissect the ``top`` layer of ``model`` on the probe shards with the project's engine; write its
    results (iou.parquet, summary.json, top_images.npz) under ``out_dir``; return ``part_scores``."""
    from ..dissect.pipeline import dissect

    summary = dissect(model, [TOP_LAYER], probe, out_dir, quantile=quantile, iou_threshold=iou_threshold,
                      preprocess=PREPROCESS, batch_size=batch_size, device="cpu", memory_format="contiguous",
                      settings={"probe": str(probe)})
    return part_scores(summary, iou_threshold)


def filter_part_summary(instab: dict, seg: np.ndarray, part_names: list, roles: np.ndarray) -> dict:
    """Per network, what its filters became, from ``filter_instability``'s result, the test split's
    seg uint16 (N, S, S) and each filter's role int (F,) (``locate.filter_roles``):
    ``best_landmark`` {part: filters} over all parts (each filter's most stable landmark, the paper's choice),
    ``under_peak`` {"none" | part: filters} (the majority label under the filter's peak on its top images),
    ``under_peak_share`` {"none" | part: fraction} pooled over the object filters' top images,
    ``distinct_best_landmarks`` int, ``roles`` {dead, object, negative: filters},
    ``location_instability_by_role`` {role: mean instability of its filters, or None},
    ``per_filter`` [{filter, role, best_landmark, under_peak, under_peak_share, instability}]."""
    under = peak_parts(instab["inferred"], instab["chosen"], seg, len(part_names))
    names = ["none", *part_names]
    best = np.bincount(instab["best_landmark"], minlength=len(part_names))
    pooled = under["counts"][roles == ROLES.index("object")].sum(axis=0)
    per = instab["per_filter"]
    per_filter = [{"filter": f, "role": ROLES[int(roles[f])], "best_landmark": part_names[int(instab["best_landmark"][f])],
                   "under_peak": names[int(under["label"][f])], "under_peak_share": round(float(under["share"][f]), 4),
                   "instability": round(float(per[f]), 5)} for f in range(len(per))]
    return {"best_landmark": {p: int(c) for p, c in zip(part_names, best)},
            "under_peak": {n: int(c) for n, c in zip(names, np.bincount(under["label"], minlength=len(names)))},
            "under_peak_share": {n: round(float(c / max(pooled.sum(), 1)), 4) for n, c in zip(names, pooled)},
            "distinct_best_landmarks": int((best > 0).sum()),
            "roles": {r: int((roles == k).sum()) for k, r in enumerate(ROLES)},
            "location_instability_by_role": {r: float(per[roles == k].mean()) if (roles == k).any() else None for k, r in enumerate(ROLES)},
            "per_filter": per_filter}


def part_statistics(seg: np.ndarray, visible: np.ndarray, objects: np.ndarray, part_names: list) -> dict:
    """Of the object images (``objects`` bool (N,)): each part's mean share of the object's labelled
    pixels (seg uint16 (N, S, S), labels p + 1) and the fraction of objects where it is visible (bool (N, P))."""
    s = seg[objects].reshape(int(objects.sum()), -1).astype(np.int64)
    counts = np.stack([np.bincount(row, minlength=len(part_names) + 1)[1:] for row in s])  # (No, P)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    return {"area_share": {p: round(float(v), 4) for p, v in zip(part_names, share.mean(axis=0))},
            "visible": {p: round(float(v), 4) for p, v in zip(part_names, visible[objects].mean(axis=0))}}


def figure_data(images, maps: dict, instab: dict, labels, landmarks, visible, image_size: int, rows: int, cols: int) -> dict:
    """Arrays for the Figure-1-like panel: per network its ``rows`` most stable filters (lowest per-filter
    instability) over the same ``cols`` test objects: ``images`` uint8 (cols, S, S, 3),
    ``<kind>_maps`` float32 (rows, cols, n, n), ``<kind>_filters`` int64 (rows,), ``<kind>_landmark``
    float32 (rows, cols, 2) the filter's best landmark on each image (NaN if hidden), ``<kind>_peak``
    float32 (rows, cols, 2) the inferred location."""
    objects = np.flatnonzero(labels == 1)[:cols]
    out = {"images": images[objects]}
    for kind, m in maps.items():
        order = np.argsort(instab[kind]["per_filter"], kind="stable")[:rows]
        best = instab[kind]["best_landmark"][order]
        out[f"{kind}_filters"] = order.astype(np.int64)
        out[f"{kind}_maps"] = m[objects][:, order].transpose(1, 0, 2, 3).astype(np.float32)
        lm = landmarks[objects][:, best]  # (cols, rows, 2)
        vis = visible[objects][:, best]
        out[f"{kind}_landmark"] = np.where(vis[..., None], lm, np.nan).transpose(1, 0, 2).astype(np.float32)
        out[f"{kind}_peak"] = argmax_points(m[objects][:, order], image_size).transpose(1, 0, 2).astype(np.float32)
    return out


def evaluate(shards: str | Path, probe: str | Path, models: dict, out: str | Path, *, top_images: int, quantile: float,
             iou_threshold: float, figure_rows: int, figure_cols: int, batch_size: int = 64) -> dict:
    """Evaluate ``models`` ({"icnn": path, "cnn": path}); write ``out`` (metrics.json), ``figure.npz``
    and the dissection results under ``<out folder>/dissect/<kind>/``; return the metrics."""
    out = Path(out)
    test = parts.load_split(shards, "test")
    size = test["images"].shape[1]
    objects = test["labels"] == 1
    negatives = int((test["labels"] == 0).sum())
    if not objects.any() or not negatives:
        raise DataError(f"{shards}: the test split holds {int(objects.sum())} object and {negatives} negative images; the "
                        "evaluation compares the two (filter roles, accuracy), so it needs both: write the shards with "
                        "more test images or a positive fraction further from 0 and 1")
    result = {k: {} for k in ("location_instability", "location_instability_best_part", "accuracy", "part_detectors",
                              "mean_part_iou", "detectors_per_part", "filters_per_landmark", "filter_parts", "top_images")}
    maps, instab = {}, {}
    nets = {kind: load_net(models[kind], shards, image_size=size) for kind in KINDS}  # both checked before any work
    for kind in KINDS:
        model, spec = nets[kind]
        preds, maps[kind] = forward(model, test["images"])
        instab[kind] = filter_instability(maps[kind], test["landmarks"], test["visible"], objects, size, top_images, best=len(test["parts"]))
        best1 = filter_instability(maps[kind], test["landmarks"], test["visible"], objects, size, top_images, best=1)
        result["location_instability"][kind] = instab[kind]["mean"]
        result["location_instability_best_part"][kind] = best1["mean"]
        result["top_images"][kind] = instab[kind]["images"]
        result["filter_parts"][kind] = filter_part_summary(instab[kind], test["seg"], test["parts"], filter_roles(maps[kind], objects))
        # the same histogram, kept under its earlier key without the zero counts
        result["filters_per_landmark"][kind] = {p: c for p, c in result["filter_parts"][kind]["best_landmark"].items() if c}
        result["accuracy"][kind] = float((preds == test["labels"]).mean())
        scores = dissect_top(model, probe, out.parent / "dissect" / kind, quantile=quantile, iou_threshold=iou_threshold, batch_size=batch_size)
        result["part_detectors"][kind] = scores["part_detectors"]
        result["mean_part_iou"][kind] = scores["mean_part_iou"]
        result["detectors_per_part"][kind] = scores["detectors_per_part"]
        log.info("icnn %s: %s", kind, {k: v[kind] for k, v in result.items()})
    result["filters"] = int(maps["icnn"].shape[1])
    result["map_size"] = int(maps["icnn"].shape[2])
    result["test_images"] = {"all": int(len(objects)), "objects": int(objects.sum())}
    result["parts"] = test["parts"]
    result["data_source"] = read_manifest(shards)["source"]["kind"]
    result["part_statistics"] = part_statistics(test["seg"], test["visible"], objects, test["parts"])
    result["settings"] = {"top_images": top_images, "quantile": quantile, "iou_threshold": iou_threshold,
                          "landmarks_averaged": "all (location_instability); the most stable one (location_instability_best_part)"}
    fig = figure_data(test["images"], maps, instab, test["labels"], test["landmarks"], test["visible"], size, figure_rows, figure_cols)
    with atomic_path(out.with_name("figure.npz")) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **fig)
    write_json(out, result)
    return result
