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
above T, a small part of the map for Network Dissection's top quantiles. Only they are evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK_SAMPLES = 1 << 22  # output samples evaluated at once (bounds memory per chunk)
ROUNDING_MARGIN = 2.0**-40  # times a cell's largest |corner|: beyond any float64 rounding of its values


@dataclass
class AxisTable:
    """One axis of the upsampling, grouped by cell (``n_in + 1`` cells).

    ``w0``, ``w1`` float64 (n_in + 1, k): the weights (1 - l, l) of each cell's output rows, NaN
    past a cell's last row (NaN compares false, so padding never counts); ``start`` int64
    (n_in + 1,): a cell's first output row; ``count`` int64 (n_in + 1,): its number of rows;
    ``k``: the most rows of any cell; ``exact``: every weight is a multiple of 2^-20 and each
    pair sums to exactly 1 (power-of-two scales), so products with float32 values are exact in
    float64 and a value can never round above all four of its corners.
    """

    n_in: int
    n_out: int
    w0: object
    w1: object
    start: object
    count: object
    k: int
    exact: bool


def axis_table(n_in: int, n_out: int, device="cpu") -> AxisTable:
    """Return the cell-grouped weights of upsampling ``n_in`` source rows to ``n_out`` rows."""
    import torch

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

    def put(a):
        return torch.from_numpy(a).to(device)

    fine = lam * 2.0**20
    exact = bool(np.all(fine == np.round(fine)) and np.all((1.0 - lam) + lam == 1.0))
    return AxisTable(n_in, n_out, put(w0), put(w1), put(start), put(count), k, exact)


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
    """Upsampling tables from (h, w) maps to (sh, sw) label pixels, on one device."""

    def __init__(self, hw: tuple[int, int], size: tuple[int, int], device="cpu"):
        self.h, self.w = hw
        self.size = size
        self.rows = axis_table(self.h, size[0], device)
        self.cols = axis_table(self.w, size[1], device)
        # with exact weights a value exceeds T only if a corner does; otherwise rounding could
        # lift a value an ulp above corners equal to T, so corners equal to T count too
        self.strict = self.rows.exact and self.cols.exact
        # when upsampling, every cell holds output rows and columns; otherwise empty cells are dropped
        self.all_cells = bool((self.rows.count > 0).all() and (self.cols.count > 0).all())

    def active_pixels(self, candidates, thresholds):
        """Return the upsampled pixels above threshold as int64 tensors ``(pair, pixel)``.

        ``candidates``: ``candidates.Candidates`` of (B, U, h, w) maps at a bound <= the
        thresholds; ``thresholds`` float32 (U,) on the same device. ``pair`` is ``b * U + u``,
        ``pixel`` is ``(b * sh + y) * sw + x`` for a pixel (y, x) of the (sh, sw) label grid where
        unit u's upsampled map of image b exceeds T_u. Each active pixel appears once.
        """
        import torch

        b, u, h, w = candidates.shape
        if (h, w) != (self.h, self.w):
            raise ValueError(f"maps are {h}x{w}, this grid upsamples {self.h}x{self.w}")
        empty = torch.zeros(0, dtype=torch.int64, device=thresholds.device)
        candidates = candidates.above(thresholds) if self.strict else candidates.at_least(thresholds)
        n = candidates.ids.numel()
        if n == 0:
            return empty, empty
        # the four cells with a corner at each source pixel > T (>= T), in the (h + 1, w + 1) cell grid:
        # quadrant (di, dj) is cell (i + di, j + dj); its corners are neighbourhood rows di, di + 1
        # and columns dj, dj + 1
        h1, w1 = h + 1, w + 1
        ids = candidates.ids
        pair, i, j = ids // (h * w), (ids // w) % h, ids % w
        base = pair * (h1 * w1) + i * w1 + j
        cells, inverse = torch.unique(torch.cat([base, base + 1, base + w1, base + w1 + 1]), return_inverse=True)
        source = torch.empty(cells.numel(), dtype=torch.int64, device=ids.device)
        source.scatter_(0, inverse, torch.arange(4 * n, device=ids.device))  # any generating entry will do
        record, quadrant = source % n, source // n
        cpair, rest = cells // (h1 * w1), cells % (h1 * w1)
        ci, cj = rest // w1, rest % w1
        # the neighbourhood entry of the cell's top-left corner, as an index into the flat values
        first = record * 9 + (quadrant // 2) * 3 + quadrant % 2
        values = candidates.values.view(-1)
        corners = [values[first + off].double() for off in (0, 1, 3, 4)]
        if not self.all_cells:
            keep = (self.rows.count[ci] > 0) & (self.cols.count[cj] > 0)
            cpair, ci, cj, corners = cpair[keep], ci[keep], cj[keep], [c[keep] for c in corners]
        t = thresholds.double()[cpair % u]
        # far above float64 rounding of a value built from these corners (relative 2^-50 or so)
        margin = torch.stack(corners, 1).abs().amax(1) * ROUNDING_MARGIN
        if self.rows.k > 2 or self.cols.k > 2:
            cpair, ci, cj, t, margin, corners = self._refine(cpair, ci, cj, t, margin, corners)
        sh, sw = self.size
        origin = ((cpair // u) * sh + self.rows.start[ci]) * sw + self.cols.start[cj]  # each cell's first pixel
        out_p, out_pixel = [], []
        step = max(1, CHUNK_SAMPLES // (self.rows.k * self.cols.k))
        for s in range(0, cpair.numel(), step):
            part = slice(s, s + step)
            n, rr, cc = self._active_in_cells(ci[part], cj[part], t[part], margin[part], [c[part] for c in corners])
            out_p.append(cpair[part][n])
            out_pixel.append(origin[part][n] + rr * sw + cc)
        if not out_p:
            return empty, empty
        return torch.cat(out_p), torch.cat(out_pixel)

    def _active_in_cells(self, ci, cj, t, margin, corners):
        """Return (cell, row, col) of the output pixels of the given cells whose value is > t.

        Along an output row a cell's values are affine in the column weight, so a row whose two
        end samples are both clearly above t (by ``margin``, far beyond float64 rounding) is active
        throughout, and one with both clearly below is inactive; only the rows in between are
        evaluated sample by sample, with the formula of the module doc.
        """
        import torch

        x00, x01, x10, x11 = (c[:, None] for c in corners)
        a0, a1 = self.rows.w0[ci], self.rows.w1[ci]  # (N, kr), NaN past a cell's rows
        tt = t[:, None]
        if self.cols.k <= 2:  # at most two columns: evaluate them all
            b0, b1 = self.cols.w0[cj][:, None, :], self.cols.w1[cj][:, None, :]
            value = a0[:, :, None] * (b0 * x00[:, :, None] + b1 * x01[:, :, None]) + a1[:, :, None] * (b0 * x10[:, :, None] + b1 * x11[:, :, None])
            return torch.nonzero(value > tt[:, :, None], as_tuple=True)
        b0, b1 = self.cols.w0[cj], self.cols.w1[cj]  # (N, kc), NaN past a cell's columns
        top, bottom = b0 * x00 + b1 * x01, b0 * x10 + b1 * x11  # each column along the cell's two source rows
        last = (self.cols.count[cj] - 1)[:, None]
        left = a0 * top[:, :1] + a1 * bottom[:, :1]  # (N, kr): each row's first and last sample
        right = a0 * top.gather(1, last) + a1 * bottom.gather(1, last)
        low, high = torch.minimum(left, right), torch.maximum(left, right)  # NaN rows: neither test holds
        full = low > tt + margin[:, None]
        mixed = (high > tt - margin[:, None]) & ~full
        fn, fr = torch.nonzero(full, as_tuple=True)
        count = self.cols.count[cj[fn]]
        first = torch.cumsum(count, 0) - count
        full_n, full_r = torch.repeat_interleave(fn, count), torch.repeat_interleave(fr, count)
        full_c = torch.arange(full_n.numel(), device=fn.device) - torch.repeat_interleave(first, count)
        mn, mr = torch.nonzero(mixed, as_tuple=True)
        value = a0[mn, mr][:, None] * top[mn] + a1[mn, mr][:, None] * bottom[mn]
        k, c = torch.nonzero(value > tt[mn], as_tuple=True)
        return torch.cat([full_n, mn[k]]), torch.cat([full_r, mr[k]]), torch.cat([full_c, c])

    def _refine(self, cpair, ci, cj, t, margin, corners):
        """Drop cells whose largest sample cannot exceed t.

        A bilinear patch is affine along each axis, so its largest sample is at one of the four
        extreme samples (first/last row x first/last column); ``margin`` keeps every cell where
        rounding could matter.
        """
        import torch

        x00, x01, x10, x11 = corners
        best = None
        for at_row in (0, self.rows.count[ci] - 1):
            a0, a1 = self.rows.w0[ci, at_row], self.rows.w1[ci, at_row]
            for at_col in (0, self.cols.count[cj] - 1):
                b0, b1 = self.cols.w0[cj, at_col], self.cols.w1[cj, at_col]
                v = a0 * (b0 * x00 + b1 * x01) + a1 * (b0 * x10 + b1 * x11)
                best = v if best is None else torch.maximum(best, v)
        keep = best > t - margin
        return cpair[keep], ci[keep], cj[keep], t[keep], margin[keep], [c[keep] for c in corners]
