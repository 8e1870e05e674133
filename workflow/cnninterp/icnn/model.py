"""The two networks compared: a small VGG-like CNN whose top conv layer is the interpretable layer
(argmax template mask + filter loss), and the identical ordinary CNN.

Architecture (S×S RGB input, c = ``channels``): [conv3×3 c, BN, ReLU, maxpool 2] →
[conv3×3 2c, BN, ReLU, maxpool 2] → [conv3×3 4c, BN, ReLU] → ``top`` = [conv3×3 F, ReLU]
(F = ``filters``; an n×n map, n = S/4) → ``mask`` (interpretable: relu(x·T⁺_μ̂), μ̂ the argmax of
each map, at training and at test time as in the paper; ordinary: identity) → global average
pool → linear to the classes. The loss of the interpretable network is read from ``top``'s output
(before the mask). Dissection hooks ``top`` in both networks (the filters' own maps, before the mask).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .loss import argmax_mask

TOP_LAYER = "top"


@dataclass(frozen=True)
class NetSpec:
    """Sizes of a network; ``interpretable`` selects the ICNN (mask + filter loss) or the ordinary CNN."""

    interpretable: bool
    image_size: int = 48
    channels: int = 16
    filters: int = 32
    num_classes: int = 2

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def map_size(self) -> int:
        """n, the side of the top conv layer's map (S / 4)."""
        return self.image_size // 4


def build(spec: NetSpec):
    """Return the network (torch.nn.Module) for ``spec``; ``forward(x)`` float32 (B, 3, S, S) -> logits (B, classes)."""
    import torch.nn as nn

    from ..errors import ConfigError

    if spec.image_size % 4 or spec.image_size < 16:
        raise ConfigError(f"icnn: image_size must be a multiple of 4 and >= 16, got {spec.image_size}")

    class ArgmaxMask(nn.Module):
        """relu(x · T⁺_μ̂) per map (B, F, n, n) -> same shape."""

        def forward(self, x):
            return argmax_mask(x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            c = spec.channels

            def block(i, o, pool):
                layers = [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]
                return layers + ([nn.MaxPool2d(2)] if pool else [])

            self.features = nn.Sequential(*block(3, c, True), *block(c, 2 * c, True), *block(2 * c, 4 * c, False))
            self.top = nn.Sequential(nn.Conv2d(4 * c, spec.filters, 3, padding=1), nn.ReLU())
            self.mask = ArgmaxMask() if spec.interpretable else nn.Identity()
            self.classifier = nn.Linear(spec.filters, spec.num_classes)

        def forward_maps(self, x):
            """x float32 (B, 3, S, S) -> (logits (B, classes), top maps float32 (B, F, n, n) before the mask)."""
            maps = self.top(self.features(x))
            pooled = self.mask(maps).mean(dim=(2, 3))
            return self.classifier(pooled), maps

        def forward(self, x):
            return self.forward_maps(x)[0]

    return Net()


def assign_filters(filters: int, num_classes: int):
    """The category of each top-layer filter, int64 (F,): filter f belongs to object class
    1 + (f mod (num_classes − 1)); class 0 is the negative class and owns no filter. With one object
    class (the default parts data, the paper's single-category setting) every filter belongs to it."""
    import torch

    if num_classes < 2:
        from ..errors import ConfigError

        raise ConfigError(f"icnn: need a negative class and at least one object class, got {num_classes} classes")
    return 1 + torch.arange(filters) % (num_classes - 1)


def positives(labels, categories):
    """bool (B, F): image b is of filter f's category. labels int64 (B,), categories int64 (F,)."""
    return labels[:, None] == categories.to(labels.device)[None, :]
