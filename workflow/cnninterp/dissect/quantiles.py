"""Exact per-unit top quantiles in bounded memory: mergeable histograms over float32 keys.

Definition. A unit's threshold is ``T = float32(numpy.quantile(a, 1 - q, method="linear"))``
over its M values ``a`` (every image, every map position; computed in float64). Sorting the
values ascending, ``a_(0) <= ... <= a_(M-1)``, numpy places T at the virtual index
``v = (M-1)*(1-q)`` (float64, as numpy's "linear" method computes it; the generic Hyndman-Fan
form ``M*p + (1 - p) - 1`` rounds differently at times and moved T by an ulp), ``i = floor(v)``,
``g = v - i``: T lies between ``a_(i)`` and ``a_(i+1)`` (the (M-i)-th and (M-i-1)-th largest),
``T = a_(i) + g*(a_(i+1) - a_(i))`` (numpy's ``_lerp``: ``a_(i+1) - (1-g)*(...)`` when g >= 0.5).
So at most ``M - 1 - i`` values exceed T (all of them when ``a_(i+1) > T``), about q*M, and T is
an order statistic only when g = 0 or the two neighbours are equal. Example (checked in
tests/test_quantiles.py): M = 24,500, q = 0.005: v = 24376.505, so T lies 0.505 of the way from
the 124th largest value (i = 24376) to the 123rd largest, and 123 values exceed it when they are
distinct; an order-statistic definition would take the 124th largest itself.

How. A float32's bits map to a uint32 key with the same order (``float_keys``). The two order
statistics are found by radix selection over the keys in three levels of 13, 10 and 9 bits:
level 0 counts every value of a unit into 8,192 bins of its top 13 key bits (the quantile pass,
per shard); the merged counts name, for each of the two ranks, the bin that holds it and its
rank inside; level 1 counts the values inside that bin by their next 10 bits, level 2 by the last
9, which pins the exact key. Each level is a ``KeyHistogram`` of fixed size (U x 8,192 or
U x 2 x 1,024 int64), whatever the number of images or shards, and histograms add, so levels
merge in any order and split. Levels 1 and 2 read only values at or above a lower bound of T
(the activation cache keeps them; see ``KeyHistogram.floor``).
"""

from __future__ import annotations

import numba
import numpy as np

LEVEL_BITS = (13, 10, 9)
TARGETS = 2  # the two order statistics T lies between


def float_keys(values: np.ndarray) -> np.ndarray:
    """Return uint32 keys of float32 ``values`` (any shape) that sort as the values do
    (-0.0 just below +0.0; NaN above +inf or below -inf, never produced by checked activations)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return np.where(bits & np.uint32(0x80000000), ~bits, bits | np.uint32(0x80000000)).astype(np.uint32)


def key_floats(keys: np.ndarray) -> np.ndarray:
    """Inverse of ``float_keys``: float32 values of uint32 ``keys``."""
    keys = np.asarray(keys, dtype=np.uint32)
    bits = np.where(keys & np.uint32(0x80000000), keys & np.uint32(0x7FFFFFFF), ~keys).astype(np.uint32)
    return bits.view(np.float32)


def linear_position(n: int, q: float) -> tuple[int, int, float]:
    """numpy's linear-quantile position of ``1 - q`` over ``n`` values: (i, j, g) with T between
    the ascending order statistics i and j (= min(i + 1, n - 1)) at weight g, as numpy computes them."""
    if n <= 0:
        raise ValueError(f"quantile over {n} values")
    p = 1.0 - q
    v = float(np.float64(n - 1) * p)  # numpy's "linear": get_virtual_index = (n - 1) * quantiles
    if v < 0:
        return 0, 0, 0.0
    if v >= n - 1:
        return n - 1, n - 1, 0.0
    i = int(np.floor(v))
    return i, i + 1, v - i


def lerp(lo: np.ndarray, hi: np.ndarray, g: float) -> np.ndarray:
    """numpy's ``_lerp`` in float64: lo + g (hi - lo), or hi - (1 - g)(hi - lo) when g >= 0.5."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    diff = hi - lo
    return hi - diff * (1 - g) if g >= 0.5 else lo + diff * g


class KeyHistogram:
    """Per-unit counts of float32 keys at one level of the radix selection (mergeable statistic).

    Level 0: ``counts`` int64 (U, 1, 8192), every value by its top 13 key bits. Level l >= 1:
    ``prefixes`` uint32 (U, 2) (each target's key bits fixed by the levels before, right-aligned)
    and ``counts`` int64 (U, 2, 2**LEVEL_BITS[l]): the values whose key starts with the target's
    prefix, by their next bits. Protocol: ``add(batch)``, ``merge(other)``, ``state_dict()`` /
    ``from_state_dict()``, ``result()``.
    """

    def __init__(self, units: int, level: int = 0, prefixes: np.ndarray | None = None):
        self.units, self.level = units, level
        bins = 1 << LEVEL_BITS[level]
        if level == 0:
            self.prefixes = np.zeros((units, 1), np.uint32)
            self.counts = np.zeros((units, 1, bins), np.int64)
        else:
            self.prefixes = np.ascontiguousarray(prefixes, dtype=np.uint32).reshape(units, TARGETS)
            self.counts = np.zeros((units, TARGETS, bins), np.int64)

    @property
    def shift(self) -> int:
        """How far right a key is shifted to leave the bits up to and including this level."""
        return 32 - sum(LEVEL_BITS[: self.level + 1])

    def add(self, batch) -> None:
        """Count a batch: maps float32 (B, U, h, w) (numpy or a tensor on any device), or
        ``(units int64 (n,), values float32 (n,))`` for scattered values of given units."""
        if isinstance(batch, tuple):
            units, values = (np.ascontiguousarray(_host(x)) for x in batch)
            keys = float_keys(values.astype(np.float32, copy=False))
            _count_scattered(units.astype(np.int64, copy=False), keys, self.prefixes, self.shift, LEVEL_BITS[self.level], self.level, self.counts)
            return
        if batch.shape[1] != self.units:
            raise ValueError(f"a batch of {batch.shape[1]} units for a histogram of {self.units}")
        if self.level == 0 and not isinstance(batch, np.ndarray) and batch.device.type != "cpu":
            # on an accelerator: count there and bring back U x bins counts, not the maps
            self.counts[:, 0, :] += count_maps_on_device(batch, self.shift, self.counts.shape[2])
            return
        _count_maps_at_level(_host(batch).view(np.uint32), self.prefixes, self.shift, LEVEL_BITS[self.level], self.level, self.counts)

    def add_ids(self, ids, values, shape) -> None:
        """Count scattered values given by logical ids: ``ids`` int64 (n,) positions
        ``((b*U + u)*h + i)*w + j`` in maps of ``shape`` (B, U, h, w), ``values`` float32 (n,)
        (any strides; numpy or CPU tensors). Equal to ``add((ids // (h*w) % U, values))``, in one
        compiled pass without the unit and key arrays."""
        b, u, h, w = shape
        if u != self.units:
            raise ValueError(f"values of {u} units for a histogram of {self.units}")
        ids, values = _host(ids), _host(values)
        _count_ids(ids.astype(np.int64, copy=False), values.astype(np.float32, copy=False).view(np.uint32), h * w, u, self.prefixes, self.shift, LEVEL_BITS[self.level], self.level, self.counts)

    def merge(self, other: "KeyHistogram") -> "KeyHistogram":
        """Add ``other``'s counts (same units, level and prefixes) into this one; return self."""
        if other.level != self.level or other.counts.shape != self.counts.shape or not np.array_equal(other.prefixes, self.prefixes):
            raise ValueError("histograms of different units, levels or prefixes do not merge")
        self.counts += other.counts
        return self

    def state_dict(self) -> dict:
        """The state as arrays, sparse (activations fill few of the bins): ``level`` int64 (),
        ``prefixes`` uint32, ``shape`` int64 (3,) of the counts, ``index`` int64 (nnz,) flat
        positions of the non-zero counts and ``counts`` int64 (nnz,)."""
        index = np.flatnonzero(self.counts)
        return {"level": np.array(self.level), "prefixes": self.prefixes, "shape": np.array(self.counts.shape), "index": index, "counts": self.counts.ravel()[index]}

    @classmethod
    def from_state_dict(cls, state: dict) -> "KeyHistogram":
        """Rebuild a histogram from ``state_dict()``'s arrays."""
        level = int(state["level"])
        shape = tuple(int(x) for x in state["shape"])
        out = cls(shape[0], level, None if level == 0 else state["prefixes"])
        if out.counts.shape != shape:
            raise ValueError(f"histogram counts of shape {shape} at level {level}")
        out.counts.ravel()[np.asarray(state["index"], np.int64)] = np.asarray(state["counts"], np.int64)
        return out

    def result(self) -> np.ndarray:
        """The counts int64 (U, 1 or 2, bins)."""
        return self.counts

    def floor(self, from_top: int) -> np.ndarray | None:
        """Level 0 only: float32 (U,) the lower edge of each unit's bin holding its ``from_top``-th
        largest value so far, or None while a unit has fewer values. The final threshold of a
        dataset whose (from_top)-th largest value decides it is >= this edge (the dataset's
        (from_top)-th largest is at least this subset's), so values below it are never needed."""
        bins = np.zeros(self.units, np.int64)
        if not _floor_bins(self.counts, from_top, bins):
            return None
        return key_floats(bins.astype(np.uint32) << np.uint32(self.shift))


def descend(counts: np.ndarray, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each unit and target, the bin int64 (U, 2) of ``counts`` (U, 1 or 2, bins) that holds
    the ascending rank ``ranks`` int64 (U, 2), and the rank inside that bin (U, 2)."""
    counts = np.broadcast_to(counts, (counts.shape[0], TARGETS, counts.shape[2]))
    cum = np.cumsum(counts, axis=2)
    if (cum[:, :, -1] <= ranks).any():
        raise ValueError("a rank beyond the values counted: the histograms do not cover the data")
    bins = (cum <= ranks[:, :, None]).sum(2)
    below = np.where(bins > 0, np.take_along_axis(cum, np.maximum(bins - 1, 0)[:, :, None], 2)[:, :, 0], 0)
    return bins.astype(np.int64), ranks - below


class ThresholdSearch:
    """The radix selection of one layer's thresholds from merged level histograms.

    ``ranks`` int64 (U, 2): per unit, the ascending ranks (i, j) of ``linear_position`` still to
    find inside the current prefixes; ``prefixes`` uint32 (U, 2) the key bits fixed so far.
    Use: ``start(level0)``; while ``not done``: build ``next_histogram()``, fill it with the values
    (at or above the floor), ``step(it)``; then ``thresholds()``.
    """

    def __init__(self, n: int, q: float, units: int):
        self.n, self.q, self.units = n, q, units
        i, j, self.g = linear_position(n, q)
        self.ranks = np.tile(np.array([[i, j]], np.int64), (units, 1))
        self.prefixes = np.zeros((units, TARGETS), np.uint32)
        self.level = 0

    def from_top(self) -> int:
        """How many of the largest values decide the thresholds: n - i."""
        return self.n - int(self.ranks[0, 0])

    def step(self, hist: KeyHistogram) -> None:
        """Narrow the prefixes with the merged histogram of the current level."""
        if hist.level != self.level:
            raise ValueError(f"a level {hist.level} histogram for level {self.level}")
        totals = hist.counts[:, 0].sum(1)
        if self.level == 0 and (totals != self.n).any():
            raise ValueError(f"histograms cover {sorted(set(totals.tolist()))} values per unit, the data {self.n}")
        bins, self.ranks = descend(hist.counts, self.ranks)
        self.prefixes = (self.prefixes << np.uint32(LEVEL_BITS[self.level])) | bins.astype(np.uint32)
        self.level += 1

    @property
    def done(self) -> bool:
        """True once all key bits are fixed."""
        return self.level == len(LEVEL_BITS)

    def next_histogram(self) -> KeyHistogram:
        """An empty histogram of the next level for these prefixes."""
        return KeyHistogram(self.units, self.level, self.prefixes)

    def thresholds(self) -> np.ndarray:
        """float32 (U,): T per unit (see the module's definition)."""
        if not self.done:
            raise ValueError("the search has not reached the last level")
        values = key_floats(self.prefixes)
        return lerp(values[:, 0], values[:, 1], self.g).astype(np.float32)


def count_maps_on_device(maps, shift: int, bins: int) -> np.ndarray:
    """Level-0 counts of float32 maps (B, U, h, w) (a torch tensor, counted on its own device):
    returns int64 (U, bins) on the host, equal to ``_count_maps_at_level`` at level 0. Keys are built in int64 from
    the maps' int32 bit patterns (torch has no uint32 arithmetic): a non-negative pattern x has
    key x + 2^31, so bin (x >> shift) + bins / 2; a negative one has key ~x, bin (~x) >> shift.
    One int64 index array (for bincount), in whatever memory layout the maps have."""
    import torch

    units = maps.shape[1]
    x = maps.detach().view(torch.int32)
    index = torch.where(x >= 0, (x >> shift) + (bins >> 1), (~x) >> shift).to(torch.int64)
    index += torch.arange(units, device=maps.device, dtype=torch.int64).view(1, units, 1, 1) * bins
    return torch.bincount(index.reshape(-1), minlength=units * bins).view(units, bins).cpu().numpy()


def _host(x) -> np.ndarray:
    """A tensor (any device) or array as a numpy float/int array on the host."""
    if isinstance(x, np.ndarray):
        return x
    return x.detach().cpu().numpy()


@numba.njit(cache=True, nogil=True, inline="always")
def _sortable_key(bits):
    """The uint32 bits of one float32 (as int64) -> its order-preserving key (``float_keys``), int64."""
    x = np.int64(bits)
    return 0xFFFFFFFF - x if x >= 0x80000000 else x + 0x80000000


@numba.njit(cache=True, nogil=True, inline="always")
def _count_key(counts, u, key, prefixes, shift, nbits, level):
    """Count one key int64 of unit u into counts (U, T, bins): at level 0 into bin key >> shift,
    else, for each target t whose prefix (U, T) equals the key's bits above this level, into bin
    (key >> shift) & (2**nbits - 1)."""
    if level == 0:
        counts[u, 0, key >> shift] += 1
        return
    head = key >> (shift + nbits)
    mask = (1 << nbits) - 1
    for t in range(prefixes.shape[1]):
        if head == np.int64(prefixes[u, t]):
            counts[u, t, (key >> shift) & mask] += 1


@numba.njit(cache=True, nogil=True)
def _count_maps_at_level(bits, prefixes, shift, nbits, level, counts):
    """Count uint32 views of float32 maps (B, U, h, w) (any strides) into counts (U, T, bins) as
    ``_count_key`` does (level 0: every value; ``prefixes`` is then unused)."""
    b, units, h, w = bits.shape
    for u in range(units):
        for image in range(b):
            for i in range(h):
                for j in range(w):
                    _count_key(counts, u, _sortable_key(bits[image, u, i, j]), prefixes, shift, nbits, level)


@numba.njit(cache=True, nogil=True)
def _count_scattered(units, keys, prefixes, shift, nbits, level, counts):
    """Count keys uint32 (n,) of units (n,) into counts (U, T, bins) as ``_count_key`` does."""
    for k in range(keys.shape[0]):
        _count_key(counts, units[k], np.int64(keys[k]), prefixes, shift, nbits, level)


@numba.njit(cache=True, nogil=True)
def _count_ids(ids, bits, plane, units, prefixes, shift, nbits, level, counts):
    """Count uint32 views of float32 values (n,) at logical ids (n,) (unit = id // plane % units)
    as ``_count_key`` does."""
    for k in range(ids.shape[0]):
        _count_key(counts, (ids[k] // plane) % units, _sortable_key(bits[k]), prefixes, shift, nbits, level)


@numba.njit(cache=True, nogil=True)
def _floor_bins(counts, from_top, bins):
    """Per unit, the bin of counts (U, 1, nbins) holding the ``from_top``-th largest value, found
    from the top bin down, into bins int64 (U,); False (bins unfinished) if a unit has fewer."""
    units, _, nbins = counts.shape
    for u in range(units):
        seen = 0
        b = nbins - 1
        while b >= 0:
            seen += counts[u, 0, b]
            if seen >= from_top:
                break
            b -= 1
        if b < 0:
            return False
        bins[u] = b
    return True
