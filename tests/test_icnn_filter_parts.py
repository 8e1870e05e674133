"""What the filters became: the part under each filter's peak, the per-part summary, the parts' sizes,
on constructed maps and masks with hand-counted answers."""

import numpy as np
import pytest

from cnninterp.icnn.evaluate import filter_part_summary, part_statistics
from cnninterp.icnn.locate import filter_instability, filter_roles, peak_parts

PARTS = ["head", "body"]


def scene(n_images=6, size=24, n=6):
    """Images (stride 4) with a head square at rows [dy, dy + 4), cols [dx, dx + 4) and a body square at rows
    [8, 16), cols [8 + dx, 16 + dx), dx = 4·(i mod 2), dy = 4·(i mod 3 == 0); filter 0 peaks on the head's
    cell, filter 1 on the body's (the cell holding its landmark), filter 2 on the empty cell (0, 5)."""
    seg = np.zeros((n_images, size, size), np.uint16)
    maps = np.zeros((n_images, 3, n, n), np.float32)
    landmarks = np.zeros((n_images, 2, 2))
    for i in range(n_images):
        dx, dy = 4 * (i % 2), 4 * (i % 3 == 0)
        seg[i, dy : dy + 4, dx : dx + 4] = 1
        seg[i, 8:16, 8 + dx : 16 + dx] = 2
        landmarks[i] = [[2 + dx, 2 + dy], [14 + dx, 14]]
        maps[i, 0, dy // 4, dx // 4] = maps[i, 1, 3, 3 + dx // 4] = maps[i, 2, 0, 5] = i + 1
    return seg, maps, landmarks, np.ones((n_images, 2), bool)


def test_peak_parts_reads_the_mask_at_each_inferred_location():
    seg, maps, landmarks, visible = scene()
    seg[0][seg[0] == 1] = 0  # on image 0 the head is missing: filter 0's peak there is on no part
    inst = filter_instability(maps, landmarks, visible, np.ones(6, bool), 24, top=6, best=2)
    got = peak_parts(inst["inferred"], inst["chosen"], seg, 2)
    assert got["counts"].tolist() == [[1, 5, 0], [0, 0, 6], [6, 0, 0]]
    assert got["label"].tolist() == [1, 2, 0]
    assert np.allclose(got["share"], [5 / 6, 1.0, 1.0])


def test_filter_part_summary_counts_best_landmarks_peaks_and_roles():
    seg, maps, landmarks, visible = scene()
    maps[:, 2] = 0  # filter 2 is dead: its argmax is the first cell, centre (2, 2)
    inst = filter_instability(maps, landmarks, visible, np.ones(6, bool), 24, top=6, best=2)
    roles = np.array([1, 1, 0])
    summary = filter_part_summary(inst, seg, PARTS, roles)
    # filters 0 and 1 sit exactly on their landmark (instability 0); the other part moves against them
    assert [f["best_landmark"] for f in summary["per_filter"]][:2] == ["head", "body"]
    assert summary["per_filter"][0]["instability"] > 0  # the mean over both landmarks (best=2)
    # (2, 2) lies on the head where dx = dy = 0 (images 2, 4), on no part on the other four
    assert summary["per_filter"][2]["under_peak"] == "none" and summary["per_filter"][2]["under_peak_share"] == round(4 / 6, 4)
    assert summary["under_peak"] == {"none": 1, "head": 1, "body": 1}
    # pooled over the object filters 0 and 1: 6 head peaks, 6 body peaks
    assert summary["under_peak_share"] == {"none": 0.0, "head": 0.5, "body": 0.5}
    assert summary["roles"] == {"dead": 1, "object": 2, "negative": 0}
    by_role = summary["location_instability_by_role"]
    assert by_role["object"] == inst["per_filter"][:2].mean() and by_role["dead"] == inst["per_filter"][2] and by_role["negative"] is None
    per_filter = [f["best_landmark"] for f in summary["per_filter"]]
    assert {p: c for p, c in summary["best_landmark"].items() if c} == {p: per_filter.count(p) for p in set(per_filter)}
    assert summary["distinct_best_landmarks"] == len(set(per_filter)) >= 2  # head and body at least


def test_filter_roles_dead_object_and_negative_preferring():
    maps = np.zeros((4, 4, 2, 2), np.float32)  # images 0, 1 objects; 2, 3 negatives
    maps[:, 0, 0, 0] = [0.001, 0.0, 5.0, 5.0]  # tiny on objects (below 1% of the largest peak, 10): dead
    maps[:, 1, 1, 1] = [10.0, 8.0, 1.0, 0.0]  # higher on objects
    maps[:, 2, 0, 1] = [2.0, 2.0, 3.0, 1.5]  # mean peak 2.0 on objects, 2.25 on negatives
    maps[:, 3, 1, 0] = [0.2, 0.0, 0.0, 0.0]  # 2% of the largest peak: alive, and higher on objects
    objects = np.array([True, True, False, False])
    assert filter_roles(maps, objects).tolist() == [0, 1, 2, 1]


def test_filter_roles_and_the_evaluation_refuse_a_test_split_without_one_class(tmp_path):
    # every live filter had become "negative-preferring" (a mean over no negatives is NaN) with numpy warnings
    from cnninterp.data.parts import write_parts
    from cnninterp.errors import DataError
    from cnninterp.icnn.evaluate import evaluate

    maps = np.random.default_rng(0).random((5, 4, 3, 3)).astype(np.float32)
    for objects in (np.ones(5, bool), np.zeros(5, bool)):
        with pytest.raises(DataError, match=rf"{int(objects.sum())} object and {int((~objects).sum())} negative images"):
            filter_roles(maps, objects)
    write_parts(tmp_path / "parts", splits={"test": 3}, image_size=16, positive_fraction=0.999, seed=0, shard_size=10)
    with pytest.raises(DataError, match=rf"{tmp_path / 'parts'}: the test split holds 3 object and 0 negative images"):
        evaluate(tmp_path / "parts", tmp_path / "probe", {"icnn": tmp_path / "i.pt", "cnn": tmp_path / "c.pt"}, tmp_path / "eval/metrics.json",
                 top_images=2, quantile=0.02, iou_threshold=0.04, figure_rows=1, figure_cols=1)
    assert not (tmp_path / "eval").exists()


def test_part_statistics_share_and_visibility_by_hand():
    seg, _, _, visible = scene(n_images=3)
    visible[1, 0] = False
    objects = np.array([True, True, False])
    stats = part_statistics(seg, visible, objects, PARTS)
    # head 16 px, body 64 px: shares 0.2 and 0.8 on each object image (the squares do not overlap)
    assert stats["area_share"] == {"head": 0.2, "body": 0.8}
    assert stats["visible"] == {"head": 0.5, "body": 1.0}
