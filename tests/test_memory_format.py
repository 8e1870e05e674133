"""The dissection's forward in channels-last gives the NCHW results up to float32 rounding."""

import pandas as pd
import torch

from cnninterp.dissect.activations import torch_memory_format
from cnninterp.dissect.pipeline import dissect
from cnninterp.models.backbones import random_model


def test_auto_picks_channels_last_for_cnns_and_contiguous_for_transformers():
    assert torch_memory_format(random_model("resnet10", 0), "auto") == torch.channels_last
    assert torch_memory_format(random_model("vit_b_16", 0), "auto") == torch.contiguous_format
    assert torch_memory_format(random_model("resnet10", 0), "contiguous") == torch.contiguous_format


def test_channels_last_and_nchw_dissections_agree(broden_shards, tmp_path):
    tables = {}
    for fmt in ("contiguous", "channels_last"):
        model = random_model("resnet10", seed=2)
        dissect(model, ["layer2", "layer3"], broden_shards, tmp_path / fmt, quantile=0.02, batch_size=8, memory_format=fmt)
        tables[fmt] = pd.read_parquet(tmp_path / fmt / "iou.parquet").sort_values(["layer", "unit", "concept_number"]).reset_index(drop=True)
    a, b = tables["contiguous"], tables["channels_last"]
    assert len(a) == len(b) and (a[["layer", "unit", "concept_number"]].values == b[["layer", "unit", "concept_number"]].values).all()
    # the maps differ by float32 rounding, so thresholds agree to rounding ...
    assert (a["threshold"] - b["threshold"]).abs().max() <= 1e-5 * max(1.0, a["threshold"].abs().max())
    # ... and an upsampled pixel whose value lies within that rounding of T can fall on either
    # side of it: measured on this data, 4 pixels of one unit of 384 (IoU up to 0.0035 apart for
    # concepts of a few hundred pixels). Everything else is equal to 1e-5.
    moved = (a["intersection"] - b["intersection"]).abs() + (a["union"] - b["union"]).abs()
    assert moved.max() <= 16
    units_with_moves = a.loc[moved > 0, ["layer", "unit"]].drop_duplicates()
    assert len(units_with_moves) <= 0.01 * len(a[["layer", "unit"]].drop_duplicates())
    assert (a["iou"] - b["iou"]).abs()[moved == 0].max() <= 1e-5
    best = lambda t: t.sort_values(["layer", "unit", "iou", "concept_number"], ascending=[True, True, False, True]).drop_duplicates(["layer", "unit"])["concept_number"].tolist()
    assert best(a) == best(b)
