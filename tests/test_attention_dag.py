"""The attention method in the DAG: its outputs, what a setting change reruns, and switching it off."""

import json
from collections import Counter

import pytest
import yaml

from dag import edited_plan, planned

pytestmark = pytest.mark.slow
ATTENTION_RULES = {"attention_data", "attention_train", "attention_evaluate"}
AROUND = {"report", "config_snapshot", "all"}


def rules(plan: Counter) -> set[str]:
    return {rule for rule, _ in plan}


def test_the_dag_run_writes_the_attention_metrics_and_report_section(dag_run):
    metrics = json.loads((dag_run / "results/eval/attention/metrics.json").read_text())
    assert set(metrics["mae"]) == {"attention", "attention_no_reg", "cnn"}
    assert set(metrics["attention_on_cause"]) == {"mass", "area_share", "ratio"}
    assert {"precision", "recall"} <= set(metrics["causal_filtering"])
    assert set(metrics["gradient_on_cause_by_model"]) == {"attention", "attention_no_reg", "cnn"}
    assert all(0.0 <= g["mass"] <= 1.0 for g in metrics["gradient_on_cause_by_model"].values())
    assert set(metrics["deletion"]) == {"cause", "distractor"}
    for variant in ("reg", "noreg", "cnn"):
        assert (dag_run / f"results/models/attention_{variant}/model.pt").is_file()
    for split in ("train", "test"):  # each split in its own folder, so that training depends on its split only
        assert json.loads((dag_run / f"results/shards/driving/{split}/manifest.json").read_text())["splits"].keys() == {split}
    html = (dag_run / "results/report/index.html").read_text()
    assert "Causal attention" in html and "strip.png" in html and "blobs.png" in html


def test_changing_the_regulariser_reruns_only_its_model_the_evaluation_and_the_report(dag_run):
    plan = edited_plan(dag_run, lambda c: c["attention"]["train"].update(reg_weight=0.5))
    assert {("attention_train", "variant=reg"), ("attention_evaluate", "")} <= set(plan)
    assert ("attention_train", "variant=cnn") not in plan
    assert rules(plan) <= {"attention_train", "attention_evaluate"} | AROUND and "report" in rules(plan)


def test_the_attention_only_model_settings_do_not_retrain_the_cnn_baseline(dag_run):
    """The CNN baseline is trained without these switches (train.py forces them off), so they must
    not key its job (they did: every variant took them as params). All five at once: any one of
    them keying the baseline plans it (each set away from its default)."""
    setting = {"located": False, "context_norm": False, "logit_scale": 4.0, "learn_scale": False, "uniform_start": True}
    plan = edited_plan(dag_run, lambda c: c["attention"].setdefault("model", {}).update(setting))
    assert {("attention_train", "variant=reg"), ("attention_train", "variant=noreg")} <= set(plan)
    assert ("attention_train", "variant=cnn") not in plan


def test_changing_a_training_data_setting_reruns_the_training_split_the_trainings_and_the_evaluation(dag_run):
    plan = edited_plan(dag_run, lambda c: c["attention"]["data"].update(train_sequences=7))
    assert ("attention_data", "split=train") in plan and ("attention_data", "split=test") not in plan
    assert sum(n for (rule, _), n in plan.items() if rule == "attention_train") == 3 and ("attention_evaluate", "") in plan
    assert rules(plan) <= ATTENTION_RULES | AROUND


def test_a_test_only_data_setting_reruns_the_test_split_and_the_evaluation_not_the_trainings(dag_run):
    """The test split's size does not change the training data: it must not retrain the three
    models (it did: one data job wrote both splits and every training took its manifest)."""
    plan = edited_plan(dag_run, lambda c: c["attention"]["data"].update(test_sequences=4))
    assert {("attention_data", "split=test"), ("attention_evaluate", "")} <= set(plan)
    assert set(plan) - {("attention_data", "split=test"), ("attention_evaluate", "")} <= {(r, "") for r in AROUND}


def test_a_real_data_setting_does_not_rerun_the_synthetic_chain(dag_run):
    # max_gap_s and test_every are the Udacity/comma readers' settings: the synthetic shards do not depend on them
    plan = edited_plan(dag_run, lambda c: c["attention"]["data"].update(max_gap_s=2.0, test_every=3))
    assert not rules(plan) & ATTENTION_RULES


def test_changing_an_eval_setting_reruns_only_the_evaluation(dag_run):
    plan = edited_plan(dag_run, lambda c: c["attention"]["eval"].update(threshold=0.3))
    assert rules(plan) == {"attention_evaluate"} | (rules(plan) & AROUND) and "report" in rules(plan)


def test_disabling_the_method_removes_its_jobs(dag_run):
    original = (dag_run / "tiny.yaml").read_text()
    config = yaml.safe_load(original)
    config["attention"]["enabled"] = False
    try:
        (dag_run / "tiny.yaml").write_text(yaml.safe_dump(config))
        plan = planned(dag_run, "--forceall")
    finally:
        (dag_run / "tiny.yaml").write_text(original)
    assert not rules(plan) & ATTENTION_RULES
    assert "report" in rules(plan)
