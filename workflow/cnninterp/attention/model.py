"""Steering models of Kim & Canny (ICCV 2017): a PilotNet-style encoder, an LSTM with soft spatial
attention over its feature cube, and the same encoder as a plain CNN regressor (the baseline).

Shapes: frames float32 (B, T, 3, H, W) in [0, 1]; the encoder gives per frame a feature cube of
D = 64 channels (66 with coords) on an h × w grid (H/8 × W/8), flattened to L = h·w positions: (B, T, L, D).

Attention at step t (from the previous hidden state h_{t-1}):
    α_{t,i} = softmax_i( w · ReLU(W_x x_{t,i} + W_h h_{t-1} + b) ),   context y_t = Σ_i α_{t,i} x_{t,i}
(With ``context_norm`` y_t is standardised before use.) The LSTM's initial (h_0, c_0) come from frame 0's mean feature (over positions) through one
tanh layer each (frame 0 only, so that the output at frame t depends on frames 0..t alone: a
steering model is causal); its input at step t is y_t; the output is û_t = V [h_t; y_t].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

FEATURES = 64
KINDS = ("attention", "cnn")


@dataclass(frozen=True)
class ModelSpec:
    """What a checkpoint needs to rebuild its model: ``kind`` attention or cnn; grid = H/8 × W/8.

    ``coords``: append each cell's (row, column) in [-1, 1] to its features (D = 66). Why: the soft
    attention's context is a weighted mean of feature vectors, which keeps what was seen but not
    where; the steering target is a lateral position. With uniform attention the appended
    coordinates average to a constant (no information), with attention on the lane markings they
    give the markings' position, so attending to the cause pays. (Appending them to the input
    instead, as before, left the attention uniform: their position is mixed away by five layers
    whose receptive field covers the frame; benchmarks/attention_diagnosis.py.)

    ``located`` (attention model only): each cell's vector, which the attention scores and the
    context averages, is [x_i, x_i·col_i, x_i·row_i] (``locate``; D' = 3D), so that even a uniform
    attention hands the decoder *where* each kind of feature lies (a feature-weighted centroid),
    not only the mean feature. Why: at 80×160 the mean feature of the translation-equivariant
    encoder says nothing about the road's lateral position (ridge R² −0.09 / −0.16, He-initialised
    encoder, two seeds), so the decoder had no signal, the attention no gradient, and both attention
    models sat at the median predictor; the located mean gives R² 0.44 / 0.54, and the located
    context of an oracle attention on the causal cells 0.92 / 0.91 (0.14 / 0.13 without), so
    attending to the cause pays (benchmarks/attention_diagnosis.py --probe-only).

    ``context_norm``: the context is standardised per channel by running estimates of its mean and
    variance (``RunningStandardize``) before the LSTM and the output layer. Why: the context is a
    mean over L cells, so it varies little from frame to frame (He-initialised encoder at 80×160:
    std over frames 0.015–0.027 per channel against values of 0.03–0.5), and a readout of that
    variation needs weights of ~50, which Adam at lr 0.001 grows by ~0.001 a step: the located
    model left the median predictor only after 7 of 12 epochs, and lr 0.003 did not leave it in 6.
    Batch normalisation (the batch's own statistics) with batches of 4 sequences learned too, but
    noisily. (Over 12 epochs seed 0's attention models once ended at the mean predictor's MAE: the
    standardisation then let 5 % of each batch's own mean into its output, which the model came to
    rely on; ``RunningStandardize`` no longer does, see there.)

    ``logit_scale`` / ``learn_scale`` (attention model): the logits w·ReLU(...) are multiplied by
    the scale, fixed or learned (log-parametrised, starting at ``logit_scale``). With scale 1 over
    L = 200 cells (80×160) the softmax stayed near uniform (entropy 0.99 of log L after 8 epochs);
    from 16 (learned) it concentrates (entropy 0.63-0.85 with λ = 0.1) and the scale itself moves
    little (16 -> 15-15.9 in 8 epochs) (benchmarks/RESULTS.md, issue 14).

    ``uniform_start`` (attention model): the attention's last layer w starts at zero, so every logit
    is 0 and the attention is exactly uniform at the start; w still gets a gradient (∂score_i/∂w =
    scale · ReLU(W_x x_i + W_h h + b)), so where the attention goes is decided by the data's gradient.
    Why: with PyTorch's default init and the logits × 16 the untrained attention is already peaked
    on cells the random weights pick (80×160, test frames, four init seeds: entropy 0.30-0.87 of
    log L, peak 10-100× uniform), and training refines that start: the seed decided whether the
    attention settled on the markings or on the grass beside them."""

    kind: str
    height: int
    width: int
    hidden: int = 64
    attention_dim: int = 64
    coords: bool = False
    logit_scale: float = 1.0
    located: bool = False
    context_norm: bool = False
    learn_scale: bool = False
    uniform_start: bool = False

    @property
    def grid(self) -> tuple[int, int]:
        return (-(-self.height // 8), -(-self.width // 8))

    def to_dict(self) -> dict:
        return asdict(self)


class Encoder(nn.Module):
    """5×5 stride-2 convolutions with 24, 36, 48 channels, then 3×3 with 64, 64 (ReLU, no pooling).
    float (N, 3, H, W) -> float (N, D, ceil(H/8), ceil(W/8)), D = 64, or 66 with ``coords``: then the
    cell's row and column (each in [-1, 1]) are appended to its 64 features, so that the attention's
    context, a weighted mean of feature vectors, carries where it looked (see ``ModelSpec``).

    The convolutions start from He (Kaiming-normal, fan-in, ReLU gain) weights and zero biases.
    PyTorch's default (uniform ±1/sqrt(fan_in)) shrinks the mean square of the signal about sixfold
    per conv + ReLU layer, so after five layers the feature cube was about 0.01 in size, mostly the
    biases, with 43 % of the units never active on road frames and the frame-to-frame variation
    0.0016 (benchmarks/attention_diagnosis.py); on 80×160 frames every model then sat at the median
    predictor for all 12 epochs (training MAE 0.82 standard deviations throughout). He weights keep
    the signal's scale through the stack (features about 0.3, variation 0.13–0.15)."""

    def __init__(self, coords: bool = False):
        super().__init__()
        self.coords = coords
        self.channels = FEATURES + (2 if coords else 0)
        layers, cin = [], 3
        for cout, k, s in ((24, 5, 2), (36, 5, 2), (48, 5, 2), (64, 3, 1), (FEATURES, 3, 1)):
            layers += [nn.Conv2d(cin, cout, k, stride=s, padding=k // 2), nn.ReLU(inplace=True)]
            cin = cout
        self.net = nn.Sequential(*layers)
        for layer in self.net:
            if isinstance(layer, nn.Conv2d):  # He initialisation (see the class docstring)
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)

    def forward(self, x):
        x = (x - 0.5) * 4.0  # a fixed input normalisation, as PilotNet's first layer
        f = self.net(x)
        if self.coords:
            n, _, h, w = f.shape
            yy = torch.linspace(-1, 1, h, device=f.device, dtype=f.dtype).view(1, 1, h, 1).expand(n, 1, h, w)
            xx = torch.linspace(-1, 1, w, device=f.device, dtype=f.dtype).view(1, 1, 1, w).expand(n, 1, h, w)
            f = torch.cat([f, yy, xx], dim=1)
        return f


def locate(features: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Position-coded cell vectors (see ``ModelSpec.located``): float (B, T, L, D) on an h × w grid
    (L = h·w, row-major) -> float (B, T, L, 3D) = [x, x·col, x·row], col and row in [-1, 1].
    A cell whose features are zero (masked by causal filtering) stays zero."""
    h, w = grid
    row = torch.linspace(-1, 1, h, device=features.device, dtype=features.dtype).repeat_interleave(w)
    col = torch.linspace(-1, 1, w, device=features.device, dtype=features.dtype).repeat(h)
    return torch.cat([features, features * col[:, None], features * row[:, None]], dim=-1)


def encode(encoder: nn.Module, frames: torch.Tensor) -> torch.Tensor:
    """float (B, T, 3, H, W) -> feature cube float (B, T, L, D)."""
    b, t = frames.shape[:2]
    f = encoder(frames.flatten(0, 1))  # (B*T, D, h, w)
    return f.flatten(2).transpose(1, 2).reshape(b, t, -1, f.shape[1])


class RunningStandardize(nn.Module):
    """Per-channel standardisation by running estimates: float (N, D) -> float (N, D).

    ``forward`` standardises with the running mean and variance (buffers, no gradient) only; the
    very first call in training sets them from its input. ``update(x)`` (float (N, D), called by the
    decoder once per forward pass in training, after the pass) moves them towards the mean and
    variance of ``x`` by ``momentum``. So a sample's output never depends on the other samples of
    its batch or on the earlier steps of its own batch. (Until 2026-12-03 each call moved the
    estimates towards its own batch *before* standardising: 5 % of every context's standardised
    value was then its batch's mean, and over 12 epochs at 80×160 the model learned to rely on that;
    in evaluation (other batches, no update) seed 0's attention model gave the mean predictor's MAE
    on its own training sequences (0.0142 rad against a training loss of 0.20 standard deviations).)"""

    def __init__(self, channels: int, momentum: float = 0.05, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("var", torch.ones(channels))
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not bool(self.started):
            self.update(x, momentum=1.0)
        return (x - self.mean) / torch.sqrt(self.var + self.eps)

    @torch.no_grad()
    def update(self, x: torch.Tensor, momentum: float | None = None) -> None:
        """Move the estimates towards x's per-channel mean and (biased) variance; x float (N, D), N >= 2."""
        k = self.momentum if momentum is None else momentum
        x = x.detach()
        self.mean.lerp_(x.mean(0), k)
        if len(x) > 1:
            self.var.lerp_(x.var(0, unbiased=False), k)
        self.started.fill_(True)


class AttentionSteer(nn.Module):
    """Encoder + attention LSTM. ``forward(frames)`` -> dict pred (B, T), alpha (B, T, L), features
    (B, T, L, D), or (B, T, L, 3D) position-coded with ``spec.located`` (what ``decode`` takes)."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.encoder = Encoder(spec.coords)
        d, hdim, a = self.encoder.channels * (3 if spec.located else 1), spec.hidden, spec.attention_dim
        self.w_x = nn.Linear(d, a)
        self.w_h = nn.Linear(hdim, a, bias=False)
        self.w = nn.Linear(a, 1, bias=False)
        self.init_h = nn.Linear(d, hdim)
        self.init_c = nn.Linear(d, hdim)
        self.lstm = nn.LSTMCell(d, hdim)
        self.out = nn.Linear(hdim + d, 1)
        self.norm = RunningStandardize(d) if spec.context_norm else nn.Identity()
        if spec.uniform_start:  # w = 0: every logit 0, the attention exactly uniform until w learns (see ModelSpec)
            nn.init.zeros_(self.w.weight)
        if spec.learn_scale:  # the logits' scale, learned (log-parametrised), starting at spec.logit_scale
            self.log_scale = nn.Parameter(torch.tensor(float(spec.logit_scale)).log())

    def forward(self, frames: torch.Tensor) -> dict:
        features = encode(self.encoder, frames)
        if self.spec.located:
            features = locate(features, self.spec.grid)
        pred, alpha = self.decode(features)
        return {"pred": pred, "alpha": alpha, "features": features}

    def scale(self):
        """The attention logits' scale: the learned exp(log_scale) (a 0-d tensor) or spec.logit_scale."""
        return self.log_scale.exp() if self.spec.learn_scale else self.spec.logit_scale

    def decode(self, features: torch.Tensor, uniform: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Feature cube float (B, T, L, D) -> (pred float (B, T), alpha float (B, T, L), rows sum to 1).

        Causal filtering calls this on feature cubes with some cells zeroed. ``uniform`` replaces the
        learned attention by 1/L everywhere (the evaluation's test of whether the attention matters).
        """
        b, t, _, _ = features.shape
        mean = features[:, 0].mean(dim=1)  # frame 0 only: the state must not see later frames
        h, c = torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))
        proj = self.w_x(features)  # (B, T, L, A)
        preds, alphas, raws = [], [], []
        for step in range(t):
            scores = self.scale() * self.w(torch.relu(proj[:, step] + self.w_h(h)[:, None, :])).squeeze(-1)  # (B, L)
            alpha = torch.full_like(scores, 1.0 / scores.shape[1]) if uniform else torch.softmax(scores, dim=1)
            raw = torch.einsum("bl,bld->bd", alpha, features[:, step])
            context = self.norm(raw)
            raws.append(raw)
            h, c = self.lstm(context, (h, c))
            preds.append(self.out(torch.cat([h, context], dim=1)).squeeze(-1))
            alphas.append(alpha)
        if self.training and self.spec.context_norm:
            self.norm.update(torch.cat(raws))
        return torch.stack(preds, 1), torch.stack(alphas, 1)


class CnnSteer(nn.Module):
    """The baseline: the same encoder, then a per-frame regressor on the flattened feature cube.
    ``forward(frames (B, T, 3, H, W))`` -> dict pred (B, T), features (B, T, L, D)."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        h, w = spec.grid
        self.encoder = Encoder(spec.coords)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(h * w * self.encoder.channels, spec.hidden), nn.ReLU(inplace=True), nn.Linear(spec.hidden, 1))

    def forward(self, frames: torch.Tensor) -> dict:
        features = encode(self.encoder, frames)
        b, t = features.shape[:2]
        pred = self.head(features.flatten(0, 1)).reshape(b, t)
        return {"pred": pred, "features": features}


def build_model(spec: ModelSpec) -> nn.Module:
    if spec.kind == "attention":
        return AttentionSteer(spec)
    if spec.kind == "cnn":
        return CnnSteer(spec)
    raise ValueError(f"model kind {spec.kind!r} is not one of {KINDS}")


def attention_regularizer(alpha: torch.Tensor) -> torch.Tensor:
    """Σ_i (1 − Σ_t α_{t,i})², averaged over the batch. alpha float (B, T, L) -> scalar.

    Why squared: with softmax attention Σ_i α_{t,i} = 1 at every step, so the linear form of the
    paper's slides, Σ_i (1 − Σ_t α_{t,i}) = L − T, is a constant with no gradient. The squared form
    (Show, Attend and Tell) is smallest when every position gets the same total attention over the
    sequence, so it pushes the model to look at different places over time rather than at one spot.
    When T < L (the defaults: 8 steps over 128 cells) its minimum under Σ_i α_{t,i} = 1 is uniform
    attention, L(1 − T/L)² = 112.5: attention that stays on one fixed region (as the look-ahead band
    does) costs more, e.g. 4 of 128 cells at every step 128, so λ > 0 holds the attention towards
    uniform (at 40×80, L = 50: 50 against 35.28).
    """
    return ((1.0 - alpha.sum(dim=1)) ** 2).sum(dim=1).mean()


def steering_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Σ_t |u_t − û_t| averaged over the batch. pred, target float (B, T) -> scalar."""
    return (pred - target).abs().sum(dim=1).mean()
