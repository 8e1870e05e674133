"""Defects a review of the dissection engine reproduced, each pinned by a test that failed before its fix."""

from __future__ import annotations

import pytest
import torch

from cnninterp.dissect.activations import LayerCapture
from cnninterp.models.backbones import random_model


def _capture(model, layers, fmt, x):
    with LayerCapture(model, layers, fmt) as cap:
        return {k: v.clone() for k, v in cap.run(x).items()}


@pytest.mark.parametrize("arch,layer,later", [
    ("alexnet", "features.0", "features.3"),  # features.1 is ReLU(inplace=True) on conv1's output
    ("resnet10", "layer1.0.bn2", "layer2"),  # BasicBlock does `out += identity` on bn2's output
])
def test_a_captured_map_is_not_overwritten_by_later_in_place_ops(arch, layer, later):
    """Capturing a layer alone or with a later one gives the same maps: the hook copies them, so
    an in-place op after the hooked module does not reach the captured tensor."""
    torch.manual_seed(0)
    model = random_model(arch, seed=1).eval()
    x = torch.randn(2, 3, 64, 64)
    for fmt in ("contiguous", "channels_last"):
        alone = _capture(model, [layer], fmt, x)[layer]
        both = _capture(model, [layer, later], fmt, x)[layer]
        assert (alone < 0).any(), fmt  # conv / bn outputs before the ReLU have negatives
        assert torch.equal(alone, both), fmt


@pytest.mark.parametrize("arch", ["resnet10", "resnet18"])
def test_a_module_called_twice_per_forward_is_refused_naming_a_parent(arch):
    """BasicBlock calls its ``relu`` twice; the maps of ``layer1.0.relu`` would be those of its first
    or last call depending on the layer list, so asking for it is refused, alone (its second call
    comes after the last asked layer) as well as with a later layer; ordinary layers still run."""
    from cnninterp.errors import ModelError

    model = random_model(arch, seed=1).eval()
    x = torch.randn(2, 3, 32, 32)
    for layers in (["layer1.0.relu"], ["layer1.0.relu", "layer2"], ["layer2", "layer1.0.relu"]):
        with pytest.raises(ModelError, match=r"layer1\.0\.relu runs more than once.*layer1\.0\b"):
            _capture(model, layers, "contiguous", x)
    maps = _capture(model, ["layer1.0", "layer1.0.conv2", "layer2"], "contiguous", x)
    assert maps["layer1.0"].shape == (2, 64, 8, 8) and maps["layer2"].shape == (2, 128, 4, 4)
    assert maps["layer1.0"].min() >= 0  # the block's output is after its last ReLU


def test_the_checking_pass_stops_early_after_the_first_batch():
    """Only the first ``run`` goes through the whole model (to find repeat calls); later runs stop
    at the last asked layer, as before: the head's forward hook fires once, on the first batch."""
    model = random_model("resnet10", seed=1).eval()
    calls = []
    model.fc.register_forward_hook(lambda *args: calls.append(1))
    x = torch.randn(1, 3, 32, 32)
    with LayerCapture(model, ["layer1"], "contiguous") as cap:
        for _ in range(3):
            cap.run(x)
    assert len(calls) == 1


class _Pool(torch.nn.Module):
    """Three units: the image's channels averaged over 4x4 cells (cheap, and maps with many ties-free values)."""

    def __init__(self):
        super().__init__()
        self.feat = torch.nn.Identity()

    def forward(self, x):
        return self.feat(torch.nn.functional.avg_pool2d(x, 4))


@pytest.fixture(scope="module")
def per_shard(broden_shards, tmp_path_factory):
    """Per-shard quantile parts and their caches of ``_Pool`` (as the per-shard jobs write them)."""
    from cnninterp.data.shards import read_manifest, shard_paths
    from cnninterp.dissect import engine

    tmp = tmp_path_factory.mktemp("per_shard")
    manifest = read_manifest(broden_shards)
    paths = shard_paths(broden_shards)
    total = engine.dataset_images(manifest)
    model = _Pool().eval()
    parts, caches = [], []
    for i, path in enumerate(paths):
        caches.append(tmp / f"cache-{i}.acts")
        parts.append(tmp / f"q-{i}.npz")
        from cnninterp.dissect.statefile import write_state

        write_state(parts[-1], engine.quantile_tops(model, ["feat"], [path], total, 0.005, "imagenet", 8, "cpu", 2, caches[-1]))
    return {"manifest": manifest, "paths": paths, "total": total, "parts": parts, "caches": caches, "model": model, "tmp": tmp}


def test_threshold_merge_refuses_a_cache_left_out_or_given_twice(per_shard):
    """merge_thresholds refines the parts' histograms with the caches' values: a cache left out
    (or given twice) changed the exact thresholds silently; it is a DataError naming the cause."""
    from cnninterp.dissect import engine
    from cnninterp.errors import DataError

    parts, caches, total = per_shard["parts"], per_shard["caches"], per_shard["total"]
    assert len(caches) >= 3
    exact = engine.merge_thresholds(parts, ["feat"], total, 0.005, caches)
    assert exact.layers["feat"].threshold.shape == (3,)
    with pytest.raises(DataError, match=r"caches hold \d+ images, the quantile parts \d+: a cache is missing"):
        engine.merge_thresholds(parts, ["feat"], total, 0.005, caches[:1] + caches[2:])
    with pytest.raises(DataError, match=r"activation cache .*cache-0\.acts repeats image .*given twice"):
        engine.merge_thresholds(parts, ["feat"], total, 0.005, caches[:1] + caches[:1] + caches[2:])
    with pytest.raises(DataError, match="given twice"):
        engine.merge_thresholds(parts, ["feat"], total, 0.005, caches + caches[:1])
