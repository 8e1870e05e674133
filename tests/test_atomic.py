"""Atomic writes: a final path appears complete or not at all, and a killed writer's temporary
files do not outlive the rerun of its job."""

import pytest

from cnninterp.atomic import atomic_files, atomic_path, temp_sibling


def test_a_killed_writers_temporary_is_removed_when_the_path_is_written_again(tmp_path):
    target = tmp_path / "parts" / "cache-val-000000.acts"
    target.parent.mkdir()
    stale = target.with_name(f".{target.name}.tmp-10568")  # left by a writer killed with SIGKILL
    stale.write_bytes(b"half a cache")
    other = target.with_name(".cache-train-000000.acts.tmp-10568")  # another path's: not ours
    other.write_bytes(b"x")
    with atomic_path(target) as tmp:
        assert tmp == temp_sibling(target)
        tmp.write_bytes(b"complete")
    assert target.read_bytes() == b"complete"
    assert not stale.exists() and other.exists()


def test_a_failed_write_leaves_neither_the_path_nor_a_temporary(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_a_killed_set_writers_staging_folder_is_removed(tmp_path):
    stale = tmp_path / "..staging.tmp-999"
    stale.mkdir()
    (stale / "iou.parquet").write_bytes(b"half")
    with atomic_files(tmp_path, ["a.txt", "summary.json"]) as staging:
        (staging / "a.txt").write_text("a")
        (staging / "summary.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "summary.json"]
