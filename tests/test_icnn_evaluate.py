"""Training both networks on tiny parts shards, the evaluation (with the dissection engine), the report figure."""

import json

import numpy as np
import pytest
import torch

from cnninterp.data.parts import PARTS, write_parts


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from cnninterp.icnn.model import NetSpec
    from cnninterp.icnn.train import train_net

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("icnn")
    write_parts(root / "parts", splits={"train": 64, "test": 40}, image_size=32, positive_fraction=0.5, seed=0, shard_size=100)
    write_parts(root / "probe", splits={"probe": 16}, image_size=32, positive_fraction=0.5, seed=1, shard_size=100)
    hist = {}
    for kind in ("icnn", "cnn"):
        spec = NetSpec(interpretable=kind == "icnn", image_size=32, channels=4, filters=4)
        hist[kind] = train_net(root / "parts", root / kind / "model.pt", spec, epochs=1, batch_size=32, lr=3e-3,
                               filter_weight=1.0, seed=0, device="cpu")["history"]
    return root, hist


def test_training_adds_the_filter_loss_only_to_the_interpretable_network(tiny):
    root, hist = tiny
    assert "filter_loss" in hist["icnn"][0] and "filter_loss" not in hist["cnn"][0]
    assert hist["icnn"][0]["samples"] == hist["cnn"][0]["samples"] == 64
    payload = torch.load(root / "icnn" / "model.pt", weights_only=True)
    assert payload["config"]["filter_categories"] == [1, 1, 1, 1]
    assert json.loads((root / "cnn" / "config.json").read_text())["config"]["filter_weight"] == 0.0


@pytest.fixture(scope="module")
def evaluated(tiny):
    """The evaluation of the two tiny networks, written under ``<root>/eval`` (every test that
    reads it asks for this fixture, so the tests run in any order or alone)."""
    from cnninterp.icnn.evaluate import evaluate

    root, _ = tiny
    out = root / "eval" / "metrics.json"
    result = evaluate(root / "parts", root / "probe", {"icnn": root / "icnn/model.pt", "cnn": root / "cnn/model.pt"}, out,
                      top_images=8, quantile=0.02, iou_threshold=0.04, figure_rows=2, figure_cols=3)
    return root, out, result


def test_evaluate_writes_every_metric_for_both_networks(evaluated):
    root, out, result = evaluated
    on_disk = json.loads(out.read_text())
    for key in ("location_instability", "accuracy", "part_detectors", "mean_part_iou"):
        assert set(on_disk[key]) == {"icnn", "cnn"}, key
    for kind in ("icnn", "cnn"):
        assert 0 <= result["location_instability"][kind] < 1 and 0 <= result["accuracy"][kind] <= 1
        assert 0 <= result["part_detectors"][kind] <= 4
        assert sum(result["filters_per_landmark"][kind].values()) == 4
        parts = on_disk["filter_parts"][kind]
        assert sum(parts["best_landmark"].values()) == sum(parts["under_peak"].values()) == len(parts["per_filter"]) == 4
        assert set(parts["under_peak"]) == {"none", *PARTS}
        assert {f["best_landmark"] for f in parts["per_filter"]} == {p for p, c in parts["best_landmark"].items() if c}
        summary = json.loads((root / "eval" / "dissect" / kind / "summary.json").read_text())
        assert summary["images"] == 16 and summary["layers"]["top"]["units"] == 4
    stats = on_disk["part_statistics"]
    assert set(stats["area_share"]) == set(PARTS) and abs(sum(stats["area_share"].values()) - 1) < 1e-3
    fig = dict(np.load(root / "eval" / "figure.npz"))
    assert fig["images"].shape[0] == 3 and fig["icnn_maps"].shape == (2, 3, 8, 8) and fig["cnn_landmark"].shape == (2, 3, 2)

    from cnninterp.icnn.report import figure_image

    image = figure_image(fig)
    assert image.dtype == np.uint8 and image.shape[2] == 3 and image.shape[1] == 3 * 32 * 3 + 2 * 3


def test_evaluate_refuses_networks_trained_on_other_shards(tiny, tmp_path):
    """Networks trained on the tiny shards, evaluated with other parts shards (another seed; then, for a
    checkpoint without the recorded digest, another image size): DataError naming both, nothing written."""
    from cnninterp.errors import DataError
    from cnninterp.icnn.evaluate import evaluate

    root, _ = tiny
    models = {"icnn": root / "icnn/model.pt", "cnn": root / "cnn/model.pt"}
    run = lambda shards, nets: evaluate(shards, root / "probe", nets, tmp_path / "eval/metrics.json", top_images=4,  # noqa: E731
                                        quantile=0.02, iou_threshold=0.04, figure_rows=1, figure_cols=1)
    write_parts(tmp_path / "other", splits={"test": 8}, image_size=32, positive_fraction=0.5, seed=7, shard_size=100)
    with pytest.raises(DataError, match=rf"trained on the shards of {root / 'parts'}/manifest.json .*{tmp_path / 'other'}/manifest.json"):
        run(tmp_path / "other", models)
    write_parts(tmp_path / "small", splits={"test": 8}, image_size=16, positive_fraction=0.5, seed=7, shard_size=100)
    payload = torch.load(models["cnn"], weights_only=True)
    del payload["config"]["shards_manifest_sha256"]  # as written before the digest was recorded
    torch.save(payload, tmp_path / "old.pt")
    with pytest.raises(DataError, match=r"old.pt was trained with image size 32 .* has image size 16"):
        run(tmp_path / "small", {"icnn": tmp_path / "old.pt", "cnn": tmp_path / "old.pt"})
    assert not (tmp_path / "eval").exists()


def test_training_and_evaluation_refuse_shards_whose_class_0_is_not_negative(tiny, tmp_path, capsys):
    """Shards whose class 0 is an object (CUB species 001, as the removed `icnn cub` verb wrote them)
    would be trained and scored with that species as the negative class: DataError naming the manifest."""
    import shutil

    from cnninterp.cli import main
    from cnninterp.errors import DataError
    from cnninterp.icnn.evaluate import evaluate
    from cnninterp.icnn.model import NetSpec
    from cnninterp.icnn.train import train_net

    root, _ = tiny
    shutil.copytree(root / "parts", tmp_path / "species")
    manifest = json.loads((tmp_path / "species/manifest.json").read_text())
    (tmp_path / "species/manifest.json").write_text(json.dumps({**manifest, "classes": ["001.Albatross", "002.Laysan"]}))
    match = rf"{tmp_path / 'species'}/manifest.json: classes \['001.Albatross', '002.Laysan'\] \(2\) do not start with 'negative'"
    with pytest.raises(DataError, match=match):
        train_net(tmp_path / "species", tmp_path / "m/model.pt", NetSpec(interpretable=True, image_size=32, channels=2, filters=2),
                  epochs=1, batch_size=32, lr=1e-3, filter_weight=1.0, seed=0, device="cpu")
    with pytest.raises(DataError, match=match):
        evaluate(tmp_path / "species", root / "probe", {"icnn": root / "icnn/model.pt", "cnn": root / "cnn/model.pt"},
                 tmp_path / "eval/metrics.json", top_images=4, quantile=0.02, iou_threshold=0.04, figure_rows=1, figure_cols=1)
    assert not (tmp_path / "m").exists() and not (tmp_path / "eval").exists()
    with pytest.raises(SystemExit) as exit_:  # the verb that wrote such shards is gone
        main(["icnn", "cub", "--root", str(tmp_path), "--out", str(tmp_path / "x")])
    assert exit_.value.code == 2 and "invalid choice: 'cub'" in capsys.readouterr().err


def test_an_oracle_part_unit_is_a_part_detector_through_the_engine(tiny, tmp_path):
    """A 'network' whose top unit 0 is the redness of the input (the head's colour) and unit 1 a
    constant: dissected by the engine on the probe set, unit 0 detects the head, unit 1 nothing."""
    from cnninterp.data.preprocess import IMAGENET_MEAN, IMAGENET_STD
    from cnninterp.icnn.evaluate import dissect_top

    root, _ = tiny
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    class Red(torch.nn.Module):
        def forward(self, x):
            rgb = (x * std + mean) * 255
            red = torch.relu(rgb[:, :1] - rgb[:, 1:].max(1, keepdim=True).values - 80)
            return torch.cat([red, torch.zeros_like(red) + 1.0], 1)[:, :, ::4, ::4].contiguous()

    class Oracle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.top = Red()

        def forward(self, x):
            return self.top(x)

    scores = dissect_top(Oracle(), root / "probe", tmp_path / "d", quantile=0.02, iou_threshold=0.04, batch_size=8)
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    units = summary["layers"]["top"]["unit_labels"]
    assert units[0]["per_category"]["part"]["label"] == "head" and units[0]["per_category"]["part"]["iou"] > 0.2
    assert scores["part_detectors"] == 1 and scores["detectors_per_part"] == {"head": 1}


def test_part_scores_counts_units_over_the_threshold():
    from cnninterp.icnn.evaluate import part_scores

    units = [{"per_category": {"part": {"label": "head", "iou": 0.3}}}, {"per_category": {"part": {"label": "tail", "iou": 0.01}}},
             {"per_category": {}}]
    s = part_scores({"top": {"unit_labels": units}}, 0.04)
    assert s["part_detectors"] == 1 and s["mean_part_iou"] == pytest.approx(0.31 / 3) and s["detectors_per_part"] == {"head": 1}
    assert PARTS[0] == "head"


def test_report_section_renders_the_table_and_figure(evaluated, tmp_path):
    from cnninterp.icnn import report
    from cnninterp.report.build import environment
    from cnninterp.report.context import Context

    root, _, _ = evaluated
    results = tmp_path / "results"
    (results / "eval").mkdir(parents=True)
    import shutil

    shutil.copytree(root / "eval", results / "eval" / "icnn")
    metrics = json.loads((root / "eval" / "metrics.json").read_text())
    metrics["location_instability"] = {"icnn": 0.06, "cnn": 0.08}  # set by hand: the ratio is 0.75
    (results / "eval" / "icnn" / "metrics.json").write_text(json.dumps(metrics))
    config = {"icnn": {"enabled": True, "train": {"filter_weight": 1.0}}}
    ctx = Context(config=config, config_bytes=b"{}", results=results, out=tmp_path / "report", staging=tmp_path / "staging")
    data = report.render(ctx)
    html = environment().get_template(report.TEMPLATE).render(data=data)
    assert "location instability" in html and "filters.png" in html and "0.55-0.65" in html
    # what the filters became, from metrics.json, beside the paper's claim
    fp = data["metrics"]["filter_parts"]["icnn"]
    assert f"({fp['distinct_best_landmarks']} distinct)" in html and "different filters represent different parts" in html
    assert "Data: synthetic objects of five known parts" in html
    assert (tmp_path / "staging" / "icnn" / "filters.png").is_file()
    assert data["ratio"] == pytest.approx(0.75)
    assert "interpretable / ordinary: 0.75" in html
