"""On the default settings of the 3-D set, the FTL model's latent turns with the image per factor:
the roll and the azimuth read back from their own block groups are well below chance and below
always guessing 0, on seen azimuths and on the held-out arc (test objects)."""

import json

import pytest

pytestmark = pytest.mark.slow


def test_default_settings_recover_both_factors(tmp_path):
    import torch

    from cnninterp.config import load_schema
    from cnninterp.data.objects3d import write_objects3d
    from cnninterp.transform.evaluate3d import evaluate_objects3d
    from cnninterp.transform.model import ModelSpec
    from cnninterp.transform.train import train_model

    torch.set_num_threads(1)
    schema = load_schema()["properties"]["transform"]["properties"]
    o = {k: v["default"] for k, v in schema["objects3d"]["properties"].items()}
    m = {k: v["default"] for k, v in schema["model"]["properties"].items()}
    batch = schema["train"]["properties"]["batch_size"]["default"]
    seed = schema["seed"]["default"]
    shards = tmp_path / "objects3d"
    write_objects3d(shards, objects_train=o["objects_train"], objects_test=o["objects_test"], image_size=o["image_size"],
                    azimuth_step_deg=o["azimuth_step_deg"], elevation_deg=o["elevation_deg"], heldout_start_deg=o["heldout_start_deg"],
                    heldout_width_deg=o["heldout_width_deg"], seed=seed, shard_size=o["shard_size"], inplane_range_deg=o["inplane_range_deg"])
    for kind in ("ftl", "baseline"):
        spec = ModelSpec(kind=kind, image_size=o["image_size"], azimuth_blocks=o["azimuth_blocks"], **m)
        train_model(shards, tmp_path / kind / "model.pt", spec, epochs=o["epochs"], batch_size=batch, lr=o["lr"], seed=seed,
                    device="cpu", equivariance_weight=o["equivariance_weight"], equivariance_norm=o["equivariance_norm"])
    result = evaluate_objects3d(shards, tmp_path / "ftl/model.pt", tmp_path / "baseline/model.pt", tmp_path / "eval/objects3d.json",
                                samples=o["samples"], turn_rows=o["turn_rows"], turn_steps=o["turn_steps"], seed=seed)
    print(json.dumps(result, indent=1))
    ang = result["angle_error_deg"]["objects3d"]
    # measured (seed 0, 2026-12-03): azimuth 51° seen / 63° held-out (chance 90°, zero guess 95° / 104°);
    # roll 13.7° / 15.0° (zero guess 30°)
    for part, bound in (("seen", 0.75), ("heldout", 0.85)):
        assert ang["ftl"]["azimuth"][part] < bound * ang["chance"]
        assert ang["ftl"]["azimuth"][part] < bound * ang["zero_guess"]["azimuth"][part]
        assert ang["ftl"]["inplane"][part] < 0.7 * ang["zero_guess"]["inplane"][part]
    # the blocks carry a real share of the latent (not the escape into the identity part)
    share = result["latent_share"]["objects3d"]
    assert share["azimuth"] > 0.05 and share["inplane"] > 0.05
    inv = result["invariant_accuracy"]["objects3d"]
    assert inv["block_norms"] > 3 * inv["chance"]
