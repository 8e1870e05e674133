"""The real Snakefile, end to end, on a tiny config: data -> shards -> training -> dissection -> report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = """
broden:
  source: synthetic
  synthetic: {n_images: 48, image_size: 64, seed: 0, val_fraction: 0.25}
  shard_size: 20
train:
  baseline: {arch: resnet10, task: scene, epochs: 1, batch_size: 16}
dissect:
  defaults: {layers: [layer3, layer4], batch_size: 32}
  models:
    baseline: {source: "trained:baseline"}
    baseline_random: {source: "trained:baseline", random_init: true}
report: {gallery_units: 2, gallery_images: 2}
"""


def snakemake(workdir, *args, timeout=600):
    """Run the repository's Snakefile with results under ``workdir``; return the CompletedProcess."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = [str(Path(sys.executable).with_name("snakemake")), "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--configfile", str(workdir / "tiny.yaml"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=workdir)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dag")
    (workdir / "tiny.yaml").write_text(TINY)
    proc = snakemake(workdir, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir


def test_dry_run_shows_the_chain(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    proc = snakemake(tmp_path, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rule in ("rule broden_synthesize", "checkpoint broden_shards", "rule dissect_thresholds", "rule dissect_gather", "rule report"):
        assert f"{rule}:" in proc.stdout


@pytest.mark.slow
def test_dag_builds_shards_models_dissections_and_report(tiny_run):
    manifest = json.loads((tiny_run / "results/shards/broden/manifest.json").read_text())
    assert sum(s["samples"] for s in manifest["splits"].values()) == 48
    assert len(manifest["splits"]["train"]["shards"]) == 2  # 36 train samples / 20 per shard
    assert (tiny_run / "results/models/baseline/model.pt").is_file()
    for model in ("baseline", "baseline_random"):
        summary = json.loads((tiny_run / f"results/dissect/{model}/summary.json").read_text())
        assert summary["images"] == 48
        assert set(summary["layers"]) == {"layer3", "layer4"}
        assert (tiny_run / f"results/dissect/{model}/iou.parquet").is_file()
        assert not list((tiny_run / f"results/dissect/{model}/parts").glob("*.npz"))  # temp parts removed
    assert (tiny_run / "results/report/index.html").is_file()
    assert "CUDA_VISIBLE_DEVICES" in (tiny_run / "results/logs/train/baseline.log").read_text()


@pytest.mark.slow
def test_finished_dag_plans_nothing(tiny_run):
    proc = snakemake(tiny_run, "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr
