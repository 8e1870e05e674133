"""The dissection's forward in channels-last gives the NCHW results up to float32 rounding."""

import pandas as pd
import torch

from cnninterp.dissect.activations import torch_memory_format
from cnninterp.dissect.engine import dissect
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
    assert (a["iou"] - b["iou"]).abs().max() <= 1e-5
    best = lambda t: t.sort_values(["layer", "unit", "iou", "concept_number"], ascending=[True, True, False, True]).drop_duplicates(["layer", "unit"])["concept_number"].tolist()
    assert best(a) == best(b)
