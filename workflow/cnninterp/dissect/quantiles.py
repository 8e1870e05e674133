"""Exact per-unit top quantiles from mergeable top-m sets.

The threshold T_k of unit k is ``numpy.quantile(a_k, 1 - q)`` (linear interpolation) over all
n values of the unit (every image, every position), so P(a_k > T_k) <= q. That needs only the
``m = n - floor((1 - q)(n - 1))`` largest values, which can be kept while streaming and merged
across shards in any order: the top m of a union is the top m of the parts' top m.
"""

from __future__ import annotations

import math

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
    """Streaming per-unit top-m values of one layer (memory: U x m floats, whatever the image count).

    Once m values per unit have been seen, ``floor`` (U,) is each unit's m-th largest value so far:
    a lower bound of the final threshold, since T_k is at least the m-th largest of all values.
    """

    def __init__(self, m: int):
        self.m = m
        self.top = None  # (U, <= m), unordered
        self.floor = None
        self._pending: list = []  # (units, values) not merged yet
        self._pending_count = 0

    def add(self, acts):
        """Add activations float32 (B, U, h, w) of one batch.

        Returns the batch's pixels at or above the floor before the batch (``candidates.Located``,
        the only ones that can enter), or None while there was no floor (every value was offered).
        """
        if self.floor is None:
            import torch

            values = acts.transpose(0, 1).reshape(acts.shape[1], -1)
            both = values if self.top is None else torch.cat([self.top, values], dim=1)
            self._set(torch.topk(both, min(self.m, both.shape[1]), dim=1, sorted=False).values)
            return None
        from .candidates import locate

        found = locate(acts, self.floor)
        self.merge(found.coord(1), found.values)
        return found

    def merge(self, units, values) -> None:
        """Add values float32 (n,) of units int64 (n,); only needs those >= ``floor`` (once set).

        Values are buffered and merged once they are as many as the kept values (a merge
        costs a pass over all U x m of them); ``floor`` stays a valid, if lower, bound meanwhile.
        """
        if values.numel() == 0:
            return
        self._pending.append((units, values))
        self._pending_count += values.numel()
        if self._pending_count >= self.top.numel():
            self._flush()

    def _flush(self) -> None:
        import torch

        if not self._pending:
            return
        units = torch.cat([p[0] for p in self._pending])
        values = torch.cat([p[1] for p in self._pending])
        self._pending, self._pending_count = [], 0
        u = self.top.shape[0]
        order = torch.argsort(units, stable=True)
        units, values = units[order], values[order]
        count = torch.bincount(units, minlength=u)
        start = torch.cumsum(count, 0) - count
        padded = torch.full((u, int(count.max())), float("-inf"), dtype=values.dtype, device=values.device)
        padded[units, torch.arange(units.numel(), device=units.device) - start[units]] = values
        both = torch.cat([self.top, padded], dim=1)
        self._set(torch.topk(both, min(self.m, both.shape[1]), dim=1, sorted=False).values)

    def _set(self, top) -> None:
        self.top = top
        self.floor = top.min(dim=1).values if top.shape[1] == self.m else None

    def result(self) -> np.ndarray:
        """Return the kept values (U, <=m) float32, in no particular order, as a numpy array."""
        self._flush()
        return self.top.cpu().numpy()
