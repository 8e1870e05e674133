"""Location instability against hand computations."""

import math

import numpy as np

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
