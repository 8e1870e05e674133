"""Candidate source pixels: activations at or above a per-unit bound, with their 3x3 neighbourhoods.

Network Dissection's thresholds are top quantiles, so only a small part of a layer's activations
can take part in an active region. Bilinear upsampling reads four source corners that lie in the
3x3 neighbourhood of each of them, so the candidates at a bound <= T hold everything needed to
find every upsampled pixel above T (see ``bilinear.CellGrid.count``), in a fraction of the maps' room.

Indices: a candidate's ``id`` is its position in the logical (B, U, h, w) order,
``((b * U + u) * h + i) * w + j``, whatever the memory layout of the maps it came from
(hooks often return channels-last tensors, which are used in place, without a copy).
"""

from __future__ import annotations

from dataclasses import dataclass

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


def locate(acts, bound) -> Located:
    """Find the pixels of ``acts`` float32 (B, U, h, w) that are >= ``bound`` float32 (U,)."""
    import torch

    perm, view = _memory_order(acts)
    shape = [1, 1, 1, 1]
    shape[perm.index(1)] = acts.shape[1]
    where = torch.nonzero((view >= bound.view(shape)).view(-1)).squeeze(1)
    return Located(acts, where, view.reshape(-1)[where], perm, view)


def find(acts, bound) -> Candidates:
    """Return the Candidates of ``acts`` float32 (B, U, h, w) at or above ``bound`` float32 (U,)."""
    return locate(acts, bound).candidates()
