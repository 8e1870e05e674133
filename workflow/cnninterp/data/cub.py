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
landmark (where discs overlap, the higher part id wins). Errors name the file and line, among
them a repeated (image, part) line and a visible or is_training_image flag other than 0 or 1.

``write_cub_parts`` builds the single-category ICNN task (birds, class 1, against negatives,
class 0). There is no conversion that keeps CUB's 200 species as classes: the ICNN task reads
class 0 as the negative class, and species 001 would have become it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
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


def _flag(path: Path, number: int, name: str, text: str) -> bool:
    """A 0/1 flag as CUB writes it (exactly ``0`` or ``1``); DataError naming the file and line otherwise."""
    if text not in ("0", "1"):
        raise DataError(f"{path} line {number}: {name} is {text!r}, expected 0 or 1")
    return text == "1"


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
        self._per_image("train_test_split.txt", 2, lambda img, p, n, v: setattr(img, "train", _flag(p, n, "is_training_image", v[0])))
        self._per_image("bounding_boxes.txt", 5, lambda img, p, n, v: setattr(img, "bbox", tuple(_num(p, n, x, float) for x in v)))
        self._read_locs()
        self.classes = self._read_classes()

    def _id(self, path: Path, number: int, text: str) -> CubImage:
        image_id = _num(path, number, text)
        if image_id not in self.images:
            raise DataError(f"{path} line {number}: image id {image_id} is not listed in {self.root / 'images.txt'}")
        return self.images[image_id]

    def _per_image(self, name: str, fields: int, setter) -> None:
        """Apply ``setter`` to each line of a one-line-per-image file; every image of images.txt
        must have exactly one line (a missing one had silently kept the defaults: class 0, train)."""
        path = self.root / name
        seen: dict[int, int] = {}
        for n, values in _rows(path, fields):
            image = self._id(path, n, values[0])
            if image.image_id in seen:
                raise DataError(f"{path} line {n}: image id {image.image_id} is listed twice (first on line {seen[image.image_id]})")
            seen[image.image_id] = n
            setter(image, path, n, values[1:])
        missing = sorted(set(self.images) - set(seen))
        if missing:
            names = ", ".join(f"{i} ({self.images[i].name})" for i in missing[:3])
            raise DataError(f"{path}: {len(missing)} image(s) of images.txt have no line, e.g. id {names}")

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
            if image.lines[part - 1]:
                raise DataError(f"{path} line {n}: image {image.image_id}, part {part} ({self.parts[part - 1]}) is listed twice "
                                f"(first on line {image.lines[part - 1]})")
            image.landmarks[part - 1] = (_num(path, n, x, float), _num(path, n, y, float))
            image.visible[part - 1] = _flag(path, n, "visible", v)
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
        DataError naming the file and line for a missing, unreadable or truncated image or a visible landmark outside it."""
        from PIL import Image, UnidentifiedImageError

        path = self.root / "images" / image.name
        where = f"{self.root / 'images.txt'} line {self.image_lines[image.image_id]}"
        if not path.is_file():
            raise DataError(f"image {path} is missing ({where})")
        try:
            with Image.open(path) as img:
                w, h = img.size
                pixels = np.asarray(img.convert("RGB").resize((image_size, image_size), Image.BILINEAR))
        except (OSError, UnidentifiedImageError) as err:
            raise DataError(f"image {path} ({where}) cannot be read, corrupt or truncated: {err}; replace it with the "
                            "file of the CUB-200-2011 release") from None
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


def check_sizes(image_size: int, disc_radius: float) -> None:
    """ConfigError unless ``image_size`` >= 1 and ``disc_radius`` a finite number > 0 (a NaN radius drew
    no part masks at all, a negative one behaved as its absolute value)."""
    if int(image_size) < 1:
        raise ConfigError(f"icnn.data.image_size must be >= 1, got {image_size}")
    if not 0.0 < float(disc_radius) < float("inf"):
        raise ConfigError(f"icnn.data.disc_radius must be a finite number > 0, got {disc_radius}")


#: the classes of the single-category ICNN task built from CUB (class number = index)
BIRD_CLASSES = ("negative", "bird")
NEGATIVE_SUFFIXES = (".jpg", ".jpeg", ".png")


def check_cub_settings(cub_root: str, negatives_root: str = "", root_key: str = "icnn.data.cub_root",
                       negatives_key: str = "icnn.data.negatives_root") -> None:
    """Check, before any job is planned, that ``cub_root`` is a CUB-200-2011 folder holding every
    annotation file in ``FILES`` and that ``negatives_root`` (if set) is a folder. ConfigError
    naming the setting (``root_key``/``negatives_key``), the value and the missing file otherwise."""
    from ..errors import ConfigError

    if not cub_root:
        raise ConfigError(f"{root_key} is not set but the data source is 'cub': give the CUB_200_2011 folder (with images.txt and parts/)")
    root = Path(cub_root)
    if not root.is_dir():
        raise ConfigError(f"{root_key}: {cub_root!r} is not an existing folder (the data source is 'cub')")
    missing = [name for name in FILES if not (root / name).is_file()]
    if missing:
        raise ConfigError(f"{root_key}: {root / missing[0]} is missing" + (f" (also {', '.join(missing[1:])})" if missing[1:] else "")
                          + f"; a CUB-200-2011 folder needs {', '.join(FILES)}")
    if negatives_root and not Path(negatives_root).is_dir():
        raise ConfigError(f"{negatives_key}: {negatives_root!r} is not an existing folder (leave it empty for synthetic negatives)")


def negative_files(folder: str | Path) -> list[Path]:
    """The images (.jpg/.jpeg/.png, any case) under ``folder``, recursively, sorted by relative path.
    DataError if the folder is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"negatives folder {folder} does not exist")
    files = sorted((p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in NEGATIVE_SUFFIXES),
                   key=lambda p: p.relative_to(folder).as_posix())
    if len(files) < 2:
        raise DataError(f"negatives folder {folder} holds {len(files)} images (.jpg/.jpeg/.png); it needs at least 2 (one train, one test)")
    return files


def _load_negative(path: Path, image_size: int) -> np.ndarray:
    """uint8 (S, S, 3): one negative image, resized like the birds; DataError naming the file if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB").resize((image_size, image_size), Image.BILINEAR))
    except (OSError, UnidentifiedImageError) as err:
        raise DataError(f"negative image {path} cannot be read: {err}") from None


def _synthetic_negative(seed: int, split: str, index: int, image_size: int) -> np.ndarray:
    """uint8 (S, S, 3): a cluttered background of the parts generator (smooth colour noise, distractor
    shapes, pixel noise), no object; drawn from its own generator seeded (seed, split, index)."""
    from .parts import _background

    rng = np.random.default_rng([seed, int.from_bytes(split.encode()[:8], "little"), index])
    pixels = _background(rng, image_size) + rng.normal(0, 10, (image_size, image_size, 3))
    return np.round(np.clip(pixels, 0, 255)).astype(np.uint8)


def write_cub_parts(root: str | Path, out_dir: str | Path, probe_dir: str | Path, *, image_size: int, disc_radius: float,
                    positive_fraction: float, probe_images: int, seed: int, shard_size: int, negatives_root: str = "") -> dict:
    """The single-category ICNN task from a CUB-200-2011 folder: bird (class 1) against negatives (class 0).

    Birds: every image of the folder, split by ``train_test_split.txt``, resized to ``image_size``²,
    all of CUB's parts (``parts/parts.txt``, 15 in the release) as landmarks and disc masks of
    ``disc_radius`` output pixels (see ``CubFolder.load``). Negatives (CUB has none):
    - ``negatives_root`` empty: cluttered backgrounds of the synthetic parts generator, as many per split
      as make birds ``positive_fraction`` of the split;
    - ``negatives_root`` a folder: all of its images (sorted by relative path; even positions train,
      odd test); ``positive_fraction`` is then not used.
    The probe set (``probe_dir``, split ``probe``, for the dissection) is the first ``probe_images``
    test birds by image id. Writes both shard folders; returns the main manifest. DataError naming
    the file (and line) on bad input; nothing is left as a finished manifest then.
    """
    if not 0.0 < positive_fraction < 1.0:
        raise DataError(f"cub: positive_fraction must lie in (0, 1), got {positive_fraction}")
    check_sizes(image_size, disc_radius)
    folder = CubFolder(root)
    birds = {split: [i for i in sorted(folder.images) if folder.images[i].train == (split == "train")] for split in ("test", "train")}
    for split, ids in birds.items():
        if not ids:
            raise DataError(f"{Path(root) / 'train_test_split.txt'} puts no image in the {split} split; the ICNN task needs both")
    files = negative_files(negatives_root) if negatives_root else None
    if files is not None:
        negatives = {"train": files[0::2], "test": files[1::2]}
        counts = {s: len(v) for s, v in negatives.items()}
    else:
        counts = {s: max(1, round(len(ids) * (1 - positive_fraction) / positive_fraction)) for s, ids in birds.items()}

    def bird(image_id: int, split: str) -> dict:
        r = folder.load(folder.images[image_id], image_size, disc_radius)
        return encode_sample(f"cub_{image_id:06d}", split, r["image"], r["seg"], 1, r["landmarks"], r["visible"])

    empty_lm = np.full((len(folder.parts), 2), np.nan)
    empty_vis = np.zeros(len(folder.parts), dtype=bool)
    empty_seg = np.zeros((image_size, image_size), np.uint16)

    def samples():
        for split in ("test", "train"):
            for image_id in birds[split]:
                yield split, bird(image_id, split)
            for k in range(counts[split]):
                pixels = _load_negative(negatives[split][k], image_size) if files is not None else _synthetic_negative(seed, split, k, image_size)
                yield split, encode_sample(f"neg_{k:06d}", split, pixels, empty_seg, 0, empty_lm, empty_vis)

    negative_source = {"kind": "folder", "path": str(negatives_root)} if files is not None else {"kind": "synthetic backgrounds", "seed": seed}
    config = {"image_size": image_size, "disc_radius": disc_radius, "positive_fraction": positive_fraction, "negatives": negative_source}
    source = {"kind": "cub-200-2011", "path": str(root)}
    manifest = write_shards(samples(), out_dir, shard_size, part_manifest(folder.parts, list(BIRD_CLASSES), source, config, image_size))
    probe_ids = birds["test"][:probe_images]
    probe_config = {**config, "probe": f"first {len(probe_ids)} test birds by image id"}
    write_shards(((("probe", bird(i, "probe")) for i in probe_ids)), probe_dir, shard_size,
                 part_manifest(folder.parts, list(BIRD_CLASSES), source, probe_config, image_size))
    return manifest
