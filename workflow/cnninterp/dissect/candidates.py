"""Candidate source pixels: activations at or above a per-unit bound, with their 3x3 neighbourhoods.

Network Dissection's thresholds are top quantiles, so only a small part of a layer's activations
can take part in an active region. Bilinear upsampling reads four source corners that lie in the
3x3 neighbourhood of each of them, so the candidates at a bound <= T hold everything needed to
find every upsampled pixel above T (see ``bilinear.CellGrid.count``), in a fraction of the maps' room.

Indices: a candidate's ``id`` is its position in the logical (B, U, h, w) order,
``((b * U + u) * h + i) * w + j``, whatever the memory layout of the maps it came from
(hooks often return channels-last tensors, which are used in place, without a copy).

Two implementations give the same candidates (the same ids and neighbourhoods; the order may
differ for maps that are not NCHW-contiguous): on the host, two compiled passes over the maps
(count per map, then fill; ``HostLocated``), which measured 4-5x faster than the vectorised torch
passes on 2 CPU threads (benchmarks/RESULTS.md, issue 17); on an accelerator, the torch passes
(``Located``), which run on the maps' device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

NEIGHBOURS = 9  # rows i-1..i+1 x columns j-1..j+1, clamped to the map; the pixel itself is number 4
CENTRE = 4


@dataclass
class Candidates:
    """Candidate pixels of one layer and batch.

    ``shape`` (B, U, h, w) of the maps; ``ids`` int64 (n,) logical indices (see module doc);
    ``values`` float32 (n, 9): each candidate's clamped 3x3 neighbourhood, row-major (tensors).
    """

    shape: tuple
    ids: object
    values: object


class Located:
    """Pixels of one batch of maps found by ``locate``: memory positions and values (n,).

    Keeps the maps' memory view so that units, logical ids and neighbourhoods are decoded only
    for the pixels that are kept.
    """

    def __init__(self, acts, where, values, perm, view):
        self.acts, self.where, self.values = acts, where, values
        self._perm, self._view = perm, view

    def coord(self, dim: int):
        """Return int64 (n,) the coordinate along logical ``dim`` (0 b, 1 u, 2 i, 3 j)."""
        pos = self._perm.index(dim)
        return (self.where // self._view.stride(pos)) % self._view.shape[pos]

    def count(self) -> int:
        """The number of pixels found."""
        return int(self.where.numel())

    def centres(self):
        """``(ids int64 (n,), values float32 (n,))``: the pixels' logical ids and values."""
        b, u, h, w = self.acts.shape
        ids = ((self.coord(0) * u + self.coord(1)) * h + self.coord(2)) * w + self.coord(3)
        return ids, self.values

    def select(self, keep) -> "Located":
        """Return the pixels where ``keep`` (bool (n,)) holds."""
        return Located(self.acts, self.where[keep], self.values[keep], self._perm, self._view)

    def candidates(self) -> Candidates:
        """Return these pixels as Candidates: logical ids and clamped 3x3 neighbourhoods."""
        import torch

        b, u, h, w = self.acts.shape
        i, j = self.coord(2), self.coord(3)
        ids = ((self.coord(0) * u + self.coord(1)) * h + i) * w + j
        row_stride = self._view.stride(self._perm.index(2))
        col_stride = self._view.stride(self._perm.index(3))
        base = self.where - i * row_stride - j * col_stride
        rows = torch.stack([(i + d).clamp(0, h - 1) * row_stride for d in (-1, 0, 1)], dim=1)  # (n, 3)
        cols = torch.stack([(j + d).clamp(0, w - 1) * col_stride for d in (-1, 0, 1)], dim=1)
        index = base[:, None, None] + rows[:, :, None] + cols[:, None, :]
        return Candidates((b, u, h, w), ids, self._view.reshape(-1)[index.view(-1, NEIGHBOURS)])


def _memory_order(acts):
    """Return (permutation, view): ``acts`` permuted so that the view is contiguous in memory.

    Dense layouts (contiguous or channels-last) need no copy; anything else is copied once.
    """
    perm = sorted(range(4), key=lambda d: -acts.stride(d))
    view = acts.permute(*perm)
    if not view.is_contiguous():
        acts = acts.contiguous()
        perm, view = [0, 1, 2, 3], acts
    return perm, view


class HostLocated:
    """Pixels of one batch of host maps at or above a per-unit bound, found by a compiled count
    pass (``count()``); ids and values are filled only when asked for (``candidates()``,
    ``centres()``), by a second pass over the maps that hold any."""

    def __init__(self, acts, bound):
        self.acts = acts
        self._maps = acts.detach().numpy()
        self._bound = np.ascontiguousarray(bound.detach().cpu().numpy(), dtype=np.float32)
        b, u = acts.shape[:2]
        self._per_map = np.zeros(b * u, np.int64)
        self._n = _count_at_least(self._maps, self._bound, self._per_map)

    def count(self) -> int:
        """The number of pixels found."""
        return int(self._n)

    def _fill(self, neighbourhoods: bool):
        import torch

        starts = np.zeros(self._per_map.size + 1, np.int64)
        np.cumsum(self._per_map, out=starts[1:])
        ids = np.empty(self._n, np.int64)
        values = np.empty((self._n, NEIGHBOURS if neighbourhoods else 1), np.float32)
        _fill_at_least(self._maps, self._bound, starts, neighbourhoods, ids, values)
        return torch.from_numpy(ids), torch.from_numpy(values)

    def candidates(self) -> Candidates:
        """Return these pixels as Candidates (ids in logical order)."""
        ids, values = self._fill(True)
        return Candidates(tuple(self.acts.shape), ids, values)

    def centres(self):
        """``(ids int64 (n,), values float32 (n,))`` tensors, ids in logical order."""
        ids, values = self._fill(False)
        return ids, values[:, 0]


@numba.njit(cache=True, nogil=True)
def _count_at_least(maps, bound, per_map):
    """Count the values of maps float32 (B, U, h, w) (any strides) >= bound[u] into per_map
    int64 (B*U,); return the total."""
    b, units, h, w = maps.shape
    total = 0
    for image in range(b):
        for u in range(units):
            t = bound[u]
            n = 0
            for i in range(h):
                for j in range(w):
                    if maps[image, u, i, j] >= t:
                        n += 1
            per_map[image * units + u] = n
            total += n
    return total


@numba.njit(cache=True, nogil=True)
def _fill_at_least(maps, bound, starts, neighbourhoods, ids, values):
    """Write the logical ids and the clamped 3x3 neighbourhoods (or, without ``neighbourhoods``,
    the values) of the values >= bound[u] of maps (B, U, h, w), map m's from row starts[m]."""
    b, units, h, w = maps.shape
    for image in range(b):
        for u in range(units):
            m = image * units + u
            k = starts[m]
            if starts[m + 1] == k:
                continue
            t = bound[u]
            for i in range(h):
                for j in range(w):
                    if not maps[image, u, i, j] >= t:
                        continue
                    ids[k] = (m * h + i) * w + j
                    if neighbourhoods:
                        for di in range(3):
                            r = min(max(i + di - 1, 0), h - 1)
                            for dj in range(3):
                                c = min(max(j + dj - 1, 0), w - 1)
                                values[k, 3 * di + dj] = maps[image, u, r, c]
                    else:
                        values[k, 0] = maps[image, u, i, j]
                    k += 1


def locate(acts, bound):
    """Find the pixels of ``acts`` float32 (B, U, h, w) that are >= ``bound`` float32 (U,):
    a ``HostLocated`` for maps on the CPU, a ``Located`` (torch passes on the maps' device) else."""
    import torch

    if acts.device.type == "cpu" and acts.dtype == torch.float32:
        return HostLocated(acts, bound)
    return locate_torch(acts, bound)


def locate_torch(acts, bound) -> Located:
    """``locate`` by vectorised torch passes on the maps' device (``Located``)."""
    import torch

    perm, view = _memory_order(acts)
    shape = [1, 1, 1, 1]
    shape[perm.index(1)] = acts.shape[1]
    where = torch.nonzero((view >= bound.view(shape)).view(-1)).squeeze(1)
    return Located(acts, where, view.reshape(-1)[where], perm, view)


def find(acts, bound) -> Candidates:
    """Return the Candidates of ``acts`` float32 (B, U, h, w) at or above ``bound`` float32 (U,)."""
    return locate(acts, bound).candidates()
