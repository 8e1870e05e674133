"""The real-driving readers (Udacity, comma.ai) on bad files written in their layouts: each is a
DataError naming the file (and row), never a wrong number or a raw traceback; left-out frames are
counted."""

import csv

import numpy as np
import pytest
from test_attention_data import write_comma, write_udacity

from cnninterp.data import driving
from cnninterp.errors import DataError


def _edit_csv(folder, change):
    path = folder / "interpolated.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(change(lines)) + "\n")


def test_a_short_udacity_row_names_its_line(tmp_path):
    folder = write_udacity(tmp_path / "ud", n=4)
    _edit_csv(folder, lambda lines: lines[:3] + [",".join(lines[3].split(",")[:5])] + lines[4:])
    with pytest.raises(DataError, match=r"interpolated.csv line 4: fewer fields than the header's 12"):
        driving.read_udacity(folder, 20, 40)


def test_an_infinite_udacity_timestamp_names_its_line(tmp_path):
    folder = write_udacity(tmp_path / "ud", n=4)
    rows = list(csv.reader((folder / "interpolated.csv").open()))
    rows[1][1] = "inf"
    with (folder / "interpolated.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(DataError, match=r"interpolated.csv line 2: timestamp 'inf' is not a finite number"):
        driving.read_udacity(folder, 20, 40)


def test_a_corrupt_udacity_frame_names_the_frame(tmp_path):
    folder = write_udacity(tmp_path / "ud", n=4)
    frame = sorted((folder / "center").glob("*.jpg"))[1]
    frame.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=rf"{frame.name} is not a readable image"):
        driving.read_udacity(folder, 20, 40)


def test_a_fractional_cam1_ptr_names_the_log_row(tmp_path):
    import h5py

    root = write_comma(tmp_path / "comma", frames=4)
    with h5py.File(root / "log" / "2016-01-30--11-24-51.h5", "a") as f:
        ptr = f["cam1_ptr"][()]
        ptr[6] = 1.5  # truncation would move this row's angle to frame 1
        f["cam1_ptr"][...] = ptr
    with pytest.raises(DataError, match=r"log/2016-01-30--11-24-51.h5: cam1_ptr is 1.5 at log row 6"):
        driving.read_comma(root, 20, 40)


@pytest.mark.parametrize("damage, message", [
    ("float X", r"camera/2016-01-30--11-24-51.h5: X is float32 \(4, 3, 160, 320\), expected uint8"),
    ("X group", r"camera/2016-01-30--11-24-51.h5: no dataset 'X'"),
    ("corrupt log", r"log/2016-01-30--11-24-51.h5 is not a readable HDF5 file"),
])
def test_bad_comma_files_name_the_file(tmp_path, damage, message):
    import h5py

    root = write_comma(tmp_path / "comma", frames=4)
    name = "2016-01-30--11-24-51.h5"
    if damage == "corrupt log":
        (root / "log" / name).write_bytes(b"not hdf5")
    else:
        with h5py.File(root / "camera" / name, "a") as f:
            x = f["X"][()]
            del f["X"]
            if damage == "float X":
                f.create_dataset("X", data=x.astype(np.float32))
            else:
                f.create_group("X")
    with pytest.raises(DataError, match=message):
        driving.read_comma(root, 20, 40)


def test_left_out_frames_are_counted_and_an_empty_test_split_is_refused(tmp_path, capsys):
    recordings = [driving.Recording("short", np.zeros((3, 3, 8, 8), np.uint8), np.zeros(3, np.float32)),
                  driving.Recording("long", np.zeros((15, 3, 8, 8), np.uint8), np.zeros(15, np.float32))]
    manifest = driving.convert_recordings(recordings, tmp_path / "a", seq_len=4, test_every=2, source={"path": "x"})
    assert manifest["dropped"] == {"frames": 3 + 3, "recordings": ["short"]}  # all of short, long's tail
    assert {k: v["samples"] for k, v in manifest["splits"].items()} == {"train": 1, "test": 1}  # and one gap sequence
    assert "6 frame(s) left out" in capsys.readouterr().out
    with pytest.raises(DataError, match=r"x: 1 sequence\(s\) of 8 frames in 2 recording\(s\) of 2 drive\(s\): too few to hold out test sequences"):
        driving.convert_recordings(recordings, tmp_path / "b", seq_len=8, test_every=2, source={"path": "x"})
    assert not (tmp_path / "b").exists()


def test_comma_frames_without_a_log_row_are_counted_per_drive_and_reported(tmp_path, capsys):
    """Drive a: 20 camera frames, the log covers 0..11 (8 unlogged at the end); drive b: 12 frames,
    no log row for frames 4 and 5 (2 unlogged, two pieces). They were left out uncounted."""
    import h5py

    root = write_comma(tmp_path / "comma", name="a", frames=20, log_rows=60)
    write_comma(root, name="b", frames=12)
    with h5py.File(root / "log" / "b.h5", "a") as f:
        ptr = f["cam1_ptr"][()]
        ptr[(ptr == 4) | (ptr == 5)] = 6
        f["cam1_ptr"][...] = ptr
    recordings = driving.read_comma(root, 20, 40)
    assert [(r.drive, len(r.angle)) for r in recordings] == [("a", 12), ("b", 4), ("b", 6)]
    manifest = driving.convert_recordings(recordings, tmp_path / "s", seq_len=4, test_every=2, source={"path": str(root)})
    assert manifest["dropped"] == {"frames": 0 + 0 + 2, "recordings": [], "unlogged_frames": 8 + 2,
                                   "unlogged_by_drive": {"a": 8, "b": 2}}
    assert "10 camera frame(s) without a log row left out (a: 8, b: 2)" in capsys.readouterr().out
