"""How shards are grouped into dissection jobs."""

from cnninterp.dissect.jobs import AUTO_IMAGES_PER_JOB, shards_per_job


def manifest(*sizes):
    return {"splits": {"train": {"shards": [{"name": f"train-{i:06d}.tar", "samples": n} for i, n in enumerate(sizes)]}}}


def test_a_set_value_is_used_as_is():
    assert shards_per_job(manifest(600, 600, 240), 1) == 1
    assert shards_per_job(manifest(600, 600, 240), 5) == 5


def test_auto_fills_a_job_with_whole_shards_up_to_the_image_budget():
    assert shards_per_job(manifest(600, 600, 240), 0) == AUTO_IMAGES_PER_JOB // 600
    assert shards_per_job(manifest(1000) , 0) == AUTO_IMAGES_PER_JOB // 1000
    assert shards_per_job(manifest(2 * AUTO_IMAGES_PER_JOB), 0) == 1  # a shard larger than the budget is still one job


def test_layer_shapes_match_torchvision_resnets():
    """The shape table agrees with the real models (torchvision, a forward on the meta device)."""
    import torch
    import torchvision

    from cnninterp.dissect.resources import layer_shapes

    for arch, size in (("resnet18", 224), ("resnet50", 227), ("resnet34", 64)):
        model = getattr(torchvision.models, arch)().to("meta").eval()
        seen = {}
        for name in ("layer1", "layer2", "layer3", "layer4"):
            getattr(model, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape[1:])))
        with torch.no_grad():
            model(torch.empty(1, 3, size, size, device="meta"))
        assert layer_shapes(arch, list(seen), size) == [seen[n] for n in seen]
    assert layer_shapes("vgg16", ["features.29"], 224) is None
    assert layer_shapes("resnet18", ["layer4.1.conv2"], 224) is None


def test_job_memory_depends_on_the_model_not_on_the_number_of_images_or_shards():
    from cnninterp.dissect.resources import job_resources, layer_shapes

    shapes = layer_shapes("resnet18", ["layer1", "layer2", "layer3", "layer4"], 224)
    at = {per_job: {s: job_resources(s, shapes, 64, per_job, 8, 1198) for s in ("quantiles", "thresholds", "tally", "gather")} for per_job in (990, 64)}
    for stage in ("quantiles", "thresholds", "tally", "gather"):
        assert at[990][stage]["mem_mb"] == at[64][stage]["mem_mb"] < 4000
    # the cache is bounded by the maps of the job's images: 1.5 MB each at 224 px
    assert at[990]["quantiles"]["disk_mb"] > 10 * at[64]["quantiles"]["disk_mb"]
    assert 1400 <= at[990]["quantiles"]["disk_mb"] <= 1600
    small = job_resources("quantiles", layer_shapes("resnet18", ["layer4"], 224), 64, 990, 8, 1198)
    assert small["mem_mb"] < at[990]["quantiles"]["mem_mb"]
    assert job_resources("quantiles", None, 64, 990, 8, 1198) == {}
