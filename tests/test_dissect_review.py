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


def test_a_repeated_part_in_place_of_a_missing_one_is_refused(per_shard, tmp_path):
    """Shards 0 and 1 hold 12 images each, so shard 0's part given twice in place of shard 1's
    passed the image-count checks of the threshold merge and the gather; the parts now carry
    their shard names, merging refuses an overlap, and the union is checked against the shard
    list where the caller has it (the gather's manifest, merge_thresholds' ``shards``)."""
    import copy

    from cnninterp.cli import main
    from cnninterp.dissect import engine
    from cnninterp.dissect.gather import gather
    from cnninterp.dissect.statefile import write_state
    from cnninterp.errors import DataError

    parts, caches, total, manifest, paths = (per_shard[k] for k in ("parts", "caches", "total", "manifest", "paths"))
    assert [p.name for p in paths[:2]] == ["train-000000.tar", "train-000001.tar"]
    assert [m["samples"] for m in manifest["splits"]["train"]["shards"][:2]] == [12, 12]
    repeated = [parts[0], parts[0]] + parts[2:]
    with pytest.raises(DataError, match=r"quantile parts both cover shard\(s\) train-000000\.tar.*once"):
        engine.merge_thresholds(repeated, ["feat"], total, 0.005, caches)
    names = engine.manifest_shards(manifest)
    thresholds = engine.merge_thresholds(parts, ["feat"], total, 0.005, caches, shards=names)
    with pytest.raises(DataError, match=r"not in the shard list: train-000001\.tar; shard\(s\) missing: other\.tar"):
        engine.merge_thresholds(parts, ["feat"], total, 0.005, caches, shards=[n for n in names if n != "train-000001.tar"] + ["other.tar"])

    tallies = []
    for i, path in enumerate(paths):
        tallies.append(tmp_path / f"t-{i}.npz")
        write_state(tallies[-1], engine.tally(None, ["feat"], [path], thresholds, manifest, "imagenet", 8, "cpu", caches[i]))
    with pytest.raises(DataError, match=r"tally parts both cover shard\(s\) train-000000\.tar"):
        gather([tallies[0], tallies[0]] + tallies[2:], thresholds, manifest, ["feat"], "original", 0.04, tmp_path / "bad", {})
    assert not (tmp_path / "bad").exists()
    renamed = copy.deepcopy(manifest)
    renamed["splits"]["train"]["shards"][1]["name"] = "other.tar"
    with pytest.raises(DataError, match=r"tally parts cover shard\(s\) not in the manifest: train-000001\.tar; shard\(s\) missing: other\.tar"):
        gather(tallies, thresholds, renamed, ["feat"], "original", 0.04, tmp_path / "bad", {})
    # the stage CLI: one line and exit 2, nothing written
    write_state(tmp_path / "thr.npz", thresholds)
    args = ["dissect-gather", "--manifest", str(per_shard["paths"][0].parent / "manifest.json"), "--layers", "feat",
            "--thresholds", str(tmp_path / "thr.npz"), "--out", str(tmp_path / "cli")]
    assert main(args + [str(t) for t in [tallies[0], tallies[0]] + tallies[2:]]) == 2
    assert not (tmp_path / "cli").exists()
    assert main(args + [str(t) for t in tallies]) == 0
    assert (tmp_path / "cli" / "summary.json").is_file()


def test_parts_of_the_previous_layout_are_refused_with_a_rerun_hint(per_shard, tmp_path):
    """Quantile parts of layout version 1 (without shard names) name the file and the rerun."""
    from cnninterp.dissect.statefile import read_state, write_state
    from cnninterp.dissect.states import QuantilePart
    from cnninterp.errors import DataError

    state = read_state(per_shard["parts"][0], QuantilePart).state_dict()
    state.pop("shards")
    state["version"] = 1
    write_state(tmp_path / "old.npz", state)
    with pytest.raises(DataError, match=r"old\.npz holds a quantile_part of layout version 1.*rerun"):
        read_state(tmp_path / "old.npz", QuantilePart)


def _unlabeled_part(units: int = 4):
    """A TallyPart of 2 images in which no concept occurs (all label areas 0), its Thresholds and
    a manifest of two concepts."""
    import numpy as np

    from cnninterp.dissect.states import LayerThresholds, TallyPart, Thresholds, TopImages
    from cnninterp.dissect.tally import LayerTally, make_label_batch

    primary = np.array([-1, 0, 1])
    labels = make_label_batch(np.zeros((2, 1, 8, 8), np.uint16), [[], []], primary, 3, 2)
    tally = LayerTally(units, 3, 2)
    threshold = np.full(units, 0.9, np.float32)
    tally.add(torch.rand(2, units, 4, 4), threshold, labels)
    thresholds = Thresholds(2, 0.005, {"conv": LayerThresholds((4, 4), threshold, TopImages(1))})
    manifest = {"categories": ["color", "scene"], "labels": [{"number": 1, "name": "red", "primary": "color"}, {"number": 2, "name": "sky", "primary": "scene"}],
                "splits": {"train": {"samples": 2, "shards": [{"name": "train-000000.tar", "samples": 2}]}}}
    return TallyPart(2, labels.area, {"conv": tally}, thresholds.digest(["conv"])), thresholds, manifest


def test_a_probe_set_without_labels_is_refused_and_units_come_from_the_tally(tmp_path):
    """No concept occurs in the probe set: the IoU table has no rows, so the summary counted 0
    units for a 4-unit layer and reported no error; gather now refuses, and summarize takes the
    unit count from the tally."""
    from cnninterp.dissect import engine
    from cnninterp.dissect.gather import gather
    from cnninterp.dissect.labels import iou_table, summarize
    from cnninterp.errors import DataError

    part, thresholds, manifest = _unlabeled_part()
    with pytest.raises(DataError, match="no labels in the probe set"):
        gather([part], thresholds, manifest, ["conv"], "original", 0.04, tmp_path / "out", {})
    assert not (tmp_path / "out").exists()
    vocab = engine.vocabulary(manifest)
    table = iou_table(part, thresholds, vocab, ["conv"], "original")
    summary = summarize(table, ["conv"], vocab["categories"], 0.04, units={"conv": part.layers["conv"].units})["conv"]
    assert summary["units"] == 4 and summary["detectors"] == 0
    assert [e["unit"] for e in summary["unit_labels"]] == [0, 1, 2, 3]
    assert all(e["label"] is None and e["iou"] == 0.0 for e in summary["unit_labels"])


def _mixed_size_broden(root, resized=(2, 3, 5)):
    """A synthetic Broden folder of 8 images of 32 px whose ``resized`` rows are enlarged to 48 px
    (their segmentation PNGs too, nearest neighbour, with index.csv's sizes), as a probe set
    gathered from sources of different sizes would be."""
    import csv

    from PIL import Image

    from cnninterp.data.synthetic_broden import generate_broden

    generate_broden(root, n_images=8, image_size=32, seed=5, val_fraction=0.0)
    with open(root / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    fields = list(rows[0])
    for i in resized:
        row = rows[i]
        image = Image.open(root / "images" / row["image"])
        image.resize((48, 48), Image.BILINEAR).save(root / "images" / row["image"])
        sh, sw = int(row["sh"]) * 3 // 2, int(row["sw"]) * 3 // 2
        for field in fields:
            for name in (row[field] or "").split(";"):
                if name.endswith(".png"):
                    seg = Image.open(root / "images" / name)
                    seg.resize((sw, sh), Image.NEAREST).save(root / "images" / name)
        row.update(ih="48", iw="48", sh=str(sh), sw=str(sw))
    with open(root / "index.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def test_images_of_different_sizes_are_a_data_error_naming_the_image_and_shard(tmp_path):
    """Images of two sizes in the probe set gave maps of two sizes and a raw numpy broadcasting
    error deep in the top-image keeper; now a DataError naming the first image of another size,
    its shard and the fix, nothing written (the CLI turns it into one line and exit 2)."""
    from cnninterp.data.broden_shards import convert_broden, iter_broden
    from cnninterp.dissect.pipeline import dissect
    from cnninterp.errors import DataError

    _mixed_size_broden(tmp_path / "broden")
    shards = tmp_path / "shards"
    convert_broden(tmp_path / "broden", shards, 4, {"kind": "synthetic"}, {"shard_size": 4})
    sizes = [s["image"].shape[:2] for s in iter_broden(sorted(shards.glob("*.tar")))]
    assert sizes.count((48, 48)) == 3 and sizes.count((32, 32)) == 5, sizes
    odd = [s["key"] for s in iter_broden([shards / "train-000000.tar"]) if s["image"].shape[0] == 48][0]
    with pytest.raises(DataError, match=rf"images of different sizes: image '{odd}' of shard .*train-000000\.tar is 48x48 px.*32x32 px.*resize the probe set"):
        dissect(_Pool().eval(), ["feat"], shards, tmp_path / "out", batch_size=4, device="cpu")
    assert not (tmp_path / "out").exists()


class _HeadFails(torch.nn.Module):
    """A conv then a head that refuses the maps (as a classifier does on images smaller than it takes)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.head = torch.nn.Linear(1000, 2)

    def forward(self, x):
        return self.head(self.conv(x).flatten(1))


def test_the_checking_pass_tolerates_a_failure_after_every_asked_layer_ran():
    """The first batch's full pass must not fail where the early stop used to skip the failing
    part: a head that refuses the maps after the asked layers ran leaves the capture intact, while
    asking for the head itself is still the ModelError naming the batch."""
    from cnninterp.errors import ModelError

    model = _HeadFails().eval()
    x = torch.randn(2, 3, 8, 8)
    maps = _capture(model, ["conv"], "contiguous", x)
    with torch.no_grad():
        assert torch.equal(maps["conv"], model.conv(x))
    with pytest.raises(ModelError, match=r"failed on a batch of shape \(2, 3, 8, 8\)"):
        _capture(model, ["conv", "head"], "contiguous", x)
