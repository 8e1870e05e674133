"""Evaluation of the FTL model and its baseline on the 3-D objects (two factors: in-plane roll, azimuth).

Pairs on the *test objects* (instances never seen in training): a source view at a train
(seen) azimuth a with roll α, a target view at azimuth b with roll β (α, β uniform on the
manifest's in-plane range), θ = (β − α, b − a). Beside the chance level (a guess uniform on the
circle, 90°) the angle errors of always guessing 0 are recorded (``zero_guess``): with a limited
roll range or a narrow held-out arc, that guess is far better than chance. Part
``seen``: b on the seen azimuths; part ``heldout``: b on the held-out arc (never in training).

``reconstruction_mse`` also holds ``ftl_azimuth_not_turned``: the FTL model's output with the
roll applied but the azimuth blocks left as they are, against the same targets; the turned
re-rendering should beat it when turning the azimuth blocks turns the object.

Writes ``objects3d.json`` (the same top-level keys as the digits metrics, for dataset
``objects3d``; angle errors per factor) and ``turn_objects3d.npy``: per test object two rows, the
true renders at azimuth a₀ + 360°·k/steps and the model's re-rendering of the view at a₀ with its
azimuth blocks turned by 360°·k/steps (float32 (2·rows, steps + 1, S, S); column 0 is the input in
both rows), the out-of-plane figure of the report.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, write_json
from ..data import digits, objects3d
from ..errors import DataError
from . import invariant, metrics
from .train import load_model

log = logging.getLogger(__name__)
DATASET = "objects3d"
FACTORS = ("inplane", "azimuth")  # latent group order


def evaluate_objects3d(shards: str | Path, ftl_path: str | Path, baseline_path: str | Path, out: str | Path, *,
                       samples: int, turn_rows: int, turn_steps: int, seed: int) -> dict:
    """Metrics on ``samples`` test pairs per part; write ``out`` (objects3d.json) and the turn array beside it."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    test = objects3d.load_views(shards, "test")
    train = objects3d.load_views(shards, "train")
    arc = objects3d.heldout_arc(shards)
    roll = np.radians(objects3d.inplane_range(shards))
    held = objects3d.in_arc(test["azimuth_deg"], arc)
    seen_idx, held_idx = np.flatnonzero(~held), np.flatnonzero(held)
    ftl_model, base_model = (load_model(p, shards, heldout_deg=arc, image_size=test["images"].shape[-1]) for p in (ftl_path, baseline_path))
    if ftl_model.spec.factors != 2 or base_model.spec.factors != 2:
        raise DataError(f"{ftl_path}, {baseline_path}: objects3d models need two block groups (in plane, azimuth)")
    layout = ftl_model.layout
    images = torch.from_numpy(test["images"])
    az = np.radians(test["azimuth_deg"])
    rec = {"ftl": {}, "baseline": {}, "ftl_azimuth_not_turned": {}}
    eq, ang, zero = {}, {f: {} for f in FACTORS}, {f: {} for f in FACTORS}
    eqb = {f: {} for f in FACTORS}
    with torch.no_grad():
        for part, targets in (("seen", seen_idx), ("heldout", held_idx)):
            if len(targets) == 0:
                continue
            o = rng.integers(0, images.shape[0], samples)
            a, b = rng.choice(seen_idx, samples), rng.choice(targets, samples)
            alpha = torch.tensor(rng.uniform(-roll, roll, samples), dtype=torch.float32)
            beta = torch.tensor(rng.uniform(-roll, roll, samples), dtype=torch.float32)
            x = digits.rotate_images(images[o, a], alpha)
            x_t = digits.rotate_images(images[o, b], beta)
            theta = torch.stack([beta - alpha, torch.tensor(az[b] - az[a], dtype=torch.float32)], 1)
            for kind, model in (("ftl", ftl_model), ("baseline", base_model)):
                rec[kind][part] = float(((model(x, theta) - x_t) ** 2).mean())
            no_azimuth = torch.stack([theta[:, 0], torch.zeros(samples)], 1)
            rec["ftl_azimuth_not_turned"][part] = float(((ftl_model(x, no_azimuth) - x_t) ** 2).mean())
            z, z_t = ftl_model.encode(x), ftl_model.encode(x_t)
            eq[part] = metrics.equivariance_error(z, z_t, theta, layout)
            for g, factor in enumerate(FACTORS):
                ang[factor][part] = metrics.angle_error_deg(metrics.recover_angle(z, z_t, layout, group=g), theta[:, g])
                eqb[factor][part] = metrics.group_equivariance_error(z, z_t, theta[:, g], layout, group=g)
                zero[factor][part] = metrics.angle_error_deg(torch.zeros(samples), theta[:, g])
        share = metrics.latent_share(ftl_model.encode(images[:, seen_idx].reshape(-1, *images.shape[2:])), layout)
        accuracy = invariant_accuracy(ftl_model, train, test, rng, roll)
        a0 = int(seen_idx[np.argmin(np.abs(test["azimuth_deg"][seen_idx]))])  # the seen azimuth nearest 0°
        turn = turn_grid(ftl_model, test, a0, turn_rows, turn_steps)
    result = {
        "reconstruction_mse": {DATASET: rec},
        "equivariance_error": {DATASET: eq},
        "equivariance_error_blocks": {DATASET: eqb},
        "angle_error_deg": {DATASET: {"ftl": ang, "chance": metrics.CHANCE_ANGLE_ERROR_DEG, "zero_guess": zero}},
        "inplane_range_deg": {DATASET: float(np.degrees(roll))},
        "latent_share": {DATASET: dict(zip((*FACTORS, "identity"), share))},
        "invariant_accuracy": {DATASET: accuracy},
        "heldout_deg": {DATASET: list(arc)},
        "samples": {DATASET: int(samples)},
        "turn": {DATASET: {"start_azimuth_deg": float(test["azimuth_deg"][a0]), "steps": int(turn_steps)}},
    }
    out = Path(out)
    with atomic_path(out.with_name("turn_objects3d.npy")) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, turn.astype(np.float32), allow_pickle=False)
    write_json(out, result)
    log.info("transform objects3d metrics: %s", result)
    return result


def invariant_accuracy(model, train: dict, test: dict, rng, roll: float) -> dict:
    """Shape accuracy (6 shapes) of one classifier on the block norms of both groups of e(x)
    (invariant to roll and azimuth by construction of the FTL), and on the norms with the identity
    part, against the same classifier on as many PCA features of the pixels each, and on all pixels (``invariant.compare``), on test objects at
    every azimuth under random rolls (uniform on [−roll, roll] radians); fitted on every train view
    under random rolls."""
    import torch

    def views(split):
        imgs = torch.from_numpy(split["images"].reshape(-1, *split["images"].shape[2:]))
        angle = torch.tensor(rng.uniform(-roll, roll, len(imgs)), dtype=torch.float32)
        labels = np.repeat(split["shape"], split["images"].shape[1])
        return digits.rotate_images(imgs, angle), labels

    (tr, tr_y), (te, te_y) = views(train), views(test)
    sets = invariant.invariant_sets(model.encode(tr), model.encode(te), model.layout)
    pixels = lambda imgs: imgs.reshape(len(imgs), -1).numpy()  # noqa: E731
    return invariant.compare(sets, pixels(tr), pixels(te), tr_y, te_y, n_classes=len(objects3d.SHAPE_NAMES))


def turn_grid(model, test: dict, a0: int, rows: int, steps: int) -> np.ndarray:
    """Rows in pairs per test object: the true views at azimuth a₀ + 360°·k/steps (nearest stored
    azimuth), then the view at a₀ re-rendered with its azimuth blocks turned by 360°·k/steps and its
    roll unchanged -> float (2·rows, steps + 1, S, S); column 0 holds the input view in both rows."""
    import torch

    images = torch.from_numpy(test["images"][:rows])
    grid = test["azimuth_deg"]
    x = images[:, a0]
    z = model.encode(x)
    truth, made = [x[:, 0].numpy()], [x[:, 0].numpy()]
    for k in range(steps):
        turn = 360.0 * k / steps
        target = digits.wrap_deg(grid[a0] + turn)
        nearest = int(np.argmin(np.abs(digits.wrap_deg(grid - target))))
        truth.append(images[:, nearest, 0].numpy())
        theta = torch.stack([torch.zeros(len(x)), torch.full((len(x),), float(np.radians(turn)))], 1)
        made.append(torch.sigmoid(model.decode(z, theta))[:, 0].numpy())
    truth, made = np.stack(truth, 1), np.stack(made, 1)
    return np.stack([truth, made], 1).reshape(-1, steps + 1, *truth.shape[2:])
