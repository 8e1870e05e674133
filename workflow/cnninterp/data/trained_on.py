"""Which shards a checkpoint was trained on: the sha256 of the shard folder's manifest.json,
recorded in the checkpoint's config at training and checked at evaluation.

The manifest holds every shard's sha256 and the dataset's settings (held-out arc, image size,
split seed), so one digest of it says "same data, same split"; the training rules take the
manifest as input, so a rerun that rewrites it also retrains. Used by the transform and the icnn
evaluations (a digest of the train split alone would miss the digits' held-out arc, which lives
only in the manifest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .digest import sha256_file
from .shards import MANIFEST, read_manifest
from ..errors import DataError

KEY = "shards_manifest_sha256"


def manifest_sha256(shard_dir: str | Path) -> str:
    """Hex sha256 (64 chars) of ``<shard_dir>/manifest.json``; DataError (from ``read_manifest``) if it is missing or unreadable."""
    read_manifest(shard_dir)
    return sha256_file(Path(shard_dir) / MANIFEST)


def check_trained_on(config: dict, checkpoint: str | Path, shard_dir: str | Path,
                     fallback: Callable[[dict], list[tuple[str, object, object]]]) -> None:
    """Refuse evaluating ``checkpoint`` (its saved ``config`` dict) on ``shard_dir`` unless it was trained on it.

    With ``config[KEY]`` (written at training) the digests must match. A checkpoint written before
    the digest was recorded is compared through ``fallback(config)``: (name, trained value, value
    of these shards) triples, each of which must be equal. DataError naming both manifests (or the
    checkpoint and the shards) and what to do otherwise.
    """
    evaluated = Path(shard_dir) / MANIFEST
    trained = Path(str(config.get("shards", "?"))) / MANIFEST
    recorded = config.get(KEY)
    if recorded is not None:
        now = manifest_sha256(shard_dir)
        if now != recorded:
            raise DataError(
                f"{checkpoint} was trained on the shards of {trained} (manifest sha256 {recorded[:16]}...), but "
                f"{evaluated} has sha256 {now[:16]}...: other data or another split, so its held-out figures would "
                f"not be held out; evaluate with the shards it was trained on, or retrain it on {shard_dir}")
        return
    for name, was, now in fallback(config):
        if was != now:
            raise DataError(
                f"{checkpoint} was trained with {name} {was!r} (shards {trained}), but {evaluated} has {name} {now!r}: "
                f"evaluate with the shards it was trained on, or retrain it on {shard_dir}")
