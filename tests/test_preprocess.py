"""Preprocessing presets: torchvision's ImageNet normalisation and NetDissect-Lite's."""

import numpy as np
import pytest
import torch

from cnninterp.data.preprocess import to_tensor


def test_imagenet_matches_torchvision_normalize():
    from torchvision.transforms.functional import normalize

    images = np.random.default_rng(0).integers(0, 256, size=(2, 5, 7, 3), dtype=np.uint8)
    want = normalize(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    torch.testing.assert_close(to_tensor(images, "imagenet"), want, rtol=0, atol=1e-5)
    assert to_tensor(images, "imagenet").shape == (2, 3, 5, 7)


def test_netdissect_lite_preset_follows_its_recipe():
    """RGB -> BGR, subtract the BGR mean, back to RGB, divide by 255 * 0.224."""
    images = np.random.default_rng(1).integers(0, 256, size=(1, 4, 4, 3), dtype=np.uint8)
    bgr = images[..., ::-1].astype(np.float64) - np.array([109.5388, 118.6897, 124.6901])
    want = (bgr[..., ::-1] / (255 * 0.224)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(to_tensor(images, "netdissect_lite").numpy(), want, atol=1e-5)


def test_unknown_preset_is_named():
    with pytest.raises(ValueError, match="unknown preprocess preset 'caffe'"):
        to_tensor(np.zeros((1, 2, 2, 3), np.uint8), "caffe")
