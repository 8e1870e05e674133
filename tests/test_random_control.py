"""The random control with its trained model's BatchNorm treatment (``train.random_control``),
on shards written in the project's format: random weights exactly as ``random_model`` draws them,
BatchNorm statistics estimated on the training images, and the config key that selects it."""

import numpy as np
import pytest
import torch

from cnninterp.config import dissect_settings, load_schema
from cnninterp.errors import ConfigError


def test_the_control_has_the_random_weights_and_batchnorm_statistics_of_its_training_images(broden_shards, tmp_path):
    from cnninterp.data.broden_shards import iter_broden
    from cnninterp.data.preprocess import to_tensor
    from cnninterp.data.shards import shard_paths
    from cnninterp.models.backbones import load_model, random_model
    from cnninterp.train.random_control import random_control

    torch.set_num_threads(1)
    # one batch holding every training image with a scene label: the estimate is their plain mean
    summary = random_control(broden_shards, tmp_path / "model.pt", arch="resnet10", task="scene", init_seed=4, batch_size=1000,
                             bn_images=1000, preprocess="imagenet", seed=0)
    control = load_model("checkpoint", tmp_path / "model.pt")
    # the control with BatchNorm's initial statistics, as the dissection builds it (--model torchvision:resnet10
    # --init-seed 4): the same weights. A head of the task's class count had drawn other weights in every layer.
    plain = load_model("torchvision:resnet10", None, 4)
    assert torch.equal(plain.state_dict()["conv1.weight"], random_model("resnet10", 4).state_dict()["conv1.weight"])
    trained_state, plain_state = control.state_dict(), plain.state_dict()
    assert trained_state.keys() == plain_state.keys()
    for key, value in plain_state.items():  # the same random weights; only the running statistics differ
        if "running_" not in key and "num_batches_tracked" not in key:
            assert torch.equal(trained_state[key], value), key
    from cnninterp.train.baseline import sample_target

    images = [s["image"] for s in iter_broden(shard_paths(broden_shards, ["train"])) if sample_target(s, "scene") is not None]
    assert summary["bn_recalibrated_images"] == len(images) > 0
    with torch.no_grad():  # the first BatchNorm's input is conv1 of the preprocessed images
        x = plain.conv1(to_tensor(np.stack(images), "imagenet"))
    expected_mean = x.mean(dim=(0, 2, 3))
    expected_var = x.var(dim=(0, 2, 3), unbiased=True)
    assert torch.allclose(control.bn1.running_mean, expected_mean, rtol=1e-4, atol=1e-5)
    assert torch.allclose(control.bn1.running_var, expected_var, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(plain.bn1.running_mean, expected_mean)  # torch's initial statistics are 0 / 1


def test_random_bn_selects_the_control_only_for_a_random_control_of_a_trained_model():
    config = {"train": {"baseline": {"arch": "resnet10"}},
              "dissect": {"defaults": {}, "models": {
                  "ctl": {"source": "trained:baseline", "random_init": True, "random_bn": "task"},
                  "plain": {"source": "trained:baseline", "random_init": True},
                  "bad": {"source": "trained:baseline", "random_bn": "task"},
                  "tv": {"source": "torchvision:resnet18", "random_bn": "task"}}}}
    assert dissect_settings(config, "ctl")["random_bn"] == "task"
    assert dissect_settings(config, "plain")["random_bn"] == "init"
    for name in ("bad", "tv"):
        with pytest.raises(ConfigError, match=rf"dissect.models.{name}.random_bn: 'task' applies to the random control"):
            dissect_settings(config, name)
    assert load_schema()["$defs"]["dissect_model"]["properties"]["random_bn"]["enum"] == ["init", "task"]


def test_random_bn_task_is_refused_when_the_training_estimates_no_batchnorm_statistics():
    """With train.<name>.bn_images 0 the control kept torch's initial statistics while the report
    called them estimated on the task images."""
    config = {"train": {"baseline": {"arch": "resnet10", "bn_images": 0}},
              "dissect": {"defaults": {}, "models": {
                  "ctl": {"source": "trained:baseline", "random_init": True, "random_bn": "task"},
                  "plain": {"source": "trained:baseline", "random_init": True}}}}
    with pytest.raises(ConfigError, match=r"dissect.models.ctl.random_bn: 'task' .* train.baseline.bn_images is 0"):
        dissect_settings(config, "ctl")
    assert dissect_settings(config, "plain")["random_bn"] == "init"


def test_the_command_refuses_a_negative_init_seed_and_writes_nothing(broden_shards, tmp_path, capsys):
    from cnninterp.cli import main

    code = main(["train", "random-control", "--shards", str(broden_shards), "--out", str(tmp_path / "m" / "model.pt"),
                 "--arch", "resnet10", "--init-seed", "-1"])
    assert code == 2 and "--init-seed must be >= 0, got -1" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
