"""Provenance section: the config and its hash, package versions, the code's git commit.

Holds nothing that changes between two runs of the same config and code (no clock times, no
absolute paths), so that the report is byte-reproducible.
"""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from .context import Context

TEMPLATE = "provenance.html.j2"
TITLE = "Provenance"
PACKAGES = ("cnninterp", "torch", "torchvision", "numpy", "pandas", "pyarrow", "matplotlib", "pillow", "jinja2", "snakemake")
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def available(results: Path) -> bool:
    """Always shown."""
    return True


def render(ctx: Context) -> dict:
    """Return the template data: config (pretty JSON) and sha256, versions, git commit."""
    return {
        "config_json": json.dumps(json.loads(ctx.config_bytes), indent=2, sort_keys=True),
        "config_sha256": ctx.config_sha256,
        "versions": package_versions(),
        "git": git_state(PACKAGE_DIR),
    }


def package_versions(names=PACKAGES) -> list[dict]:
    """[{name, version}] of Python and ``names`` as installed ("not installed" when absent)."""
    out = [{"name": "python", "version": platform.python_version()}]
    for name in names:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = _module_version(name) or "not installed"
        out.append({"name": name, "version": version})
    return out


def _module_version(name: str) -> str | None:
    """``__version__`` of an importable but not pip-installed package (cnninterp run from a checkout)."""
    if name == "cnninterp":
        from .. import __version__

        return __version__
    return None


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(folder: Path) -> dict:
    """The git commit of the repository holding ``folder`` ("unknown" outside git) and whether
    the code under ``folder`` differs from it (uncommitted or untracked files)."""
    commit = _git(["rev-parse", "HEAD"], folder)
    if not commit:
        return {"commit": "unknown", "dirty": None}
    status = _git(["status", "--porcelain", "--", "."], folder)
    return {"commit": commit, "dirty": bool(status) if status is not None else None}
