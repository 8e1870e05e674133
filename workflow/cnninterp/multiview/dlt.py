"""Differentiable DLT triangulation, batched: SVD and shifted inverse iteration (SII).

Per joint, each view v with projection P_v (3×4) and 2D point (u, v) gives two rows
``u·p³ − p¹`` and ``v·p³ − p²`` (p^i the i-th row of P_v); stacked over V views they form
A (2V×4). The homogeneous point is the eigenvector of AᵀA with the smallest eigenvalue, and
X = b[:3] / b[3]. Rows are scaled to unit norm (the same A for both solvers), and world
coordinates are divided by ``scale`` inside the solver so that b is well conditioned.

SII: B = AᵀA + μI (μ = 1e-3 by default, keeping B invertible when the smallest eigenvalue is
0), then ``iters`` solves B b' = b with normalisation, from the fixed start b = (0, 0, 0, 1)
(the world origin, never orthogonal to a point at finite distance). Solves use an unrolled
4×4 Cholesky written in tensor ops, so they vectorise over the batch on CPU and CUDA alike.
"""

from __future__ import annotations


def dlt_matrix(P, uv, scale: float = 1000.0):
    """A for projections ``P`` (..., V, 3, 4) and points ``uv`` (..., V, 2) -> (..., 2V, 4).

    World coordinates are read in units of ``scale`` (mm -> m by default); rows unit norm.
    """
    import torch

    S = torch.diag(torch.tensor([scale, scale, scale, 1.0], dtype=P.dtype, device=P.device))
    Ps = P @ S
    rows = torch.cat(
        [uv[..., 0:1] * Ps[..., 2, :] - Ps[..., 0, :], uv[..., 1:2] * Ps[..., 2, :] - Ps[..., 1, :]], -1
    )  # (..., V, 8)
    A = rows.reshape(*rows.shape[:-2], -1, 4)
    return A / A.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _dehomogenise(b, scale: float):
    return b[..., :3] / b[..., 3:4] * scale


def triangulate_svd(P, uv, scale: float = 1000.0):
    """3D points (..., 3), same dtype as ``P`` (..., V, 3, 4) and ``uv`` (..., V, 2), by SVD."""
    import torch

    A = dlt_matrix(P, uv, scale)
    _, _, Vh = torch.linalg.svd(A, full_matrices=False)
    return _dehomogenise(Vh[..., -1, :], scale)


def cholesky_solve4(B, b):
    """Solve B x = b for SPD B (..., n, n) and b (..., n) by an unrolled Cholesky -> (..., n)."""
    import torch

    n = B.shape[-1]
    L = [[None] * n for _ in range(n)]
    for j in range(n):
        s = B[..., j, j] - sum((L[j][k] ** 2 for k in range(j)), torch.zeros_like(B[..., 0, 0]))
        L[j][j] = s.clamp_min(1e-30).sqrt()
        for i in range(j + 1, n):
            t = B[..., i, j] - sum((L[i][k] * L[j][k] for k in range(j)), torch.zeros_like(B[..., 0, 0]))
            L[i][j] = t / L[j][j]
    y = []
    for i in range(n):
        y.append((b[..., i] - sum((L[i][k] * y[k] for k in range(i)), torch.zeros_like(b[..., 0]))) / L[i][i])
    x = [None] * n
    for i in reversed(range(n)):
        x[i] = (y[i] - sum((L[k][i] * x[k] for k in range(i + 1, n)), torch.zeros_like(b[..., 0]))) / L[i][i]
    return torch.stack(x, -1)


def triangulate_sii(P, uv, mu: float = 1e-3, iters: int = 2, scale: float = 1000.0):
    """3D points (..., 3) by shifted inverse iteration; inputs as ``triangulate_svd``."""
    import torch

    A = dlt_matrix(P, uv, scale)
    B = A.transpose(-1, -2) @ A + mu * torch.eye(4, dtype=A.dtype, device=A.device)
    b = torch.zeros(A.shape[:-2] + (4,), dtype=A.dtype, device=A.device)
    b[..., 3] = 1.0
    for _ in range(iters):
        b = cholesky_solve4(B, b)
        b = b / b.norm(dim=-1, keepdim=True)
    return _dehomogenise(b, scale)


def project(P, X):
    """Pinhole projection of points ``X`` (..., 3) by ``P`` (..., V, 3, 4) -> (..., V, 2)."""
    import torch

    Xh = torch.cat([X, torch.ones_like(X[..., :1])], -1)
    x = (P @ Xh.unsqueeze(-2).unsqueeze(-1)).squeeze(-1)
    return x[..., :2] / x[..., 2:3]


def mpjpe(pred, target):
    """Mean per-joint position error: mean over all of ||pred − target||₂, (..., J, 3) -> scalar."""
    return (pred - target).norm(dim=-1).mean()
