"""The synthetic multiview dataset: skeleton, cameras, crops, rendering with depth test, shards."""

import numpy as np
import pytest
import torch

from cnninterp.data import multiview as mv
from cnninterp.errors import DataError
from cnninterp.multiview.dlt import project


def test_poses_have_the_declared_bone_lengths_and_stay_in_the_capture_volume():
    rng = np.random.default_rng(0)
    poses = np.stack([mv.random_pose(rng) for _ in range(200)])
    bones = np.linalg.norm(poses[:, 1:] - poses[:, list(mv.PARENTS[1:])], axis=-1)
    assert np.allclose(bones, bones[0], atol=1e-6)  # rigid skeleton
    assert bones[0][1] == pytest.approx(mv.BONES_MM["thigh"]) and bones[0][15] == pytest.approx(mv.BONES_MM["forearm"])
    assert np.abs(poses[:, 0, :2]).max() <= 1000 and poses[:, 0, :2].std() > 400  # pelvis spread over 2 m
    assert (poses[:, 10, 2] > poses[:, 0, 2]).all()  # head above pelvis (trunk bend <= 40 degrees)
    # knee angle within 0..130 degrees: the angle between thigh and shin directions
    thigh, shin = poses[:, 2] - poses[:, 1], poses[:, 3] - poses[:, 2]
    cos = (thigh * shin).sum(-1) / np.linalg.norm(thigh, axis=-1) / np.linalg.norm(shin, axis=-1)
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() <= 130 + 1e-6


def test_rig_cameras_look_at_the_volume_from_a_45m_circle():
    rig = mv.Rig()
    for az in rig.azimuths():
        K, R, t = mv.camera_at(az, rig)
        assert np.allclose(R @ R.T, np.eye(3)) and np.linalg.det(R) == pytest.approx(1.0)
        centre = -R.T @ t
        assert np.hypot(*centre[:2]) == pytest.approx(4500.0)
        uv = K @ (R @ np.array([0, 0, 900.0]) + t)
        assert np.allclose(uv[:2] / uv[2], [500, 500])  # the target is at the principal point


def test_sample_2d_joints_are_the_projection_of_the_3d_joints_through_the_crop_cameras():
    rng = np.random.default_rng(1)
    rig = mv.Rig()
    s = mv.make_sample(mv.random_pose(rng), rig.azimuths(), rig, 64)
    P = torch.from_numpy(mv.projections(s["K"], s["R"], s["t"]))  # (V, 3, 4)
    uv = project(P, torch.from_numpy(s["joints3d"].astype(np.float64)))  # (17, V, 2)
    np.testing.assert_allclose(uv.permute(1, 0, 2).numpy(), s["joints2d"], atol=1e-3)
    assert np.allclose(s["joints2d"][:, 0], 32.0, atol=1e-3)  # crops centred on the pelvis
    assert (s["joints2d"] > 0).all() and (s["joints2d"] < 64).all()  # the person fits the crop
    assert s["images"].shape == (4, 64, 64, 3) and s["images"].dtype == np.uint8
    assert (s["images"].max(-1) > 0).mean() > 0.05  # something was drawn


def test_the_nearer_limb_wins_where_two_overlap():
    K = np.array([[[100.0, 0, 32], [0, 100, 32], [0, 0, 1]]])
    R, t = np.eye(3)[None], np.zeros((1, 3))

    def centre_colour(near_limb_depth, far_limb_depth):
        X = np.tile([1e4, 1e4, 5000.0], (17, 1))
        X[0] = X[1] = [-1500.0, 0, near_limb_depth]
        X[2] = [1500.0, 0, near_limb_depth]  # limb ending at joint 2 crosses the centre horizontally
        X[4] = [0, -1500.0, far_limb_depth]
        X[5] = [0, 1500.0, far_limb_depth]  # limb ending at joint 5 crosses it vertically
        pixel = mv.render_views(K, R, t, X, 64)[0, 32, 32].astype(float)
        # shaded: a multiple (0.55..1) of one limb colour; which one?
        return min(mv._COLOURS, key=lambda j: np.abs(pixel / np.linalg.norm(pixel) - np.array(mv._COLOURS[j]) / np.linalg.norm(mv._COLOURS[j])).max())

    assert centre_colour(3000.0, 4000.0) == 2
    assert centre_colour(4000.0, 3000.0) == 5


def test_shards_are_deterministic_and_the_unseen_split_moves_one_camera(tmp_path):
    cfg = mv.MultiviewConfig(train=3, test=2, image_size=32, heldout_azimuth_deg=0.0)
    a = mv.write_multiview(tmp_path / "a", cfg, shard_size=2)
    b = mv.write_multiview(tmp_path / "b", cfg, shard_size=2)
    assert a["splits"] == b["splits"]  # same sha256 per shard
    test, unseen = mv.load_split(tmp_path / "a", "test"), mv.load_split(tmp_path / "a", "unseen")
    np.testing.assert_array_equal(test["joints3d"], unseen["joints3d"])  # the same held-out poses
    assert np.allclose(test["azimuth"][0], [45, 135, 225, 315]) and np.allclose(unseen["azimuth"][0], [45, 135, 225, 0])
    np.testing.assert_array_equal(test["images"][:, :3], unseen["images"][:, :3])
    train = mv.load_split(tmp_path / "a", "train")
    assert not np.isclose(train["joints3d"][:, None], test["joints3d"][None]).all(axis=(2, 3)).any()  # disjoint poses


def test_a_held_out_camera_on_a_training_position_is_refused(tmp_path):
    with pytest.raises(DataError, match="heldout_azimuth_deg 135.0 coincides"):
        mv.write_multiview(tmp_path, mv.MultiviewConfig(train=1, test=1, heldout_azimuth_deg=135.0))


def test_the_train_split_is_the_same_bytes_whatever_the_test_only_settings(tmp_path):
    """The workflow's training rules read a train-only folder: its manifest (whose sha256 the
    models record) must not move with the test count or the held-out camera, and its shards must
    be those of a full write; the evaluation folder holds the full write's test and unseen shards."""
    base = dict(train=3, image_size=16, occluder_probability=0.5)
    a = mv.write_multiview(tmp_path / "a", mv.MultiviewConfig(test=2, heldout_view=3, heldout_azimuth_deg=0.0, **base), splits=["train"])
    b = mv.write_multiview(tmp_path / "b", mv.MultiviewConfig(test=5, heldout_view=1, heldout_azimuth_deg=100.0, **base), splits=["train"])
    assert (tmp_path / "a/manifest.json").read_bytes() == (tmp_path / "b/manifest.json").read_bytes()
    assert set(a["splits"]) == {"train"} and set(a["config"]) == {"train", "image_size", "views", "occluder_probability", "seed"}
    cfg = mv.MultiviewConfig(test=2, **base)
    full = mv.write_multiview(tmp_path / "full", cfg)
    ev = mv.write_multiview(tmp_path / "eval", cfg, splits=["test", "unseen"])
    assert a["splits"]["train"] == full["splits"]["train"]  # same shard names, counts, sha256
    assert ev["splits"] == {k: full["splits"][k] for k in ("test", "unseen")} and "train" not in ev["config"]
    mv.check_pair(tmp_path / "a", tmp_path / "eval")  # written with the same settings: accepted
    mv.check_pair(tmp_path / "full", tmp_path / "full")
    # more training poses, same generator: the first samples are the same ones
    c = mv.write_multiview(tmp_path / "c", mv.MultiviewConfig(test=2, **{**base, "train": 4}), shard_size=3, splits=["train"])
    assert c["splits"]["train"]["shards"][0]["sha256"] == mv.write_multiview(tmp_path / "d", cfg, shard_size=3, splits=["train"])["splits"]["train"]["shards"][0]["sha256"]


def test_evaluation_shards_that_were_not_written_with_the_training_shards_are_refused(tmp_path):
    cfg = mv.MultiviewConfig(train=2, test=1, image_size=16)
    mv.write_multiview(tmp_path / "train", cfg, splits=["train"])
    mv.write_multiview(tmp_path / "seed1", mv.MultiviewConfig(train=2, test=1, image_size=16, seed=1), splits=["test", "unseen"])
    with pytest.raises(DataError, match=r"train/manifest.json have config.seed 0 but the evaluation shards .*seed1/manifest.json have 1"):
        mv.check_pair(tmp_path / "train", tmp_path / "seed1")
    mv.write_multiview(tmp_path / "size", mv.MultiviewConfig(train=2, test=1, image_size=20), splits=["test"])
    with pytest.raises(DataError, match="have image_size 16 but the evaluation shards .* have 20"):
        mv.check_pair(tmp_path / "train", tmp_path / "size")
    with pytest.raises(DataError, match=r"seed1/manifest.json has no train split \(has \['test', 'unseen'\]\)"):
        mv.check_pair(tmp_path / "seed1", tmp_path / "train")
    with pytest.raises(DataError, match="splits must be distinct names among"):
        mv.write_multiview(tmp_path / "bad", cfg, splits=["train", "valid"])
    assert not (tmp_path / "bad").exists()


def test_the_cli_writes_the_named_splits_and_refuses_the_unseen_one_for_a_human36m_root(tmp_path, capsys):
    from cnninterp.cli import main

    assert main(["multiview", "data", "--out", str(tmp_path / "t"), "--splits", "train", "--train", "2",
                 "--image-size", "16", "--heldout-view", "9"]) in (0, None)  # the held-out camera does not concern train
    assert set(mv.read_manifest(tmp_path / "t")["splits"]) == {"train"}
    with pytest.raises(DataError, match="heldout_view < views, got views=4, heldout_view=9"):
        mv.write_multiview(tmp_path / "u", mv.MultiviewConfig(train=1, test=1, image_size=16, heldout_view=9), splits=["unseen"])
    code = main(["multiview", "data", "--source", "h36m", "--h36m-root", str(tmp_path), "--out", str(tmp_path / "h"), "--splits", "test", "unseen"])
    assert code == 2 and "a Human3.6M root has no unseen-camera split" in capsys.readouterr().err
    assert not (tmp_path / "h").exists()


def test_a_limited_split_is_spread_over_the_whole_split_not_its_first_samples(tmp_path):
    """Evaluation's ``samples`` cap: a Human3.6M split is written by subject, action and frame, so
    its first samples were a few seconds of one subject (S11 sorts before S9); the cap now takes
    samples evenly spaced over the split in key order, first and last included."""
    mv.write_multiview(tmp_path, mv.MultiviewConfig(train=1, test=10, image_size=16), shard_size=3, splits=["test"])
    whole = mv.load_split(tmp_path, "test")
    part = mv.load_split(tmp_path, "test", limit=4)
    np.testing.assert_array_equal(part["joints3d"], whole["joints3d"][[0, 3, 6, 9]])
    assert len(mv.load_split(tmp_path, "test", limit=1)["joints3d"]) == 1
    np.testing.assert_array_equal(mv.load_split(tmp_path, "test", limit=50)["joints3d"], whole["joints3d"])
