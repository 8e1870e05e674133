"""Bad input to the dissection: each a clear error, nothing partial written."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from cnninterp.data.shards import read_manifest, shard_paths
from cnninterp.dissect import engine, pipeline
from cnninterp.dissect.activations import LayerCapture
from cnninterp.errors import DataError, ModelError
from cnninterp.models.backbones import load_model, random_model


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "cnninterp.cli", *args], capture_output=True, text=True)


def test_unknown_layer_lists_the_layers_the_model_has():
    model = random_model("resnet10", seed=0)
    with pytest.raises(ModelError, match=r"no layer\(s\) layer9; its layers are: conv1, bn1, relu, maxpool, layer1, layer1\.0"):
        LayerCapture(model, ["layer4", "layer9"])


def test_nested_layer_names_are_captured():
    model = random_model("resnet10", seed=0)
    capture = LayerCapture(model, ["layer4.0.conv2", "layer2"])
    acts = capture.run(torch.zeros(2, 3, 64, 64))
    assert acts["layer4.0.conv2"].shape == (2, 512, 2, 2) and acts["layer2"].shape == (2, 128, 8, 8)


def test_checkpoint_for_another_architecture(tmp_path):
    ck = tmp_path / "alexnet.pt"
    torch.save(random_model("alexnet", seed=0).state_dict(), ck)
    with pytest.raises(ModelError, match=r"does not fit the architecture: missing keys \(\d+\): bn1\.bias.*unexpected keys"):
        load_model("torchvision:resnet18", ck)


def test_cli_error_for_bad_layer_writes_nothing(broden_shards, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("dissect", "--model", "torchvision:resnet10", "--layers", "layer5", "--shards", str(broden_shards), "--out", str(out))
    assert proc.returncode == 2
    assert "no layer(s) layer5" in proc.stderr and "layer4" in proc.stderr
    assert not out.exists()


class Poison(torch.nn.Module):
    """Turns a map into NaN where the map's first value is positive (while ``active``)."""

    active = True

    def forward(self, y):
        if not self.active:
            return y
        return torch.where(y[:, :1, :1, :1] > 0, torch.full_like(y, float("nan")), y)


class NaNAfter(torch.nn.Module):
    """A model whose ``poison`` layer produces NaN for some images."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.poison = Poison()

    def forward(self, x):
        return self.poison(self.conv(x))


def test_nan_activations_name_the_layer_and_images(broden_shards, tmp_path):
    model = NaNAfter()
    out = tmp_path / "out"
    with pytest.raises(ModelError, match=r"layer poison produced NaN or infinite activations on image\(s\) \d{7}"):
        pipeline.dissect(model, ["poison"], broden_shards, out, batch_size=8)
    assert not out.exists() or not any(out.iterdir())


def test_empty_shard_is_an_error_naming_it(broden_shards, tmp_path):
    import json
    import shutil
    import tarfile

    from cnninterp.data.digest import sha256_file

    shards = tmp_path / "shards"
    shutil.copytree(broden_shards, shards)
    empty = shards / "train-000099.tar"
    tarfile.open(empty, "w").close()
    manifest = json.loads((shards / "manifest.json").read_text())
    manifest["splits"]["train"]["shards"].append({"name": empty.name, "samples": 0, "sha256": sha256_file(empty)})
    (shards / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"train-000099\.tar holds no samples"):
        engine.quantile_tops(random_model("resnet10", seed=0), ["layer4"], [empty], 10, 0.005, "imagenet", 8, "cpu")


def test_missing_shard_part_is_detected_at_merge(broden_shards):
    manifest = read_manifest(broden_shards)
    paths = shard_paths(broden_shards)
    total = engine.dataset_images(manifest)
    model = random_model("resnet10", seed=0)
    part = engine.quantile_tops(model, ["layer4"], paths[:1], total, 0.005, "imagenet", 16, "cpu")
    with pytest.raises(DataError, match=r"quantile parts cover 12 images, the shards hold 40"):
        engine.merge_thresholds([part], ["layer4"], total, 0.005)


def test_a_failed_run_leaves_no_hooks_behind(broden_shards, tmp_path):
    """After an error mid-run the same model object dissects normally (hooks are removed)."""
    model = NaNAfter()
    try:
        pipeline.dissect(model, ["poison"], broden_shards, tmp_path / "a", batch_size=8)
    except ModelError:
        # checked while the traceback (which holds the engine's frames) is still alive
        assert not any(m._forward_hooks for m in model.modules())
    else:
        pytest.fail("NaN activations were accepted")
    model.poison.active = False
    summary = pipeline.dissect(model, ["poison"], broden_shards, tmp_path / "b", batch_size=8)
    assert summary["poison"]["units"] == 4
    assert not any(m._forward_hooks for m in model.modules())


def _thresholds(layer: str, units: int):
    """Thresholds 0 for ``units`` units of ``layer`` (no top images)."""
    from cnninterp.dissect.states import LayerThresholds, Thresholds, TopImages

    return Thresholds(40, 0.005, {layer: LayerThresholds((1, 1), np.zeros(units, np.float32), TopImages(1))})


def test_thresholds_of_another_model_are_refused_and_hooks_removed(broden_shards):
    manifest = read_manifest(broden_shards)
    model = random_model("resnet10", seed=0)
    wrong = _thresholds("layer4", 7)
    try:
        engine.tally(model, ["layer4"], shard_paths(broden_shards), wrong, manifest, "imagenet", 16, "cpu")
    except DataError as err:
        assert "thresholds for layer layer4 have 7 units, the model's layer has 512" in str(err)
        # checked while the traceback (which holds the engine's frame) is still alive
        assert not any(m._forward_hooks for m in model.modules())
    else:
        pytest.fail("thresholds of another model were accepted")


def test_shards_holding_labels_the_manifest_lacks_name_the_shard_and_images(broden_shards):
    manifest = read_manifest(broden_shards)
    paths = shard_paths(broden_shards)
    top = max(lab["number"] for lab in manifest["labels"])
    fewer = dict(manifest, labels=[lab for lab in manifest["labels"] if lab["number"] < top // 2])
    layer1 = _thresholds("layer1", 64)
    with pytest.raises(DataError, match=r"image '\d{7}' of shard .*train-000000\.tar: .*label number.* end at \d+"):
        engine.tally(random_model("resnet10", seed=0), ["layer1"], paths[:1], layer1, fewer, "imagenet", 8, "cpu")


def test_a_state_file_of_the_wrong_kind_is_named_by_the_stage_cli(broden_shards, tmp_path):
    """The stage CLIs read typed states: a quantile part given as --thresholds is refused naming
    the file and both kinds (it used to end in an AttributeError), and no tally part is written."""
    shard = shard_paths(broden_shards)[0]
    part = tmp_path / "quantiles.npz"
    proc = run_cli("dissect-quantiles", "--model", "torchvision:resnet10", "--layers", "layer4", "--manifest",
                   str(broden_shards / "manifest.json"), "--shard", str(shard), "--out", str(part))
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "tally.npz"
    proc = run_cli("dissect-tally", "--model", "torchvision:resnet10", "--layers", "layer4", "--manifest",
                   str(broden_shards / "manifest.json"), "--shard", str(shard), "--thresholds", str(part), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert str(part) in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    from cnninterp.dissect.states import QuantilePart, Thresholds

    assert f"holds a {QuantilePart.KIND}, expected a {Thresholds.KIND}" in proc.stderr, proc.stderr
    assert not out.exists()


def test_gather_records_the_quantile_its_thresholds_were_computed_at(broden_shards, tmp_path):
    """The stage CLIs chained in-process on one shard; a --settings-json naming another quantile
    than the thresholds' is refused (the summary would have recorded it), and nothing is written."""
    import json

    from cnninterp.cli import main

    manifest, shards = str(broden_shards / "manifest.json"), [str(p) for p in shard_paths(broden_shards)]
    model = ["--model", "torchvision:resnet10", "--layers", "layer4", "--manifest", manifest]
    parts, caches = [], []
    for i, shard in enumerate(shards):
        parts.append(str(tmp_path / f"q{i}.npz"))
        caches += ["--cache", str(tmp_path / f"c{i}.acts")]
        assert main(["dissect-quantiles", *model, "--shard", shard, "--quantile", "0.02", "--cache", caches[-1], "--out", parts[-1]]) == 0
    thresholds = str(tmp_path / "thresholds.npz")
    assert main(["dissect-thresholds", "--manifest", manifest, "--layers", "layer4", "--quantile", "0.02", *caches, "--out", thresholds, *parts]) == 0
    tallies = []
    for i, shard in enumerate(shards):
        tallies.append(str(tmp_path / f"t{i}.npz"))
        assert main(["dissect-tally", *model, "--shard", shard, "--thresholds", thresholds, "--out", tallies[-1]]) == 0
    gather = ["dissect-gather", "--manifest", manifest, "--layers", "layer4", "--thresholds", thresholds]
    assert main([*gather, "--settings-json", '{"quantile": 0.005}', "--out", str(tmp_path / "bad"), *tallies]) == 2
    assert not (tmp_path / "bad" / "summary.json").exists()
    assert main([*gather, "--settings-json", '{"model": "m"}', "--out", str(tmp_path / "ok"), *tallies]) == 0
    assert json.loads((tmp_path / "ok" / "summary.json").read_text())["settings"]["quantile"] == 0.02
    # thresholds of another merge (here another quantile): the parts were not counted at them
    other = str(tmp_path / "other.npz")
    assert main(["dissect-thresholds", "--manifest", manifest, "--layers", "layer4", "--quantile", "0.01", *caches, "--out", other, *parts]) == 0
    gather[gather.index(thresholds)] = other
    assert main([*gather, "--out", str(tmp_path / "mixed"), *tallies]) == 2
    assert not (tmp_path / "mixed" / "summary.json").exists()
