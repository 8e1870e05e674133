"""What the DAG reruns is what changed: code inputs from the import graph, data sources, quoting.

Dry-run plans on the session's one finished DAG run (conftest ``dag_run``); files edited here are
restored. Together with tests/test_dag.py every row of README's rerun table has a test.
"""

import shutil
import subprocess

import pytest

from dag import edited_plan, make_workdir, plan_after_code_edit, planned, snakemake, tiny_config

pytestmark = pytest.mark.slow
DISSECT = {"dissect_quantiles", "dissect_thresholds", "dissect_tally", "dissect_gather"}


def rules_of(plan):
    return {rule for rule, _ in plan}


def test_editing_the_counting_kernel_reruns_the_dissections_not_data_or_training(dag_run):
    plan = plan_after_code_edit(dag_run, "workflow/cnninterp/dissect/tally_kernels.py")
    assert DISSECT <= rules_of(plan) and "report" in rules_of(plan)
    assert not rules_of(plan) & {"broden_synthesize", "broden_shards", "train_baseline"}


def test_editing_preprocessing_reruns_training_and_dissection(dag_run):
    plan = plan_after_code_edit(dag_run, "workflow/cnninterp/data/preprocess.py")
    assert {"train_baseline"} | DISSECT <= rules_of(plan)
    assert not rules_of(plan) & {"broden_synthesize", "broden_shards"}


def test_editing_a_methods_cli_reruns_that_methods_jobs_only(dag_run):
    # the method's cli.py parses every `cnninterp transform ...` verb: its jobs depend on it
    plan = rules_of(plan_after_code_edit(dag_run, "workflow/cnninterp/transform/cli.py"))
    assert {"transform_data", "transform_train", "transform_evaluate"} <= plan and "report" in plan, plan
    assert not plan & (DISSECT | {"train_baseline", "broden_shards"}), plan
    assert not [r for r in plan if r.split("_")[0] in ("icnn", "attention", "multiview")], plan


def test_editing_a_report_template_reruns_only_the_report(dag_run):
    plan = plan_after_code_edit(dag_run, "workflow/cnninterp/report/templates/dissection.html.j2")
    assert rules_of(plan) == {"report", "all"}


def test_a_broden_setting_reruns_everything_downstream_of_the_data(dag_run):
    plan = edited_plan(dag_run, lambda c: c["broden"]["synthetic"].update(seed=1))
    assert {"broden_synthesize", "config_snapshot", "report"} <= rules_of(plan)
    # the shards are a checkpoint: what follows them is planned once they are rebuilt
    assert "broden_shards" in rules_of(plan)


def test_a_shell_metacharacter_in_a_layer_name_is_refused_and_nothing_runs(dag_run, tmp_path):
    marker = tmp_path / "injected"
    proc = None
    original = (dag_run / "tiny.yaml").read_text()
    try:
        import yaml

        config = yaml.safe_load(original)
        config["dissect"]["defaults"]["layers"] = [f"layer4$(touch {marker})"]
        (dag_run / "tiny.yaml").write_text(yaml.safe_dump(config))
        proc = snakemake(dag_run, "--cores", "1", "--forceall")
    finally:
        (dag_run / "tiny.yaml").write_text(original)
    assert proc.returncode != 0
    assert "dissect.defaults.layers[0]" in proc.stderr and "does not match" in proc.stderr, proc.stderr[-2000:]
    assert not marker.exists()
    assert planned(dag_run) == {}


@pytest.fixture(scope="module")
def moved_copy(dag_run, tmp_path_factory):
    """The finished checkout copied to another folder (another absolute path), results and .snakemake included."""
    dest = tmp_path_factory.mktemp("moved") / "elsewhere with space"
    shutil.copytree(dag_run, dest, symlinks=True)
    return dest


def test_a_moved_checkout_plans_nothing(moved_copy):
    assert planned(moved_copy) == {}


def test_switching_to_a_local_folder_with_spaces_reshards_it(moved_copy):
    folder = moved_copy / "my data" / "broden 224"
    shutil.copytree(moved_copy / "results/data/broden/synthetic", folder)
    import yaml

    config = yaml.safe_load((moved_copy / "tiny.yaml").read_text())
    config["broden"]["source"] = "local"
    config["broden"]["local"] = {"path": str(folder)}
    (moved_copy / "tiny.yaml").write_text(yaml.safe_dump(config))
    plan = planned(moved_copy)
    assert "broden_shards" in rules_of(plan) and "broden_synthesize" not in rules_of(plan)
    proc = snakemake(moved_copy, "--cores", "1", "results/shards/broden/manifest.json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    manifest = json.loads((moved_copy / "results/shards/broden/manifest.json").read_text())
    assert manifest["source"]["kind"] == "local" and manifest["source"]["path"] == str(folder)
    # an edit inside the folder (index.csv rewritten without its last row) reshards it: the tables
    # are inputs, and the folder's own time does not change when a file in it does
    index = folder / "index.csv"
    folder_time = folder.stat().st_mtime_ns
    index.write_text("".join(index.read_text().splitlines(keepends=True)[:-1]))
    assert folder.stat().st_mtime_ns == folder_time
    assert "broden_shards" in rules_of(planned(moved_copy))
    # and a local path that does not exist is refused before any job is planned
    config["broden"]["local"] = {"path": str(moved_copy / "nowhere")}
    (moved_copy / "tiny.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(moved_copy, "-n")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "broden.local.path" in output and "is not an existing folder" in output, output[-2000:]


def test_shards_per_job_groups_consecutive_shards_into_one_job(dag_run):
    plan = edited_plan(dag_run, lambda c: c["dissect"].update(shards_per_job=2))
    # 3 shards in groups of 2: two quantile and two tally jobs per model (the TINY run has one per shard)
    quantiles = sorted(w for r, w in plan if r == "dissect_quantiles")
    assert quantiles == ["model=baseline, shard=train-000000", "model=baseline, shard=val-000000", "model=baseline_random, shard=train-000000", "model=baseline_random, shard=val-000000"]
    assert sum(r == "dissect_tally" for r, _ in plan) == 4


def test_a_quantile_change_within_the_cache_quantile_plans_no_quantile_job(dag_run, tmp_path):
    """dissect.keep_caches: the quantile jobs' parts and activation caches are kept, bounded for
    max(quantile, dissect.cache_quantile), so a model's quantile at or below the cache quantile
    reruns the threshold merge, tallies and gather from them, not the model; above it the quantile
    jobs rerun. (On a copy of the session run: the random control's quantile jobs run once with
    keep_caches on.)"""
    import yaml

    work = tmp_path / "copy"
    shutil.copytree(dag_run, work, symlinks=True)
    manifest = yaml.safe_load((work / "results/shards/broden/manifest.json").read_text())
    shards = sorted(x["name"][: -len(".tar")] for split in manifest["splits"].values() for x in split["shards"])
    config = yaml.safe_load((work / "tiny.yaml").read_text())
    # every shard in one job: one quantile job (one torch start) instead of one per shard
    config["dissect"].update(keep_caches=True, cache_quantile=0.01, shards_per_job=len(shards))
    model = config["dissect"]["models"]["baseline_random"]
    model["quantile"] = 0.01
    (work / "tiny.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "--cores", "1", f"results/dissect/baseline_random/parts/quantiles-{shards[0]}.npz")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list((work / "results/dissect/baseline_random/parts").glob("cache-*.acts"))) == 1

    def control_jobs(quantile):
        model["quantile"] = quantile
        (work / "tiny.yaml").write_text(yaml.safe_dump(config))
        return {r for r, w in planned(work) if "model=baseline_random" in w}

    assert control_jobs(0.004) == {"dissect_thresholds", "dissect_tally", "dissect_gather"}
    assert "dissect_quantiles" in control_jobs(0.02)  # above the cache quantile: the model runs again
