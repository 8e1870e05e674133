"""Real models the way their users ask for them: torchvision's published weights from its cache,
NetDissect's model-zoo checkpoints (``module.`` prefix), and a warning for a random model."""

import logging
import socket

import pytest
import torch

from cnninterp.errors import ModelError
from cnninterp.models.backbones import build_arch, load_model


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the test tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_published_weights_load_from_torchvisions_cache_without_network(tmp_path, monkeypatch, no_network):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch home"))
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    cached = tmp_path / "torch home" / "hub" / "checkpoints" / url.rsplit("/", 1)[-1]
    cached.parent.mkdir(parents=True)
    torch.manual_seed(7)
    reference = build_arch("resnet18")
    torch.save(reference.state_dict(), cached)
    for name in ("DEFAULT", "IMAGENET1K_V1"):
        model = load_model("torchvision:resnet18", weights=name)
        for key, value in reference.state_dict().items():
            assert torch.equal(model.state_dict()[key], value), key


def test_unknown_weights_name_lists_the_published_ones():
    with pytest.raises(ModelError, match=r"weights 'IMAGENET9K' are not published for resnet18; choose one of: DEFAULT, IMAGENET1K_V1"):
        load_model("torchvision:resnet18", weights="IMAGENET9K")


def test_a_random_torchvision_model_is_announced(caplog):
    with caplog.at_level(logging.WARNING):
        load_model("torchvision:resnet10", init_seed=3)
    assert "torchvision:resnet10 has neither weights nor a checkpoint: it is randomly initialised (seed 3)" in caplog.text


def test_model_zoo_checkpoint_with_module_prefix_loads(tmp_path):
    torch.manual_seed(1)
    reference = build_arch("resnet18", num_classes=365)
    path = tmp_path / "resnet18_places365.pth.tar"
    torch.save({"epoch": 90, "arch": "resnet18", "best_prec1": 54.7, "state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, path)
    model = load_model("torchvision:resnet18", path)
    assert model.fc.out_features == 365
    assert torch.equal(model.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_model_zoo_checkpoint_for_another_architecture_names_the_keys(tmp_path):
    path = tmp_path / "wrong.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in build_arch("resnet10").state_dict().items()}}, path)
    with pytest.raises(ModelError, match=r"wrong\.pth\.tar does not fit the architecture: missing keys"):
        load_model("torchvision:resnet18", path)
