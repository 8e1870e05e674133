"""Part templates and the filter loss of Interpretable CNNs (Zhang, Wu, Zhu, CVPR 2018).

Definitions (n×n feature map, positions μ = (i, j), 0-based):

- positive template T⁺_μ: t_ij = τ · max(1 − β·‖[i, j] − μ‖₁ / n, −1), τ = 0.5 / n², β = 4;
- negative template T⁻ = −τ everywhere;
- priors p(T⁺_μ) = α / n² for each of the n² positions, p(T⁻) = 1 − α, α = n² / (1 + n²),
  so that every one of the n² + 1 templates has prior 1 / (1 + n²).

Loss of one filter over a batch of maps X = {x}: −MI(X; T) with
p(x|T) = exp(tr(x·T)) / Z_T, Z_T = Σ_x exp(tr(x·T)) over the batch, p(x) = Σ_T p(T) p(x|T).
Written with log-sum-exp so that all-zero and very large maps stay finite.
"""

from __future__ import annotations

TAU_SCALE = 0.5
BETA = 4.0


def templates(n: int, dtype=None, device=None):
    """All templates for an n×n map: tensor (n² + 1, n, n); rows 0..n²−1 are T⁺_μ with
    μ = (k // n, k % n), the last row is T⁻. dtype defaults to float32."""
    import torch

    dtype = dtype or torch.float32
    tau = TAU_SCALE / (n * n)
    idx = torch.arange(n, dtype=dtype, device=device)
    i = idx.view(1, n, 1, 1)
    j = idx.view(1, 1, n, 1)
    mu_i = idx.repeat_interleave(n).view(1, 1, 1, n * n)
    mu_j = idx.repeat(n).view(1, 1, 1, n * n)
    dist = (i - mu_i).abs() + (j - mu_j).abs()  # (1, n, n, n²)
    pos = tau * torch.clamp(1 - BETA * dist / n, min=-1.0)
    pos = pos[0].permute(2, 0, 1)  # (n², n, n)
    neg = torch.full((1, n, n), -tau, dtype=dtype, device=device)
    return torch.cat([pos, neg], dim=0)


def priors(n: int, dtype=None, device=None):
    """Prior of each template, tensor (n² + 1,): α/n² for the positives, 1 − α for T⁻."""
    import torch

    dtype = dtype or torch.float32
    alpha = n * n / (1.0 + n * n)
    p = torch.full((n * n + 1,), alpha / (n * n), dtype=dtype, device=device)
    p[-1] = 1 - alpha
    return p


def argmax_mask(x):
    """Mask the maps by the template of their argmax position, then ReLU.

    x: (B, C, n, n) float. Returns relu(x · T⁺_μ̂) with μ̂ the argmax of each (b, c) map,
    same shape and dtype. The template is treated as a constant (no gradient through μ̂).
    """
    import torch

    b, c, n, m = x.shape
    if n != m:
        raise ValueError(f"argmax_mask: feature map must be square, got {n}×{m}")
    pos = templates(n, dtype=x.dtype, device=x.device)[:-1]  # (n², n, n)
    k = x.detach().flatten(2).argmax(dim=2)  # (B, C)
    tau = TAU_SCALE / (n * n)
    mask = pos[k] / tau  # (B, C, n, n), 1 at μ̂, decreasing to −1
    return torch.relu(x * mask)


def filter_loss(x, positive):
    """−MI(X; T) per filter, averaged over filters.

    x: (B, C, n, n) float feature maps (after ReLU, before masking).
    positive: (B, C) bool, True where image b is of filter c's category (those images
    are scored against the positive templates, the others against T⁻ only, as in the paper's
    training where p(T|x) is restricted by the label). Where ``positive`` is None, every image
    is scored against all templates (the unsupervised −MI).
    Returns a scalar tensor.

    MI = Σ_T p(T) Σ_x p(x|T) log(p(x|T) / p(x)), with log p(x|T) = s(x, T) − log Z_T,
    s(x, T) = tr(xᵀT) = Σ_ij x_ij t_ij, log Z_T = logsumexp over the batch.
    """
    import torch

    b, c, n, _ = x.shape
    t = templates(n, dtype=x.dtype, device=x.device)  # (K, n, n)
    logp_t = torch.log(priors(n, dtype=x.dtype, device=x.device))  # (K,)
    s = torch.einsum("bcij,kij->bck", x, t)  # (B, C, K)
    log_pxt = s - torch.logsumexp(s, dim=0, keepdim=True)  # log p(x|T), normalised over the batch
    log_px = torch.logsumexp(log_pxt + logp_t, dim=2, keepdim=True)  # (B, C, 1)
    pxt = log_pxt.exp()
    terms = pxt * (log_pxt - log_px)  # (B, C, K)
    if positive is not None:
        k = t.shape[0]
        is_neg_t = torch.zeros(k, dtype=torch.bool, device=x.device)
        is_neg_t[-1] = True
        keep = torch.where(positive.unsqueeze(-1), ~is_neg_t.view(1, 1, k), is_neg_t.view(1, 1, k))
        terms = terms * keep.to(x.dtype)
    mi = (logp_t.exp() * terms.sum(dim=0)).sum(dim=1)  # (C,)
    return -mi.mean()
