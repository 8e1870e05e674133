"""Convert a Broden folder into shards, and decode Broden shard samples.

Sample fields (see README, "Shard format"): ``__key__`` = the index.csv row number, 7 digits;
``jpg`` (or ``png``) = the original image bytes; ``seg.npy`` = every pixel-level label layer as a
(L, sh, sw) uint16 array of label numbers (0 = unlabeled); ``json`` = the row's metadata: image
path, split, ih, iw, sh, sw, ``layers`` (the category of each of the L layers) and
``image_labels`` (category -> whole-image label numbers).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import DataError
from .broden import BrodenFolder, CoverageCounter, IndexRow
from .shards import iter_samples, npy_bytes, npy_load, write_shards

IMAGE_FIELDS = ("jpg", "png")


def sample_key(row: IndexRow) -> str:
    """Return the stable, sortable shard key of an index row (its row number, zero-padded)."""
    return f"{row.row:07d}"


def _image_field(row: IndexRow) -> str:
    suffix = Path(row.image).suffix.lower().lstrip(".")
    suffix = "jpg" if suffix == "jpeg" else suffix
    if suffix not in IMAGE_FIELDS:
        raise DataError(f"image {row.image} (index.csv line {row.row + 2}): unsupported type {suffix!r} (jpg or png)")
    return suffix


def encode_row(folder: BrodenFolder, row: IndexRow, coverage: CoverageCounter | None = None) -> dict:
    """Read one index row's files and return its shard sample (field name -> bytes).

    With ``coverage``, the row's segmentation and whole-image labels are also counted there.
    """
    seg, layer_cats = folder.read_segmentation(row)
    if coverage is not None:
        coverage.add(seg, layer_cats, row.image_labels, row.sh, row.sw)
    meta = {
        "image": row.image,
        "split": row.split,
        "ih": row.ih,
        "iw": row.iw,
        "sh": row.sh,
        "sw": row.sw,
        "layers": layer_cats,
        "image_labels": {k: v for k, v in sorted(row.image_labels.items())},
    }
    return {
        "__key__": sample_key(row),
        _image_field(row): folder.read_image_bytes(row),
        "seg.npy": npy_bytes(seg),
        "json": json.dumps(meta, sort_keys=True).encode(),
    }


def label_vocabulary(folder: BrodenFolder) -> list[dict]:
    """Return the manifest's label list: number, name, categories (with coverage), primary category."""
    return [
        {"number": lab.number, "name": lab.name, "categories": lab.categories, "primary": lab.primary}
        for lab in sorted(folder.labels.values(), key=lambda lab: lab.number)
    ]


def _split_name(row: IndexRow) -> str:
    split = row.split.strip().lower()
    if not split.isalpha():
        raise DataError(f"index.csv line {row.row + 2}: split {row.split!r} must be a word such as train or val")
    return split


def convert_broden(folder_path: str | Path, out_dir: str | Path, shard_size: int, source: dict, config: dict) -> dict:
    """Convert the Broden folder at ``folder_path`` into shards under ``out_dir``.

    ``source`` describes where the folder came from (kind, path or url, archive sha256) and
    ``config`` is the config fragment that produced it; both go into the manifest with a
    ``content_sha256`` over every file read. The manifest's ``coverage`` holds each category's
    concept coverage statistics, counted from the segmentation read here (see
    ``broden.CoverageCounter``), and ``image_size`` the largest image height and width over the
    samples, in pixels, as index.csv gives them and the decoded images confirm
    (``BrodenFolder.read_image_bytes``; ``{"max_height": H, "max_width": W}``;
    the dissection runs at the images' own size, so its memory and disk requests follow it).
    Returns the manifest (a dict).
    """
    from tqdm import tqdm

    folder = BrodenFolder(folder_path)
    digest = hashlib.sha256()
    coverage = CoverageCounter(folder.categories)
    largest = [0, 0]  # height, width
    for name in ["index.csv", "label.csv", "category.csv"] + [f"c_{c}.csv" for c in folder.categories]:
        digest.update(name.encode() + b"\0" + (folder.root / name).read_bytes())

    def samples() -> Iterator[tuple[str, dict]]:
        for row in tqdm(folder.rows, desc="broden -> shards", unit="img", mininterval=2, disable=None):
            sample = encode_row(folder, row, coverage)
            for name in sorted(k for k in sample if k != "__key__"):
                digest.update(sample["__key__"].encode() + name.encode() + sample[name])
            # encode_row's read_image_bytes decoded the image and checked it is iw x ih pixels
            largest[:] = max(largest[0], row.ih), max(largest[1], row.iw)
            yield _split_name(row), sample

    manifest = {
        "dataset": "broden",
        "categories": folder.categories,
        "labels": label_vocabulary(folder),
        "config": config,
        "sample_fields": {
            "jpg|png": "original image bytes",
            "seg.npy": "uint16 (L, sh, sw) pixel-level label layers",
            "json": "image, split, ih, iw, sh, sw, layers (category per layer), image_labels",
        },
    }

    def finished_manifest() -> dict:
        # the content digest and the coverage are complete only once every sample has been read
        return {**manifest, "coverage": coverage.statistics(folder.labels), "image_size": {"max_height": largest[0], "max_width": largest[1]},
                "source": {**source, "content_sha256": digest.hexdigest()}}

    return write_shards(samples(), out_dir, shard_size, finished_manifest)


def decode_image(data: bytes, field: str) -> np.ndarray:
    """Decode image bytes into a uint8 RGB array (H, W, 3).

    JPEGs go through simplejpeg (libjpeg-turbo, the same pixels as PIL at about twice its speed
    here); other formats, and JPEGs simplejpeg cannot read (e.g. CMYK), through PIL.
    """
    if field == "jpg":
        import simplejpeg

        try:
            return simplejpeg.decode_jpeg(data, colorspace="RGB")
        except ValueError:
            pass
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def decode_sample(raw: dict, image: bool = True) -> dict:
    """Decode a raw Broden shard sample (without its image when ``image`` is false).

    Returns a dict with ``key`` (str), ``image`` (uint8 array (H, W, 3)), ``seg`` (uint16 array
    (L, sh, sw)), ``layers`` (list of L category names), ``image_labels`` (category -> [int]),
    ``image_path`` (relative to the Broden ``images/`` folder) and the remaining metadata (split, sizes).
    """
    key = raw.get("__key__")
    for needed in ("json", "seg.npy"):
        if needed not in raw:
            raise DataError(f"shard sample {key!r} has no {needed} (fields: {', '.join(sorted(k for k in raw if not k.startswith('__')))}); rebuild the shards")
    try:
        meta = json.loads(raw["json"])
        seg = npy_load(raw["seg.npy"])
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f"shard sample {key!r}: unreadable json or seg.npy: {err}") from None
    field = next((f for f in IMAGE_FIELDS if f in raw), None)
    if field is None:
        raise DataError(f"shard sample {key!r} has no image field (jpg or png)")
    expected = (len(meta.get("layers", [])), meta.get("sh"), meta.get("sw"))
    if seg.dtype != np.uint16 or seg.shape != expected:
        raise DataError(
            f"shard sample {key!r}: seg.npy is {seg.dtype} {tuple(seg.shape)} but its json says uint16 {expected} "
            "(layers, sh, sw); the shard is inconsistent: rebuild it"
        )
    sample = {**meta, "image_path": meta["image"], "key": raw["__key__"], "seg": seg}
    if image:
        sample["image"] = decode_image(raw[field], field)
    return sample


def iter_broden(paths, images: bool = True) -> Iterator[dict]:
    """Yield decoded Broden samples (see ``decode_sample``) from the given shard files in order."""
    for raw in iter_samples(paths):
        yield decode_sample(raw, images)
