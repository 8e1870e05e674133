"""Sparse bilinear evaluation: the active pixels counted cell by cell equal thresholding every pixel."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dissect_reference as ref
from cnninterp.dissect import candidates
from cnninterp.dissect.bilinear import CellGrid, upsample


def counted_active(acts, T, size, bound=None):
    """(pair, y, x) of every pixel the tally counts as active: each pixel gets a label of its own,
    so the label counts of ``CellGrid.count`` are the active mask itself."""
    b, u = acts.shape[:2]
    pixels = np.arange(1, b * size[0] * size[1] + 1, dtype=np.int32)[:, None]
    bits = np.zeros(pixels.shape[0], dtype=np.uint8)
    inter = np.zeros((u, pixels.shape[0] + 1), dtype=np.int64)
    n_active, touched = np.zeros(b * u, dtype=np.int64), np.zeros(b * u, dtype=np.int64)
    found = candidates.find(acts, T if bound is None else bound)
    total = CellGrid(acts.shape[2:], size).count(found.ids.numpy(), found.values.numpy(), acts.shape, T.numpy(), pixels, bits, inter, n_active, touched)
    unit, label = np.nonzero(inter[:, 1:])
    assert (inter[:, 1:] <= 1).all(), "a pixel was counted twice"
    image, rest = label // (size[0] * size[1]), label % (size[0] * size[1])
    pair = image * u + unit
    assert total == len(label) == n_active.sum()
    np.testing.assert_array_equal(np.bincount(pair, minlength=b * u), n_active)
    return set(zip(pair.tolist(), (rest // size[1]).tolist(), (rest % size[1]).tolist()))


def dense_active(acts, T, size, margin=0.0):
    """(pair, y, x) of every upsampled pixel > T + margin, from torch's own bilinear upsampling
    (F.interpolate, align_corners=False) in float64: an oracle independent of the engine."""
    b, u, h, w = acts.shape
    up = F.interpolate(acts.double(), size=size, mode="bilinear", align_corners=False)
    bb, uu, y, x = torch.nonzero(up > T.double().view(1, u, 1, 1) + margin, as_tuple=True)
    return set(zip((bb * u + uu).tolist(), y.tolist(), x.tolist()))


@pytest.mark.parametrize(
    "hw,size",
    [((7, 7), (112, 112)), ((14, 14), (112, 112)), ((56, 56), (112, 112)), ((4, 4), (56, 56)), ((13, 13), (112, 112)), ((5, 3), (20, 17)), ((1, 6), (9, 24)), ((9, 9), (6, 6)), ((8, 8), (8, 8))],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_cells_find_exactly_the_dense_active_pixels(hw, size, seed):
    rng = np.random.default_rng(seed)
    acts = rng.gamma(0.6, size=(3, 5) + hw).astype(np.float32)
    acts[:, 1] = 0.0  # a dead unit whose threshold is 0: nothing exceeds it
    acts[:, 2] = np.round(acts[:, 2] * 2) / 2  # ties at the threshold
    acts[0, 3] = -1.0  # negative maps
    acts = torch.from_numpy(acts)
    T = torch.from_numpy(np.quantile(acts.transpose(0, 1).reshape(5, -1).numpy().astype(np.float64), 0.9, axis=1).astype(np.float32))
    T[4] = acts[:, 4].max()  # a threshold equal to the largest value: nothing is active
    # pixels within float64 rounding of T may go either way between two float64 evaluation orders
    sure, maybe = dense_active(acts, T, size, 1e-9), dense_active(acts, T, size, -1e-9)
    got = counted_active(acts, T, size)
    assert sure <= got <= maybe
    assert len(sure) > 0


def test_definition_matches_torch_and_reference():
    """The float64 definition is torch's bilinear (align_corners=False) up to float32 rounding,
    and the engine's vectorised upsampling equals the reference's per-pixel loop exactly."""
    rng = np.random.default_rng(0)
    for hw, size in [((3, 4), (7, 9)), ((7, 7), (112, 112)), ((13, 5), (112, 40)), ((2, 3), (7, 128)), ((5, 5), (3, 2))]:
        src = rng.normal(size=hw).astype(np.float32)
        mine = upsample(src, size)
        torch_out = F.interpolate(torch.from_numpy(src)[None, None], size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
        np.testing.assert_allclose(mine, torch_out, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(mine, ref.upsample(src, size))
        assert mine.max() <= src.max()  # why cells without a corner above T are skipped exactly


def test_threshold_below_every_value_marks_every_pixel():
    acts = torch.rand(2, 3, 4, 4) + 1.0
    assert len(counted_active(acts, torch.zeros(3), (10, 10))) == 2 * 3 * 100


def test_candidates_at_a_lower_bound_count_the_same_pixels():
    acts = torch.rand(4, 6, 7, 7) ** 3
    T = torch.quantile(acts.transpose(0, 1).reshape(6, -1), 0.97, dim=1)
    at_t = counted_active(acts, T, (56, 56))
    assert at_t == counted_active(acts, T, (56, 56), bound=T * 0.5) and len(at_t) > 0
