"""Merge of the per-dataset metrics (``digits.json``, ``objects3d.json``) into ``metrics.json``.

Each input has the same top-level keys (``reconstruction_mse``, ``equivariance_error``,
``angle_error_deg``, ``invariant_accuracy``, ...), each a mapping dataset -> values; the merge keeps
those keys at the top level with every dataset under each.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import write_json
from ..errors import DataError

REQUIRED = ("reconstruction_mse", "equivariance_error", "angle_error_deg", "invariant_accuracy")


def merge_metrics(inputs: list[str | Path], out: str | Path) -> dict:
    """Write ``out`` with the union of the inputs' per-dataset entries; DataError on a missing or
    unreadable input, a missing required key, or a dataset that appears in two inputs."""
    merged: dict[str, dict] = {}
    for path in inputs:
        try:
            part = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: cannot read the per-dataset transform metrics ({err}); run its evaluate step first") from None
        missing = [k for k in REQUIRED if not isinstance(part.get(k), dict)]
        if missing:
            raise DataError(f"{path}: not transform metrics, it lacks {', '.join(missing)}")
        for key, per_dataset in part.items():
            if not isinstance(per_dataset, dict):
                raise DataError(f"{path}: key {key!r} must map dataset -> values")
            into = merged.setdefault(key, {})
            twice = set(into) & set(per_dataset)
            if twice:
                raise DataError(f"{path}: dataset(s) {sorted(twice)} under {key!r} already come from another input")
            into.update(per_dataset)
    write_json(out, merged)
    return merged
