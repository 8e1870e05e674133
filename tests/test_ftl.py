"""The feature transform layer (cnninterp.models.ftl): group laws, norms, blocks, gradients, errors."""

import math

import pytest
import torch

from cnninterp.errors import ModelError
from cnninterp.models import ftl

LAYOUT = ftl.BlockLayout(groups=((3, 2), (2, 3)), latent_dim=17)  # 6 + 6 rotated, 5 identity


def rotations(theta):
    return [ftl.rotation_2d(theta), ftl.rotation_axis(theta, "y")]


def test_rotation_2d_is_counter_clockwise_and_identity_at_zero():
    r = ftl.rotation_2d(torch.tensor(math.pi / 2, dtype=torch.float64))
    assert torch.allclose(r @ torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(ftl.rotation_2d(torch.tensor(0.0)), torch.eye(2))


@pytest.mark.parametrize("axis, v, turned", [
    ("x", [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]),  # right-handed: about x, y turns toward z
    ("y", [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]),  # about y, z turns toward x
    ("z", [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]),  # about z, x turns toward y
])
def test_axis_rotations_by_a_quarter_turn_are_right_handed(axis, v, turned):
    """Hand cases of the right-hand rule: a sign flip of an axis's sine is still a rotation, so the
    group laws cannot see it."""
    r = ftl.rotation_axis(torch.tensor(math.pi / 2, dtype=torch.float64), axis)
    assert torch.allclose(r @ torch.tensor(v, dtype=torch.float64), torch.tensor(turned, dtype=torch.float64), atol=1e-12)


def test_homomorphism_and_inverse():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(5, generator=g, dtype=torch.float64) * 7 - 3.5, torch.rand(5, generator=g, dtype=torch.float64) * 7 - 3.5
    z = torch.randn(5, 17, generator=g, dtype=torch.float64)
    ab = ftl.transform(ftl.transform(z, LAYOUT, rotations(b)), LAYOUT, rotations(a))
    assert torch.allclose(ab, ftl.transform(z, LAYOUT, rotations(a + b)), atol=1e-12)
    back = ftl.transform(ftl.transform(z, LAYOUT, rotations(a)), LAYOUT, rotations(-a))
    assert torch.allclose(back, z, atol=1e-12)
    for axis in "xyz":
        r = ftl.rotation_axis(a, axis)
        assert torch.allclose(r @ ftl.rotation_axis(b, axis), ftl.rotation_axis(a + b, axis), atol=1e-12)


def test_norm_of_every_block_is_preserved_and_identity_part_untouched():
    z = torch.randn(4, 17, dtype=torch.float64)
    out = ftl.transform(z, LAYOUT, rotations(torch.rand(4, dtype=torch.float64) * 6))
    (b_in, r_in), (b_out, r_out) = LAYOUT.split(z), LAYOUT.split(out)
    for x, y in zip(b_in, b_out):
        assert torch.allclose(x.norm(dim=-1), y.norm(dim=-1), atol=1e-12)
    assert torch.equal(r_in, r_out)


def test_blocks_are_independent():
    """Changing one block of the input changes only that block of the output (hand check: each
    output block equals R applied to its own input block alone)."""
    z = torch.randn(2, 17, dtype=torch.float64)
    theta = torch.tensor([0.3, -1.2], dtype=torch.float64)
    out = ftl.transform(z, LAYOUT, rotations(theta))
    z2 = z.clone()
    z2[:, 2:4] += 5.0  # block 1 of group 0
    out2 = ftl.transform(z2, LAYOUT, rotations(theta))
    changed = (out2 - out).abs().sum(0) > 1e-12
    assert changed[2:4].all() and not changed[:2].any() and not changed[4:].any()
    c, s = torch.cos(theta[0]), torch.sin(theta[0])
    x, y = z[0, 0], z[0, 1]
    assert torch.allclose(out[0, :2], torch.stack([c * x - s * y, s * x + c * y]))


def test_shared_rotation_matrix_broadcasts():
    z = torch.randn(3, 17)
    theta = torch.tensor(0.7)
    shared = ftl.transform(z, LAYOUT, rotations(theta))
    batched = ftl.transform(z, LAYOUT, rotations(theta.repeat(3)))
    assert torch.allclose(shared, batched, atol=1e-6)


def test_gradcheck_float64():
    z = torch.randn(3, 17, dtype=torch.float64, requires_grad=True)
    theta = torch.rand(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z, t: ftl.transform(z, LAYOUT, rotations(t)), (z, theta))


def test_block_angles_reads_the_angle_of_each_block():
    layout = ftl.BlockLayout(groups=((2, 2),), latent_dim=4)
    z = torch.tensor([[1.0, 0.0, 0.0, 2.0]])
    assert torch.allclose(ftl.block_angles(z, layout), torch.tensor([[0.0, math.pi / 2]]))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ftl.BlockLayout(groups=((3, 2),), latent_dim=5), "smaller than its rotated blocks"),
        (lambda: ftl.BlockLayout(groups=((0, 2),), latent_dim=5), "at least one block"),
        (lambda: LAYOUT.split(torch.zeros(2, 16)), r"shape \(batch, 17\)"),
        (lambda: ftl.transform(torch.zeros(2, 17), LAYOUT, [ftl.rotation_2d(torch.zeros(2))]), "2 block groups but was given 1"),
        (lambda: ftl.transform(torch.zeros(2, 17), LAYOUT, [ftl.rotation_2d(torch.zeros(3)), ftl.rotation_axis(torch.zeros(2), "x")]), "does not fit blocks"),
        (lambda: ftl.rotation_axis(torch.zeros(1), "w"), "axis must be"),
    ],
)
def test_bad_input_gives_a_clear_error(make, message):
    with pytest.raises(ModelError, match=message):
        make()
