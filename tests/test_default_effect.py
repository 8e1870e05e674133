"""The paper's picture on the default config (issue 11, item 3), measured end to end.

Uses config.yaml's own data, training task and dissection settings: the probe set and the
separate scene task are generated, the baseline is trained on the task, and the trained network
and its random control are dissected on the probe set with the engine the pipeline runs
(about 3 minutes on 2 free cores). The findings are computed by the report's own function
(``report.dissection.findings``), so the test checks what the report states.
"""

import json

import pytest

from conftest import ROOT

slow = pytest.mark.slow


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    from cnninterp.config import dissect_settings, load_config
    from cnninterp.data.broden_shards import convert_broden
    from cnninterp.data.synthetic_broden import generate_broden, generate_scene_task
    from cnninterp.dissect.engine import dissect
    from cnninterp.models.backbones import load_model, random_model
    from cnninterp.train.baseline import train_baseline

    import torch

    tmp = tmp_path_factory.mktemp("default")
    config = load_config(ROOT / "config.yaml")
    # one thread count, fixed: the pipeline's two (THREADS), so that a run on another host with
    # more cores trains the same network (float reductions depend on the thread count)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        syn, task = config["broden"]["synthetic"], config["broden"]["scene_task"]
        generate_broden(tmp / "broden", syn["n_images"], syn["image_size"], syn["seed"], syn["val_fraction"])
        convert_broden(tmp / "broden", tmp / "shards", config["broden"]["shard_size"], {"kind": "synthetic"}, {})
        generate_scene_task(tmp / "task", task["n_images"], syn["image_size"], task["seed"], task["val_fraction"],
                            ground_rule=task["ground_rule"], object_rule=task["object_rule"])
        convert_broden(tmp / "task", tmp / "task_shards", task["shard_size"], {"kind": "synthetic_scene_task"}, {})
        t = config["train"]["baseline"]
        assert t["data"] == "scene_task"
        trained = train_baseline(tmp / "task_shards", tmp / "model.pt", t["arch"], t["task"], t["epochs"], t["batch_size"], t["lr"], t["momentum"], t["weight_decay"], "imagenet", config["seed"])
        summaries = {}
        for name, model in (
            ("baseline", load_model("checkpoint", tmp / "model.pt")),
            ("baseline_random", random_model(t["arch"], dissect_settings(config, "baseline_random")["init_seed"])),
        ):
            s = dissect_settings(config, name)
            layers = dissect(model, s["layers"], tmp / "shards", tmp / name, s["quantile"], s["iou_threshold"], s["denominator"], batch_size=s["batch_size"])
            summaries[name] = {"layers": layers}
    finally:
        torch.set_num_threads(threads)
    return trained, summaries


@pytest.fixture(scope="module")
def found(default_run):
    from cnninterp.report.dissection import findings

    _, summaries = default_run
    cats = ["color", "object", "part", "material", "scene", "texture"]
    result = findings(summaries["baseline"], summaries["baseline_random"], cats)
    print("findings:", json.dumps({k: v for k, v in result.items() if k != "paper"}))
    return result


# Measured on the default config (2026-12-03, 2 shared cores, see benchmarks/RESULTS.md), four runs
# (training was not bit-reproducible across runs with varying thread counts; the fixture now fixes
# two): task accuracy 0.827, >= 0.8 and 0.818; trained detectors per layer 56/86/143/284,
# 58/85/153/315 and 53/81/154/319 (colour 36/31/1/0, 36/31/1/1, 36/22/1/2; material 15/40/99/231,
# 15/39/101/232, 16/40/115/228; texture 5/12/42/37, 7/14/51/71, 1/13/37/65; scene 0/0/1/11,
# 0/0/0/7, 0/0/0/16; part 0/3/0/5, 0/1/0/3, 0/6/1/8; object 0 in all but one layer4 unit); random
# control 199 and 250 detectors; unique detectors (distinct concepts) per layer, run 3:
# trained 12/23/20/31, random 7/12/15/21. Run 4 (two threads fixed) repeated run 2 exactly, unique
# 16/23/20/30 vs 7/12/15/21.


@slow
def test_task_accuracy_on_held_out_task_images(default_run):
    trained, _ = default_run
    assert trained["val_accuracy"] >= 0.8, trained["val_accuracy"]  # issue 11's target; measured 0.827, 0.818


@slow
def test_detectors_in_at_least_four_of_six_categories(found):
    assert len(found["categories_found"]) >= 4, found["categories_found"]  # measured 5 (no object), 6 and 5


@slow
def test_colour_detectors_sit_in_the_lower_layers(found):
    assert sum(found["color_by_layer"][:2]) >= 10 and found["color_low_share"] >= 0.9, found["color_by_layer"]  # measured 67 of 68, 67 of 69, 58 of 61


@slow
def test_trained_network_has_more_detectors_than_its_random_control(found):
    assert found["trained"] >= 2 * found["random"], (found["trained"], found["random"])  # measured 569 vs 199, 611 vs 250, 607 vs 250


@slow
def test_object_and_part_share_grows_from_layer1_to_layer4(found):
    # by the letter only: measured 0 % -> 1.8 %, 1.3 % and 2.5 % of the layers' detectors
    assert found["object_part_grows"], [l["object_part"] for l in found["layers"]]


@slow
@pytest.mark.xfail(strict=True, reason=(
    "not the paper's picture on the default task: object and part detectors are 4-9 of layer4's "
    "~300 (objects 0-1), material detectors 228-232. Not a resolution limit: an ideal unit (the "
    "concept's own mask pooled to 4x4 and upsampled) reaches IoU 0.14-0.23 for objects at layer4's "
    "size, the trained network's best object unit 0.039. Cause verified (benchmarks/"
    "default_task_rules.py, 1 thread): the network learns the ground material, which the scene "
    "rules tie to the scene; with the ground a nuisance (ground_rule 0, object_rule 1) object+part "
    "become 35 of layer4's 64 detectors (material 6), parts from layer2 on, but held-out accuracy "
    "is 0.70 (< 0.8; mirrored batches 0.71, 8 epochs overfit to 0.57) and that network has fewer "
    "detectors than its random control (182 vs 250); ground_rule 0.5: material 80 of layer4's 203 "
    "again, accuracy 0.71. So the default keeps the ground rule and this finding does not show"))
def test_object_and_part_detectors_outnumber_material_ones_in_the_top_layer(found):
    top = found["layers"][-1]["per_category"]
    assert top["object"] + top["part"] > top["material"], top


@slow
@pytest.mark.xfail(strict=True, reason=(
    "the paper's measure, unique detectors (distinct concepts) of the top layer: 30-31 trained vs 21 "
    "random in layer4 (ratio 0.68-0.70; unit counts 607-611 vs 250 over all layers), not a tenth. The random "
    "layer4's 21 are 15 textures and 6 materials: random units put their top 0.5 % on the "
    "texture images (the only images patterned edge to edge) and the 'original' IoU counts "
    "activation only inside texture images, so a texture held by ~6 images passes 0.04. Verified "
    "not to be the gratings' cleanliness: DTD-like texture images (random scale 0.08-0.22, a smooth "
    "warp of 0.25 periods, moderate contrast, pixel noise) left 16 unique random texture detectors, "
    "random orientations 14. And the probe's vocabulary has 122 labels: a tenth of 21 would need "
    "210 unique trained concepts (Broden has 1,197 labels; the paper's 97 vs 9)"))
def test_random_control_has_at_most_a_tenth_of_the_unique_detectors(found):
    """The paper's count (NetDissect's released results: AlexNet conv5 97 unique detectors trained,
    9 random): unique concepts with a detector in the top layer."""
    assert found["unique_random_ratio"] <= 0.1, (found["unique_layer"], found["unique_trained"], found["unique_random"])


def _summary(per_layer):
    """A summary.json-shaped dict: per layer (detectors per category, unique concepts)."""
    return {
        "layers": {
            name: {
                "units": 64,
                "detectors": sum(per.values()),
                "detectors_per_category": per,
                "unique_concepts": unique,
            }
            for name, (per, unique) in per_layer.items()
        }
    }


def test_findings_counts_the_random_control_as_the_paper_does():
    """Unit counts and the paper's measure (unique detectors of the top layer) side by side."""
    from cnninterp.report.dissection import findings

    trained = _summary({"layer1": ({"color": 9, "texture": 1}, 5), "layer4": ({"object": 6, "part": 2, "material": 12}, 20)})
    random = _summary({"layer1": ({"color": 12}, 3), "layer4": ({"texture": 10}, 2)})
    f = findings(trained, random, ["color", "object", "part", "material", "scene", "texture"])
    assert (f["trained"], f["random"]) == (30, 22) and abs(f["random_ratio"] - 22 / 30) < 1e-12
    assert (f["unique_layer"], f["unique_trained"], f["unique_random"]) == ("layer4", 20, 2)
    assert abs(f["unique_random_ratio"] - 0.1) < 1e-12
    assert [(l["unique"], l["random_unique"], l["random_detectors"]) for l in f["layers"]] == [(5, 3, 12), (20, 2, 10)]
    assert f["categories_found"] == ["color", "object", "part", "material", "texture"]
    assert f["object_part_grows"] is True and abs(f["layers"][1]["object_part"] - 0.4) < 1e-12
    assert f["color_by_layer"] == [9, 0] and f["color_low_share"] == 1.0
    alone = findings(trained, None, ["color", "object", "part", "material", "scene", "texture"])
    assert alone["random"] is None and alone["unique_random"] is None and alone["unique_random_ratio"] is None


def test_batchnorm_recalibration_sets_running_statistics_to_the_batches_average():
    """After training, BN statistics are re-estimated on training images (the fix that lifted the
    object-defined task from 0.12 to 0.83 held-out accuracy at 3 epochs): the running mean becomes
    the average of the batch means, the running variance the average of the unbiased batch
    variances (numpy, per channel), weights untouched, momentum restored, eval mode."""
    import numpy as np
    import torch

    from cnninterp.train.baseline import recalibrate_batchnorm

    rng = np.random.default_rng(0)
    batches = [(rng.integers(0, 256, (4, 5, 6, 3), dtype=np.uint8), np.zeros(4, dtype=np.int64)) for _ in range(3)]
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.BatchNorm2d(2, momentum=0.3))
    model[1].running_mean.fill_(50.0)
    weights = model[0].weight.detach().clone()
    to_input = lambda images: torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    assert recalibrate_batchnorm(model, iter(batches), to_input, max_images=8) == 8
    w, b = model[0].weight.detach().numpy()[:, :, 0, 0], model[0].bias.detach().numpy()
    conv = [np.einsum("bhwc,oc->bhwo", images / 255.0, w) + b for images, _ in batches[:2]]
    mean = np.mean([c.reshape(-1, 2).mean(0) for c in conv], axis=0)
    var = np.mean([c.reshape(-1, 2).var(0, ddof=1) for c in conv], axis=0)
    np.testing.assert_allclose(model[1].running_mean.numpy(), mean, rtol=1e-5)
    np.testing.assert_allclose(model[1].running_var.numpy(), var, rtol=1e-4)
    assert torch.equal(model[0].weight, weights) and model[1].momentum == 0.3 and not model.training
    assert recalibrate_batchnorm(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1)), iter(batches), to_input, 8) == 0
