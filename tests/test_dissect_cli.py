"""`cnninterp dissect` on a torchvision model given by name, with a state_dict checkpoint."""

import json
import subprocess
import sys

import pandas as pd
import torch

from cnninterp.models.backbones import random_model


def test_cli_dissects_a_torchvision_model_by_name(broden_shards, tmp_path):
    checkpoint = tmp_path / "ck.pt"
    torch.save(random_model("resnet18", seed=5).state_dict(), checkpoint)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "cnninterp.cli", "dissect", "--model", "torchvision:resnet18", "--checkpoint", str(checkpoint),
         "--layers", "layer3,layer4.1.conv2", "--shards", str(broden_shards), "--out", str(out), "--batch-size", "16", "--denominator", "lite", "--iou-threshold", "0.01"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "layer4.1.conv2:" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 40 and summary["settings"]["denominator"] == "lite"
    assert summary["layers"]["layer3"]["units"] == 256 and summary["layers"]["layer4.1.conv2"]["units"] == 512
    table = pd.read_parquet(out / "iou.parquet")
    assert list(table.columns) == ["layer", "unit", "category", "concept", "concept_number", "iou", "intersection", "union", "threshold"]
    best = table.sort_values("iou", ascending=False).drop_duplicates(["layer", "unit"])
    counted = 0
    for layer, entry in summary["layers"].items():
        rows = best[best["layer"] == layer]
        assert entry["detectors"] == int((rows["iou"] > 0.01).sum())
        counted += entry["detectors"]
    assert counted > 0  # the threshold is low enough that the comparison is not 0 == 0
