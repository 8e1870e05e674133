"""The activations a dissection's tally needs, kept on disk between its two passes.

The quantile pass sees every activation but does not know the thresholds yet; the tally pass
needs the thresholds. Instead of running the model twice, the quantile pass keeps, per batch
and layer, the candidates at the running lower bound of each unit's threshold (see
``quantiles.KeyHistogram.floor`` and ``candidates``), or the whole maps while no bound is known or
when they are smaller than the candidates. The threshold merge reads them to refine the
thresholds to their exact values; the tally pass reads them back in the same order. A cache for
the threshold merge only (the tally runs the model again) keeps just the values at or above the
bound, without neighbourhoods (``Centres``, 12 bytes a value).

File format (``.acts``): a sequence of ``.npy`` arrays. Per batch: a header (uint8 array of UTF-8
JSON: ``{"keys": [...], "layers": {name: {"kind": "maps" | "candidates" | "centres", "shape": [B, U, h, w]}}}``),
then per layer in header order either the maps float32 (B, U, h, w), or the candidates' ids int64
(n,) and neighbourhoods float32 (n, 9), or the centres' ids int64 (n,) and values float32 (n,). An empty header ``{}`` ends the file (a file without
it was cut short). Written atomically: the final path exists only when complete.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

from dataclasses import dataclass

import numpy as np

from ..atomic import atomic_path
from ..errors import DataError
from .candidates import Candidates

CANDIDATE_BYTES = 8 + 9 * 4  # an id and a neighbourhood, against 4 bytes per map value
CENTRE_BYTES = 8 + 4  # an id and a value


@dataclass
class Centres:
    """Values at or above a per-unit bound without neighbourhoods: ``shape`` (B, U, h, w),
    ``ids`` int64 (n,) logical indices (as ``Candidates``), ``values`` float32 (n,)."""

    shape: tuple
    ids: object
    values: object


class CacheWriter:
    """Appends batches to an open cache file (see ``open_cache``)."""

    def __init__(self, handle):
        self._handle = handle

    def write(self, keys: list[str], layers: dict) -> None:
        """Write one batch: ``layers`` maps a name to float32 maps (B, U, h, w) or ``Candidates``."""
        meta = {}
        for name, item in layers.items():
            kind = "candidates" if isinstance(item, Candidates) else "centres" if isinstance(item, Centres) else "maps"
            meta[name] = {"kind": kind, "shape": list(item.shape)}
        np.save(self._handle, _header({"keys": list(keys), "layers": meta}))
        for item in layers.values():
            if isinstance(item, (Candidates, Centres)):
                np.save(self._handle, item.ids.cpu().numpy())
                np.save(self._handle, item.values.cpu().numpy())
            else:
                np.save(self._handle, item.cpu().contiguous().numpy())


class BackgroundWriter:
    """A ``CacheWriter`` whose writes run in a background thread, in order, up to ``depth``
    batches behind the caller (file writes release the GIL, so they overlap the next forward
    pass; measured in benchmarks/RESULTS.md, issue 17). The batches handed over must not be
    changed afterwards. A failed write is raised by the next ``write`` or by ``close``."""

    def __init__(self, handle, depth: int = 2):
        import queue
        import threading

        self._writer = CacheWriter(handle)
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="cnninterp-cache-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self._writer.write(*item)
                except BaseException as err:  # raised in the caller's thread
                    self._error = err

    def write(self, keys: list[str], layers: dict) -> None:
        """Queue one batch (see ``CacheWriter.write``); blocks while ``depth`` batches wait."""
        if self._error is not None:
            raise self._error
        self._queue.put((list(keys), dict(layers)))

    def close(self, raise_error: bool = True) -> None:
        """Wait for every queued write; raise the first failed one (unless not ``raise_error``)."""
        self._queue.put(None)
        self._thread.join()
        if raise_error and self._error is not None:
            raise self._error


@contextlib.contextmanager
def open_cache(path: str | Path, background: bool = False):
    """Yield a ``CacheWriter`` for ``path`` (a ``BackgroundWriter`` with ``background``); the
    file appears, complete, only if the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        if not background:
            yield CacheWriter(handle)
        else:
            writer = BackgroundWriter(handle)
            try:
                yield writer
            except BaseException:  # the thread is done with the file before it is removed
                writer.close(raise_error=False)
                raise
            writer.close()
        np.save(handle, _header({}))


def keep_for_tally(acts, found):
    """Return what the cache should keep of ``acts`` float32 (B, U, h, w): the Candidates of
    ``found`` (``candidates.locate``'s, or None when no bound is known yet), or the maps themselves
    when those take less room."""
    if found is None or found.count() * CANDIDATE_BYTES >= acts.numel() * 4:
        return acts
    return found.candidates()


def keep_values(acts, found):
    """Return what a thresholds-only cache keeps of ``acts`` float32 (B, U, h, w): the ``Centres``
    of ``found`` (``candidates.locate``'s, or None when no bound is known yet), or the maps when
    those take less room."""
    if found is None or found.count() * CENTRE_BYTES >= acts.numel() * 4:
        return acts
    ids, values = found.centres()
    return Centres(tuple(acts.shape), ids, values)


def read_cache(path: str | Path) -> Iterator[tuple[list[str], dict]]:
    """Yield ``(keys, {layer: maps tensor, Candidates or Centres})`` per batch of a cache file (on the CPU).

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
                    elif meta["kind"] == "centres":
                        ids = torch.from_numpy(np.load(handle, allow_pickle=False))
                        layers[name] = Centres(tuple(meta["shape"]), ids, torch.from_numpy(np.load(handle, allow_pickle=False)))
                    else:
                        ids = torch.from_numpy(np.load(handle, allow_pickle=False))
                        values = torch.from_numpy(np.load(handle, allow_pickle=False))
                        layers[name] = Candidates(tuple(meta["shape"]), ids, values)
            except (ValueError, EOFError, KeyError, OSError) as err:
                raise DataError(f"activation cache {path} is unreadable or cut short: {err}") from None
            yield header["keys"], layers


def _header(data: dict) -> np.ndarray:
    return np.frombuffer(json.dumps(data).encode(), dtype=np.uint8)
