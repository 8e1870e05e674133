"""The workflow on a real SLURM cluster through profiles/slurm: every job a SLURM job.

Needs a cluster whose nodes can see this machine's files: `.ci/slurm-up.sh` starts a one-node
one here (with two fake GPUs). Without a usable cluster the test is skipped, unless the CI
environment variable is set: CI starts the cluster before the tests, so there it fails instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest
from services import require

from dag import make_workdir, methods_off

ROOT = Path(__file__).resolve().parents[1]
# the venv's bin: snakemake, and the `cnninterp` console script the jobs call
BIN = Path(sys.executable).parent
TARGET = "results/dissect/baseline/summary.json"
# threads: 1 lets two jobs share a 2-CPU node; 40 images in shards of 30 make two shards
# (train 30, val 10), so each per-shard dissection step is two SLURM jobs; the baseline trains on
# the probe shards (data: probe), so no scene-task jobs: this test is about the executor
TINY = """
threads: 1
broden:
  source: synthetic
  synthetic: {n_images: 40, image_size: 64, seed: 0, val_fraction: 0.25}
  shard_size: 30
train:
  baseline: {arch: resnet10, task: scene, data: probe, epochs: 1, batch_size: 16}
dissect:
  shards_per_job: 1
  defaults: {layers: [layer4], batch_size: 32}
  models:
    baseline: {source: "trained:baseline"}
"""
TIMEOUT_S = 420


SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.")
USABLE_STATES = {"idle", "mixed"}


@cache
def cluster_problem() -> str | None:
    """Why no SLURM job could run here now (None when a node is idle or partly used)."""
    if shutil.which(os.environ.get("CNNINTERP_SINFO", "sinfo")) is None:
        return "no SLURM here: `sinfo` not found (start a test cluster with .ci/slurm-up.sh)"
    try:
        proc = subprocess.run(
            [os.environ.get("CNNINTERP_SINFO", "sinfo"), "--noheader", "--Node", "--format=%N %T"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        return "`sinfo` did not answer in 30 s: is slurmctld running? (.ci/slurm-up.sh)"
    if proc.returncode != 0:
        return f"`sinfo` failed: {proc.stderr.strip()} (start the cluster with .ci/slurm-up.sh)"
    states = dict(line.split(maxsplit=1) for line in proc.stdout.splitlines() if line.strip())
    if not any(state in USABLE_STATES for state in states.values()):
        return f"no idle SLURM node (sinfo: {states or 'no nodes'}); run .ci/slurm-up.sh"
    return None


@pytest.fixture(scope="module")
def cluster():
    require(cluster_problem())


def run_snakemake(workdir: Path, *args: str) -> tuple[int, str]:
    """Run snakemake in ``workdir``; return its exit status and its output (stdout + stderr).

    On timeout Snakemake gets SIGINT first, so that it cancels its SLURM jobs (scancel).
    """
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    log_path = workdir / "snakemake.out"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(BIN / "snakemake"), *args],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            code = proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            code = None
    output = log_path.read_text()
    if code is None:
        pytest.fail(f"snakemake ran past {TIMEOUT_S} s; its output ends:\n{output[-6000:]}")
    return code, output


def slurm_logs_tail(workdir: Path, lines: int = 30) -> str:
    """The ends of the SLURM job logs (kept for failed jobs), for failure messages."""
    parts = []
    for path in sorted((workdir / ".snakemake/slurm_logs").rglob("*.log")):
        text = path.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"--- {path.relative_to(workdir)}\n" + "\n".join(text))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    """One run of the workflow through profiles/slurm; returns (workdir, output, jobs by rule)."""
    workdir = make_workdir(tmp_path_factory.mktemp("slurm"), TINY + methods_off())
    code, output = run_snakemake(
        workdir,
        "--profile",
        "profiles/slurm",
        "--configfile",
        "tiny.yaml",
        "--slurm-keep-successful-logs",
        # poll every second (the profile's 4 s): nine short jobs in a chain of seven waited for
        # the polls; squeue's MinJobAge (300 s) stays far above 3 x the first interval
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--seconds-between-status-checks",
        "1",
        TARGET,
    )
    assert code == 0, (
        f"snakemake --profile profiles/slurm failed ({code}); output ends:\n{output[-6000:]}\n"
        f"SLURM job logs:\n{slurm_logs_tail(workdir)}"
    )
    jobs = defaultdict(list)  # rule -> [(SLURM job id, SLURM log path)]
    logdir = workdir.resolve() / ".snakemake/slurm_logs"
    for _, slurm_id, log in SUBMITTED.findall(output):
        log = Path(log)
        # the plugin writes .snakemake/slurm_logs/rule_<rule>/<wildcards>/<SLURM job id>.log
        assert log.is_relative_to(logdir), f"SLURM log {log} is not under {logdir}"
        rule = log.relative_to(logdir).parts[0].removeprefix("rule_")
        jobs[rule].append((slurm_id, log))
    return workdir, output, dict(jobs)


@pytest.mark.slow
def test_every_job_is_a_slurm_job(slurm_run):
    workdir, output, jobs = slurm_run
    assert (workdir / TARGET).is_file()
    summary = json.loads((workdir / TARGET).read_text())
    assert summary, "summary.json is empty"
    expected = {
        "broden_synthesize",
        "broden_shards",
        "train_baseline",
        "dissect_quantiles",
        "dissect_thresholds",
        "dissect_tally",
        "dissect_gather",
    }
    assert set(jobs) == expected, f"SLURM jobs by rule: {jobs}\noutput ends:\n{output[-3000:]}"
    finished = len(re.findall(r"^Finished jobid: \d+", output, re.MULTILINE))
    submitted = [slurm_id for runs in jobs.values() for slurm_id, _ in runs]
    assert len(submitted) == finished, "some jobs ran without going through sbatch"
    assert len(set(submitted)) == len(submitted), f"a SLURM job id repeats: {submitted}"
    for rule, runs in jobs.items():
        for slurm_id, log in runs:
            assert log.is_file(), f"no SLURM log {log} for {rule} (job {slurm_id})"
            assert log.stem == slurm_id, f"SLURM log {log} is not named by its job id"


@pytest.mark.slow
def test_each_shard_is_its_own_slurm_job(slurm_run):
    workdir, _, jobs = slurm_run
    manifest = json.loads((workdir / "results/shards/broden/manifest.json").read_text())
    n_shards = sum(len(split["shards"]) for split in manifest["splits"].values())
    assert n_shards == 2  # train 30 + val 10 samples, 30 per shard
    for rule in ("dissect_quantiles", "dissect_tally"):
        ids = {slurm_id for slurm_id, _ in jobs[rule]}
        assert len(ids) == n_shards, f"{rule}: {len(ids)} SLURM jobs for {n_shards} shards"


@pytest.mark.slow
def test_training_job_is_granted_a_gpu(slurm_run):
    workdir, _, _ = slurm_run
    text = (workdir / "results/logs/train/baseline.log").read_text()
    found = re.findall(r"CUDA_VISIBLE_DEVICES=(\S+)", text)
    assert found, f"the training log does not record CUDA_VISIBLE_DEVICES:\n{text[-2000:]}"
    assert found[-1] != "<unset>", "SLURM granted the training job no GPU (gres/gpu)"
