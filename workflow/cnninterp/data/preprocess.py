"""Image preprocessing presets: torchvision's ImageNet normalisation and NetDissect-Lite's."""

from __future__ import annotations

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# NetDissect-Lite: RGB->BGR, subtract this BGR mean, back to RGB, divide by 255*0.224
NETDISSECT_BGR_MEAN = (109.5388, 118.6897, 124.6901)
NETDISSECT_SCALE = 255.0 * 0.224
PRESETS = ("imagenet", "netdissect_lite")


def to_tensor(images: np.ndarray, preset: str = "imagenet"):
    """Turn uint8 images (B, H, W, 3) RGB into a float32 tensor (B, 3, H, W) normalised by ``preset``."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    if preset == "imagenet":
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0
        return (x - mean) / std
    if preset == "netdissect_lite":
        mean_rgb = torch.tensor(NETDISSECT_BGR_MEAN[::-1]).view(1, 3, 1, 1)
        return (x - mean_rgb) / NETDISSECT_SCALE
    raise ValueError(f"unknown preprocess preset {preset!r}; use one of {', '.join(PRESETS)}")
