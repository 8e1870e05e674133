"""Defects a review of the dissection engine reproduced, each pinned by a test that failed before its fix."""

from __future__ import annotations

import pytest
import torch

from cnninterp.dissect.activations import LayerCapture
from cnninterp.models.backbones import random_model


def _capture(model, layers, fmt, x):
    with LayerCapture(model, layers, fmt) as cap:
        return {k: v.clone() for k, v in cap.run(x).items()}


@pytest.mark.parametrize("arch,layer,later", [
    ("alexnet", "features.0", "features.3"),  # features.1 is ReLU(inplace=True) on conv1's output
    ("resnet10", "layer1.0.bn2", "layer2"),  # BasicBlock does `out += identity` on bn2's output
])
def test_a_captured_map_is_not_overwritten_by_later_in_place_ops(arch, layer, later):
    """Capturing a layer alone or with a later one gives the same maps: the hook copies them, so
    an in-place op after the hooked module does not reach the captured tensor."""
    torch.manual_seed(0)
    model = random_model(arch, seed=1).eval()
    x = torch.randn(2, 3, 64, 64)
    for fmt in ("contiguous", "channels_last"):
        alone = _capture(model, [layer], fmt, x)[layer]
        both = _capture(model, [layer, later], fmt, x)[layer]
        assert (alone < 0).any(), fmt  # conv / bn outputs before the ReLU have negatives
        assert torch.equal(alone, both), fmt
