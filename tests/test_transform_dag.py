"""The transform method in the DAG: its outputs, what a setting change reruns, and switching it off."""

import json
from collections import Counter

import pytest
import yaml

from dag import edited_plan, planned

pytestmark = pytest.mark.slow
TRANSFORM_RULES = {"transform_data", "transform_train", "transform_evaluate"}


def rules(plan: Counter) -> set[str]:
    return {rule for rule, _ in plan}


def test_the_dag_run_writes_the_transform_metrics_and_report_section(dag_run):
    metrics = json.loads((dag_run / "results/eval/transform/metrics.json").read_text())
    for key in ("reconstruction_mse", "equivariance_error", "angle_error_deg", "invariant_accuracy"):
        assert "digits" in metrics[key]
    assert set(metrics["reconstruction_mse"]["digits"]) == {"ftl", "baseline"}
    assert (dag_run / "results/models/transform_ftl/model.pt").is_file()
    assert (dag_run / "results/shards/digits/manifest.json").is_file()
    html = (dag_run / "results/report/index.html").read_text()
    assert "Interpretable transformations" in html and "turn_digits.png" in html


def test_changing_a_training_setting_reruns_only_the_transform_jobs_and_the_report(dag_run):
    plan = edited_plan(dag_run, lambda c: c["transform"]["train"].update(lr=0.002))
    assert {("transform_train", "kind=ftl"), ("transform_train", "kind=baseline"), ("transform_evaluate", "")} <= set(plan)
    assert rules(plan) <= {"transform_train", "transform_evaluate", "report", "config_snapshot", "all"}
    assert "report" in rules(plan)


def test_changing_a_data_setting_reruns_the_whole_transform_chain(dag_run):
    plan = edited_plan(dag_run, lambda c: c["transform"]["data"].update(heldout_width_deg=90))
    assert TRANSFORM_RULES <= rules(plan)
    assert rules(plan) <= TRANSFORM_RULES | {"report", "config_snapshot", "all"}


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
