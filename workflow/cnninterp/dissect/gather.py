"""Network Dissection's gather: sum the per-shard tallies, score IoU, label the units, test them
against the permutation chance level (``chance``) and write the results (``labels``).

The code of the gather jobs only: the per-shard stages (``engine``) do not import this module,
so an edit here, in ``chance`` or in ``labels`` reruns the gathers, not the model passes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import chance
from .engine import compare_shards, manifest_shards, merge_states, vocabulary
from .labels import iou_table, summarize, write_results
from .states import TallyPart, Thresholds

log = logging.getLogger(__name__)


def sum_tallies(parts) -> TallyPart:
    """Merge per-shard ``TallyPart``s (or paths of saved ones, read one at a time) into one, its
    per-image rows in shard order whatever the parts' order (``TallyPart.canonical``); DataError if
    there are none."""
    return merge_states(parts, TallyPart, "tally parts to gather").canonical()


def gather(tally_parts, thresholds: Thresholds, manifest: dict, layers: list[str], denominator: str, iou_threshold: float, out_dir: str | Path, settings: dict) -> dict:
    """Sum per-shard tallies (``TallyPart``s or their paths), score IoU and write the results
    under ``out_dir``; returns the summary.

    ``thresholds`` is the output of ``engine.merge_thresholds`` (thresholds and top images).
    DataError if the parts do not cover every shard of the manifest and image exactly once, or were counted at
    other thresholds than ``thresholds`` (``TallyPart.thresholds``), or ``settings`` name another
    quantile than the thresholds were merged at; the summary records the thresholds' quantile.
    The summary carries the permutation chance level of whole-image-label detectors (``chance``)
    unless ``settings["chance_permutations"]`` is 0 (settings ``chance_permutations``,
    ``chance_alpha``, ``chance_seed``, defaults in ``chance``; recorded in the summary's settings).
    """
    settings = dict(settings, **chance.chance_settings(settings))
    if "quantile" in settings and float(settings["quantile"]) != thresholds.quantile:
        raise DataError(f"the settings give quantile {settings['quantile']} but the thresholds were merged at {thresholds.quantile}")
    settings = dict(settings, quantile=thresholds.quantile)
    total = thresholds.images
    summed = sum_tallies(tally_parts)
    if summed.shards:  # parts built in memory without shard names are not compared
        compare_shards(summed.shards, manifest_shards(manifest), "tally parts", "the manifest")
    if summed.images != total:
        raise DataError(f"tally parts cover {summed.images} images, the thresholds were computed over {total}: a shard is missing or repeated")
    missing = [name for name in layers if name not in summed.layers]
    if missing:
        raise DataError(f"tally parts have no layer(s) {', '.join(missing)}: rerun the tallies")
    if summed.thresholds != thresholds.digest(list(summed.layers)):
        raise DataError("the tally parts were counted at other thresholds than the ones given (another model's, "
                        "quantile's or merge's): rerun the tallies with these thresholds")
    thresholds = thresholds.select(layers)
    vocab = vocabulary(manifest)
    if not np.any((summed.area > 0) & (vocab["primary"] >= 0)):
        raise DataError(f"no labels in the probe set: no concept of the manifest occurs in any of its {summed.images} images "
                        "(every label area is 0); check the shards' segmentations or rebuild them")
    table = iou_table(summed, thresholds, vocab, layers, denominator)
    summary = summarize(table, layers, vocab["categories"], iou_threshold, {name: summed.layers[name].units for name in layers})
    if settings["chance_permutations"]:
        start = time.perf_counter()
        assigned = {name: np.array([-1 if e["concept_number"] is None else e["concept_number"] for e in summary[name]["unit_labels"]], np.int64) for name in layers}
        pvals = chance.p_values(summed, layers, vocab["primary"], len(vocab["categories"]), denominator, settings["chance_permutations"], settings["chance_seed"], assigned)
        chance.annotate(summary, pvals, chance.whole_image_only(summed, vocab["primary"]), vocab["categories"], settings["chance_alpha"])
        log.info("permutation null of whole-image labels (%d permutations): %.2f s", settings["chance_permutations"], time.perf_counter() - start)
    write_results(out_dir, table, summary, settings, summed, thresholds, layers)
    return summary


def remove_caches(parts_dir: str | Path) -> list[Path]:
    """Delete the activation caches (``cache-*.acts``) under ``parts_dir``; return their paths.

    Called by the gather, which runs after every tally of its model: a cache still there was left
    by a run killed after its tally had finished (Snakemake removes temporary files only after
    jobs it ran itself), and no job needs it any more.
    """
    removed = sorted(Path(parts_dir).glob("cache-*.acts"))
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
