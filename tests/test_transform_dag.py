"""The transform method in the DAG: its outputs, what a setting change reruns, and switching it off."""

import json
from collections import Counter

import pytest
import yaml

from dag import edited_plan, planned

pytestmark = pytest.mark.slow
DIGITS_RULES = {"transform_data", "transform_train", "transform_evaluate"}
OBJECTS_RULES = {"transform_objects3d_data", "transform_train_objects3d", "transform_evaluate_objects3d"}
TRANSFORM_RULES = DIGITS_RULES | OBJECTS_RULES | {"transform_metrics"}


def rules(plan: Counter) -> set[str]:
    return {rule for rule, _ in plan}


def test_the_dag_run_writes_the_transform_metrics_and_report_section(dag_run):
    metrics = json.loads((dag_run / "results/eval/transform/metrics.json").read_text())
    for key in ("reconstruction_mse", "equivariance_error", "angle_error_deg", "invariant_accuracy"):
        assert set(metrics[key]) == {"digits", "objects3d"}
    assert set(metrics["reconstruction_mse"]["digits"]) == {"ftl", "baseline"}
    assert set(metrics["reconstruction_mse"]["objects3d"]) == {"ftl", "baseline", "ftl_azimuth_not_turned"}
    for dataset in ("digits", "objects3d"):
        assert set(metrics["equivariance_error"][dataset]) == {"seen", "heldout"}
    assert set(metrics["angle_error_deg"]["objects3d"]["ftl"]) == {"inplane", "azimuth"}
    assert metrics["heldout_deg"]["objects3d"] == [90.0, 150.0]
    for name in ("transform_ftl", "transform_baseline", "transform_objects3d_ftl", "transform_objects3d_baseline"):
        assert (dag_run / f"results/models/{name}/model.pt").is_file()
    manifest = json.loads((dag_run / "results/shards/objects3d/manifest.json").read_text())
    assert manifest["factors"]["azimuth_deg"]["heldout"] == [90.0, 150.0]
    assert (dag_run / "results/shards/digits/manifest.json").is_file()
    html = (dag_run / "results/report/index.html").read_text()
    assert "Interpretable transformations" in html and "turn_digits.png" in html and "turn_objects3d.png" in html
    for dataset in ("digits", "objects3d"):
        params = metrics["invariant_accuracy"][dataset]["parameters"]
        assert params["block_norms"] == params["pixel_pca"] and params["invariant_latent"] == params["pixel_pca_invariant_latent"]
    assert "the same classifier, the same size" in html and "measured here" in html
    trained = json.loads((dag_run / "results/models/transform_ftl/config.json").read_text())
    assert trained["config"]["equivariance_norm"] == "part"  # the schema's default reaches the digits training


def test_changing_a_training_setting_reruns_only_the_transform_jobs_and_the_report(dag_run):
    plan = edited_plan(dag_run, lambda c: c["transform"]["train"].update(lr=0.002))
    assert {("transform_train", "kind=ftl"), ("transform_train", "kind=baseline"), ("transform_evaluate", "")} <= set(plan)
    assert rules(plan) <= {"transform_train", "transform_evaluate", "transform_metrics", "report", "config_snapshot", "all"}
    assert "report" in rules(plan)


def test_an_equivariance_setting_retrains_the_ftl_model_not_the_baseline(dag_run):
    # the baseline trains without the term, so its weight does not key the baseline's training
    plan = edited_plan(dag_run, lambda c: c["transform"]["train"].update(equivariance_weight=0.5))
    assert ("transform_train", "kind=ftl") in plan and ("transform_train", "kind=baseline") not in plan


def test_changing_a_3d_setting_reruns_only_the_3d_chain_and_the_merge(dag_run):
    plan = edited_plan(dag_run, lambda c: c["transform"]["objects3d"].update(heldout_start_deg=0))
    assert OBJECTS_RULES | {"transform_metrics"} <= rules(plan)
    assert rules(plan) <= OBJECTS_RULES | {"transform_metrics", "report", "config_snapshot", "all"}
    plan = edited_plan(dag_run, lambda c: c["transform"]["objects3d"].update(epochs=2))
    assert "transform_objects3d_data" not in rules(plan) and "transform_train_objects3d" in rules(plan)


def test_changing_a_data_setting_reruns_the_whole_transform_chain(dag_run):
    plan = edited_plan(dag_run, lambda c: c["transform"]["data"].update(heldout_width_deg=90))
    assert DIGITS_RULES | {"transform_metrics"} <= rules(plan)
    assert rules(plan) <= DIGITS_RULES | {"transform_metrics", "report", "config_snapshot", "all"}


def test_disabling_the_method_removes_its_jobs(dag_run):
    original = (dag_run / "tiny.yaml").read_text()
    config = yaml.safe_load(original)
    config["transform"]["enabled"] = False
    try:
        (dag_run / "tiny.yaml").write_text(yaml.safe_dump(config))
        plan = planned(dag_run, "--forceall")
    finally:
        (dag_run / "tiny.yaml").write_text(original)
    assert not rules(plan) & TRANSFORM_RULES
    assert "report" in rules(plan)


def test_disabling_the_3d_set_keeps_the_digits_chain(dag_run):
    original = (dag_run / "tiny.yaml").read_text()
    config = yaml.safe_load(original)
    config["transform"]["objects3d"]["enabled"] = False
    try:
        (dag_run / "tiny.yaml").write_text(yaml.safe_dump(config))
        plan = planned(dag_run, "--forceall")
    finally:
        (dag_run / "tiny.yaml").write_text(original)
    assert DIGITS_RULES | {"transform_metrics"} <= rules(plan)
    assert not rules(plan) & OBJECTS_RULES
