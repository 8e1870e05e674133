"""Bilinear upsampling of activation maps, evaluated only where it can exceed a threshold.

The definition (align_corners=False, as torch's ``F.interpolate`` and NetDissect): output row d of
``n_out`` rows sampled from ``n_in`` rows reads the source coordinate
``s = max((d + 0.5) * (n_in / n_out) - 0.5, 0)``, rows ``i0 = min(floor(s), n_in - 1)`` and
``i1 = min(i0 + 1, n_in - 1)`` with weights ``1 - l`` and ``l = s - i0``; columns likewise, and

    value = (1 - l_r) * ((1 - l_c) * x[i0, j0] + l_c * x[i0, j1])
          + l_r       * ((1 - l_c) * x[i1, j0] + l_c * x[i1, j1])

evaluated in float64 in exactly that order (so the result does not depend on whether the
platform fuses multiply-adds; for power-of-two scales every product and sum is exact).

Cells: output rows are grouped by ``c = clamp(floor(s_raw), -1, n_in - 1) + 1`` (``s_raw`` before
clamping at 0), so cell c's rows read only source rows ``clamp(c - 1)`` and ``clamp(c)``; a cell
is a rectangle of output pixels sharing four source corners. A value is a convex combination of
its cell's corners, so it can exceed a threshold T only in cells with a corner > T (>= T when
rounding could matter, see ``AxisTable.exact``): those are the cells around the source pixels
above T, a small part of the map for Network Dissection's top quantiles. Only they are evaluated
(``CellGrid.count``, compiled in ``tally_kernels``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

@dataclass
class AxisTable:
    """One axis of the upsampling, grouped by cell (``n_in + 1`` cells).

    ``w0``, ``w1`` float64 (n_in + 1, k): the weights (1 - l, l) of each cell's output rows, NaN
    past a cell's last row; ``start`` int64
    (n_in + 1,): a cell's first output row; ``count`` int64 (n_in + 1,): its number of rows;
    ``k``: the most rows of any cell; ``exact``: every weight is a multiple of 2^-20 and each
    pair sums to exactly 1 (power-of-two scales), so products with float32 values are exact in
    float64 and a value can never round above all four of its corners.
    """

    n_in: int
    n_out: int
    w0: np.ndarray
    w1: np.ndarray
    start: np.ndarray
    count: np.ndarray
    k: int
    exact: bool


def axis_table(n_in: int, n_out: int) -> AxisTable:
    """Return the cell-grouped weights of upsampling ``n_in`` source rows to ``n_out`` rows."""
    raw = _source(n_in, n_out)
    i0, _, lam = _plain_axis(n_in, n_out)
    cell = np.clip(np.floor(raw).astype(np.int64), -1, n_in - 1) + 1
    count = np.bincount(cell, minlength=n_in + 1)
    start = np.cumsum(count) - count
    k = int(count.max())
    pos = np.arange(n_out) - start[cell]
    w0 = np.full((n_in + 1, k), np.nan)
    w1 = np.full((n_in + 1, k), np.nan)
    w0[cell, pos] = 1.0 - lam
    w1[cell, pos] = lam

    fine = lam * 2.0**20
    exact = bool(np.all(fine == np.round(fine)) and np.all((1.0 - lam) + lam == 1.0))
    return AxisTable(n_in, n_out, w0, w1, start, count, k, exact)


def upsample(maps, size: tuple[int, int]) -> np.ndarray:
    """Upsample maps by the definition above: float (..., h, w) -> float64 numpy (..., sh, sw).

    Plain numpy, for small inputs (tests, the report's galleries); the engine evaluates only
    candidate cells, with the same operations in the same order.
    """
    x = np.asarray(maps, dtype=np.float64)
    r0, r1, lr = _plain_axis(x.shape[-2], size[0])
    c0, c1, lc = _plain_axis(x.shape[-1], size[1])
    b0, b1 = 1.0 - lc, lc
    top = b0 * x[..., r0, :][..., c0] + b1 * x[..., r0, :][..., c1]
    bottom = b0 * x[..., r1, :][..., c0] + b1 * x[..., r1, :][..., c1]
    return (1.0 - lr)[:, None] * top + lr[:, None] * bottom


def _source(n_in: int, n_out: int) -> np.ndarray:
    """Source coordinate of each output row before clamping at 0: (d + 0.5) * (n_in / n_out) - 0.5."""
    return (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5


def _plain_axis(n_in: int, n_out: int):
    """Per output row: the two source rows and the weight of the second (the first has 1 - it)."""
    src = np.maximum(_source(n_in, n_out), 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    return i0, np.minimum(i0 + 1, n_in - 1), src - i0




class CellGrid:
    """Upsampling tables from (h, w) maps to (sh, sw) label pixels, and the tally's count over them."""

    def __init__(self, hw: tuple[int, int], size: tuple[int, int]):
        self.h, self.w = hw
        self.size = size
        self.rows = axis_table(self.h, size[0])
        self.cols = axis_table(self.w, size[1])
        # with exact weights a value exceeds T only if a corner does; otherwise rounding could
        # lift a value an ulp above corners equal to T, so corners equal to T open cells too
        self.strict = self.rows.exact and self.cols.exact
        self._visited = np.zeros(0, dtype=np.uint8)

    def count(self, ids: np.ndarray, values: np.ndarray, shape: tuple, thresholds: np.ndarray, pixels: np.ndarray, bits: np.ndarray, inter: np.ndarray, n_active: np.ndarray, touched: np.ndarray) -> int:
        """Count the upsampled pixels above threshold of one batch of candidates (in place).

        ``ids`` int64 (n,), ``values`` float32 (n, 9): ``candidates.Candidates`` of (B, U, h, w)
        maps at a bound <= ``thresholds`` float32 (U,), as numpy arrays. A pixel (y, x) of image b
        is active for unit u when its upsampled value exceeds T_u; it is counted once into
        ``inter[u, label]`` for each label in ``pixels[(b*sh + y)*sw + x]`` (int32 (B*sh*sw, L),
        0 for none: column 0 collects those), into ``n_active[b*U + u]``, and its category
        ``bits`` OR into ``touched[b*U + u]``. Returns the number of active pixels.
        """
        from .tally_kernels import count_cells

        b, u, h, w = shape
        if (h, w) != (self.h, self.w):
            raise ValueError(f"maps are {h}x{w}, this grid upsamples {self.h}x{self.w}")
        cells = b * u * (h + 1) * (w + 1)
        if self._visited.size < cells:
            self._visited = np.zeros(cells, dtype=np.uint8)
        r, c = self.rows, self.cols
        sh, sw = self.size
        return count_cells(ids, values, u, h, w, thresholds, self.strict, r.start, r.count, r.w0, r.w1, c.start, c.count, c.w0, c.w1, sh, sw, pixels, bits, self._visited, inter, n_active, touched)
