"""The synthetic parts dataset: ground truth agrees with the pixels, shards are deterministic and
readable by the dissection engine's Broden decoder."""

import numpy as np
import pytest

from cnninterp.data import parts
from cnninterp.errors import DataError


def test_shape_centre_of_a_square_and_a_triangle():
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]], float)
    assert np.allclose(parts.shape_centre(square), [1, 1])
    tri = np.array([[0, 0], [3, 0], [0, 3]], float)
    assert np.allclose(parts.shape_centre(tri), [1, 1])


def test_pose_matrix_rotates_counter_clockwise_on_screen_and_flips():
    m = parts.pose_matrix(10, 20, 2.0, np.pi / 2, False)
    # +x in the object frame turns to screen "up" (−y) under a counter-clockwise quarter turn
    assert np.allclose(m @ [1, 0, 1], [10, 18])
    m = parts.pose_matrix(0, 0, 1.0, 0.0, True)
    assert np.allclose(m @ [1, 0, 1], [-1, 0])


def test_rendered_landmarks_lie_on_their_part_and_positives_hold_every_part():
    hits = total = 0
    for i in range(40):
        r = parts.render(np.random.default_rng([3, i]), 48, positive=bool(i % 2))
        assert r["image"].dtype == np.uint8 and r["image"].shape == (48, 48, 3)
        assert r["seg"].shape == (48, 48) and r["seg"].dtype == np.uint16
        if r["cls"] == 1:
            assert r["visible"].sum() >= 3
        else:
            assert 1 <= np.isfinite(r["landmarks"][:, 0]).sum() <= 2
        for p in np.flatnonzero(r["visible"]):
            x, y = r["landmarks"][p]
            assert (r["seg"] == p + 1).any()
            # the centroid of a convex part is inside it: the label there is that part unless a later part covers it
            total += 1
            hits += int(r["seg"][int(y), int(x)] == p + 1)
    assert hits / total > 0.8


def test_part_colours_are_where_the_masks_say(tmp_path):
    r = parts.render(np.random.default_rng(5), 64, positive=True)
    body = r["seg"] == parts.PARTS.index("body") + 1
    mean = r["image"][body].mean(0)
    assert mean[2] > mean[0] + 60  # the body is blue


def test_write_is_deterministic_and_loads_back(tmp_path):
    kw = dict(splits={"train": 12, "test": 6}, image_size=32, positive_fraction=0.5, seed=1, shard_size=5)
    a = parts.write_parts(tmp_path / "a", **kw)
    b = parts.write_parts(tmp_path / "b", **kw)
    assert a["splits"] == b["splits"]
    assert a["parts"] == list(parts.PARTS) and a["categories"] == ["part"]
    assert [lab["number"] for lab in a["labels"]] == [1, 2, 3, 4, 5]
    d = parts.load_split(tmp_path / "a", "test")
    assert d["images"].shape == (6, 32, 32, 3) and d["landmarks"].shape == (6, 5, 2) and d["visible"].shape == (6, 5)
    assert set(d["labels"].tolist()) <= {0, 1}
    # the same image as rendering it directly
    salt = int.from_bytes(b"test", "little")
    rng = np.random.default_rng([1, salt, 2])
    r = parts.render(rng, 32, positive=bool(rng.random() < 0.5))
    assert np.array_equal(d["images"][2], r["image"]) and np.array_equal(d["seg"][2], r["seg"])
    assert np.allclose(np.nan_to_num(d["landmarks"][2], nan=-1), np.nan_to_num(r["landmarks"], nan=-1), atol=1e-3)


def test_shards_decode_as_broden_samples(tmp_path):
    from cnninterp.data.broden_shards import iter_broden
    from cnninterp.data.shards import shard_paths
    from cnninterp.dissect.engine import vocabulary
    from cnninterp.data.shards import read_manifest

    parts.write_parts(tmp_path, splits={"probe": 4}, image_size=32, positive_fraction=0.5, seed=0, shard_size=10)
    samples = list(iter_broden(shard_paths(tmp_path)))
    assert len(samples) == 4 and samples[0]["seg"].shape == (1, 32, 32) and samples[0]["image"].shape == (32, 32, 3)
    vocab = vocabulary(read_manifest(tmp_path))
    assert vocab["categories"] == ["part"] and list(vocab["names"][1:]) == list(parts.PARTS)


@pytest.mark.parametrize("kw", [dict(image_size=8), dict(positive_fraction=1.0), dict(splits={"tr-1": 3})])
def test_bad_settings_are_refused(tmp_path, kw):
    base = dict(splits={"train": 3}, image_size=32, positive_fraction=0.5, seed=0, shard_size=5)
    with pytest.raises(DataError):
        parts.write_parts(tmp_path, **{**base, **kw})
    assert not (tmp_path / "manifest.json").exists()
