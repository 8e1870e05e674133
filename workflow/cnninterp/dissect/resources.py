"""Memory and disk a dissection job needs, from the data and the model (for SLURM's requests).

Terms (bytes), with S = sum over the dissected layers of U*h*w (values per image), Ut = sum of
units U, k top images, B the batch size, I the images one job reads, C the label count:
- every job: ``BASE_MB`` (Python, torch, numba, the model; measured by benchmarks/scale.py);
- quantile job: 8 B x 8,192 x Ut (level-0 histograms) + 4 B x k x S (top-image maps)
  + ACTIVATION_FACTOR x 4 B x B x S (the forward pass, hooked maps, candidates of one batch);
  disk: the activation cache, at most 4 B x I x S (maps; candidates are kept only when smaller);
- threshold merge: twice the quantile part state (merged + one being read), one cache batch;
- tally job: the batch term, plus 8 B x Ut x (C + 1) x 2 (the sums and their copies);
- gather: 8 B x Ut x (C + 1) x 2 per tally (one read at a time, plus the sum) + the IoU table,
  about 100 B a row (Ut x concepts rows) + the chance level's per-image rows, 4 B x Ut per image
  (every image counted: an upper bound of those holding a whole-image label), twice (merged and
  reordered), its permutations, 12 B x P x images (int32, and the int64 argsort that inverts
  them), and one batch of permuted rows (``chance.CHUNK_BYTES``); a tally job also holds its images' rows.
Figures are rounded up to the next 100 MB. Architectures whose layer shapes are not known here
get ``None`` (the caller keeps its profile's default).
"""

from __future__ import annotations

import math

from .chance import CHUNK_BYTES as NULL_CHUNK_BYTES, DEFAULT_PERMUTATIONS as NULL_PERMUTATIONS

BASE_MB = {"quantiles": 1200, "thresholds": 1000, "tally": 900, "gather": 1000}
ACTIVATION_FACTOR = 8  # the whole network's activations of a batch, relative to the hooked maps
HIST_BYTES = 8 * 8192
TABLE_ROW_BYTES = 100

# (units per stage layer1..layer4, stride of layer1..layer4) by family
_RESNET_BASIC = ((64, 128, 256, 512), (4, 8, 16, 32))
_RESNET_BOTTLENECK = ((256, 512, 1024, 2048), (4, 8, 16, 32))
_FAMILIES = {
    "resnet10": _RESNET_BASIC,
    "resnet18": _RESNET_BASIC,
    "resnet34": _RESNET_BASIC,
    "resnet50": _RESNET_BOTTLENECK,
    "resnet101": _RESNET_BOTTLENECK,
    "resnet152": _RESNET_BOTTLENECK,
}


def layer_shapes(arch: str, layers: list[str], image_size: int | tuple[int, int]) -> list[tuple[int, int, int]] | None:
    """(U, h, w) of each of ``layers`` of torchvision-style ``arch`` on images of ``image_size``
    px (an int: square; or (height, width)), or None if a layer is not a known stage output of a
    known architecture. A stage of stride s maps H px to ceil(H / s) (each stride-2 step of a
    torchvision ResNet, padded as it is, rounds up)."""
    family = _FAMILIES.get(arch)
    if family is None:
        return None
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    out = []
    for name in layers:
        if name not in ("layer1", "layer2", "layer3", "layer4"):
            return None
        i = int(name[-1]) - 1
        stride = family[1][i]
        out.append((family[0][i], math.ceil(height / stride), math.ceil(width / stride)))
    return out


def manifest_image_size(manifest: dict, fallback: int | None = None) -> tuple[int, int] | None:
    """(height, width) of the largest images of a Broden shard manifest, as the sharding recorded
    it (``image_size``: ``max_height``, ``max_width``, from the image files); else ``fallback``
    (an int, square: the configured size of synthetic data) as (fallback, fallback); else None
    (unknown: a manifest written before sizes were recorded, whose shards are rebuilt anyway
    since the sharding code changed)."""
    size = manifest.get("image_size") or {}
    height, width = size.get("max_height"), size.get("max_width")
    if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
        return height, width
    return (fallback, fallback) if fallback else None


def _mb(nbytes: float, base: int) -> int:
    return int(math.ceil((base + nbytes / 2**20) / 100.0) * 100)


def job_resources(stage: str, shapes, batch_size: int, images_per_job: int, top_images: int, labels: int, tallies: int = 1) -> dict:
    """``{"mem_mb": ..., "disk_mb": ...}`` of one job of ``stage`` (quantiles, thresholds, tally,
    gather) for layers of ``shapes`` [(U, h, w)], or {} when the shapes are unknown (None)."""
    if shapes is None:
        return {}
    per_image = sum(u * h * w for u, h, w in shapes)
    units = sum(u for u, _, _ in shapes)
    hist = HIST_BYTES * units
    tops = 4 * top_images * per_image
    batch = ACTIVATION_FACTOR * 4 * batch_size * per_image
    sums = 8 * units * (labels + 1) * 2
    if stage == "quantiles":
        return {"mem_mb": _mb(hist + tops + batch, BASE_MB[stage]), "disk_mb": _mb(4 * images_per_job * per_image, 0)}
    if stage == "thresholds":
        return {"mem_mb": _mb(2 * (hist + tops) + 4 * batch_size * per_image * 3, BASE_MB[stage])}
    rows = 4 * units * images_per_job  # the chance level's per-image rows of one job's images
    if stage == "tally":
        return {"mem_mb": _mb(batch + sums + rows, BASE_MB[stage])}
    if stage == "gather":
        images = images_per_job * tallies
        null = 2 * rows * tallies + 12 * NULL_PERMUTATIONS * images + NULL_CHUNK_BYTES
        return {"mem_mb": _mb(2 * sums + units * labels * TABLE_ROW_BYTES + tops + null, BASE_MB[stage])}
    raise ValueError(f"unknown dissection stage {stage!r}")
