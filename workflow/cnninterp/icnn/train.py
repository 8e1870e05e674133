"""Training of the interpretable and the ordinary network on the parts shards, through ``train.loop``.

Loss: cross-entropy of the class, plus, for the interpretable network, ``filter_weight`` × the
filter loss (−MI, ``loss.filter_loss``) of the top layer's maps, with each filter's positive
images those of its category (``model.assign_filters``). Both networks see the same images in the
same order from the same initialisation seed, for the same number of steps.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..data import parts
from .loss import filter_loss
from .model import NetSpec, assign_filters, build, positives

PREPROCESS = "imagenet"


def to_input(images: np.ndarray):
    """uint8 (N, S, S, 3) -> float32 tensor (N, 3, S, S), the ImageNet normalisation (the dissection engine's ``imagenet`` preset)."""
    from ..data.preprocess import to_tensor

    return to_tensor(images, PREPROCESS)


def train_net(shards: str | Path, out: str | Path, spec: NetSpec, *, epochs: int, batch_size: int, lr: float,
              filter_weight: float, seed: int, device: str = "auto") -> dict:
    """Train one network on the ``train`` split and write ``out`` (model.pt, config.json beside); return its summary."""
    import torch
    import torch.nn.functional as F

    from ..train.loop import fit, pick_device, save_checkpoint, seed_everything
    from ..data.trained_on import KEY, manifest_sha256

    seed_everything(seed)
    dev = pick_device(device)
    digest = manifest_sha256(shards)
    data = parts.load_split(shards, "train")
    x_all = to_input(data["images"])
    y_all = torch.from_numpy(data["labels"])
    if int(y_all.max()) >= spec.num_classes:
        from ..errors import DataError

        raise DataError(f"{shards}: class number {int(y_all.max())} but the network has {spec.num_classes} classes")
    model = build(spec)
    categories = assign_filters(spec.filters, spec.num_classes)
    weight = filter_weight if spec.interpretable else 0.0
    rng = np.random.default_rng(seed)

    def batches(epoch):
        order = torch.from_numpy(rng.permutation(len(x_all)))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            yield x_all[idx], y_all[idx]

    def step(m, batch, dev):
        x, y = (t.to(dev) for t in batch)
        logits, maps = m.forward_maps(x)
        ce = F.cross_entropy(logits, y)
        out = {"ce": float(ce.detach()), "accuracy": float((logits.argmax(1) == y).float().mean())}
        loss = ce
        if weight > 0:
            fl = filter_loss(maps, positives(y, categories))
            loss = loss + weight * fl
            out["filter_loss"] = float(fl.detach())
        return loss, out, len(x)

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    kind = "icnn" if spec.interpretable else "cnn"
    history = fit(model, batches, step, optimizer, epochs, dev, desc=f"icnn {kind}")
    config = {"spec": spec.to_dict(), "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
              "filter_weight": weight, "shards": str(shards), KEY: digest, "preprocess": PREPROCESS,
              "filter_categories": categories.tolist()}
    save_checkpoint(out, model.cpu(), arch=f"icnn_{kind}", num_classes=spec.num_classes, config=config, extra={"history": history})
    return {"final_accuracy": history[-1]["accuracy"] if history else math.nan, "history": history}


def load_net(path: str | Path, shards: str | Path | None = None, *, image_size: int | None = None):
    """A network written by ``train_net`` (``torch.load`` with weights_only), in eval mode, and its NetSpec.

    With ``shards``: DataError unless it was trained on that folder (``data.trained_on.check_trained_on``;
    a checkpoint without the manifest digest is compared on its image side against ``image_size``)."""
    from ..errors import ModelError
    from ..models.backbones import read_checkpoint
    from ..data.trained_on import check_trained_on

    payload = read_checkpoint(path)
    try:
        spec = NetSpec(**payload["config"]["spec"])
    except (KeyError, TypeError) as err:
        raise ModelError(f"{path} is not an icnn checkpoint ({err}); retrain it with cnninterp icnn train") from None
    if shards is not None:
        check_trained_on(payload["config"], path, shards, lambda c: [("image size", spec.image_size, image_size)])
    model = build(spec)
    model.load_state_dict(payload["state_dict"])
    return model.eval(), spec
