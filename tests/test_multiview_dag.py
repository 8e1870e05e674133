"""The multiview method in the DAG: its outputs, what a setting change reruns, and switching it off."""

import json
import re
from collections import Counter

import pytest
import yaml

from dag import edited_plan, planned

pytestmark = pytest.mark.slow
MULTIVIEW_RULES = {"multiview_data_train", "multiview_data_eval", "multiview_train", "multiview_evaluate"}
ALWAYS = {"report", "config_snapshot", "all"}
TRAININGS = {("multiview_train", f"kind={k}") for k in ("baseline", "fusion", "canonical")}


def rules(plan: Counter) -> set[str]:
    return {rule for rule, _ in plan}


def test_the_dag_run_writes_the_multiview_metrics_figures_and_report_section(dag_run):
    metrics = json.loads((dag_run / "results/eval/multiview/metrics.json").read_text())
    for key in ("mpjpe_mm", "mpjpe_mm_unseen_camera"):
        assert set(metrics[key]) == {"baseline", "fusion", "canonical"}
    assert {"sii_ms", "svd_ms", "speedup", "max_abs_diff_mm"} <= set(metrics["dlt"])
    for kind in ("baseline", "fusion", "canonical"):
        assert (dag_run / f"results/models/multiview_{kind}/model.pt").is_file()
    assert set(json.loads((dag_run / "results/shards/multiview/train/manifest.json").read_text())["splits"]) == {"train"}
    assert set(json.loads((dag_run / "results/shards/multiview/eval/manifest.json").read_text())["splits"]) == {"test", "unseen"}
    html = (dag_run / "results/report/index.html").read_text()
    assert "Multi-view pose" in html and "novel_out_of_plane.png" in html


def test_changing_a_training_setting_reruns_only_the_multiview_training_evaluation_and_report(dag_run):
    plan = edited_plan(dag_run, lambda c: c["multiview"]["train"].update(lr=0.001))
    assert TRAININGS | {("multiview_evaluate", "")} <= set(plan)
    assert rules(plan) <= {"multiview_train", "multiview_evaluate"} | ALWAYS
    assert "report" in rules(plan)


def test_changing_the_training_poses_reruns_the_training_chain_not_the_evaluation_data(dag_run):
    plan = edited_plan(dag_run, lambda c: c["multiview"]["data"].update(train=30))
    assert {("multiview_data_train", ""), ("multiview_evaluate", "")} | TRAININGS <= set(plan)
    assert rules(plan) <= MULTIVIEW_RULES - {"multiview_data_eval"} | ALWAYS


def test_changing_only_the_evaluation_splits_retrains_nothing(dag_run):
    # the test count and the moved camera define only the test and unseen splits: the three models
    # (trained on the train split, whose samples do not depend on them) stay as they are
    plan = edited_plan(dag_run, lambda c: c["multiview"]["data"].update(test=9, heldout_view=1, heldout_azimuth_deg=10.0))
    assert rules(plan) & MULTIVIEW_RULES == {"multiview_data_eval", "multiview_evaluate"}
    assert rules(plan) <= MULTIVIEW_RULES | ALWAYS


def test_changing_an_evaluation_setting_reruns_only_the_evaluation(dag_run):
    plan = edited_plan(dag_run, lambda c: c["multiview"]["eval"].update(figure_rows=2))
    assert rules(plan) & MULTIVIEW_RULES == {"multiview_evaluate"}


def test_disabling_the_method_removes_its_jobs(dag_run):
    original = (dag_run / "tiny.yaml").read_text()
    config = yaml.safe_load(original)
    config["multiview"]["enabled"] = False
    try:
        (dag_run / "tiny.yaml").write_text(yaml.safe_dump(config))
        plan = planned(dag_run, "--forceall")
    finally:
        (dag_run / "tiny.yaml").write_text(original)
    assert not rules(plan) & MULTIVIEW_RULES
    assert "report" in rules(plan)


def test_pointing_the_config_at_a_human36m_root_shards_each_split_from_its_subjects(dag_run, tmp_path):
    """multiview.data.source h36m: each data job reads its own subjects' joints_3d.npy (inputs: an
    edit reruns it; their cameras are a param, h36m.camera_digest), with that split's subjects only; a
    configured subject without a folder is refused before any job, naming the key."""
    from dag import snakemake
    from test_h36m import write_sequence

    root = tmp_path / "my h36m"
    write_sequence(root, frames=1, subject="S1")
    write_sequence(root, frames=1, subject="S9")
    original = (dag_run / "tiny.yaml").read_text()
    config = yaml.safe_load(original)
    config["multiview"]["data"].update(source="h36m", h36m={"root": str(root), "train_subjects": ["S1"], "test_subjects": ["S9"]})
    try:
        (dag_run / "tiny.yaml").write_text(yaml.safe_dump(config))
        proc = snakemake(dag_run, "-n", "-p", "results/eval/multiview/metrics.json")
        config["multiview"]["data"]["h36m"]["test_subjects"] = ["S9", "S11"]
        (dag_run / "tiny.yaml").write_text(yaml.safe_dump(config))
        refused = snakemake(dag_run, "-n")
    finally:
        (dag_run / "tiny.yaml").write_text(original)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = {m.group(1): m.group(2) for m in re.finditer(r"^rule (multiview_data_\w+):\n((?:    .*\n)*)", proc.stdout, re.M)}
    assert set(jobs) == {"multiview_data_train", "multiview_data_eval"}
    assert f"input: {root}/S1/Walking 1/joints_3d.npy, " in jobs["multiview_data_train"]
    assert f"input: {root}/S9/Walking 1/joints_3d.npy, " in jobs["multiview_data_eval"]
    assert "workflow/cnninterp/data/h36m.py" in jobs["multiview_data_train"]
    assert "--splits train --train-subjects S1 " in proc.stdout and "--splits test --test-subjects S9 " in proc.stdout
    assert refused.returncode != 0 and "multiview.data.h36m: subjects ['S11'] have no folder" in refused.stdout + refused.stderr
