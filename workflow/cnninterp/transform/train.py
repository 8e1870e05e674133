"""Training of the FTL encoder–decoder and its baseline: loss ℓ(d(F_θ e(x_α)), x_{α+θ}) over random angles.

Digits (one factor, in plane): each step draws, per image, an input angle α and a target angle β = α + θ, both uniform on the
*seen* part of the circle (never on the held-out arc), rotates the upright training digits to
both, and minimises the binary cross-entropy of the decoded image against x_β (pixels in [0, 1]),
the paper's loss. With ``equivariance_weight`` λ > 0 (FTL model only) it adds
λ·‖e(x_β) − F_θ e(x_α)‖² / ‖e(x_α)‖²: the reconstruction loss alone also admits encoders that
store α in the block norms (the decoder can then read α and β back from F_θ e(x_α)), and on a small
budget that is what training finds (measured: angle error near chance with λ = 0).

Objects3d (two factors): each step takes two stored views of one training object at train azimuths
a, b (held-out azimuths are not in the train split), rolls them in plane by α, β (whole circle), and
decodes F_θ e(x_in) with θ = (β − α, b − a): group 0 of the latent turns with the roll, group 1 with
the azimuth. Same loss and the same optional latent term, over both groups.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..data import digits, objects3d
from ..models import ftl
from .model import ModelSpec, build


def train_model(shards: str | Path, out: str | Path, spec: ModelSpec, *, epochs: int, batch_size: int, lr: float,
                seed: int, device: str = "auto", equivariance_weight: float = 0.0, equivariance_norm: str = "latent") -> dict:
    """Train one model on the shards (digits or objects3d, from the manifest) and write ``out``
    (model.pt, config.json beside); return its summary (``final_mse``, ``history``).

    ``equivariance_norm`` (the latent term's scale, see ``equivariance_term``): ``latent`` or ``part``.
    """
    import torch
    import torch.nn.functional as F

    from ..data.shards import read_manifest
    from ..errors import ConfigError
    from ..train.loop import fit, pick_device, save_checkpoint, seed_everything
    from ..data.trained_on import KEY, manifest_sha256

    seed_everything(seed)
    dev = pick_device(device)
    dataset = read_manifest(shards).get("dataset")
    digest = manifest_sha256(shards)
    want = {"digits": 1, "objects3d": 2}.get(dataset)
    if want is None:
        raise ConfigError(f"{shards}: dataset {dataset!r} is not one the transform method trains on (digits, objects3d)")
    if spec.factors != want:
        raise ConfigError(f"{shards}: {dataset} has {want} factor(s) but the model has {spec.factors} block group(s); "
                          + ("set --azimuth-blocks >= 1" if want == 2 else "set --azimuth-blocks 0"))
    model = build(spec)
    weight = equivariance_weight if spec.kind == "ftl" else 0.0
    rng = np.random.default_rng(seed)
    batches, arc = (digit_pairs if dataset == "digits" else object_pairs)(shards, rng, batch_size)

    def step(m, batch, dev):
        x_a, x_b, alpha, beta, extra = (t.to(dev) for t in batch)
        with torch.no_grad():
            x_in, x_out = digits.rotate_images(x_a, alpha), digits.rotate_images(x_b, beta)
        theta = torch.cat([(beta - alpha)[:, None], extra], 1)
        z_in = m.encode(x_in)
        logits = m.decode(z_in, theta)
        loss = F.binary_cross_entropy_with_logits(logits, x_out)
        mse = float(((torch.sigmoid(logits) - x_out) ** 2).mean().detach())
        out = {"mse": mse}
        if weight > 0:
            eq = equivariance_term(z_in, m.encode(x_out), theta, m.layout, equivariance_norm)
            loss = loss + weight * eq
            out["equivariance"] = float(eq.detach())
        return loss, out, len(x_a)

    if equivariance_norm not in NORMS:
        raise ConfigError(f"transform: equivariance_norm must be one of {NORMS}, not {equivariance_norm!r}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = fit(model, batches, step, optimizer, epochs, dev, desc=f"transform {dataset} {spec.kind}")
    config = {"spec": spec.to_dict(), "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
              "heldout_deg": list(arc), "shards": str(shards), KEY: digest, "dataset": dataset,
              "equivariance_weight": weight, "equivariance_norm": equivariance_norm if weight > 0 else None}
    save_checkpoint(out, model.cpu(), arch=f"transform_{spec.kind}", num_classes=0, config=config, extra={"history": history})
    return {"final_mse": history[-1]["mse"] if history else math.nan, "history": history}


NORMS = ("latent", "part")


def equivariance_term(z_in, z_out, theta, layout: ftl.BlockLayout, norm: str):
    """The added latent loss, a scalar tensor: z_in = e(x_α), z_out = e(x_β) float (B, D), theta (B, G) radians.

    ``latent``: mean ‖z_out − F_θ z_in‖² / ‖z_in‖². ``part``: the same ratio taken for each block
    group and the identity part separately (each over its own squared norm in z_in), averaged over
    the parts. ``latent`` lets the encoder shrink the rotated blocks and keep the identity part
    large (the ratio is then small without any equivariance; measured on objects3d: 0.6% of the
    squared norm left in the blocks, azimuth error at chance); ``part`` is unchanged by the scale of
    any one part, so that escape is closed.
    """
    turned = ftl.transform(z_in, layout, [ftl.rotation_2d(theta[:, g]) for g in range(theta.shape[1])])
    diff = (z_out - turned) ** 2
    if norm == "latent":
        return (diff.sum(1) / (z_in**2).sum(1).clamp_min(1e-8)).mean()
    parts, start = [], 0
    for n, k in layout.groups:
        parts.append(slice(start, start + n * k))
        start += n * k
    if start < layout.latent_dim:
        parts.append(slice(start, layout.latent_dim))
    ratios = [(diff[:, p].sum(1) / (z_in[:, p] ** 2).sum(1).clamp_min(1e-8)).mean() for p in parts]
    return sum(ratios) / len(ratios)


def digit_pairs(shards, rng: np.random.Generator, batch_size: int):
    """Training pairs of the digits: ``batches(epoch)`` yielding (x, x, α, β, no extra angle) —
    x float32 (B, 1, S, S) upright, α, β (B,) radians uniform on the seen circle, extra (B, 0) —
    and the held-out arc (degrees)."""
    import torch

    images, _ = digits.load_split(shards, "train")
    arc = digits.heldout_arc(shards)
    x_all = torch.from_numpy(images)

    def batches(epoch):
        order = rng.permutation(len(x_all))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            alpha = digits.sample_angles(rng, len(idx), arc, heldout=False)
            beta = digits.sample_angles(rng, len(idx), arc, heldout=False)
            x = x_all[idx]
            yield (x, x, torch.tensor(np.radians(alpha), dtype=torch.float32), torch.tensor(np.radians(beta), dtype=torch.float32),
                   torch.zeros(len(idx), 0))

    return batches, arc


def object_pairs(shards, rng: np.random.Generator, batch_size: int):
    """Training pairs of the 3-D objects: ``batches(epoch)`` yielding (x_a, x_b, α, β, Δazimuth) —
    x_a, x_b float32 (B, 1, S, S) two stored views of one object at train azimuths a, b (the
    train split holds no held-out azimuth), α, β (B,) in-plane angles uniform on the manifest's range [−r, r],
    Δazimuth (B, 1) = b − a radians — and the held-out azimuth arc (degrees). An epoch passes
    once over every stored train view as x_a; b is drawn uniformly among the train azimuths."""
    import torch

    views = objects3d.load_views(shards, "train")
    arc = objects3d.heldout_arc(shards)
    roll = np.radians(objects3d.inplane_range(shards))
    images = torch.from_numpy(views["images"])
    az = np.radians(views["azimuth_deg"])
    n_obj, n_az = images.shape[:2]

    def batches(epoch):
        order = rng.permutation(n_obj * n_az)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            o, a = idx // n_az, idx % n_az
            b = rng.integers(0, n_az, len(idx))
            alpha = rng.uniform(-roll, roll, len(idx))
            beta = rng.uniform(-roll, roll, len(idx))
            f32 = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
            yield images[o, a], images[o, b], f32(alpha), f32(beta), f32(az[b] - az[a])[:, None]

    return batches, arc


def load_model(path: str | Path, shards: str | Path | None = None, *, heldout_deg=None, image_size: int | None = None):
    """A model written by ``train_model`` (``torch.load`` with weights_only) in eval mode.

    With ``shards``: DataError unless the model was trained on that folder (``data.trained_on.check_trained_on``;
    a checkpoint without the manifest digest is compared on its held-out arc ``heldout_deg``
    (start, end) degrees and its ``image_size`` against the values given)."""
    from ..models.backbones import read_checkpoint
    from ..data.trained_on import check_trained_on

    payload = read_checkpoint(path)
    if shards is not None:
        check_trained_on(payload["config"], path, shards, lambda c: [
            ("held-out arc (degrees)", [float(v) for v in c.get("heldout_deg", [])], [float(v) for v in heldout_deg]),
            ("image size", c["spec"].get("image_size"), image_size)])
    spec = ModelSpec(**payload["config"]["spec"])
    model = build(spec)
    model.load_state_dict(payload["state_dict"])
    return model.eval()
