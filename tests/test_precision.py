"""The dissection's forward pass runs in IEEE float32 on CUDA (no TF32), with the settings restored.

On a GPU machine benchmarks/gpu_check.py measures what this buys (thresholds and counts against
the CPU's); here the switch itself is checked, on the settings PyTorch reads on CUDA.
"""

import pytest
import torch

from cnninterp.data.shards import shard_paths
from cnninterp.dissect.activations import activation_batches
from cnninterp.models.backbones import random_model
from cnninterp.models.precision import ieee_float32


def _settings():
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        return conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision
    return torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32


IEEE = ("ieee", "ieee") if isinstance(_settings()[0], str) else (False, False)


def test_inside_the_block_float32_is_ieee_and_the_old_settings_come_back():
    before = _settings()
    assert before != IEEE  # PyTorch's default lets cuDNN use TF32, else this test checks nothing
    with ieee_float32():
        assert _settings() == IEEE
    assert _settings() == before


def test_the_settings_come_back_after_an_error():
    before = _settings()
    with pytest.raises(RuntimeError, match="inside"):
        with ieee_float32():
            raise RuntimeError("inside")
    assert _settings() == before


def test_the_activation_stream_computes_in_ieee_float32_and_restores_after(broden_shards):
    before = _settings()
    seen = []
    for _ in activation_batches(random_model("resnet10", seed=0), ["layer2"], shard_paths(broden_shards), "imagenet", 8, "cpu"):
        seen.append(_settings())
    assert seen and all(s == IEEE for s in seen)
    assert _settings() == before
