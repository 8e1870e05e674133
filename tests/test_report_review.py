"""Report defects a reviewer reproduced in the overview and dissection sections (pairing, findings,
the random-control note, an unpaired control, the coverage limit), checked on hand-made configs and
summaries without running the pipeline."""

from __future__ import annotations

import copy
import html
import json
import logging
import re
from pathlib import Path

import pytest

import report_fixture as rf
from cnninterp.config import validate_config
from cnninterp.report import overview
from cnninterp.report.build import environment
from cnninterp.report.context import Context, pair_models
from cnninterp.report.dissection import findings, layer_rows, random_control_note

CATS = ["color", "object", "part"]


def config_with(models: dict, train: dict | None = None) -> dict:
    """The report fixture's config with ``dissect.models`` replaced (and ``train`` entries added)."""
    cfg = copy.deepcopy(rf.CONFIG)
    cfg["dissect"]["models"] = models
    cfg["train"].update(train or {})
    return validate_config(cfg, "review test config")


def context(config: dict, results: Path) -> Context:
    return Context(config=config, config_bytes=b"{}", results=results, out=results / "report", staging=results / "staging")


def text_of(markup: str) -> str:
    """The visible text of rendered HTML, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def layer(color: int, obj: int, part: int = 0) -> dict:
    per = {"color": color, "object": obj, "part": part}
    n = color + obj + part
    return {"detectors": n, "units": 64, "detectors_per_category": per, "unique_concepts": n, "unique_concepts_per_category": per}


def model_entry(summary: dict, **extra) -> dict:
    """A dissection template entry for one trained model (no figures, no gallery)."""
    entry = {
        "name": "m", "anchor": "dissect-m", "source": "trained:baseline", "random": False, "control": None, "control_of": None,
        "settings": {"iou_threshold": 0.04, "quantile": 0.005, "denominator": None, "preprocess": None}, "images": 10,
        "categories": CATS, "layers": layer_rows(summary), "chance": None, "findings": findings(summary, None, CATS),
        "category_figure": None, "iou_figure": {"src": "x", "width": 1, "height": 1, "alt": ""}, "gallery": [], "downloads": [],
        "random_control_note": None, "unpaired": [],
    }
    entry.update(extra)
    return entry


def render_dissection(*entries) -> str:
    return text_of(environment().get_template("dissection.html.j2").render(data={"models": list(entries), "gallery_units": 8, "gallery_images": 4}))


# -- 1: published weights are not a random initialisation ---------------------------------------


def test_torchvision_weights_pair_with_the_random_control_and_are_named(tmp_path):
    cfg = config_with(
        {
            "alexnet_imagenet": {"source": "torchvision:alexnet", "weights": "IMAGENET1K_V1", "layers": ["features.10"]},
            "alexnet_random": {"source": "torchvision:alexnet", "layers": ["features.10"]},
        }
    )
    models = {m.name: m for m in pair_models(cfg)}
    assert not models["alexnet_imagenet"].random and models["alexnet_random"].random
    assert models["alexnet_imagenet"].control == "alexnet_random"
    assert models["alexnet_random"].control_of == "alexnet_imagenet"
    ctx = context(cfg, tmp_path)
    roles = {m.name: overview.dissected_model(ctx, m)["role"] for m in ctx.models}
    assert roles == {"alexnet_imagenet": "pretrained weights (IMAGENET1K_V1)", "alexnet_random": "random control of alexnet_imagenet"}


# -- 2: colour and object/part findings with 1, 3, 5 layers ---------------------------------------


def test_one_layer_measures_neither_trend():
    summary = {"layers": {"layer4": layer(3, 5)}}
    F = findings(summary, None, CATS)
    assert F["one_layer"] and F["object_part_grows"] is None and F["color_low_share"] is None
    text = render_dissection(model_entry(summary))
    assert text.count("not measurable with one layer") == 2 and "does not grow" not in text


@pytest.mark.parametrize(
    "colour, low_share, middle",
    [
        ([0, 10, 0], 0.0, "conv2"),  # all colour in the middle layer of three: in neither half
        ([6, 4, 0], 0.6, "conv2"),  # 6 of 10 colour detectors in conv1, the lower half of three
        ([0, 0, 10, 0, 0], 0.0, "conv3"),
        ([3, 1, 4, 2, 0], 0.4, "conv3"),  # conv1 + conv2 = 4 of 10
        ([3, 1, 0, 4], 0.5, None),  # even count: the first two of four
    ],
)
def test_colour_share_counts_the_first_half_of_the_layers(colour, low_share, middle):
    summary = {"layers": {f"conv{i}": layer(c, 1) for i, c in enumerate(colour, 1)}}
    F = findings(summary, None, CATS)
    assert F["color_by_layer"] == colour
    assert F["color_low_share"] == pytest.approx(low_share)
    assert F["middle_layer"] == middle
    assert F["low_layers"] == [f"conv{i}" for i in range(1, len(colour) // 2 + 1)]
    text = render_dissection(model_entry(summary))
    assert f"{round(low_share * 100)}% in the lower half of the layers" in text
    assert (f"the middle layer {middle} counts in neither half" in text) == (middle is not None)


def test_object_part_growth_with_three_layers():
    # object share 1/2 in conv1, 2/2 in conv3: grows
    summary = {"layers": {"conv1": layer(1, 1), "conv2": layer(0, 0), "conv3": layer(0, 2)}}
    F = findings(summary, None, CATS)
    assert F["object_part_grows"] is True and not F["one_layer"]
    assert "higher in the last layer than in the first (100% of the last layer's detectors)" in render_dissection(model_entry(summary))


# -- 3: the resnet10 random-control measurement only under a resnet10 control ----------------------

DEFAULT_PROBE = {"source": {"kind": "synthetic", "n_images": 1200, "image_size": 112, "seed": 0, "val_fraction": 0.2}}


def test_random_control_note_applies_to_resnet10_only_and_names_its_source():
    assert random_control_note("alexnet", DEFAULT_PROBE) is None
    note = random_control_note("resnet10", DEFAULT_PROBE)
    assert "resnet10" in note and "benchmarks/default_random_control.py" in note and "2026-12-03" in note
    assert "not that default one" not in note
    other = {"source": dict(DEFAULT_PROBE["source"], n_images=40)}
    assert "not that default one" in random_control_note("resnet10", other)


def test_an_alexnet_with_its_control_gets_no_resnet10_note(tmp_path):
    from cnninterp.report.dissection import _arch

    cfg = config_with(
        {"alex": {"source": "trained:alex", "layers": ["features.10"]}, "alex_random": {"source": "trained:alex", "random_init": True, "layers": ["features.10"]}},
        train={"alex": {"arch": "alexnet", "task": "scene", "epochs": 1}},
    )
    ctx = context(cfg, tmp_path)
    assert _arch(ctx, "alex_random") == "alexnet" == _arch(ctx, "alex")
    summary = {"layers": {"features.10": layer(0, 40)}}
    control = {"layers": {"features.10": layer(0, 4)}}
    entry = model_entry(summary, control="alex_random", findings=findings(summary, control, CATS), random_control_note=random_control_note("alexnet", DEFAULT_PROBE))
    assert "resnet10" not in render_dissection(entry)
    entry["random_control_note"] = random_control_note("resnet10", DEFAULT_PROBE)
    assert ("(Measured with benchmarks/default_random_control.py --seeds 1 2 3 (2026-12-03) and "
            "benchmarks/random_control_bn.py --seeds 1 2 3 (2026-12-04); benchmarks/RESULTS.md.)") in render_dissection(entry)


# -- 4: a control that differs in a compared setting is named, not silently dropped ----------------


def test_a_control_differing_in_one_setting_is_named_with_the_difference(tmp_path, caplog):
    cfg = config_with({"baseline": {"source": "trained:baseline"}, "baseline_random": {"source": "trained:baseline", "random_init": True, "iou_threshold": 0.05}})
    with caplog.at_level(logging.WARNING, logger="cnninterp.report.context"):
        models = {m.name: m for m in pair_models(cfg)}
    expected = "baseline_random is a random control of baseline but differs in iou_threshold (0.05 vs 0.04), so it is not compared"
    assert models["baseline"].control is None and models["baseline_random"].control_of is None
    assert [r.getMessage() for r in caplog.records] == [expected]
    ctx = context(cfg, tmp_path)
    rows = {m.name: overview.dissected_model(ctx, m) for m in ctx.models}
    assert rows["baseline"]["unpaired"] == [expected] and rows["baseline_random"]["unpaired"] == [expected]
    summary = {"layers": {"layer3": layer(1, 2), "layer4": layer(0, 3)}}
    text = render_dissection(model_entry(summary, name="baseline", unpaired=rows["baseline"]["unpaired"]))
    assert expected in text and "no random control configured" not in text
    # a paired control is not reported as unpaired
    paired = config_with({"baseline": {"source": "trained:baseline"}, "baseline_random": {"source": "trained:baseline", "random_init": True}})
    assert [m.mismatched for m in pair_models(paired)] == [(), ()]


# -- 5: the coverage limit follows the quantile and the detector threshold --------------------------


def write_manifest(results: Path) -> None:
    shards = results / "shards" / "broden"
    shards.mkdir(parents=True)
    manifest = {
        "categories": ["color"],
        "labels": [{"name": "red", "categories": ["color"], "primary": "color"}],
        "splits": {"train": {"samples": 2, "shards": ["train-000000.tar"]}},
        "source": {"kind": "synthetic"},
        "coverage": {"color": {"images": 2, "concepts": 1, "min": 0.1, "median": 0.2, "max": 0.3, "min_label": "red", "max_label": "red"}},
    }
    (shards / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "models, expected",
    [
        ({"a": {"source": "trained:baseline"}}, ["12.5 % at q = 0.005 and t = 0.04"]),
        (
            {"a": {"source": "trained:baseline"}, "b": {"source": "trained:baseline", "random_init": True, "quantile": 0.01, "iou_threshold": 0.05}},
            ["12.5 % at q = 0.005 and t = 0.04 (a)", "20.0 % at q = 0.01 and t = 0.05 (b)"],
        ),
    ],
)
def test_coverage_limit_is_quantile_over_threshold(tmp_path, models, expected):
    write_manifest(tmp_path)
    ctx = context(config_with(models), tmp_path)
    data = overview.render(ctx)
    assert [d["max_coverage"] for d in data["detection_limits"]] == pytest.approx([0.005 / 0.04] + ([0.01 / 0.05] if len(models) > 1 else []))
    text = text_of(environment().get_template("overview.html.j2").render(data=data))
    for sentence in expected:
        assert sentence in text
    assert "5 % coverage" not in text


# -- the paper's measure above chance, and the control's BatchNorm treatment named ------------------


def _with_chance(lay: dict, above: int, unique_above: int) -> dict:
    return dict(lay, detectors_above_chance=above, unique_concepts_above_chance=unique_above)


def test_the_top_layers_distinct_concepts_above_chance_are_compared_with_a_tenth():
    summary = {"layers": {"layer1": _with_chance(layer(8, 1), 9, 5), "layer4": _with_chance(layer(0, 20, 6), 26, 17)}}
    for random_unique, said in ((1, "(ratio 0.06, at most a tenth as in the paper)"), (4, "(ratio 0.24, more than a tenth)")):
        control = {"layers": {"layer1": _with_chance(layer(9, 0), 9, 4), "layer4": _with_chance(layer(0, 4), 4, random_unique)}}
        text = render_dissection(model_entry(summary, control="m_random", findings=findings(summary, control, CATS)))
        assert f"Above the chance level of whole-image labels: 17 trained against {random_unique} random in layer4 {said}." in text


def test_the_overview_names_a_controls_batchnorm_treatment(tmp_path):
    from cnninterp.report.overview import dissected_model

    cfg = config_with({"baseline": {"source": "trained:baseline"},
                       "baseline_random": {"source": "trained:baseline", "random_init": True, "random_bn": "task"}})
    ctx = context(cfg, tmp_path)
    models = {m.name: m for m in pair_models(cfg)}
    assert dissected_model(ctx, models["baseline_random"])["role"] == (
        "random control of baseline (BatchNorm statistics estimated on its training images, as the trained model's)")
