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


def test_tally_csv_per_layer_matches_the_iou_table(broden_shards, tmp_path):
    """tally_<layer>.csv (NetDissect-Lite's columns, units from 1, best first) agrees with
    iou.parquet; a later set without a layer leaves no CSV of it behind."""
    import csv

    from cnninterp.dissect.pipeline import dissect

    out = tmp_path / "out"
    dissect(random_model("resnet10", seed=3), ["layer3", "layer4"], broden_shards, out, batch_size=16)
    table = pd.read_parquet(out / "iou.parquet")
    for layer in ("layer3", "layer4"):
        with (out / f"tally_{layer}.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert list(rows[0])[:4] == ["unit", "category", "label", "score"]
        units = table[table["layer"] == layer]
        assert sorted(int(r["unit"]) for r in rows) == list(range(1, units["unit"].max() + 2))
        scores = [float(r["score"]) for r in rows]
        assert scores == sorted(scores, reverse=True) and scores[0] > 0
        for r in rows:
            mine = units[units["unit"] == int(r["unit"]) - 1]
            assert float(r["score"]) == mine["iou"].max()
            if float(r["score"]) > 0:
                assert r["label"] in set(mine.loc[mine["iou"] == mine["iou"].max(), "concept"])
    dissect(random_model("resnet10", seed=3), ["layer4"], broden_shards, out, batch_size=16)
    assert sorted(p.name for p in out.glob("tally_*.csv")) == ["tally_layer4.csv"]
