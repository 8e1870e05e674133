"""The evaluation's helpers against hand computations: the deletion control's pixel count
(distractor_sample), the masking by the frame's mean colour (masked_frames) and the attention-use
numbers (attention_use) at uniform and one-hot attention."""

import math

import numpy as np
import pytest
import torch

from cnninterp.attention.evaluate import attention_use, distractor_sample, masked_frames, predict
from cnninterp.attention.model import ModelSpec, build_model


def test_distractor_sample_deletes_as_many_distractor_pixels_as_causal_ones():
    cause = np.zeros((1, 3, 10, 10), bool)
    cause[0, :, :3] = True  # 30 causal pixels in every frame
    cause[0, 2] = False  # ... but none in frame 2
    distractor = np.zeros((1, 3, 10, 10), bool)
    distractor[0, 0, 5:9] = True  # 40 pixels: 30 of them are drawn
    distractor[0, 1, 9] = True  # 10 pixels: fewer than the cause, all of them
    distractor[0, 2, 5:] = True  # 50 pixels, no cause: none
    out = distractor_sample(cause, distractor, np.random.default_rng(0))
    assert out.dtype == bool and out.shape == cause.shape
    assert [int(out[0, t].sum()) for t in range(3)] == [30, 10, 0]
    assert not (out & ~distractor).any()
    assert np.array_equal(out[0, 1], distractor[0, 1])


def test_masked_frames_sets_the_masked_pixels_to_the_frames_mean_colour_and_nothing_else():
    frames = np.zeros((1, 2, 3, 2, 2), np.uint8)
    frames[0, 0, 0] = [[0, 10], [20, 30]]  # mean 15
    frames[0, 0, 1] = 7  # mean 7
    frames[0, 0, 2] = [[1, 2], [3, 5]]  # mean 2.75 -> 3
    frames[0, 1, 0] = [[100, 200], [0, 0]]  # mean 75
    frames[0, 1, 1] = [[1, 1], [1, 0]]  # mean 0.75 -> 1
    frames[0, 1, 2] = 255  # mean 255
    before = frames.copy()
    mask = np.zeros((1, 2, 2, 2), bool)
    mask[0, 0, 1, 1] = True
    mask[0, 1, 0, :] = True
    out = masked_frames(frames, mask)
    want = before.copy()
    want[0, 0, :, 1, 1] = [15, 7, 3]
    want[0, 1, :, 0, 0] = want[0, 1, :, 0, 1] = [75, 1, 255]
    assert out.dtype == np.uint8 and np.array_equal(out, want)
    assert np.array_equal(frames, before)  # the input is left alone


def test_attention_use_reads_1_for_uniform_attention_and_0_and_L_for_one_hot():
    torch.manual_seed(0)
    spec = ModelSpec(kind="attention", height=24, width=48, hidden=8, coords=True)
    model = build_model(spec).eval()
    length = spec.grid[0] * spec.grid[1]  # 3 x 6 = 18 cells
    frames = np.random.default_rng(0).integers(0, 256, (2, 3, 3, 24, 48), dtype=np.uint8)
    angle = np.array([[0.1, -0.2, 0.3], [0.0, 0.4, -0.5]])
    ckpt = {"target_std": 2.0, "target_mean": 0.5}
    uniform = np.full((2, 3, length), 1 / length, np.float32)
    one_hot = np.zeros((2, 3, length), np.float32)
    one_hot[..., 5] = 1.0
    u = attention_use(model, ckpt, frames, angle, uniform)
    assert u["entropy"] == pytest.approx(1.0, abs=1e-6) and u["peak"] == pytest.approx(1.0, abs=1e-6)
    h = attention_use(model, ckpt, frames, angle, one_hot)
    assert h["entropy"] == 0.0 and h["peak"] == length
    # half the mass on each of two cells: entropy log 2 / log 18, peak 9
    two = np.zeros((2, 3, length), np.float32)
    two[..., [0, 17]] = 0.5
    t = attention_use(model, ckpt, frames, angle, two)
    assert t["entropy"] == pytest.approx(math.log(2) / math.log(length), rel=1e-6) and t["peak"] == pytest.approx(length / 2)
    # mae_uniform is the model's MAE with uniform weights: the same model with w = 0 attends uniformly
    with torch.no_grad():
        model.w.weight.zero_()
    pred = predict(model, ckpt, frames)["pred"]
    assert u["mae_uniform"] == pytest.approx(float(np.abs(pred - angle).mean()), rel=1e-6)
    assert u["mae_uniform"] == h["mae_uniform"]  # it does not read the alpha it is given
