"""The paper's effect on the default data: a trained network has more detectors than its random control.

Uses config.yaml's own data, training and dissection settings (about a minute and a half on
2 cores), so it checks what `make run` produces.
"""

import json

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def test_trained_baseline_beats_its_random_control(tmp_path):
    from cnninterp.config import dissect_settings, load_config
    from cnninterp.data.broden_shards import convert_broden
    from cnninterp.data.synthetic_broden import generate_broden
    from cnninterp.dissect.engine import dissect
    from cnninterp.models.backbones import load_model, random_model
    from cnninterp.train.baseline import train_baseline

    config = load_config(ROOT / "config.yaml")
    syn = config["broden"]["synthetic"]
    generate_broden(tmp_path / "broden", syn["n_images"], syn["image_size"], syn["seed"], syn["val_fraction"])
    shards = tmp_path / "shards"
    convert_broden(tmp_path / "broden", shards, config["broden"]["shard_size"], {"kind": "synthetic"}, {})
    t = config["train"]["baseline"]
    train_baseline(shards, tmp_path / "model.pt", t["arch"], t["task"], t["epochs"], t["batch_size"], t["lr"], t["momentum"], t["weight_decay"], "imagenet", config["seed"])
    counts = {}
    for name, model in (
        ("baseline", load_model("checkpoint", tmp_path / "model.pt")),
        ("baseline_random", random_model(t["arch"], dissect_settings(config, "baseline_random")["init_seed"])),
    ):
        s = dissect_settings(config, name)
        summary = dissect(model, s["layers"], shards, tmp_path / name, s["quantile"], s["iou_threshold"], s["denominator"], batch_size=s["batch_size"])
        counts[name] = {layer: v["detectors"] for layer, v in summary.items()}
    print("detectors per layer:", json.dumps(counts))
    assert sum(counts["baseline"].values()) > sum(counts["baseline_random"].values()), counts
