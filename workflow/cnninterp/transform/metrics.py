"""Pure metrics of equivariance: the FTL's equivariance error, angle recovery from latents, chance level.

Definitions (z = e(x) (B, D), z_θ = e(x_θ) (B, D), blocks b_i, b'_i the 2-vectors of group 0):

- equivariance error: mean over samples of ‖e(x_θ) − F_θ e(x)‖ / ‖e(x)‖;
- recovered angle: arg Σ_i conj(b_i)·b'_i, with each 2-block read as a complex number, i.e. the
  norm-weighted circular mean of the per-block atan2 differences;
- angle error: |wrap(θ̂ − θ)| in degrees, wrap to (−180°, 180°]; a guess uniform on the circle
  has expected error 90° whatever θ is (the chance level).
"""

from __future__ import annotations

import math

from ..models import ftl

CHANCE_ANGLE_ERROR_DEG = 90.0


def equivariance_error(z, z_theta, theta, layout: ftl.BlockLayout) -> float:
    """Mean ‖z_θ − F_θ z‖ / ‖z‖: z, z_theta float (B, D), theta radians (B,) for a one-group
    layout or (B, G), one angle per group."""
    from ..errors import ModelError

    theta = theta[:, None] if theta.dim() == 1 else theta
    if theta.dim() != 2 or theta.shape[1] != len(layout.groups):
        raise ModelError(f"equivariance_error: one angle per sample and group expected, shape (batch, {len(layout.groups)}), got {tuple(theta.shape)}")
    turned = ftl.transform(z, layout, [ftl.rotation_2d(theta[:, g]) for g in range(theta.shape[1])])
    return float(((z_theta - turned).norm(dim=1) / z.norm(dim=1).clamp_min(1e-12)).mean())


def group_equivariance_error(z, z_theta, theta, layout: ftl.BlockLayout, group: int = 0) -> float:
    """Mean ‖b_θ − R(θ) b‖ / ‖b‖ over samples, b and b_θ the blocks of group ``group`` of z and z_θ
    (float (B, D)), theta (B,) radians for that group. Unlike ``equivariance_error`` it cannot be
    made small by keeping the latent's norm in the identity part."""
    import torch

    a, _ = layout.split(z)
    b, _ = layout.split(z_theta)
    a, b = a[group], b[group]  # (B, n, 2)
    turned = torch.einsum("bij,bnj->bni", ftl.rotation_2d(theta), a)
    diff = (b - turned).flatten(1).norm(dim=1)
    return float((diff / a.flatten(1).norm(dim=1).clamp_min(1e-12)).mean())


def recover_angle(z, z_theta, layout: ftl.BlockLayout, group: int = 0):
    """The angle (radians, (B,)) that turns the blocks of z (B, D) into those of z_theta (B, D)."""
    import torch

    from ..errors import ModelError

    if z.shape != z_theta.shape:
        raise ModelError(f"recover_angle: latents of different shapes {tuple(z.shape)} and {tuple(z_theta.shape)}")
    a, _ = layout.split(z)
    b, _ = layout.split(z_theta)
    a, b = a[group], b[group]
    if a.shape[-1] != 2:
        raise ModelError(f"recover_angle needs 2-D blocks; group {group} has blocks of size {a.shape[-1]}")
    # conj(a) * b summed over blocks: real = a·b, imag = a × b
    re = (a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1]).sum(-1)
    im = (a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]).sum(-1)
    return torch.atan2(im, re)


def angle_error_deg(estimate, truth) -> float:
    """Mean |wrap(estimate − truth)| in degrees; estimate, truth float (B,) radians."""
    import torch

    diff = torch.remainder(estimate - truth + math.pi, 2 * math.pi) - math.pi
    return float(diff.abs().mean() * 180.0 / math.pi)


def block_norms(z, layout: ftl.BlockLayout, group: int = 0):
    """Rotation-invariant features: the norm of each block of group ``group``, z (B, D) -> (B, n_g)."""
    blocks, _ = layout.split(z)
    return blocks[group].norm(dim=-1)


def latent_share(z, layout: ftl.BlockLayout) -> list[float]:
    """Share of the squared latent norm Σ‖z‖² held by each block group, then the identity part:
    z (B, D) -> [share_0, ..., share_{G−1}, share_identity], summing to 1. A group with a tiny share
    can meet a whole-latent equivariance measure without turning with the image."""
    blocks, rest = layout.split(z)
    total = float((z**2).sum()) or 1.0
    return [float((b**2).sum()) / total for b in blocks] + [float((rest**2).sum()) / total]
