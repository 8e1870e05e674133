"""The steering models, the attention regulariser, causal filtering on a constructed decoder, and
the attention-on-cause score against hand computations."""

import numpy as np
import pytest
import torch

from cnninterp.attention import causal
from cnninterp.attention.model import ModelSpec, attention_regularizer, build_model, locate, steering_loss

SPEC = ModelSpec(kind="attention", height=24, width=48, hidden=8, coords=True)


def test_shapes_and_attention_is_a_distribution_per_step():
    torch.manual_seed(0)
    model = build_model(SPEC)
    out = model(torch.rand(2, 3, 3, 24, 48))
    h, w = SPEC.grid
    assert (h, w) == (3, 6)
    assert out["pred"].shape == (2, 3)
    assert out["alpha"].shape == (2, 3, h * w) and out["features"].shape == (2, 3, h * w, 66)
    assert torch.all(out["alpha"] >= 0)
    assert torch.allclose(out["alpha"].sum(-1), torch.ones(2, 3))
    cnn = build_model(ModelSpec(kind="cnn", height=24, width=48, hidden=8))
    assert cnn(torch.rand(2, 3, 3, 24, 48))["pred"].shape == (2, 3)


def test_coords_append_each_cells_row_and_column_to_its_features():
    torch.manual_seed(0)
    enc = build_model(SPEC).encoder
    f = enc(torch.rand(2, 3, 24, 48))  # grid 3 x 6
    assert f.shape == (2, 66, 3, 6)
    assert torch.equal(f[:, 64], torch.tensor([-1.0, 0.0, 1.0]).view(1, 3, 1).expand(2, 3, 6))
    assert torch.allclose(f[:, 65], torch.linspace(-1, 1, 6).view(1, 1, 6).expand(2, 3, 6))
    plain = build_model(ModelSpec(kind="attention", height=24, width=48, hidden=8)).encoder
    assert plain(torch.rand(1, 3, 24, 48)).shape == (1, 64, 3, 6)


def test_locate_codes_each_cell_by_its_column_and_row_and_keeps_masked_cells_zero():
    x = torch.arange(1.0, 7.0).view(1, 1, 6, 1).repeat(1, 1, 1, 2)  # grid 2 x 3, D = 2, cell i has features i + 1
    x[0, 0, 4] = 0.0  # a masked cell
    out = locate(x, (2, 3))
    assert out.shape == (1, 1, 6, 6)
    col = torch.tensor([-1.0, 0.0, 1.0, -1.0, 0.0, 1.0])
    row = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])
    assert torch.equal(out[0, 0, :, :2], x[0, 0])
    assert torch.equal(out[0, 0, :, 2:4], x[0, 0] * col[:, None])
    assert torch.equal(out[0, 0, :, 4:], x[0, 0] * row[:, None])
    assert torch.count_nonzero(out[0, 0, 4]) == 0


def test_located_uniform_context_tells_where_a_feature_lies():
    """The reason for ``located``: under uniform attention the plain context (the mean feature) is
    the same wherever one active cell lies; the located one differs."""
    torch.manual_seed(0)
    left, right = torch.zeros(1, 2, 18, 64), torch.zeros(1, 2, 18, 64)
    left[:, :, 6, :] = 1.0  # grid 3 x 6: row 1, column 0
    right[:, :, 11, :] = 1.0  # row 1, column 5
    for located, differs in ((False, False), (True, True)):
        spec = ModelSpec(kind="attention", height=24, width=48, hidden=8, located=located)
        model = build_model(spec)
        assert model(torch.rand(1, 2, 3, 24, 48))["features"].shape == (1, 2, 18, 64 * (3 if located else 1))
        cubes = [locate(c, spec.grid) if located else c for c in (left, right)]
        with torch.no_grad():
            a, b = (model.decode(c, uniform=True)[0] for c in cubes)
        assert (not torch.allclose(a, b, atol=1e-6)) is differs


def test_encoder_starts_from_he_weights_and_zero_biases():
    torch.manual_seed(0)
    convs = [m for m in build_model(SPEC).encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5
    for conv in convs:
        fan_in = conv.weight[0].numel()
        assert conv.bias.abs().max() == 0
        assert conv.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.15)


def test_regulariser_matches_a_hand_computation_and_has_a_gradient():
    alpha = torch.tensor([[[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]])  # (B=1, T=2, L=3)
    # per position: 1 - (1.5, 0.5, 0) -> (-0.5, 0.5, 1) -> squares 0.25 + 0.25 + 1
    assert attention_regularizer(alpha).item() == pytest.approx(1.5)
    # the linear form is constant under softmax; the squared one is not
    logits = torch.randn(2, 4, 10, requires_grad=True)
    a = torch.softmax(logits, -1)
    linear = (1 - a.sum(1)).sum(1).mean()
    assert linear.item() == pytest.approx(10 - 4, abs=1e-5)
    attention_regularizer(a).backward()
    assert logits.grad.abs().max() > 1e-4
    # through the model, the regulariser reaches the attention parameters
    model = build_model(SPEC)
    attention_regularizer(model(torch.rand(1, 3, 3, 24, 48))["alpha"]).backward()
    assert model.w.weight.grad.abs().max() > 0


def test_regulariser_is_smallest_for_uniform_attention_when_steps_are_fewer_than_cells():
    t_len, length = 8, 50
    uniform = torch.full((1, t_len, length), 1 / length)
    fixed = torch.zeros(1, t_len, length)
    fixed[..., :4] = 0.25  # the same 4 cells at every step
    assert attention_regularizer(uniform).item() == pytest.approx(length * (1 - t_len / length) ** 2)  # 35.28
    assert attention_regularizer(fixed).item() == pytest.approx(4 * (1 - 2) ** 2 + 46)  # 50
    moving = torch.zeros(1, t_len, length)
    for t in range(t_len):
        moving[0, t, 4 * t : 4 * t + 4] = 0.25  # 4 new cells at each step
    assert attention_regularizer(moving).item() == pytest.approx(32 * (1 - 0.25) ** 2 + 18)  # 36: 32 cells once at 0.25, 18 never


def test_steering_loss_sums_over_time():
    assert steering_loss(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]])).item() == 3.0


def test_causal_filter_keeps_exactly_the_blob_over_the_cell_the_decoder_reads():
    grid, size = (4, 8), (32, 64)
    t_len, length, d = 2, 32, 3
    features = torch.ones(t_len, length, d)
    alpha = np.full((t_len, length), 1e-4)
    # three separated peaks in frame 0 (cells 1, 6, 25) and one in frame 1 (cell 12)
    for c in (1, 6, 25):
        alpha[0, c] = 1.0
    alpha[1, 12] = 1.0
    alpha /= alpha.sum(1, keepdims=True)
    target = 6

    def decode(f):  # (N, T, L, D) -> (N, T): frame t's output reads only cell 6 of frame 0
        return f[:, 0:1, target, 0].expand(-1, f.shape[1]) * torch.tensor([1.0, 0.0])

    blobs = causal.causal_filter(features, decode, alpha, grid, size, level=0.5, sigma=1.0, threshold=0.5)
    assert sorted((b.frame, int(np.flatnonzero(b.cells)[0])) for b in blobs) == [(0, 1), (0, 6), (0, 25), (1, 12)]
    kept = [b for b in blobs if b.kept]
    assert len(kept) == 1 and kept[0].frame == 0 and kept[0].cells[target] and kept[0].cells.sum() == 1
    assert kept[0].delta == pytest.approx(1.0)
    # kept when the output changes by more than the threshold: a change of exactly the threshold is not
    at = causal.causal_filter(features, decode, alpha, grid, size, level=0.5, sigma=1.0, threshold=kept[0].delta)
    assert len(at) == 4 and not any(b.kept for b in at)


def test_causal_filter_calls_the_decoder_once():
    calls = []

    def decode(f):
        calls.append(f.shape[0])
        return f[..., 0].sum(-1)

    alpha = np.zeros((1, 8))
    alpha[0, [0, 7]] = 1.0
    blobs = causal.causal_filter(torch.ones(1, 8, 2), decode, alpha / 2, (2, 4), (16, 32), sigma=0.5)
    assert calls == [1 + len(blobs)] and len(blobs) == 2


def test_attention_on_cause_by_hand():
    alpha = np.zeros((1, 4))
    alpha[0, 0] = 1.0  # all attention on the top-left cell of a 2x2 grid, stride 2: cells centred on pixels 0 and 2
    cause = np.zeros((1, 4, 4), np.uint8)
    cause[0, 0, :2] = 1  # pixels (0, 0) and (0, 1)
    # by hand: per axis the cell's weight at pixels 0..3 is 1, 1/2, 0, 0 (0 beyond the last centre, the
    # other cell's value), so the map is their outer product / 2.25 and the cause holds (1 + 1/2) / 2.25
    r = causal.attention_on_cause(alpha, cause, (2, 2), stride=2)
    assert r["area_share"] == pytest.approx(2 / 16)
    assert r["mass"] == pytest.approx(1.5 / 2.25)
    assert r["ratio"] == pytest.approx((1.5 / 2.25) / (2 / 16))
    uniform = causal.attention_on_cause(np.full((1, 4), 0.25), cause, (2, 2), stride=2)
    assert uniform["ratio"] == pytest.approx(1.0)


def test_attention_on_cause_averages_mass_and_share_over_frames():
    """Repeating a frame changes nothing; two different frames by hand (grid 2x2, stride 2, 4x4
    frames): frame 0 as in ``test_attention_on_cause_by_hand`` (mass 1.5 / 2.25 = 2/3, share 2/16),
    frame 1 uniform attention (uniform upsampled) on a 4-pixel row (mass 4/16, share 4/16):
    mass (2/3 + 1/4) / 2 = 11/24, share (2/16 + 4/16) / 2 = 3/16, ratio 22/9."""
    alpha = np.zeros((2, 4))
    alpha[0, 0] = 1.0
    alpha[1] = 0.25
    cause = np.zeros((2, 4, 4), np.uint8)
    cause[0, 0, :2] = 1
    cause[1, 3] = 1
    one = causal.attention_on_cause(alpha[:1], cause[:1], (2, 2), stride=2)
    twice = causal.attention_on_cause(np.repeat(alpha[:1], 2, 0), np.repeat(cause[:1], 2, 0), (2, 2), stride=2)
    assert twice == pytest.approx(one, rel=1e-6)
    r = causal.attention_on_cause(alpha, cause, (2, 2), stride=2)
    assert r["mass"] == pytest.approx(11 / 24, rel=1e-6)
    assert r["area_share"] == pytest.approx(3 / 16, rel=1e-6)
    assert r["ratio"] == pytest.approx(22 / 9, rel=1e-6)


def test_blobs_are_8_connected_and_strictly_above_the_level():
    """Two pixels touching at a corner are one region (8-connectivity); a pixel at exactly
    level x max is not above the level."""
    m = np.zeros((1, 6, 6), np.float32)
    m[0, 1, 1] = m[0, 2, 2] = 1.0
    blobs = causal.find_blobs(m, 0.5)
    assert len(blobs) == 1 and blobs[0][0] == 0 and np.array_equal(blobs[0][1], m[0] > 0)
    m[0, 4, 4] = 0.5  # separate from the pair, exactly at 0.5 x max
    assert len(causal.find_blobs(m, 0.5)) == 1


def test_a_cell_exactly_half_covered_by_a_blob_is_one_of_its_cells():
    """grid 2x2, stride 8, 16x16 pixels: cell 0 holds rows and columns 0..3 (the pixels nearer its
    centre (0, 0) than any other's), cell 3 rows and columns 4..15. A blob on 8 of cell 0's 16
    pixels and all of cell 3's has cells 0 and 3 ("at least half covered")."""
    px = np.zeros((16, 16), bool)
    px[0:2, 0:4] = True
    px[4:16, 4:16] = True
    assert np.flatnonzero(causal.blob_cells(px, (2, 2))).tolist() == [0, 3]
    px[1, 3] = False  # 7 of 16: less than half
    assert np.flatnonzero(causal.blob_cells(px, (2, 2))).tolist() == [3]


def test_cells_are_registered_on_their_receptive_field_centres():
    """Cell (r, c) of the encoder is centred on pixel (8r, 8c): with positive averaging weights (so the
    response to an impulse is the encoder's geometry, not chance) a bright pixel there moves cell
    (r, c) most; upsampled, the one-hot attention on (r, c) peaks at that pixel; the 8 x 8 block
    centred there (rows 8r-4..8r+3) is exactly cell (r, c)'s (the old half-pixel registration put
    the cell 3.5 px down and right: 4 cells a quarter covered each)."""
    from cnninterp.attention.model import Encoder

    encoder = Encoder()
    with torch.no_grad():
        for layer in encoder.net:
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.fill_(1.0 / layer.weight[0].numel())
                layer.bias.zero_()
        grid, size = (5, 10), (40, 80)
        for r, c in ((2, 3), (3, 7), (1, 1)):
            frame = torch.full((1, 3, *size), 0.5)  # grey: 0 after the encoder's input normalisation
            frame[0, :, 8 * r, 8 * c] = 1.0
            response = encoder(frame)[0].abs().sum(0)  # (5, 10)
            assert response.shape == grid
            assert divmod(int(response.argmax()), grid[1]) == (r, c)
            alpha = np.zeros((1, 50))
            alpha[0, r * 10 + c] = 1.0
            up = causal.upsample(alpha, grid, size)[0]
            assert np.unravel_index(int(up.argmax()), size) == (8 * r, 8 * c)
            block = np.zeros(size, bool)
            block[8 * r - 4 : 8 * r + 4, 8 * c - 4 : 8 * c + 4] = True
            assert np.flatnonzero(causal.blob_cells(block, grid)).tolist() == [r * 10 + c]


def test_blob_scores():
    px = np.zeros((4, 4), bool)
    px[:2] = True
    region = np.zeros((1, 4, 4), bool)
    region[0, :2, :3] = True
    a = causal.Blob(0, px, np.zeros(4, bool), kept=True)
    b = causal.Blob(0, ~px, np.zeros(4, bool), kept=True)
    assert causal.blob_scores([a, b], region) == (1, 2, 1)


def test_a_blob_exactly_half_inside_the_causal_region_is_not_causal():
    px = np.zeros((4, 4), bool)
    px[0] = True  # 4 pixels, 2 of them in the region: not more than half
    region = np.zeros((1, 4, 4), bool)
    region[0, 0, :2] = True
    half = causal.Blob(0, px, np.zeros(4, bool), kept=True)
    assert causal.blob_scores([half], region) == (0, 1, 0)
    region[0, 0, 2] = True  # 3 of 4
    assert causal.blob_scores([half], region) == (1, 1, 1)


def test_uniform_decoding_averages_the_feature_cube():
    torch.manual_seed(0)
    model = build_model(SPEC)
    features = torch.rand(2, 3, 18, 66)
    pred, alpha = model.decode(features, uniform=True)
    assert torch.allclose(alpha, torch.full((2, 3, 18), 1 / 18))
    with torch.no_grad():  # the same as a learned attention whose scores are all equal
        model.w.weight.zero_()
        pred0, alpha0 = model.decode(features)
    assert torch.allclose(alpha0, alpha) and torch.allclose(pred0, pred)


def test_overlay_shows_uniform_attention_dim_and_flat():
    from cnninterp.attention.evaluate import overlay

    frame = np.zeros((3, 4, 5), np.uint8)
    flat = overlay(frame, np.full((4, 5), 1 / 20))
    # uniform: a quarter of full scale; red 255 * 0.55 * sqrt(0.25), green 255 * 0.55 * 0.25 ** 2
    assert np.all(flat[..., 0] == 70) and np.all(flat[..., 1] == 8) and np.all(flat[..., 2] == 0)
    peaked = np.full((4, 5), 0.5 / 19)
    peaked[0, 0] = 0.5
    img = overlay(frame, peaked)
    assert tuple(img[0, 0]) == (140, 140, 0) and img[1, 1, 0] < 70  # saturated at the peak


def test_running_standardize_uses_running_estimates_not_the_batch():
    from cnninterp.attention.model import RunningStandardize

    norm = RunningStandardize(2, momentum=0.5)
    x = torch.tensor([[1.0, 10.0], [3.0, 30.0]])  # mean (2, 20), population variance (1, 100)
    out = norm(x)  # the first call in training sets the estimates
    assert torch.allclose(out, torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), atol=1e-4)
    y = torch.tensor([[5.0, 20.0], [5.0, 20.0]])  # mean (5, 20), variance 0
    out = norm(y)  # standardised with the estimates as they were: this batch does not enter its own output
    assert torch.allclose(out, torch.tensor([[3.0, 0.0]] * 2), atol=1e-4)
    assert torch.allclose(norm(y[:1]), out[:1])  # alone or in a batch, the same output
    assert torch.allclose(norm.mean, torch.tensor([2.0, 20.0])) and torch.allclose(norm.var, torch.tensor([1.0, 100.0]))
    norm.update(y)  # estimates move halfway: mean (3.5, 20), variance (0.5, 50)
    assert torch.allclose(norm.mean, torch.tensor([3.5, 20.0])) and torch.allclose(norm.var, torch.tensor([0.5, 50.0]))
    norm.eval()
    single = norm(torch.tensor([[3.5, 20.0 + 50**0.5]]))
    assert torch.allclose(single, torch.tensor([[0.0, 1.0]]), atol=1e-4)
    assert torch.allclose(norm.mean, torch.tensor([3.5, 20.0]))  # evaluation leaves the estimates


def test_context_norm_output_of_a_sequence_does_not_depend_on_its_batch_in_training():
    from cnninterp.attention.model import ModelSpec, build_model

    torch.manual_seed(0)
    model = build_model(ModelSpec(kind="attention", height=16, width=32, located=True, context_norm=True, coords=True))
    frames = torch.rand(3, 2, 3, 16, 32)
    with torch.no_grad():
        model(frames)  # the first pass sets the estimates
        features = model(frames)["features"]
        state = {k: v.clone() for k, v in model.norm.state_dict().items()}
        alone = model.decode(features[:1])[0]
        assert not torch.equal(model.norm.mean, state["mean"])  # a training pass moves the estimates (after it)
        model.norm.load_state_dict(state)
        batch = model.decode(features)[0]
    assert torch.allclose(alone, batch[:1], atol=1e-6)


def test_attention_placement_splits_depth_and_side_by_hand():
    # grid 2 x 3 upsampled to 4 x 5 with stride 2 (column centres 0, 2, 4: left-right symmetric);
    # causal pixels in image row 1 (25 % of the rows)
    third = 1 / 3
    alpha = np.array([[third, third, third, 0, 0, 0], [0, 0, 0, third, third, third], [1 / 6] * 6])
    cause = np.zeros((3, 4, 5), bool)
    cause[0, 1, 4] = cause[1, 1, 0] = True
    cause[2, 1, [0, 4]] = True  # centroids 4, 0, 2
    out = causal.attention_placement(alpha, cause, (2, 3), stride=2)
    up = causal.upsample(alpha, (2, 3), (4, 5), stride=2)  # (tested on its own): the mass is that of image row 1
    assert out["band_rows"]["mass"] == pytest.approx(up[:, 1].sum(axis=1).mean())
    assert out["band_rows"]["area_share"] == pytest.approx(0.25)
    assert out["band_rows"]["ratio"] == pytest.approx(out["band_rows"]["mass"] / 0.25)
    assert out["column_correlation"] is None  # these maps are left-right symmetric: centroid 2 in every frame
    # right, left, even: the attention's centroids are c, 4 - c, 2, collinear with the cause's 4, 0, 2
    follow = np.array([[0, 0, 1.0, 0, 0, 0], [1.0, 0, 0, 0, 0, 0], [0.5, 0, 0.5, 0, 0, 0]])
    assert causal.attention_placement(follow, cause, (2, 3), stride=2)["column_correlation"] == pytest.approx(1.0)
    assert causal.attention_placement(follow[:, [2, 1, 0, 5, 4, 3]], cause, (2, 3), stride=2)["column_correlation"] == pytest.approx(-1.0)


def test_fit_clips_the_global_gradient_norm_by_hand():
    from cnninterp.train.loop import fit

    model = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    grads = [torch.tensor([3.0, 4.0]), torch.tensor([0.3, 0.0])]  # norm 5 -> (0.6, 0.8); norm 0.3 <= 1: unchanged

    def step(m, g, device):
        return (m.weight[0] * g).sum(), {}, 1

    fit(model, lambda epoch: grads, step, torch.optim.SGD(model.parameters(), lr=1.0), 1, "cpu", clip_grad=1.0)
    assert torch.allclose(model.weight.detach()[0], torch.tensor([-0.9, -0.8]))


def test_learned_logit_scale_starts_at_the_given_scale_and_gets_a_gradient():
    from cnninterp.attention.model import ModelSpec, build_model

    torch.manual_seed(0)
    model = build_model(ModelSpec(kind="attention", height=16, width=32, coords=True, logit_scale=4.0, learn_scale=True))
    assert float(model.scale().detach()) == pytest.approx(4.0)
    out = model(torch.rand(2, 3, 3, 16, 32))
    (out["pred"].sum() + out["alpha"].max()).backward()
    assert model.log_scale.grad is not None and float(model.log_scale.grad.abs().detach()) > 0
    fixed = build_model(ModelSpec(kind="attention", height=16, width=32, logit_scale=4.0))
    assert fixed.scale() == 4.0 and not hasattr(fixed, "log_scale")


def test_cli_train_exits_2_on_a_bad_logit_scale_or_clip_and_writes_nothing(tmp_path, capsys):
    from cnninterp.cli import main

    out = tmp_path / "m" / "model.pt"
    base = ["attention", "train", "--shards", str(tmp_path / "none"), "--out", str(out), "--kind", "attention"]
    assert main(base + ["--logit-scale", "0"]) == 2
    assert "--logit-scale must be > 0" in capsys.readouterr().err
    assert main(base + ["--clip-grad", "-1"]) == 2
    assert "--clip-grad >= 0" in capsys.readouterr().err and not out.parent.exists()


@pytest.mark.parametrize("spec", [SPEC, ModelSpec(kind="attention", height=24, width=48, hidden=8, located=True, context_norm=True, learn_scale=True)])
def test_the_steering_output_is_causal(spec):
    """A steering model must not see the future: perturbing frames after t leaves pred[:, :t + 1]
    unchanged (the LSTM's initial state once came from the mean over all frames)."""
    torch.manual_seed(0)
    model = build_model(spec).eval()
    frames = torch.rand(2, 5, 3, 24, 48)
    with torch.no_grad():
        base = model(frames)["pred"]
        for t in range(4):
            alt = frames.clone()
            alt[:, t + 1:] = torch.rand_like(alt[:, t + 1:])
            pred = model(alt)["pred"]
            assert torch.equal(pred[:, :t + 1], base[:, :t + 1])
            assert not torch.allclose(pred[:, t + 1:], base[:, t + 1:])


class _PixelReader(torch.nn.Module):
    """pred_t = Σ weight · x_t (channel 0 only): its input gradient is ``weight`` on every frame."""

    def __init__(self, weight):
        super().__init__()
        self.weight = weight

    def forward(self, x):
        return {"pred": (x[:, :, 0] * self.weight).sum(dim=(-2, -1))}


def test_gradient_on_cause_by_hand():
    from cnninterp.attention.saliency import gradient_on_cause

    frames = np.random.default_rng(0).integers(0, 256, (3, 2, 3, 4, 5), dtype=np.uint8)
    cause = np.zeros((3, 2, 4, 5), bool)
    cause[:, :, 1, 1:3] = True  # 2 of 20 pixels: area share 0.1
    weight = torch.zeros(4, 5)
    weight[1, 1], weight[1, 2], weight[3, 4] = 3.0, -1.0, 4.0  # |w| mass 4 of 8 inside the cause
    out = gradient_on_cause(_PixelReader(weight), frames, cause, batch=2)
    assert out["area_share"] == pytest.approx(0.1)
    assert out["mass"] == pytest.approx(0.5)
    assert out["ratio"] == pytest.approx(5.0)
    flat = gradient_on_cause(_PixelReader(torch.ones(4, 5)), frames, cause)  # no preference: ratio 1
    assert flat["ratio"] == pytest.approx(1.0)
    assert gradient_on_cause(_PixelReader(torch.zeros(4, 5)), frames, cause)["mass"] == 0.0


def test_uniform_start_gives_exactly_uniform_attention_that_still_learns():
    torch.manual_seed(0)
    spec = ModelSpec(kind="attention", height=24, width=48, hidden=8, coords=True, located=True, logit_scale=16.0,
                     learn_scale=True, uniform_start=True)
    model = build_model(spec)
    out = model(torch.rand(2, 3, 3, 24, 48))
    length = spec.grid[0] * spec.grid[1]
    assert torch.allclose(out["alpha"], torch.full_like(out["alpha"], 1.0 / length))
    (out["pred"] ** 2).sum().backward()
    assert model.w.weight.grad.abs().sum() > 0  # the scores' last layer moves off zero
    torch.manual_seed(0)
    peaked = build_model(ModelSpec(**{**spec.to_dict(), "uniform_start": False}))(torch.rand(2, 3, 3, 24, 48))["alpha"]
    assert peaked.max() > 2.0 / length  # without it the untrained attention is not uniform


def test_evaluation_refuses_models_trained_on_other_shards(tmp_path):
    """Held-out figures only of models trained on the training split given: training records the
    train folder's manifest sha256 (data.trained_on), evaluation compares it; and only on a test
    split drawn with the same settings as that training split (driving.check_same_draw). The DAG
    writes each split to its own folder, as here."""
    from cnninterp.attention.evaluate import evaluate
    from cnninterp.attention.train import train_model
    from cnninterp.data.driving import Camera, RoadSpec, generate_driving
    from cnninterp.data.trained_on import KEY, manifest_sha256
    from cnninterp.errors import DataError

    spec = RoadSpec(camera=Camera(height=24, width=48), seq_len=3, distractors=1)
    for name, split, seed, train in (("train", "train", 0, 2), ("test", "test", 0, 2), ("train3", "train", 0, 3),
                                     ("test_seed1", "test", 1, 2)):
        generate_driving(tmp_path / name, spec, train, 2, seed=seed, shard_size=4, splits=(split,))
    models = {}
    for name, kind in (("attention", "attention"), ("attention_no_reg", "attention"), ("cnn", "cnn")):
        models[name] = tmp_path / name / "model.pt"
        train_model(tmp_path / "train", models[name], kind, 0.0, epochs=1, batch_size=2, lr=1e-3, seed=0, device="cpu", hidden=8)
    assert torch.load(models["cnn"], weights_only=True)["config"][KEY] == manifest_sha256(tmp_path / "train")
    out = tmp_path / "eval" / "metrics.json"
    with pytest.raises(DataError, match="was trained on the shards of"):  # same draw, other training data
        evaluate(tmp_path / "test", models, out, train_shards=tmp_path / "train3")
    with pytest.raises(DataError, match=r"test_seed1/manifest.json was not drawn with .*: seed is 1 there against 0"):
        evaluate(tmp_path / "test_seed1", models, out, train_shards=tmp_path / "train")
    assert not (tmp_path / "eval").exists()  # the DAG run evaluates these models' layout end to end
