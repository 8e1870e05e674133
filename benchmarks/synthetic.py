"""Benchmarks' shared input: a synthetic Broden folder converted to shards in a given folder."""

from __future__ import annotations

from pathlib import Path

from cnninterp.data.broden_shards import convert_broden
from cnninterp.data.shards import shard_paths
from cnninterp.data.synthetic_broden import generate_broden


def synthetic_shards(folder: Path, images: int, size: int, shard_size: int = 300) -> list[Path]:
    """Write ``images`` synthetic Broden images of ``size`` px under ``folder``, shard them
    (``shard_size`` per shard) and return the shard files."""
    generate_broden(folder / "broden", images, size, 0, 0.2)
    convert_broden(folder / "broden", folder / "shards", shard_size, {"kind": "synthetic"}, {})
    return shard_paths(folder / "shards")
