"""Memory formats: which layout a model computes in (channels-last is faster for CNNs on CPU)."""

from __future__ import annotations

from ..errors import ModelError


MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


def torch_memory_format(model, setting: str):
    """The torch memory format a model runs its dissection forward in.

    ``channels_last`` or ``contiguous`` as asked; ``auto`` is channels-last for models built of
    2-D convolutions (1.3-1.5x faster forward on CPU for the CNNs measured in
    benchmarks/RESULTS.md) and contiguous otherwise (transformers). A fixed rule, not a timing,
    so that the same model always gives the same bits.
    """
    import torch

    if setting not in MEMORY_FORMATS:
        raise ModelError(f"memory_format must be one of {', '.join(MEMORY_FORMATS)}, not {setting!r}")
    if setting == "auto":
        convs = any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
        attention = any(isinstance(m, torch.nn.MultiheadAttention) for m in model.modules())
        setting = "channels_last" if convs and not attention else "contiguous"
    return torch.channels_last if setting == "channels_last" else torch.contiguous_format
