"""The project's one training loop: device choice, fixed seeds, progress, atomic checkpoints."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..atomic import atomic_path, write_json
from ..errors import ConfigError

log = logging.getLogger(__name__)


def pick_device(name: str = "auto"):
    """Return the torch.device for ``name`` (auto = CUDA when available, else CPU)."""
    import os

    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but torch sees no CUDA device; use device: auto or cpu")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    # the scheduler's GPU grant (SLURM sets this for gres/gpu jobs) is logged for the record
    log.info("device %s; CUDA_VISIBLE_DEVICES=%s", device, os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) random generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def set_threads(threads: int) -> None:
    """Use ``threads`` torch CPU threads (0 leaves torch's default)."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)


def fit(
    model,
    batches: Callable[[int], Iterable],
    step: Callable,
    optimizer,
    epochs: int,
    device,
    scheduler=None,
    desc: str = "train",
    clip_grad: float = 0.0,
) -> list[dict]:
    """Train ``model`` for ``epochs`` and return one dict of mean metrics per epoch.

    ``batches(epoch)`` yields batches for that epoch; ``step(model, batch, device)`` returns
    ``(loss tensor, metrics dict of floats, batch size)``. The optimizer steps once per batch and
    the scheduler (if any) once per epoch. ``clip_grad`` > 0 first rescales each step's gradients,
    all parameters together, to at most that global L2 norm (``clip_grad_norm_``).
    """
    import torch
    from tqdm import tqdm

    model.to(device)
    history = []
    for epoch in range(epochs):
        model.train()
        totals: dict[str, float] = {}
        seen = 0
        for batch in tqdm(batches(epoch), desc=f"{desc} epoch {epoch + 1}/{epochs}", unit="batch", mininterval=2, disable=None):
            loss, metrics, size = step(model, batch, device)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: loss became {loss.item()} at epoch {epoch + 1}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            optimizer.step()
            seen += size
            for key, value in {"loss": float(loss.detach()), **metrics}.items():
                totals[key] = totals.get(key, 0.0) + value * size
        if scheduler is not None:
            scheduler.step()
        record = {"epoch": epoch + 1, "samples": seen, **{k: v / max(seen, 1) for k, v in totals.items()}}
        log.info("%s %s", desc, record)
        history.append(record)
    return history


def save_checkpoint(path: str | Path, model, arch: str, num_classes: int, config: dict, extra: dict | None = None) -> None:
    """Atomically write a checkpoint (arch, num_classes, CPU state_dict, config, extra) and config.json beside it.

    The file loads with ``torch.load(path, weights_only=True)``.
    """
    import torch

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"arch": arch, "num_classes": int(num_classes), "state_dict": state, "config": config, **(extra or {})}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    write_json(path.with_name("config.json"), {"arch": arch, "num_classes": int(num_classes), "config": config, **(extra or {})})
