"""The baseline CNN: a torchvision architecture trained to classify Broden images by scene or object."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np

from ..data.broden_shards import iter_broden
from ..data.preprocess import to_tensor
from ..data.shards import read_manifest, shard_paths
from ..errors import DataError
from ..models.formats import torch_memory_format
from .loop import fit, pick_device, save_checkpoint, seed_everything

log = logging.getLogger(__name__)


def task_classes(manifest: dict, task: str) -> list[int]:
    """Return the sorted label numbers that are classes of ``task`` (scene or object)."""
    classes = sorted(lab["number"] for lab in manifest["labels"] if task in lab["categories"])
    if len(classes) < 2:
        raise DataError(f"task {task!r} needs at least two labels of category {task!r} in the shards; found {len(classes)}")
    return classes


def sample_target(sample: dict, task: str) -> int | None:
    """Return the label number a sample is classified as, or None if it has none for ``task``.

    scene: its first whole-image scene label; object: the object label covering most pixels.
    """
    if task == "scene":
        scenes = sample["image_labels"].get("scene", [])
        return scenes[0] if scenes else None
    layers = [i for i, cat in enumerate(sample["layers"]) if cat == "object"]
    if not layers:
        return None
    counts = np.bincount(sample["seg"][layers].ravel())
    counts[0] = 0
    return int(counts.argmax()) if counts.any() else None


def labelled_batches(paths, task: str, class_index: dict, batch_size: int, rng: np.random.Generator | None, buffer: int = 512, skipped: dict | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (images uint8 (B, H, W, 3), targets int64 (B,)) from shards, shuffled through a buffer.

    Samples without a target for ``task`` are skipped and counted in ``skipped['no_target']``.
    """
    paths = list(paths)
    if rng is not None:
        paths = [paths[i] for i in rng.permutation(len(paths))]
    pool: list[tuple[np.ndarray, int]] = []
    out: list[tuple[np.ndarray, int]] = []

    def emit(item):
        out.append(item)
        if len(out) == batch_size:
            yield _stack(out)
            out.clear()

    for sample in iter_broden(paths):
        target = sample_target(sample, task)
        if target is None or target not in class_index:
            if skipped is not None:
                skipped["no_target"] = skipped.get("no_target", 0) + 1
            continue
        pool.append((sample["image"], class_index[target]))
        if rng is not None and len(pool) >= buffer:
            yield from emit(pool.pop(int(rng.integers(len(pool)))))
        elif rng is None:
            yield from emit(pool.pop())
    if rng is not None:
        for i in rng.permutation(len(pool)):
            yield from emit(pool[i])
    if out:
        yield _stack(out)


def _stack(items):
    images = np.stack([im for im, _ in items])
    return images, np.array([t for _, t in items], dtype=np.int64)


def recalibrate_batchnorm(model, batches: Iterator, to_input, max_images: int) -> int:
    """Re-estimate every BatchNorm layer's running mean and variance on up to ``max_images`` images.

    ``batches`` yields (images, targets) as :func:`labelled_batches`; ``to_input(images)`` turns a
    uint8 (B, H, W, 3) batch into the model's float32 (B, 3, H, W) input. The statistics become
    the plain average of the per-batch statistics over the batches seen (``momentum=None``), with
    no gradient and no weight change; afterwards the model is in eval mode and each layer has its
    momentum back. Why: the running averages (momentum 0.1) trail weights that still move at the
    end of a short schedule; measured on the object-defined scene task (issue 11,
    benchmarks/RESULTS.md), a 3-epoch resnet10 scored 0.12 on held-out images with its running
    statistics and 0.83 after this. Returns the number of images used (0 without BatchNorm).
    """
    import torch
    from torch.optim.swa_utils import update_bn

    has_norm = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if not has_norm or max_images <= 0:
        return 0
    seen = 0

    def inputs():
        nonlocal seen
        for images, _ in batches:
            images = images[: max_images - seen]
            seen += len(images)
            yield to_input(images)
            if seen >= max_images:
                return

    # torch's own re-estimation: running statistics reset, momentum None (a plain average over
    # the batches), no gradient, the momenta and the mode restored
    update_bn(inputs(), model)
    model.eval()
    return seen


def train_baseline(shard_dir: str | Path, out: str | Path, *, arch: str, task: str, epochs: int, batch_size: int, lr: float, momentum: float, weight_decay: float, preprocess: str, seed: int, device: str = "auto", bn_images: int = 1024) -> dict:
    """Train ``arch`` on the Broden train shards for ``task`` and write the checkpoint to ``out``.

    After the last epoch, BatchNorm running statistics are re-estimated on ``bn_images`` training
    images (:func:`recalibrate_batchnorm`; 0 keeps the running averages). Returns a summary dict
    (classes, per-epoch history, validation accuracy, skipped counts, ``bn_recalibrated_images``),
    which is also stored in the checkpoint and in ``config.json`` beside it.
    """
    import torch

    from ..models.backbones import build_arch

    seed_everything(seed)
    manifest = read_manifest(shard_dir)
    classes = task_classes(manifest, task)
    class_index = {number: i for i, number in enumerate(classes)}
    dev = pick_device(device)
    torch.manual_seed(seed)
    model = build_arch(arch, len(classes))
    # channels-last for CNNs: 1.1-1.2x per training step on CPU (benchmarks/RESULTS.md)
    layout = torch_memory_format(model, "auto")
    model.to(memory_format=layout)
    train_paths = shard_paths(shard_dir, ["train"])
    skipped: dict = {}

    def batches(epoch):
        rng = np.random.default_rng([seed, epoch])
        skipped.clear()
        return labelled_batches(train_paths, task, class_index, batch_size, rng, skipped=skipped)

    def to_input(images):
        return to_tensor(images, preprocess).to(dev).contiguous(memory_format=layout)

    def step(model, batch, device):
        images, targets = batch
        x = to_input(images)
        y = torch.from_numpy(targets).to(device)
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean().item()
        return loss, {"accuracy": acc}, len(targets)

    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    history = fit(model, batches, step, optimizer, epochs, dev, scheduler, desc=f"{arch} {task}")
    if not history or history[-1]["samples"] == 0:
        raise DataError(f"no training sample in {shard_dir} has a {task} label")
    calibration = labelled_batches(train_paths, task, class_index, batch_size, np.random.default_rng([seed, epochs]))
    recalibrated = recalibrate_batchnorm(model, calibration, to_input, bn_images)
    summary = {
        "classes": classes,
        "class_names": [next(l["name"] for l in manifest["labels"] if l["number"] == c) for c in classes],
        "task": task,
        "history": history,
        "skipped_without_target": skipped.get("no_target", 0),
        "bn_recalibrated_images": recalibrated,
        "val_accuracy": evaluate(model, shard_dir, task, class_index, preprocess, dev),
    }
    config = {"arch": arch, "task": task, "epochs": epochs, "batch_size": batch_size, "lr": lr, "momentum": momentum, "weight_decay": weight_decay, "preprocess": preprocess, "seed": seed, "bn_images": bn_images}
    save_checkpoint(out, model, arch, len(classes), config, {"summary": summary})
    return summary


def evaluate(model, shard_dir, task: str, class_index: dict, preprocess: str, device) -> float | None:
    """Return top-1 accuracy on the ``val`` split (None if the shards have no val split)."""
    import torch

    manifest = read_manifest(shard_dir)
    if "val" not in manifest["splits"]:
        return None
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, targets in labelled_batches(shard_paths(shard_dir, ["val"]), task, class_index, 128, None):
            pred = model(to_tensor(images, preprocess).to(device)).argmax(1).cpu().numpy()
            correct += int((pred == targets).sum())
            total += len(targets)
    return correct / total if total else None
