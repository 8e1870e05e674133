"""The objects3d dataset: the numpy renderer, the azimuth factor, the shards and their held-out arc."""

import json
import math

import numpy as np
import pytest

from cnninterp.data import objects3d
from cnninterp.data.shards import npy_bytes, write_shards
from cnninterp.errors import DataError

FRONT_ONLY = np.array([0, 0, 0, 0, 0, 1.0])  # the cube's face 5 is z = +0.55, the face toward the viewer at azimuth 0


def small(tmp_path, name="o", **kw):
    args = dict(objects_train=3, objects_test=2, image_size=16, azimuth_step_deg=30, elevation_deg=20,
                heldout_start_deg=60, heldout_width_deg=60, seed=0, shard_size=50)
    args.update(kw)
    return objects3d.write_objects3d(tmp_path / name, **args)


@pytest.mark.parametrize("shape", objects3d.SHAPE_NAMES)
def test_every_shape_renders_inside_the_frame_on_black(shape):
    tris, face = objects3d.triangles(shape)
    assert tris.shape[1:] == (3, 3) and face.shape == (len(tris),)
    assert np.linalg.norm(tris.reshape(-1, 3), axis=1).max() <= 1.0  # in the unit sphere: any roll keeps it in the frame
    albedo = np.linspace(0.4, 1.0, int(face.max()) + 1)
    img = objects3d.render(shape, albedo, 1.0, 30.0, 25.0, 24)
    assert img.shape == (24, 24) and img.dtype == np.float64
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert img[:2].max() == 0 and img[-2:].max() == 0 and img[:, :2].max() == 0 and img[:, -2:].max() == 0
    assert (img > 0).mean() > 0.15  # the object covers a good part of the frame
    # every pixel lies in the disc inscribed in the frame
    r = np.hypot(*np.meshgrid(np.arange(24) + 0.5 - 12, np.arange(24) + 0.5 - 12))
    assert img[r > 12].max() == 0


def test_rotation_of_a_known_point():
    front = np.array([0.0, 0.0, 1.0])
    assert np.allclose(objects3d.rotation(90.0, 0.0) @ front, [1.0, 0.0, 0.0], atol=1e-12)
    assert np.allclose(objects3d.rotation(-90.0, 0.0) @ front, [-1.0, 0.0, 0.0], atol=1e-12)
    # elevation tilts the top toward the viewer: (0, 1, 0) -> (0, cos e, sin e)
    e = math.radians(30)
    assert np.allclose(objects3d.rotation(0.0, 30.0) @ [0.0, 1.0, 0.0], [0.0, math.cos(e), math.sin(e)], atol=1e-12)
    # projection: the centre maps to the frame centre, +x to the right, +y up (row 0 is the top)
    px = objects3d.project(np.array([[0.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]]), 20)
    assert np.allclose(px, [[10, 10], [10 + 10 * objects3d.FILL, 10], [10, 10 - 10 * objects3d.FILL]])


def test_turning_the_azimuth_moves_the_front_face_to_the_right():
    cols = np.arange(32) + 0.5

    def centroid(az):
        img = objects3d.render("cube", FRONT_ONLY, 1.0, az, 0.0, 32)
        return (img.sum(0) * cols).sum() / img.sum()

    assert centroid(0.0) == pytest.approx(16.0, abs=0.05)
    # the front face's centre (0, 0, 0.55) goes to x = 0.55 sin(az) on screen
    for az in (30.0, 60.0, -45.0):
        want = 16.0 + 16.0 * objects3d.FILL * 0.55 * math.sin(math.radians(az))
        assert centroid(az) == pytest.approx(want, abs=0.6)
    # the cube's silhouette at elevation 0 is a square whatever the azimuth's multiple of 90°
    sil = [objects3d.render("cube", np.ones(6), 1.0, az, 0.0, 32) > 0 for az in (0.0, 90.0, 180.0)]
    assert (sil[0] == sil[1]).all() and (sil[0] == sil[2]).all()
    # the z-buffer: at azimuth 180 the front face is at the back and invisible
    assert objects3d.render("cube", FRONT_ONLY, 1.0, 180.0, 0.0, 32).max() == 0


def test_shards_are_deterministic_and_never_hold_held_out_azimuths_in_train(tmp_path):
    manifest = small(tmp_path)
    again = small(tmp_path, "p")
    for split in ("train", "test"):
        assert [s["sha256"] for s in again["splits"][split]["shards"]] == [s["sha256"] for s in manifest["splits"][split]["shards"]]
    grid = objects3d.azimuth_grid(30)
    arc = objects3d.heldout_arc(tmp_path / "o")
    assert arc == (60.0, 120.0) and manifest["factors"]["azimuth_deg"]["heldout"] == [60.0, 120.0]
    held = objects3d.in_arc(grid, arc)
    assert held.sum() == 2  # 60° and 90°
    train, test = objects3d.load_views(tmp_path / "o", "train"), objects3d.load_views(tmp_path / "o", "test")
    assert not objects3d.in_arc(train["azimuth_deg"], arc).any()
    assert np.array_equal(train["azimuth_deg"], grid[~held]) and np.array_equal(test["azimuth_deg"], grid)
    assert train["images"].shape == (3, 10, 1, 16, 16) and test["images"].shape == (2, 12, 1, 16, 16)
    assert train["images"].dtype == np.float32 and 0 <= train["images"].min() and train["images"].max() <= 1
    assert manifest["splits"]["train"]["samples"] == 30 and manifest["splits"]["test"]["samples"] == 24
    assert set(train["objects"]).isdisjoint(test["objects"])
    # a stored view is exactly the renderer's output for its object and azimuth
    inst = objects3d.object_instances(5, 0)[3]
    k = int(np.flatnonzero(grid == -90.0)[0])
    want = np.round(objects3d.render(inst["shape"], inst["albedo"], inst["scale"], -90.0, 20, 16) * 255) / 255
    assert np.allclose(test["images"][0, k, 0], want, atol=1e-6)


def test_a_view_with_its_factor_outside_the_declared_range_is_refused(tmp_path):
    manifest = {"dataset": "objects3d", "labels": list(objects3d.SHAPE_NAMES), "image_size": 8,
                "factors": {"azimuth_deg": {"heldout": [0.0, 10.0]}}}
    sample = {"__key__": "o00000_a0000", "image.npy": npy_bytes(np.zeros((8, 8), np.uint8)),
              "json": json.dumps({"object": 0, "shape": "cube", "azimuth_deg": 200.0}).encode()}
    write_shards([("test", sample)], tmp_path / "bad", 10, manifest)
    with pytest.raises(DataError, match="200.0° lies outside the declared range"):
        objects3d.load_views(tmp_path / "bad", "test")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: objects3d.triangles("sphere"), "unknown shape 'sphere'"),
        (lambda: objects3d.render("cube", np.ones(5), 1.0, 0, 0, 16), "6 faces, got 5 albedos"),
        (lambda: objects3d.azimuth_grid(7.0), "must divide 360"),
        (lambda: objects3d.check_heldout(0.0, 350.0, 10.0), "held-out arc"),
        (lambda: objects3d.check_heldout(190.0, 10.0, 10.0), "held-out arc"),
        (lambda: objects3d.check_heldout(95.0, 5.0, 10.0), r"holds no azimuth of the 10.0° grid"),
        (lambda: objects3d.check_heldout(90.0, 0.0, 10.0), r"holds no azimuth"),
        (lambda: objects3d.write_objects3d("unused", objects_train=0, objects_test=1, image_size=16, azimuth_step_deg=30,
                                           elevation_deg=0, heldout_start_deg=0, heldout_width_deg=60, seed=0, shard_size=5), "objects_train"),
        (lambda: objects3d.write_objects3d("unused", objects_train=1, objects_test=1, image_size=18, azimuth_step_deg=30,
                                           elevation_deg=0, heldout_start_deg=0, heldout_width_deg=60, seed=0, shard_size=5), "divisible by 4"),
    ],
)
def test_bad_input_gives_a_clear_error(call, message):
    with pytest.raises(DataError, match=message):
        call()


@pytest.mark.parametrize("step", ["0", "-30", "720"])
def test_a_zero_or_negative_azimuth_step_exits_2_naming_it(tmp_path, capsys, step):
    # 0 had raised a ZeroDivisionError traceback: the step was divided by before it was checked
    from cnninterp.cli import main

    assert main(["transform", "objects3d-data", "--out", str(tmp_path / "o"), "--azimuth-step-deg", step]) == 2
    assert f"azimuth_step_deg must lie in (0, 360] and divide 360, got {float(step)}" in capsys.readouterr().err
    assert not (tmp_path / "o" / "manifest.json").exists()
