"""Run a batch's per-layer host work (compiled counting, candidates, tallies) on several threads.

Each dissected layer has its own state (histogram, tally, grid scratch), and a layer's batches are
still handled one after another in data order, so results are those of the serial loop. The
compiled kernels release the GIL (``nogil``), so layers run in parallel on the torch thread count
(``torch.get_num_threads()``: the cores the job was given); with one thread the loop is serial.
Measured in benchmarks/RESULTS.md (issue 17): the host work between forward passes used one core
of two.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator


class LayerPool:
    """``map(work, items)``: {name: work(name, item)} for a dict of per-layer items, the largest
    items (by ``numel``/``size``, when they have one) started first."""

    def __init__(self, threads: int):
        self.threads = max(1, int(threads))
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="cnninterp-layers") if self.threads > 1 else None

    def map(self, work: Callable, items: dict) -> dict:
        """Return {name: work(name, item)} in ``items``' order; the first error is raised."""
        if self._pool is None or len(items) < 2:
            return {name: work(name, item) for name, item in items.items()}
        order = sorted(items, key=lambda name: -_size(items[name]))
        futures = {name: self._pool.submit(work, name, items[name]) for name in order}
        return {name: futures[name].result() for name in items}

    def close(self) -> None:
        """Stop the threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def _size(item) -> int:
    """How much work an item is likely to be: its element count, 0 if unknown."""
    for attr in ("numel", "size"):
        value = getattr(item, attr, None)
        if callable(value):
            value = value()
        if isinstance(value, int):
            return value
    ids = getattr(item, "ids", None)
    return int(ids.numel()) if ids is not None else 0


@contextmanager
def layer_pool(threads: int | None = None) -> Iterator[LayerPool]:
    """A ``LayerPool`` of ``threads`` (default: torch's intra-op thread count), closed on exit."""
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    pool = LayerPool(threads)
    try:
        yield pool
    finally:
        pool.close()
