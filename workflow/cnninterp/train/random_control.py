"""The random control of a trained model, given the trained model's BatchNorm treatment.

A trained baseline's BatchNorm running statistics are re-estimated on ``bn_images`` of its
training images after the last epoch (``train.baseline.recalibrate_batchnorm``). A control that is
only ``torch``'s random initialisation keeps BatchNorm's initial statistics (mean 0, variance 1:
the identity in eval mode), so it differs from the trained model in two things, its weights and
the normalisation of every channel. This control gets the same re-estimation (as many images of
the same training data, the same batch size and preprocessing), so it differs in the weights
alone. Its images are drawn with the seed ``[seed, 0]`` (the trained model's with ``[seed,
epochs]``): a change of the trained model's budget does not change its control. Measured on the default probe (issue 11,
benchmarks/RESULTS.md): with the identity BatchNorm a random resnet10 has 24-30 layer4 detectors
above chance over three init seeds, with this treatment (the same weights) 2, 1 and 1 (the trained baseline 46).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.preprocess import to_tensor
from ..data.shards import read_manifest, shard_paths
from ..errors import DataError
from .baseline import labelled_batches, recalibrate_batchnorm, task_classes
from .loop import save_checkpoint


def random_control(shard_dir: str | Path, out: str | Path, *, arch: str, task: str, init_seed: int, batch_size: int, bn_images: int,
                   preprocess: str, seed: int) -> dict:
    """Write a checkpoint (``train.loop.save_checkpoint`` format, ``config.json`` beside it) of
    ``arch`` randomly initialised under ``init_seed`` (``models.backbones.random_model``) whose
    BatchNorm running statistics are re-estimated on ``bn_images`` images of the ``train`` split
    of ``shard_dir`` for ``task`` in batches of ``batch_size`` shuffled with the seed ``[seed, 0]``
    (``train.baseline.labelled_batches``; the trained model's settings). The classifier head is
    ``INIT_CLASSES`` wide, as in the control with BatchNorm's initial statistics (``--model
    torchvision:<arch> --init-seed``), so the two controls of one init seed have the same weights
    and differ in the BatchNorm statistics alone (the head's size changes every layer's random
    draws); no layer the dissection reads depends on the head. Returns the summary stored in the checkpoint: ``classes``,
    ``bn_recalibrated_images`` (0 for an architecture without BatchNorm). DataError if no training
    image has a ``task`` label."""
    from ..models.backbones import INIT_CLASSES, random_model

    manifest = read_manifest(shard_dir)
    classes = task_classes(manifest, task)
    class_index = {number: i for i, number in enumerate(classes)}
    model = random_model(arch, init_seed)
    batches = labelled_batches(shard_paths(shard_dir, ["train"]), task, class_index, batch_size, np.random.default_rng([seed, 0]))
    used = recalibrate_batchnorm(model, batches, lambda images: to_tensor(images, preprocess), bn_images)
    if bn_images > 0 and used == 0 and any("running_mean" in k for k in model.state_dict()):
        raise DataError(f"no training image in {shard_dir} has a {task} label: nothing to estimate BatchNorm statistics on")
    summary = {"classes": classes, "bn_recalibrated_images": used}
    config = {"arch": arch, "task": task, "init_seed": init_seed, "batch_size": batch_size, "bn_images": bn_images,
              "preprocess": preprocess, "seed": seed, "random_init": True}
    save_checkpoint(out, model, arch, INIT_CLASSES, config, {"summary": summary})
    return summary
