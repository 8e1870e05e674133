"""The real Snakefile end to end on a tiny config: the chain, partial reruns, faults, determinism.

Written over the whole DAG (every rule, whatever rules are added later): a clean run, a run
killed twice with SIGKILL and resumed, and dry-run plans after config and code changes.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from cnninterp.config import method_enabled
from dag import TINY, command, digests, edited_plan, env, make_workdir, methods_off, planned, snakemake, tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clean_run(dag_run):
    """The session's complete run of the tiny config (tests/conftest.py: dag_run)."""
    return dag_run


def kill_when(workdir: Path, proc: subprocess.Popen, condition, what: str, timeout: float = 300) -> None:
    """SIGKILL snakemake and all its jobs as soon as ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# the data -> training -> dissection chain that the faulted run runs (the report holds the methods'
# sections, so it is compared in test_report.py: two builds are byte-identical)
CHAIN = ("results/shards/broden/*", "results/shards/scenes/*", "results/models/baseline/*", "results/dissect/**/*")


@pytest.fixture(scope="module")
def faulted_run(tmp_path_factory):
    """A run killed with SIGKILL while writing shards, resumed, killed while training, resumed.
    The methods are switched off (the kills land in the dissection chain; their jobs would only
    double the time of this test): it is compared with the clean run on that chain's outputs."""
    workdir = make_workdir(tmp_path_factory.mktemp("faulted"), TINY + methods_off())
    shards = workdir / "results/shards/broden"
    train_log = workdir / "results/logs/train/baseline.log"

    def start():
        # a SIGKILLed snakemake leaves its lock behind: --unlock, then --rerun-incomplete
        assert snakemake(workdir, "--unlock").returncode == 0
        return subprocess.Popen(command(workdir, "--cores", "2", "--rerun-incomplete"), cwd=workdir, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    kill_when(workdir, start(), lambda: shards.is_dir() and any(".tmp-" in p.name for p in shards.iterdir()), "a shard being written")
    assert not (shards / "manifest.json").exists()
    kill_when(workdir, start(), lambda: train_log.is_file() and "CUDA_VISIBLE_DEVICES" in train_log.read_text(), "training")
    assert not (workdir / "results/models/baseline/model.pt").exists()
    assert snakemake(workdir, "--unlock").returncode == 0
    proc = snakemake(workdir, "--cores", "2", "--rerun-incomplete")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir


def test_dag_builds_shards_models_dissections_and_report(clean_run):
    manifest = json.loads((clean_run / "results/shards/broden/manifest.json").read_text())
    assert sum(s["samples"] for s in manifest["splits"].values()) == 240
    assert len(manifest["splits"]["train"]["shards"]) == 2
    assert (clean_run / "results/models/baseline/model.pt").is_file()
    for model in ("baseline", "baseline_random"):
        summary = json.loads((clean_run / f"results/dissect/{model}/summary.json").read_text())
        assert summary["images"] == 240 and set(summary["layers"]) == {"layer3", "layer4"}
        assert summary["settings"]["random_init"] is (model == "baseline_random")
        assert (clean_run / f"results/dissect/{model}/iou.parquet").is_file()
        assert not list((clean_run / f"results/dissect/{model}/parts").glob("quantiles-*"))  # temp parts removed
        assert not list((clean_run / f"results/dissect/{model}/parts").glob("cache-*"))  # activation caches too
    assert (clean_run / "results/report/index.html").is_file()
    for rule_log in ("data/broden_shards.log", "train/baseline.log", "dissect/baseline/gather.log", "report.log"):
        assert (clean_run / "results/logs" / rule_log).is_file()


def test_finished_dag_plans_nothing(clean_run):
    assert planned(clean_run) == {}


def edit_config(workdir, change):
    config = yaml.safe_load((workdir / "tiny.yaml").read_text())
    change(config)
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))


def rules_of(plan):
    return {rule for rule, _ in plan}


def test_a_models_dissection_setting_reruns_only_that_model(clean_run):
    try:
        edit_config(clean_run, lambda c: c["dissect"]["models"]["baseline"].update(iou_threshold=0.05))
        plan = planned(clean_run)
    finally:
        (clean_run / "tiny.yaml").write_text(tiny_config())
    assert rules_of(plan) == {"dissect_gather", "config_snapshot", "report", "all"}
    assert [w for r, w in plan if r == "dissect_gather"] == ["model=baseline"]
    # the chance level of whole-image labels is computed by the gather from the tallies' rows
    try:
        edit_config(clean_run, lambda c: c["dissect"]["models"]["baseline"].update(chance_permutations=200, chance_seed=1))
        plan = planned(clean_run)
    finally:
        (clean_run / "tiny.yaml").write_text(tiny_config())
    assert rules_of(plan) == {"dissect_gather", "config_snapshot", "report", "all"}
    assert [w for r, w in plan if r == "dissect_gather"] == ["model=baseline"]
    # the quantile level changes the thresholds: that model's per-shard jobs rerun, nothing else
    try:
        edit_config(clean_run, lambda c: c["dissect"]["models"]["baseline"].update(quantile=0.01))
        plan = planned(clean_run)
    finally:
        (clean_run / "tiny.yaml").write_text(tiny_config())
    assert rules_of(plan) == {"dissect_quantiles", "dissect_thresholds", "dissect_tally", "dissect_gather", "config_snapshot", "report", "all"}
    assert all("model=baseline," in w + "," for r, w in plan if r.startswith("dissect_"))
    assert sum(r == "dissect_quantiles" for r, _ in plan) == 3  # one job per shard


def test_without_activation_cache_the_tally_jobs_run_the_model(clean_run):
    try:
        edit_config(clean_run, lambda c: c["dissect"].update(activation_cache=False))
        proc = snakemake(clean_run, "-n", "-p", "--forcerun", "dissect_quantiles")
    finally:
        (clean_run / "tiny.yaml").write_text(tiny_config())
    assert proc.returncode == 0, proc.stderr[-3000:]
    tallies = [line for line in proc.stdout.splitlines() if "dissect-tally" in line]
    quantiles = [line for line in proc.stdout.splitlines() if "dissect-quantiles" in line]
    assert len(tallies) == 6 and len(quantiles) == 6
    assert all("--model" in line and "--cache" not in line for line in tallies)
    assert all("--values-only" in line for line in quantiles)  # the threshold merge still refines from them


def test_training_budget_reruns_training_and_downstream_only(clean_run):
    try:
        edit_config(clean_run, lambda c: c["train"]["baseline"].update(epochs=3))
        plan = planned(clean_run)
    finally:
        (clean_run / "tiny.yaml").write_text(tiny_config())
    assert "train_baseline" in rules_of(plan)
    assert not rules_of(plan) & {"broden_synthesize", "broden_shards"}
    dissected = {w.split(",")[0] for r, w in plan if r.startswith("dissect_")}
    assert dissected == {"model=baseline"}  # the random control does not depend on training


def test_a_scene_task_setting_reruns_the_task_chain_not_the_probe_shards(clean_run):
    """The training task is not the probe set: a scene-task rule reruns the task's data, training,
    the random control's BatchNorm estimate (random_bn: task: from the task images) and both
    dissections, never the probe shards."""
    plan = edited_plan(clean_run, lambda c: c["broden"]["scene_task"].update(third_object=0.5))
    assert {"scenes_synthesize", "scenes_shards", "train_baseline", "random_control"} <= rules_of(plan)
    assert not rules_of(plan) & {"broden_synthesize", "broden_shards"}
    assert {w.split(",")[0] for r, w in plan if r.startswith("dissect_")} == {"model=baseline", "model=baseline_random"}


def test_a_training_setting_other_than_the_batchnorm_estimate_does_not_rerun_the_random_control(clean_run):
    """The control takes the trained model's architecture, task, batch size, bn_images and
    preprocessing: the learning rate does not reach it, bn_images does."""
    plan = edited_plan(clean_run, lambda c: c["train"]["baseline"].update(lr=0.01))
    assert "train_baseline" in rules_of(plan) and "random_control" not in rules_of(plan)
    assert {w.split(",")[0] for r, w in plan if r.startswith("dissect_")} == {"model=baseline"}
    plan = edited_plan(clean_run, lambda c: c["train"]["baseline"].update(bn_images=64))
    assert ("random_control", "model=baseline_random") in plan


def test_a_setting_of_a_broden_source_not_in_use_reruns_nothing(clean_run):
    """The synthetic probe does not depend on the download block: editing it re-shards and
    re-dissects nothing (only the recorded config and the report that shows it are rewritten)."""
    plan = edited_plan(clean_run, lambda c: c["broden"].setdefault("download", {}).update(url="https://example.org/other.zip"))
    assert rules_of(plan) <= {"config_snapshot", "report", "all"}


def test_reverting_a_change_plans_nothing(clean_run):
    edit_config(clean_run, lambda c: c["train"]["baseline"].update(epochs=5))
    assert planned(clean_run)
    (clean_run / "tiny.yaml").write_text(tiny_config())
    assert planned(clean_run) == {}


def test_killed_runs_resume_to_byte_identical_results(clean_run, faulted_run):
    """Also the determinism check: two runs from an empty results/ give the same bytes."""
    clean, faulted = digests(clean_run, CHAIN), digests(faulted_run, CHAIN)
    assert set(clean) == set(faulted)
    differ = sorted(k for k in clean if clean[k] != faulted[k])
    assert differ == [], f"files differ between a clean and a killed-and-resumed run: {differ}"
    assert any(k.endswith(".tar") for k in clean) and any(k.endswith("iou.parquet") for k in clean)
    assert not [p for p in faulted_run.rglob("*") if ".tmp-" in p.name]  # no temporary left over


def test_snakemake_report_zip_is_built(clean_run):
    proc = snakemake(clean_run, "--report", "report.zip")
    assert proc.returncode == 0, proc.stderr[-3000:]
    import zipfile

    with zipfile.ZipFile(clean_run / "report.zip") as zf:
        names = zf.namelist()
    assert any(n.endswith("report.html") for n in names)
    assert any("index.html" in n for n in names) and any("summary.json" in n for n in names)


def test_a_dissection_jobs_code_inputs_include_what_its_command_runs(clean_run):
    """The dissect commands parse their floats with argtypes (imported by cli.py at module level),
    check them with config.validate_cli_values and pick the device with train.loop.pick_device
    (both imported lazily by cli.py): each is code of the job, so an edit reruns it (none was)."""
    proc = snakemake(clean_run, "--detailed-summary")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    header = rows[0]
    inputs = [set(r[header.index("input-file(s)")].split(",")) for r in rows[1:] if r[header.index("rule")] == "dissect_quantiles"]
    assert inputs
    for files in inputs:
        assert {"workflow/cnninterp/argtypes.py", "workflow/cnninterp/config.py", "workflow/cnninterp/train/loop.py"} <= files
    # `cnninterp train` and the attention steps check their options with config.validate_cli_values too
    checked = {"train_baseline"} | ({"attention_data", "attention_train", "attention_evaluate"} if method_enabled(yaml.safe_load(tiny_config()), "attention") else set())
    by_rule = {}
    for r in rows[1:]:
        by_rule.setdefault(r[header.index("rule")], []).append(set(r[header.index("input-file(s)")].split(",")))
    for rule in checked:
        assert by_rule.get(rule) and all("workflow/cnninterp/config.py" in files for files in by_rule[rule]), rule
