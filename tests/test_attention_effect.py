"""On the default settings (the schema's defaults): every model learns to steer, and deleting the
causal pixels moves every model's output far more than deleting as many distractor pixels. The
issue's two other targets do not show on the defaults and are strict expected failures (an
unexpected pass fails the run, so the numbers here get updated):

Measured on the defaults (2026-12-03, CPU, 1 thread, outer road on, lr 0.001, 8 epochs; chain
45.6 s CPU): MAE attention 0.0093, attention_no_reg 0.0095, cnn 0.0038 rad (predicting the mean
0.0148); deletion |Δû| cause / distractor 0.0049 / 0.0003 (attention), 0.0050 / 0.0003 (λ = 0),
0.0094 / 0.0002 (cnn); attention_on_cause ratio 1.01 (λ = 0.1) and 0.99 (λ = 0). Why the ratio is
1: the attention stays uniform (entropy / log L 0.998; replacing it by uniform weights changes the
MAE from 0.0093 to 0.0096), so the attention model is a global average pool of the feature cube.
The encoder's receptive field (61 px) is taller than the 40-px frame, so every cell sees the
look-ahead band and nothing rewards attending to the band's cells; the attention score gets a
gradient only through differences between cells. With 16 epochs see benchmarks/RESULTS.md.
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
    for name in ("attention", "attention_no_reg", "cnn"):  # measured 0.63, 0.64, 0.26 of the mean predictor's
        assert mae[name] < 0.8 * mean, name


def test_deleting_the_cause_moves_the_output_more_than_deleting_distractors(default_metrics):
    for name, d in default_metrics["deletion_by_model"].items():  # measured 16x, 19x, 43x
        assert d["cause"] > 5 * d["distractor"], name


@pytest.mark.xfail(reason="measured 0.0093 (attention) vs 0.0038 (cnn) rad on the defaults: the attention model underfits in 8 epochs", strict=True)
def test_attention_costs_little_accuracy(default_metrics):
    mae, mean = default_metrics["mae"], default_metrics["mae_predicting_the_mean"]
    assert mae["attention"] <= mae["cnn"] + MAE_TOLERANCE * mean


@pytest.mark.xfail(reason="measured ratio 1.01 on the defaults: the attention stays uniform (see the module docstring)", strict=True)
def test_attention_lies_on_the_cause(default_metrics):
    assert default_metrics["attention_on_cause"]["ratio"] > 2.0
