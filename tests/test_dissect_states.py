"""The dissection's typed states on disk: file round trips, merges in any order, and refused files
(the old "<layer>|<what>" layout, foreign .npz files, another kind or layout version)."""

import itertools

import numpy as np
import pytest
import torch

from cnninterp.dissect.quantiles import KeyHistogram
from cnninterp.dissect.statefile import read_state, write_state
from cnninterp.dissect.states import LayerQuantiles, LayerThresholds, QuantilePart, TallyPart, Thresholds, TopImages
from cnninterp.dissect.tally import LayerTally, make_label_batch
from cnninterp.errors import DataError

PRIMARY = np.array([-1, 0, 0, 1, 1])


def _acts(seed, n=6, units=3, hw=(4, 5)):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, units) + hw).astype(np.float32))


def _quantile_part(seed, first_key=0):
    """A part of two layers ('a.b' 3 units, 'c|d': a name with the old separator) over 6 images."""
    layers = {}
    keys = [f"{first_key + i:05d}" for i in range(6)]
    for name, units in (("a.b", 3), ("c|d", 2)):
        acts = _acts(seed, units=units)
        hist, tops = KeyHistogram(units), TopImages(2)
        hist.add(acts)
        tops.add(acts, keys, acts.amax(dim=(2, 3)))
        layers[name] = LayerQuantiles((4, 5), hist, tops, 17)
    return QuantilePart(6, layers)


def _tally_part(seed):
    """A tally of two layers over 4 random images with random labels and thresholds 0.5."""
    rng = np.random.default_rng(seed)
    seg = rng.integers(0, len(PRIMARY), size=(4, 1, 8, 10)).astype(np.uint16)
    labels = make_label_batch(seg, [[], [3], [], [1, 4]], PRIMARY, len(PRIMARY), 2)
    layers = {}
    for name, units in (("layer1", 3), ("layer2", 2)):
        tally = LayerTally(units, len(PRIMARY), 2)
        tally.add(_acts(seed, n=4, units=units), np.full(units, 0.5, np.float32), labels)
        layers[name] = tally
    return TallyPart(4, labels.area.copy(), layers, "digest of thresholds 0.5")


def _assert_tops_equal(a: TopImages, b: TopImages):
    for x, y in zip(a.result(), b.result()):
        np.testing.assert_array_equal(x, y)


def test_quantile_part_file_round_trip_and_merge_in_any_order(tmp_path):
    parts = [_quantile_part(s, first_key=10 * s) for s in range(3)]
    paths = []
    for i, part in enumerate(parts):
        paths.append(tmp_path / f"q{i}.npz")
        write_state(paths[-1], part)
    back = read_state(paths[0], QuantilePart)
    assert list(back.layers) == ["a.b", "c|d"] and back.images == 6
    for name in back.layers:
        np.testing.assert_array_equal(back.layers[name].histogram.result(), parts[0].layers[name].histogram.result())
        _assert_tops_equal(back.layers[name].tops, parts[0].layers[name].tops)
        assert back.layers[name].hw == (4, 5) and back.layers[name].floor_from_top == 17
    merged = []
    for order in itertools.permutations(range(3)):
        m = read_state(paths[order[0]], QuantilePart)
        for i in order[1:]:
            m.merge(read_state(paths[i], QuantilePart))
        merged.append(m)
    for m in merged[1:]:
        assert m.images == 18
        for name in m.layers:
            np.testing.assert_array_equal(m.layers[name].histogram.result(), merged[0].layers[name].histogram.result())
            _assert_tops_equal(m.layers[name].tops, merged[0].layers[name].tops)
    assert merged[0].layers["a.b"].histogram.result().sum() == 18 * 3 * 20


def test_thresholds_file_round_trip_and_select(tmp_path):
    tops = _quantile_part(0).layers["a.b"].tops
    state = Thresholds(40, 0.005, {"layer4": LayerThresholds((7, 7), np.array([0.5, -0.0, 3e-8], np.float32), tops), "layer1": LayerThresholds((2, 3), np.array([1.0], np.float32), tops)})
    write_state(tmp_path / "t.npz", state)
    back = read_state(tmp_path / "t.npz", Thresholds)
    assert (back.images, back.quantile, list(back.layers)) == (40, 0.005, ["layer4", "layer1"])
    np.testing.assert_array_equal(back.layers["layer4"].threshold.view(np.uint32), state.layers["layer4"].threshold.view(np.uint32))
    assert back.layers["layer4"].hw == (7, 7)
    _assert_tops_equal(back.layers["layer1"].tops, tops)
    assert list(back.select(["layer1"]).layers) == ["layer1"]
    with pytest.raises(DataError, match="no layer.*layer3"):
        back.select(["layer3"])


def test_tally_parts_counted_at_different_thresholds_do_not_merge():
    other = _tally_part(1)
    other.thresholds = "digest of other thresholds"
    with pytest.raises(DataError, match="counted at different thresholds"):
        _tally_part(0).merge(other)


def test_tally_part_file_round_trip_and_merge_in_any_order(tmp_path):
    parts = [_tally_part(s) for s in range(3)]
    for i, part in enumerate(parts):
        write_state(tmp_path / f"t{i}.npz", part)
    sums = []
    for order in itertools.permutations(range(3)):
        m = read_state(tmp_path / f"t{order[0]}.npz", TallyPart)
        for i in order[1:]:
            m.merge(read_state(tmp_path / f"t{i}.npz", TallyPart))
        sums.append(m)
    want_area = sum(p.area for p in parts)
    for m in sums:
        assert m.images == 12
        np.testing.assert_array_equal(m.area, want_area)
        for name in ("layer1", "layer2"):
            for what, value in m.layers[name].result().items():
                np.testing.assert_array_equal(value, sum(p.layers[name].result()[what] for p in parts), err_msg=f"{name} {what}")
    assert sums[0].layers["layer1"].result()["inter"].sum() > 0


def test_old_layout_foreign_and_other_kinds_are_refused_naming_the_file(tmp_path):
    old = tmp_path / "thresholds.npz"
    np.savez(old, **{"layer4|threshold": np.zeros(3, np.float32), "images": np.array(4)})
    with pytest.raises(DataError, match=r"thresholds\.npz is in the '<layer>\|<what>' layout of an earlier version.*rerun"):
        read_state(old, Thresholds)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    with pytest.raises(DataError, match=r"foreign\.npz is not a dissection state file"):
        read_state(foreign)
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    with pytest.raises(DataError, match=r"text\.npz is not a readable \.npz"):
        read_state(text)
    with pytest.raises(DataError, match=r"missing\.npz is missing"):
        read_state(tmp_path / "missing.npz")
    tally = tmp_path / "tally.npz"
    write_state(tally, _tally_part(0))
    with pytest.raises(DataError, match=r"tally\.npz holds a tally_part, expected a thresholds"):
        read_state(tally, Thresholds)
    state = _tally_part(0).state_dict()
    state["version"] = np.array(99)
    write_state(tmp_path / "future.npz", state)
    with pytest.raises(DataError, match=r"future\.npz holds a tally_part of layout version 99"):
        read_state(tmp_path / "future.npz")
    state = _tally_part(0).state_dict()
    del state["layers"]["1"]["inter"]
    write_state(tmp_path / "cut.npz", state)
    with pytest.raises(DataError, match=r"cut\.npz holds an incomplete tally_part"):
        read_state(tmp_path / "cut.npz")
