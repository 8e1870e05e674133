"""The encoder–decoder of the interpretable transformations method, with the FTL or the θ-input baseline.

Images are float (B, 1, S, S) in [0, 1] with S divisible by 4. The encoder (two stride-2 convs,
then a *linear* last layer) gives latents z (B, D), D = 2·blocks + 2·azimuth_blocks + identity_dim.
The latent has one group of 2-blocks per factor: group 0 (``blocks``) the in-plane angle, group 1
(``azimuth_blocks``, only when > 0) the azimuth of the 3-D objects, then the identity part. The FTL
model decodes ``F_θ z`` (group g's blocks turned by R(θ_g)); the baseline decodes
``[z, cos θ_1, sin θ_1, ..., cos θ_G, sin θ_G]`` with the same decoder body (its first linear layer
has 2G more inputs). Angles: θ float (B,) for one factor, (B, G) for G factors, radians.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..models import ftl

KINDS = ("ftl", "baseline")


@dataclass(frozen=True)
class ModelSpec:
    """Sizes of the encoder–decoder: image side, conv channels, 2-blocks, identity dimensions."""

    kind: str = "ftl"
    image_size: int = 24
    channels: int = 16
    blocks: int = 16
    identity_dim: int = 8
    azimuth_blocks: int = 0

    @property
    def factors(self) -> int:
        """G, the number of angles the model is turned by (1: in plane; 2: in plane and azimuth)."""
        return 2 if self.azimuth_blocks > 0 else 1

    @property
    def layout(self) -> ftl.BlockLayout:
        groups = ((self.blocks, 2),) + (((self.azimuth_blocks, 2),) if self.azimuth_blocks > 0 else ())
        return ftl.BlockLayout(groups=groups, latent_dim=2 * self.blocks + 2 * self.azimuth_blocks + self.identity_dim)

    def to_dict(self) -> dict:
        return asdict(self)


def build(spec: ModelSpec):
    """An ``EncoderDecoder`` torch module for ``spec``."""
    import torch
    from torch import nn

    from ..errors import ModelError

    if spec.kind not in KINDS:
        raise ModelError(f"transform model kind must be one of {KINDS}, not {spec.kind!r}")
    if spec.image_size % 4:
        raise ModelError(f"transform: image size {spec.image_size} must be divisible by 4")

    layout = spec.layout
    c, side = spec.channels, spec.image_size // 4
    flat = 2 * c * side * side

    class EncoderDecoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.spec, self.layout = spec, layout
            self.encoder = nn.Sequential(
                nn.Conv2d(1, c, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.ReLU(),
                nn.Flatten(), nn.Linear(flat, layout.latent_dim),
            )
            extra = 2 * spec.factors if spec.kind == "baseline" else 0
            self.decoder_in = nn.Sequential(nn.Linear(layout.latent_dim + extra, flat), nn.ReLU())
            self.decoder = nn.Sequential(
                nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.ReLU(),
                nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),
            )

        def encode(self, x):
            """x (B, 1, S, S) -> z (B, D)."""
            return self.encoder(x)

        def decode(self, z, theta):
            """Latent z (B, D) re-rendered turned by theta radians, (B,) or (B, G) -> logits (B, 1, S, S)."""
            theta = angles_per_factor(theta, z.shape[0], spec.factors)
            if spec.kind == "ftl":
                h = ftl.transform(z, layout, [ftl.rotation_2d(theta[:, g]) for g in range(spec.factors)])
            else:
                h = torch.cat([z, torch.cos(theta), torch.sin(theta)], 1)
            return self.decoder(self.decoder_in(h).reshape(-1, 2 * c, side, side))

        def forward(self, x, theta):
            """x (B, 1, S, S) turned by theta (B,) -> image in [0, 1] (B, 1, S, S)."""
            return torch.sigmoid(self.decode(self.encode(x), theta))

    return EncoderDecoder()


def angles_per_factor(theta, batch: int, factors: int):
    """Angles as (B, G): theta (B,) is accepted for G = 1; anything else raises ModelError."""
    from ..errors import ModelError

    if factors == 1 and tuple(theta.shape) == (batch,):
        return theta[:, None]
    if tuple(theta.shape) != (batch, factors):
        want = f"({batch},) or ({batch}, 1)" if factors == 1 else f"({batch}, {factors})"
        raise ModelError(f"transform: one angle per latent and factor expected, shape {want}, got {tuple(theta.shape)}")
    return theta
