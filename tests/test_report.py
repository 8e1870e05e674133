"""The HTML report: built from a real (small) results tree; links, numbers, sections, reproducibility."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from PIL import Image

import report_fixture as rf
from cnninterp.errors import DataError
from cnninterp.methods import installed_methods
from cnninterp.report import figures
from cnninterp.report.build import Section, build_report
from cnninterp.report.context import pair_models


class Page(HTMLParser):
    """Collects the attributes of every tag, and the text of tags with a ``data-key``."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.values: list[tuple[dict, str]] = []
        self._open: list[tuple[str, dict, list]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "data-key" in attrs:
            self._open.append((tag, attrs, []))

    def handle_data(self, data):
        for _, _, parts in self._open:
            parts.append(data)

    def handle_endtag(self, tag):
        if self._open and self._open[-1][0] == tag:
            _, attrs, parts = self._open.pop()
            self.values.append((attrs, "".join(parts).strip()))

    def attr(self, tag: str, name: str) -> list[str]:
        return [a[name] for t, a in self.tags if t == tag and a.get(name) is not None]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    return rf.shared_results(tmp_path_factory)


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    return rf.shared_report(tmp_path_factory)


@pytest.fixture(scope="module")
def page(index) -> Page:
    return Page(index.read_text())


def local_targets(page: Page) -> list[str]:
    refs = page.attr("img", "src") + page.attr("a", "href") + page.attr("link", "href") + page.attr("script", "src")
    return [r for r in refs if not r.startswith(("#", "data:"))]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_report_has_every_section_and_local_files(index, page):
    assert index.name == "index.html" and index.is_file()
    sections = page.attr("section", "id")
    assert sections == ["overview", "dissection", "provenance"]
    targets = local_targets(page)
    assert len(page.attr("img", "src")) == 2 + 1 + 2 * len(rf.LAYERS) * rf.GALLERY_UNITS  # charts + gallery
    assert any(t.endswith("iou.parquet") for t in targets) and any(t.endswith("summary.json") for t in targets)
    for target in targets:
        assert urlparse(target).scheme == "", f"{target} is not a local file"
        assert (index.parent / unquote(target)).is_file(), f"{target} does not exist"
    assert "../dissect/baseline/iou.parquet" in targets


def test_table_numbers_equal_summary(results, page):
    seen = set()
    for attrs, text in page.values:
        if "data-layer" not in attrs:
            continue
        model, layer, key = attrs["data-model"], attrs["data-layer"], attrs["data-key"]
        value = json.loads((results / "dissect" / model / "summary.json").read_text())["layers"][layer]
        for part in key.split("."):
            value = value[part]
        assert int(text) == value, f"{model} {layer} {key}: page shows {text}, summary.json has {value}"
        seen.add((model, layer, key))
    cats = ["color", "object", "part", "material", "scene", "texture"]
    keys = {"units", "detectors", "unique_concepts"} | {f"{k}.{c}" for k in ("detectors_per_category", "unique_concepts_per_category") for c in cats}
    assert seen == {(m, layer, k) for m in (rf.TRAINED, rf.CONTROL) for layer in rf.LAYERS for k in keys}
    totals = {attrs["data-model"]: int(text) for attrs, text in page.values if attrs["data-key"] == "detectors_total"}
    for model, total in totals.items():
        summary = json.loads((results / "dissect" / model / "summary.json").read_text())
        assert total == sum(s["detectors"] for s in summary["layers"].values())
    assert set(totals) == {rf.TRAINED, rf.CONTROL}


def test_gallery_shows_top_units_by_iou(results, index, page):
    for model in (rf.TRAINED, rf.CONTROL):
        summary = json.loads((results / "dissect" / model / "summary.json").read_text())
        for layer in rf.LAYERS:
            units = sorted(summary["layers"][layer]["unit_labels"], key=lambda u: (-u["iou"], u["unit"]))[: rf.GALLERY_UNITS]
            srcs = [s for s in page.attr("img", "src") if s.startswith(f"figures/dissect/{model}/{layer}/")]
            assert srcs == [f"figures/dissect/{model}/{layer}/unit_{u['unit']:04d}.png" for u in units]
            with Image.open(index.parent / srcs[0]) as img:
                assert img.size == (rf.GALLERY_IMAGES * figures.TILE + (rf.GALLERY_IMAGES - 1) * figures.GAP, figures.TILE)


def test_page_is_self_contained(page, index):
    text = index.read_text()
    assert "<script" not in text
    for ref in local_targets(page) + page.attr("link", "href"):
        assert not ref.startswith(("http:", "https:", "//")), ref


def test_provenance_has_config_hash_and_no_clock(results, index):
    import hashlib

    text = index.read_text()
    assert hashlib.sha256((results / "config.json").read_bytes()).hexdigest() in text
    assert str(results) not in text  # no absolute paths
    for name in ("cnninterp", "torch", "torchvision", "numpy"):
        assert f'<th scope="row">{name}</th>' in text


def test_two_builds_are_byte_identical(results, tmp_path, index):
    work = tmp_path / "results"
    shutil.copytree(results, work, ignore=shutil.ignore_patterns("report"))
    first = tree_bytes(build_report(work / "config.json", work, work / "report").parent)
    second = tree_bytes(build_report(work / "config.json", work, work / "report").parent)
    assert first.keys() == second.keys() and len([k for k in first if k.endswith(".png")]) > 10
    for name in first:
        assert first[name] == second[name], f"{name} differs between two builds"
    assert first == tree_bytes(index.parent)  # same as the report built in another folder


def test_section_without_results_is_left_out(results, tmp_path):
    work = tmp_path / "results"
    shutil.copytree(results, work, ignore=shutil.ignore_patterns("report", "dissect"))
    page = Page(build_report(work / "config.json", work, work / "report").read_text())
    assert page.attr("section", "id") == ["overview", "provenance"]
    assert page.attr("img", "src") == []


def test_a_trained_model_shows_its_own_settings_and_says_when_the_config_moved_on(results, tmp_path):
    # a model the run does not retrain keeps its file: the accuracy must stand beside the settings that gave it
    work = tmp_path / "results"
    shutil.copytree(results, work, ignore=shutil.ignore_patterns("report", "dissect"))
    config = json.loads((work / "config.json").read_text())
    trained = dict(config["train"][rf.TRAINED], epochs=3)
    (work / "models" / rf.TRAINED).mkdir(parents=True)
    (work / "models" / rf.TRAINED / "config.json").write_text(json.dumps(
        {"arch": trained["arch"], "num_classes": 5, "config": trained, "summary": {"val_accuracy": 0.5}}))
    config["train"][rf.TRAINED]["epochs"] = 7
    (work / "config.json").write_text(json.dumps(config))
    html = build_report(work / "config.json", work, work / "report").read_text()
    row = html.split("<h3>Trained models</h3>", 1)[1].split(f'<th scope="row">{rf.TRAINED}', 1)[1].split("</tr>", 1)[0]
    assert "trained before the config changed epochs" in row and '<td class="n">3</td>' in row


def test_registry_renders_only_available_sections(results, tmp_path):
    calls = []
    never = Section("never", "Never", "missing.html.j2", lambda r: False, lambda ctx: calls.append(ctx) or {})
    from cnninterp.report import build

    index = build_report(results / "config.json", results, tmp_path / "report", sections=[never, *build.SECTIONS[-1:]])
    assert calls == [] and Page(index.read_text()).attr("section", "id") == ["provenance"]


def test_missing_summary_is_a_clear_error_and_leaves_nothing(results, tmp_path):
    work = tmp_path / "results"
    shutil.copytree(results, work, ignore=shutil.ignore_patterns("report"))
    (work / "dissect" / rf.CONTROL / "summary.json").unlink()
    with pytest.raises(DataError, match=rf"dissect/{rf.CONTROL}/summary\.json is missing.*{rf.CONTROL}"):
        build_report(work / "config.json", work, work / "report")
    assert not (work / "report").exists()
    assert [p.name for p in work.iterdir() if p.name.startswith(".")] == []


def test_cli_report_writes_index(results, tmp_path):
    from cnninterp.cli import main

    assert main(["report", "--config", str(results / "config.json"), "--results", str(results), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "index.html").is_file()
    assert main(["report", "--config", str(tmp_path / "nope.json"), "--results", str(results), "--out", str(tmp_path / "r2")]) == 2


def test_models_pair_with_their_random_control(results):
    config = json.loads((results / "config.json").read_text())
    models = {m.name: m for m in pair_models(config)}
    assert models[rf.TRAINED].control == rf.CONTROL and models[rf.TRAINED].control_of is None
    assert models[rf.CONTROL].control_of == rf.TRAINED and models[rf.CONTROL].random


@pytest.mark.parametrize("change", [{"layers": ["layer4"]}, {"iou_threshold": 0.01}, {"quantile": 0.01}])
def test_a_control_dissected_otherwise_is_no_control(results, change):
    # its detector counts would not compare (other layers summed, another threshold)
    config = json.loads((results / "config.json").read_text())
    config["dissect"]["models"][rf.CONTROL].update(change)
    models = {m.name: m for m in pair_models(config)}
    assert models[rf.TRAINED].control is None and models[rf.CONTROL].control_of is None


def test_overlay_dims_outside_and_outlines_inside():
    image = np.full((8, 8, 3), 200, np.uint8)
    amap = np.zeros((2, 2), np.float32)
    amap[0, 0] = 10.0
    out = figures.overlay_activation(image, amap, threshold=5.0)  # upsampled: > 5 where row, col < 4
    assert tuple(out[7, 7]) == tuple(out[4, 0]) == (60, 60, 60)  # dimmed outside
    assert tuple(out[0, 0]) == tuple(out[2, 2]) == (200, 200, 200)  # inside, off the border
    assert tuple(out[3, 0]) == tuple(out[1, 3]) == figures.OUTLINE  # the border; image edges are no border


def test_a_switched_off_method_gets_the_shared_not_run_note_without_rendering(tmp_path):
    """Every installed method's real section (the registry's, its render replaced by one that
    fails), switched off: the shared note, and no render call."""
    import dataclasses

    from cnninterp.report.build import environment, method_sections, render_sections
    from cnninterp.report.context import Context

    def must_not_render(ctx):
        raise AssertionError("a switched-off method's render was called")

    sections = [dataclasses.replace(s, render=must_not_render) for s in method_sections()]
    assert [s.id for s in sections] == installed_methods()
    config = {s.id: {"enabled": False} for s in sections}
    ctx = Context(config=config, config_bytes=b"{}", results=tmp_path, out=tmp_path, staging=tmp_path)
    rendered = render_sections(ctx, environment(), sections)
    assert [r["id"] for r in rendered] == installed_methods()
    for s, r in zip(sections, rendered):
        assert f'id="{s.id}-not-run"' in r["html"] and f"{s.id}.enabled" in r["html"] and r["title"] == s.title
