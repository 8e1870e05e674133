"""Float32 that means float32 on CUDA: the dissection's forward pass without TF32."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


@contextmanager
def ieee_float32() -> Iterator[None]:
    """Inside the block, CUDA convolutions and matrix products of float32 tensors run in IEEE float32.

    PyTorch lets cuDNN run float32 convolutions in TF32 (a 10-bit mantissa) by default on
    Ampere and later GPUs. A dissection thresholds activation maps at their top quantile, so that
    rounding moves thresholds and flips pixels: a random resnet18 on an H200 gave layer4
    thresholds up to 0.0087 away from the CPU's and 1,479 differing intersection cells with TF32
    (``benchmarks/gpu_check.py``, RESULTS.md). Takes and returns nothing; the previous settings are
    restored on exit, also on an error. No effect on the CPU.
    """
    import torch

    conv, matmul = getattr(torch.backends.cudnn, "conv", None), torch.backends.cuda.matmul
    if conv is not None and hasattr(conv, "fp32_precision"):  # torch >= 2.9: one API, the other raises when mixed
        switches = [(conv, "fp32_precision", "ieee"), (matmul, "fp32_precision", "ieee")]
    else:
        switches = [(torch.backends.cudnn, "allow_tf32", False), (matmul, "allow_tf32", False)]
    saved = [getattr(owner, name) for owner, name, _ in switches]
    for owner, name, value in switches:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for (owner, name, _), value in zip(switches, saved):
            setattr(owner, name, value)
