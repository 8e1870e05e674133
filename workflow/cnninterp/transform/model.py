"""The encoder–decoder of the interpretable transformations method, with the FTL or the θ-input baseline.

Images are float (B, 1, S, S) in [0, 1] with S divisible by 4. The encoder (two stride-2 convs,
then a *linear* last layer) gives latents z (B, D), D = 2·blocks + identity_dim. The FTL model
decodes ``F_θ z`` (every 2-block turned by R(θ)); the baseline decodes ``[z, cos θ, sin θ]``
with the same decoder body (its first linear layer has two more inputs).
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

    @property
    def layout(self) -> ftl.BlockLayout:
        return ftl.BlockLayout(groups=((self.blocks, 2),), latent_dim=2 * self.blocks + self.identity_dim)

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
            extra = 2 if spec.kind == "baseline" else 0
            self.decoder_in = nn.Sequential(nn.Linear(layout.latent_dim + extra, flat), nn.ReLU())
            self.decoder = nn.Sequential(
                nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.ReLU(),
                nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),
            )

        def encode(self, x):
            """x (B, 1, S, S) -> z (B, D)."""
            return self.encoder(x)

        def decode(self, z, theta):
            """Latent z (B, D) re-rendered turned by theta (B,) radians -> logits (B, 1, S, S)."""
            if theta.shape != z.shape[:1]:
                raise ModelError(f"transform: one angle per latent expected, shape ({z.shape[0]},), got {tuple(theta.shape)}")
            if spec.kind == "ftl":
                h = ftl.transform(z, layout, [ftl.rotation_2d(theta)])
            else:
                h = torch.cat([z, torch.cos(theta)[:, None], torch.sin(theta)[:, None]], 1)
            return self.decoder(self.decoder_in(h).reshape(-1, 2 * c, side, side))

        def forward(self, x, theta):
            """x (B, 1, S, S) turned by theta (B,) -> image in [0, 1] (B, 1, S, S)."""
            return torch.sigmoid(self.decode(self.encode(x), theta))

    return EncoderDecoder()
