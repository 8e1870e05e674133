"""On the default settings (the schema's defaults), the interpretable network's filters fire at a
steadier place relative to the object's parts than the ordinary network's: lower location
instability, at little or no cost in accuracy. And what the filters became.

Measured (benchmarks/icnn_effect.py --seeds 0 1 2 --threads 1): location instability ICNN / CNN =
0.057 / 0.079, 0.026 / 0.065, 0.033 / 0.068 (ratios 0.73, 0.40, 0.48); accuracy ICNN 0.995-1.0,
CNN 0.90-0.995. The test runs seed 0, the weakest of the three, and asks for a ratio below 0.85.

What the filters became (same runs): every ICNN filter's most stable landmark is the body (1
distinct part of 5, all seeds); filter roles dead / object-preferring / negative-preferring
ICNN 3/10/3, 0/16/0, 0/16/0 vs CNN 4/7/5, 2/8/6, 4/8/4; the object-preferring filters' location
instability ICNN 0.031, 0.026, 0.033 vs CNN 0.026, 0.028, 0.031. So on this data the loss lowers
the layer's instability by turning (nearly) every filter into an object filter, not by making an
object filter steadier than an ordinary network's; and all of them fire at one place. With the
argmax mask alone (filter_weight 0): object filters 8, 8, 9, best landmarks body 11 / head 5,
body 11 / tail 5, body 16.
"""

import json

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """Both networks trained and evaluated on the schema's defaults (seed 0); returns metrics.json's dict."""
    import torch

    from cnninterp.config import load_schema
    from cnninterp.data.parts import write_parts
    from cnninterp.icnn.evaluate import evaluate
    from cnninterp.icnn.model import NetSpec
    from cnninterp.icnn.train import train_net

    torch.set_num_threads(1)
    tmp_path = tmp_path_factory.mktemp("icnn_default")
    schema = load_schema()["properties"]["icnn"]["properties"]
    d, m, t, e = ({k: v["default"] for k, v in schema[part]["properties"].items()} for part in ("data", "model", "train", "eval"))
    assert d["source"] == "synthetic"
    seed = schema["seed"]["default"]
    kw = dict(image_size=d["image_size"], positive_fraction=d["positive_fraction"], shard_size=d["shard_size"])
    write_parts(tmp_path / "parts", splits={"train": d["train_images"], "test": d["test_images"]}, seed=seed, **kw)
    write_parts(tmp_path / "probe", splits={"probe": d["probe_images"]}, seed=seed + 1, **kw)
    for kind in ("icnn", "cnn"):
        spec = NetSpec(interpretable=kind == "icnn", image_size=d["image_size"], **m)
        train_net(tmp_path / "parts", tmp_path / kind / "model.pt", spec, epochs=t["epochs"], batch_size=t["batch_size"],
                  lr=t["lr"], filter_weight=t["filter_weight"], seed=seed, device="cpu")
    result = evaluate(tmp_path / "parts", tmp_path / "probe", {"icnn": tmp_path / "icnn/model.pt", "cnn": tmp_path / "cnn/model.pt"},
                      tmp_path / "eval/metrics.json", **e)
    print(json.dumps({k: v for k, v in result.items() if k != "filter_parts"}, indent=1))
    return result


def test_default_settings_lower_location_instability(default_run):
    li = default_run["location_instability"]
    assert li["icnn"] < 0.85 * li["cnn"]
    best = default_run["location_instability_best_part"]
    assert best["icnn"] < 0.85 * best["cnn"]
    assert default_run["accuracy"]["icnn"] >= default_run["accuracy"]["cnn"] - 0.03


def test_the_filter_loss_recruits_more_filters_to_the_object(default_run):
    # measured object-preferring filters ICNN 10, 16, 16 vs CNN 7, 8, 8 of 16 (seeds 0-2)
    roles = {k: default_run["filter_parts"][k]["roles"] for k in ("icnn", "cnn")}
    assert roles["icnn"]["object"] >= roles["cnn"]["object"] + 2


@pytest.mark.xfail(strict=True, reason=(
    "paper: different filters represent different parts. Measured (seeds 0-2): every ICNN filter's most stable "
    "landmark is the body (1 distinct of 5); its object filters all fire at one place, the underside of the body "
    "between the legs (mean offset from the body centre -0.17 / -0.24 along body->head and +0.45 / +0.70 towards "
    "the legs, seeds 0 / 1, in units of the head distance; 36-82% of their peaks on background). The ordinary CNN's object filters fire at the same "
    "place, so the task makes it the most useful place (objects differ from the negatives' scattered parts by the "
    "legs-under-body configuration); the loss then pulls every filter there: with the argmax mask alone (weight 0) "
    "2 distinct best landmarks in 2 of 3 seeds (body 11 / head 5, body 11 / tail 5, body 16). Single-category "
    "training has no term asking filters to differ."))
def test_different_filters_become_different_parts(default_run):
    assert default_run["filter_parts"]["icnn"]["distinct_best_landmarks"] >= 2


@pytest.mark.xfail(strict=True, reason=(
    "the paper's effect per filter: an interpretable filter is steadier than an ordinary one. Measured (seeds 0-2), "
    "location instability of the object-preferring filters alone: ICNN 0.031, 0.026, 0.033 vs CNN 0.026, 0.028, "
    "0.031 (ratios 1.21, 0.91, 1.04): no steadier; the layer-wide effect comes from the roles (dead + "
    "negative-preferring filters ICNN 6, 0, 0 vs CNN 9, 8, 8, with instability 0.09-0.13; mask alone: object "
    "filters 8, 8, 9, their instability 0.024, 0.025, 0.026). The data is why: the negatives' scattered parts already "
    "force the ordinary network's object filters onto the legs-under-body configuration. Through the CUB path with "
    "the same objects and part-free clutter negatives (benchmarks/icnn_cub_layout.py, seeds 0-2) the object filters' "
    "instability is ICNN 0.026, 0.028, 0.029 vs CNN 0.048, 0.068, 0.108: there the per-filter effect shows."))
def test_object_filters_of_the_interpretable_network_are_steadier(default_run):
    by_role = {k: default_run["filter_parts"][k]["location_instability_by_role"]["object"] for k in ("icnn", "cnn")}
    assert by_role["icnn"] < 0.85 * by_role["cnn"]
