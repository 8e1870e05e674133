"""The Human3.6M-style layout reader, on small sequences written in exactly that layout."""

import json
import re

import numpy as np
import pytest

from cnninterp.data import h36m, multiview
from cnninterp.errors import DataError

FRAME = 250  # full frames written at a quarter of Human3.6M's 1000 px


def write_sequence(root, frames=3, subject="S9", action="Walking 1", dist=None):
    """A sequence of random poses rendered full-frame through the ring rig; returns (poses, cameras)."""
    rng = np.random.default_rng(5)
    poses = np.stack([multiview.random_pose(rng) for _ in range(frames)])
    rig = multiview.Rig()
    cams, images = {}, {}
    for cam_id, az in zip(h36m.CAMERA_IDS, rig.azimuths()):
        K, R, t = multiview.camera_at(az, rig)
        K = K.copy()
        K[:2] *= FRAME / multiview.FRAME
        cams[cam_id] = {"R": R, "t": t, "K": K, "dist": np.zeros(5) if dist is None else np.asarray(dist)}
        images[cam_id] = np.stack([multiview.render_views(K[None], R[None], t[None], X, FRAME)[0] for X in poses])
    h36m.write_layout(root, subject, action, cams, images, poses)
    return poses, cams


def test_reader_matches_the_generator_on_a_written_sequence(tmp_path):
    poses, _ = write_sequence(tmp_path)
    out = list(h36m.read_sequence(tmp_path, "S9", "Walking 1", image_size=64))
    assert [n for n, _ in out] == [1, 2, 3]
    rig = multiview.Rig()
    for (_, fields), X in zip(out, poses):
        ref = multiview.make_sample(X, rig.azimuths(), rig, 64)
        np.testing.assert_allclose(fields["joints2d"], ref["joints2d"], atol=1e-3)
        np.testing.assert_allclose(fields["K"], ref["K"], rtol=1e-9)
        np.testing.assert_allclose(fields["azimuth"] % 360, ref["azimuth"] % 360, atol=1e-6)
        assert fields["images"].shape == (4, 64, 64, 3)
        # same person in the same place: the crop of the (JPEG, 4x coarser) full frame matches the direct render
        fg_read, fg_ref = fields["images"].max(-1) > 60, ref["images"].max(-1) > 60
        assert (fg_read & fg_ref).sum() / (fg_read | fg_ref).sum() > 0.6


def test_radial_distortion_moves_the_2d_joints_as_the_radial_model_says(tmp_path):
    write_sequence(tmp_path, frames=1, dist=[0.1, 0, 0, 0, 0])
    (_, fields), = h36m.read_sequence(tmp_path, "S9", "Walking 1", image_size=64)
    cams = h36m.read_cameras(tmp_path)["S9"]
    cam = cams[h36m.CAMERA_IDS[0]]
    X = fields["joints3d"].astype(np.float64)
    c = X @ cam["R"].T + cam["t"]
    x = c[:, :2] / c[:, 2:]
    r2 = (x**2).sum(1, keepdims=True)
    full = x * (1 + 0.1 * r2) * cam["K"][0, 0] + cam["K"][:2, 2]  # hand: k1 only
    s = fields["K"][0, 0, 0] / cam["K"][0, 0]
    offset = cam["K"][:2, 2] - fields["K"][0, :2, 2] / s
    np.testing.assert_allclose(fields["joints2d"][0], (full - offset) * s, atol=1e-3)


def test_shards_from_the_layout_read_back(tmp_path):
    write_sequence(tmp_path / "h36m", frames=2, subject="S1")
    write_sequence(tmp_path / "h36m", frames=1, subject="S9")
    manifest = h36m.write_h36m(tmp_path / "h36m", tmp_path / "shards", train_subjects=["S1"], test_subjects=["S9"], image_size=32)
    assert manifest["splits"]["train"]["samples"] == 2 and manifest["splits"]["test"]["samples"] == 1
    data = multiview.load_split(tmp_path / "shards", "train")
    assert data["images"].shape == (2, 4, 32, 32, 3) and data["joints3d"].shape == (2, 17, 3)


def test_a_camera_missing_for_a_view_names_the_file_and_camera(tmp_path):
    write_sequence(tmp_path, frames=1)
    cams = json.loads((tmp_path / "cameras.json").read_text())
    del cams["S9"][h36m.CAMERA_IDS[2]]
    (tmp_path / "cameras.json").write_text(json.dumps(cams))
    with pytest.raises(DataError, match=rf"cameras.json.*{h36m.CAMERA_IDS[2]}"):
        list(h36m.read_sequence(tmp_path, "S9", "Walking 1", 32))


def test_a_singular_camera_matrix_names_the_camera(tmp_path):
    write_sequence(tmp_path, frames=1)
    cams = json.loads((tmp_path / "cameras.json").read_text())
    cams["S9"][h36m.CAMERA_IDS[1]]["K"] = [[1, 0, 0], [0, 0, 0], [0, 0, 1]]
    (tmp_path / "cameras.json").write_text(json.dumps(cams))
    with pytest.raises(DataError, match=rf"cameras.json.*{h36m.CAMERA_IDS[1]}.*singular"):
        h36m.read_cameras(tmp_path)


def test_views_with_different_frame_counts_name_the_sequence(tmp_path):
    write_sequence(tmp_path, frames=2)
    (tmp_path / "S9/Walking 1/imageSequence" / h36m.CAMERA_IDS[3] / "img_000002.jpg").unlink()
    with pytest.raises(DataError, match=r"Walking 1/imageSequence.*different frames"):
        list(h36m.read_sequence(tmp_path, "S9", "Walking 1", 32))


def test_views_are_paired_by_frame_number_not_by_position(tmp_path):
    # same count, different frames: camera 4 has frames 1 and 3, the others 1 and 2
    write_sequence(tmp_path, frames=3)
    folder = tmp_path / "S9/Walking 1/imageSequence" / h36m.CAMERA_IDS[3]
    (folder / "img_000002.jpg").unlink()
    for cam in h36m.CAMERA_IDS[:3]:
        (tmp_path / "S9/Walking 1/imageSequence" / cam / "img_000003.jpg").unlink()
    with pytest.raises(DataError, match=r"different frames .*\[2, 3\]"):
        list(h36m.read_sequence(tmp_path, "S9", "Walking 1", 32))


def test_a_subsampled_sequence_takes_each_frames_own_joints_row(tmp_path):
    poses, _ = write_sequence(tmp_path, frames=3)
    for cam in h36m.CAMERA_IDS:
        (tmp_path / "S9/Walking 1/imageSequence" / cam / "img_000002.jpg").unlink()
    out = list(h36m.read_sequence(tmp_path, "S9", "Walking 1", 32))
    assert [n for n, _ in out] == [1, 3]
    np.testing.assert_allclose(out[1][1]["joints3d"], poses[2], rtol=1e-6)


@pytest.mark.parametrize("damage, message", [
    ("nan joint", r"joints_3d.npy: frame 2 \(row 1\) holds a non-finite joint"),
    ("behind", r"joints_3d.npy: frame 1 has a joint at or behind camera"),
    ("nan camera", r"cameras.json \['S9'\]\['54138969'\]: t holds a non-finite number"),
    ("cameras list", r"cameras.json: expected"),
    ("frame name", r"img_x2.jpg: not a frame image name"),
])
def test_bad_values_name_the_file_and_frame(tmp_path, damage, message):
    write_sequence(tmp_path, frames=2)
    seq = tmp_path / "S9/Walking 1"
    joints = np.load(seq / "joints_3d.npy")
    cams = json.loads((tmp_path / "cameras.json").read_text())
    if damage == "nan joint":
        joints[1, 5, 0] = np.nan
    elif damage == "behind":
        joints[0] += 8000.0 * np.asarray(cams["S9"][h36m.CAMERA_IDS[0]]["R"])[2] * -1  # far behind camera 1
    elif damage == "nan camera":
        cams["S9"][h36m.CAMERA_IDS[0]]["t"][0] = float("nan")
    elif damage == "cameras list":
        cams = [cams]
    else:
        (seq / "imageSequence" / h36m.CAMERA_IDS[0] / "img_000001.jpg").rename(seq / "imageSequence" / h36m.CAMERA_IDS[0] / "img_x2.jpg")
    np.save(seq / "joints_3d.npy", joints)
    (tmp_path / "cameras.json").write_text(json.dumps(cams))
    with pytest.raises(DataError, match=message):
        list(h36m.read_sequence(tmp_path, "S9", "Walking 1", 32))


def test_a_subject_in_both_splits_is_refused(tmp_path):
    from cnninterp.errors import ConfigError

    write_sequence(tmp_path / "h36m", frames=1, subject="S1")
    with pytest.raises(ConfigError, match=r"\['S1'\] are in both"):
        h36m.write_h36m(tmp_path / "h36m", tmp_path / "shards", train_subjects=["S1"], test_subjects=["S1"], image_size=32)
    assert not (tmp_path / "shards").exists()


def test_sequences_with_different_camera_counts_are_refused(tmp_path):
    write_sequence(tmp_path / "h36m", frames=1, subject="S1")
    write_sequence(tmp_path / "h36m", frames=1, subject="S9")
    import shutil

    shutil.rmtree(tmp_path / "h36m/S9/Walking 1/imageSequence" / h36m.CAMERA_IDS[3])
    with pytest.raises(DataError, match=r"S1/Walking 1/imageSequence: 4 views, but earlier sequences have 3"):
        h36m.write_h36m(tmp_path / "h36m", tmp_path / "shards", train_subjects=["S1"], test_subjects=["S9"], image_size=32)
    assert not (tmp_path / "shards").exists()


def test_joints_of_the_wrong_count_name_the_file(tmp_path):
    write_sequence(tmp_path, frames=1)
    np.save(tmp_path / "S9/Walking 1/joints_3d.npy", np.zeros((1, 16, 3)))
    with pytest.raises(DataError, match=r"joints_3d.npy.*\(frames, 17, 3\)"):
        list(h36m.read_sequence(tmp_path, "S9", "Walking 1", 32))


def test_h36m_shards_train_evaluate_and_report_without_an_unseen_camera_split(tmp_path):
    """The workflow's path with ``multiview.data.source: h36m``: the data step writes the training
    subjects and the test subjects into two folders (with the options ``multiview.cli.data_args``
    gives the rules), the models train on the first, and evaluation checks the pair. The layout has
    no moved camera (splits train and test only): evaluation scores the test split and writes the
    unseen-camera metrics as null, which the report shows as a dash."""
    from types import SimpleNamespace

    import torch

    from cnninterp.cli import main
    from cnninterp.multiview import report
    from cnninterp.multiview.cli import data_args
    from cnninterp.multiview.evaluate import evaluate
    from cnninterp.multiview.model import ModelSpec
    from cnninterp.multiview.train import train_model
    from cnninterp.report.build import environment

    torch.set_num_threads(1)
    root = tmp_path / "my h36m"
    write_sequence(root, frames=2, subject="S1")
    write_sequence(root, frames=2, subject="S9")
    data = {"source": "h36m", "h36m": {"root": str(root), "train_subjects": ["S1"], "test_subjects": ["S9"]}}
    folders = {split: tmp_path / "shards" / split for split in ("train", "eval")}
    for split, folder in folders.items():
        assert main(["multiview", "data", "--out", str(folder), "--image-size", "16", *map(str, data_args(data, 0, split))]) == 0
    train, test = (json.loads((f / "manifest.json").read_text()) for f in folders.values())
    assert set(train["splits"]) == {"train"} and train["config"] == {"train_subjects": ["S1"]}
    assert set(test["splits"]) == {"test"} and test["config"] == {"test_subjects": ["S9"]}
    paths = {kind: tmp_path / kind / "model.pt" for kind in ("baseline", "fusion", "canonical")}
    for kind, path in paths.items():
        train_model(folders["train"], path, ModelSpec(kind=kind, image_size=16, channels=2, points=4, hidden=8),
                    epochs=1, batch_size=2, lr=1e-3, weight_3d=1.0, seed=0, device="cpu")
    results = tmp_path / "results"
    m = evaluate(folders["eval"], paths, results / "eval/multiview/metrics.json", train_shards=folders["train"], samples=2,
                 dlt_batch=4, dlt_repeat=1, figure_rows=1)
    assert m["samples"] == {"test": 2, "unseen": 0}
    assert all(np.isfinite(v) and v > 0 for v in m["mpjpe_mm"].values()) and set(m["mpjpe_mm"]) == set(paths)
    assert m["mpjpe_mm_unseen_camera"] == dict.fromkeys(paths) and m["error_2d_px"]["unseen"] == dict.fromkeys(paths)

    def asset(*parts):
        path = tmp_path / "staging" / "/".join(parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path, "/".join(parts)

    ctx = SimpleNamespace(config={"multiview": {"enabled": True, "data": data}}, results=results, asset=asset)
    html = environment().get_template(report.TEMPLATE).render(data=report.render(ctx))
    # the section names the data and leaves the unseen-camera column out (there is no such split)
    assert f"<td>{m['mpjpe_mm']['canonical']:.1f}</td>" in html and "<td>—</td>" not in html
    assert "Human3.6M-style root, test subjects S9" in html and "synthetic data" not in html


def test_a_configured_subject_without_a_folder_is_named_with_the_root(tmp_path):
    """S5 (train) and S11 (test) are configured but have no folder: refused, not skipped."""
    write_sequence(tmp_path / "h36m", frames=1, subject="S1")
    write_sequence(tmp_path / "h36m", frames=1, subject="S9")
    with pytest.raises(DataError, match=r"subjects \['S5', 'S11'\] have no folder under .*h36m.*\(it holds S1, S9\)"):
        h36m.write_h36m(tmp_path / "h36m", tmp_path / "shards", train_subjects=["S1", "S5"], test_subjects=["S9", "S11"], image_size=16)
    assert not (tmp_path / "shards").exists()
    with pytest.raises(DataError, match=r"subjects \['S5'\] have no folder"):
        h36m.sequences(tmp_path / "h36m", ["S1", "S5"])


def test_a_subject_folder_without_sequences_is_named(tmp_path):
    write_sequence(tmp_path / "h36m", frames=1, subject="S1")
    (tmp_path / "h36m/S9/Walking 1").mkdir(parents=True)  # an action folder without imageSequence/
    with pytest.raises(DataError, match=r"S9 holds no <action>/imageSequence folders"):
        h36m.sequences(tmp_path / "h36m", ["S1", "S9"])


def test_a_camera_folder_without_jpeg_frames_names_the_folder_and_what_it_holds(tmp_path):
    """Frames stored as .png (or not yet extracted) were read as a sequence of 0 frames."""
    from PIL import Image

    write_sequence(tmp_path / "h36m", frames=2, subject="S1")
    write_sequence(tmp_path / "h36m", frames=1, subject="S9")
    write_sequence(tmp_path / "h36m", frames=2, subject="S1", action="Eating")
    for path in (tmp_path / "h36m/S1/Eating/imageSequence").rglob("*.jpg"):
        Image.open(path).save(path.with_suffix(".png"))
        path.unlink()
    folder = tmp_path / "h36m/S1/Eating/imageSequence" / h36m.CAMERA_IDS[0]
    with pytest.raises(DataError, match=re.escape(str(folder)) + r" holds 2 \.png files, no img_\*\.jpg frames"):
        h36m.write_h36m(tmp_path / "h36m", tmp_path / "shards", train_subjects=["S1"], test_subjects=["S9"], image_size=16)
    assert not (tmp_path / "shards").exists()
    for path in folder.iterdir():
        path.unlink()
    with pytest.raises(DataError, match=re.escape(str(folder)) + r" is empty, no img_\*\.jpg frames"):
        list(h36m.read_sequence(tmp_path / "h36m", "S1", "Eating", 16))


def test_tangential_distortion_is_human36ms_own_not_opencvs():
    """Hand computation of Human3.6M's ProjectPointRadial: tan = p1·y + p2·x,
    x' = x·(radial + tan) + p2·r², y' = y·(radial + tan) + p1·r² (OpenCV's model gives x' = 0.65 and
    y' = 0.575 for the first two points)."""
    dist = [0.0, 0.0, 0.1, 0.2, 0.0]  # k1, k2, p1, p2, k3
    xy = np.array([[0.5, 0.0], [0.0, 0.5]])
    # (0.5, 0): r2 = 0.25, tan = 0.2*0.5 = 0.1 -> x' = 0.5*1.1 + 0.2*0.25 = 0.6, y' = 0 + 0.1*0.25 = 0.025
    # (0, 0.5): r2 = 0.25, tan = 0.1*0.5 = 0.05 -> x' = 0 + 0.2*0.25 = 0.05, y' = 0.5*1.05 + 0.1*0.25 = 0.55
    np.testing.assert_allclose(h36m.distort(xy, dist), [[0.6, 0.025], [0.05, 0.55]], atol=1e-12)
    # (0.3, 0.4) with k1 = 0.1: r2 = 0.25, radial = 1.025, tan = 0.1*0.4 + 0.2*0.3 = 0.1
    # x' = 0.3*1.125 + 0.2*0.25 = 0.3875, y' = 0.4*1.125 + 0.1*0.25 = 0.475
    np.testing.assert_allclose(h36m.distort(np.array([0.3, 0.4]), [0.1, 0.0, 0.1, 0.2, 0.0]), [0.3875, 0.475], atol=1e-12)


def test_the_workflows_two_folders_take_each_split_from_its_own_subjects_only(tmp_path):
    """``multiview.cli.data_args``: the training folder's options name the training subjects only
    (so a change of the test subjects does not retrain), the evaluation folder's the test subjects
    only; a pair of folders whose subjects overlap is refused by ``check_pair``."""
    from cnninterp.multiview.cli import data_args

    data = {"source": "h36m", "h36m": {"root": "/data/h36m", "train_subjects": ["S1", "S5"], "test_subjects": ["S9"]}}
    assert data_args(data, 0, "train") == ["--source", "h36m", "--h36m-root=/data/h36m", "--splits", "train", "--train-subjects", "S1", "S5"]
    assert data_args(data, 0, "eval") == ["--source", "h36m", "--h36m-root=/data/h36m", "--splits", "test", "--test-subjects", "S9"]
    root = tmp_path / "h36m"
    for subject in ("S1", "S9"):
        write_sequence(root, frames=1, subject=subject)
    h36m.write_h36m(root, tmp_path / "train", train_subjects=["S1", "S9"], test_subjects=[], image_size=16, splits=["train"])
    h36m.write_h36m(root, tmp_path / "eval", train_subjects=[], test_subjects=["S9"], image_size=16, splits=["test"])
    with pytest.raises(DataError, match=r"subjects \['S9'\] are among the training shards' train_subjects"):
        multiview.check_pair(tmp_path / "train", tmp_path / "eval")


def test_the_config_check_names_the_h36m_key_and_the_missing_subject(tmp_path):
    from cnninterp.errors import ConfigError

    write_sequence(tmp_path / "h36m", frames=1, subject="S1")
    with pytest.raises(ConfigError, match="multiview.data.h36m.root is not set"):
        h36m.check_settings("", ["S1"], ["S9"])
    with pytest.raises(ConfigError, match="is not an existing folder"):
        h36m.check_settings(str(tmp_path / "nowhere"), ["S1"], ["S9"])
    with pytest.raises(ConfigError, match=r"\['S1'\] are in both"):
        h36m.check_settings(str(tmp_path / "h36m"), ["S1"], ["S1"])
    with pytest.raises(ConfigError, match=r"multiview.data.h36m: subjects \['S9'\] have no folder"):
        h36m.check_settings(str(tmp_path / "h36m"), ["S1"], ["S9"])
    write_sequence(tmp_path / "h36m", frames=1, subject="S9", action="Eating")
    h36m.check_settings(str(tmp_path / "h36m"), ["S1"], ["S9"])
    assert [p.relative_to(tmp_path / "h36m").as_posix() for p in h36m.source_files(tmp_path / "h36m", ["S9"])] == [
        "S9/Eating/joints_3d.npy"]


def test_the_camera_digest_of_some_subjects_ignores_the_other_subjects_cameras(tmp_path):
    """cameras.json holds every subject's cameras: the training data's key must not move when a test
    subject's camera does (as a file input it reran the training data and the three trainings)."""
    root = tmp_path / "h36m"
    write_sequence(root, frames=1, subject="S1")
    write_sequence(root, frames=1, subject="S9")
    before = {s: h36m.camera_digest(root, [s]) for s in ("S1", "S9")}
    cams = json.loads((root / h36m.CAMERAS).read_text())
    cams["S9"][h36m.CAMERA_IDS[0]]["t"][0] += 10.0
    cams["S7"] = cams["S1"]  # a subject nobody uses, unpacked into the root
    (root / h36m.CAMERAS).write_text(json.dumps(cams))
    assert h36m.camera_digest(root, ["S1"]) == before["S1"] and h36m.camera_digest(root, ["S9"]) != before["S9"]
    assert h36m.camera_digest(root, ["S9", "S1"]) == h36m.camera_digest(root, ["S1", "S9"])
    (root / h36m.CAMERAS).write_text("{not json")
    with pytest.raises(DataError, match="cameras.json is not valid JSON"):
        h36m.camera_digest(root, ["S1"])
