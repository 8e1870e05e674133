"""On the default settings (the schema's defaults), the FTL model's latent turns like the image:
the angle read back from its latents is far below chance on seen and on held-out angles, and the
turning blocks hold most of the latent (no escape into the identity part)."""

import json

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_result(tmp_path_factory):
    """The digits chain on the schema's defaults (1 thread): the evaluation's result."""
    import torch

    from cnninterp.config import load_schema
    from cnninterp.data.digits import write_digits
    from cnninterp.transform.evaluate import evaluate
    from cnninterp.transform.model import ModelSpec
    from cnninterp.transform.train import train_model

    torch.set_num_threads(1)
    tmp_path = tmp_path_factory.mktemp("digits_effect")
    schema = load_schema()["properties"]["transform"]["properties"]
    d = {k: v["default"] for k, v in schema["data"]["properties"].items()}
    m = {k: v["default"] for k, v in schema["model"]["properties"].items()}
    t = {k: v["default"] for k, v in schema["train"]["properties"].items()}
    e = {k: v["default"] for k, v in schema["eval"]["properties"].items()}
    seed = schema["seed"]["default"]
    shards = tmp_path / "digits"
    manifest = write_digits(shards, seed=seed, **d)
    for kind in ("ftl", "baseline"):
        spec = ModelSpec(kind=kind, image_size=manifest["image_size"], **m)
        train_model(shards, tmp_path / kind / "model.pt", spec, epochs=t["epochs"], batch_size=t["batch_size"], lr=t["lr"],
                    seed=seed, device="cpu", equivariance_weight=t["equivariance_weight"], equivariance_norm=t["equivariance_norm"])
    result = evaluate(shards, tmp_path / "ftl/model.pt", tmp_path / "baseline/model.pt", tmp_path / "eval/metrics.json", seed=seed, **e)
    print(json.dumps(result, indent=1))
    return result


def test_default_settings_recover_angles_far_below_chance(default_result):
    result = default_result
    angle = result["angle_error_deg"]["digits"]
    # measured (1 thread, seeds 0-2, 2026-12-03): 3.8-4.7° seen, 5.9-8.6° held out; with the
    # whole-latent scale of the latent term 12.6-16.3° / 22.4-26.5°
    assert angle["ftl"]["seen"] < angle["chance"] / 3
    assert angle["ftl"]["heldout"] < angle["chance"] / 3
    rec = result["reconstruction_mse"]["digits"]
    assert rec["ftl"]["seen"] < rec["baseline"]["seen"]
    # the turning blocks carry the digit (measured 0.83-0.86 of the squared norm; 0.07 with the whole-latent scale)
    assert result["latent_share"]["digits"]["inplane"] > 0.5
    inv = result["invariant_accuracy"]["digits"]
    assert inv["block_norms"] > 3 * inv["chance"]
    assert inv["parameters"]["block_norms"] == inv["parameters"]["pixel_pca"]


def test_the_ftl_invariant_features_beat_pixels_of_the_same_size_under_rotation(default_result):
    inv = default_result["invariant_accuracy"]["digits"]
    # measured (seeds 0-2): norms + identity part (24 inputs) 0.70, the same classifier on 24 PCA pixel
    # features 0.48-0.51, on all 576 pixels 0.53-0.55
    assert inv["parameters"]["invariant_latent"] == inv["parameters"]["pixel_pca_invariant_latent"]
    assert inv["invariant_latent"] > inv["pixel_pca_invariant_latent"] + 0.1
    assert inv["invariant_latent"] > inv["raw_pixels"] + 0.1


@pytest.mark.xfail(strict=True, reason=(
    "block norms alone lose to pixels of the same size: measured (seeds 0-2, 16 inputs) 0.39-0.42 vs 0.48-0.53 "
    "on PCA pixel features. Why (seed 0): on upright digits, no rotation at all, the 16 norms classify at 0.66 "
    "(pixels 0.96), so the norms drop most of the digit (it sits in the blocks' relative phases and the identity "
    "part: norms + phases 0.78, norms + identity 0.86); and they are only roughly invariant (they change by 16% "
    "of their sum under a random rotation; 0.44 rotated vs 0.66 upright)"))
def test_block_norms_alone_beat_pixels_of_the_same_size(default_result):
    inv = default_result["invariant_accuracy"]["digits"]
    assert inv["block_norms"] > inv["pixel_pca"]
