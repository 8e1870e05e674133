"""Evaluation of the trained FTL model and its baseline on the digits test split.

Writes ``metrics.json`` (keys ``reconstruction_mse``, ``equivariance_error``, ``angle_error_deg``,
``invariant_accuracy`` at the top level, each per dataset; beside them ``equivariance_error_blocks``,
the turning blocks' own error, and ``latent_share``) and ``turn_digits.npy``, the re-rendered
full turns of a few test digits (float32 (rows, steps + 1, S, S): the input, then its latent
turned by 360°·k/steps) that the report draws.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, write_json
from ..data import digits
from . import invariant, metrics
from .train import load_model

log = logging.getLogger(__name__)
DATASET = "digits"


def evaluate(shards: str | Path, ftl_path: str | Path, baseline_path: str | Path, out: str | Path, *,
             samples: int, turn_rows: int, turn_steps: int, seed: int) -> dict:
    """Compute the metrics on ``samples`` test digits; write ``out`` (metrics.json) and the turn array beside it."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    test_x, test_y = digits.load_split(shards, "test")
    train_x, train_y = digits.load_split(shards, "train")
    arc = digits.heldout_arc(shards)
    take = rng.permutation(len(test_x))[: min(samples, len(test_x))]
    x = torch.from_numpy(test_x[take])
    ftl_model, base_model = (load_model(p, shards, heldout_deg=arc, image_size=test_x.shape[-1]) for p in (ftl_path, baseline_path))
    layout = ftl_model.layout
    result = {"reconstruction_mse": {}, "equivariance_error": {}, "angle_error_deg": {}, "invariant_accuracy": {}}
    rec = {"ftl": {}, "baseline": {}}
    eq, eqb, ang = {}, {}, {}
    with torch.no_grad():
        z0 = ftl_model.encode(x)
        for part in ("seen", "heldout"):
            theta_deg = digits.sample_angles(rng, len(x), arc, heldout=(part == "heldout"))
            theta = torch.tensor(np.radians(theta_deg), dtype=torch.float32)
            x_t = digits.rotate_images(x, theta)
            for kind, model in (("ftl", ftl_model), ("baseline", base_model)):
                rec[kind][part] = float(((model(x, theta) - x_t) ** 2).mean())
            z_t = ftl_model.encode(x_t)
            eq[part] = metrics.equivariance_error(z0, z_t, theta, layout)
            eqb[part] = metrics.group_equivariance_error(z0, z_t, theta, layout)
            ang[part] = metrics.angle_error_deg(metrics.recover_angle(z0, z_t, layout), theta)
        share = metrics.latent_share(z0, layout)
        accuracy = invariant_accuracy(ftl_model, train_x, train_y, test_x, test_y, rng)
        turn = turn_grid(ftl_model, x[:turn_rows], turn_steps)
    result["reconstruction_mse"][DATASET] = rec
    result["equivariance_error"][DATASET] = eq
    result["equivariance_error_blocks"] = {DATASET: {"inplane": eqb}}
    result["angle_error_deg"][DATASET] = {"ftl": ang, "chance": metrics.CHANCE_ANGLE_ERROR_DEG}
    result["invariant_accuracy"][DATASET] = accuracy
    result["heldout_deg"] = {DATASET: list(arc)}
    result["samples"] = {DATASET: int(len(x))}
    result["latent_share"] = {DATASET: {"inplane": share[0], "identity": share[1]}}
    out = Path(out)
    with atomic_path(out.with_name("turn_digits.npy")) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, turn.astype(np.float32), allow_pickle=False)
    write_json(out, result)
    log.info("transform metrics: %s", result)
    return result


def invariant_accuracy(model, train_x, train_y, test_x, test_y, rng) -> dict:
    """Digit accuracy under rotations uniform on the whole circle (test digits) of one classifier on
    the block norms of e(x) (rotation-invariant by construction of the FTL), and on the norms with
    the identity part, against the same classifier on as many PCA features of the pixels each, and
    on all pixels (``invariant.compare``);
    all fitted on training digits rotated uniformly on the whole circle. train_x, test_x float32
    (N, 1, S, S); train_y, test_y int (N,)."""
    import torch

    arc = (0.0, 0.0)
    tr_theta = torch.tensor(np.radians(digits.sample_angles(rng, len(train_x), arc, heldout=False)), dtype=torch.float32)
    te_theta = torch.tensor(np.radians(digits.sample_angles(rng, len(test_x), arc, heldout=False)), dtype=torch.float32)
    tr = digits.rotate_images(torch.from_numpy(train_x), tr_theta)
    te = digits.rotate_images(torch.from_numpy(test_x), te_theta)
    sets = invariant.invariant_sets(model.encode(tr), model.encode(te), model.layout)
    pixels = lambda imgs: imgs.reshape(len(imgs), -1).numpy()  # noqa: E731
    return invariant.compare(sets, pixels(tr), pixels(te), train_y, test_y, n_classes=10)


def turn_grid(model, x, steps: int) -> np.ndarray:
    """Rows: each input (B, 1, S, S), then its latent turned through a full turn in ``steps`` steps -> (B, steps + 1, S, S)."""
    import torch

    z = model.encode(x)
    cols = [x[:, 0].numpy()]
    for k in range(steps):
        theta = torch.full((len(x),), 2 * np.pi * k / steps)
        cols.append(torch.sigmoid(model.decode(z, theta))[:, 0].numpy())
    return np.stack(cols, 1)
