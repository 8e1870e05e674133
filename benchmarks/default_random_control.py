"""Issue 11 (item 3): why does the random resnet10 detect 21 unique concepts in layer4?

Dissects random networks on config.yaml's probe set (generated into ``--out`` unless there) with
config.yaml's dissection settings and prints, per variant and layer, detectors and unique concepts
per category as JSON. Variants (``--variants``):

* ``resnet10``: the control the pipeline dissects (torch's default init, BN running statistics
  untouched: mean 0, variance 1, so BN is the identity in eval mode).
* ``resnet10_bn_calibrated``: the same weights, BN running statistics re-estimated on 256 probe
  images (train-mode forward passes, no gradient), so every channel is standardised as a trained
  network's would be.
* ``resnet10_no_skip``: the same weights with the identity (shortcut) paths removed from every
  BasicBlock: layer4 sees layer1's features only through three more random convolutions.
* ``alexnet``: torchvision's AlexNet (no BN, no skips; the paper's random control), ``features``
  conv layers 1, 2, 3 and 5 (named features.0/3/6/10).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/default_random_control.py --out /tmp/random
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

CATEGORIES = ["color", "object", "part", "material", "scene", "texture"]
VARIANTS = ("resnet10", "resnet10_bn_calibrated", "resnet10_no_skip", "alexnet")


def _no_skip(model):
    """Return ``model`` (a torchvision ResNet) with every BasicBlock's identity path removed, in place."""
    import types

    from torchvision.models.resnet import BasicBlock

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)))

    for m in model.modules():
        if isinstance(m, BasicBlock):
            m.forward = types.MethodType(forward, m)
    return model


def _calibrate_bn(model, shard_dir: Path, n_images: int = 256):
    """Re-estimate every BatchNorm's running mean/var on ``n_images`` probe images (cumulative average)."""
    import numpy as np
    import torch

    from cnninterp.data.broden_shards import iter_broden
    from cnninterp.data.preprocess import to_tensor
    from cnninterp.data.shards import shard_paths

    images = []
    for sample in iter_broden(shard_paths(shard_dir)):
        images.append(sample["image"])
        if len(images) == n_images:
            break
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(0, len(images), 64):
            model(to_tensor(np.stack(images[i:i + 64]), "imagenet"))
    return model.eval()


def build(variant: str, seed: int, shard_dir: Path):
    """Return (random model in eval mode, its dissected layer names) for ``variant``."""
    from cnninterp.models.backbones import random_model

    if variant == "alexnet":
        return random_model("alexnet", seed), ["features.0", "features.3", "features.6", "features.10"]
    model = random_model("resnet10", seed)
    if variant == "resnet10_no_skip":
        _no_skip(model)
    elif variant == "resnet10_bn_calibrated":
        _calibrate_bn(model, shard_dir)
    return model, ["layer1", "layer2", "layer3", "layer4"]


def main() -> None:
    """Dissect the asked variants (see the module docstring) and print the JSON record."""
    import torch

    from cnninterp.config import dissect_settings, load_config
    from cnninterp.data.broden_shards import convert_broden
    from cnninterp.data.synthetic_broden import generate_broden
    from cnninterp.dissect.pipeline import dissect

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--seeds", nargs="+", type=int, default=None, help="default: the pipeline's init_seed")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(__file__).resolve().parents[1]
    config = load_config(root / "config.yaml")
    syn = config["broden"]["synthetic"]
    shards = args.out / "probe_shards"
    if not (shards / "manifest.json").exists():
        generate_broden(args.out / "probe", syn["n_images"], syn["image_size"], syn["seed"], syn["val_fraction"])
        convert_broden(args.out / "probe", shards, config["broden"]["shard_size"], {"kind": "synthetic"}, {})
    s = dissect_settings(config, "baseline_random")
    record = {}
    for seed in args.seeds or [s["init_seed"]]:
        for variant in args.variants:
            start = time.time()
            model, layers = build(variant, seed, shards)
            summary = dissect(model, layers, shards, args.out / f"{variant}_{seed}", s["quantile"], s["iou_threshold"], s["denominator"], batch_size=s["batch_size"])
            record[f"{variant} seed {seed}"] = {
                name: {"detectors": l["detectors"], "unique": l["unique_concepts"],
                       "per_category": {c: l["detectors_per_category"].get(c, 0) for c in CATEGORIES if l["detectors_per_category"].get(c, 0)},
                       "unique_per_category": {c: l["unique_concepts_per_category"].get(c, 0) for c in CATEGORIES if l["unique_concepts_per_category"].get(c, 0)}}
                for name, l in summary.items()
            }
            record[f"{variant} seed {seed}"]["wall_s"] = round(time.time() - start, 1)
            print(json.dumps({f"{variant} seed {seed}": record[f"{variant} seed {seed}"]}), flush=True)


if __name__ == "__main__":
    main()
