"""Atomic writes: a final path appears complete or not at all, and a killed writer's temporary
files do not outlive the rerun of its job."""

from pathlib import Path

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


def test_a_file_never_replaces_a_folder_given_by_mistake(tmp_path):
    from cnninterp.cli import main

    folder = tmp_path / "results"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "kept.txt").write_text("a user's file")
    with pytest.raises(IsADirectoryError, match="results"):
        with atomic_path(folder) as tmp:
            tmp.write_text("{}")
    assert (folder / "sub" / "kept.txt").read_text() == "a user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no temporary left
    config = Path(__file__).resolve().parents[1] / "config.yaml"
    assert main(["validate-config", str(config), "--out", str(folder)]) == 2  # the CLI: a one-line error, exit 2
    assert (folder / "sub" / "kept.txt").exists()


def test_a_folder_replaces_a_folder(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    (folder / "old").write_text("old")
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in folder.iterdir()) == ["new"]


def test_synth_broden_keeps_its_previous_output_when_the_new_one_fails(tmp_path):
    from cnninterp.cli import main

    out = tmp_path / "broden"
    assert main(["data", "synth-broden", "--out", str(out), "--n-images", "4", "--image-size", "32"]) == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert main(["data", "synth-broden", "--out", str(out), "--n-images", "0"]) == 2  # bad argument
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert main(["data", "synth-broden", "--out", str(out), "--n-images", "5", "--image-size", "32"]) == 0  # replaced
    assert len(list((out / "images" / "synthetic").glob("*.jpg"))) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broden"]
