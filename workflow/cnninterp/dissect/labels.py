"""Turn summed tallies into the IoU table (Parquet), unit labels and the per-layer summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_files
from .statefile import read_state, write_state
from .tally import iou

DENOMINATORS = ("original", "lite")
# what a dissection writes (and one tally_<layer>.csv per layer, see result_files); the last
# (summary.json) is written last and marks the set complete
RESULT_FILES = ["iou.parquet", "top_images.npz", "summary.json"]


def result_files(layers: list[str]) -> list[str]:
    """The files of a dissection's result set for ``layers``, summary.json (the marker) last."""
    return RESULT_FILES[:-1] + [f"tally_{name}.csv" for name in layers] + RESULT_FILES[-1:]


def iou_table(tallies, thresholds, vocab: dict, layers: list[str], denominator: str):
    """Return a pandas DataFrame, one row per (layer, unit, concept present in the data), from
    the summed ``states.TallyPart`` and the ``states.Thresholds``.

    Columns: layer, unit, category (primary), concept, concept_number, iou, intersection, union,
    threshold. Concepts that never occur (label area 0) are left out.
    """
    import pandas as pd

    if denominator not in DENOMINATORS:
        raise ValueError(f"denominator must be one of {DENOMINATORS}, not {denominator!r}")
    primary, names, cats = vocab["primary"], vocab["names"], vocab["categories"]
    area = tallies.area
    concepts = np.nonzero((area > 0) & (primary >= 0))[0]
    frames = []
    for name in layers:
        counts = tallies.layers[name].result()
        inter = counts["inter"]
        act = counts[f"act_{denominator}"]
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
                    "threshold": np.repeat(thresholds.layers[name].threshold.astype(np.float64), len(concepts)),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def summarize(table, layers: list[str], categories: list[str], iou_threshold: float, units: dict) -> dict:
    """Return the per-layer summary: units, detectors, per-category detector and unique-concept
    counts, and every unit's best label overall and per category.

    ``units`` {layer: unit count}, the tally's ``LayerTally.units`` (not the table's: a table
    without rows, where no concept occurs, would give 0 units); a unit without rows is unlabeled.
    """
    summary = {}
    for name in layers:
        rows = table[table["layer"] == name]
        units_here = int(units[name])
        ordered = rows.sort_values(["unit", "iou", "concept_number"], ascending=[True, False, True], kind="mergesort")
        best_cat = ordered.drop_duplicates(["unit", "category"])
        best = ordered.drop_duplicates("unit")
        unit_entries = []
        per_unit_cat = {u: {} for u in range(units_here)}
        for r in best_cat.itertuples(index=False):
            per_unit_cat[r.unit][r.category] = {"label": r.concept, "iou": float(r.iou)}
        best_by_unit = {r.unit: r for r in best.itertuples(index=False)}
        for u in range(units_here):
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
            "units": units_here,
            "detectors": len(detectors),
            "detectors_per_category": {c: sum(e["category"] == c for e in detectors) for c in categories},
            "unique_concepts_per_category": {c: len({e["label"] for e in detectors if e["category"] == c}) for c in categories},
            "unique_concepts": len({e["label"] for e in detectors}),
            "unit_labels": unit_entries,
        }
    return summary


def write_results(out_dir: str | Path, table, summary: dict, settings: dict, tallies, thresholds, layers: list[str]) -> None:
    """Write ``iou.parquet``, ``top_images.npz`` (``thresholds``: the ``states.Thresholds`` of
    exactly ``layers``, with their top images), ``tally_<layer>.csv`` per layer and
    ``summary.json`` under ``out_dir`` as one set: all or none (``atomic_files``; summary.json,
    written last, marks the set complete; tally CSVs of layers not in ``layers`` are removed)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_files(out_dir, result_files(layers)) as staging:
        for stale in Path(out_dir).glob("tally_*.csv"):  # of layers no longer dissected
            stale.unlink(missing_ok=True)
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), staging / "iou.parquet", compression="zstd")
        write_state(staging / "top_images.npz", thresholds)  # gather selected its layers
        for name in layers:
            write_tally_csv(staging / f"tally_{name}.csv", summary[name])
        text = json.dumps({"settings": settings, "images": int(tallies.images), "layers": summary}, indent=2, sort_keys=True)
        (staging / "summary.json").write_text(text + "\n")


def write_tally_csv(path: Path, layer_summary: dict) -> None:
    """NetDissect-Lite's ``tally.csv`` for one layer: a row per unit, best score first (ties: lower
    unit), columns ``unit`` (numbered from 1, as NetDissect-Lite does), ``category``, ``label``,
    ``score`` (the best IoU over every concept), then ``<category>-label`` and ``<category>-iou``
    for the unit's best concept of each category (empty where the category never occurs)."""
    import csv

    units = layer_summary["unit_labels"]
    categories = sorted({c for u in units for c in u["per_category"]})
    fields = ["unit", "category", "label", "score"] + [f"{c}-{what}" for c in categories for what in ("label", "iou")]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        for u in sorted(units, key=lambda e: (-e["iou"], e["unit"])):
            row = {"unit": u["unit"] + 1, "category": u["category"] or "", "label": u["label"] or "", "score": repr(float(u["iou"]))}
            for c in categories:
                best = u["per_category"].get(c)
                row[f"{c}-label"] = best["label"] if best else ""
                row[f"{c}-iou"] = repr(float(best["iou"])) if best else ""
            writer.writerow(row)


def read_top_images(path: str | Path):
    """Read a dissection's ``top_images.npz``: the ``states.Thresholds`` of its layers (per layer
    ``threshold`` float32 (U,) and ``tops``: keys str (U, k), maps float32 (U, k, h, w), values).
    DataError naming the file if it is missing, of the old layout or not a thresholds state."""
    from .states import Thresholds

    return read_state(path, Thresholds)
