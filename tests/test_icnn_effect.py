"""On the default settings (the schema's defaults), the interpretable network's filters fire at a
steadier place relative to the object's parts than the ordinary network's: lower location
instability, at little or no cost in accuracy.

Measured (benchmarks/icnn_effect.py, seeds 0, 1, 2): location instability ICNN / CNN =
0.057 / 0.079, 0.026 / 0.065, 0.033 / 0.068 (ratios 0.73, 0.40, 0.48); accuracy ICNN 0.995-1.0,
CNN 0.90-0.995. The test runs seed 0, the weakest of the three, and asks for a ratio below 0.85.
"""

import json

import pytest

pytestmark = pytest.mark.slow


def test_default_settings_lower_location_instability(tmp_path):
    import torch

    from cnninterp.config import load_schema
    from cnninterp.data.parts import write_parts
    from cnninterp.icnn.evaluate import evaluate
    from cnninterp.icnn.model import NetSpec
    from cnninterp.icnn.train import train_net

    torch.set_num_threads(1)
    schema = load_schema()["properties"]["icnn"]["properties"]
    d, m, t, e = ({k: v["default"] for k, v in schema[part]["properties"].items()} for part in ("data", "model", "train", "eval"))
    seed = schema["seed"]["default"]
    kw = dict(image_size=d["image_size"], positive_fraction=d["positive_fraction"], shard_size=d["shard_size"])
    write_parts(tmp_path / "parts", splits={"train": d["train_images"], "test": d["test_images"]}, seed=seed, **kw)
    write_parts(tmp_path / "probe", splits={"probe": d["probe_images"]}, seed=seed + 1, **kw)
    for kind in ("icnn", "cnn"):
        spec = NetSpec(interpretable=kind == "icnn", image_size=d["image_size"], **m)
        train_net(tmp_path / "parts", tmp_path / kind / "model.pt", spec, epochs=t["epochs"], batch_size=t["batch_size"],
                  lr=t["lr"], filter_weight=t["filter_weight"], seed=seed, device="cpu")
    result = evaluate(tmp_path / "parts", tmp_path / "probe", {"icnn": tmp_path / "icnn/model.pt", "cnn": tmp_path / "cnn/model.pt"},
                      tmp_path / "eval/metrics.json", **e)
    print(json.dumps(result, indent=1))
    li = result["location_instability"]
    assert li["icnn"] < 0.85 * li["cnn"]
    best = result["location_instability_best_part"]
    assert best["icnn"] < 0.85 * best["cnn"]
    assert result["accuracy"]["icnn"] >= result["accuracy"]["cnn"] - 0.03
