"""The activations a dissection's tally needs, kept on disk between its two passes.

The quantile pass sees every activation but does not know the thresholds yet; the tally pass
needs the thresholds. Instead of running the model twice, the quantile pass keeps, per batch
and layer, the candidates at the running lower bound of each unit's threshold (see
``quantiles.TopKeeper.floor`` and ``candidates``), or the whole maps while no bound is known or
when they are smaller than the candidates. The tally pass reads them back in the same order.

File format (``.acts``): a sequence of ``.npy`` arrays. Per batch: a header (uint8 array of UTF-8
JSON: ``{"keys": [...], "layers": {name: {"kind": "maps" | "candidates", "shape": [B, U, h, w]}}}``),
then per layer in header order either the maps float32 (B, U, h, w) or the candidates' ids int64
(n,) and neighbourhoods float32 (n, 9). An empty header ``{}`` ends the file (a file without
it was cut short). Written atomically: the final path exists only when complete.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

import numpy as np

from ..atomic import atomic_path
from ..errors import DataError
from .candidates import Candidates

CANDIDATE_BYTES = 8 + 9 * 4  # an id and a neighbourhood, against 4 bytes per map value


class CacheWriter:
    """Appends batches to an open cache file (see ``open_cache``)."""

    def __init__(self, handle):
        self._handle = handle

    def write(self, keys: list[str], layers: dict) -> None:
        """Write one batch: ``layers`` maps a name to float32 maps (B, U, h, w) or ``Candidates``."""
        meta = {}
        for name, item in layers.items():
            kind = "candidates" if isinstance(item, Candidates) else "maps"
            meta[name] = {"kind": kind, "shape": list(item.shape)}
        np.save(self._handle, _header({"keys": list(keys), "layers": meta}))
        for item in layers.values():
            if isinstance(item, Candidates):
                np.save(self._handle, item.ids.cpu().numpy())
                np.save(self._handle, item.values.cpu().numpy())
            else:
                np.save(self._handle, item.cpu().contiguous().numpy())


@contextlib.contextmanager
def open_cache(path: str | Path):
    """Yield a ``CacheWriter`` for ``path``; the file appears, complete, only if the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        yield CacheWriter(handle)
        np.save(handle, _header({}))


def keep_for_tally(acts, found):
    """Return what the cache should keep of ``acts`` float32 (B, U, h, w): the Candidates of
    ``found`` (``candidates.Located``, or None when no bound is known yet), or the maps themselves
    when those take less room."""
    if found is None or found.where.numel() * CANDIDATE_BYTES >= acts.numel() * 4:
        return acts
    return found.candidates()


def read_cache(path: str | Path) -> Iterator[tuple[list[str], dict]]:
    """Yield ``(keys, {layer: maps tensor or Candidates})`` per batch of a cache file (on the CPU).

    DataError naming the file if it is missing, unreadable or cut short.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(f"activation cache {path} is missing")
    with path.open("rb") as handle:
        while True:
            try:
                header = json.loads(np.load(handle, allow_pickle=False).tobytes())
                if not header:
                    return
                layers = {}
                for name, meta in header["layers"].items():
                    if meta["kind"] == "maps":
                        layers[name] = torch.from_numpy(np.load(handle, allow_pickle=False))
                    else:
                        ids = torch.from_numpy(np.load(handle, allow_pickle=False))
                        values = torch.from_numpy(np.load(handle, allow_pickle=False))
                        layers[name] = Candidates(tuple(meta["shape"]), ids, values)
            except (ValueError, EOFError, KeyError, OSError) as err:
                raise DataError(f"activation cache {path} is unreadable or cut short: {err}") from None
            yield header["keys"], layers


def _header(data: dict) -> np.ndarray:
    return np.frombuffer(json.dumps(data).encode(), dtype=np.uint8)
