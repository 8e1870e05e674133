"""Shared fixtures: a small synthetic Broden folder and its shards, built once per session."""

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def broden_dir(tmp_path_factory):
    """A synthetic Broden folder (40 images, 64 px) in the real on-disk layout. Treat as read-only."""
    from cnninterp.data.synthetic_broden import generate_broden

    out = tmp_path_factory.mktemp("broden") / "broden"
    generate_broden(out, n_images=40, image_size=64, seed=3, val_fraction=0.25)
    return out


@pytest.fixture(scope="session")
def broden_shards(broden_dir, tmp_path_factory):
    """Shards (shard_size 12) converted from ``broden_dir``. Treat as read-only."""
    from cnninterp.data.broden_shards import convert_broden

    out = tmp_path_factory.mktemp("shards") / "broden"
    convert_broden(broden_dir, out, 12, {"kind": "synthetic"}, {"shard_size": 12})
    return out


@pytest.fixture
def broden_copy(broden_dir, tmp_path):
    """A private, writable copy of the synthetic Broden folder (for corrupting it)."""
    dest = tmp_path / "broden"
    shutil.copytree(broden_dir, dest)
    return dest


@pytest.fixture(scope="session")
def dag_run(tmp_path_factory):
    """The session's one complete run of the real Snakefile on ``dag.tiny_config()`` (every
    installed method included), from an empty results/. Tests read it and dry-run plans on it;
    a test that edits its files restores them."""
    from dag import make_workdir, snakemake, tiny_config

    workdir = make_workdir(tmp_path_factory.mktemp("dag run"), tiny_config())  # a checkout path with a space
    proc = snakemake(workdir, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir
