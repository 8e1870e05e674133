"""The invariant-classifier comparison: the same classifier, of the same size, on block norms and on as many pixel features."""

import numpy as np
import pytest

from cnninterp.errors import ConfigError
from cnninterp.transform import invariant


def blobs(rng, n, classes, dim, spread):
    """Labels (n,) and features (n, dim): class c centred at c·spread on every axis, unit noise."""
    y = rng.integers(0, classes, n)
    return y, y[:, None] * spread + rng.normal(size=(n, dim))


def test_block_norm_and_pca_pixel_classifiers_have_the_same_parameter_count():
    rng = np.random.default_rng(0)
    k, pixels, classes = 5, 36, 4
    y_tr, b_tr = blobs(rng, 300, classes, k, 3.0)
    y_te, b_te = blobs(rng, 200, classes, k, 3.0)
    p_tr, p_te = rng.normal(size=(300, pixels)), rng.normal(size=(200, pixels))
    out = invariant.compare({"block_norms": (b_tr, b_te)}, p_tr, p_te, y_tr, y_te, n_classes=classes)
    assert out["features"] == {"block_norms": k, "pixel_pca": k, "raw_pixels": pixels}
    assert out["parameters"]["block_norms"] == out["parameters"]["pixel_pca"] == (k + 1) * classes
    assert out["parameters"]["raw_pixels"] == (pixels + 1) * classes
    # the features carry the truth: separable block features, pixels of pure noise
    assert out["block_norms"] > 0.95
    assert out["pixel_pca"] < 0.25 + 0.12 and out["raw_pixels"] < 0.25 + 0.12
    assert out["chance"] == 0.25


def test_pca_projection_is_fitted_on_the_training_pixels_only():
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.normal(size=(20, 2)))[0]  # two orthonormal pixel patterns
    coords = rng.normal(size=(100, 2)) * [3.0, 1.0]
    train = 5.0 + coords @ basis.T
    project = invariant.pca_projection(train, 2)
    # the training images lie in a plane: its 2 coordinates keep all distances between them
    got = project(train)
    d_got = np.linalg.norm(got[:, None] - got[None], axis=-1)
    d_true = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    assert np.allclose(d_got, d_true, atol=1e-9)
    # a test image off that plane is projected on the training axes, not refitted: its coordinates
    # have the norm of its offset's component in the known plane (basis is orthonormal), and
    # fitting on the training images plus it would give other coordinates
    off = 5.0 + rng.normal(size=(1, 20)) * 4
    in_plane = (off - train.mean(0)) @ basis
    assert np.allclose(np.linalg.norm(project(off)), np.linalg.norm(in_plane), atol=1e-9)
    refitted = invariant.pca_projection(np.concatenate([train, off]), 2)
    assert not np.allclose(np.linalg.norm(refitted(off)), np.linalg.norm(in_plane), atol=1e-3)
    with pytest.raises(ConfigError, match="principal axes"):
        invariant.pca_projection(train, 21)


def test_each_invariant_set_gets_a_pixel_twin_of_its_own_size():
    import torch

    from cnninterp.models import ftl

    rng = np.random.default_rng(2)
    layout = ftl.BlockLayout(groups=((3, 2), (2, 2)), latent_dim=14)
    z_tr, z_te = torch.randn(120, 14, dtype=torch.float64), torch.randn(80, 14, dtype=torch.float64)
    sets = invariant.invariant_sets(z_tr, z_te, layout)
    # norms of 3 + 2 blocks; then the 4 identity dimensions, untouched
    assert np.allclose(sets["block_norms"][0][:, 3], z_tr[:, 6:8].norm(dim=1).numpy())
    assert np.array_equal(sets["invariant_latent"][1][:, 5:], z_te[:, 10:].numpy())
    y_tr, y_te = rng.integers(0, 3, 120), rng.integers(0, 3, 80)
    out = invariant.compare(sets, rng.normal(size=(120, 30)), rng.normal(size=(80, 30)), y_tr, y_te, n_classes=3)
    assert out["features"] == {"block_norms": 5, "pixel_pca": 5, "invariant_latent": 9, "pixel_pca_invariant_latent": 9, "raw_pixels": 30}
    assert out["parameters"]["invariant_latent"] == out["parameters"]["pixel_pca_invariant_latent"] == 10 * 3
    with pytest.raises(ConfigError, match="unknown invariant feature sets"):
        invariant.compare({"phases": sets["block_norms"]}, np.zeros((120, 30)), np.zeros((80, 30)), y_tr, y_te, n_classes=3)
