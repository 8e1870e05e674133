"""The two networks, the filter-to-category rule, training through the shared loop, and locating filters."""

import math

import numpy as np
import pytest
import torch

from cnninterp.icnn import locate
from cnninterp.icnn.model import NetSpec, assign_filters, build, positives


def test_networks_are_identical_but_for_the_mask():
    torch.manual_seed(0)
    a = build(NetSpec(interpretable=True, image_size=32, channels=4, filters=6))
    torch.manual_seed(0)
    b = build(NetSpec(interpretable=False, image_size=32, channels=4, filters=6))
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    x = torch.randn(3, 3, 32, 32)
    logits, maps = a.eval().forward_maps(x)
    assert logits.shape == (3, 2) and maps.shape == (3, 6, 8, 8) and (maps >= 0).all()
    _, maps_b = b.eval().forward_maps(x)
    assert torch.equal(maps, maps_b)  # same weights: the same filter maps, only the mask differs
    assert not torch.allclose(a(x), b(x))


def test_interpretable_mask_keeps_the_peak_and_silences_far_cells():
    net = build(NetSpec(interpretable=True, image_size=32, channels=2, filters=1)).eval()
    maps = torch.ones(1, 1, 8, 8)
    maps[0, 0, 1, 2] = 5.0
    masked = net.mask(maps)
    assert masked[0, 0, 1, 2] == 5.0
    # far from the peak (L1 distance >= n/β · 1 = 2) the template is <= 0, so ReLU leaves 0
    assert masked[0, 0, 7, 7] == 0 and masked[0, 0, 1, 4] == 0
    assert masked[0, 0, 1, 3] == pytest.approx(1 - 4 * 1 / 8)


def test_bad_image_size_is_refused():
    from cnninterp.errors import ConfigError

    with pytest.raises(ConfigError, match="multiple of 4"):
        build(NetSpec(interpretable=True, image_size=30))


def test_filter_assignment_rule():
    assert assign_filters(4, 2).tolist() == [1, 1, 1, 1]
    assert assign_filters(5, 3).tolist() == [1, 2, 1, 2, 1]
    pos = positives(torch.tensor([0, 1, 2]), assign_filters(2, 3))
    assert pos.tolist() == [[False, False], [True, False], [False, True]]


def test_argmax_points_map_cells_to_receptive_field_centres():
    maps = np.zeros((1, 2, 4, 4))
    maps[0, 0, 0, 0] = 1
    maps[0, 1, 2, 3] = 1  # row 2, column 3
    pts = locate.argmax_points(maps, 16)  # stride 4
    assert pts[0, 0].tolist() == [2.0, 2.0] and pts[0, 1].tolist() == [14.0, 10.0]


def test_top_images_are_the_highest_peaks_among_candidates():
    maps = np.zeros((5, 1, 2, 2))
    for i, v in enumerate([3, 9, 7, 8, 1]):
        maps[i, 0, 1, 1] = v
    chosen = locate.top_images(maps, np.array([True, False, True, True, True]), 2)
    assert chosen.tolist() == [[3, 2]]


def test_filter_at_its_landmark_scores_zero_and_a_fixed_filter_the_hand_std():
    rng = np.random.default_rng(0)
    n, size, m = 4, 16, 30
    cells = rng.integers(0, n, (m, 2))  # (row, col) of landmark 0 per image
    landmarks = np.zeros((m, 2, 2))
    landmarks[:, 0] = (cells[:, ::-1] + 0.5) * 4  # landmark 0 sits at a cell centre, (x, y)
    landmarks[:, 1] = rng.uniform(0, size, (m, 2))
    maps = np.zeros((m, 2, n, n))
    maps[np.arange(m), 0, cells[:, 0], cells[:, 1]] = 1 + rng.random(m)  # filter 0 follows landmark 0
    maps[:, 1, 0, 0] = 1 + rng.random(m)  # filter 1 always fires at cell (0, 0) -> point (2, 2)
    visible = np.ones((m, 2), bool)
    out = locate.filter_instability(maps, landmarks, visible, np.ones(m, bool), size, top=m, best=1)
    assert out["per_filter"][0] == 0.0 and out["best_landmark"][0] == 0
    d = np.linalg.norm(landmarks - np.array([2.0, 2.0]), axis=-1)  # (m, 2)
    expected = min(d[:, 0].std(), d[:, 1].std()) / (size * math.sqrt(2))
    assert out["per_filter"][1] == pytest.approx(expected)
    both = locate.filter_instability(maps, landmarks, visible, np.ones(m, bool), size, top=m, best=2)
    assert both["per_filter"][1] == pytest.approx((d[:, 0].std() + d[:, 1].std()) / 2 / (size * math.sqrt(2)))
