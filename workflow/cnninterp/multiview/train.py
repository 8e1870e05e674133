"""Training of the multi-view pose models through the project's one loop (``train.loop.fit``).

Loss per batch, the same for the three kinds: the mean 2D error ‖û − u‖ in crop pixels of the
decoded joints, plus ``weight_3d`` × the mean 3D error of the DLT-triangulated joints expressed in
crop pixels at the person (mm / (CROP_MM / S)), each joint's 3D error capped at ``CAP_MM`` so
that early, wild triangulations do not dominate.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..data import multiview as mvdata
from .model import ModelSpec, build, triangulate

CAP_MM = 500.0


def tensors(data: dict):
    """Torch tensors of a loaded split: images uint8, R, P (float32), joints2d, joints3d."""
    import torch

    P = mvdata.projections(data["K"], data["R"], data["t"])
    return {"images": torch.from_numpy(np.ascontiguousarray(data["images"])), "R": torch.from_numpy(data["R"]).float(),
            "P": torch.from_numpy(P).float(), "uv": torch.from_numpy(np.ascontiguousarray(data["joints2d"])),
            "X": torch.from_numpy(np.ascontiguousarray(data["joints3d"]))}


def losses(model, batch: dict, weight_3d: float):
    """(loss tensor, 2D error px, 3D error mm) of ``model`` on a batch of ``tensors``."""
    uv = model(batch["images"], batch["R"])
    err2d = (uv - batch["uv"]).norm(dim=-1).mean()
    X = triangulate(uv, batch["P"])
    err3d = (X - batch["X"]).norm(dim=-1)
    mm_per_px = mvdata.CROP_MM / model.spec.image_size
    loss = err2d + weight_3d * err3d.clamp(max=CAP_MM).mean() / mm_per_px
    return loss, float(err2d.detach()), float(err3d.detach().mean())


def train_model(shards: str | Path, out: str | Path, spec: ModelSpec, *, epochs: int, batch_size: int, lr: float,
                weight_3d: float, seed: int, device: str = "auto") -> dict:
    """Train one model on the ``train`` split and write ``out`` (model.pt, config.json beside); return its summary."""
    import torch

    from ..data.trained_on import KEY, manifest_sha256
    from ..train.loop import fit, pick_device, save_checkpoint, seed_everything

    seed_everything(seed)
    dev = pick_device(device)
    data = tensors(mvdata.load_split(shards, "train"))
    model = build(spec)
    rng = np.random.default_rng(seed)
    n = len(data["images"])

    def batches(epoch):
        order = rng.permutation(n)
        for i in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
            idx = torch.from_numpy(order[i : i + batch_size])
            yield {k: v[idx] for k, v in data.items()}

    def step(m, batch, dev):
        batch = {k: v.to(dev) for k, v in batch.items()}
        loss, e2, e3 = losses(m, batch, weight_3d)
        return loss, {"err2d_px": e2, "mpjpe_mm": e3}, len(batch["images"])

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    history = fit(model, batches, step, optimizer, epochs, dev, scheduler=scheduler, desc=f"multiview {spec.kind}")
    config = {"spec": spec.to_dict(), "epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_3d": weight_3d,
              "seed": seed, "shards": str(shards), "parameters": sum(p.numel() for p in model.parameters()),
              KEY: manifest_sha256(shards)}
    save_checkpoint(out, model.cpu(), arch=f"multiview_{spec.kind}", num_classes=0, config=config, extra={"history": history})
    return {"final_mpjpe_mm": history[-1]["mpjpe_mm"] if history else math.nan, "history": history}


def load_model(path: str | Path, shards: str | Path | None = None):
    """A model written by ``train_model`` (``torch.load`` with weights_only) in eval mode. With
    ``shards``: DataError unless it was trained on that folder (``data.trained_on.check_trained_on``;
    a checkpoint without the manifest digest is accepted, it records nothing to compare)."""
    from ..data.trained_on import check_trained_on
    from ..models.backbones import read_checkpoint

    payload = read_checkpoint(path)
    if shards is not None:
        check_trained_on(payload["config"], path, shards, lambda c: [])
    model = build(ModelSpec(**payload["config"]["spec"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval()
