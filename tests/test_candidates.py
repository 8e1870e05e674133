"""Candidate pixels: independent of the maps' memory layout, neighbourhoods clamped like the upsampling."""

import numpy as np
import torch

from cnninterp.dissect import candidates as cand
from cnninterp.dissect.quantiles import TopKeeper, threshold_from_top, top_count


def _sorted(c):
    order = torch.argsort(c.ids)
    return c.ids[order], c.values[order]


def test_layouts_give_the_same_candidates():
    acts = torch.randn(3, 5, 7, 6)
    bound = torch.linspace(0.5, 1.5, 5)
    want = _sorted(cand.find(acts, bound))
    layouts = [acts.to(memory_format=torch.channels_last), acts.transpose(2, 3).contiguous().transpose(2, 3), torch.randn(3, 5, 7, 12)[..., ::2]]
    layouts[2].copy_(acts)
    for other in layouts:
        got = _sorted(cand.find(other, bound))
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_neighbourhoods_are_clamped_3x3_windows():
    acts = torch.randn(2, 3, 4, 5)
    c = cand.find(acts, torch.full((3,), -10.0))  # every pixel
    padded = np.pad(acts.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    for k in range(0, c.ids.numel(), 7):
        idx = int(c.ids[k])
        b, u, i, j = np.unravel_index(idx, acts.shape)
        np.testing.assert_array_equal(c.values[k].numpy(), padded[b, u, i : i + 3, j : j + 3].ravel())


def test_running_floor_never_exceeds_the_final_threshold():
    rng = np.random.default_rng(1)
    acts = rng.gamma(0.5, size=(60, 4, 5, 5)).astype(np.float32)
    q = 0.02
    n = acts.shape[0] * 25
    keeper = TopKeeper(top_count(n, q))
    floors = []
    for start in range(0, 60, 6):
        keeper.add(torch.from_numpy(acts[start : start + 6]))
        if keeper.floor is not None:
            floors.append(keeper.floor.clone())
    T = threshold_from_top(keeper.result(), n, q)
    assert floors and all((f.numpy() <= T).all() for f in floors)
    np.testing.assert_allclose(T, np.quantile(acts.transpose(1, 0, 2, 3).reshape(4, -1).astype(np.float64), 1 - q, axis=1), rtol=0, atol=1e-6)
