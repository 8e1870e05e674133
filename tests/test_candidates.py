"""Candidate pixels: independent of the maps' memory layout, neighbourhoods clamped like the upsampling."""

import numpy as np
import torch

from cnninterp.dissect import candidates as cand
from cnninterp.dissect.quantiles import KeyHistogram, ThresholdSearch


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


def test_host_kernels_equal_the_torch_passes():
    """The compiled host passes (``HostLocated``) and the torch passes (``Located``, what runs on
    an accelerator) find the same pixels with the same neighbourhoods and centres, for every layout,
    with ties at the bound, -0.0 and NaN (never found) in the maps."""
    acts = torch.randn(3, 5, 7, 6)
    acts[0, 1, 2, 3], acts[1, 2, 0, 0], acts[2, 4, 6, 5] = float("nan"), -0.0, 0.75
    bound = torch.tensor([0.5, -0.0, 0.75, 1.5, 0.75])
    acts[2, 2, 3, 3] = 0.75  # exactly at its unit's bound: found (>=)
    layouts = [acts, acts.to(memory_format=torch.channels_last), torch.randn(3, 5, 7, 12)[..., ::2]]
    layouts[2].copy_(acts)
    for maps in layouts:
        host, ref = cand.locate(maps, bound), cand.locate_torch(maps, bound)
        assert isinstance(host, cand.HostLocated) and host.count() == ref.count() > 0
        got, want = _sorted(host.candidates()), _sorted(ref.candidates())
        assert torch.equal(got[0], want[0])
        torch.testing.assert_close(got[1], want[1], rtol=0, atol=0, equal_nan=True)  # NaN neighbours
        (hi, hv), (ri, rv) = host.centres(), ref.centres()
        assert torch.equal(hi.sort().values, ri.sort().values) and torch.equal(hv[hi.argsort()], rv[ri.argsort()])
    assert cand.locate(acts, torch.full((5,), float("inf"))).candidates().ids.numel() == 0


def test_neighbourhoods_are_clamped_3x3_windows():
    acts = torch.randn(2, 3, 4, 5)
    c = cand.find(acts, torch.full((3,), -10.0))  # every pixel
    padded = np.pad(acts.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    for k in range(0, c.ids.numel(), 7):
        idx = int(c.ids[k])
        b, u, i, j = np.unravel_index(idx, acts.shape)
        np.testing.assert_array_equal(c.values[k].numpy(), padded[b, u, i : i + 3, j : j + 3].ravel())


def test_running_floor_never_exceeds_the_final_threshold():
    """The histogram's floor after each batch of a subset bounds np.quantile's threshold of the
    whole data from below, so a cache of the values at or above it holds all the merge needs."""
    rng = np.random.default_rng(1)
    acts = rng.gamma(0.5, size=(60, 4, 5, 5)).astype(np.float32)
    q = 0.02
    n = acts.shape[0] * 25
    from_top = ThresholdSearch(n, q, 4).from_top()
    T = np.quantile(acts.transpose(1, 0, 2, 3).reshape(4, -1).astype(np.float64), 1 - q, axis=1)
    hist = KeyHistogram(4)
    floors = []
    for start in range(0, 60, 6):
        hist.add(torch.from_numpy(acts[start : start + 6]))
        floor = hist.floor(from_top)
        if floor is not None:
            floors.append(floor)
    assert len(floors) >= 5 and all((f <= T).all() for f in floors)
    assert (floors[-1] > 0.8 * T).all()  # and is not far below it (13-bit keys: within 1/16)
