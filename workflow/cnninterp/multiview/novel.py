"""Novel views of the canonical representation: virtual cameras rotated in plane and out of plane.

A virtual camera keeps view 0's distance to the pelvis and looks straight at it (the pelvis on
its optical axis, at the crop centre), with rotation

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


def virtual_truth(X, R0, t0, R, image_size: int):
    """Crop pixels (n, A, J, 2) of joints X (n, J, 3) mm through virtual cameras R (n, A, 3, 3) looking at the pelvis
    from view 0's distance (R0 (n, 3, 3), t0 (n, 3) the real view 0)."""
    X = np.asarray(X, np.float64)
    R = np.asarray(R, np.float64)
    pelvis = X[:, 0]
    d = np.linalg.norm(np.einsum("nij,nj->ni", R0, pelvis) + t0, axis=-1)  # distance along view 0
    f = image_size * d / mvdata.CROP_MM
    cam = np.einsum("naij,nkj->naki", R, X - pelvis[:, None])  # (n, A, J, 3), pelvis at the camera's axis
    cam[..., 2] += d[:, None, None]
    return f[:, None, None, None] * cam[..., :2] / cam[..., 2:3] + image_size / 2


def novel_views(model, images, R, X, t, mode: str, angles_deg) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, true) crop pixels (n, A, J, 2) of the canonical model's latent seen through the virtual cameras."""
    import torch

    with torch.no_grad():
        zc = model.canonical(torch.as_tensor(images), torch.as_tensor(R).float())
        Rv = virtual_rotations(R[:, 0], angles_deg, mode)
        pred = model.decode_rotated(zc, Rv).numpy()
    true = virtual_truth(X, R[:, 0], t[:, 0], Rv.numpy(), images.shape[2])
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
