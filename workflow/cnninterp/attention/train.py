"""Training of the three steering models on the driving shards, through the shared loop.

The target is standardised with the training split's mean and standard deviation (kept in the
checkpoint as ``target_mean`` / ``target_std``), so the regulariser weight λ means the same on any
data; predictions are mapped back to radians for evaluation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .model import ModelSpec, attention_regularizer, build_model, steering_loss


def load_model(path: str | Path):
    """(model in eval mode on CPU, checkpoint dict) from a model.pt written by ``train_model``."""
    from ..errors import ModelError
    from ..models.backbones import read_checkpoint

    ckpt = read_checkpoint(path)
    if not str(ckpt.get("arch", "")).startswith("attention_steer:"):
        raise ModelError(f"{path} is not a steering checkpoint (arch {ckpt.get('arch')!r})")
    spec = ModelSpec(**ckpt["spec"])
    model = build_model(spec)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt


def to_input(frames):
    """uint8 numpy/tensor (B, T, 3, H, W) -> float32 tensor in [0, 1]."""
    import torch

    return torch.as_tensor(np.asarray(frames)).float().div_(255.0)


def train_model(shards: str | Path, out: str | Path, kind: str, reg_weight: float, epochs: int, batch_size: int,
                lr: float, seed: int = 0, device: str = "auto", hidden: int = 64, coords: bool = False,
                logit_scale: float = 1.0, located: bool = False,
                context_norm: bool = False, learn_scale: bool = False, clip_grad: float = 0.0,
                uniform_start: bool = False) -> dict:
    """Train ``kind`` (attention or cnn) and write ``out`` (model.pt, config.json beside it).

    Returns {"final_loss", "final_mae_std", "history"}. ``reg_weight`` is λ of the attention
    regulariser (ignored by the cnn); ``coords``, ``located``, ``context_norm``, ``logit_scale``,
    ``learn_scale`` and ``uniform_start`` are ``ModelSpec``'s (all but ``coords`` apply to the attention model only: the cnn's
    flattened cube already keeps each cell's place). ``clip_grad`` > 0 rescales each step's gradient to at
    most that global L2 norm (``train.loop.fit``'s ``clip_grad``; 0: no clipping), in every model. Why: at
    80x160 (located cells, standardised context) single batches of 4 sequences moved an attention
    model's held-out MAE between epochs by up to 3x; with clipping at 1.0 seed 0 ended at 0.0028 rad
    after 12 epochs against 0.0058 without (benchmarks/RESULTS.md, issue 14).
    """
    import numpy as np
    import torch

    from ..data.driving import load_split
    from ..data.shards import read_manifest
    from ..train.loop import fit, pick_device, save_checkpoint, seed_everything

    seed_everything(seed)
    manifest = read_manifest(shards)
    data = load_split(shards, "train")
    frames, angle = data["frames"], data["angle"].astype(np.float64)
    mean, std = float(angle.mean()), float(angle.std() or 1.0)
    target = torch.as_tensor((angle - mean) / std, dtype=torch.float32)
    spec = ModelSpec(kind=kind, height=int(manifest["height"]), width=int(manifest["width"]), hidden=hidden, coords=coords,
                     logit_scale=logit_scale if kind == "attention" else 1.0, located=located and kind == "attention",
                     context_norm=context_norm and kind == "attention", learn_scale=learn_scale and kind == "attention",
                     uniform_start=uniform_start and kind == "attention")
    model = build_model(spec)
    dev = pick_device(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = len(frames)

    def batches(epoch):
        order = torch.randperm(n, generator=gen).numpy()
        for s in range(0, n, batch_size):
            idx = np.sort(order[s : s + batch_size])
            yield to_input(frames[idx]), target[idx]

    def step(model, batch, device):
        x, y = (b.to(device) for b in batch)
        out = model(x)
        fit_loss = steering_loss(out["pred"], y)
        loss = fit_loss
        metrics = {"mae_std": float(fit_loss.detach()) / y.shape[1]}
        if "alpha" in out:
            reg = attention_regularizer(out["alpha"])
            loss = fit_loss + reg_weight * reg
            metrics["regularizer"] = float(reg.detach())
        return loss, metrics, len(y)

    from ..data.trained_on import KEY, manifest_sha256

    history = fit(model, batches, step, optimizer, epochs, dev, desc=f"attention {kind}", clip_grad=clip_grad)
    config = {"kind": kind, "reg_weight": reg_weight, "epochs": epochs, "batch_size": batch_size, "lr": lr,
              "seed": seed, "hidden": hidden, "coords": coords, "logit_scale": logit_scale,
              "located": spec.located, "context_norm": spec.context_norm, "learn_scale": spec.learn_scale,
              "clip_grad": clip_grad, "uniform_start": spec.uniform_start, "shards": str(shards),
              KEY: manifest_sha256(shards)}
    save_checkpoint(out, model, f"attention_steer:{kind}", 1, config,
                    extra={"spec": spec.to_dict(), "target_mean": mean, "target_std": std, "history": history})
    return {"final_loss": history[-1]["loss"], "final_mae_std": history[-1]["mae_std"], "history": history}
