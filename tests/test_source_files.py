"""The files of a user's data folder that key its shard job (``broden.table_files``,
``driving.source_files``): listed from
folders written in the real layouts, and seen by Snakemake as the shard jobs' inputs (an edit
inside a folder does not change the folder's own time, so a folder input alone left stale shards)."""

import shutil

import pytest
import yaml
from test_attention_data import write_comma, write_udacity

from cnninterp.data.broden import table_files as broden_tables
from cnninterp.data.driving import comma_files, source_files, udacity_tables
from cnninterp.errors import DataError


def test_broden_tables_are_listed_from_the_folder_or_its_single_subfolder(broden_dir, tmp_path):
    direct = broden_tables(broden_dir)
    names = [p.name for p in direct]
    assert names[:3] == ["index.csv", "label.csv", "category.csv"]
    assert sorted(names[3:]) == names[3:] and {"c_color.csv", "c_object.csv", "c_scene.csv"} <= set(names[3:])
    assert all(p.parent == broden_dir for p in direct)
    outer = tmp_path / "unpacked"
    shutil.copytree(broden_dir, outer / "broden1_224")  # the official zip unpacks into a subfolder
    assert [p.relative_to(outer / "broden1_224") for p in broden_tables(outer)] == [p.relative_to(broden_dir) for p in direct]
    with pytest.raises(DataError, match="index.csv"):
        broden_tables(tmp_path)


def test_udacity_tables_of_one_drive_and_of_a_folder_of_drives(tmp_path):
    one = write_udacity(tmp_path / "one", n=3)
    assert udacity_tables(one) == [one / "interpolated.csv"]
    write_udacity(tmp_path / "drives" / "b", n=3)
    write_udacity(tmp_path / "drives" / "a", n=3)
    assert udacity_tables(tmp_path / "drives") == [tmp_path / "drives" / d / "interpolated.csv" for d in ("a", "b")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty/interpolated.csv is missing"):
        udacity_tables(tmp_path / "empty")


def test_comma_files_pair_each_camera_file_with_its_log(tmp_path):
    root = write_comma(tmp_path / "comma", name="b", frames=2)
    write_comma(root, name="a", frames=2)
    assert [p.relative_to(root).as_posix() for p in comma_files(root)] == ["camera/a.h5", "log/a.h5", "camera/b.h5", "log/b.h5"]
    assert source_files("comma", root) == comma_files(root)
    (root / "log" / "b.h5").unlink()
    with pytest.raises(DataError, match="b.h5 has no log file"):
        comma_files(root)
    with pytest.raises(DataError, match="camera holds no .h5"):
        comma_files(tmp_path)
    assert source_files("synthetic", "") == []


@pytest.mark.slow
def test_the_driving_shard_jobs_read_the_udacity_tables_as_inputs(tmp_path):
    """A dry run of the attention data job on a folder of two Udacity drives (a path with a space)
    lists both interpolated.csv files among its inputs; without a folder the key is named."""
    from dag import make_workdir, snakemake, tiny_config

    workdir = make_workdir(tmp_path / "work", tiny_config())
    drives = tmp_path / "my drives"
    for name in ("d1", "d2"):
        write_udacity(drives / name, n=3)
    config = yaml.safe_load((workdir / "tiny.yaml").read_text())
    config["attention"]["data"].update(source="udacity", path=str(drives))
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(workdir, "-n", "results/shards/driving/train/manifest.json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    inputs = [line for line in proc.stdout.splitlines() if line.startswith("    input: ")]
    assert len(inputs) == 1
    assert f"{drives}/d1/interpolated.csv, {drives}/d2/interpolated.csv, " in inputs[0]
    # a real source without its folder is named by key before any job (it looked in the working directory)
    config["attention"]["data"]["path"] = ""
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(workdir, "-n", "results/shards/driving/train/manifest.json")
    assert proc.returncode != 0 and "attention.data.path is not set" in proc.stdout + proc.stderr
