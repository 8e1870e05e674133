"""The dissection engine against a brute-force reference, exact quantiles, shard invariance."""

import itertools
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dissect_reference as ref
from cnninterp.dissect.cache import open_cache
from cnninterp.dissect.engine import LayerQuantiles, QuantilePart, TopImages, merge_thresholds
from cnninterp.dissect.quantiles import KeyHistogram, ThresholdSearch
from cnninterp.dissect.statefile import write_state
from cnninterp.dissect.tally import LayerTally, iou, make_label_batch

CATS = ["color", "object", "part", "scene"]
# label numbers 0..9: 0 unlabeled, 1-2 color, 3-4 object, 5-6 part, 7-8 scene, 9 object also
# a scene in the data set (two categories) whose primary category is object; 10 unused
PRIMARY = np.array([-1, 0, 0, 1, 1, 2, 2, 3, 3, 1, -1])


def random_case(seed, n=12, units=6, hw=(5, 5), size=(20, 20), depth=3):
    """Random activations and labels with the awkward cases the engine must get right."""
    rng = np.random.default_rng(seed)
    acts = rng.normal(size=(n, units) + hw).astype(np.float32)
    acts[:, 0] = 0.25  # a unit that is never active (constant: nothing exceeds its threshold)
    acts[:, 1] = np.abs(acts[:, 1]) * 3  # a strongly active unit
    seg = np.zeros((n, depth) + size, np.uint16)
    seg[:, 0] = rng.choice([0, 1, 2], size=(n,) + size)  # colors everywhere but some holes
    for x in range(n):
        if x % 3 != 2:  # images missing the object/part categories
            y0, x0 = rng.integers(0, size[0] - 8, 2)
            seg[x, 1, y0 : y0 + 8, x0 : x0 + 8] = rng.choice([3, 4, 9])
            seg[x, 2, y0 : y0 + 4, x0 : x0 + 8] = 5  # part layer 1
            if x % 2:
                seg[x, 2, y0 + 4 : y0 + 8, x0 : x0 + 8] = 6
        if x % 4 == 0:
            seg[x, 1, :3, :4] = 3  # the same label in two layers at a pixel
            seg[x, 2, :3, :4] = 3
    image_labels = [[7] if x % 3 == 0 else ([8, 9] if x % 3 == 1 else []) for x in range(n)]
    return acts, seg, image_labels


def engine_tally(acts, seg, image_labels, T, batches, one_tally=False):
    """Run the engine's tally over the given batch splits and return summed arrays.

    ``one_tally=False``: a fresh ``LayerTally`` per batch, results summed. ``one_tally=True``: every
    batch into one ``LayerTally``, as ``dissect/engine.py`` feeds all batches of a layer (its
    per-map-size scratch state is then reused from batch to batch)."""
    total = None
    area = np.zeros(len(PRIMARY), dtype=np.int64)
    shared = LayerTally(acts.shape[1], len(PRIMARY), len(CATS)) if one_tally else None
    for idx in batches:
        labels = make_label_batch(seg[idx], [image_labels[i] for i in idx], PRIMARY, len(PRIMARY), len(CATS))
        area += labels.area
        tally = shared if one_tally else LayerTally(acts.shape[1], len(PRIMARY), len(CATS))
        tally.add(torch.from_numpy(acts[idx]), torch.from_numpy(T), labels)
        if not one_tally:
            arrays = {f"l|{k}": v for k, v in tally.result().items()}
            total = arrays if total is None else {k: total[k] + arrays[k] for k in total}
    if one_tally:
        total = {f"l|{k}": v for k, v in shared.result().items()}
    total["area"] = area
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("denominator", ["original", "lite"])
def test_engine_equals_brute_force(seed, denominator):
    acts, seg, image_labels = random_case(seed)
    T = ref.thresholds(acts, 0.05)
    want_iou, want_inter, want_union, want_area = ref.dissect(acts, seg, image_labels, PRIMARY, len(CATS), T, denominator)
    got = engine_tally(acts, seg, image_labels, T, [np.arange(len(acts))])
    got_iou, got_union = iou(got["l|inter"], got[f"l|act_{denominator}"], got["area"], PRIMARY)
    np.testing.assert_array_equal(got["area"], want_area)
    np.testing.assert_array_equal(got["l|inter"], want_inter)
    np.testing.assert_array_equal(got_union[:, PRIMARY >= 0], want_union[:, PRIMARY >= 0])
    np.testing.assert_allclose(got_iou, want_iou, rtol=0, atol=1e-12)
    assert got["l|inter"][0].sum() == 0 and got["l|act_total"][0] == 0  # never-active unit
    assert want_inter[1].sum() > 0  # the case has real overlaps to compare


@pytest.mark.parametrize("seed,q", [(0, 0.05), (1, 0.2)])
def test_one_tally_over_several_batches_equals_brute_force(seed, q):
    """The engine's path: one LayerTally fed every batch of a layer (5, 5, then 2 images, as the
    engine's batches come: later ones no larger, so its per-map-size scratch is reused, not
    regrown) gives the brute-force reference's counts. A scratch left dirty by one batch skips the
    next batch's cells at the same (image slot, unit) place: with the clearing removed this case
    counts act_total 0/87/35/72/90/73 instead of 0/90/35/75/95/76 (seed 0, q 0.05)."""
    acts, seg, image_labels = random_case(seed)
    T = ref.thresholds(acts, q)
    for denominator in ("original", "lite"):
        want_iou, want_inter, want_union, want_area = ref.dissect(acts, seg, image_labels, PRIMARY, len(CATS), T, denominator)
        got = engine_tally(acts, seg, image_labels, T, [np.arange(0, 5), np.arange(5, 10), np.arange(10, 12)], one_tally=True)
        got_iou, got_union = iou(got["l|inter"], got[f"l|act_{denominator}"], got["area"], PRIMARY)
        np.testing.assert_array_equal(got["area"], want_area)
        np.testing.assert_array_equal(got["l|inter"], want_inter)
        np.testing.assert_array_equal(got_union[:, PRIMARY >= 0], want_union[:, PRIMARY >= 0])
        np.testing.assert_allclose(got_iou, want_iou, rtol=0, atol=1e-12)
    assert want_inter[1].sum() > 0  # real overlaps in every batch's images to compare


def test_denominators_differ_on_this_data():
    acts, seg, image_labels = random_case(3)
    T = ref.thresholds(acts, 0.05)
    got = engine_tally(acts, seg, image_labels, T, [np.arange(len(acts))])
    assert (got["l|act_lite"] <= got["l|act_original"]).all()
    assert (got["l|act_lite"] != got["l|act_original"]).any()


def test_shard_invariance_of_tallies():
    acts, seg, image_labels = random_case(4, n=15)
    T = ref.thresholds(acts, 0.05)
    whole = engine_tally(acts, seg, image_labels, T, [np.arange(15)])
    for splits in ([np.arange(0, 7), np.arange(7, 15)], [np.arange(i, i + 5) for i in range(0, 15, 5)], [np.array([i]) for i in range(15)]):
        parts = engine_tally(acts, seg, image_labels, T, splits)
        for key in whole:
            np.testing.assert_array_equal(parts[key], whole[key], err_msg=key)


@pytest.mark.parametrize("q", [0.005, 0.05, 0.3])
@pytest.mark.parametrize("seed", [0, 1])
def test_exact_quantile_any_split_any_order(q, seed, tmp_path):
    """Per-shard parts (saved, read back one at a time by the public merge) and their caches give
    exactly np.quantile's thresholds, and the same top images, in any split and merge order."""
    rng = np.random.default_rng(seed)
    acts = rng.normal(size=(37, 4, 3, 5)).astype(np.float32)
    acts[:, 2] = np.round(acts[:, 2])  # many ties
    n = acts.shape[0] * 15
    want = np.quantile(acts.transpose(1, 0, 2, 3).reshape(4, -1).astype(np.float64), 1 - q, axis=1).astype(np.float32)
    from_top = ThresholdSearch(n, q, 4).from_top()
    keys = [f"{i:07d}" for i in range(37)]
    one = TopImages(2)
    one.add(torch.from_numpy(acts), keys, torch.from_numpy(acts).amax(dim=(2, 3)))
    cuts = sorted(rng.choice(np.arange(1, 37), size=4, replace=False).tolist())
    pieces = np.split(np.arange(37), cuts)
    for trial, order in enumerate(itertools.islice(itertools.permutations(range(len(pieces))), 4)):
        parts, caches = [], []
        for p in order:  # one per-shard part and cache each, as dissect-quantiles writes them
            hist, images = KeyHistogram(4), TopImages(2)
            caches.append(tmp_path / f"{trial}-{p}.acts")
            with open_cache(caches[-1]) as writer:
                for chunk in np.array_split(pieces[p], 2):
                    if len(chunk):
                        batch = torch.from_numpy(acts[chunk])
                        hist.add(batch)
                        images.add(batch, [keys[i] for i in chunk], batch.amax(dim=(2, 3)))
                        writer.write([keys[i] for i in chunk], {"u": batch})
            part = QuantilePart(len(pieces[p]), {"u": LayerQuantiles((3, 5), hist, images, from_top)})
            parts.append(tmp_path / f"{trial}-{p}.npz")
            write_state(parts[-1], part)
        merged = merge_thresholds(parts, ["u"], acts.shape[0], q, caches)
        np.testing.assert_array_equal(merged.layers["u"].threshold, want)
        for got, expected in zip(merged.layers["u"].tops.result(), one.result()):
            np.testing.assert_array_equal(got, expected)


def test_upsampling_is_bilinear_half_pixel():
    """torch's bilinear, align_corners=False, equals the half-pixel formula of the paper's code."""
    rng = np.random.default_rng(0)
    src = rng.normal(size=(3, 4))
    out = ref.upsample(src.astype(np.float32), (7, 9)).astype(np.float64)
    want = F.interpolate(torch.from_numpy(src)[None, None], size=(7, 9), mode="bilinear", align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(out, want, atol=1e-5)
    assert out.max() <= src.max() + 1e-6  # why skipping maps with max <= T is exact


def test_lite_flags_agree_for_few_and_many_categories():
    """The lite term is the same whether category bits fit a uint8 (<= 8 categories) or take an int64."""
    acts, seg, image_labels = random_case(5)
    T = torch.from_numpy(ref.thresholds(acts, 0.05))
    results = []
    for k in (len(CATS), 9):  # 9 > 8 categories: int64 bits
        labels = make_label_batch(seg, image_labels, PRIMARY, len(PRIMARY), k)
        assert labels.pixel_categories.dtype == (np.uint8 if k <= 8 else np.int64)
        tally = LayerTally(acts.shape[1], len(PRIMARY), k)
        tally.add(torch.from_numpy(acts), T, labels)
        results.append({f"l|{k}": v for k, v in tally.result().items()})
    few, many = results
    np.testing.assert_array_equal(many["l|act_lite"][:, : len(CATS)], few["l|act_lite"])
    assert (many["l|act_lite"][:, len(CATS) :] == 0).all()
    assert (few["l|act_lite"] > 0).any()


def test_top_images_are_the_k_largest_maxima_ties_by_key():
    from cnninterp.dissect.engine import TopImages

    rng = np.random.default_rng(7)
    n, units, k = 41, 5, 3
    acts = np.round(rng.normal(size=(n, units, 2, 3)), 1).astype(np.float32)  # many ties
    acts[:, 0] = 0.0  # a dead unit: every image ties
    keys = [f"{i:04d}" for i in rng.permutation(n)]  # keys arrive out of order
    maxima = acts.max(axis=(2, 3))

    def brute(idx):
        out = []
        for u in range(units):
            best = sorted(idx, key=lambda i: (-maxima[i, u], keys[i]))[:k]
            out.append(best)
        return out

    def run(idx, sizes):
        top = TopImages(k)
        start = 0
        for size in sizes:
            part = idx[start : start + size]
            start += size
            a = torch.from_numpy(acts[part])
            top.add(a, [keys[i] for i in part], a.amax(dim=(2, 3)))
        return top

    idx = list(range(n))
    top = run(idx, [1, 2, 10, 7, 21])
    want = brute(idx)
    for u in range(units):
        assert list(top.keys[u]) == [keys[i] for i in want[u]]
        np.testing.assert_array_equal(top.maps[u], acts[want[u], u])
    for first, second in ((idx[:20], idx[20:]), (idx[20:], idx[:20])):  # either order
        merged = run(first, [len(first)]).merge(TopImages.from_state_dict(run(second, [6, 15]).state_dict()))
        np.testing.assert_array_equal(merged.result()[1], top.keys)
        np.testing.assert_array_equal(merged.result()[2], top.maps)


def test_a_label_number_outside_the_manifest_is_an_error():
    from cnninterp.errors import DataError

    _, seg, image_labels = random_case(0)
    seg[3, 1, 0, 0] = len(PRIMARY)
    with pytest.raises(DataError, match=f"label number {len(PRIMARY)}"):
        make_label_batch(seg, image_labels, PRIMARY, len(PRIMARY), len(CATS))


def test_a_whole_image_label_outside_the_manifest_is_an_error():
    from cnninterp.errors import DataError

    _, seg, image_labels = random_case(0)
    image_labels[2] = [len(PRIMARY) + 3]
    with pytest.raises(DataError, match=rf"image 2 of the batch has whole-image label number\(s\) \[{len(PRIMARY) + 3}\]"):
        make_label_batch(seg, image_labels, PRIMARY, len(PRIMARY), len(CATS))


def test_layer_tallies_merge_in_any_order_and_split():
    """LayerTally's protocol: per-split tallies, saved and restored, merged in any order, equal
    one tally over all images (and the reference's counts through ``test_engine_matches...``)."""
    acts, seg, image_labels = random_case(6, n=15)
    T = torch.from_numpy(ref.thresholds(acts, 0.05))

    def tally_of(idx):
        t = LayerTally(acts.shape[1], len(PRIMARY), len(CATS))
        t.add(torch.from_numpy(acts[idx]), T, make_label_batch(seg[idx], [image_labels[i] for i in idx], PRIMARY, len(PRIMARY), len(CATS)))
        return t

    whole = tally_of(np.arange(15)).result()
    assert whole["inter"].sum() > 0
    pieces = [np.arange(0, 4), np.arange(4, 11), np.arange(11, 15)]
    for order in ([0, 1, 2], [2, 0, 1], [1, 2, 0]):
        merged = LayerTally.from_state_dict(tally_of(pieces[order[0]]).state_dict())
        for k in order[1:]:
            merged.merge(LayerTally.from_state_dict(tally_of(pieces[k]).state_dict()))
        for key, value in merged.result().items():
            np.testing.assert_array_equal(value, whole[key], err_msg=key)


def test_layers_on_several_threads_give_the_serial_results(broden_shards, tmp_path, monkeypatch):
    """The quantile pass, the refinement and the tally run layers on a thread pool; each layer's
    batches stay in data order, so every result file equals the one-thread run's byte for byte."""
    from cnninterp.dissect import engine, layers_pool, pipeline
    from cnninterp.models.backbones import random_model

    model = random_model("resnet10", seed=4)
    used = set()
    for threads, out in ((1, "serial"), (3, "pooled")):
        def pool(threads=threads):
            return layers_pool.layer_pool(threads)

        monkeypatch.setattr(engine, "layer_pool", pool)
        original = engine.KeyHistogram.add

        def add(self, batch, original=original):
            used.add(threading.current_thread().name.split("_")[0])
            return original(self, batch)

        monkeypatch.setattr(engine.KeyHistogram, "add", add)
        pipeline.dissect(model, ["layer2", "layer4"], broden_shards, tmp_path / out, quantile=0.05, batch_size=8)
    assert "cnninterp-layers" in used and "MainThread" in used  # the pool did run layers
    for name in ("iou.parquet", "top_images.npz", "summary.json", "tally_layer2.csv", "tally_layer4.csv"):
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "pooled" / name).read_bytes(), name
