"""On the default settings (the schema's defaults, trained at 2 threads as the DAG's jobs are): every
model learns to steer, the attention model steers about as well as the CNN baseline (the paper's
claim, within MAE_TOLERANCE), deleting the causal pixels moves every model's output far more than
deleting as many distractor pixels, and the attention model's attention lies on the cause at more
than ON_CAUSE_SHOWN (2) times its area share (the issue's "well above 1").

Measured on the defaults since 2026-12-04 (64x128 frames, road drift x3, pitch 13 px, no ramp, located
cells, standardised context, logits x16 learned, clipping at 1, 8 epochs; RESULTS.md, issue 14), seed 0
on this CPU: on-cause ratio 2.78 at 2 threads (2.17 at 1 thread), lambda 0: 13.9 (one-hot on the
markings), MAE gap (attention - CNN) 0.09 of the mean predictor's MAE (0.12 at 1 thread). This is one
training seed: over 12 seeds of the same settings (CUDA, benchmarks/attention_sweep.sh) the ratio was
1.18-3.14, median 2.28, above 2 on 7 (seed 1 on the CPU at 1 thread: 0.94), so the claim holds for
the default run and for the typical seed, not for every seed. Why it falls short on some: the
regulariser holds the attention towards uniform and the lowest seeds are the most uniform
(attention.report.WHY). The test pins what it measures: seed 0, 2 threads, this machine's float
rounding; another thread count or CPU family trains a different model (1 thread: 2.17), and this
claim's margin is 2.78 against 2. The deletion test's margin for the attention model is 6.6 against 5.

History (the defaults before 2026-12-04 evening were 40x80 with none of the levers):

Measured on the defaults (2026-12-03, CPU, 1 thread, 40x80, He-initialised encoder, coordinates on
the feature cube, lr 0.001, 12 epochs; chain 57.2 s CPU, benchmarks/attention.py, seed 0): MAE
attention 0.0051, attention_no_reg 0.0058, cnn 0.0024 rad (predicting the mean 0.0148), i.e.
attention - cnn = 0.18 of the mean predictor's MAE; deletion |Δû| cause / distractor 0.0044 /
0.0003 (attention), 0.0038 / 0.0003 (λ = 0), 0.0081 / 0.0003 (cnn); attention_on_cause ratio 0.91
(λ = 0.1) and 0.88 (λ = 0), entropy / log L 0.992 and 0.989. Seeds 1 and 2 (the
same settings): MAE 0.0055 / 0.0034 / 0.0017 and 0.0043 / 0.0046 / 0.0021 (mean predictor 0.0156,
0.0148; attention - cnn 0.24 and 0.15 of it), ratio 0.84 / 0.75 and 1.05 / 1.02 (λ = 0.1 / 0),
deletion cause / distractor 13x, 17x, 26x and 15x, 14x, 21x.

Re-measured 2026-12-03 after two review fixes (seed 0, 1 thread, this module's fixture; before them
the figures above): (1) the LSTM's initial state from frame 0 only (it came from the mean over all T
frames, so the output at frame 0 saw frame 7): MAE attention 0.0048, attention_no_reg 0.0055, cnn
0.0024 rad (was 0.0051 / 0.0058 / 0.0024; attention - cnn 0.16 of the mean predictor's, was 0.18),
on-cause ratio 0.96 / 0.84 (was 0.91 / 0.88), deletion cause / distractor 17x / 15x / 26x (was
16x / 14x / 26x); (2) the attention maps registered on the cells' receptive-field centres (pixel
(8r, 8c); they sat 3.5 px down and right), same models: on-cause ratio 0.89 / 0.84, band-row ratio
0.96 / 0.89 (was 1.02 / 0.89), column correlation +0.39 / -0.37, causal filtering 67 blobs, 62 kept,
none causal. The diagnosis below predates both and still describes a ratio near 1.

Why the ratio is about 1 (benchmarks/attention_diagnosis.py, verified, not guessed): at 40x80 the
cause is not local in the feature cube. A ridge probe from ONE cell's features to the angle scores
held-out R² 0.60-0.88 (mean per cell row; CNN baseline's encoder) in every cell row, the top row
of sky cells included, while the band is cell rows 2-3: the 61-px receptive field covers the 40-px
frame. The models do use the causal pixels (input-gradient mass on the cause 3.6-6.7x its area
share), but every cell already carries them, so attention is not pushed to a place (an oracle
attention on the causal cells would hand the decoder a context with probe R² 0.84 against the
uniform mean's 0.71: a modest gain, which 12 epochs do not find). Attention that is free to
concentrate does so OFF the cause: with λ = 0 and the logits scaled by 8 it becomes one-hot
(entropy 0.05 / 0.09, peak 47x / 45x uniform, seeds 0 / 1) on bottom-row cells (row 4, columns
4-8: the road just ahead, whose field reaches up through the band), its MAE drops to 0.0030 /
0.0020 rad (CNN 0.0024 / 0.0017), and its on-cause ratio is 0.003 / 0.007; with λ = 0.1 and logits x8: entropy 0.90, ratio 1.11, MAE 0.0056. The
regulariser holds the attention towards uniform: with T = 8 < L = 50 its minimum is uniform.
At 80x160 (the paper's size; 2026-12-03, benchmarks/attention_diagnosis.py and benchmarks/attention.py
--set data.height=80 --set data.width=160 ..., seeds 0-2, 1 thread, shared CPU): the mean feature of
the translation-equivariant encoder carries nothing of the road's lateral position (ridge R² -0.09 /
-0.16, He init; 0.22 at 40x80), so the plain attention models sat at the median predictor. With
located cells [x, x*col, x*row] (model.located: the uniform mean then gives R² 0.44 / 0.54, an
oracle on the causal cells 0.92 / 0.91) and the context standardised by running estimates
(model.context_norm: its std over frames is 0.015-0.027) they learn, but in 6 epochs (batch 2, the
chain 112-120 s CPU) MAE attention 0.0059 / 0.0062 / 0.0072 rad against the CNN's 0.0018 / 0.0021 /
0.0018 (gap 0.28 / 0.26 / 0.36 of the mean predictor's, above MAE_TOLERANCE), deletion cause /
distractor 7.4x / 2.9x / 3.9x for the attention model, on-cause ratio 1.43 / 1.23 / 1.10 (λ = 0.1)
and 1.14 / 1.18 / 1.01 (λ = 0). The attention finds the band's depth (mass on its rows 1.59 / 1.24 /
1.14 times their share) but not the markings: its column centroid moves against theirs (correlation
-0.68 / -0.14 / -0.55; -0.96 after 12 epochs without context_norm, on the grass beside the road).
A one-cell probe of the trained CNN's encoder gives R² 0.90 in the band's cell rows and 0.94 / 0.91
in the two rows below (<= 0.02 in the sky rows): the 61-px receptive field lets cells beside and
below the band see the markings, and nothing in the loss prefers the cells that hold them. Twice the
budget does not close the gap: 12 epochs with the same settings (188 s CPU) gave MAE 0.0148 / 0.0069
rad (seeds 0 / 1; seed 0 ended at the mean predictor) against the CNN's 0.0010 / 0.0016, ratio 1.49 /
1.27; located cells alone (batch 4, 12 epochs, seed 0) 0.0038 (λ = 0.1) / 0.0034 (λ = 0), ratio 0.74 / 0.48.

Fourth session (2026-12-03 16:47-17:15, 80x160, located + context_norm, batch 4, scratch runs of the
attention model alone at 1 thread, then the chain benchmarks/attention.py at 2 threads; RESULTS.md):
- The 12-epoch collapse was a leak, not the optimiser: the context standardisation moved its running
  estimates towards each step's own batch before standardising, and the model came to rely on it
  (seed 0, 12 epochs: held-out MAE 0.0133 rad, 0.0142 on its own training sequences in evaluation,
  training loss 0.20 std); estimates moved after the pass: 0.0058; plus gradient clipping at 1: 0.0028.
- Budget: an epoch of 128 sequences at 80x160 costs 4.5-5.8 s (attention) / 4.5-5.0 s (CNN) at 1
  thread and 3.2-4.1 / 2.4-2.7 s at 2 threads (wall, batch 2-8); 8 epochs of batch 4 at 2 threads
  make the chain 81-95 s of in-process wall time (one run at 147 s under another job's load).
- Temperature: with logits x1 the attention stays uniform (entropy 0.99) and a learned scale from 1
  or 4 hardly moves (1.00 -> 1.01, 4.0 -> 3.95); from 16 (learned) it concentrates. The
  regulariser (λ = 0.1, T = 8 < L = 200) holds it back: λ 0.0005 put it on the band's depth
  (band-row ratio 4.39; an oracle over those rows 4.67) but on two fixed cells on the grass beside
  the road whose 61-px fields see the edges (column correlation -0.91), on-cause ratio 0.77.
- Scoring cells by their 64 conv features only (no coordinates or located products in the score;
  seed 1, logits x16 learned, clip 1): again the bottom rows (45 % in the last), ratio 0.71.
- Without located cells the attention sinks to the bottom cell rows (33-65 % of the mass in the last
  row, ratio 0.35-0.97), with or without coordinates, more so with 15 distractors.
- Chain, logits x16 learned, clip 1, 8 epochs, 2 threads, seeds 0 / 1 / 2: MAE attention 0.0040 /
  0.0041 / 0.0034 rad, CNN 0.0020 / 0.0016 / 0.0022 (gap 0.13 / 0.16 / 0.08 of the mean predictor's:
  within MAE_TOLERANCE), on-cause ratio 2.09 / 1.48 / 3.75 (λ = 0.1; a 1-thread run of seed 0: 1.27),
  band-row ratio 1.72 / 1.66 / 2.51, column correlation -0.57 / -0.58 / +0.34; the λ = 0 model went
  one-hot beside the markings (entropy 0.01-0.19, ratio 0.00-0.09). Seeds 3 / 4: ratio 4.75 / 3.08,
  MAE gap 0.13 / 0.38 (seed 4 outside MAE_TOLERANCE). The same chain at 1 thread (what this test's
  fixture runs), seed 0: ratio 1.27, band-row ratio 2.77, column correlation -0.75, MAE 0.0038 against
  0.0012, 116 s. So 3 of 5 seeds meet both criteria at 2 threads, and seed 0 does not at 1 thread:
  which side of the road edge (the grass or the markings) the attention settles on is left to chance,
  and the default stays 40x80. Chain time at 2 threads on a free machine: 64.5 s in-process (seed 3).
  Twelve epochs (attention model alone, 1 thread, seeds 0 / 1): band-row ratio 3.23 / 2.36 but column
  correlation -0.60 / -0.13 and on-cause ratio 1.76 / 1.55 (MAE 0.0044 / 0.0028): more budget sharpens
  the depth, not the side.

Fifth session (2026-12-03 20:08-21:05, 80x160, the settings above, 1 thread, attention model trained
alone unless a gap is given; benchmarks/attention_levers.py, RESULTS.md): at 1 thread seeds 0-4 give
ratio 1.27 / 1.56 / 2.34 / 0.48 / 1.92 (1 of 5 meets 2.0). Why the seed decides: (1) the untrained
attention (logits x16, default init) is already peaked on cells the random weights pick (entropy
0.30-0.87 of log L, peak 10-100x uniform); started exactly uniform (model.uniform_start) it hardly
moves in 8 epochs (seed 1: entropy 0.998, ratio 1.03) or drifts to the grass (seed 0: -0.92, 1.25).
(2) The causal pixels' column centroid moves by 6.2 px (std over frames), less than one 8-px cell,
and the band always lies on the same rows: fixed cells beside the band see it through their 61-px
fields. The input gradient of the attention model's output still lies on the cause 1.8-2.6x its
area share on the grass seeds (the CNN 4.2-4.8x; 3.3-5.2x on the markings seeds): the decision is
driven by the markings through the cells' fields. Data that move the cause: data.lateral_scale 3
(road drift x3, centroid std 18 px) makes the attention follow the markings sideways (column
correlation +0.61..+0.96 on 6 of 7 seeds), ratio 3.01 / 2.15 / 1.40 / 1.26 / 2.45 / 3.29 / 1.06
(seeds 0-6, 4 of 7); plus data.pitch_px 16 (the band's rows move) 7.00 / 3.15 / 1.38 / 2.44 / 4.40 /
3.03 / 1.62 (5 of 7; 4 of seeds 0-4), MAE gap 0.007 / -0.009 / 0.079 / 0.181 / 0.026 / 0.091 / 0.202.
The same with 256 fresh sequences x 4 epochs (the same steps; the paper trained on hours of
driving): 1.67 / 2.72 / 2.40 / 2.09 / 3.27 / 1.93 / 4.57, MAE gap 0.13 / 0.14 / 0.04 / 0.245 / 0.00 (seeds
0-4; seed 5's CNN collapsed to the mean predictor, 40.2 mrad): 5 of 7, seed 0 (the default) fails;
its full chain at 1 thread: 142 s CPU, deletion cause / distractor 5.8x / 8.9x / 8.9x (attention /
lambda 0 / CNN). Every lever moves which seeds fail, none removes the lottery: not 5 of 5, so the
defaults stay. Sequences of T = 20 (52 of them, batch 2, same frames per epoch): seeds 2 / 6 ratio
2.38 / 1.55 at MAE 23 / 20 mrad. Lambda 0.03 / 0.01 with them: one-hot attention, on the band's
depth but beside the markings again (seeds 2 / 3: 0.91 / 0.76); 15 distractors (no lateral scale):
0.95-1.18; 10 epochs (seed 3, lateral x3): 1.06.

Seventh session (2026-12-04, the levers at the default 40x80, seeds 0-6, 1 thread; RESULTS.md): with
lateral_scale 3 the attention follows the markings sideways (column correlation +0.91..+0.97 on 6 of 7
seeds with located cells and a standardised context) but stays spread (entropy >= 0.93, ratio 1.02-1.31);
with lambda 0.01 it concentrates off the band's rows (band-row mass 0.00-0.57x on 6 of 7 seeds, ratio
0.00-1.10). No setting meets the criterion on most seeds; the defaults stay. The known truth had a
leak (benchmarks/attention_cause_regions.py): the three rows under the band, where the road blends
from the band's cubic into the outer one over 1.5 m, predict the target with pixel-ridge R² 0.84
(the band 0.92; beyond the ramp -0.11); data.ramp_m 0 removes it (-0.05), but the attention still
does not go to the band (ratio 0.49-1.84 with the levers above, 7 seeds each).
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
    from cnninterp.config import method_defaults
    from cnninterp.data.driving import Camera, RoadSpec, generate_driving

    tmp = tmp_path_factory.mktemp("attention")
    defaults = method_defaults("attention", ("data", "model", "train", "eval"))
    d, m, t, e, seed = (defaults[k] for k in ("data", "model", "train", "eval", "seed"))
    camera = Camera(height=d["height"], width=d["width"], lookahead=d["lookahead_m"], band=d["band"])
    spec = RoadSpec(camera=camera, seq_len=d["seq_len"], distractors=d["distractors"], outer=d["outer_road"],
                    lateral_scale=d["lateral_scale"], pitch_px=d["pitch_px"], ramp_m=d["ramp_m"])
    shards = {split: tmp / "driving" / split for split in ("train", "test")}  # as the DAG writes them: one folder per split
    for split, folder in shards.items():
        generate_driving(folder, spec, d["train_sequences"], d["test_sequences"], seed=seed, shard_size=d["shard_size"], splits=(split,))
    models = {name: tmp / name / "model.pt" for name in ("attention", "attention_no_reg", "cnn")}
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the DAG's training jobs run at 2 threads (config threads); results depend on it
    try:
        for name, kind, lam in (("attention", "attention", t["reg_weight"]), ("attention_no_reg", "attention", 0.0), ("cnn", "cnn", 0.0)):
            train_model(shards["train"], models[name], kind, lam, epochs=t["epochs"], batch_size=t["batch_size"], lr=t["lr"], seed=seed,
                        device="cpu", hidden=m["hidden"], coords=m["coords"], located=m["located"], context_norm=m["context_norm"],
                        logit_scale=m["logit_scale"], learn_scale=m["learn_scale"], clip_grad=t["clip_grad"])
        metrics = evaluate(shards["test"], models, tmp / "eval" / "metrics.json", seed=seed, train_shards=shards["train"], **e)
    finally:
        torch.set_num_threads(threads)
    print(json.dumps(metrics, indent=1))
    return metrics


def test_every_model_learns_to_steer(default_metrics):
    mae, mean = default_metrics["mae"], default_metrics["mae_predicting_the_mean"]
    for name in ("attention", "attention_no_reg", "cnn"):  # measured 0.24, 0.17, 0.15 of the mean predictor's (seed 0, 2 threads)
        assert mae[name] < 0.6 * mean, name


def test_attention_costs_little_accuracy(default_metrics):
    mae, mean = default_metrics["mae"], default_metrics["mae_predicting_the_mean"]
    assert mae["attention"] <= mae["cnn"] + MAE_TOLERANCE * mean  # measured 0.09 of the mean's MAE (seed 0, 2 threads)


def test_deleting_the_cause_moves_the_output_more_than_deleting_distractors(default_metrics):
    for name, d in default_metrics["deletion_by_model"].items():  # measured 6.6x, 24x, 9.7x (seed 0, 2 threads)
        assert d["cause"] > 5 * d["distractor"], name


def test_attention_lies_on_the_cause(default_metrics):
    from cnninterp.attention.report import ON_CAUSE_SHOWN

    assert default_metrics["attention_on_cause"]["ratio"] > ON_CAUSE_SHOWN  # measured 2.78 (seed 0, 2 threads)
