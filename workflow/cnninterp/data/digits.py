"""The ``digits`` dataset: scikit-learn's bundled handwritten digits as shards, and their rotation factor.

Source: ``sklearn.datasets.load_digits`` (1,797 images of 8x8 pixels, values 0..16, labels 0..9;
bundled with scikit-learn, no download). Each image is upsampled ``upsample`` times (nearest) and
padded by ``pad`` pixels of zeros on every side, so that a rotation about the centre keeps the
digit inside the frame (the upsampled 8·u square's half diagonal, 4·u·√2, fits in 4·u + pad when
pad ≥ 1.66·u).

Shards hold the *upright* images (``image.npy``: uint8 (S, S), 0..255; ``cls``: the digit as
ASCII). The rotation angle is a factor drawn at training time, not stored: the manifest declares
its range, [−180°, 180°), and the arc ``[heldout_start_deg, heldout_start_deg + heldout_width_deg)``
that training never draws (the held-out angles). The ``train``/``test`` splits divide the images.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from .shards import iter_samples, npy_bytes, npy_load, read_manifest, shard_paths, write_shards

ANGLE_RANGE_DEG = (-180.0, 180.0)


def digit_images(upsample: int = 2, pad: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits as uint8 (N, S, S) images (S = 8·upsample + 2·pad, 0..255) and int64 (N,) labels."""
    from sklearn.datasets import load_digits

    if upsample < 1 or pad < 0:
        raise DataError(f"digits: upsample must be >= 1 and pad >= 0, got upsample={upsample}, pad={pad}")
    data = load_digits()
    images = data.images.astype(np.float64) / 16.0
    images = np.kron(images, np.ones((1, upsample, upsample)))
    images = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))
    return np.round(images * 255).astype(np.uint8), data.target.astype(np.int64)


def write_digits(out_dir: str | Path, *, upsample: int, pad: int, test_fraction: float, heldout_start_deg: float,
                 heldout_width_deg: float, seed: int, shard_size: int) -> dict:
    """Write the digits shards (splits ``train``/``test``) and manifest under ``out_dir``; return the manifest."""
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"digits: test_fraction must lie in (0, 1), got {test_fraction}")
    check_heldout(heldout_start_deg, heldout_width_deg)
    images, labels = digit_images(upsample, pad)
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = int(round(len(images) * test_fraction))
    split_of = np.empty(len(images), dtype=object)
    split_of[order[:n_test]] = "test"
    split_of[order[n_test:]] = "train"

    def samples():
        for split in ("test", "train"):
            for i in np.flatnonzero(split_of == split):
                yield split, {"__key__": f"digit_{i:05d}", "image.npy": npy_bytes(images[i]), "cls": str(int(labels[i])).encode()}

    manifest = {
        "dataset": "digits",
        "labels": [str(d) for d in range(10)],
        "source": {"kind": "sklearn.load_digits", "images": int(len(images))},
        "image_size": int(images.shape[1]),
        "factors": {
            "rotation_deg": {
                "range": list(ANGLE_RANGE_DEG),
                "drawn": "at training time (shards hold upright images)",
                "heldout": [float(heldout_start_deg), float(heldout_start_deg + heldout_width_deg)],
            }
        },
        "config": {"upsample": upsample, "pad": pad, "test_fraction": test_fraction, "seed": seed,
                   "heldout_start_deg": heldout_start_deg, "heldout_width_deg": heldout_width_deg},
    }
    return write_shards(samples(), out_dir, shard_size, manifest)


def check_heldout(start_deg: float, width_deg: float) -> None:
    """DataError unless the held-out arc lies inside the factor's range, is not empty, leaves angles
    to train on and does not hold 0°: the evaluation feeds upright digits (0°) as the seen inputs, so
    an arc over 0° would make every "seen" figure one of held-out inputs."""
    lo, hi = ANGLE_RANGE_DEG
    if not (lo <= start_deg < hi) or not (0.0 < width_deg < hi - lo):
        raise DataError(f"digits: held-out arc start {start_deg}° width {width_deg}° must have start in [{lo}, {hi}) and width in (0, {hi - lo})")
    if in_arc(np.array([0.0]), (start_deg, start_deg + width_deg))[0]:
        raise DataError(f"digits: held-out arc [{start_deg}°, {start_deg + width_deg}°) holds 0°, the upright angle the evaluation "
                        "takes as the seen input; move the arc off 0°")


def load_split(shard_dir: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A split's images as float32 (N, 1, S, S) in [0, 1] and int64 (N,) labels, in key order."""
    images, labels = [], []
    for sample in iter_samples(shard_paths(shard_dir, [split])):
        images.append(npy_load(sample["image.npy"]))
        labels.append(int(sample["cls"]))
    if not images:
        raise DataError(f"{shard_dir}: split {split!r} holds no digits")
    return (np.stack(images)[:, None].astype(np.float32) / 255.0), np.asarray(labels, np.int64)


def heldout_arc(shard_dir: str | Path) -> tuple[float, float]:
    """The manifest's held-out arc (start, end) in degrees."""
    start, end = read_manifest(shard_dir)["factors"]["rotation_deg"]["heldout"]
    return float(start), float(end)


def check_angles(theta_deg: np.ndarray, what: str = "rotation angle") -> None:
    """DataError when any angle (degrees) lies outside the factor's declared range [−180°, 180°)."""
    theta_deg = np.asarray(theta_deg, dtype=np.float64)
    lo, hi = ANGLE_RANGE_DEG
    bad = ~((theta_deg >= lo) & (theta_deg < hi))
    if bad.any():
        raise DataError(f"digits: {what} {float(theta_deg[bad][0])}° lies outside the declared range [{lo}°, {hi}°)")


def in_arc(theta_deg: np.ndarray, arc: tuple[float, float]) -> np.ndarray:
    """Bool mask: which angles (degrees, any value) fall on the arc [start, end) taken modulo 360°."""
    start, end = arc
    rel = np.mod(np.asarray(theta_deg, np.float64) - start, 360.0)
    return rel < (end - start)


def sample_angles(rng: np.random.Generator, n: int, arc: tuple[float, float], heldout: bool) -> np.ndarray:
    """n angles in degrees, wrapped to [−180, 180): uniform on the held-out arc (``heldout``) or on the rest of the circle."""
    start, end = arc
    width = end - start
    if heldout:
        if width <= 0:
            raise DataError("digits: no held-out angles (heldout_width_deg is 0)")
        theta = start + rng.uniform(0.0, width, n)
    else:
        theta = end + rng.uniform(0.0, 360.0 - width, n)
    return wrap_deg(theta)


def wrap_deg(theta_deg):
    """Angles (degrees) wrapped to [−180, 180)."""
    return np.mod(np.asarray(theta_deg, np.float64) + 180.0, 360.0) - 180.0


def rotate_images(images, theta):
    """Rotate images about their centre by ``theta`` radians (counter-clockwise on screen).

    images: float (B, C, H, W); theta: float (B,) on the same device -> (B, C, H, W), bilinear,
    zeros outside. Differentiable; CPU and CUDA alike.
    """
    import torch
    import torch.nn.functional as F

    if theta.shape != images.shape[:1]:
        raise DataError(f"rotate_images: one angle per image expected, shape ({images.shape[0]},), got {tuple(theta.shape)}")
    c, s = torch.cos(theta), torch.sin(theta)
    z = torch.zeros_like(c)
    # affine_grid maps output coordinates to input ones; y points down on screen, so the inverse
    # of a counter-clockwise screen rotation is [[c, -s], [s, c]] in (x, y) grid coordinates
    matrix = torch.stack([torch.stack([c, -s, z], -1), torch.stack([s, c, z], -1)], -2).to(images.dtype)
    grid = F.affine_grid(matrix, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def deg(rad: float) -> float:
    return rad * 180.0 / math.pi
