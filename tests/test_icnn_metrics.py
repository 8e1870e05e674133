"""Location instability against hand computations."""

import math

import numpy as np
import pytest

from cnninterp.icnn.metrics import location_instability


def test_always_at_landmark_scores_zero():
    rng = np.random.default_rng(0)
    lm = rng.uniform(0, 64, size=(3, 20, 2, 2))
    inferred = lm[:, :, 0, :].copy()
    vis = np.ones((3, 20, 2), bool)
    assert location_instability(inferred, lm, vis, diagonal=64 * math.sqrt(2)) == 0.0


def test_uniform_random_matches_analytic_std():
    # landmark at x=0; inferred x uniform on [0, W], same y: distance ~ U(0, W), std = W/sqrt(12)
    rng = np.random.default_rng(1)
    w, m = 64.0, 200_000
    inferred = np.stack([rng.uniform(0, w, m), np.full(m, 10.0)], axis=-1)[None]
    lm = np.zeros((1, m, 1, 2))
    lm[..., 1] = 10.0
    vis = np.ones((1, m, 1), bool)
    diag = w * math.sqrt(2)
    got = location_instability(inferred, lm, vis, diagonal=diag)
    assert math.isclose(got, (w / math.sqrt(12)) / diag, rel_tol=0.01)


def test_a_hidden_landmark_is_left_out_of_the_std():
    # the filter sits at (10, 10) on its 4 top images; the landmark is there on images 0-2 and
    # hidden on image 3, where its (meaningless) coordinates are (60, 60): std of 0, 0, 0 -> 0.0
    inferred = np.full((1, 4, 2), 10.0)
    lm = np.full((1, 4, 1, 2), 10.0)
    lm[0, 3, 0] = 60.0
    vis = np.ones((1, 4, 1), bool)
    vis[0, 3, 0] = False
    assert location_instability(inferred, lm, vis, diagonal=64 * math.sqrt(2)) == 0.0


def test_a_landmark_seen_on_one_image_is_not_scored():
    # landmark 0 drifts (distances 0, 10, 20, 30 px); landmark 1 coincides with the filter but is
    # visible on image 0 only: it has no spread to measure, so the best part is landmark 0
    inferred = np.full((1, 4, 2), 10.0)
    lm = np.full((1, 4, 2, 2), 10.0)
    lm[0, :, 0, 0] = [10.0, 20.0, 30.0, 40.0]
    vis = np.ones((1, 4, 2), bool)
    vis[0, 1:, 1] = False
    want = np.std([0.0, 10.0, 20.0, 30.0]) / (64 * math.sqrt(2))  # 11.18 px / 90.51 px = 0.1235
    assert location_instability(inferred, lm, vis, diagonal=64 * math.sqrt(2), best=1) == pytest.approx(want, rel=1e-12)
    # seen on no two images at all: no score, an error rather than a made-up 0
    with pytest.raises(ValueError, match="two or more"):
        location_instability(inferred, lm[:, :, 1:], vis[:, :, 1:], diagonal=64 * math.sqrt(2))
