"""The transform method on the 3-D set: two block groups, the latent term's scale, training and
evaluation end to end on tiny shards, the merge into metrics.json and the report section."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cnninterp.data import objects3d
from cnninterp.errors import ConfigError, DataError, ModelError
from cnninterp.models import ftl
from cnninterp.transform import metrics
from cnninterp.transform.model import ModelSpec, build
from cnninterp.transform.train import equivariance_term

TWO = ftl.BlockLayout(groups=((2, 2), (1, 2)), latent_dim=8)  # in plane 0:4, azimuth 4:6, identity 6:8


def test_two_group_models_turn_each_group_by_its_own_angle():
    model = build(ModelSpec(kind="ftl", image_size=16, channels=2, blocks=2, identity_dim=2, azimuth_blocks=1))
    assert model.layout == TWO and model.spec.factors == 2
    x = torch.rand(3, 1, 16, 16)
    theta = torch.tensor([[0.5, -1.0], [2.0, 0.3], [-3.0, 1.5]])
    z = model.encode(x)
    turned = z.clone()
    for g, sl in ((0, slice(0, 4)), (1, slice(4, 6))):
        c, s = torch.cos(theta[:, g])[:, None], torch.sin(theta[:, g])[:, None]
        b = z[:, sl].reshape(3, -1, 2)
        turned[:, sl] = torch.stack([c * b[..., 0] - s * b[..., 1], s * b[..., 0] + c * b[..., 1]], -1).reshape(3, -1)
    assert torch.allclose(model.decode(z, theta), model.decode(turned, torch.zeros(3, 2)), atol=1e-6)
    base = build(ModelSpec(kind="baseline", image_size=16, channels=2, blocks=2, identity_dim=2, azimuth_blocks=1))
    assert base.decoder_in[0].in_features == 8 + 4 and base(x, theta).shape == x.shape
    with pytest.raises(ModelError, match=r"shape \(3, 2\)"):
        model.decode(z, torch.zeros(3))


def test_equivariance_error_takes_one_angle_per_group():
    z = torch.randn(5, 8, dtype=torch.float64)
    theta = torch.rand(5, 2, dtype=torch.float64) * 6 - 3
    z_t = ftl.transform(z, TWO, [ftl.rotation_2d(theta[:, 0]), ftl.rotation_2d(theta[:, 1])])
    assert metrics.equivariance_error(z, z_t, theta, TWO) < 1e-12
    # swapping the groups' angles is not equivariance
    assert metrics.equivariance_error(z, z_t, theta.flip(1), TWO) > 0.1
    for g in (0, 1):
        assert metrics.angle_error_deg(metrics.recover_angle(z, z_t, TWO, group=g), theta[:, g]) < 1e-9
    with pytest.raises(ModelError, match=r"shape \(batch, 2\)"):
        metrics.equivariance_error(z, z_t, theta[:, 0], TWO)


def test_the_part_scale_of_the_latent_term_cannot_be_escaped_by_shrinking_the_blocks():
    g = torch.Generator().manual_seed(0)
    z_in, z_out = torch.randn(64, 8, generator=g), torch.randn(64, 8, generator=g)
    theta = torch.rand(64, 2, generator=g) * 6 - 3
    exact = ftl.transform(z_in, TWO, [ftl.rotation_2d(theta[:, 0]), ftl.rotation_2d(theta[:, 1])])
    for norm in ("latent", "part"):
        assert float(equivariance_term(z_in, exact, theta, TWO, norm)) < 1e-10
    # the encoder's escape: blocks made small (and turned the wrong way: z_out = -F z_in on them),
    # the identity part large and fixed
    shrink = torch.tensor([0.01] * 6 + [100.0] * 2)
    z_in_s = z_in * shrink
    z_out_s = exact * shrink
    z_out_s[:, :6] = -z_out_s[:, :6]
    assert float(equivariance_term(z_in_s, z_out_s, theta, TWO, "latent")) < 1e-6
    # per part: |-2 R a|² / |a|² = 4 for each rotated group, 0 for the identity part -> 8/3 whatever the scales
    assert float(equivariance_term(z_in_s, z_out_s, theta, TWO, "part")) == pytest.approx(8 / 3, rel=1e-5)
    z_out_u = exact.clone()
    z_out_u[:, :6] = -z_out_u[:, :6]
    assert float(equivariance_term(z_in, z_out_u, theta, TWO, "part")) == pytest.approx(8 / 3, rel=1e-5)


def test_latent_share_splits_the_squared_norm_by_part():
    z = torch.tensor([[3.0, 0, 0, 0, 0, 4.0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 5.0]])  # 9 | 16 | 25 of 50
    assert metrics.latent_share(z, TWO) == pytest.approx([0.18, 0.32, 0.5])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Tiny objects3d shards, both models trained one epoch, evaluated (the real code path)."""
    from cnninterp.transform.evaluate3d import evaluate_objects3d
    from cnninterp.transform.train import train_model

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("obj")
    objects3d.write_objects3d(root / "sh", objects_train=6, objects_test=2, image_size=16, azimuth_step_deg=30, elevation_deg=20,
                              heldout_start_deg=90, heldout_width_deg=60, seed=0, shard_size=100, inplane_range_deg=45)
    for kind in ("ftl", "baseline"):
        spec = ModelSpec(kind=kind, image_size=16, channels=2, blocks=2, identity_dim=2, azimuth_blocks=2)
        train_model(root / "sh", root / kind / "model.pt", spec, epochs=1, batch_size=32, lr=1e-2, seed=0, device="cpu",
                    equivariance_weight=0.1, equivariance_norm="part")
    result = evaluate_objects3d(root / "sh", root / "ftl/model.pt", root / "baseline/model.pt", root / "eval/objects3d.json",
                                samples=30, turn_rows=2, turn_steps=4, seed=0)
    return root, result


def test_training_and_evaluation_write_per_factor_metrics_and_the_turn(tiny_run):
    root, result = tiny_run
    assert json.loads((root / "eval/objects3d.json").read_text()) == json.loads(json.dumps(result))
    ang = result["angle_error_deg"]["objects3d"]
    assert set(ang["ftl"]) == {"inplane", "azimuth"} and set(ang["ftl"]["azimuth"]) == {"seen", "heldout"}
    assert result["heldout_deg"]["objects3d"] == [90.0, 150.0] and result["inplane_range_deg"]["objects3d"] == 45.0
    # always guessing 0 for a roll difference of two uniform draws on ±45°: E|β − α| = 2·45/3 = 30°
    assert ang["zero_guess"]["inplane"]["seen"] == pytest.approx(30.0, abs=6.0)
    for part in ("seen", "heldout"):
        for kind in ("ftl", "baseline", "ftl_azimuth_not_turned"):
            assert 0 < result["reconstruction_mse"]["objects3d"][kind][part] < 1
    turn = np.load(root / "eval/turn_objects3d.npy")
    assert turn.shape == (4, 5, 16, 16)
    test = objects3d.load_views(root / "sh", "test")
    a0 = int(np.flatnonzero(test["azimuth_deg"] == 0.0)[0])
    # truth rows: the input, then the stored views at 0°, 90°, 180°, 270°
    for k, az in enumerate((0.0, 90.0, -180.0, -90.0)):
        j = int(np.flatnonzero(test["azimuth_deg"] == az)[0])
        assert np.array_equal(turn[0, k + 1], test["images"][0, j, 0]) and np.array_equal(turn[2, k + 1], test["images"][1, j, 0])
    assert np.array_equal(turn[1, 0], test["images"][0, a0, 0])
    inv = result["invariant_accuracy"]["objects3d"]
    assert inv["chance"] == pytest.approx(1 / 6)
    assert inv["features"] == {"block_norms": 4, "pixel_pca": 4, "invariant_latent": 6, "pixel_pca_invariant_latent": 6, "raw_pixels": 256}
    assert inv["parameters"] == {"block_norms": 5 * 6, "pixel_pca": 5 * 6, "invariant_latent": 7 * 6, "pixel_pca_invariant_latent": 7 * 6,
                                 "raw_pixels": 257 * 6}
    assert set(result["equivariance_error_blocks"]["objects3d"]) == {"inplane", "azimuth"}
    assert set(result["latent_share"]["objects3d"]) == {"inplane", "azimuth", "identity"}
    assert sum(result["latent_share"]["objects3d"].values()) == pytest.approx(1.0)


def test_evaluation_refuses_models_trained_on_other_shards(tiny_run):
    """The tiny models (trained on shards with the held-out azimuths [90°, 150°)) evaluated with shards
    of another held-out arc: DataError naming both manifests, nothing written."""
    from cnninterp.transform.evaluate3d import evaluate_objects3d

    root, _ = tiny_run
    objects3d.write_objects3d(root / "other", objects_train=2, objects_test=2, image_size=16, azimuth_step_deg=30, elevation_deg=20,
                              heldout_start_deg=-90, heldout_width_deg=60, seed=0, shard_size=100, inplane_range_deg=45)
    with pytest.raises(DataError, match=rf"trained on the shards of {root / 'sh'}/manifest.json .*{root / 'other'}/manifest.json"):
        evaluate_objects3d(root / "other", root / "ftl/model.pt", root / "baseline/model.pt", root / "evalB/objects3d.json",
                           samples=4, turn_rows=1, turn_steps=2, seed=0)
    assert not (root / "evalB").exists()


def test_training_refuses_a_model_without_an_azimuth_group(tiny_run):
    from cnninterp.transform.train import train_model

    root, _ = tiny_run
    with pytest.raises(ConfigError, match="set --azimuth-blocks >= 1"):
        train_model(root / "sh", root / "x/model.pt", ModelSpec(image_size=16, channels=2, blocks=2), epochs=1, batch_size=8,
                    lr=1e-3, seed=0, device="cpu")
    assert not (root / "x/model.pt").exists()


def test_merge_and_report_section(tiny_run, tmp_path):
    from cnninterp.report.build import environment
    from cnninterp.transform import report
    from cnninterp.transform.merge import merge_metrics

    root, result = tiny_run
    folder = tmp_path / "results/eval/transform"
    folder.mkdir(parents=True)
    digits_part = {"reconstruction_mse": {"digits": {"ftl": {"seen": 0.01, "heldout": 0.02}, "baseline": {"seen": 0.03, "heldout": 0.04}}},
                   "equivariance_error": {"digits": {"seen": 0.3, "heldout": 0.4}},
                   "angle_error_deg": {"digits": {"ftl": {"seen": 12.5, "heldout": 20.5}, "chance": 90.0}},
                   "invariant_accuracy": {"digits": {"block_norms": 0.8, "pixel_pca": 0.6, "raw_pixels": 0.5,
                                                     "features": {"block_norms": 16, "pixel_pca": 16, "raw_pixels": 576}, "chance": 0.1}},
                   "heldout_deg": {"digits": [120.0, 180.0]}}
    (folder / "digits.json").write_text(json.dumps(digits_part))
    merged = merge_metrics([folder / "digits.json", root / "eval/objects3d.json"], folder / "metrics.json")
    assert set(merged["angle_error_deg"]) == {"digits", "objects3d"} and merged["heldout_deg"]["digits"] == [120.0, 180.0]
    with pytest.raises(DataError, match="already come from another input"):
        merge_metrics([folder / "digits.json", folder / "digits.json"], tmp_path / "m.json")
    (tmp_path / "bad.json").write_text(json.dumps({"reconstruction_mse": {}}))
    with pytest.raises(DataError, match="lacks equivariance_error"):
        merge_metrics([tmp_path / "bad.json"], tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()
    np.save(folder / "turn_objects3d.npy", np.load(root / "eval/turn_objects3d.npy"))
    staging = tmp_path / "staging"

    def asset(*parts):
        path = staging.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path, "/".join(parts)

    config = {"transform": {"enabled": True, "train": {"equivariance_weight": 0.1, "equivariance_norm": "part"},
                            "objects3d": {"enabled": True, "equivariance_weight": 0.1, "equivariance_norm": "part", "epochs": 1, "objects_train": 6}}}
    ctx = SimpleNamespace(config=config, results=tmp_path / "results", asset=asset)
    data = report.render(ctx)
    names = [line[0] for row in data["rows"] for line in row["lines"]]
    assert any(n.startswith("azimuth (out-of-plane) angle error") for n in names) and any(n.startswith("angle error from latents") for n in names)
    assert [f["dataset"] for f in data["figures"]] == ["objects3d"]  # no turn_digits.npy here
    assert "Columns 3 lie on the held-out azimuths 90°–150°" in data["figures"][0]["caption"]  # turns 0°, 90°, 180°, 270°: column 3 is 90°
    html = environment().get_template(report.TEMPLATE).render(data=data)
    shape_rows = {name: (n, params) for name, _, n, params in data["rows"][1]["invariant"]}
    assert list(shape_rows.values()) == [(4, 30), (4, 30), (6, 42), (6, 42), (256, 1542)]
    assert "equivariance error of the azimuth (out-of-plane) blocks alone" in html and "the same classifier, the same size" in html
    # the paper's claims beside this run's figures: the digits' 12.5° / 20.5°, the 3-D azimuth, both datasets' classifiers
    assert len(data["claims"]) == 4 and "12.5° off on seen angles and 20.5°" in data["claims"][0][1]
    az = result["angle_error_deg"]["objects3d"]["ftl"]["azimuth"]
    assert f"{az['seen']:.0f}° off seen" in data["claims"][1][1] and "digits: block norms 0.800 vs" in data["claims"][2][1]
    assert "Out of plane (ShapeNet chairs" in html
    assert "turn_objects3d.png" in html and "3-D set: also not the paper" in html and "12.5" in html and "azimuth (out-of-plane) " in data["rows"][1]["share"]
