"""Exact per-unit top quantiles from mergeable top-m sets.

The threshold T_k of unit k is ``numpy.quantile(a_k, 1 - q)`` (linear interpolation) over all
n values of the unit (every image, every position), so P(a_k > T_k) <= q. That needs only the
``m = n - floor((1 - q)(n - 1))`` largest values, which can be kept while streaming and merged
across shards in any order: the top m of a union is the top m of the parts' top m.
"""

from __future__ import annotations

import math

import numba
import numpy as np


def top_count(n: int, q: float) -> int:
    """Return m, how many of the largest of ``n`` values decide the (1 - q) quantile exactly."""
    if n <= 0:
        raise ValueError(f"quantile over {n} values")
    low = math.floor((1.0 - q) * (n - 1))
    return n - low


def threshold_from_top(top: np.ndarray, n: int, q: float) -> np.ndarray:
    """Return T (U,) float64 from each unit's top values (U, >=m), in any order, over n values.

    Equals ``numpy.quantile(values, 1 - q, axis=1)`` with linear interpolation.
    """
    top = np.asarray(top, dtype=np.float64)
    m = top_count(n, q)
    if top.shape[1] < m:
        raise ValueError(f"need the top {m} values per unit for n={n}, q={q}; have {top.shape[1]}")
    pos = (1.0 - q) * (n - 1)
    low = math.floor(pos)
    frac = pos - low
    # the m-th largest (ascending index low) and the (m-1)-th (ascending index low + 1)
    ranks = [m - 1] if m < 2 else [m - 2, m - 1]
    largest = -np.partition(-top, ranks, axis=1)
    lo_val = largest[:, m - 1]
    hi_val = largest[:, m - 2] if low + 1 < n else lo_val
    return lo_val + frac * (hi_val - lo_val)


class TopKeeper:
    """Streaming per-unit top-m values of one layer, kept on the host whatever device runs the model.

    Each unit has a buffer of room 2m; values enter it when they are >= the unit's floor and, once
    it is full, it is cut back to its m largest (amortised O(1) per value, no sort). Once m values
    per unit have been seen, ``floor`` (U,) is each unit's m-th largest value at the last cut:
    a lower bound of the final threshold, since T_k is at least the m-th largest of all values.
    """

    def __init__(self, m: int):
        self.m = m
        self._buffer = None  # (U, 2m) float32; unit u's values are buffer[u, :count[u]]
        self._count = None
        self._floor = None  # (U,) float32 numpy, -inf until set

    @property
    def floor(self):
        """The floor as a float32 (U,) CPU tensor (shares memory with the keeper; clone to keep), or None."""
        import torch

        if self._floor is None or not np.isfinite(self._floor).all():
            return None
        return torch.from_numpy(self._floor)

    def add(self, acts):
        """Add activations float32 (B, U, h, w) (a tensor on any device) of one batch.

        Returns the batch's pixels at or above the floor before the batch (``candidates.Located``,
        the only ones that can enter), or None while there was no floor (every value was offered).
        """
        import torch

        if self._buffer is None:
            units = acts.shape[1]
            self._buffer = np.empty((units, 2 * self.m), dtype=np.float32)
            self._count = np.zeros(units, dtype=np.int64)
            self._floor = np.full(units, -np.inf, dtype=np.float32)
        floor = self.floor
        if floor is None:
            _offer_maps(acts.detach().cpu().numpy(), self._buffer, self._count, self._floor, self.m)
            return None
        from .candidates import locate

        found = locate(acts, floor.to(acts.device))
        _offer(found.coord(1).cpu().numpy(), found.values.cpu().numpy(), self._buffer, self._count, self._floor, self.m)
        return found

    def result(self) -> np.ndarray:
        """Return the kept values (U, <=m) float32, in no particular order."""
        if self._buffer is None:
            raise ValueError("no values were added")
        for u in range(self._count.size):
            _cut(u, self._buffer, self._count, self._floor, self.m)
        return self._buffer[:, : int(self._count[0])].copy()


@numba.njit(cache=True, nogil=True)
def _cut(u, buffer, count, floor, m):
    """Cut unit u's buffer back to its m largest values (when it holds more) and raise its floor."""
    n = count[u]
    if n < m:
        return
    if n > m:
        kept = np.partition(buffer[u, :n], n - m)[n - m :]
        buffer[u, :m] = kept
        count[u] = m
    floor[u] = buffer[u, :m].min()


@numba.njit(cache=True, nogil=True)
def _offer(units, values, buffer, count, floor, m):
    """Offer values float32 (n,) of units int64 (n,): those >= their unit's floor enter its buffer."""
    room = buffer.shape[1]
    for k in range(values.shape[0]):
        u = units[k]
        if values[k] >= floor[u]:
            buffer[u, count[u]] = values[k]
            count[u] += 1
            if count[u] == room:
                _cut(u, buffer, count, floor, m)


@numba.njit(cache=True, nogil=True)
def _offer_maps(acts, buffer, count, floor, m):
    """Offer every value of maps float32 (B, U, h, w) (any strides), then set the floors of units
    that have seen m values."""
    room = buffer.shape[1]
    b, units, h, w = acts.shape
    for u in range(units):
        for image in range(b):
            for i in range(h):
                for j in range(w):
                    v = acts[image, u, i, j]
                    if v >= floor[u]:
                        buffer[u, count[u]] = v
                        count[u] += 1
                        if count[u] == room:
                            _cut(u, buffer, count, floor, m)
        _cut(u, buffer, count, floor, m)
