"""The activation cache between the two passes: same counts as running the model twice, clear errors."""

import numpy as np
import pytest
import torch

from cnninterp.data.shards import read_manifest, shard_paths
from cnninterp.dissect import candidates as cand
from cnninterp.dissect import engine, pipeline
from cnninterp.dissect.gather import sum_tallies
from cnninterp.dissect.cache import CANDIDATE_BYTES, open_cache, read_cache
from cnninterp.dissect.statefile import write_state
from cnninterp.errors import DataError
from cnninterp.models.backbones import random_model

LAYERS = ["layer1", "layer2", "layer3", "layer4"]
COUNTS = ("inter", "act_original", "act_lite", "act_total")


def _stages(model, paths, total, cache, q=0.05, batch_size=8):
    tops = engine.quantile_tops(model, LAYERS, paths, total, q, "imagenet", batch_size, "cpu", 4, cache)
    return tops


def test_cached_tally_equals_running_the_model_twice(broden_shards, tmp_path):
    manifest = read_manifest(broden_shards)
    paths = shard_paths(broden_shards)
    total = engine.dataset_images(manifest)
    model = random_model("resnet10", seed=2)
    cache = tmp_path / "a.acts"
    tops = _stages(model, paths, total, cache)
    thresholds = engine.merge_thresholds([tops], LAYERS, total, 0.05, [cache])
    cached = engine.tally(None, LAYERS, paths, thresholds, manifest, "imagenet", 8, "cpu", cache)
    again = engine.tally(model, LAYERS, paths, thresholds, manifest, "imagenet", 8, "cpu")
    for name in LAYERS:
        for what in COUNTS:
            np.testing.assert_array_equal(cached.layers[name].result()[what], again.layers[name].result()[what], err_msg=f"{name} {what}")
        assert again.layers[name].result()["inter"].sum() > 0
    np.testing.assert_array_equal(cached.area, again.area)
    kinds = {type(item).__name__ for _, layers in read_cache(cache) for item in layers.values()}
    assert kinds == {"Tensor", "Candidates"}, "the data should exercise both ways of keeping a batch"


def test_per_shard_caches_add_up_to_one_job(broden_shards, tmp_path):
    """Quantile and tally jobs per shard, each tally reading its shard's cache, equal one process."""
    manifest = read_manifest(broden_shards)
    paths = shard_paths(broden_shards)
    total = engine.dataset_images(manifest)
    model = random_model("resnet10", seed=2)
    parts = [_stages(model, [p], total, tmp_path / f"{i}.acts") for i, p in enumerate(paths)]
    thresholds = engine.merge_thresholds(parts, LAYERS, total, 0.05, [tmp_path / f"{i}.acts" for i in range(len(paths))])
    tallies = [engine.tally(None, LAYERS, [p], thresholds, manifest, "imagenet", 8, "cpu", tmp_path / f"{i}.acts") for i, p in enumerate(paths)]
    summed = sum_tallies(tallies)
    whole = engine.tally(model, LAYERS, paths, thresholds, manifest, "imagenet", 8, "cpu")
    for name in LAYERS:
        for what in COUNTS:
            np.testing.assert_array_equal(summed.layers[name].result()[what], whole.layers[name].result()[what], err_msg=f"{name} {what}")


def test_dissect_with_and_without_cache_write_the_same_results(broden_shards, tmp_path):
    model = random_model("resnet10", seed=4)
    a = pipeline.dissect(model, ["layer2", "layer4"], broden_shards, tmp_path / "a", quantile=0.05, batch_size=8, cache=True)
    b = pipeline.dissect(model, ["layer2", "layer4"], broden_shards, tmp_path / "b", quantile=0.05, batch_size=8, cache=False)
    assert a == b
    assert (tmp_path / "a" / "iou.parquet").read_bytes() == (tmp_path / "b" / "iou.parquet").read_bytes()
    assert not list(tmp_path.glob(".a-cache-*")), "the temporary cache folder is removed"


def test_cache_round_trips_maps_and_candidates(tmp_path):
    acts = torch.rand(4, 3, 6, 6)
    floor = torch.full((3,), 0.97)
    found = cand.locate(acts, floor)
    assert found.count() * CANDIDATE_BYTES < acts.numel() * 4
    with open_cache(tmp_path / "c.acts") as writer:
        writer.write(["a", "b", "c", "d"], {"l": acts})
        writer.write(["e", "f", "g", "h"], {"l": found.candidates()})
    (k1, l1), (k2, l2) = list(read_cache(tmp_path / "c.acts"))
    assert k1 == ["a", "b", "c", "d"] and k2 == ["e", "f", "g", "h"]
    torch.testing.assert_close(l1["l"], acts, rtol=0, atol=0)
    want = cand.find(acts, floor)
    assert torch.equal(l2["l"].ids, want.ids) and torch.equal(l2["l"].values, want.values)


def test_cache_cut_short_or_missing_is_a_clear_error(tmp_path):
    path = tmp_path / "c.acts"
    with open_cache(path) as writer:
        writer.write(["a"], {"l": torch.rand(1, 2, 3, 3)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    with pytest.raises(DataError, match="c.acts.*cut short"):
        list(read_cache(path))
    with pytest.raises(DataError, match="missing"):
        list(read_cache(tmp_path / "none.acts"))


def test_failed_cache_write_leaves_no_file(tmp_path):
    path = tmp_path / "c.acts"
    with pytest.raises(RuntimeError):
        with open_cache(path) as writer:
            writer.write(["a"], {"l": torch.rand(1, 2, 3, 3)})
            raise RuntimeError("model failed mid-shard")
    assert list(tmp_path.iterdir()) == []


def test_background_writes_equal_foreground_ones_and_fail_cleanly(tmp_path):
    """The quantile pass writes its cache from a background thread: the same bytes as writing in
    the caller's thread; a failed write is raised and, like a failure in the block, leaves no file."""
    acts = torch.rand(4, 3, 6, 6)
    found = cand.locate(acts, torch.full((3,), 0.9))
    for background in (False, True):
        with open_cache(tmp_path / f"{background}.acts", background=background) as writer:
            for start in range(0, 4, 2):
                writer.write(["a", "b", "c", "d"][start : start + 2], {"maps": acts[start : start + 2], "found": found.candidates()})
    assert (tmp_path / "True.acts").read_bytes() == (tmp_path / "False.acts").read_bytes()
    for path in tmp_path.iterdir():
        path.unlink()
    with pytest.raises(AttributeError):
        with open_cache(tmp_path / "bad.acts", background=True) as writer:
            writer.write(["a"], {"l": "not a tensor"})  # fails in the writer thread
    with pytest.raises(RuntimeError, match="mid-shard"):
        with open_cache(tmp_path / "bad.acts", background=True) as writer:
            writer.write(["a"], {"l": acts[:1]})
            raise RuntimeError("model failed mid-shard")
    assert list(tmp_path.iterdir()) == []


def test_cache_of_other_shards_is_refused(broden_shards, tmp_path):
    manifest = read_manifest(broden_shards)
    paths = shard_paths(broden_shards)
    total = engine.dataset_images(manifest)
    model = random_model("resnet10", seed=2)
    first = next(s["samples"] for split in manifest["splits"].values() for s in split["shards"] if s["name"] == paths[0].name)
    tops = _stages(model, paths[:1], first, tmp_path / "first.acts")
    thresholds = engine.merge_thresholds([tops], LAYERS, first, 0.05, [tmp_path / "first.acts"])
    with pytest.raises(DataError, match="first.acts does not match the shards"):
        engine.tally(None, LAYERS, paths[1:2], thresholds, manifest, "imagenet", 8, "cpu", tmp_path / "first.acts")
    with pytest.raises(DataError, match="first.acts ends before image"):
        engine.tally(None, LAYERS, paths[:2], thresholds, manifest, "imagenet", 8, "cpu", tmp_path / "first.acts")


def test_caches_bounded_for_a_larger_quantile_serve_smaller_ones_exactly(broden_shards, tmp_path):
    """dissect.cache_quantile: the parts and caches of two jobs written for q = 0.02 give
    np.quantile's thresholds (linear, float64 -> float32) for any q up to 0.02 without running the
    model again; a larger q is refused, naming the rerun."""
    from cnninterp.dissect.activations import activation_batches

    manifest = read_manifest(broden_shards)
    paths = shard_paths(broden_shards)
    total = engine.dataset_images(manifest)
    model = random_model("resnet10", seed=2)
    jobs = [paths[:2], paths[2:]]
    for i, job in enumerate(jobs):
        write_state(tmp_path / f"{i}.npz", _stages(model, job, total, tmp_path / f"{i}.acts", q=0.02))
    kinds = {type(item).__name__ for i in range(len(jobs)) for _, layers in read_cache(tmp_path / f"{i}.acts") for item in layers.values()}
    assert "Candidates" in kinds, "the caches should hold bounded values, not only whole maps"
    maps = {name: [] for name in LAYERS}
    for job in jobs:  # batched as the jobs ran (another batch split may move a value by an ulp)
        for _, acts in activation_batches(model, LAYERS, job, "imagenet", 8, "cpu"):
            for name in LAYERS:
                maps[name].append(acts[name].numpy())
    parts = [tmp_path / f"{i}.npz" for i in range(len(jobs))]
    caches = [tmp_path / f"{i}.acts" for i in range(len(jobs))]
    for q in (0.02, 0.007, 0.002):
        got = engine.merge_thresholds(parts, LAYERS, total, q, caches)
        for name in LAYERS:
            values = np.concatenate(maps[name]).transpose(1, 0, 2, 3).reshape(len(got.layers[name].threshold), -1)
            want = np.quantile(values.astype(np.float64), 1 - q, axis=1).astype(np.float32)
            np.testing.assert_array_equal(got.layers[name].threshold, want, err_msg=f"{name} q={q}")
    with pytest.raises(DataError, match=r"bounded their caches for a quantile below 0\.05.*cache quantile >= 0\.05"):
        engine.merge_thresholds(parts, LAYERS, total, 0.05, caches)
