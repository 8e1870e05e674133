"""A reader of the CUB-200-2011 layout, converted into ``parts`` shards (same format as ``data.parts``).

Layout (as published, every file space-separated, ids 1-based):

    <root>/images.txt               image_id image_name          (relative to <root>/images/)
    <root>/image_class_labels.txt   image_id class_id
    <root>/train_test_split.txt     image_id is_training_image   (1 train, 0 test)
    <root>/bounding_boxes.txt       image_id x y width height
    <root>/classes.txt              class_id class_name          (optional; names default to class_<id>)
    <root>/parts/parts.txt          part_id part_name            (names may hold spaces)
    <root>/parts/part_locs.txt      image_id part_id x y visible (pixels; hidden parts: visible 0)

Conversion: each image is resized to ``image_size``² (landmarks scaled with it); CUB has no part
masks, so the mask of a part is a disc of ``disc_radius`` output pixels around each *visible*
landmark (where discs overlap, the higher part id wins). Errors name the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from .parts import encode_sample, part_manifest
from .shards import write_shards

FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt", "parts/parts.txt", "parts/part_locs.txt")


@dataclass
class CubImage:
    """One image's annotations: ``landmarks`` float64 (P, 2) (x, y) original pixels, ``visible`` bool (P,),
    ``lines`` (P,) the part_locs.txt line of each landmark (0 where none was given)."""

    image_id: int
    name: str
    class_id: int = 0
    train: bool = True
    bbox: tuple = (0.0, 0.0, 0.0, 0.0)
    landmarks: np.ndarray = None
    visible: np.ndarray = None
    lines: list = field(default_factory=list)


def _rows(path: Path, fields: int, rest: bool = False):
    """Yield (line number, fields) of a space-separated file; ``rest``: the last field takes the remainder."""
    if not path.is_file():
        raise DataError(f"{path} is missing: a CUB-200-2011 folder needs {', '.join(FILES)}")
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=fields - 1) if rest else line.split()
        if len(parts) != fields:
            raise DataError(f"{path} line {number}: expected {fields} fields, got {len(parts)}: {line!r}")
        yield number, parts


def _num(path: Path, number: int, text: str, kind=int):
    try:
        return kind(text)
    except ValueError:
        raise DataError(f"{path} line {number}: {text!r} is not a {'number' if kind is float else 'whole number'}") from None


class CubFolder:
    """The annotations of a CUB-200-2011 folder, read and checked (images are opened at conversion)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"CUB folder {self.root} does not exist")
        self.images: dict[int, CubImage] = {}
        self.image_lines: dict[int, int] = {}
        path = self.root / "images.txt"
        for n, (i, name) in _rows(path, 2, rest=True):
            image_id = _num(path, n, i)
            if image_id in self.images:
                raise DataError(f"{path} line {n}: image id {image_id} is listed twice")
            self.images[image_id] = CubImage(image_id, name.strip())
            self.image_lines[image_id] = n
        self.parts = self._read_parts()
        for image in self.images.values():
            image.landmarks = np.zeros((len(self.parts), 2))
            image.visible = np.zeros(len(self.parts), dtype=bool)
            image.lines = [0] * len(self.parts)
        self._per_image("image_class_labels.txt", 2, lambda img, p, n, v: setattr(img, "class_id", _num(p, n, v[0])))
        self._per_image("train_test_split.txt", 2, lambda img, p, n, v: setattr(img, "train", _num(p, n, v[0]) == 1))
        self._per_image("bounding_boxes.txt", 5, lambda img, p, n, v: setattr(img, "bbox", tuple(_num(p, n, x, float) for x in v)))
        self._read_locs()
        self.classes = self._read_classes()

    def _id(self, path: Path, number: int, text: str) -> CubImage:
        image_id = _num(path, number, text)
        if image_id not in self.images:
            raise DataError(f"{path} line {number}: image id {image_id} is not listed in {self.root / 'images.txt'}")
        return self.images[image_id]

    def _per_image(self, name: str, fields: int, setter) -> None:
        path = self.root / name
        for n, values in _rows(path, fields):
            setter(self._id(path, n, values[0]), path, n, values[1:])

    def _read_parts(self) -> list[str]:
        path = self.root / "parts" / "parts.txt"
        names = {}
        for n, (i, name) in _rows(path, 2, rest=True):
            names[_num(path, n, i)] = name.strip()
        if sorted(names) != list(range(1, len(names) + 1)):
            raise DataError(f"{path}: part ids must be 1..{len(names)} without gaps, got {sorted(names)}")
        return [names[i] for i in range(1, len(names) + 1)]

    def _read_locs(self) -> None:
        path = self.root / "parts" / "part_locs.txt"
        for n, (i, p, x, y, v) in _rows(path, 5):
            image = self._id(path, n, i)
            part = _num(path, n, p)
            if not 1 <= part <= len(self.parts):
                raise DataError(f"{path} line {n}: part id {part} is out of range 1..{len(self.parts)} ({self.root / 'parts/parts.txt'})")
            image.landmarks[part - 1] = (_num(path, n, x, float), _num(path, n, y, float))
            image.visible[part - 1] = _num(path, n, v) == 1
            image.lines[part - 1] = n

    def _read_classes(self) -> list[str]:
        ids = sorted({img.class_id for img in self.images.values()})
        path = self.root / "classes.txt"
        names = {}
        if path.is_file():
            for n, (i, name) in _rows(path, 2, rest=True):
                names[_num(path, n, i)] = name.strip()
        top = max(ids) if ids else 0
        return [names.get(i, f"class_{i}") for i in range(1, top + 1)]

    def load(self, image: CubImage, image_size: int, disc_radius: float) -> dict:
        """Read and resize one image: ``image`` uint8 (S, S, 3), ``landmarks`` float64 (P, 2) in output
        pixels (NaN where hidden), ``visible`` bool (P,), ``seg`` uint16 (S, S) disc masks.
        DataError naming the file and line for a missing image or a visible landmark outside it."""
        from PIL import Image

        path = self.root / "images" / image.name
        if not path.is_file():
            raise DataError(f"image {path} is missing ({self.root / 'images.txt'} line {self.image_lines[image.image_id]})")
        with Image.open(path) as img:
            w, h = img.size
            pixels = np.asarray(img.convert("RGB").resize((image_size, image_size), Image.BILINEAR))
        for k in np.flatnonzero(image.visible):
            x, y = image.landmarks[k]
            if not (0 <= x <= w and 0 <= y <= h):
                raise DataError(f"{self.root / 'parts/part_locs.txt'} line {image.lines[k]}: landmark ({x}, {y}) of part "
                                f"{k + 1} ({self.parts[k]}) lies outside image {image.name} ({w}x{h})")
        scale = np.array([image_size / w, image_size / h])
        landmarks = np.where(image.visible[:, None], image.landmarks * scale, np.nan)
        return {"image": pixels, "landmarks": landmarks, "visible": image.visible.copy(),
                "seg": disc_masks(landmarks, image.visible, image_size, disc_radius)}


def disc_masks(landmarks: np.ndarray, visible: np.ndarray, size: int, radius: float) -> np.ndarray:
    """Part label map uint16 (S, S): label p + 1 on pixels whose centre lies within ``radius`` of the
    visible landmark p (float (P, 2), (x, y), pixel k covering [k, k + 1)); higher p wins on overlap."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    seg = np.zeros((size, size), np.uint16)
    for p in np.flatnonzero(visible):
        x, y = landmarks[p]
        seg[(xx - x) ** 2 + (yy - y) ** 2 <= radius**2] = p + 1
    return seg


def convert_cub(root: str | Path, out_dir: str | Path, *, image_size: int, disc_radius: float, shard_size: int) -> dict:
    """Convert a CUB-200-2011 folder into parts shards (splits ``train``/``test``); return the manifest.
    ``cls`` is the CUB class id − 1."""
    folder = CubFolder(root)

    def samples():
        for split in ("test", "train"):
            for image_id in sorted(folder.images):
                image = folder.images[image_id]
                if image.train != (split == "train"):
                    continue
                r = folder.load(image, image_size, disc_radius)
                yield split, encode_sample(f"cub_{image_id:06d}", split, r["image"], r["seg"], image.class_id - 1, r["landmarks"], r["visible"])

    config = {"image_size": image_size, "disc_radius": disc_radius}
    manifest = part_manifest(folder.parts, folder.classes, {"kind": "cub-200-2011", "path": str(root)}, config, image_size)
    return write_shards(samples(), out_dir, shard_size, manifest)
