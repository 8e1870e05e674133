"""The feature transform layer (FTL, Worrall et al., ICCV 2017): rotations applied to a latent.

A latent vector of size D is read as groups of small blocks followed by an untouched identity
part. Group g holds ``n_g`` blocks of size ``k_g`` (2 for an in-plane angle, 3 for a camera
rotation), and every block of the group is multiplied by the same rotation matrix R_g:

    z = [b_1^1 .. b_n1^1 | b_1^2 .. b_n2^2 | ... | identity],   b_i^g  ->  R_g b_i^g

The layer has no parameters; it is batched (one R_g per sample), differentiable and runs on
whatever device its inputs are on. Shared by the interpretable transformations and the
multi-view pose methods.

Orientation: ``rotation_2d(θ) = [[cos θ, −sin θ], [sin θ, cos θ]]`` turns a vector
counter-clockwise by θ, so ``rotation_2d(a) @ rotation_2d(b) == rotation_2d(a + b)``: the map
θ ↦ F_θ is a group homomorphism (F_a F_b = F_{a+b}, F_{−θ} = F_θ⁻¹).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelError


def rotation_2d(theta):
    """R(θ) for angles ``theta`` in radians: float tensor (...,) -> (..., 2, 2), same dtype/device."""
    import torch

    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def rotation_axis(theta, axis: str):
    """Rotation by ``theta`` (radians, tensor (...,)) about the x, y or z axis: (..., 3, 3).

    Right-handed: about z, x turns toward y (the same sense as ``rotation_2d`` in the xy plane).
    """
    import torch

    c, s = torch.cos(theta), torch.sin(theta)
    o, z = torch.ones_like(theta), torch.zeros_like(theta)
    rows = {
        "x": [[o, z, z], [z, c, -s], [z, s, c]],
        "y": [[c, z, s], [z, o, z], [-s, z, c]],
        "z": [[c, -s, z], [s, c, z], [z, z, o]],
    }
    if axis not in rows:
        raise ModelError(f"rotation axis must be 'x', 'y' or 'z', not {axis!r}")
    return torch.stack([torch.stack(r, -1) for r in rows[axis]], -2)


@dataclass(frozen=True)
class BlockLayout:
    """Which part of a latent each rotation acts on.

    ``groups``: one (n_blocks, block_dim) pair per transformation factor, in latent order;
    ``latent_dim``: D, at least the rotated size; the remaining dimensions are the identity part.
    """

    groups: tuple[tuple[int, int], ...]
    latent_dim: int

    def __post_init__(self):
        for i, (n, k) in enumerate(self.groups):
            if n < 1 or k < 2:
                raise ModelError(f"FTL group {i}: needs at least one block of size >= 2, got {n} blocks of size {k}")
        if self.latent_dim < self.rotated_dim:
            raise ModelError(
                f"FTL latent size {self.latent_dim} is smaller than its rotated blocks ({self.rotated_dim} = "
                + " + ".join(f"{n}x{k}" for n, k in self.groups)
                + "); make the latent larger or use fewer blocks"
            )

    @property
    def rotated_dim(self) -> int:
        """Dimensions that rotations act on (the rest is the identity part)."""
        return sum(n * k for n, k in self.groups)

    def split(self, z):
        """Split latents z: (B, D) into per-group blocks [(B, n_g, k_g), ...] and the identity part (B, D − rotated)."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ModelError(f"FTL expects latents of shape (batch, {self.latent_dim}), got {tuple(z.shape)}")
        out, start = [], 0
        for n, k in self.groups:
            out.append(z[:, start : start + n * k].reshape(z.shape[0], n, k))
            start += n * k
        return out, z[:, start:]


def rotate_blocks(blocks, rotation):
    """Multiply every block by its sample's rotation: blocks (B, n, k), rotation (B, k, k) or (k, k) -> (B, n, k)."""
    k = blocks.shape[-1]
    if rotation.shape[-2:] != (k, k) or rotation.dim() not in (2, 3) or (rotation.dim() == 3 and rotation.shape[0] != blocks.shape[0]):
        raise ModelError(f"FTL rotation of shape {tuple(rotation.shape)} does not fit blocks of shape {tuple(blocks.shape)}; expected ({blocks.shape[0]}, {k}, {k}) or ({k}, {k})")
    return blocks @ rotation.transpose(-1, -2)


def transform(z, layout: BlockLayout, rotations):
    """Apply the FTL: z (B, D) float, ``rotations`` one (B, k_g, k_g) or (k_g, k_g) tensor per group -> (B, D).

    Group g's blocks are turned by ``rotations[g]``; the identity part passes unchanged.
    """
    import torch

    if len(rotations) != len(layout.groups):
        raise ModelError(f"FTL has {len(layout.groups)} block groups but was given {len(rotations)} rotations")
    blocks, rest = layout.split(z)
    turned = [rotate_blocks(b, r.to(z.dtype)).reshape(z.shape[0], -1) for b, r in zip(blocks, rotations)]
    return torch.cat([*turned, rest], dim=1)


def block_angles(z, layout: BlockLayout, group: int = 0):
    """Per-block angles of a 2-D group: z (B, D) -> (B, n_g) radians, atan2(b_y, b_x)."""
    import torch

    blocks, _ = layout.split(z)
    b = blocks[group]
    if b.shape[-1] != 2:
        raise ModelError(f"block_angles needs a group of 2-D blocks; group {group} has blocks of size {b.shape[-1]}")
    return torch.atan2(b[..., 1], b[..., 0])
