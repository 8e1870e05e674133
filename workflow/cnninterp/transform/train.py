"""Training of the FTL encoder–decoder and its baseline: loss ℓ(d(F_θ e(x_α)), x_{α+θ}) over random angles.

Each step draws, per image, an input angle α and a target angle β = α + θ, both uniform on the
*seen* part of the circle (never on the held-out arc), rotates the upright training digits to
both, and minimises the binary cross-entropy of the decoded image against x_β (pixels in [0, 1]),
the paper's loss. With ``equivariance_weight`` λ > 0 (FTL model only) it adds
λ·‖e(x_β) − F_θ e(x_α)‖² / ‖e(x_α)‖²: the reconstruction loss alone also admits encoders that
store α in the block norms (the decoder can then read α and β back from F_θ e(x_α)), and on a small
budget that is what training finds (measured: angle error near chance with λ = 0).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..data import digits
from ..models import ftl
from .model import ModelSpec, build


def train_model(shards: str | Path, out: str | Path, spec: ModelSpec, *, epochs: int, batch_size: int, lr: float,
                seed: int, device: str = "auto", equivariance_weight: float = 0.0) -> dict:
    """Train one model on the digits shards and write ``out`` (model.pt, config.json beside); return its summary."""
    import torch
    import torch.nn.functional as F

    from ..train.loop import fit, pick_device, save_checkpoint, seed_everything

    seed_everything(seed)
    dev = pick_device(device)
    images, _ = digits.load_split(shards, "train")
    arc = digits.heldout_arc(shards)
    x_all = torch.from_numpy(images)
    model = build(spec)
    weight = equivariance_weight if spec.kind == "ftl" else 0.0
    rng = np.random.default_rng(seed)

    def batches(epoch):
        order = rng.permutation(len(x_all))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            alpha = digits.sample_angles(rng, len(idx), arc, heldout=False)
            beta = digits.sample_angles(rng, len(idx), arc, heldout=False)
            yield x_all[idx], torch.tensor(np.radians(alpha), dtype=torch.float32), torch.tensor(np.radians(beta), dtype=torch.float32)

    def step(m, batch, dev):
        x, alpha, beta = (t.to(dev) for t in batch)
        with torch.no_grad():
            x_in, x_out = digits.rotate_images(x, alpha), digits.rotate_images(x, beta)
        z_in = m.encode(x_in)
        logits = m.decode(z_in, beta - alpha)
        loss = F.binary_cross_entropy_with_logits(logits, x_out)
        mse = float(((torch.sigmoid(logits) - x_out) ** 2).mean().detach())
        out = {"mse": mse}
        if weight > 0:
            turned = ftl.transform(z_in, m.layout, [ftl.rotation_2d(beta - alpha)])
            eq = (((m.encode(x_out) - turned) ** 2).sum(1) / (z_in**2).sum(1).clamp_min(1e-8)).mean()
            loss = loss + weight * eq
            out["equivariance"] = float(eq.detach())
        return loss, out, len(x)

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = fit(model, batches, step, optimizer, epochs, dev, desc=f"transform {spec.kind}")
    config = {"spec": spec.to_dict(), "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
              "heldout_deg": list(arc), "shards": str(shards),
              "equivariance_weight": weight}
    save_checkpoint(out, model.cpu(), arch=f"transform_{spec.kind}", num_classes=0, config=config, extra={"history": history})
    return {"final_mse": history[-1]["mse"] if history else math.nan, "history": history}


def load_model(path: str | Path):
    """A model written by ``train_model`` (``torch.load`` with weights_only) in eval mode."""
    import torch

    from ..errors import ModelError

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"transform checkpoint {path} does not exist; train it first (cnninterp transform train)") from None
    spec = ModelSpec(**payload["config"]["spec"])
    model = build(spec)
    model.load_state_dict(payload["state_dict"])
    return model.eval()
