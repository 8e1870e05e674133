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


def merge_top(a, b, m: int):
    """Return the per-row m largest values of two (U, *) float tensors, sorted descending (U, <=m)."""
    import torch

    both = torch.cat([a, b], dim=1)
    k = min(m, both.shape[1])
    return torch.topk(both, k, dim=1, sorted=True).values


def threshold_from_top(top: np.ndarray, n: int, q: float) -> np.ndarray:
    """Return T (U,) float64 from each unit's top values (U, >=m) sorted descending, over n values.

    Equals ``numpy.quantile(values, 1 - q, axis=1)`` with linear interpolation.
    """
    top = np.asarray(top, dtype=np.float64)
    m = top_count(n, q)
    if top.shape[1] < m:
        raise ValueError(f"need the top {m} values per unit for n={n}, q={q}; have {top.shape[1]}")
    pos = (1.0 - q) * (n - 1)
    low = math.floor(pos)
    frac = pos - low
    # ascending index i is descending index n - 1 - i
    lo_val = top[:, n - 1 - low]
    hi_val = top[:, n - 2 - low] if low + 1 < n else lo_val
    return lo_val + frac * (hi_val - lo_val)


class TopKeeper:
    """Streaming per-unit top-m values of one layer (memory: U x m floats, whatever the image count)."""

    def __init__(self, m: int):
        self.m = m
        self.top = None

    def add(self, acts) -> None:
        """Add activations (B, U, h, w) of one batch."""
        values = acts.transpose(0, 1).reshape(acts.shape[1], -1)
        if self.top is None:
            k = min(self.m, values.shape[1])
            import torch

            self.top = torch.topk(values, k, dim=1, sorted=True).values
            return
        if self.top.shape[1] == self.m:
            # only values above the current m-th largest can enter
            floor = self.top[:, -1:]
            keep = values > floor
            if not bool(keep.any()):
                return
            width = int(keep.sum(1).max())
            values = values.masked_fill(~keep, float("-inf"))
            import torch

            values = torch.topk(values, width, dim=1, sorted=False).values
        self.top = merge_top(self.top, values, self.m)

    def result(self) -> np.ndarray:
        """Return the kept values (U, <=m) float32 sorted descending, as a numpy array."""
        return self.top.cpu().numpy()
