"""Turn summed tallies into the IoU table (Parquet), unit labels and the per-layer summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_files
from .tally import iou

DENOMINATORS = ("original", "lite")
# what a dissection writes; the last (summary.json) is written last and marks the set complete
RESULT_FILES = ["iou.parquet", "top_images.npz", "summary.json"]


def iou_table(tallies: dict, thresholds: dict, vocab: dict, layers: list[str], denominator: str):
    """Return a pandas DataFrame, one row per (layer, unit, concept present in the data).

    Columns: layer, unit, category (primary), concept, concept_number, iou, intersection, union,
    threshold. Concepts that never occur (label area 0) are left out.
    """
    import pandas as pd

    if denominator not in DENOMINATORS:
        raise ValueError(f"denominator must be one of {DENOMINATORS}, not {denominator!r}")
    primary, names, cats = vocab["primary"], vocab["names"], vocab["categories"]
    area = tallies["area"]
    concepts = np.nonzero((area > 0) & (primary >= 0))[0]
    frames = []
    for name in layers:
        inter = tallies[f"{name}|inter"]
        act = tallies[f"{name}|act_{denominator}"]
        scores, union = iou(inter, act, area, primary)
        units = inter.shape[0]
        uu, cc = np.meshgrid(np.arange(units), concepts, indexing="ij")
        frames.append(
            pd.DataFrame(
                {
                    "layer": name,
                    "unit": uu.ravel().astype(np.int32),
                    "category": np.array(cats, dtype=object)[primary[cc.ravel()]],
                    "concept": names[cc.ravel()],
                    "concept_number": cc.ravel().astype(np.int32),
                    "iou": scores[uu, cc].ravel(),
                    "intersection": inter[uu, cc].ravel(),
                    "union": union[uu, cc].ravel(),
                    "threshold": np.repeat(thresholds[f"{name}|threshold"].astype(np.float64), len(concepts)),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def summarize(table, layers: list[str], categories: list[str], iou_threshold: float) -> dict:
    """Return the per-layer summary: units, detectors, per-category detector and unique-concept
    counts, and every unit's best label overall and per category."""
    summary = {}
    for name in layers:
        rows = table[table["layer"] == name]
        units = int(rows["unit"].max()) + 1 if len(rows) else 0
        ordered = rows.sort_values(["unit", "iou", "concept_number"], ascending=[True, False, True], kind="mergesort")
        best_cat = ordered.drop_duplicates(["unit", "category"])
        best = ordered.drop_duplicates("unit")
        unit_entries = []
        per_unit_cat = {u: {} for u in range(units)}
        for r in best_cat.itertuples(index=False):
            per_unit_cat[r.unit][r.category] = {"label": r.concept, "iou": float(r.iou)}
        best_by_unit = {r.unit: r for r in best.itertuples(index=False)}
        for u in range(units):
            r = best_by_unit.get(u)
            unit_entries.append(
                {
                    "unit": u,
                    "label": r.concept if r is not None else None,
                    "concept_number": int(r.concept_number) if r is not None else None,
                    "category": r.category if r is not None else None,
                    "iou": float(r.iou) if r is not None else 0.0,
                    "detector": bool(r is not None and r.iou > iou_threshold),
                    "per_category": per_unit_cat[u],
                }
            )
        detectors = [e for e in unit_entries if e["detector"]]
        summary[name] = {
            "units": units,
            "detectors": len(detectors),
            "detectors_per_category": {c: sum(e["category"] == c for e in detectors) for c in categories},
            "unique_concepts_per_category": {c: len({e["label"] for e in detectors if e["category"] == c}) for c in categories},
            "unique_concepts": len({e["label"] for e in detectors}),
            "unit_labels": unit_entries,
        }
    return summary


def write_results(out_dir: str | Path, table, summary: dict, settings: dict, tallies: dict, thresholds: dict, layers: list[str]) -> None:
    """Write ``iou.parquet``, ``top_images.npz`` and ``summary.json`` under ``out_dir`` as one set:
    all three or none (``atomic_files``; summary.json, written last, marks the set complete)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_files(out_dir, RESULT_FILES) as staging:
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), staging / "iou.parquet", compression="zstd")
        _write_tops(staging / "top_images.npz", thresholds, layers)
        text = json.dumps({"settings": settings, "images": int(tallies["images"]), "layers": summary}, indent=2, sort_keys=True)
        (staging / "summary.json").write_text(text + "\n")


def _write_tops(path: Path, thresholds: dict, layers: list[str]) -> None:
    """The top-images arrays of ``layers`` (values, keys, maps, threshold) into the .npz at ``path``."""
    tops = {}
    for name in layers:
        for what in ("top_values", "top_keys", "top_maps"):
            tops[f"{name}|{what}"] = thresholds[f"{name}|{what}"]
        tops[f"{name}|threshold"] = thresholds[f"{name}|threshold"]
    with open(path, "wb") as handle:
        np.savez(handle, **tops)
