"""The paper's picture on the default config (issue 11, item 3), measured end to end.

Uses config.yaml's own data, training task and dissection settings: the probe set and the
separate scene task are generated, the baseline is trained on the task, and the trained network
and its random control are dissected on the probe set with the engine the pipeline runs
(about 2.5 minutes on 2 free cores). The findings are computed by the report's own function
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
    from cnninterp.dissect.pipeline import dissect
    from cnninterp.models.backbones import load_model, random_model
    from cnninterp.train.baseline import train_baseline
    from cnninterp.train.random_control import random_control

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
                            ground_rule=task["ground_rule"], object_rule=task["object_rule"], third_object=task["third_object"])
        convert_broden(tmp / "task", tmp / "task_shards", task["shard_size"], {"kind": "synthetic_scene_task"}, {})
        t = config["train"]["baseline"]
        assert t["data"] == "scene_task"
        trained = train_baseline(tmp / "task_shards", tmp / "model.pt", arch=t["arch"], task=t["task"], epochs=t["epochs"],
                                 batch_size=t["batch_size"], lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"],
                                 preprocess="imagenet", seed=config["seed"], bn_images=t["bn_images"])
        control = dissect_settings(config, "baseline_random")
        if control["random_bn"] == "task":  # BatchNorm statistics from the task images, as the baseline's (rule random_control)
            random_control(tmp / "task_shards", tmp / "random.pt", arch=t["arch"], task=t["task"], init_seed=control["init_seed"],
                           batch_size=t["batch_size"], bn_images=t["bn_images"], preprocess="imagenet", seed=config["seed"])
            random = load_model("checkpoint", tmp / "random.pt")
        else:
            random = random_model(t["arch"], control["init_seed"])
        summaries = {}
        for name, model in (("baseline", load_model("checkpoint", tmp / "model.pt")), ("baseline_random", random)):
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


# Measured on the default config since issue 11's task change (the scene told by its two objects and
# their arrangement, the ground a nuisance, no distractor third object; 3 epochs; BatchNorm
# statistics re-estimated after training), see benchmarks/RESULTS.md:
# run 1 (1 thread, benchmarks/default_task_rules.py): accuracy 0.828; detectors per layer
#   41/38/25/63 (colour 27/13/0/0, object+part 4/20/19/33 = 10 %/53 %/76 %/52 %, material 9/5/1/5,
#   texture 1/0/5/24, scene 0/0/0/1); unique layer4 21 trained vs 21 random.
# run 2 (2 threads, the pipeline through Snakemake, benchmarks/default_chain.py): accuracy 0.835;
#   detectors 48/38/21/74 (colour 29/9/0/0, object+part 7/25/15/36 = 15 %/66 %/71 %/49 %, material
#   9/2/2/7, texture 3/2/4/28, scene 0/0/0/3); unique layer4 21 trained vs 21 random.
# run 3 (1 thread, training seed 1, default_task_rules.py --train-seed 1): accuracy 0.843; detectors
#   41/42/28/75 (colour 33/16/0/0, object+part 3/21/17/41 = 7 %/50 %/61 %/55 %, material 5/5/6/6,
#   texture 0/0/5/26, scene 0/0/0/2); unique layer4 18 trained vs 21 random.
# Random control with the identity BatchNorm (random_bn: init, the default until 2026-12-04):
# detectors 43/39/54/114 (layer4 texture 90, material 24), unique 7/12/15/21; above chance
# 43/33/11/24. With the trained model's BatchNorm treatment (random_bn: task, this fixture, 2
# threads; the same weights, since 2026-12-04 afternoon: the control's head had been the task's,
# which changed every layer's random draws): detectors 47/26/34/145, above chance 47/21/5/2,
# unique 6/6/9/10, above chance 6/5/3/2 (before the fix, other weights: 37/21/29/116, 36/17/0/2).
# Why the random control detects so many textures (benchmarks/default_probe_realism.py, 1 thread,
# the default-task model above, benchmarks/RESULTS.md "probe realism"): with the texture labels
# permuted among the texture images (--permute-textures 0) the random control keeps 51/100 texture
# detectors in layer3/4 (43/90 with the true labels), the trained 3/18 (5/24): at 5-6 images per
# texture label both networks' texture detectors are at chance level (a whole-image label's IoU
# with the 'original' denominator only counts active pixels on texture images). Changes that do not
# touch texture images at all move the random count through the sample (another probe seed 274,
# material variation 337 with layer4 texture 144). Photograph-like rendering (Realism switches, each
# alone): within-label texture scale/orientation/tones 247, an orientation-free 24-kind texture
# vocabulary 274, material variation 337, unlabelled clutter 286, shading and grain 267 (today 250);
# all five 164, but clutter costs the task (held-out 0.45 with clutter alone, 0.43 with the four
# task-side switches; shading alone 0.81, material variation 0.79).


@slow
def test_task_accuracy_on_held_out_task_images(default_run):
    trained, _ = default_run
    assert trained["val_accuracy"] >= 0.8, trained["val_accuracy"]  # issue 11's target; measured 0.828, 0.835, 0.843


@slow
def test_detectors_in_at_least_four_of_six_categories(found):
    assert len(found["categories_found"]) >= 4, found["categories_found"]  # measured 6, 6, 6


@slow
def test_colour_detectors_sit_in_the_lower_layers(found):
    assert sum(found["color_by_layer"][:2]) >= 10 and found["color_low_share"] >= 0.9, found["color_by_layer"]  # measured 40 of 40, 38 of 38, 49 of 49


@slow
def test_object_and_part_share_grows_from_layer1_to_layer4(found):
    # measured 10 % -> 52 %, 15 % -> 49 %, 7 % -> 55 %; a margin of 20 points, inside both
    first, last = found["layers"][0]["object_part"], found["layers"][-1]["object_part"]
    assert found["object_part_grows"] and last >= first + 0.2, [l["object_part"] for l in found["layers"]]


@slow
def test_object_and_part_detectors_outnumber_material_ones_in_the_top_layer(found):
    # measured 33 vs 5, 36 vs 7, 41 vs 6 (4 epochs without the BatchNorm re-estimation: 38 vs 6)
    top = found["layers"][-1]["per_category"]
    assert top["object"] + top["part"] >= 2 * top["material"] and top["object"] + top["part"] >= 10, top


@slow
def test_the_top_layer_random_control_has_at_most_a_tenth_of_the_detectors_above_chance(found):
    """The paper's comparison is the top layer (AlexNet conv5: 97 unique detectors trained, 9
    random). With the permutation chance level of whole-image labels (dissect.chance: 1000 shuffles
    of the label sets among the images holding one, p < 0.01) and the random control given the
    trained model's BatchNorm treatment (random_bn: task): measured 46 trained vs 2 random layer4
    detectors above chance (this fixture, 2 threads); init seeds 1 / 2 / 3 at 1 thread 2 / 1 / 1
    (benchmarks/random_control_bn.py; the same weights with the identity BatchNorm 24 / 30 / 24). By
    the paper's rule alone 74 vs 145: every texture detector of both networks is at chance on this probe (5-6 images
    per texture label; with the texture labels shuffled 5 of 960 random units pass, within alpha)."""
    top = found["layers"][-1]
    assert top["above_chance"] is not None and top["random_above_chance"] is not None, top
    assert top["random_above_chance"] <= 0.1 * top["above_chance"], (top["above_chance"], top["random_above_chance"])


@slow
def test_the_top_layer_random_control_has_few_distinct_concepts_above_chance(found):
    """The paper's measure, unique detectors (distinct concepts) of the top layer, above chance:
    measured 17 trained vs 2 random (0.12; this fixture), the random control 2 / 1 / 1 over init
    seeds 1-3 at 1 thread (benchmarks/random_control_bn.py; the same weights with the identity
    BatchNorm 6 / 5 / 9).
    At most a fifth: a tenth, the paper's ratio, would leave a margin of one concept."""
    assert found["unique_trained_above_chance"] >= 10, found["unique_trained_above_chance"]
    assert found["unique_random_above_chance"] <= 0.2 * found["unique_trained_above_chance"], (
        found["unique_trained_above_chance"], found["unique_random_above_chance"])


@slow
@pytest.mark.xfail(strict=True, reason=(
    "over all layers, above the chance level of whole-image labels (dissect.chance) the totals are "
    "144 trained vs 75 random (layer1-4 45/36/17/46 vs 47/21/5/2; random control with the trained "
    "model's BatchNorm treatment, random_bn: task; with the identity BatchNorm 111, 43/33/11/24): the "
    "random control's layer1-2 colour detectors are pixel-level, genuine detections (random filters "
    "respond to colour); the top layer is at a tenth (a plain test). By the paper's rule alone: 181 "
    "trained vs 252 random (identity BatchNorm: 250; trained in three runs 167, 181, 186). "
    "With the identity BatchNorm the random resnet10's layer4 units are texture detectors (90 of "
    "its 114, 15 textures; texture images are the only probe images patterned edge to edge, their "
    "labels whole-image masks), the trained layer4 has 24-28 texture and 33-36 object and part "
    "detectors (the task has no texture images; that this is why was "
    "not tested further). With the old ground-defined task the count passed (611 vs 250) through "
    "228 material (ground) detectors. Not the paper's measure (unique detectors, below). The random "
    "control's texture detectors are at chance level: with the texture labels permuted among the "
    "texture images it keeps 100 in layer4 (90 true), the trained 18 (24); with 3,600 probe images "
    "(17 per label, chance 0-3) the count is 137 trained vs 141 random; photograph-like rendering "
    "(benchmarks/default_probe_realism.py) left it at 247-337 per switch, 164 with all five (task "
    "accuracy 0.43). A probe of 45 % texture images passes (258 vs 115) through the composition "
    "alone (trained layer4 thresholds 7 % lower, random 6 % higher), so it is not the default"))
def test_trained_network_has_more_detectors_than_its_random_control(found):
    assert found["trained"] >= 2 * found["random"], (found["trained"], found["random"])


@slow
@pytest.mark.xfail(strict=True, reason=(
    "the paper's measure, unique detectors (distinct concepts) of the top layer, by the paper's rule "
    "alone (no chance level): 21 trained vs 10 random (0.48) with the random control given the "
    "trained model's BatchNorm treatment (random_bn: task; 10 / 10 / 7 over init seeds 1-3, mostly "
    "textures at chance), 21 vs 21 with the identity BatchNorm; above the chance level 17 vs 2 (a "
    "plain test at a fifth). Earlier, identity BatchNorm: verified causes (benchmarks/default_random_control.py, "
    "init seeds 1-3): the random resnet10 is dissected with BatchNorm's initial running statistics "
    "(mean 0, variance 1: the identity) and its residual identity paths carry lower layers' "
    "features up: random layer4 has 21/22/23 unique concepts as dissected, 7/8/4 with BatchNorm "
    "statistics estimated on 256 probe images, 8/9/11 without the identity paths; a random "
    "AlexNet's conv5 has 9/9/9 on this probe set (the paper's random AlexNet: 9). And the probe "
    "vocabulary has 122 labels: a tenth of even 4 random would need 40 unique trained concepts in "
    "layer4 (the trained one has 21; Broden has 1,197 labels; the paper's 97 vs 9). Probe realism "
    "(benchmarks/default_probe_realism.py): 16 vs 16 with varied, orientation-free textures; 15 vs 14 "
    "with 3,600 probe images; 34 vs 8 (0.24) with 45 % texture images, through the composition"))
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
