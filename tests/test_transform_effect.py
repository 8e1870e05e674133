"""On the default settings (the schema's defaults), the FTL model's latent turns like the image:
the angle read back from its latents is far below chance on seen and on held-out angles."""

import json

import pytest

pytestmark = pytest.mark.slow


def test_default_settings_recover_angles_far_below_chance(tmp_path):
    import torch

    from cnninterp.config import load_schema
    from cnninterp.data.digits import write_digits
    from cnninterp.transform.evaluate import evaluate
    from cnninterp.transform.model import ModelSpec
    from cnninterp.transform.train import train_model

    torch.set_num_threads(1)
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
                    seed=seed, device="cpu", equivariance_weight=t["equivariance_weight"])
    result = evaluate(shards, tmp_path / "ftl/model.pt", tmp_path / "baseline/model.pt", tmp_path / "eval/metrics.json", seed=seed, **e)
    print(json.dumps(result, indent=1))
    angle = result["angle_error_deg"]["digits"]
    assert angle["ftl"]["seen"] < angle["chance"] / 3
    assert angle["ftl"]["heldout"] < angle["chance"] / 3
    rec = result["reconstruction_mse"]["digits"]
    assert rec["ftl"]["seen"] < rec["baseline"]["seen"]
    inv = result["invariant_accuracy"]["digits"]
    assert inv["block_norms"] > 3 * inv["chance"]
