"""On the default settings (the schema's defaults): every model learns to steer, the attention model
steers about as well as the CNN baseline (the paper's claim, within MAE_TOLERANCE), and deleting
the causal pixels moves every model's output far more than deleting as many distractor pixels.
The issue's on-cause target does not show on the defaults and is a strict expected failure (an
unexpected pass fails the run, so the numbers here get updated).

Measured on the defaults (2026-12-03, CPU, 1 thread, outer road on, lr 0.001, 12 epochs; chain
57.9 s CPU, benchmarks/attention.py): MAE attention 0.0058, attention_no_reg 0.0058, cnn 0.0028 rad
(predicting the mean 0.0148), i.e. attention - cnn = 0.198 of the mean predictor's MAE; deletion
|Δû| cause / distractor 0.0068 / 0.0003 (attention), 0.0054 / 0.0004 (λ = 0), 0.0086 / 0.0002
(cnn); attention_on_cause ratio 1.06 (λ = 0.1) and 1.03 (λ = 0). Why the ratio is about 1: the
attention stays nearly uniform (entropy / log L 0.996; replacing it by uniform weights changes the
MAE from 0.0058 to 0.0066), so the attention model is close to a global average pool of the
feature cube. The encoder's receptive field (61 px) is taller than the 40-px frame, so every cell
sees the look-ahead band and little rewards attending to the band's cells. With 16 epochs the
attention sharpens a little (entropy 0.988 / 0.966, ratio 1.05 / 1.16 for λ = 0.1 / 0).
"""

import json

import pytest

pytestmark = pytest.mark.slow
MAE_TOLERANCE = 0.25  # attention MAE may exceed the CNN's by at most this share of the mean predictor's MAE


@pytest.fixture(scope="module")
def default_metrics(tmp_path_factory):
    import torch

    from cnninterp.attention.evaluate import evaluate
    from cnninterp.attention.train import train_model
    from cnninterp.config import load_schema
    from cnninterp.data.driving import Camera, RoadSpec, generate_driving

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("attention")
    schema = load_schema()["properties"]["attention"]["properties"]
    d, m, t, e = ({k: v["default"] for k, v in schema[p]["properties"].items()} for p in ("data", "model", "train", "eval"))
    seed = schema["seed"]["default"]
    camera = Camera(height=d["height"], width=d["width"], lookahead=d["lookahead_m"], band=d["band"])
    spec = RoadSpec(camera=camera, seq_len=d["seq_len"], distractors=d["distractors"], outer=d["outer_road"])
    shards = tmp / "driving"
    generate_driving(shards, spec, d["train_sequences"], d["test_sequences"], seed=seed, shard_size=d["shard_size"])
    models = {}
    for name, kind, lam in (("attention", "attention", t["reg_weight"]), ("attention_no_reg", "attention", 0.0), ("cnn", "cnn", 0.0)):
        models[name] = tmp / name / "model.pt"
        train_model(shards, models[name], kind, lam, epochs=t["epochs"], batch_size=t["batch_size"], lr=t["lr"], seed=seed,
                    device="cpu", hidden=m["hidden"], coords=m["coords"])
    metrics = evaluate(shards, models, tmp / "eval" / "metrics.json", seed=seed, **e)
    print(json.dumps(metrics, indent=1))
    return metrics


def test_every_model_learns_to_steer(default_metrics):
    mae, mean = default_metrics["mae"], default_metrics["mae_predicting_the_mean"]
    for name in ("attention", "attention_no_reg", "cnn"):  # measured 0.39, 0.39, 0.19 of the mean predictor's
        assert mae[name] < 0.6 * mean, name


def test_attention_costs_little_accuracy(default_metrics):
    mae, mean = default_metrics["mae"], default_metrics["mae_predicting_the_mean"]
    assert mae["attention"] <= mae["cnn"] + MAE_TOLERANCE * mean  # measured 0.198 of the mean's MAE


def test_deleting_the_cause_moves_the_output_more_than_deleting_distractors(default_metrics):
    for name, d in default_metrics["deletion_by_model"].items():  # measured 21x, 15x, 41x
        assert d["cause"] > 5 * d["distractor"], name


@pytest.mark.xfail(reason="measured ratio 1.06 on the defaults: the attention stays nearly uniform (see the module docstring)", strict=True)
def test_attention_lies_on_the_cause(default_metrics):
    assert default_metrics["attention_on_cause"]["ratio"] > 2.0
