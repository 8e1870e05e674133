"""Novel views of the canonical representation: virtual cameras rotated in plane and out of plane.

A virtual camera is view 0's camera turned about the pelvis: the pelvis keeps its camera
coordinates of view 0 (same depth, same direction), so the crop of view 0 (its intrinsics ``K``,
the pelvis at the crop centre, the same scale) stays the virtual camera's crop, and at angle 0 the
virtual view is view 0 itself. (It used to be a camera with the pelvis on its optical axis, which
differs from the data's crops, whose pelvis is up to ~17° off axis, by 1.0 px on average at
angle 0.) Its rotation is

- in plane: R = R_z(α) · R_0 (turned about its own optical axis by α),
- out of plane: R = R_0 · R_z(φ) (orbiting the person about the world's vertical axis by φ).

The canonical latent z_c of a sample is decoded through R (``decode_rotated``); the truth is the
pinhole projection of the 3D joints through the same virtual camera into a crop of the same scale.
"""

from __future__ import annotations

import numpy as np

from ..data import multiview as mvdata

IN_PLANE_DEG = (0.0, 10.0, 20.0, 30.0)
OUT_OF_PLANE_DEG = (0.0, 30.0, 150.0, 180.0)


def virtual_rotations(R0, angles_deg, mode: str):
    """Rotations (n, A, 3, 3) float32 for base rotations R0 (n, 3, 3) and angles (A,) in degrees; mode "in" or "out"."""
    import torch

    from ..models.ftl import rotation_axis

    Rz = rotation_axis(torch.tensor(np.radians(angles_deg), dtype=torch.float64), "z")  # (A, 3, 3)
    R0 = torch.as_tensor(R0, dtype=torch.float64)[:, None]
    return (Rz @ R0 if mode == "in" else R0 @ Rz).float()


def virtual_truth(X, K0, R0, t0, R):
    """Crop pixels (n, A, J, 2) of joints X (n, J, 3) mm through the virtual cameras of rotations R (n, A, 3, 3):
    view 0 (crop intrinsics K0, rotation R0 (n, 3, 3), translation t0 (n, 3)) turned about the pelvis, i.e.
    x_cam = R (X − p) + R0 p + t0 with p the pelvis, projected through K0 (see the module docstring)."""
    X, K0, R0, t0, R = (np.asarray(a, np.float64) for a in (X, K0, R0, t0, R))
    pelvis = X[:, 0]
    at = np.einsum("nij,nj->ni", R0, pelvis) + t0  # the pelvis in view 0's camera frame (n, 3)
    cam = np.einsum("naij,nkj->naki", R, X - pelvis[:, None]) + at[:, None, None, :]  # (n, A, J, 3)
    pix = np.einsum("nij,nakj->naki", K0, cam)
    return pix[..., :2] / pix[..., 2:3]


def novel_views(model, images, K, R, X, t, mode: str, angles_deg) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, true) crop pixels (n, A, J, 2) of the canonical model's latent seen through the virtual cameras;
    K, R (n, V, 3, 3) and t (n, V, 3) the samples' crop cameras, X (n, J, 3) their joints."""
    import torch

    with torch.no_grad():
        zc = model.canonical(torch.as_tensor(images), torch.as_tensor(R).float())
        Rv = virtual_rotations(R[:, 0], angles_deg, mode)
        pred = model.decode_rotated(zc, Rv).numpy()
    true = virtual_truth(X, K[:, 0], R[:, 0], t[:, 0], Rv.numpy())
    return pred, true


def draw_skeleton(canvas, uv, scale: int, colour) -> None:
    """Draw bones of joints uv (J, 2) crop pixels onto canvas uint8 (H, W, 3) in place, coordinates × ``scale``."""
    H, W = canvas.shape[:2]
    for child, parent in enumerate(mvdata.PARENTS):
        if parent < 0:
            continue
        a, b = uv[parent] * scale, uv[child] * scale
        steps = int(np.ceil(np.abs(b - a).max())) + 1
        pts = np.round(a + np.linspace(0, 1, steps)[:, None] * (b - a)).astype(int)
        ok = (pts[:, 0] >= 0) & (pts[:, 0] < W) & (pts[:, 1] >= 0) & (pts[:, 1] < H)
        canvas[pts[ok, 1], pts[ok, 0]] = colour


def figure(pred, true, image_size: int, scale: int = 3, gap: int = 2) -> np.ndarray:
    """uint8 (H, W, 3): rows = samples, columns = angles; truth in grey, prediction in colour."""
    n, A = pred.shape[:2]
    tile = image_size * scale
    out = np.full((n * (tile + gap), A * (tile + gap), 3), 255, np.uint8)
    for i in range(n):
        for a in range(A):
            canvas = np.full((tile, tile, 3), 255, np.uint8)
            draw_skeleton(canvas, true[i, a], scale, (170, 170, 170))
            draw_skeleton(canvas, pred[i, a], scale, (200, 30, 60))
            out[i * (tile + gap) : i * (tile + gap) + tile, a * (tile + gap) : a * (tile + gap) + tile] = canvas
    return out
