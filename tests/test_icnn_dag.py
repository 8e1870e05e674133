"""The icnn method in the DAG: its outputs, what a setting change reruns, and switching it off."""

import json
from collections import Counter

import pytest
import yaml

from dag import edited_plan, planned

pytestmark = pytest.mark.slow
ICNN_RULES = {"icnn_data", "icnn_train", "icnn_evaluate"}


def rules(plan: Counter) -> set[str]:
    return {rule for rule, _ in plan}


def test_the_dag_run_writes_the_icnn_metrics_dissections_and_report_section(dag_run):
    metrics = json.loads((dag_run / "results/eval/icnn/metrics.json").read_text())
    for key in ("location_instability", "accuracy", "part_detectors", "mean_part_iou"):
        assert set(metrics[key]) == {"icnn", "cnn"}, key
    for kind in ("icnn", "cnn"):
        assert (dag_run / f"results/models/icnn_{kind}/model.pt").is_file()
        assert (dag_run / f"results/eval/icnn/dissect/{kind}/iou.parquet").is_file()
    assert json.loads((dag_run / "results/shards/parts/manifest.json").read_text())["parts"][0] == "head"
    html = (dag_run / "results/report/index.html").read_text()
    assert "Interpretable CNNs" in html and "filters.png" in html


def test_changing_a_training_setting_reruns_only_the_icnn_jobs_and_the_report(dag_run):
    plan = edited_plan(dag_run, lambda c: c["icnn"].setdefault("train", {}).update(lr=0.002))
    assert {("icnn_train", "kind=icnn"), ("icnn_train", "kind=cnn"), ("icnn_evaluate", "")} <= set(plan)
    assert rules(plan) <= {"icnn_train", "icnn_evaluate", "report", "config_snapshot", "all"}
    assert "report" in rules(plan)


def test_changing_the_filter_loss_weight_retrains_only_the_interpretable_network(dag_run):
    plan = edited_plan(dag_run, lambda c: c["icnn"].setdefault("train", {}).update(filter_weight=0.5))
    assert ("icnn_train", "kind=icnn") in plan and ("icnn_train", "kind=cnn") not in plan
    assert rules(plan) <= {"icnn_train", "icnn_evaluate", "report", "config_snapshot", "all"}


def test_changing_an_evaluation_setting_reruns_only_the_evaluation_and_the_report(dag_run):
    plan = edited_plan(dag_run, lambda c: c["icnn"].setdefault("eval", {}).update(iou_threshold=0.05))
    assert ("icnn_evaluate", "") in plan
    assert rules(plan) <= {"icnn_evaluate", "report", "config_snapshot", "all"}


def test_changing_a_data_setting_reruns_the_whole_icnn_chain(dag_run):
    plan = edited_plan(dag_run, lambda c: c["icnn"]["data"].update(positive_fraction=0.4))
    assert ICNN_RULES <= rules(plan)
    assert rules(plan) <= ICNN_RULES | {"report", "config_snapshot", "all"}


def test_disabling_the_method_removes_its_jobs(dag_run):
    original = (dag_run / "tiny.yaml").read_text()
    config = yaml.safe_load(original)
    config["icnn"]["enabled"] = False
    try:
        (dag_run / "tiny.yaml").write_text(yaml.safe_dump(config))
        plan = planned(dag_run, "--forceall")
    finally:
        (dag_run / "tiny.yaml").write_text(original)
    assert not rules(plan) & ICNN_RULES
    assert "report" in rules(plan)


def test_pointing_the_config_at_a_cub_folder_reruns_only_the_icnn_chain_and_a_bad_root_is_named(dag_run, tmp_path):
    from dag import snakemake
    from test_cub import write_cub

    root = write_cub(tmp_path / "CUB_200_2011")
    plan = edited_plan(dag_run, lambda c: c["icnn"]["data"].update(source="cub", cub_root=str(root)))
    assert ICNN_RULES <= rules(plan)
    assert rules(plan) <= ICNN_RULES | {"report", "config_snapshot", "all"}
    original = (dag_run / "tiny.yaml").read_text()
    config = yaml.safe_load(original)
    (root / "parts/part_locs.txt").unlink()
    config["icnn"]["data"].update(source="cub", cub_root=str(root))
    try:
        (dag_run / "tiny.yaml").write_text(yaml.safe_dump(config))
        proc = snakemake(dag_run, "-n")
    finally:
        (dag_run / "tiny.yaml").write_text(original)
    assert proc.returncode != 0
    assert f"icnn.data.cub_root: {root / 'parts/part_locs.txt'} is missing" in proc.stdout + proc.stderr


def test_with_a_negatives_folder_the_positive_fraction_does_not_key_the_cub_chain(dag_run, tmp_path):
    """With source cub and negatives_root set every negative image is used (write_cub_parts), so
    positive_fraction must not reach the data job's command (it did: editing it reran the chain;
    Snakemake reruns a job whose params changed)."""
    from dag import snakemake
    from test_cub import write_cub

    root = write_cub(tmp_path / "CUB_200_2011")
    (tmp_path / "negatives").mkdir()
    original = (dag_run / "tiny.yaml").read_text()
    config = yaml.safe_load(original)
    config["icnn"]["data"].update(source="cub", cub_root=str(root), positive_fraction=0.8, negatives_root=str(tmp_path / "negatives"))
    try:
        (dag_run / "tiny.yaml").write_text(yaml.safe_dump(config))
        proc = snakemake(dag_run, "-n", "-p", "--forcerun", "icnn_data")
    finally:
        (dag_run / "tiny.yaml").write_text(original)
    assert proc.returncode == 0, proc.stderr[-2000:]
    commands = [line for line in proc.stdout.splitlines() if "cnninterp icnn data" in line]
    assert commands and all("--negatives-root" in c and "--positive-fraction" not in c for c in commands)
