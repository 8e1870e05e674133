"""Where a steering model's output is sensitive in the input: the share of the input-gradient mass
that falls on the causal pixels (a check beside the attention's own placement).

Why: an attention cell's receptive field (61 px at the encoder's depth) is much wider than the
cell, so attention that lies on the grass beside the road can still carry the markings' position
to the decoder. The gradient |∂ Σ_t û_t / ∂ pixel| says which pixels actually drive the decision,
whatever the attention looks at, and it applies to the CNN baseline too.
"""

from __future__ import annotations

import numpy as np


def gradient_on_cause(model, frames: np.ndarray, cause: np.ndarray, batch: int = 8) -> dict:
    """Input-gradient mass on the causal pixels: {mass, area_share, ratio}.

    model: an eval-mode steering model (``model(x)["pred"]`` float (B, T) for x float (B, T, 3, H, W)
    in [0, 1]); frames uint8 (S, T, 3, H, W); cause uint8/bool (S, T, H, W). Per frame t of a sequence,
    the saliency is |∂ Σ_t' û_t' / ∂ x_t| summed over the colour channels (float (H, W)), normalised to a
    distribution over the frame's pixels; ``mass`` is its mean share inside the causal mask,
    ``area_share`` the mask's mean share of the frame, ``ratio`` = mass / area_share (1: no more
    sensitive to the cause than to any pixel). Frames with an all-zero gradient count as mass 0.
    """
    import torch

    from .train import to_input

    masses = []
    for s in range(0, len(frames), batch):
        x = to_input(frames[s : s + batch]).requires_grad_(True)
        (grad,) = torch.autograd.grad(model(x)["pred"].sum(), x)
        g = grad.abs().sum(dim=2).double().numpy()  # (B, T, H, W)
        total = g.sum(axis=(2, 3))
        inside = (g * cause[s : s + batch].astype(np.float64)).sum(axis=(2, 3))
        masses.append(np.where(total > 0, inside / np.where(total > 0, total, 1.0), 0.0).ravel())
    mass = float(np.concatenate(masses).mean())
    share = float(cause.astype(np.float64).mean())
    return {"mass": mass, "area_share": share, "ratio": mass / share if share > 0 else float("nan")}
