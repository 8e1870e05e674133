"""Run the repository's real Snakefile on a copy of the workflow, and read its plans and outputs."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COPY = ["Snakefile", "config.yaml", "requirements.txt", "rules", "workflow", "profiles", "envs"]
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


def env() -> dict:
    """The caller's environment without the venv's bin on PATH, as in a shell where the venv is
    not activated: the Snakefile itself must make the jobs find the `cnninterp` command."""
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != BIN.resolve()]
    return dict(os.environ, PATH=os.pathsep.join(path or ["/usr/bin", "/bin"]))


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
    """sha256 of every result file matching ``patterns`` (relative path -> hex digest)."""
    out = {}
    for pattern in patterns:
        for path in sorted(workdir.glob(pattern)):
            if path.is_file():
                out[str(path.relative_to(workdir))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out
