"""Templates and filter loss of Interpretable CNNs (cnninterp.icnn.loss)."""

import math

import numpy as np
import torch

from cnninterp.icnn.loss import argmax_mask, filter_loss, priors, templates


def _paper_templates(n):
    """(n² + 1, n, n) float64 numpy: Zhang et al.'s templates typed from the paper, by loops:
    T⁺_μ[i, j] = τ·max(1 − β·(|i − μ_i| + |j − μ_j|)/n, −1) (L1 distance), μ = (k // n, k % n),
    τ = 0.5/n², β = 4; the last one T⁻ = −τ."""
    tau = 0.5 / n**2
    out = np.full((n * n + 1, n, n), -tau)
    for k in range(n * n):
        mi, mj = divmod(k, n)
        for i in range(n):
            for j in range(n):
                out[k, i, j] = tau * max(1 - 4 * (abs(i - mi) + abs(j - mj)) / n, -1)
    return out


def test_template_shapes_and_values():
    n = 6
    t = templates(n)
    tau = 0.5 / n**2
    assert t.shape == (n * n + 1, n, n)
    k = 2 * n + 3  # μ = (2, 3)
    assert math.isclose(float(t[k, 2, 3]), tau, rel_tol=1e-6)
    assert math.isclose(float(t[k, 2, 4]), tau * (1 - 4 / n), rel_tol=1e-6)
    # diagonal neighbour μ + (1, 1): ‖(1, 1)‖₁ = 2, t = τ(1 − 2β/n) = −τ/3 (L∞ would give +τ/3)
    assert math.isclose(float(t[k, 3, 4]), tau * (1 - 2 * 4 / n), rel_tol=1e-6)
    assert math.isclose(float(t[k, 3, 4]), -tau / 3, rel_tol=1e-6)
    # μ + (1, −2): ‖·‖₁ = 3, t = τ(1 − 12/6) = −τ (clamp reached exactly); L∞ 2 gives −τ/3
    assert math.isclose(float(t[k, 3, 1]), -tau, rel_tol=1e-6)
    assert math.isclose(float(t[k, 5, 0]), -tau, rel_tol=1e-6)  # far away: clamped at −τ
    assert torch.allclose(t[-1], torch.full((n, n), -tau))


def test_templates_equal_the_paper_formula_everywhere():
    for n in (3, 5, 6):
        np.testing.assert_allclose(templates(n, dtype=torch.float64).numpy(), _paper_templates(n), rtol=0, atol=1e-15)


def test_priors_sum_to_one():
    p = priors(7, dtype=torch.float64)
    assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-12)
    assert torch.allclose(p, torch.full_like(p, 1 / 50))


def test_mask_at_argmax():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 1, 4] = 3.0
    x[0, 0, 1, 3] = 1.0
    y = argmax_mask(x)
    assert float(y[0, 0, 1, 4]) == 3.0
    assert math.isclose(float(y[0, 0, 1, 3]), 1.0 * (1 - 4 / 5), rel_tol=1e-6)
    # the paper's max(x ∘ T, 0) on any float map: a negative x under a negative template part
    # (μ̂ = (1, 4), pixel (3, 1): ‖(2, 3)‖₁ = 5, t/τ = max(1 − 4·5/5, −1) = −1) gives +|x|
    x[0, 0, 3, 1] = -2.0
    assert math.isclose(float(argmax_mask(x)[0, 0, 3, 1]), 2.0, rel_tol=1e-6)


def _brute_mi(x, positive):
    """float64 −MI by direct loops (numpy), the oracle (templates and priors from the paper)."""
    b, c, n, _ = x.shape
    t = _paper_templates(n)  # built from the paper's formula, not by the code under test
    pt = np.full(n * n + 1, 1.0 / (1 + n * n))  # α/n² = 1 − α = 1/(1 + n²) with α = n²/(1 + n²)
    k = t.shape[0]
    total = 0.0
    for ci in range(c):
        s = np.array([[np.sum(x[bi, ci] * t[ki]) for ki in range(k)] for bi in range(b)])
        z = np.exp(s).sum(axis=0)
        pxt = np.exp(s) / z
        px = (pxt * pt).sum(axis=1)
        mi = 0.0
        for ki in range(k):
            for bi in range(b):
                if positive is not None and (positive[bi, ci] != (ki < k - 1)):
                    continue
                mi += pt[ki] * pxt[bi, ki] * math.log(pxt[bi, ki] / px[bi])
        total += -mi
    return total / c


def test_loss_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 2, 3, 3, generator=g, dtype=torch.float64) * 20
    pos = torch.tensor([[True, False], [True, True], [False, False], [False, True]])
    for p in (pos, None):
        got = float(filter_loss(x, p))
        want = _brute_mi(x.numpy(), None if p is None else p.numpy())
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)


def test_part_map_beats_scattered_map():
    """Each image's map is one positive template (its own μ); the scattered maps have the same
    L2 energy spread over random positions. (Maps identical over the whole batch give MI = 0
    by construction of Z_T over the batch, so the part maps differ in μ.)"""
    n, b = 6, 8
    g = torch.Generator().manual_seed(1)
    t = templates(n)
    part = torch.stack([torch.relu(t[k]) for k in range(0, b * 4, 4)]).unsqueeze(1) * 2000.0
    scattered = torch.zeros_like(part)
    for i in range(b):
        idx = torch.randperm(n * n, generator=g)[:6]
        scattered[i, 0].view(-1)[idx] = torch.rand(6, generator=g) + 0.5
    scattered = scattered * (part.norm() / scattered.norm())
    positive = torch.ones(b, 1, dtype=torch.bool)
    assert float(filter_loss(part, positive)) < float(filter_loss(scattered, positive))


def test_finite_for_zero_and_huge_maps():
    positive = torch.tensor([[True], [False], [True]])
    for scale in (0.0, 1e6):
        x = (torch.rand(3, 1, 4, 4) * scale).requires_grad_(True)
        loss = filter_loss(x, positive)
        loss.backward()
        assert torch.isfinite(loss)
        assert torch.isfinite(x.grad).all()
