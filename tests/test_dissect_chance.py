"""The permutation chance level of whole-image-label detectors (dissect.chance): known-truth units,
the null's counts against the engine's own tally of permuted labels and a direct loop, the tally
parts' per-image rows (merge order, layout version) and the gather's summary."""

import json
import re

import numpy as np
import pytest
import torch

from cnninterp.dissect import chance, engine
from cnninterp.dissect.gather import gather, sum_tallies
from cnninterp.dissect.labels import iou_table, summarize
from cnninterp.dissect.statefile import read_state, write_state
from cnninterp.dissect.states import LayerThresholds, TallyPart, Thresholds, TopImages
from cnninterp.dissect.tally import LayerTally, WholeImageLabels, make_label_batch
from cnninterp.errors import ConfigError, DataError

CATS = ["color", "texture"]
# 0 unlabeled; 1, 2 colours (pixel labels); 3..10 textures (whole-image labels); 11 a texture
# given at pixel level (a label of the category that the null does not test)
PRIMARY = np.array([-1, 0, 0] + [1] * 8 + [1])
TEXTURES = np.arange(3, 11)
SIZE = 8


def _tally(acts, seg, image_labels, units, threshold=0.5, batches=None):
    """(LayerTally, WholeImageLabels, area) of the engine's tally over the given batch splits."""
    n = acts.shape[0]
    layer = LayerTally(units, len(PRIMARY), len(CATS))
    whole = WholeImageLabels()
    area = np.zeros(len(PRIMARY), np.int64)
    for idx in batches or [np.arange(n)]:
        labels = make_label_batch(seg[idx], [image_labels[i] for i in idx], PRIMARY, len(PRIMARY), len(CATS))
        layer.add(torch.from_numpy(acts[idx]), np.full(units, threshold, np.float32), labels)
        whole.add(labels)
        area += labels.area
    return layer, whole, area


def _known_truth(seed=0):
    """40 images of 8x8, each with one texture (8 textures x 5 images, shuffled) and a colour
    patch. Unit 0 fires on every pixel of the 5 images of texture 3 (a true detector); unit 1 fires
    on every pixel of 3 images of 3 different textures (IoU 64/(192+320-64) = 0.143 with each, by
    chance); unit 2 fires on the colour-1 patches (a pixel-level detector, untested); unit 3 never."""
    rng = np.random.default_rng(seed)
    textures = rng.permutation(np.repeat(TEXTURES, 5))
    seg = np.zeros((40, 1, SIZE, SIZE), np.uint16)
    seg[:, 0, :2, :2] = 1
    acts = np.zeros((40, 4, SIZE, SIZE), np.float32)
    acts[textures == 3, 0] = 1.0
    chosen = [int(np.nonzero(textures == t)[0][0]) for t in (4, 6, 9)]
    acts[chosen, 1] = 1.0
    acts[:, 2, :2, :2] = 1.0
    return acts, seg, [[int(t)] for t in textures]


def _part(acts, seg, image_labels, units, batches=None, shards=()):
    layer, whole, area = _tally(acts, seg, image_labels, units, batches=batches)
    return TallyPart(acts.shape[0], area, {"conv": layer}, "digest", shards, whole)


@pytest.mark.parametrize("denominator", ["original", "lite"])
def test_a_true_detector_gets_the_minimum_p_and_a_chance_one_gets_p_1(denominator):
    acts, seg, image_labels = _known_truth()
    part = _part(acts, seg, image_labels, 4)
    pvals = chance.p_values(part, ["conv"], PRIMARY, len(CATS), denominator, 200, 0)["conv"]
    assert np.isnan(pvals[:, 0]).all()  # no whole-image colour label: untested
    assert pvals[0, 1] == 1 / 201  # no shuffle of 40 images puts texture 3's five together again (p ~ 1e-6 each)
    assert pvals[1, 1] == 1.0  # any label holding one of its 3 images reaches 0.143: every shuffle does
    assert pvals[3, 1] == 1.0  # IoU 0: the null is never below it

    vocab = {"primary": PRIMARY, "names": np.array([""] + [f"l{i}" for i in range(1, len(PRIMARY))], dtype=object), "categories": CATS}
    thresholds = Thresholds(40, 0.005, {"conv": LayerThresholds((SIZE, SIZE), np.full(4, 0.5, np.float32), TopImages(1))})
    summary = summarize(iou_table(part, thresholds, vocab, ["conv"], denominator), ["conv"], CATS, 0.04, {"conv": 4})
    units = summary["conv"]["unit_labels"]
    assert [u["label"] for u in units[:3]] == ["l3", units[1]["label"], "l1"] and units[1]["iou"] == pytest.approx(64 / 448)
    chance.annotate(summary, {"conv": pvals}, chance.whole_image_only(part, PRIMARY), CATS, 0.01)
    assert [u["chance_p"] for u in units] == [1 / 201, 1.0, None, None]
    layer = summary["conv"]
    assert (layer["detectors"], layer["detectors_above_chance"], layer["whole_image_detectors_at_chance"]) == (3, 2, 1)
    assert layer["detectors_above_chance_per_category"] == {"color": 1, "texture": 1}
    assert (layer["unique_concepts"], layer["unique_concepts_above_chance"]) == (3, 2)  # l3 and l1; unit 1's texture at chance


def test_a_p_value_equal_to_alpha_is_at_chance():
    """Above chance means p < alpha (annotate's docstring). With 199 permutations (allowed at alpha
    0.01: 1/200 < 0.01) one shuffle at or above the observed IoU gives p = (1 + 1)/(1 + 199), which
    is the float 0.01 itself: that detector is at chance; zero such shuffles (p = 1/200) is above."""
    s = chance.chance_settings({"chance_permutations": 199, "chance_alpha": 0.01})
    count, alpha = s["chance_permutations"], s["chance_alpha"]
    p_of = lambda k: (1 + k) / (1 + count)  # p_values' formula, k shuffles with IoU >= observed
    assert p_of(1) == alpha and p_of(0) < alpha < p_of(2)
    units = [  # unit, category, concept number, detector
        (0, "texture", 3, True),   # p = 1/200: above chance
        (1, "texture", 4, True),   # p = 2/200 = alpha: at chance
        (2, "texture", 5, True),   # p = 3/200: at chance
        (3, "color", 1, True),     # untested pixel label: above chance
        (4, "texture", 6, False),  # not a detector: counted nowhere
    ]
    summary = {"conv": {"unit_labels": [{"unit": u, "category": c, "concept_number": k, "detector": d, "label": f"l{k}"} for u, c, k, d in units]}}
    table = np.full((5, 2), np.nan)
    table[:, 1] = [p_of(0), p_of(1), p_of(2), np.nan, p_of(0)]
    tested = np.isin(np.arange(len(PRIMARY)), TEXTURES)
    layer = chance.annotate(summary, {"conv": table}, tested, CATS, alpha)["conv"]
    assert [u["chance_p"] for u in layer["unit_labels"]] == [1 / 200, 0.01, 3 / 200, None, 1 / 200]
    assert (layer["detectors_above_chance"], layer["whole_image_detectors_at_chance"]) == (2, 2)
    assert layer["detectors_above_chance_per_category"] == {"color": 1, "texture": 1}
    assert layer["unique_concepts_above_chance"] == 2  # l3 and l1


def _random_case(seed, n=24):
    """Random maps (3 units) on images of two segmentation sizes (6x6 then 8x8), with colour
    pixels, a pixel-level texture (11) and 0-2 whole-image textures per image (some none)."""
    rng = np.random.default_rng(seed)
    out = []
    for size, count in ((6, n // 2), (8, n - n // 2)):
        seg = rng.choice([0, 1, 2, 11], size=(count, 1, size, size), p=[0.5, 0.2, 0.2, 0.1]).astype(np.uint16)
        acts = rng.normal(size=(count, 3, 4, 4)).astype(np.float32)
        labels = [sorted(rng.choice(TEXTURES, size=rng.integers(0, 3), replace=False).tolist()) for _ in range(count)]
        out.append((acts, seg, labels))
    return out


@pytest.mark.parametrize("denominator", ["original", "lite"])
def test_the_null_equals_the_engine_tally_of_the_permuted_labels(denominator):
    """For each of a few permutations, tally the dataset again with the whole-image label sets
    moved among the images that hold one (the engine's per-pixel counting): its act is the
    original's (both denominators), and its best texture IoU per unit is the null's, even where
    the images differ in size (the area moves with the labels)."""
    pieces = _random_case(1)
    parts = [_tally(a, s, l, 3, threshold=1.0) for a, s, l in pieces]
    layer, whole, area = parts[0]
    layer.merge(parts[1][0])
    whole.merge(parts[1][1])
    area = area + parts[1][2]
    part = TallyPart(24, area, {"conv": layer}, "digest", (), whole)
    only = chance.whole_image_only(part, PRIMARY)
    assert only[3:11].any() and not only[11] and not only[:3].any()
    labels = np.nonzero(only)[0]
    held = whole.indicator(len(PRIMARY))
    rows = np.nonzero(held[:, labels].any(1))[0]
    image_labels = [l for _, _, ls in pieces for l in ls]
    with_labels = [i for i, l in enumerate(image_labels) if l]
    assert rows.size == len(with_labels) < 24
    perms = chance.permutations(rows.size, 4, 7, 1)
    act = layer.act_original if denominator == "original" else layer.act_lite
    inv = chance.inverse_permutations(perms)
    sets = held[np.ix_(rows, labels)]
    null = chance.permuted_max_iou(layer.whole_active[rows], sets, act[:, 1], inv, chance.permuted_areas(sets, whole.pixels[rows], inv))
    acts = [a for a, _, _ in pieces]
    segs = [s for _, s, _ in pieces]
    for p, perm in enumerate(perms):
        moved = list(image_labels)
        for i, j in enumerate(perm):
            moved[with_labels[i]] = image_labels[with_labels[j]]
        again = [_tally(acts[b], segs[b], moved[b * 12 : (b + 1) * 12], 3, threshold=1.0) for b in range(2)]
        shuffled = again[0][0].merge(again[1][0])
        np.testing.assert_array_equal(shuffled.act_original, layer.act_original)
        np.testing.assert_array_equal(shuffled.act_lite, layer.act_lite)
        a = again[0][2] + again[1][2]
        act_k = (shuffled.act_original if denominator == "original" else shuffled.act_lite)[:, 1]
        inter = shuffled.inter[:, labels]
        union = act_k[:, None] + a[labels][None] - inter
        direct = np.where(union > 0, inter / np.maximum(union, 1), 0.0).max(1)
        np.testing.assert_array_equal(null[p], direct)


@pytest.mark.parametrize("offset", [0, 2**23 + 1])
def test_permuted_tallies_equal_a_direct_loop_over_images(offset):
    """Small counts (the float32 product) and counts whose sums pass 2**24 (float32 would round)."""
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 30, size=(7, 5)) + offset
    sets = rng.random((7, 4)) < 0.4
    pixels = rng.choice([36, 64], size=7)
    perms = chance.permutations(7, 6, 0, 2)
    assert all(sorted(p) == list(range(7)) for p in perms) and len({tuple(p) for p in perms}) > 1
    inter, area = chance.permuted_tallies(counts, sets, pixels, perms)
    for p, perm in enumerate(perms):
        for lab in range(4):
            want_area = 0
            for unit in range(5):
                want = 0
                for i in range(7):
                    if sets[perm[i], lab]:
                        want += counts[i, unit]
                assert inter[p, unit, lab] == want
            for i in range(7):
                want_area += pixels[i] if sets[perm[i], lab] else 0
            assert area[p, lab] == want_area


def test_parts_concatenate_their_rows_in_shard_order_whatever_the_merge_order(tmp_path):
    """Three parts in all six merge orders (two parts cannot show a middle insertion: s2, s0, s1
    once gave rows s0, s2, s1 and other p-values), from paths and in memory."""
    import itertools

    acts, seg, image_labels = _known_truth()
    one = _part(acts, seg, image_labels, 4)
    cuts = ((0, 12), (12, 27), (27, 40))
    for i, (a, b) in enumerate(cuts):
        write_state(tmp_path / f"{i}.npz", _part(acts[a:b], seg[a:b], image_labels[a:b], 4, shards=(f"a-00000{i}.tar",)))
    expected = chance.p_values(one, ["conv"], PRIMARY, len(CATS), "original", 200, 0)["conv"]
    for order in itertools.permutations(range(3)):
        merged = sum_tallies([tmp_path / f"{i}.npz" for i in order])
        np.testing.assert_array_equal(merged.layers["conv"].whole_active, one.layers["conv"].whole_active)
        for what in ("pixels", "image", "label"):
            np.testing.assert_array_equal(getattr(merged.whole, what), getattr(one.whole, what))
        assert merged.shards == ("a-000000.tar", "a-000001.tar", "a-000002.tar")
        parts = [read_state(tmp_path / f"{i}.npz", TallyPart) for i in order]
        in_memory = parts[0].merge(parts[1]).merge(parts[2])  # not yet canonical: p_values orders the rows
        np.testing.assert_array_equal(chance.p_values(in_memory, ["conv"], PRIMARY, len(CATS), "original", 200, 0)["conv"], expected)
    with pytest.raises(DataError, match="both cover shard"):
        sum_tallies([tmp_path / "1.npz", tmp_path / "1.npz"])


def test_a_part_of_the_previous_layout_or_without_rows_is_refused(tmp_path):
    acts, seg, image_labels = _known_truth()
    state = _part(acts, seg, image_labels, 4).state_dict()
    state["version"] = np.array(3)
    del state["whole"]
    from cnninterp.dissect.statefile import flatten

    np.savez(tmp_path / "old.npz", **flatten(state))
    with pytest.raises(DataError, match="old.npz") as err:
        read_state(tmp_path / "old.npz", TallyPart)
    assert "rerun" in str(err.value)
    bare = _part(acts, seg, image_labels, 4)
    bare.whole = WholeImageLabels()  # a part built without its per-image labels
    with pytest.raises(DataError, match="per-image counts of 40 images and labels of 0"):
        chance.p_values(bare, ["conv"], PRIMARY, len(CATS), "original", 100, 0)


def test_settings_are_checked_and_too_few_permutations_for_alpha_refused():
    assert chance.chance_settings({}) == {"chance_permutations": 1000, "chance_alpha": 0.01, "chance_seed": 0}
    with pytest.raises(ConfigError, match="1/11, is not below chance_alpha 0.05; give at least 20 permutations"):
        chance.chance_settings({"chance_permutations": 10, "chance_alpha": 0.05})
    with pytest.raises(ConfigError, match="chance_alpha"):
        chance.chance_settings({"chance_alpha": 1.5})
    assert chance.chance_settings({"chance_permutations": 0, "chance_alpha": 0.5})["chance_permutations"] == 0
    # the gather's settings JSON bypasses the schema: -1 failed inside numpy, 1000.9 became 1000
    for key, value in (("chance_seed", -1), ("chance_seed", 2.7), ("chance_permutations", 1000.9), ("chance_permutations", "1e3"),
                       ("chance_permutations", True), ("chance_alpha", "0.01")):
        with pytest.raises(ConfigError, match=f"{key} is {re.escape(repr(value))}"):
            chance.chance_settings({key: value})


def test_gather_adds_the_chance_level_and_keeps_every_other_number(tmp_path):
    acts, seg, image_labels = _known_truth()
    part = _part(acts, seg, image_labels, 4)
    thresholds = Thresholds(40, 0.005, {"conv": LayerThresholds((SIZE, SIZE), np.full(4, 0.5, np.float32), TopImages(1))})
    thresholds.layers["conv"].tops.add(torch.from_numpy(acts[:1, :, :2, :2]), ["k0"], torch.ones(1, 4))
    part.thresholds = thresholds.digest(["conv"])
    labels = [{"number": i, "name": f"l{i}", "primary": CATS[p]} for i, p in enumerate(PRIMARY) if p >= 0]
    manifest = {"categories": CATS, "labels": labels, "splits": {"train": {"samples": 40, "shards": []}}}
    out = {}
    for p in (0, 200):
        gather([part], thresholds, manifest, ["conv"], "original", 0.04, tmp_path / str(p), {"chance_permutations": p})
        out[p] = json.loads((tmp_path / str(p) / "summary.json").read_text())
    assert out[200]["settings"]["chance_permutations"] == 200 and out[200]["settings"]["chance_alpha"] == 0.01
    plain, with_null = out[0]["layers"]["conv"], out[200]["layers"]["conv"]
    assert "detectors_above_chance" not in plain
    assert (with_null["detectors_above_chance"], with_null["whole_image_detectors_at_chance"]) == (2, 1)
    assert [u.pop("chance_p") for u in with_null["unit_labels"]] == [1 / 201, 1.0, None, None]
    for key, value in plain.items():
        assert with_null[key] == value, key


def test_the_report_shows_detectors_above_chance_as_in_the_summaries(tmp_path_factory):
    """The report of the shared small results tree (tests/report_fixture.py, built once per session,
    dissected with the default null): per layer the 'Above chance' cell is the summary's count, the
    findings give the totals of the model and its random control, and the null is stated."""
    import re

    import report_fixture as rf

    results = rf.shared_results(tmp_path_factory)
    text = rf.shared_report(tmp_path_factory).read_text()
    cells = re.findall(r'data-model="([^"]+)" data-chance-layer="([^"]+)" data-key="detectors_above_chance">(\d+)<', text)
    totals = {}
    for model in (rf.TRAINED, rf.CONTROL):
        layers = json.loads((results / "dissect" / model / "summary.json").read_text())["layers"]
        assert sorted((layer, int(n)) for m, layer, n in cells if m == model) == sorted((name, s["detectors_above_chance"]) for name, s in layers.items())
        totals[model] = sum(s["detectors_above_chance"] for s in layers.values())
    assert f'<span data-key="above_chance_total">{totals[rf.TRAINED]} trained against {totals[rf.CONTROL]} random</span>' in text
    # the paper's measure, unique concepts of the top layer, above chance too
    unique = {m: list(json.loads((results / "dissect" / m / "summary.json").read_text())["layers"].values())[-1]["unique_concepts_above_chance"] for m in (rf.TRAINED, rf.CONTROL)}
    assert f'<span data-key="unique_above_chance">{unique[rf.TRAINED]} trained against {unique[rf.CONTROL]} random</span>' in text
    assert "shuffling the whole-image label sets among the probe images that carry one (1000 permutations)" in text


def test_the_units_labelled_with_a_whole_image_label_get_the_p_values_of_all_units():
    """Restricted to the units labelled with a whole-image label (what gather passes), the null
    gives those units exactly the p-values it gives them when every unit is tested."""
    pieces = _random_case(2)
    layer, whole, area = _tally(*pieces[0], 3, threshold=1.0)
    part = TallyPart(12, area, {"conv": layer}, "digest", (), whole)
    every = chance.p_values(part, ["conv"], PRIMARY, len(CATS), "original", 150, 0)["conv"]
    texture = int(np.nonzero(chance.whole_image_only(part, PRIMARY))[0][0])
    assigned = {"conv": np.array([texture, 1, -1])}  # unit 0 a texture, unit 1 a colour, unit 2 nothing
    some = chance.p_values(part, ["conv"], PRIMARY, len(CATS), "original", 150, 0, assigned)["conv"]
    assert some[0, 1] == every[0, 1] and not np.isnan(every[1:, 1]).any()
    assert np.isnan(some[1:]).all() and np.isnan(some[:, 0]).all()


def test_the_null_holds_one_batch_of_permuted_count_rows_not_the_permuted_label_sets():
    """Permuting the (N, L) label sets took 64 x N x L x ~13 B per batch: about 7 GiB for Broden's
    468 scenes over ~20k images, against a gather request of 1.2-1.7 GB. Permuting the count rows
    instead, the peak stays near chance.CHUNK_BYTES, and the gather's request counts the null."""
    import tracemalloc

    from cnninterp.dissect import resources

    rng = np.random.default_rng(0)
    n, labels, units, count = 3000, 468, 20, 200
    counts = rng.integers(0, 50, size=(n, units)).astype(np.int32)
    sets = np.zeros((n, labels), bool)
    sets[np.arange(n), rng.integers(0, labels, n)] = True
    perms = chance.permutations(n, count, 0, 0)
    tracemalloc.start()
    try:
        inv = chance.inverse_permutations(perms)
        chance.permuted_max_iou(counts, sets, counts.sum(0) * 2, inv, chance.permuted_areas(sets, np.full(n, 112 * 112), inv))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * chance.CHUNK_BYTES, peak / 2**20  # the old batch: 64 x 3000 x 468 x 13 B = 1.1 GiB
    shapes = resources.layer_shapes("resnet18", ["layer4"], 224)
    one, twenty = (resources.job_resources("gather", shapes, 64, 1000, 8, 1198, tallies=t)["mem_mb"] for t in (1, 20))
    # the permutations and rows of 19,000 more images, 306 MB (requests are rounded to 100 MB)
    assert twenty - one >= 0.9 * (12 * 1000 + 2 * 4 * 512) * 19 * 1000 / 1e6, (one, twenty)
