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
