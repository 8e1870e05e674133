"""Exact thresholds from mergeable key histograms: equal to np.quantile, in any split and order."""

import numpy as np
import pytest

from cnninterp.dissect.quantiles import KeyHistogram, ThresholdSearch, float_keys, key_floats, linear_position


def _search(pieces: list[np.ndarray], q: float, order=None) -> np.ndarray:
    """Thresholds of (U, n_p) pieces: level 0 over every value, then each refinement level over
    the values at or above the level-0 floor only (what an activation cache keeps)."""
    units = pieces[0].shape[0]
    n = sum(p.shape[1] for p in pieces)
    order = order or list(range(len(pieces)))
    search = ThresholdSearch(n, q, units)
    parts = []
    for p in pieces:  # one histogram per piece (a shard), merged in the given order
        h = KeyHistogram(units)
        h.add(p[:, None, :, None].transpose(1, 0, 2, 3).copy())  # maps (1, U, n_p, 1)
        parts.append(KeyHistogram.from_state_dict(h.state_dict()))
    merged = KeyHistogram(units)
    for k in order:
        merged.merge(parts[k])
    floor = merged.floor(search.from_top())
    search.step(merged)
    while not search.done:
        level = []
        for p in pieces:
            keep = p >= floor[:, None]
            units_idx = np.nonzero(keep)[0]
            h = search.next_histogram()
            h.add((units_idx, p[keep]))
            level.append(h)
        total = search.next_histogram()
        for k in reversed(order):
            total.merge(level[k])
        search.step(total)
    return search.thresholds()


def _oracle(values: np.ndarray, q: float) -> np.ndarray:
    return np.quantile(values.astype(np.float64), 1 - q, axis=1, method="linear").astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
def test_thresholds_equal_np_quantile_in_any_split_and_order(seed):
    rng = np.random.default_rng(seed)
    units, n = 5, int(rng.integers(50, 3000))
    kind = seed % 3
    if kind == 0:
        values = rng.normal(size=(units, n)).astype(np.float32)
    elif kind == 1:  # ReLU-like: many exact zeros, ties, negatives absent
        values = np.maximum(rng.normal(size=(units, n)), 0).round(2).astype(np.float32)
    else:  # values that share their top key bits (close together), and -0.0 beside 0.0
        values = (1.0 + rng.integers(0, 40, size=(units, n)) * 1e-6).astype(np.float32)
        values[:, :3] = -0.0
    q = float(rng.choice([0.005, 0.01, 0.2, 0.5]))
    expected = _oracle(values, q)
    cuts = np.sort(rng.choice(np.arange(1, n), size=int(rng.integers(1, 6)), replace=False))
    pieces = np.split(values, cuts, axis=1)
    one_pass = _search([values], q)
    split = _search(pieces, q, order=list(rng.permutation(len(pieces))))
    np.testing.assert_array_equal(one_pass, expected)
    np.testing.assert_array_equal(split, expected)


def test_the_definition_example_of_the_readme():
    """M = 24,500 and q = 0.005: T lies 0.505 of the way from the 124th to the 123rd largest."""
    i, j, g = linear_position(24500, 0.005)
    assert (24500 - i, 24500 - j) == (124, 123) and g == pytest.approx(0.505, abs=1e-9)
    values = np.arange(24500, dtype=np.float32)[None, ::-1].copy()  # distinct: 24499 .. 0
    t = _search([values], 0.005)[0]
    largest = np.sort(values[0])[::-1]
    assert largest[123] < t < largest[122] and (values > t).sum() == 123
    assert t == _oracle(values, 0.005)[0]


def test_keys_sort_as_the_floats_do():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=1000) * 10.0 ** rng.integers(-30, 30, 1000), [0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45]]).astype(np.float32)
    keys = float_keys(x)
    order = np.argsort(keys, kind="stable")
    assert (np.diff(x[order]) >= 0).all()
    np.testing.assert_array_equal(key_floats(keys).view(np.uint32), x.view(np.uint32))


def test_state_size_does_not_depend_on_the_data_size():
    small, large = KeyHistogram(7), KeyHistogram(7)
    small.add(np.ones((2, 7, 3, 3), np.float32))
    large.add(np.random.default_rng(0).normal(size=(50, 7, 9, 9)).astype(np.float32))
    assert small.result().nbytes == large.result().nbytes == 7 * 8192 * 8  # in memory: fixed
    huge = KeyHistogram(7)
    huge.add(np.random.default_rng(1).standard_cauchy(size=(400, 7, 9, 9)).astype(np.float32) * 1e3)
    saved = [sum(v.nbytes for v in h.state_dict().values()) for h in (small, large, huge)]
    assert saved[0] < saved[1] < saved[2] <= 7 * 8192 * 16 + 256  # on disk: sparse, never above the bins'
    np.testing.assert_array_equal(KeyHistogram.from_state_dict(huge.state_dict()).result(), huge.result())


def test_histograms_of_other_levels_or_prefixes_refuse_to_merge():
    a = KeyHistogram(3, 1, np.zeros((3, 2), np.uint32))
    b = KeyHistogram(3, 1, np.ones((3, 2), np.uint32))
    with pytest.raises(ValueError, match="do not merge"):
        a.merge(b)
    with pytest.raises(ValueError, match="do not merge"):
        KeyHistogram(3).merge(a)


def test_linear_position_is_numpys_to_the_last_bit():
    """(i, j, g) give np.quantile's float64 value bit for bit over many sizes and quantiles
    (numpy's "linear" computes v = (n - 1) * p; the Hyndman-Fan form n*p + 1 - p - 1 differs
    in the last bit for e.g. n = 160, q = 0.02, g 0.82000000000002 against 0.8199999999999932)."""
    from cnninterp.dissect.quantiles import lerp

    rng = np.random.default_rng(0)
    for n in range(1, 400):
        values = np.sort(rng.normal(size=n))
        for q in (0.005, 0.02, 0.05, 0.3, 0.77):
            i, j, g = linear_position(n, q)
            got = lerp(values[i], values[j], g)
            want = np.quantile(values, 1 - q)
            assert got.tobytes() == np.float64(want).tobytes(), (n, q, got, want)


def test_device_counting_equals_the_host_loop_on_edge_values():
    """The accelerator path of level-0 counting (torch ops, run here on CPU tensors) gives the
    same per-unit bin counts as the compiled host loop, for signed zeros, infinities,
    denormals, negative and channels-last maps."""
    import torch

    from cnninterp.dissect.quantiles import count_maps_on_device

    rng = np.random.default_rng(0)
    maps = rng.standard_normal((3, 5, 6, 7)).astype(np.float32) * 10
    flat = maps.reshape(-1)
    flat[:6] = [0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45]
    host = KeyHistogram(5)
    host.add(maps)
    for tensor in (torch.from_numpy(maps), torch.from_numpy(maps).contiguous(memory_format=torch.channels_last)):
        counts = count_maps_on_device(tensor, host.shift, host.counts.shape[2])
        assert counts.shape == (5, 1 << 13) and counts.dtype == np.int64
        np.testing.assert_array_equal(counts, host.counts[:, 0, :])
    # and the counts are the keys' top 13 bits, from the public key function
    expected = np.zeros((5, 1 << 13), np.int64)
    for u in range(5):
        np.add.at(expected[u], float_keys(maps[:, u]).ravel() >> 19, 1)
    np.testing.assert_array_equal(host.counts[:, 0, :], expected)


def test_compiled_passes_equal_the_plain_definitions():
    """The compiled paths of the threshold merge count exactly what the definitions say: values
    by logical id (``add_ids``, strided views) and level >= 1 maps as (unit, value) pairs, and
    the running floor is the lower edge of the bin where the reversed cumulative count first
    reaches ``from_top`` (numpy's cumsum, by hand here)."""
    import torch

    rng = np.random.default_rng(3)
    maps = rng.standard_normal((4, 3, 5, 6)).astype(np.float32)
    maps[0, 0, 0, :3] = [-0.0, 0.0, np.inf]
    b, u, h, w = maps.shape
    units = np.broadcast_to(np.arange(u)[None, :, None, None], maps.shape).ravel()
    search = ThresholdSearch(maps.size // u, 0.1, u)
    level0 = KeyHistogram(u)
    level0.add(maps)
    search.step(level0)
    upper = np.quantile(maps.transpose(1, 0, 2, 3).reshape(u, -1), 0.8, axis=1).astype(np.float32)
    ids = rng.permutation(np.flatnonzero(maps >= upper[None, :, None, None]))  # every target's values, shuffled
    wide = np.zeros((ids.size, 9), np.float32)
    wide[:, 4] = maps.ravel()[ids]
    for level in (0, 1):
        plain = KeyHistogram(u) if level == 0 else search.next_histogram()
        fast = KeyHistogram(u) if level == 0 else search.next_histogram()
        plain.add((units.ravel()[ids], maps.ravel()[ids]))
        fast.add_ids(torch.from_numpy(ids), torch.from_numpy(wide)[:, 4], maps.shape)  # a strided column
        np.testing.assert_array_equal(fast.counts, plain.counts)
        assert plain.counts.sum() > 0
    plain, fast = search.next_histogram(), search.next_histogram()
    plain.add((units, maps.ravel()))
    fast.add(torch.from_numpy(maps).to(memory_format=torch.channels_last))
    np.testing.assert_array_equal(fast.counts, plain.counts)
    assert plain.counts.sum() >= 2  # both targets' values were counted
    for from_top in (1, 7, 30, 31):
        reverse = np.cumsum(level0.counts[:, 0, ::-1], 1)
        bins = level0.counts.shape[2] - 1 - (reverse < from_top).sum(1)
        np.testing.assert_array_equal(level0.floor(from_top), key_floats(bins.astype(np.uint32) << np.uint32(level0.shift)))
    assert level0.floor(b * h * w + 1) is None
