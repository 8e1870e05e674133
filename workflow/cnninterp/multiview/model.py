"""Camera-disentangled multi-view pose (Remelli et al., CVPR 2020) and its two ablations.

Every model maps a multi-view sample to 2D joints per view and triangulates them with the
differentiable DLT (shifted inverse iteration). Per view, an encoder (a small ResNet of
torchvision ``BasicBlock``s) gives a latent of ``points`` 3-vectors (B·V, 3·points). Then:

- ``baseline``: views independent; each latent goes through the same MLP, then the decoder.
- ``fusion``: the V latents are concatenated and mixed by the fusion MLP (the paper's 1×1
  convolutions on a 1×1 map), which outputs V latents, one per view; no camera rotations.
- ``canonical``: each latent is turned into the world frame by the FTL with its camera's Rᵀ
  (3-vectors x_cam -> Rᵀ x_cam), fused there into *one* canonical latent, which the FTL turns back
  into each camera (x -> R_v x) before decoding. The canonical latent can also be decoded
  through any rotation, e.g. of a camera never seen (``decode_rotated``).

The decoder (linear, two transposed convs) gives J heatmaps of side S/4 per view; a soft-argmax
turns them into 2D joints in crop pixels (heatmap cell centres at 4·(i + ½)).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import ModelError
from ..models import ftl
from .dlt import triangulate_sii

KINDS = ("baseline", "fusion", "canonical")


@dataclass(frozen=True)
class ModelSpec:
    """Sizes: image side S (multiple of 16), views V, joints J, encoder channels, latent 3-vectors, fusion width."""

    kind: str = "canonical"
    image_size: int = 64
    views: int = 4
    joints: int = 17
    channels: int = 8
    points: int = 32
    hidden: int = 256

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ModelError(f"multiview model kind must be one of {KINDS}, not {self.kind!r}")
        if self.image_size % 16 or self.image_size < 16:
            raise ModelError(f"multiview image_size must be a multiple of 16, got {self.image_size}")

    @property
    def layout(self) -> ftl.BlockLayout:
        """The latent as ``points`` 3-blocks, all rotated (no identity part)."""
        return ftl.BlockLayout(groups=((self.points, 3),), latent_dim=3 * self.points)

    def to_dict(self) -> dict:
        return asdict(self)


def soft_argmax(heatmaps):
    """Expected cell position under softmax: heatmaps (..., h, w) -> (..., 2) as (x, y) in cells (centres at i + ½)."""
    import torch

    h, w = heatmaps.shape[-2:]
    p = torch.softmax(heatmaps.flatten(-2), -1).unflatten(-1, (h, w))
    xs = torch.arange(w, dtype=p.dtype, device=p.device) + 0.5
    ys = torch.arange(h, dtype=p.dtype, device=p.device) + 0.5
    return torch.stack([(p.sum(-2) * xs).sum(-1), (p.sum(-1) * ys).sum(-1)], -1)


def build(spec: ModelSpec):
    """A ``MultiViewPose`` torch module for ``spec``."""
    import torch
    from torch import nn
    from torchvision.models.resnet import BasicBlock

    def block(cin, cout):
        down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout))
        return BasicBlock(cin, cout, stride=2, downsample=down)

    c, D, V, J = spec.channels, 3 * spec.points, spec.views, spec.joints
    side = spec.image_size // 16

    class MultiViewPose(nn.Module):
        def __init__(self):
            super().__init__()
            self.spec = spec
            self.layout = spec.layout
            self.encoder = nn.Sequential(
                nn.Conv2d(3, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                block(c, 2 * c), block(2 * c, 4 * c), block(4 * c, 4 * c), nn.Flatten(), nn.Linear(4 * c * side * side, D))
            width = D if spec.kind == "baseline" else V * D
            out = V * D if spec.kind == "fusion" else D
            self.fuse = nn.Sequential(nn.Linear(width, spec.hidden), nn.ReLU(inplace=True), nn.Linear(spec.hidden, out))
            self.decoder_in = nn.Sequential(nn.Linear(D, 4 * c * side * side), nn.ReLU(inplace=True))
            self.decoder = nn.Sequential(
                nn.ConvTranspose2d(4 * c, 2 * c, 4, stride=2, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU(inplace=True),
                nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                nn.Conv2d(c, J, 1))

        def encode(self, images):
            """images uint8 or float (B, V, S, S, 3) -> latents (B, V, D) in each camera's frame."""
            B = images.shape[0]
            x = images.permute(0, 1, 4, 2, 3).flatten(0, 1).float()
            if images.dtype == torch.uint8:
                x = x / 255.0
            return self.encoder(x).view(B, V, D)

        def rotate(self, z, R):
            """FTL on latents z (B, V, D) with rotations R (B, V, 3, 3) -> (B, V, D)."""
            B = z.shape[0]
            return ftl.transform(z.flatten(0, 1), self.layout, [R.flatten(0, 1)]).view(B, -1, D)

        def canonical(self, images, R):
            """The fused latent in the world frame (B, D) of a ``canonical`` model; R (B, V, 3, 3) world->camera."""
            if spec.kind != "canonical":
                raise ModelError(f"only the canonical model has a canonical latent, this is {spec.kind!r}")
            world = self.rotate(self.encode(images), R.transpose(-1, -2))
            return self.fuse(world.flatten(1))

        def decode(self, z):
            """Latents (B, V, D) -> heatmap logits (B, V, J, S/4, S/4)."""
            B, n = z.shape[:2]
            h = self.decoder_in(z.flatten(0, 1)).view(B * n, 4 * c, side, side)
            return self.decoder(h).view(B, n, J, 4 * side, 4 * side)

        def decode_rotated(self, zc, R):
            """2D joints (B, n, J, 2) in crop pixels of the canonical latent zc (B, D) seen through rotations R (B, n, 3, 3)."""
            z = self.rotate(zc[:, None].expand(-1, R.shape[1], -1), R)
            return 4.0 * soft_argmax(self.decode(z))

        def forward(self, images, R):
            """images (B, V, S, S, 3), R (B, V, 3, 3) -> 2D joints (B, V, J, 2) float32, crop pixels."""
            z = self.encode(images)
            if spec.kind == "baseline":
                z = self.fuse(z)
            elif spec.kind == "fusion":
                z = self.fuse(z.flatten(1)).view(-1, V, D)
            else:
                return self.decode_rotated(self.canonical(images, R), R)
            return 4.0 * soft_argmax(self.decode(z))

    return MultiViewPose()


TRIANGULATION_DTYPE = "float64"  # what triangulate solves in (timing.time_dlt times the solvers in it too)


def triangulate(uv, P):
    """3D joints (B, J, 3) mm, uv's dtype, from 2D joints uv (B, V, J, 2) and projections P (B, V, 3, 4),
    by SII in ``TRIANGULATION_DTYPE``."""
    import torch

    dtype = getattr(torch, TRIANGULATION_DTYPE)
    X = triangulate_sii(P.to(dtype)[:, None], uv.to(dtype).transpose(1, 2))
    return X.to(uv.dtype)
