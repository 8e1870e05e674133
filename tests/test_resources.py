"""Dissection jobs' memory and disk requests follow the images' own size, as the sharding records it.

The dissection does not resize (preprocess.to_tensor keeps the image's size), so Broden published at
384 px (broden1_384) needs larger requests than at 224 px; the shard manifest records the largest
image height and width (index.csv's, which the sharding checks against each decoded image), and
the requests are computed from it.
"""

import json

import pytest
import torch

from cnninterp.data.broden_shards import convert_broden
from cnninterp.data.synthetic_broden import generate_broden
from cnninterp.dissect.resources import job_resources, layer_shapes, manifest_image_size

LAYERS = ["layer1", "layer2", "layer3", "layer4"]


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    """Shard manifests of two synthetic Broden folders in the real layout, 224 and 384 px."""
    out = {}
    for size in (224, 384):
        root = tmp_path_factory.mktemp(f"broden{size}")
        generate_broden(root / "broden", n_images=4, image_size=size, seed=1, val_fraction=0.25)
        out[size] = convert_broden(root / "broden", root / "shards", 10, {"kind": "local"}, {})
        assert json.loads((root / "shards" / "manifest.json").read_text())["image_size"] == out[size]["image_size"]
    return out


def test_the_manifest_records_the_largest_image_size(manifests):
    for size, manifest in manifests.items():
        assert manifest["image_size"] == {"max_height": size, "max_width": size}
        assert manifest_image_size(manifest) == (size, size)


def test_384_px_shards_ask_for_more_memory_and_disk_than_224_px_shards(manifests):
    requests = {}
    for size, manifest in manifests.items():
        shapes = layer_shapes("resnet18", LAYERS, manifest_image_size(manifest))
        requests[size] = {stage: job_resources(stage, shapes, 64, 4000, 8, 1198) for stage in ("quantiles", "tally")}
    small, large = requests[224], requests[384]
    # the maps grow with the pixel count, (384/224)^2 = 2.9 times: the batch and cache terms follow
    assert large["quantiles"]["disk_mb"] > 2.5 * small["quantiles"]["disk_mb"], requests
    assert large["quantiles"]["mem_mb"] > small["quantiles"]["mem_mb"] + 1000, requests
    assert large["tally"]["mem_mb"] > small["tally"]["mem_mb"] + 1000, requests


def test_the_configured_size_is_a_fallback_only_where_no_size_was_recorded():
    assert manifest_image_size({"image_size": {"max_height": 300, "max_width": 200}}, 112) == (300, 200)
    assert manifest_image_size({}, 112) == (112, 112)
    assert manifest_image_size({}) is None
    assert manifest_image_size({"image_size": {"max_height": 0, "max_width": 0}}) is None


def test_layer_shapes_are_the_shapes_of_a_real_forward_pass_on_non_square_images():
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    seen = {}
    for name in LAYERS:
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape[1:])))
    with torch.no_grad():
        model(torch.zeros(1, 3, 227, 150))
    assert [seen[name] for name in LAYERS] == layer_shapes("resnet18", LAYERS, (227, 150))
