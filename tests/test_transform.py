"""Interpretable transformations: metrics on constructed latents, the digits data, the models, bad input."""

import json
import math

import numpy as np
import pytest
import torch

from cnninterp.data import digits
from cnninterp.errors import ConfigError, DataError, ModelError
from cnninterp.models import ftl
from cnninterp.transform import metrics
from cnninterp.transform.model import ModelSpec, build

LAYOUT = ftl.BlockLayout(groups=((4, 2),), latent_dim=8)


def point_rotate(x, theta):
    """Inputs: n 2-D points per sample (B, 2n), each turned counter-clockwise by theta (B,) (the hand-made 'image' rotation)."""
    c, s = torch.cos(theta)[:, None], torch.sin(theta)[:, None]
    p = x.reshape(len(x), -1, 2)
    return torch.stack([c * p[..., 0] - s * p[..., 1], s * p[..., 0] + c * p[..., 1]], -1).reshape(len(x), -1)


def test_an_exactly_equivariant_linear_pair_has_zero_error_and_a_random_one_a_large_error():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 8, generator=g, dtype=torch.float64)
    theta = torch.rand(32, generator=g, dtype=torch.float64) * 2 * math.pi - math.pi
    # encoder: a permutation of the points and a scale per point (commutes with rotating every point)
    perm = torch.tensor([2, 3, 0, 1, 6, 7, 4, 5])
    scale = torch.tensor([1.0, 1.0, 2.0, 2.0, 0.5, 0.5, 3.0, 3.0], dtype=torch.float64)

    def encode(v):
        return v[:, perm] * scale

    def decode(z):
        out = torch.empty_like(z)
        out[:, perm] = z / scale
        return out

    x_t = point_rotate(x, theta)
    assert metrics.equivariance_error(encode(x), encode(x_t), theta, LAYOUT) < 1e-12
    turned = ftl.transform(encode(x), LAYOUT, [ftl.rotation_2d(theta)])
    assert torch.allclose(decode(turned), x_t, atol=1e-12)
    w = torch.randn(8, 8, generator=g, dtype=torch.float64)
    assert metrics.equivariance_error(x @ w.T, x_t @ w.T, theta, LAYOUT) > 0.5


def test_angle_recovery_returns_the_angle_used_to_rotate_constructed_latents():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(50, 8, generator=g, dtype=torch.float64)
    theta = torch.rand(50, generator=g, dtype=torch.float64) * 2 * math.pi - math.pi
    z_t = ftl.transform(z, LAYOUT, [ftl.rotation_2d(theta)])
    est = metrics.recover_angle(z, z_t, LAYOUT)
    assert metrics.angle_error_deg(est, theta) < 1e-9
    # wrap-around: 179° vs −179° is 2° apart
    assert metrics.angle_error_deg(torch.tensor([math.radians(179.0)], dtype=torch.float64), torch.tensor([math.radians(-179.0)], dtype=torch.float64)) == pytest.approx(2.0)
    # chance: guesses uniform on the circle are 90° off on average
    rand = torch.rand(20000, generator=g, dtype=torch.float64) * 2 * math.pi
    assert metrics.angle_error_deg(rand, theta.repeat(400)) == pytest.approx(metrics.CHANCE_ANGLE_ERROR_DEG, abs=2.0)


def test_block_norms_are_rotation_invariant():
    z = torch.randn(6, 8)
    z_t = ftl.transform(z, LAYOUT, [ftl.rotation_2d(torch.rand(6) * 6)])
    assert torch.allclose(metrics.block_norms(z, LAYOUT), metrics.block_norms(z_t, LAYOUT), atol=1e-5)


def test_digit_images_keep_rotations_inside_the_frame():
    images, labels = digits.digit_images(upsample=2, pad=4)
    assert images.shape == (1797, 24, 24) and images.dtype == np.uint8 and set(labels) == set(range(10))
    x = torch.from_numpy(images[:50, None].astype(np.float32) / 255)
    turned = digits.rotate_images(x, torch.full((50,), math.radians(45.0)))
    # mass kept: a rotation that cut the digit off would lose ink
    assert torch.allclose(turned.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=0.05)
    back = digits.rotate_images(turned, torch.full((50,), math.radians(-45.0)))
    assert (back - x).abs().mean() < 0.06


def test_rotate_images_turns_counter_clockwise_on_screen():
    img = torch.zeros(1, 1, 9, 9)
    img[0, 0, 4, 8] = 1.0  # right of the centre
    out = digits.rotate_images(img, torch.tensor([math.pi / 2]))
    assert out[0, 0].argmax() == 0 * 9 + 4  # top row, centre column (y points down on screen)


def test_held_out_angles_are_never_drawn_for_training():
    rng = np.random.default_rng(0)
    arc = (120.0, 180.0)
    seen = digits.sample_angles(rng, 5000, arc, heldout=False)
    held = digits.sample_angles(rng, 5000, arc, heldout=True)
    assert not digits.in_arc(seen, arc).any() and digits.in_arc(held, arc).all()
    digits.check_angles(seen)
    digits.check_angles(held)


def test_shards_record_the_split_and_the_factor(tmp_path):
    manifest = digits.write_digits(tmp_path / "d", upsample=1, pad=2, test_fraction=0.25, heldout_start_deg=30,
                                   heldout_width_deg=60, seed=0, shard_size=800)
    assert manifest["splits"]["test"]["samples"] == 449 and manifest["splits"]["train"]["samples"] == 1348
    assert manifest["factors"]["rotation_deg"]["heldout"] == [30.0, 90.0]
    x, y = digits.load_split(tmp_path / "d", "test")
    assert x.shape == (449, 1, 12, 12) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1 and len(y) == 449
    again = digits.write_digits(tmp_path / "e", upsample=1, pad=2, test_fraction=0.25, heldout_start_deg=30,
                                heldout_width_deg=60, seed=0, shard_size=800)
    assert [s["sha256"] for s in again["splits"]["train"]["shards"]] == [s["sha256"] for s in manifest["splits"]["train"]["shards"]]


@pytest.mark.parametrize("kind", ["ftl", "baseline"])
def test_models_map_images_to_images(kind):
    model = build(ModelSpec(kind=kind, channels=4, blocks=3, identity_dim=2))
    x = torch.rand(5, 1, 24, 24)
    assert model.encode(x).shape == (5, 8)
    out = model(x, torch.zeros(5))
    assert out.shape == x.shape and (out >= 0).all() and (out <= 1).all()


def test_the_ftl_model_turns_its_latent_before_decoding():
    """FTL decoding at θ equals decoding the latent turned by θ at angle 0."""
    model = build(ModelSpec(kind="ftl", channels=4, blocks=3, identity_dim=2))
    x, theta = torch.rand(3, 1, 24, 24), torch.tensor([0.5, -2.0, 3.0])
    z = model.encode(x)
    turned = ftl.transform(z, model.layout, [ftl.rotation_2d(theta)])
    assert torch.allclose(model.decode(z, theta), model.decode(turned, torch.zeros(3)), atol=1e-6)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: ModelSpec(blocks=8, identity_dim=0).layout and ftl.BlockLayout(groups=((8, 2),), latent_dim=15), ModelError, "smaller than its rotated blocks"),
        (lambda: build(ModelSpec(kind="ftl", image_size=22)), ModelError, "divisible by 4"),
        (lambda: build(ModelSpec(kind="other")), ModelError, "kind must be one of"),
        (lambda: build(ModelSpec(channels=2, blocks=2, identity_dim=0)).decode(torch.zeros(3, 4), torch.zeros(3, 2)), ModelError, "one angle per latent"),
        (lambda: digits.rotate_images(torch.zeros(2, 1, 8, 8), torch.zeros(3)), DataError, "one angle per image"),
        (lambda: metrics.equivariance_error(torch.zeros(2, 7), torch.zeros(2, 7), torch.zeros(2), LAYOUT), ModelError, r"shape \(batch, 8\)"),
        (lambda: digits.check_angles(np.array([10.0, 200.0])), DataError, "200.0° lies outside the declared range"),
        (lambda: digits.check_heldout(170.0, 400.0), DataError, "held-out arc"),
        (lambda: digits.check_heldout(-30.0, 60.0), DataError, "holds 0°, the upright angle"),
        (lambda: digits.check_heldout(120.0, 0.0), DataError, r"width in \(0, 360"),
        (lambda: digits.write_digits("unused", upsample=1, pad=0, test_fraction=1.5, heldout_start_deg=0, heldout_width_deg=10, seed=0, shard_size=10), DataError, "test_fraction"),
    ],
)
def test_bad_input_gives_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_config_block_is_validated_with_defaults():
    import yaml

    from cnninterp.config import validate_config

    base = yaml.safe_load(open(digits.__file__.rsplit("/workflow/", 1)[0] + "/config.yaml"))
    base.pop("transform", None)
    cfg = validate_config(base)
    assert cfg["transform"]["enabled"] is True and cfg["transform"]["train"]["epochs"] >= 1
    with pytest.raises(ConfigError, match="transform.model.blocks"):
        validate_config({**base, "transform": {"model": {"blocks": 0}}})
    with pytest.raises(ConfigError, match="transform"):
        validate_config({**base, "transform": {"unknown": 1}})


def test_cli_rejects_bad_values(tmp_path):
    from cnninterp.cli import main

    assert main(["transform", "train", "--shards", str(tmp_path), "--out", str(tmp_path / "m.pt"), "--kind", "ftl", "--epochs", "0"]) == 2
    assert main(["transform", "train", "--shards", str(tmp_path), "--out", str(tmp_path / "m.pt"), "--kind", "ftl"]) == 2  # no manifest


def test_the_blocks_own_equivariance_error_sees_the_escape_into_the_identity_part():
    """Blocks that turn the wrong way but hold 1% of the latent: the whole-latent error is small, the blocks' own is not."""
    g = torch.Generator().manual_seed(2)
    layout = ftl.BlockLayout(groups=((4, 2),), latent_dim=40)
    z = torch.randn(64, 40, generator=g, dtype=torch.float64)
    z[:, :8] *= 0.01
    theta = torch.rand(64, generator=g, dtype=torch.float64) * 2 * math.pi - math.pi
    exact = ftl.transform(z, layout, [ftl.rotation_2d(theta)])
    assert metrics.group_equivariance_error(z, exact, theta, layout) < 1e-12
    wrong = ftl.transform(z, layout, [ftl.rotation_2d(-theta)])
    assert metrics.equivariance_error(z, wrong, theta, layout) < 0.02
    # ‖R(−θ)b − R(θ)b‖ = 2|sin θ|·‖b‖, mean of 2|sin θ| over θ uniform: 4/π
    assert metrics.group_equivariance_error(z, wrong, theta, layout) == pytest.approx(float((2 * theta.sin().abs()).mean()), rel=1e-9)


PAIR = ftl.BlockLayout(groups=((2, 2),), latent_dim=4)  # two 2-blocks, no identity part
DEG = math.pi / 180


def f64(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_recovered_angle_is_the_circular_mean_of_the_blocks_turns_weighted_by_their_norms():
    """arg Σ conj(b_i)·b'_i by hand: blocks turned +170° and −170° give 2·cos 170° < 0, i.e. 180°
    (their arithmetic mean is 0°); a norm-10 block turned 10° and a norm-0.1 block turned 90° give
    100·e^{i10°} + 0.01·i, i.e. atan(tan 10° + 0.01 / (100·cos 10°)) ≈ 10.0056° (unweighted: 50°)."""
    z = f64([1.0, 0.0, 1.0, 0.0])
    z_t = f64([math.cos(170 * DEG), math.sin(170 * DEG), math.cos(-170 * DEG), math.sin(-170 * DEG)])
    assert abs(float(metrics.recover_angle(z, z_t, PAIR)[0])) / DEG == pytest.approx(180.0, abs=1e-9)
    z = f64([10.0, 0.0, 0.1, 0.0])
    z_t = f64([10 * math.cos(10 * DEG), 10 * math.sin(10 * DEG), 0.0, 0.1])
    want = math.atan(math.tan(10 * DEG) + 0.01 / (100 * math.cos(10 * DEG))) / DEG
    assert want == pytest.approx(10.0056, abs=5e-5)
    assert float(metrics.recover_angle(z, z_t, PAIR)[0]) / DEG == pytest.approx(want, abs=1e-9)


def test_angle_error_is_the_mean_not_the_median_of_the_absolute_errors():
    est = f64(0.0, 0.0, 90 * DEG)
    assert metrics.angle_error_deg(est, torch.zeros(3, dtype=torch.float64)) == pytest.approx(30.0, abs=1e-9)  # (0 + 0 + 90) / 3


def test_equivariance_errors_divide_by_the_norm_of_the_untransformed_latent():
    """z = e1, z_θ = 3·e1, θ = 0: ‖3e1 − e1‖ / ‖e1‖ = 2 for the whole latent and for group 0's blocks
    (dividing by ‖z_θ‖ would give 2/3)."""
    z, z_t, theta = f64([1.0, 0.0, 0.0, 0.0]), f64([3.0, 0.0, 0.0, 0.0]), torch.zeros(1, dtype=torch.float64)
    assert metrics.equivariance_error(z, z_t, theta, PAIR) == pytest.approx(2.0, abs=1e-12)
    assert metrics.group_equivariance_error(z, z_t, theta, PAIR) == pytest.approx(2.0, abs=1e-12)


def test_latent_share_splits_the_squared_norm_between_blocks_and_identity_part():
    layout = ftl.BlockLayout(groups=((2, 2),), latent_dim=6)
    share = metrics.latent_share(f64([1.0, 0.0, 0.0, 0.0, 2.0, -2.0]), layout)  # ‖z‖² = 1 + 4 + 4 = 9
    assert share == pytest.approx([1 / 9, 8 / 9], abs=1e-12)


def test_evaluation_refuses_models_trained_on_other_shards(tmp_path):
    """Models trained on shards A (held-out arc [120°, 180°)) evaluated with shards B (another arc and
    split seed) would report "held-out" figures for angles and digits they trained on: DataError naming
    both manifests; with A it runs. A checkpoint without the recorded digest is compared on its arc."""
    from cnninterp.transform.evaluate import evaluate
    from cnninterp.transform.train import train_model

    torch.set_num_threads(1)
    make = lambda name, start, seed: digits.write_digits(tmp_path / name, upsample=1, pad=2, test_fraction=0.25,  # noqa: E731
                                                          heldout_start_deg=start, heldout_width_deg=60, seed=seed, shard_size=2000)
    make("A", 120, 0), make("B", -120, 1)
    for kind in ("ftl", "baseline"):
        train_model(tmp_path / "A", tmp_path / kind / "model.pt", ModelSpec(kind=kind, image_size=12, channels=2, blocks=2, identity_dim=2),
                    epochs=1, batch_size=256, lr=1e-2, seed=0, device="cpu")
    run = lambda shards, ftl_path, out: evaluate(tmp_path / shards, ftl_path, tmp_path / "baseline/model.pt", tmp_path / out,  # noqa: E731
                                                 samples=8, turn_rows=1, turn_steps=2, seed=0)
    with pytest.raises(DataError, match=rf"trained on the shards of {tmp_path / 'A'}/manifest.json .*{tmp_path / 'B'}/manifest.json"):
        run("B", tmp_path / "ftl/model.pt", "evalB/digits.json")
    assert not (tmp_path / "evalB").exists()
    payload = torch.load(tmp_path / "ftl/model.pt", weights_only=True)
    del payload["config"]["shards_manifest_sha256"]  # as written before the digest was recorded
    torch.save(payload, tmp_path / "old.pt")
    with pytest.raises(DataError, match=r"held-out arc \(degrees\) \[120.0, 180.0\].*has held-out arc \(degrees\) \[-120.0, -60.0\]"):
        run("B", tmp_path / "old.pt", "evalB/digits.json")
    assert run("A", tmp_path / "ftl/model.pt", "evalA/digits.json")["heldout_deg"]["digits"] == [120.0, 180.0]
