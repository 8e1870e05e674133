"""Classification from rotation-invariant features against a classifier of the same size on pixels.

Item 4 of the method asks for classification "from block norms (rotation-invariant features) under
random rotations, against a classifier of the same size on raw pixels". The comparison here keeps
the classifier and its size fixed and changes only what it reads:

- ``block_norms``: the k block norms of e(x) (float (N, k));
- ``pixel_pca``: the images' pixels projected on their first k principal components, the PCA fitted
  on the (rotated) *training* images only — the same number k of inputs, so the same classifier
  has the same number of parameters, (k + 1)·C for C classes;
- ``raw_pixels``: every pixel (S² inputs), a larger classifier, kept as a second reference;
- ``invariant_latent``: the block norms and the identity part of e(x) (the FTL turns only the
  blocks, so in an equivariant encoder the identity part is invariant too), with its own
  same-size twin ``pixel_pca_invariant_latent``. Block norms alone drop the blocks' relative phases
  and the identity part; measured on the digits, that costs more than the invariance gains.

Each is the same pipeline: standardise with the training features' mean and deviation, then a
multinomial logistic regression (L2, C = 1), fitted on training images and scored on test images,
both under random rotations drawn by the caller.
"""

from __future__ import annotations

import numpy as np



class Standardised:
    """Standardise (training mean/deviation), then logistic regression: ``fit(x (N, k), y (N,))``, ``score``."""

    def __init__(self, max_iter: int = 1000):
        from sklearn.linear_model import LogisticRegression

        self.clf = LogisticRegression(max_iter=max_iter)

    def fit(self, x: np.ndarray, y: np.ndarray) -> "Standardised":
        """Fit on float (N, k) features and int (N,) labels; returns self."""
        self.mu, self.sd = x.mean(0), x.std(0) + 1e-6
        self.clf.fit((x - self.mu) / self.sd, y)
        return self

    def score(self, x: np.ndarray, y: np.ndarray) -> float:
        """Accuracy on float (M, k) features and int (M,) labels."""
        return float(self.clf.score((x - self.mu) / self.sd, y))

    @property
    def parameters(self) -> int:
        """Number of fitted weights: coefficients plus intercepts, (k + 1)·C (C = 2 classes: k + 1)."""
        return int(self.clf.coef_.size + self.clf.intercept_.size)


def pca_projection(train_pixels: np.ndarray, k: int):
    """A function mapping float (N, P) pixels to their coordinates (N, k) on the first k principal
    axes of ``train_pixels`` (float (M, P)); fitted on these training pixels only."""
    return pca_projections(train_pixels)(k)


def pca_projections(train_pixels: np.ndarray):
    """Fit the principal axes of ``train_pixels`` (float (M, P)) once; return ``k -> projection``
    (``pca_projection``'s function for the first k axes), ConfigError for an impossible k."""
    from ..errors import ConfigError

    mean = train_pixels.mean(0)
    _, _, vt = np.linalg.svd(train_pixels - mean, full_matrices=False)

    def first(k: int):
        if not 1 <= k <= min(train_pixels.shape):
            raise ConfigError(f"transform: cannot project {train_pixels.shape[1]} pixels of {train_pixels.shape[0]} training "
                              f"images on {k} principal axes; use fewer blocks")
        axes = vt[:k].T
        return lambda pixels: (pixels - mean) @ axes

    return first


PIXEL_TWIN = {"block_norms": "pixel_pca", "invariant_latent": "pixel_pca_invariant_latent"}


def compare(invariant_sets: dict, pixels_train: np.ndarray, pixels_test: np.ndarray,
            y_train: np.ndarray, y_test: np.ndarray, n_classes: int) -> dict:
    """Accuracies of the same classifier on each set of rotation-invariant features, on as many PCA
    pixel features for each (its twin, ``PIXEL_TWIN``), and on all pixels.

    invariant_sets: name (a key of ``PIXEL_TWIN``) -> (train float (N, k), test float (M, k));
    pixels_*: float (N, P) / (M, P); y_*: int labels. Returns {each name and twin, ``raw_pixels``:
    accuracy, ``features``: inputs per classifier, ``parameters``: fitted weights per classifier,
    ``chance``: 1 / n_classes}.
    """
    from ..errors import ConfigError

    unknown = set(invariant_sets) - set(PIXEL_TWIN)
    if unknown:
        raise ConfigError(f"transform: unknown invariant feature sets {sorted(unknown)}; known: {sorted(PIXEL_TWIN)}")
    p_tr, p_te = pixels_train.astype(np.float64), pixels_test.astype(np.float64)
    data = {}
    projections = pca_projections(p_tr)  # one SVD for every twin
    for name, (a, b) in invariant_sets.items():
        project = projections(a.shape[1])
        data[name] = (a, b)
        data[PIXEL_TWIN[name]] = (project(p_tr), project(p_te))
    data["raw_pixels"] = (pixels_train, pixels_test)
    out: dict = {"features": {}, "parameters": {}}
    for name, (a, b) in data.items():
        clf = Standardised().fit(a, y_train)
        out[name] = clf.score(b, y_test)
        out["features"][name] = int(a.shape[1])
        out["parameters"][name] = clf.parameters
    out["chance"] = 1.0 / n_classes
    return out


def invariant_sets(z_train, z_test, layout) -> dict:
    """The FTL latent's rotation-invariant features, z_* float (N, D) -> {``block_norms``: the norm of
    every block of every group (N, Σn_g); ``invariant_latent``: those norms and the identity part
    (N, Σn_g + identity), which the FTL never turns} as float numpy arrays."""
    import torch

    from .metrics import block_norms

    def parts(z):
        norms = torch.cat([block_norms(z, layout, g) for g in range(len(layout.groups))], 1)
        return norms.numpy(), torch.cat([norms, layout.split(z)[1]], 1).numpy()

    (n_tr, i_tr), (n_te, i_te) = parts(z_train), parts(z_test)
    sets = {"block_norms": (n_tr, n_te)}
    if i_tr.shape[1] > n_tr.shape[1]:
        sets["invariant_latent"] = (i_tr, i_te)
    return sets
