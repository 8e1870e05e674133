"""Run the repository's real Snakefile on a copy of the workflow, and read its plans and outputs."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COPY = ["Snakefile", "config.yaml", "requirements.txt", "rules", "workflow", "profiles", "envs"]
TINY = """
threads: 1
broden:
  source: synthetic
  synthetic: {n_images: 240, image_size: 64, seed: 0, val_fraction: 0.25}
  shard_size: 100
  scene_task: {n_images: 120, seed: 0, val_fraction: 0.25, shard_size: 100}
train:
  baseline: {arch: resnet10, task: scene, epochs: 2, batch_size: 16}
dissect:
  shards_per_job: 1
  defaults: {layers: [layer3, layer4], batch_size: 50}
  models:
    baseline: {source: "trained:baseline"}
    baseline_random: {source: "trained:baseline", random_init: true, random_bn: task}
report: {gallery_units: 2, gallery_images: 2}
"""
FRAGMENTS = ROOT / "tests" / "fixtures"


def methods_off() -> str:
    """Config lines switching every installed method off (for tests about the Broden chain or the
    executor; the session's DAG run covers the methods' jobs)."""
    from cnninterp.methods import installed_methods

    return "".join(f"{m}: {{enabled: false}}\n" for m in installed_methods())


def tiny_config() -> str:
    """TINY plus each installed method's tiny block (``tests/fixtures/<method>_tiny.yaml``, a
    mapping with the method's key at the top), the config of the session's one DAG run."""
    from cnninterp.methods import installed_methods

    text = TINY
    for method in installed_methods():
        fragment = FRAGMENTS / f"{method}_tiny.yaml"
        if fragment.is_file():
            text += "\n" + fragment.read_text()
    return text


def edited_plan(workdir: Path, change) -> Counter:
    """The plan after ``change(config)`` edits the workdir's tiny.yaml (restored afterwards)."""
    import yaml

    original = (workdir / "tiny.yaml").read_text()
    config = yaml.safe_load(original)
    change(config)
    try:
        (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
        return planned(workdir)
    finally:
        (workdir / "tiny.yaml").write_text(original)


def plan_after_code_edit(workdir: Path, relative: str) -> Counter:
    """The plan after a comment is appended to the workdir's file ``relative`` (restored afterwards):
    what an edit of that code reruns."""
    path = workdir / relative
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\n# an edit\n")
        return planned(workdir)
    finally:
        path.write_bytes(original)


WALL_TIME = re.compile(rb'<span class="wall-time">[^<]*</span>')
JOB = re.compile(r"^(?:rule|checkpoint) (\w+):\n((?:    .*\n)*)", re.M)
WILDCARDS = re.compile(r"^    wildcards: (.*)$", re.M)


def make_workdir(dest: Path, config_text: str) -> Path:
    """Copy the workflow (Snakefile, rules, package, ...) into ``dest`` and write ``tiny.yaml``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "results", ".snakemake", ".venv"))
        else:
            shutil.copy2(src, dest / name)
    (dest / "tiny.yaml").write_text(config_text)
    return dest


def command(workdir: Path, *args: str) -> list[str]:
    """The snakemake command line for ``workdir`` with its tiny.yaml."""
    return [str(BIN / "snakemake"), "--configfile", str(workdir / "tiny.yaml"), *args]


@cache
def unreachable_slurm_stub() -> list[str]:
    """A folder to put first on PATH whose ``scontrol`` fails at once, where ``scontrol`` is
    installed but no SLURM controller answers (else nothing).

    Snakemake loads its SLURM executor plugin at every start, and the plugin asks
    ``scontrol show config`` with a 10-s timeout: on such a host every snakemake call of these
    tests, none of which uses SLURM, waited 9-10 s for it (tests/test_slurm.py, which does, builds
    its own environment). Where the cluster is up (CI) scontrol answers and nothing changes.
    """
    scontrol = shutil.which("scontrol")
    if scontrol is None:
        return []
    try:
        if subprocess.run([scontrol, "ping"], capture_output=True, timeout=3).returncode == 0:
            return []
    except subprocess.TimeoutExpired:
        pass
    folder = Path(tempfile.mkdtemp(prefix="cnninterp-no-slurm-"))
    stub = folder / "scontrol"
    stub.write_text("#!/bin/sh\necho 'no SLURM controller answers on this host (tests/dag.py)' >&2\nexit 1\n")
    stub.chmod(0o755)
    return [str(folder)]


def env() -> dict:
    """The caller's environment without the venv's bin on PATH, as in a shell where the venv is
    not activated: the Snakefile itself must make the jobs find the `cnninterp` command. Where no
    SLURM controller answers, a failing ``scontrol`` comes first (``unreachable_slurm_stub``)."""
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != BIN.resolve()]
    return dict(os.environ, PATH=os.pathsep.join(unreachable_slurm_stub() + (path or ["/usr/bin", "/bin"])))


def snakemake(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir``; return the finished process (output captured as text)."""
    return subprocess.run(command(workdir, *args), capture_output=True, text=True, env=env(), timeout=timeout, cwd=workdir)


def planned(workdir: Path, *args: str) -> Counter:
    """Jobs ``snakemake -n`` plans, as a Counter of (rule, wildcards text)."""
    proc = snakemake(workdir, "-n", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = Counter()
    for match in JOB.finditer(proc.stdout):
        wildcards = WILDCARDS.search(match.group(2))
        jobs[(match.group(1), wildcards.group(1) if wildcards else "")] += 1
    return jobs


def digests(workdir: Path, patterns=("results/shards/**/*", "results/models/**/*", "results/dissect/**/*", "results/report/**/*")) -> dict:
    """sha256 of every result file matching ``patterns`` (relative path -> hex digest); in HTML
    files the contents of ``<span class="wall-time">`` (timings measured by the run) are left out."""
    out = {}
    for pattern in patterns:
        for path in sorted(workdir.glob(pattern)):
            if path.is_file():
                data = path.read_bytes()
                if path.suffix == ".html":  # wall-clock measurements are marked, and differ by nature
                    data = WALL_TIME.sub(b'<span class="wall-time"></span>', data)
                out[str(path.relative_to(workdir))] = hashlib.sha256(data).hexdigest()
    return out
