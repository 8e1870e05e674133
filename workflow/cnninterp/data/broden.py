"""Reader of the Broden dataset's on-disk layout (real ``broden1_*`` folders and synthetic ones).

Layout facts this reader relies on:
- ``index.csv``: ``image,split,ih,iw,sh,sw,color,object,part,material,scene,texture``; image and
  PNG paths are relative to ``images/``; a category cell is empty, a ``;``-list of segmentation
  PNGs (pixel-level layers) or a ``;``-list of decimal label numbers (whole-image labels).
- segmentation PNGs have size (sw, sh) and encode the label as R + 256*G; 0 is unlabeled (RGB, RGBA
  or palette PNGs; a mask of another mode, e.g. grayscale L or 16-bit, is a DataError naming it).
- ``label.csv``: ``number,name,category,frequency,coverage,syns``, category like ``material(36);object(3)``.
- ``category.csv``: ``name,first,last,count,frequency``; ``c_<category>.csv``: ``code,number,name,frequency,coverage``.
Each label's primary category is the category with the largest coverage in the ``c_*.csv`` files.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError

INDEX_COLUMNS = ("image", "split", "ih", "iw", "sh", "sw")
SPLITS = ("train", "val")
LABEL_COLUMNS = ("number", "name", "category")
CATEGORY_COLUMNS = ("name",)
CCAT_COLUMNS = ("number", "coverage")
MASK_MODES = ("RGB", "RGBA", "P")  # PNG modes whose RGB is the label code R + 256·G
_CATEGORY_ITEM = re.compile(r"^\s*([A-Za-z_]+)\s*(?:\((\d+)\))?\s*$")


@dataclass(frozen=True)
class Label:
    """One concept: its global number, name, categories (name -> coverage) and primary category."""

    number: int
    name: str
    categories: dict
    primary: str


@dataclass
class IndexRow:
    """One image of ``index.csv``: paths are relative to ``images/``."""

    row: int
    image: str
    split: str
    ih: int
    iw: int
    sh: int
    sw: int
    layers: list = field(default_factory=list)  # [(category, png path)] in column order
    image_labels: dict = field(default_factory=dict)  # category -> [label numbers]


def read_csv(path: Path, required: tuple[str, ...]) -> list[dict]:
    """Read a CSV with a header into a list of dicts; DataError if the file or a column is missing."""
    if not path.is_file():
        raise DataError(f"Broden file {path} is missing")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            missing = [c for c in required if c not in columns]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)} (header has {', '.join(columns)})")
            return list(reader)
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not a UTF-8 text CSV (byte {err.start} cannot be decoded): is it the right file?") from None
    except csv.Error as err:
        raise DataError(f"{path} is not a readable CSV: {err}") from None


def _int(value: str, path: Path, line: int, column: str) -> int:
    """Parse an integer cell, naming file, line and column on failure."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DataError(f"{path} line {line}: column {column!r} holds {value!r}, not an integer") from None


def find_root(path: Path) -> Path:
    """Return the Broden folder at ``path``: itself, or its only subfolder holding index.csv
    (the official zip unpacks into ``broden1_224/``). DataError if neither exists."""
    if not path.is_dir():
        raise DataError(f"Broden folder {path} does not exist")
    if (path / "index.csv").is_file():
        return path
    inner = sorted(p for p in path.iterdir() if p.is_dir() and (p / "index.csv").is_file())
    if len(inner) == 1:
        return inner[0]
    if inner:
        raise DataError(f"{path} holds no index.csv itself but {len(inner)} subfolders with one ({', '.join(p.name for p in inner)}): give one of them")
    raise DataError(f"{path} holds no index.csv (nor does a single subfolder of it): is it a Broden folder?")


TABLES = ("index.csv", "label.csv", "category.csv")  # plus one c_<category>.csv per category


def table_files(path: str | Path) -> list[Path]:
    """The tables of the Broden folder at ``path`` (itself or its single subfolder holding
    index.csv: ``find_root``): index.csv, label.csv, category.csv, then the c_*.csv files in name
    order; the DAG's inputs of the shard job for a local folder (a file edited inside a folder does
    not change the folder's time; the images are not listed). DataError if it is no Broden folder."""
    root = find_root(Path(path))
    return [root / name for name in TABLES if (root / name).is_file()] + sorted(root.glob("c_*.csv"))


class BrodenFolder:
    """An unpacked Broden folder: its label vocabulary, categories and index rows.

    ``labels`` maps label number -> Label; ``categories`` lists category names in
    ``category.csv`` order; ``rows`` holds one IndexRow per image in ``index.csv`` order.
    """

    def __init__(self, root: str | Path):
        self.root = find_root(Path(root))
        self.categories = [r["name"] for r in read_csv(self.root / "category.csv", CATEGORY_COLUMNS)]
        self.labels = self._read_labels()
        self.rows = self._read_index()

    # -- vocabulary -------------------------------------------------------------------------
    def _read_labels(self) -> dict[int, Label]:
        path = self.root / "label.csv"
        names, counts = {}, {}
        for line, rec in enumerate(read_csv(path, LABEL_COLUMNS), start=2):
            number = _int(rec["number"], path, line, "number")
            if number == 0:
                continue  # label 0 is "unlabeled" and belongs to no category
            names[number] = rec["name"]
            counts[number] = self._parse_category_field(rec["category"], path, line)
        coverage: dict[int, dict[str, float]] = {n: {} for n in names}
        for cat in self.categories:
            cpath = self.root / f"c_{cat}.csv"
            for line, rec in enumerate(read_csv(cpath, CCAT_COLUMNS), start=2):
                number = _int(rec["number"], cpath, line, "number")
                if number not in names:
                    raise DataError(f"{cpath} line {line}: label number {number} is not in {path}")
                try:
                    value = float(rec["coverage"])
                except (TypeError, ValueError):
                    value = -1.0  # refused below
                if not 0.0 <= value < math.inf:  # NaN fails too: it made max() keep the first category
                    raise DataError(f"{cpath} line {line}: coverage {rec['coverage']!r} is not a finite number >= 0")
                coverage[number][cat] = value
        labels = {}
        for number, name in names.items():
            cats = coverage[number] or {c: float(n) for c, n in counts[number].items()}
            if not cats:
                raise DataError(f"{path}: label {number} ({name}) belongs to no category")
            primary = max(sorted(cats), key=lambda c: cats[c])
            labels[number] = Label(number, name, dict(sorted(cats.items())), primary)
        return labels

    @staticmethod
    def _parse_category_field(text: str, path: Path, line: int) -> dict[str, int]:
        """Parse ``material(36);object(3)`` into {"material": 36, "object": 3}."""
        out = {}
        for item in filter(None, (text or "").split(";")):
            match = _CATEGORY_ITEM.match(item)
            if not match:
                raise DataError(f"{path} line {line}: category entry {item!r} is not like 'object(3)'")
            out[match.group(1)] = int(match.group(2) or 0)
        return out

    # -- index ------------------------------------------------------------------------------
    def _read_index(self) -> list[IndexRow]:
        path = self.root / "index.csv"
        recs = read_csv(path, INDEX_COLUMNS + tuple(self.categories))
        if not recs:
            raise DataError(f"{path} lists no images (only a header): a Broden folder needs at least one row")
        rows = []
        seen: dict[str, int] = {}
        for i, rec in enumerate(recs):
            line = i + 2
            if rec["split"] not in SPLITS:
                raise DataError(f"{path} line {line}: split {rec['split']!r} is not one of {', '.join(SPLITS)}")
            if rec["image"] in seen:
                raise DataError(f"{path} line {line}: image {rec['image']!r} is listed twice (first on line {seen[rec['image']]}); each image once")
            seen[rec["image"]] = line
            row = IndexRow(
                row=i,
                image=rec["image"],
                split=rec["split"],
                **{k: _int(rec[k], path, line, k) for k in ("ih", "iw", "sh", "sw")},
            )
            for k in ("ih", "iw", "sh", "sw"):
                if getattr(row, k) < 1:
                    raise DataError(f"{path} line {line}: {k} = {getattr(row, k)}; image and segmentation sizes must be >= 1")
            for cat in self.categories:
                for item in filter(None, (rec[cat] or "").split(";")):
                    if item.isdigit():
                        number = int(item)
                        self.check_label(number, f"{path} line {line}, column {cat}")
                        row.image_labels.setdefault(cat, []).append(number)
                    else:
                        row.layers.append((cat, item))
            rows.append(row)
        return rows

    def check_label(self, number: int, where: str) -> None:
        """Raise DataError if ``number`` is neither 0 nor a label of label.csv."""
        if number != 0 and number not in self.labels:
            raise DataError(f"{where}: label number {number} is not in {self.root / 'label.csv'}")

    # -- samples ----------------------------------------------------------------------------
    def image_path(self, rel: str) -> Path:
        """Return the absolute path of a file named relative to ``images/``."""
        return self.root / "images" / rel

    def read_image_bytes(self, row: IndexRow) -> bytes:
        """Return the image file's bytes after checking that it decodes to (iw, ih) pixels."""
        from PIL import Image

        path = self.image_path(row.image)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise DataError(f"image {path} (index.csv line {row.row + 2}) is missing") from None
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                size = img.size
        except Exception as err:  # PIL raises several types for corrupt files
            raise DataError(f"image {path} (index.csv line {row.row + 2}) is corrupt: {err}") from None
        if size != (row.iw, row.ih):
            raise DataError(f"image {path} is {size[0]}x{size[1]}, index.csv line {row.row + 2} says {row.iw}x{row.ih}")
        return data

    def read_layer(self, row: IndexRow, rel: str) -> np.ndarray:
        """Decode one segmentation PNG into a (sh, sw) uint16 array of label numbers (R + 256*G).

        Only RGB, RGBA (alpha ignored) and palette (P) PNGs carry labels that way: a DataError names a
        PNG of any other mode (a grayscale L mask read as RGB gives (v, v, v), label 257·v; a 16-bit
        one is clipped)."""
        from PIL import Image

        path = self.image_path(rel)
        mode = None
        try:
            with Image.open(path) as img:
                mode = img.mode
                # a 16-bit-per-channel PNG opens as mode RGB(A) with 8 bits kept per channel (its high
                # byte: every label below 256 read as 0); its raw mode says so, e.g. "RGB;16B"
                raw = img.tile[0][3] if img.tile and len(img.tile[0]) > 3 else mode
                if mode in MASK_MODES and ";16" in str(raw):
                    mode = f"{mode} with 16 bits per channel"
                elif mode in MASK_MODES:
                    rgb = np.asarray(img.convert("RGB"))
        except FileNotFoundError:
            raise DataError(f"segmentation {path} (index.csv line {row.row + 2}) is missing") from None
        except Exception as err:
            raise DataError(f"segmentation {path} (index.csv line {row.row + 2}) is corrupt: {err}") from None
        if mode not in MASK_MODES:
            raise DataError(f"segmentation {path} (index.csv line {row.row + 2}) is a mode {mode} PNG: Broden masks are RGB "
                            f"with label = R + 256·G (accepted modes: {', '.join(MASK_MODES)}); re-save it as RGB")
        if rgb.shape[:2] != (row.sh, row.sw):
            raise DataError(
                f"segmentation {path} is {rgb.shape[1]}x{rgb.shape[0]}, index.csv line {row.row + 2} says {row.sw}x{row.sh}"
            )
        labels = rgb[..., 0].astype(np.uint16) + (rgb[..., 1].astype(np.uint16) << 8)
        for number in np.unique(labels).tolist():
            self.check_label(number, f"segmentation {path}")
        return labels

    def read_segmentation(self, row: IndexRow) -> tuple[np.ndarray, list[str]]:
        """Return all pixel-level layers of a row as a (L, sh, sw) uint16 array and their categories."""
        arrays = [self.read_layer(row, rel) for _, rel in row.layers]
        stack = np.stack(arrays) if arrays else np.zeros((0, row.sh, row.sw), np.uint16)
        return stack, [cat for cat, _ in row.layers]


class CoverageCounter:
    """Per-category concept coverage, counted from the segmentation layers a reader returns.

    A concept's coverage is its share of the pixels of the images that carry its category:
    (pixels holding the label in any layer of the category) / (pixels of the images with at
    least one layer of the category). A whole-image label covers every pixel of its images, so
    its coverage is the share of the category's images that hold it. Counted at segmentation
    resolution; the result does not depend on the order the rows are added in.
    """

    def __init__(self, categories: list[str]):
        self.categories = list(categories)
        self.images = {c: 0 for c in self.categories}
        self.pixels = {c: 0 for c in self.categories}
        self.label_pixels: dict[str, dict[int, int]] = {c: {} for c in self.categories}

    def add(self, seg: np.ndarray, layer_categories: list[str], image_labels: dict, sh: int, sw: int) -> None:
        """Count one image: ``seg`` uint16 (L, sh, sw), the category of each layer, its
        whole-image labels (category -> [label numbers])."""
        area = int(sh) * int(sw)
        for cat in sorted(set(layer_categories)):
            layers = seg[[i for i, c in enumerate(layer_categories) if c == cat]].astype(np.int64)
            self.images[cat] += 1
            self.pixels[cat] += area
            if len(layers) == 1:
                numbers, counts = np.unique(layers[0], return_counts=True)
            else:  # a pixel holding the same label in two layers counts once
                flat = layers.reshape(len(layers), -1)
                keys = np.arange(flat.shape[1], dtype=np.int64)[None, :] * 65536 + flat
                numbers, counts = np.unique(np.unique(keys[flat > 0]) % 65536, return_counts=True)
            self._add(cat, numbers, counts)
        for cat, numbers in sorted(image_labels.items()):
            if cat in layer_categories or not numbers:
                continue
            self.images[cat] += 1
            self.pixels[cat] += area
            unique = sorted(set(int(n) for n in numbers))
            self._add(cat, np.asarray(unique), np.full(len(unique), area))

    def _add(self, cat: str, numbers: np.ndarray, counts: np.ndarray) -> None:
        bucket = self.label_pixels.setdefault(cat, {})
        for number, count in zip(numbers.tolist(), counts.tolist()):
            if number:
                bucket[number] = bucket.get(number, 0) + int(count)

    def statistics(self, labels: dict[int, Label]) -> dict:
        """Return, per category with images: ``images``, ``concepts`` (labels present), ``min``,
        ``median``, ``max`` of the coverages, the labels at ``min``/``max`` and ``coverage``
        (label name -> coverage, six decimals)."""
        out = {}
        for cat in self.categories:
            if not self.images[cat]:
                continue
            shares = {labels[n].name if n in labels else str(n): c / self.pixels[cat] for n, c in sorted(self.label_pixels[cat].items())}
            values = np.array(list(shares.values()), dtype=np.float64)
            entry = {"images": self.images[cat], "concepts": len(shares)}
            if len(values):
                entry.update(
                    min=float(values.min()),
                    median=float(np.median(values)),
                    max=float(values.max()),
                    min_label=min(shares, key=shares.get),
                    max_label=max(shares, key=shares.get),
                )
            entry["coverage"] = {k: round(v, 6) for k, v in shares.items()}
            out[cat] = entry
        return out


def coverage_statistics(folder: "BrodenFolder") -> dict:
    """Read every row's segmentation from ``folder`` and return :meth:`CoverageCounter.statistics`."""
    counter = CoverageCounter(folder.categories)
    for row in folder.rows:
        seg, cats = folder.read_segmentation(row)
        counter.add(seg, cats, row.image_labels, row.sh, row.sw)
    return counter.statistics(folder.labels)


def check_sources(config: dict) -> None:
    """Check, before any job is planned, that the configured data sources can be read.

    ``broden.source: local`` needs ``broden.local.path`` set to an existing folder holding
    ``index.csv`` (itself or its single subfolder: ``find_root``, which the shard job uses).
    Raises ConfigError naming the key and value. (Here, not in ``config``: the config module is
    code of every job that checks its options, and this lookup would drag the Broden reader in.)
    """
    broden = config["broden"]
    if broden["source"] != "local":
        return
    path = (broden.get("local") or {}).get("path")
    if not path:
        raise ConfigError("broden.source is 'local' but broden.local.path is not set: give the unpacked Broden folder (with index.csv)")
    if not Path(path).is_dir():
        raise ConfigError(f"broden.local.path: {path!r} is not an existing folder (broden.source is 'local')")
    try:
        find_root(Path(path))
    except DataError as err:
        raise ConfigError(f"broden.local.path: {path!r}: {err}") from None
