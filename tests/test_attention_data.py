"""The driving dataset: the synthetic road's target depends on the lanes only, its causal mask
covers the lanes in the look-ahead band; the Udacity and comma.ai readers on files in their real
layouts, and their errors on bad input."""

import csv
import json
from dataclasses import replace

import numpy as np
import pytest

from cnninterp.data import driving
from cnninterp.data.driving import Camera, Distractor, Road, RoadSpec
from cnninterp.errors import DataError

CAM = Camera(height=40, width=80, lookahead=10.0, band=1.3)
ROAD = Road(offset=0.3, heading=0.01, c0=0.004, c1=0.0, travel=1.0)
TREE = Distractor("tree", 0.8, 0.6, 0.1)


def test_target_ignores_distractors_and_follows_the_road():
    angle = driving.pursuit_angle(ROAD, CAM.lookahead)
    img, cause, _ = driving.render_frame(ROAD, [TREE], CAM)
    img2, cause2, _ = driving.render_frame(ROAD, [replace(TREE, x=0.2, y=0.8)], CAM)
    img3, cause3, d3 = driving.render_frame(ROAD, [], CAM)
    assert not np.array_equal(img, img2) and not np.array_equal(img, img3)  # the distractor shows
    assert np.array_equal(cause, cause2) and np.array_equal(cause, cause3)  # ... but not in the cause
    assert d3.sum() == 0
    # the target is a function of the road alone; bending the road changes it, and its sign follows
    bent = replace(ROAD, c0=ROAD.c0 + 0.01)
    assert driving.pursuit_angle(bent, CAM.lookahead) > angle + 1e-3
    assert driving.pursuit_angle(replace(ROAD, offset=-1.0), CAM.lookahead) < 0
    # by hand: atan(2 * wheelbase * X(L) / L^2)
    x = 0.3 + 0.01 * 10 + 0.004 * 100 / 2
    assert angle == pytest.approx(np.arctan(2 * driving.WHEELBASE * x / 100))


def test_cause_mask_is_the_lane_markings_inside_the_lookahead_band():
    img, cause, _ = driving.render_frame(ROAD, [], CAM)
    z = driving.row_depths(CAM)
    band_rows = np.flatnonzero((z >= CAM.lookahead / CAM.band) & (z <= CAM.lookahead * CAM.band))
    assert len(band_rows) >= 3
    rows = np.flatnonzero(cause.any(axis=1))
    assert set(rows) <= set(band_rows) and len(rows) == len(band_rows)
    # every marking-coloured pixel in the band is in the mask, and nothing else is
    pix = img.transpose(1, 2, 0)
    marking = np.all(pix == driving.EDGE, -1) | np.all(pix == driving.CENTRE, -1)
    in_band = np.zeros_like(marking)
    in_band[band_rows] = True
    assert np.array_equal(cause.astype(bool), marking & in_band)
    # both edges are there: mask pixels on both sides of the centre in every band row
    for r in band_rows:
        cols = np.flatnonzero(cause[r])
        assert cols.min() < CAM.width / 2 < cols.max()


def test_distractors_never_hide_the_markings():
    big = Distractor("car", 0.5, float((band_row(CAM) + 0.5) / CAM.height), 0.4)
    _, cause, dist = driving.render_frame(ROAD, [big], CAM)
    _, cause0, _ = driving.render_frame(ROAD, [], CAM)
    assert np.array_equal(cause, cause0)
    assert dist.sum() > 0 and not (dist.astype(bool) & cause.astype(bool)).any()


def band_row(cam):
    z = driving.row_depths(cam)
    return int(np.flatnonzero((z >= cam.lookahead / cam.band) & (z <= cam.lookahead * cam.band))[0])


def test_synthetic_shards_are_deterministic_and_load(tmp_path):
    spec = RoadSpec(camera=CAM, seq_len=4)
    m1 = driving.generate_driving(tmp_path / "a", spec, 3, 2, seed=5, shard_size=2)
    m2 = driving.generate_driving(tmp_path / "b", spec, 3, 2, seed=5, shard_size=2)
    assert m1["splits"] == m2["splits"] and m1["splits"]["train"]["samples"] == 3
    data = driving.load_split(tmp_path / "a", "train")
    assert data["frames"].shape == (3, 4, 3, 40, 80) and data["frames"].dtype == np.uint8
    assert data["angle"].shape == (3, 4) and data["angle"].dtype == np.float32
    assert data["cause"].shape == data["distractor"].shape == (3, 4, 40, 80)
    assert np.abs(np.diff(data["angle"], axis=1)).max() < 0.05  # smooth over time


# --- Udacity -----------------------------------------------------------------------------------
def write_udacity(folder, n=10, gap_at=None, nan_at=None, drop_column=None, missing_frame=None, angle0=0.0):
    """A Udacity folder in the real layout: n frames 50 ms apart (2 s more from frame ``gap_at`` on), grey
    level 10 i and angle ``angle0`` + 0.01 i radians for frame i, each also as an ignored left_camera row."""
    from PIL import Image

    (folder / "center").mkdir(parents=True)
    (folder / "left").mkdir()
    columns = [c for c in driving.UDACITY_COLUMNS if c != drop_column]
    rows = []
    for i in range(n):
        stamp = 1_479_425_441_182_877_000 + i * 50_000_000 + (2_000_000_000 if gap_at is not None and i >= gap_at else 0)
        for cam, sub in (("center_camera", "center"), ("left_camera", "left")):
            name = f"{sub}/{stamp}.jpg"
            if not (missing_frame == i and cam == "center_camera"):
                Image.fromarray(np.full((48, 64, 3), 10 * i, np.uint8)).save(folder / name)
            angle = "nan" if nan_at == i and cam == "center_camera" else f"{angle0 + 0.01 * i:.4f}"
            rows.append({"index": len(rows), "timestamp": stamp, "width": 64, "height": 48, "frame_id": cam,
                         "filename": name, "angle": angle, "torque": 0.1, "speed": 10.0, "lat": 37.0, "long": -122.0, "alt": 1.0})
    with open(folder / "interpolated.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_udacity_reader_takes_the_centre_camera_and_cuts_at_gaps(tmp_path):
    folder = write_udacity(tmp_path / "ud", n=10, gap_at=6)
    recs = driving.read_udacity(folder, 20, 40)
    assert [len(r.angle) for r in recs] == [6, 4]
    assert recs[0].frames.shape == (6, 3, 20, 40)
    assert recs[0].angle[3] == pytest.approx(0.03)
    assert recs[1].frames[0].mean() == pytest.approx(60, abs=2)  # frame 6 (grey level 60)
    assert [r.drive for r in recs] == ["ud", "ud"]  # two pieces of one drive
    manifest = driving.convert_recordings(recs, tmp_path / "shards", seq_len=3, test_every=2, source={"kind": "udacity"})
    # 6 frames -> 2 sequences, 4 frames -> 1 sequence; no sequence crosses the gap. One drive (fewer than
    # test_every): a block at its end after a gap sequence, not the second piece held out whole beside the first
    assert {k: v["samples"] for k, v in manifest["splits"].items()} == {"train": 1, "test": 1}
    assert manifest["split"]["gap_sequences"] == 1 and manifest["split"]["test_drives"] == ["ud"]
    data = driving.load_split(tmp_path / "shards", "train")
    assert data["frames"].shape[1:] == (3, 3, 20, 40) and "cause" not in data
    assert np.allclose(data["angle"][0], [0.0, 0.01, 0.02])  # frames 0-2; frames 3-5 are the gap
    assert np.allclose(driving.load_split(tmp_path / "shards", "test")["angle"][0], [0.06, 0.07, 0.08])


@pytest.mark.parametrize("fault, message", [
    ({"drop_column": "angle"}, "missing column"),
    ({"missing_frame": 4}, "is listed but"),
    ({"nan_at": 2}, "angle is nan"),
])
def test_udacity_reader_errors_name_the_file(tmp_path, fault, message):
    folder = write_udacity(tmp_path / "ud", n=6, **fault)
    with pytest.raises(DataError, match=message) as err:
        driving.read_udacity(folder, 20, 40)
    assert "interpolated.csv" in str(err.value)


# --- comma.ai ----------------------------------------------------------------------------------
def write_comma(root, name="2016-01-30--11-24-51", frames=12, ptr_shift=0, log_rows=None, nan_at=None, short_speed=False):
    import h5py

    (root / "camera").mkdir(parents=True, exist_ok=True)
    (root / "log").mkdir(exist_ok=True)
    x = np.zeros((frames, 3, 160, 320), np.uint8)
    x[:] = (np.arange(frames) * 10)[:, None, None, None]
    rows = log_rows if log_rows is not None else frames * 5  # 100 Hz log, 20 Hz camera
    ptr = np.arange(rows) // 5 + ptr_shift
    steer = np.arange(rows) // 5 * 1.0  # degrees
    if nan_at is not None:
        steer[nan_at] = np.nan
    with h5py.File(root / "camera" / f"{name}.h5", "w") as f:
        f.create_dataset("X", data=x)
    with h5py.File(root / "log" / f"{name}.h5", "w") as f:
        f.create_dataset("cam1_ptr", data=ptr.astype(np.float64))
        f.create_dataset("steering_angle", data=steer)
        f.create_dataset("speed", data=np.ones(rows - (1 if short_speed else 0)))
    return root


def test_comma_reader_averages_log_rows_per_frame_in_radians(tmp_path):
    root = write_comma(tmp_path / "comma", frames=12)
    recs = driving.read_comma(root, 20, 40)
    assert len(recs) == 1 and recs[0].frames.shape == (12, 3, 20, 40)
    assert recs[0].angle[4] == pytest.approx(np.radians(4.0))
    assert recs[0].frames[3].mean() == pytest.approx(30, abs=1)


def test_comma_reader_cuts_where_frames_have_no_log(tmp_path):
    root = write_comma(tmp_path / "comma", frames=12, log_rows=40)  # the log covers frames 0..7
    recs = driving.read_comma(root, 20, 40)
    assert [len(r.angle) for r in recs] == [8]
    assert recs[0].drive == "2016-01-30--11-24-51"  # its file is its drive: pieces of one file stay on one side of the split


@pytest.mark.parametrize("fault, message", [
    ({"ptr_shift": 3}, "cam1_ptr reaches frame"),
    ({"short_speed": True}, "speed has"),
    ({"nan_at": 7}, "steering_angle is nan"),
])
def test_comma_reader_errors_name_the_file(tmp_path, fault, message):
    root = write_comma(tmp_path / "comma", frames=10, **fault)
    with pytest.raises(DataError, match=message) as err:
        driving.read_comma(root, 20, 40)
    assert ".h5" in str(err.value)


def test_comma_reader_needs_the_log_file(tmp_path):
    root = write_comma(tmp_path / "comma", frames=6)
    (root / "log" / "2016-01-30--11-24-51.h5").unlink()
    with pytest.raises(DataError, match="has no log file"):
        driving.read_comma(root, 20, 40)


def test_udacity_recordings_in_sub_folders_are_cut_at_the_folder_boundary(tmp_path):
    write_udacity(tmp_path / "ud" / "a", n=4)
    write_udacity(tmp_path / "ud" / "b", n=5)
    recs = driving.read_udacity(tmp_path / "ud", 20, 40)
    assert [len(r.angle) for r in recs] == [4, 5]  # same timestamps, but two recordings
    manifest = driving.convert_recordings(recs, tmp_path / "shards", seq_len=3, test_every=2, source={"kind": "udacity"})
    assert manifest["splits"]["train"]["samples"] == 1 == manifest["splits"]["test"]["samples"]  # 4 -> 1 sequence, 5 -> 1; none spans both folders
    assert manifest["dropped"] == {"frames": 3, "recordings": []}  # the tails: 1 + 2 frames
    data = driving.load_split(tmp_path / "shards", "test")
    assert np.allclose(data["angle"][0], [0.0, 0.01, 0.02])  # folder b starts again at frame 0


def test_udacity_reader_needs_interpolated_csv(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="interpolated.csv is missing"):
        driving.read_udacity(tmp_path / "empty", 20, 40)


def test_comma_reader_errors_on_a_missing_camera_dataset_and_unequal_log_columns(tmp_path):
    import h5py

    root = write_comma(tmp_path / "a", frames=4)
    with h5py.File(root / "log" / "2016-01-30--11-24-51.h5", "a") as f:
        del f["steering_angle"]
        f.create_dataset("steering_angle", data=np.zeros(7))
    with pytest.raises(DataError, match="cam1_ptr has 20 rows but steering_angle 7"):
        driving.read_comma(root, 20, 40)
    root = write_comma(tmp_path / "b", frames=4)
    with h5py.File(root / "camera" / "2016-01-30--11-24-51.h5", "a") as f:
        f.move("X", "Y")
    with pytest.raises(DataError, match="no dataset 'X'") as err:
        driving.read_comma(root, 20, 40)
    assert "camera" in str(err.value)


def test_cli_data_step_exits_2_on_bad_input_and_leaves_no_shards(tmp_path, capsys):
    from cnninterp.cli import main

    out = tmp_path / "shards"
    assert main(["attention", "data", "--out", str(out), "--source", "udacity"]) == 2
    assert "attention.data.path is not set" in capsys.readouterr().err
    folder = write_udacity(tmp_path / "ud", n=6, missing_frame=2)
    assert main(["attention", "data", "--out", str(out), "--source", "udacity", f"--path={folder}"]) == 2
    assert "is listed but" in capsys.readouterr().err and not out.exists()
    assert main(["attention", "data", "--out", str(out), "--seq-len", "0"]) == 2
    assert "--seq-len must be >= 1" in capsys.readouterr().err and not out.exists()
    # the good folder converts: 12 frames -> 4 sequences of 3; one recording: the last 4 // 2 held out after a gap of one
    good = write_udacity(tmp_path / "ok", n=12)
    assert main(["attention", "data", "--out", str(out), "--source", "udacity", f"--path={good}", "--height", "16",
                 "--width", "32", "--seq-len", "3", "--test-every", "2"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert {k: v["samples"] for k, v in manifest["splits"].items()} == {"train": 1, "test": 2}
    assert manifest["split"]["gap_sequences"] == 1
    assert manifest["has_cause"] is False and manifest["source"]["kind"] == "udacity"


def test_the_outer_road_changes_the_picture_outside_the_band_but_not_the_target_or_the_cause():
    road = replace(ROAD, quiet=(CAM.lookahead / CAM.band, CAM.lookahead * CAM.band), outer=(0.5, -0.05, 0.01, 0.0))
    other = replace(road, outer=(-0.6, 0.03, -0.01, 0.0004))
    img, cause, _ = driving.render_frame(road, [], CAM)
    img2, cause2, _ = driving.render_frame(other, [], CAM)
    base, cause0, _ = driving.render_frame(ROAD, [], CAM)
    assert driving.pursuit_angle(road, CAM.lookahead) == driving.pursuit_angle(other, CAM.lookahead) == driving.pursuit_angle(ROAD, CAM.lookahead)
    assert np.array_equal(cause, cause2) and np.array_equal(cause, cause0)
    rows = np.flatnonzero(np.any(img != img2, axis=(0, 2)))  # rows whose pixels differ
    z = driving.row_depths(CAM)[rows]
    assert len(rows) > 5 and np.all((z < CAM.lookahead / CAM.band) | (z > CAM.lookahead * CAM.band))


def held_out_r2(features: np.ndarray, target: np.ndarray) -> float:
    """R² on the second half of a least-squares fit (features, their squares, a constant) on the first half."""
    a = np.c_[features, features**2, np.ones(len(features))]
    n = len(a) // 2
    coef, *_ = np.linalg.lstsq(a[:n], target[:n], rcond=None)
    return float(1 - np.var(target[n:] - a[n:] @ coef) / np.var(target[n:]))


@pytest.mark.parametrize("outer", [False, True])
def test_only_the_band_determines_the_target_when_the_outer_road_is_on(outer):
    rng = np.random.default_rng(0)
    spec = RoadSpec(camera=CAM, outer=outer)
    roads = [r for _ in range(300) for r in driving.road_sequence(rng, spec)]
    target = np.array([driving.pursuit_angle(r, CAM.lookahead) for r in roads])
    near, far = CAM.lookahead / CAM.band - driving.RAMP, CAM.lookahead * CAM.band + driving.RAMP
    outside = np.array([3.0, 4.0, 5.0, near, far, 20.0, 30.0])
    inside = np.linspace(CAM.lookahead / CAM.band, CAM.lookahead * CAM.band, 4)
    from_outside = held_out_r2(np.array([r.lateral(outside) for r in roads]), target)
    assert held_out_r2(np.array([r.lateral(inside) for r in roads]), target) > 0.99
    if outer:  # measured -0.01: the road beyond the ramp says nothing about the target
        assert from_outside < 0.1
    else:  # one cubic: four depths anywhere give X(L) exactly
        assert from_outside > 0.99


@pytest.mark.parametrize("step,option,value", [
    ("evaluate", "--cause-dilation", "-1"), ("evaluate", "--level", "1.5"), ("evaluate", "--sigma", "-1"),
    ("evaluate", "--threshold", "-0.1"), ("data", "--band", "0.9"), ("data", "--lookahead-m", "2"),
    ("data", "--height", "8"), ("data", "--distractors", "-1"), ("train", "--lr", "2"), ("train", "--seed", "-1")])
def test_cli_steps_apply_the_schema_bounds_exit_2_naming_the_option_and_write_nothing(tmp_path, capsys, step, option, value):
    """A value the config would refuse (e.g. --cause-dilation -1 scored the whole frame as causal,
    --band 0.9 gave empty causal masks with has_cause true) is refused by the step too."""
    from cnninterp.cli import main

    out = tmp_path / "out" / "result"
    args = {"data": ["--out", str(out)],
            "train": ["--shards", str(tmp_path / "none"), "--out", str(out), "--kind", "cnn"],
            "evaluate": ["--shards", str(tmp_path / "none"), "--out", str(out), "--attention", "a", "--attention-no-reg", "b", "--cnn", "c"]}[step]
    assert main(["attention", step, *args, option, value]) == 2
    err = capsys.readouterr().err
    assert f"{option} {float(value) if '.' in value else int(value)!r}" in err and "attention.schema.yaml" in err
    assert not (tmp_path / "out").exists()


def test_lateral_scale_multiplies_the_road_drift_and_moves_the_cause_sideways():
    cam = Camera(height=80, width=160)

    def roads_and_spread(scale):
        rng = np.random.default_rng(0)
        roads = [r for _ in range(20) for r in driving.road_sequence(rng, RoadSpec(camera=cam, lateral_scale=scale))]
        cols = [np.nonzero(driving.cause_mask(r, cam))[1].mean() for r in roads]
        return roads, float(np.std(cols))

    one, spread1 = roads_and_spread(1.0)
    three, spread3 = roads_and_spread(3.0)
    for a, b in zip(one, three):  # same random draws, every drift coefficient times 3
        for name in ("offset", "heading", "c0", "c1"):
            assert getattr(b, name) == pytest.approx(3 * getattr(a, name))
    assert spread1 < 8.0 < spread3  # one feature cell is 8 px wide; measured 6.1 / 18 px
    assert spread3 > 2.5 * spread1


def test_cli_refuses_a_bad_lateral_scale_and_writes_nothing(tmp_path, capsys):
    from cnninterp.cli import main

    out = tmp_path / "d"
    code = main(["attention", "data", "--out", str(out), "--height", "24", "--width", "48", "--lateral-scale", "0"])
    assert code == 2 and "--lateral-scale" in capsys.readouterr().err
    assert not out.exists()
    # the default pitch (13 px, for 64-row frames) does not fit 24 rows: refused naming the option and the height
    assert main(["attention", "data", "--out", str(out), "--height", "24", "--width", "48"]) == 2
    assert "--pitch-px must be at most 0.5 of the frame height (24 px), got 13" in capsys.readouterr().err
    assert not out.exists()


def test_pitch_moves_the_band_rows_and_leaves_the_target_and_the_other_draws_alone():
    cam = Camera(height=80, width=160)
    flat = driving.synthetic_sequence(np.random.default_rng(3), RoadSpec(camera=cam, seq_len=6))
    pitched = driving.synthetic_sequence(np.random.default_rng(3), RoadSpec(camera=cam, seq_len=6, pitch_px=16.0))
    assert np.array_equal(flat["angle"], pitched["angle"])  # the target is the road's alone
    rows = lambda c: np.nonzero(c)[0].mean()  # noqa: E731
    shifts = [rows(p) - rows(f) for f, p in zip(flat["cause"], pitched["cause"])]
    assert max(abs(s) for s in shifts) > 2.0  # the band's rows move with the horizon
    # by hand: a horizon 5 px lower moves the band's rows (depth z at row horizon + f·h/z) 5 px down
    road = Road(offset=0.0, heading=0.0, c0=0.0, c1=0.0)
    c0, c5 = driving.cause_mask(road, cam), driving.cause_mask(road, replace(cam, pitch=5.0))
    assert np.array_equal(np.nonzero(c0.any(1))[0] + 5, np.nonzero(c5.any(1))[0])
    # pitch 0 keeps the data exactly as before the option existed (the pitch is drawn last)
    again = driving.synthetic_sequence(np.random.default_rng(3), RoadSpec(camera=cam, seq_len=6, pitch_px=0.0))
    assert all(np.array_equal(flat[k], again[k]) for k in flat)


def test_each_split_written_alone_does_not_depend_on_the_other_splits_size(tmp_path):
    """The DAG writes train and test into their own folders (one job each), so that a test-only
    setting does not retrain the models: the train folder (its manifest's bytes, which the models
    record, and its sequences) must be the same whatever --test-sequences is, and the test folder
    whatever --train-sequences is; both equal the splits written together."""
    from cnninterp.cli import main

    def data(name, split, train, test):
        args = ["attention", "data", "--out", str(tmp_path / name), "--split", split, "--height", "16", "--width", "32",
                "--pitch-px", "3", "--seq-len", "2", "--distractors", "1", "--train-sequences", str(train), "--test-sequences", str(test)]
        assert main(args) == 0
        return (tmp_path / name / "manifest.json").read_bytes()

    assert data("train_a", "train", 3, 2) == data("train_b", "train", 3, 5)
    assert data("test_a", "test", 3, 2) == data("test_b", "test", 4, 2)
    data("both", "both", 3, 2)
    assert json.loads(data("train_c", "train", 3, 2))["splits"].keys() == {"train"}
    assert json.loads((tmp_path / "test_a" / "manifest.json").read_text())["splits"].keys() == {"test"}
    for split in ("train", "test"):
        alone, together = driving.load_split(tmp_path / f"{split}_a", split), driving.load_split(tmp_path / "both", split)
        assert all(np.array_equal(alone[k], together[k]) for k in ("frames", "angle", "cause", "distractor"))
    # both folders record the settings they share, which the evaluation compares (check_same_draw)
    driving.check_same_draw(tmp_path / "train_a", tmp_path / "test_b")
    data("test_other", "test", 3, 2)  # same settings ...
    other = tmp_path / "test_other2"
    assert main(["attention", "data", "--out", str(other), "--split", "test", "--height", "16", "--width", "32",
                 "--pitch-px", "3", "--seq-len", "2", "--distractors", "2", "--test-sequences", "2"]) == 0  # ... but 2 distractors
    with pytest.raises(DataError, match=r"test_other2/manifest.json was not drawn with .*train_a/manifest.json: distractors is 2 there against 1"):
        driving.check_same_draw(tmp_path / "train_a", other)


def test_real_data_splits_written_alone_are_the_splits_written_together(tmp_path):
    """A Udacity folder (two drives, each cut by a gap): each split alone holds the sequences of the
    same split written together, and both record the same shared settings."""
    for k in range(2):
        write_udacity(tmp_path / "ud" / f"d{k}", n=9, gap_at=5, angle0=float(k))
    recs = driving.read_udacity(tmp_path / "ud", 8, 8)
    for splits, name in ((("train",), "train"), (("test",), "test"), (driving.SPLITS, "both")):
        driving.convert_recordings(recs, tmp_path / name, seq_len=2, test_every=2, source={"kind": "udacity"}, splits=splits)
    for split in driving.SPLITS:
        assert np.array_equal(driving.load_split(tmp_path / split, split)["angle"], driving.load_split(tmp_path / "both", split)["angle"])
    driving.check_same_draw(tmp_path / "train", tmp_path / "test")
    driving.convert_recordings(recs, tmp_path / "test3", seq_len=2, test_every=3, source={"kind": "udacity"}, splits=("test",))
    with pytest.raises(DataError, match="test_every is 3 there against 2"):
        driving.check_same_draw(tmp_path / "train", tmp_path / "test3")


def test_the_data_jobs_options_key_each_split_by_its_own_count_and_real_splits_by_the_split_rule():
    """What keys each split's data job (rules/attention.smk): the synthetic train job must not see the
    test count (it reran the three trainings); every other synthetic setting keys both; on real data
    the split rule decides which sequences train, so both jobs get the same options."""
    from cnninterp.attention.cli import data_args
    from cnninterp.config import load_schema

    props = load_schema()["properties"]["attention"]["properties"]["data"]["properties"]
    data = {k: v["default"] for k, v in props.items()}
    train, test = data_args(data, 0, "train"), data_args(data, 0, "test")
    assert "--test-sequences" not in train and "--train-sequences" not in test
    drop = lambda args, opt: [a for i, a in enumerate(args) if opt not in (a, args[i - 1] if i else None)]  # noqa: E731
    assert drop(train, "--train-sequences") == drop(test, "--test-sequences") and "--distractors" in train
    # the ramp is where the outer road takes over: without the outer road it changes no sequence, so
    # it must not key the jobs (a ramp_m edit reran both data jobs, three trainings and the evaluation)
    assert "--ramp-m" in train and "--ramp-m" not in data_args(dict(data, outer_road=False), 0, "train")
    for source in ("udacity", "comma"):
        real = dict(data, source=source, path="/data/x")
        assert data_args(real, 0, "train") == data_args(real, 0, "test")
        assert "--test-every" in data_args(real, 0, "train") and ("--max-gap-s" in data_args(real, 0, "train")) == (source == "udacity")


def test_without_a_ramp_the_road_outside_the_band_is_the_independent_cubic_alone():
    """``ramp_m`` 0: the outer cubic takes over at the band's edges at once, so no row outside the
    causal band shows anything of the band's cubic (with RoadSpec's 1.5 m ramp, the config's default until 2026-12-04, the three rows
    under the band at 40x80 predict the target with held-out R² 0.84 against the band's 0.92:
    benchmarks/attention_cause_regions.py)."""
    quiet, p, q = (7.7, 13.0), (0.3, 0.02, 0.01, 0.0004), (-0.5, -0.03, 0.02, -0.0002)
    sharp = driving.Road(*p, outer=q, quiet=quiet, ramp=0.0)
    smooth = driving.Road(*p, outer=q, quiet=quiet)
    z = np.array([4.0, 7.0, 7.69, 7.7, 10.0, 13.0, 13.01, 15.0])
    expected = np.where((z >= 7.7) & (z <= 13.0), driving.cubic(p, z), driving.cubic(q, z))
    np.testing.assert_allclose(sharp.lateral(z), expected, rtol=0, atol=1e-12)
    assert abs(smooth.lateral(7.0) - driving.cubic(q, 7.0)) > 1e-3  # inside the default ramp: a blend
    spec = RoadSpec(camera=Camera(), seq_len=4, ramp_m=0.0)
    a = driving.synthetic_sequence(np.random.default_rng(2), spec)
    b = driving.synthetic_sequence(np.random.default_rng(2), RoadSpec(camera=Camera(), seq_len=4))
    assert np.array_equal(a["angle"], b["angle"]) and np.array_equal(a["cause"], b["cause"])  # the target and its cause stay


def test_the_steps_option_defaults_are_the_config_schemas():
    """A step run by hand must do what the config's defaults do: the options kept the 40x80 settings
    (no located cells, 12 epochs, ...) after the schema's defaults moved to 64x128."""
    import argparse

    from cnninterp.attention.cli import BLOCKS, register
    from cnninterp.config import method_defaults

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="verb"))
    d = method_defaults("attention", BLOCKS)
    data = vars(parser.parse_args(["attention", "data", "--out", "x"]))
    train = vars(parser.parse_args(["attention", "train", "--shards", "s", "--out", "o", "--kind", "attention"]))
    ev = vars(parser.parse_args(["attention", "evaluate", "--shards", "s", "--attention", "a", "--attention-no-reg", "b",
                                 "--cnn", "c", "--out", "o"]))
    for block, parsed in (("data", data), ("model", train), ("train", train), ("eval", ev)):
        shared = {k: v for k, v in d[block].items() if k in parsed and k not in ("source", "path", "reg_weight")}
        assert shared and all(parsed[k] == v for k, v in shared.items()), (block, {k: (parsed[k], v) for k, v in shared.items()})
    assert train["reg_weight"] == 0.0  # the step trains the lambda = 0 model too: lambda is given, not the config's
    assert data["height"] == 64 and train["located"] and train["epochs"] == 8 and data["seed"] == d["seed"]
