"""What the filters became: the part under each filter's peak, the per-part summary, the parts' sizes,
on constructed maps and masks with hand-counted answers."""

import numpy as np

from cnninterp.icnn.evaluate import filter_part_summary, part_statistics
from cnninterp.icnn.locate import filter_instability, peak_parts

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


def test_filter_part_summary_counts_best_landmarks_and_peaks():
    seg, maps, landmarks, visible = scene()
    inst = filter_instability(maps, landmarks, visible, np.ones(6, bool), 24, top=6, best=2)
    summary = filter_part_summary(inst, seg, PARTS)
    # filters 0 and 1 sit exactly on their landmark (instability 0); the other part moves against them
    assert [f["best_landmark"] for f in summary["per_filter"]][:2] == ["head", "body"]
    assert summary["per_filter"][0]["instability"] > 0  # the mean over both landmarks (best=2)
    assert summary["under_peak"] == {"none": 1, "head": 1, "body": 1}
    assert sum(summary["best_landmark"].values()) == 3 and summary["distinct_best_landmarks"] >= 2
    assert summary["per_filter"][2]["under_peak"] == "none" and summary["per_filter"][2]["under_peak_share"] == 1.0


def test_part_statistics_share_and_visibility_by_hand():
    seg, _, _, visible = scene(n_images=3)
    visible[1, 0] = False
    objects = np.array([True, True, False])
    stats = part_statistics(seg, visible, objects, PARTS)
    # head 16 px, body 64 px: shares 0.2 and 0.8 on each object image (the squares do not overlap)
    assert stats["area_share"] == {"head": 0.2, "body": 0.8}
    assert stats["visible"] == {"head": 0.5, "body": 1.0}
