"""Network Dissection in one process: every stage (``engine``'s quantiles, thresholds and tally,
then ``gather``) over the shards of one folder, for tests, benchmarks and the ICNN evaluation."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..data.shards import read_manifest, shard_paths
from .engine import dataset_images, manifest_shards, merge_thresholds, quantile_tops, tally
from .gather import gather


def dissect(model, layers: list[str], shard_dir: str | Path, out_dir: str | Path, quantile: float = 0.005, iou_threshold: float = 0.04, denominator: str = "original", preprocess: str = "imagenet", batch_size: int = 64, top_images: int = 8, device="cpu", settings: dict | None = None, cache: bool = True, memory_format: str = "auto") -> dict:
    """Dissect ``layers`` of ``model`` on every shard under ``shard_dir`` and write results to ``out_dir``.

    The same stages as the per-shard jobs, in one process: quantiles, exact thresholds, tally,
    gather. With ``cache`` the model runs once and the tally reads an activation cache (a
    temporary file beside ``out_dir``, removed at the end); without, the model runs twice.
    Returns the per-layer summary (see ``labels.summarize``).
    """
    manifest = read_manifest(shard_dir)
    paths = shard_paths(shard_dir)
    total = dataset_images(manifest)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}-cache-", dir=out_dir.parent) as tmp:
        cache_file = Path(tmp) / "activations.acts"
        tops = quantile_tops(model, layers, paths, total, quantile, preprocess, batch_size, device, top_images, cache_file, memory_format=memory_format, values_only=not cache)
        thresholds = merge_thresholds([tops], layers, total, quantile, [cache_file], manifest_shards(manifest))
        counts = tally(model, layers, paths, thresholds, manifest, preprocess, batch_size, device, cache_file if cache else None, memory_format=memory_format)
    settings = dict(settings or {}, layers=layers, quantile=quantile, iou_threshold=iou_threshold, denominator=denominator, preprocess=preprocess)
    return gather([counts], thresholds, manifest, layers, denominator, iou_threshold, out_dir, settings)
