"""Deterministic generator of a small synthetic dataset in the on-disk layout of Broden.

The real Broden dataset (Bau et al., *Network Dissection*, ``broden1_224``) merges several
annotated sources. This module writes a miniature, fully synthetic stand-in with exactly
the same files, so that a Broden reader and a Network Dissection run can be exercised
end to end without a download:

``images/synthetic/syn_NNNNNN.jpg``
    the RGB images (JPEG, quality 90), ``image_size`` x ``image_size`` pixels.
``images/synthetic/syn_NNNNNN_<category>[_<layer>].png``
    segmentation layers at half resolution; the label number of a pixel is ``R + 256 * G``
    (``B`` is 0, label 0 means "unlabeled").
``index.csv``
    one row per image: ``image,split,ih,iw,sh,sw,color,object,part,material,scene,texture``.
    Pixel-level categories hold ``;``-separated PNG paths (relative to ``images/``),
    whole-image categories hold ``;``-separated global label numbers; empty = not annotated.
``label.csv``, ``category.csv``, ``c_<category>.csv``
    the label vocabulary and its statistics, in the formats of the real dataset.

Concept vocabulary (47 labels):

* color (11, pixel-level): the Broden colours; every pixel is labelled with the named
  colour nearest to its rendered RGB value.
* object (6, pixel-level): circle, square, triangle, star, ring, cross, drawn at random
  positions and sizes; a later shape covers an earlier one.
* part (17, pixel-level, two layers): ``<shape>-top`` / ``<shape>-bottom`` split each visible
  shape at its centre row (layer 1); ``<shape>-center`` (all shapes but the ring) is the
  inner 45 % of the shape and overlaps the halves, so it lives in layer 2.
* material (5, pixel-level): stripes, checker, dots, noise, gradient, painted on the
  background and on the interior of about half of the shapes.
* scene (5, whole image): beach, city, forest, desert, garden. Each scene fixes the
  background material (with probability 0.85) and the family of most of its shapes, see
  :data:`SCENE_RULES`, so the scene is learnable from the image.
* texture (4, whole image): checker, zigzag, grid, waves; given when the background of the
  image is one of these tiled patterns. ``checker`` is both a material and a texture label;
  its texture coverage (whole image, 1.0) exceeds its material coverage, so its primary
  category is texture.

As in the real dataset, images come from "sources" that annotate different categories:
about 10 % are texture images (tiled background, at most one shape, no scene), about 30 %
have no part annotation and about 20 % no material annotation.

Everything random comes from one ``numpy.random.default_rng(seed)``; the same arguments
give byte-identical files.
"""

from __future__ import annotations

import csv
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "CATEGORIES",
    "COLORS",
    "SHAPES",
    "MATERIALS",
    "SCENES",
    "TEXTURES",
    "SCENE_RULES",
    "INDEX_HEADER",
    "LABEL_HEADER",
    "CATEGORY_HEADER",
    "C_HEADER",
    "Vocabulary",
    "build_vocabulary",
    "generate_broden",
]

# ---------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------

#: The six Broden categories, in the order of ``index.csv`` and of the label numbers.
CATEGORIES = ("color", "object", "part", "material", "scene", "texture")
PIXEL_CATEGORIES = ("color", "object", "part", "material")
IMAGE_CATEGORIES = ("scene", "texture")

#: Named colours (the 11 colour terms of Broden) and the RGB value painted for each.
COLORS: dict[str, tuple[int, int, int]] = {
    "black": (20, 20, 20),
    "blue": (40, 70, 210),
    "brown": (120, 70, 30),
    "grey": (128, 128, 128),
    "green": (40, 160, 60),
    "orange": (245, 140, 20),
    "pink": (245, 150, 190),
    "purple": (130, 50, 160),
    "red": (210, 30, 30),
    "white": (240, 240, 240),
    "yellow": (240, 220, 40),
}
SHAPES = ("circle", "square", "triangle", "star", "ring", "cross")
#: Shapes that have a ``-center`` part (a ring has a hole where its centre would be).
CENTER_SHAPES = ("circle", "square", "triangle", "star", "cross")
MATERIALS = ("stripes", "checker", "dots", "noise", "gradient")
SCENES = ("beach", "city", "forest", "desert", "garden")
#: Tiled background patterns that earn a whole-image texture label.
TEXTURES = ("checker", "zigzag", "grid", "waves")
#: scene -> (background material, shapes that make up most of the scene's objects).
SCENE_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "beach": ("stripes", ("circle", "ring")),
    "city": ("checker", ("square", "cross")),
    "forest": ("noise", ("triangle", "star")),
    "desert": ("gradient", ("circle", "triangle")),
    "garden": ("dots", ("star", "ring")),
}
SYNONYMS: dict[str, tuple[str, ...]] = {
    "grey": ("gray",),
    "circle": ("disk",),
    "cross": ("plus",),
    "stripes": ("striped", "banded"),
    "checker": ("checkered", "chequered"),
}

INDEX_HEADER = ["image", "split", "ih", "iw", "sh", "sw", *CATEGORIES]
LABEL_HEADER = ["number", "name", "category", "frequency", "coverage", "syns"]
CATEGORY_HEADER = ["name", "first", "last", "count", "frequency"]
C_HEADER = ["code", "number", "name", "frequency", "coverage"]

IMAGE_SUBDIR = "synthetic"
JPEG_QUALITY = 90
# Sampling probabilities of the image "sources" and annotations.
P_TEXTURE_SOURCE = 0.10
P_PART_ANNOTATED = 0.70
P_MATERIAL_ANNOTATED = 0.80
P_SCENE_BACKGROUND = 0.85
P_SCENE_SHAPE = 0.80
P_PATTERNED_SHAPE = 0.50
P_SHAPE_IN_TEXTURE_IMAGE = 0.30
CENTER_SCALE = 0.45


def _part_names() -> list[str]:
    """Return the part label names: ``<shape>-top``, ``<shape>-bottom`` and ``-center``."""
    names = []
    for shape in SHAPES:
        names += [f"{shape}-top", f"{shape}-bottom"]
        if shape in CENTER_SHAPES:
            names.append(f"{shape}-center")
    return names


@dataclass(frozen=True)
class Vocabulary:
    """The label vocabulary of the synthetic dataset.

    ``names[number]`` is the name of global label ``number`` (``names[0]`` is ``"-"``);
    ``members[category]`` lists the names of a category in code order (code = index + 1);
    ``number`` maps a name to its global label number.
    """

    names: tuple[str, ...]
    members: dict[str, tuple[str, ...]]
    number: dict[str, int]

    @property
    def size(self) -> int:
        """Number of labels K (label numbers run 1..K)."""
        return len(self.names) - 1


def build_vocabulary() -> Vocabulary:
    """Build the fixed vocabulary: global numbers grouped by category, in category order.

    A name that occurs in several categories (``checker``) keeps the number of its first
    category. Returns a :class:`Vocabulary`.
    """
    members = {
        "color": tuple(COLORS),
        "object": SHAPES,
        "part": tuple(_part_names()),
        "material": MATERIALS,
        "scene": SCENES,
        "texture": TEXTURES,
    }
    names = ["-"]
    number: dict[str, int] = {}
    for cat in CATEGORIES:
        for name in members[cat]:
            if name not in number:
                number[name] = len(names)
                names.append(name)
    return Vocabulary(names=tuple(names), members=members, number=number)


# ---------------------------------------------------------------------------------------
# Random scene layout
# ---------------------------------------------------------------------------------------


@dataclass
class ShapeSpec:
    """One shape to draw: kind, centre, radius, rotation, fill colours and material."""

    kind: str
    cx: float
    cy: float
    radius: float
    angle: float
    color: str
    color2: str
    material: str | None  # None = solid fill


@dataclass
class ImageSpec:
    """Everything random about one image except the pattern parameters."""

    scene: str | None
    background: str  # a material or texture pattern name
    bg_colors: tuple[str, str]
    shapes: list[ShapeSpec] = field(default_factory=list)
    part_annotated: bool = True
    material_annotated: bool = True


def _two_colors(rng: np.random.Generator) -> tuple[str, str]:
    """Draw two distinct named colours."""
    i, j = rng.choice(len(COLORS), size=2, replace=False)
    names = list(COLORS)
    return names[int(i)], names[int(j)]


def _sample_shape(rng: np.random.Generator, kind: str, size: int) -> ShapeSpec:
    """Draw position, size, rotation, colours and fill of one shape of ``kind``."""
    c1, c2 = _two_colors(rng)
    material = None
    if rng.random() < P_PATTERNED_SHAPE:
        material = MATERIALS[int(rng.integers(len(MATERIALS)))]
    return ShapeSpec(
        kind=kind,
        cx=float(rng.uniform(0.15, 0.85) * size),
        cy=float(rng.uniform(0.15, 0.85) * size),
        radius=float(rng.uniform(0.12, 0.28) * size),
        angle=float(rng.uniform(0.0, 2.0 * np.pi)),
        color=c1,
        color2=c2,
        material=material,
    )


def _sample_scene_image(rng: np.random.Generator, size: int) -> ImageSpec:
    """Sample a scene image: the scene sets the background and most of the shapes."""
    scene = SCENES[int(rng.integers(len(SCENES)))]
    bg, family = SCENE_RULES[scene]
    if rng.random() >= P_SCENE_BACKGROUND:
        bg = MATERIALS[int(rng.integers(len(MATERIALS)))]
    shapes = []
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < P_SCENE_SHAPE:
            kind = family[int(rng.integers(len(family)))]
        else:
            kind = SHAPES[int(rng.integers(len(SHAPES)))]
        shapes.append(_sample_shape(rng, kind, size))
    return ImageSpec(scene=scene, background=bg, bg_colors=_two_colors(rng), shapes=shapes)


def _sample_texture_image(rng: np.random.Generator, size: int) -> ImageSpec:
    """Sample a texture image: a tiled background, at most one shape, no scene."""
    bg = TEXTURES[int(rng.integers(len(TEXTURES)))]
    shapes = []
    if rng.random() < P_SHAPE_IN_TEXTURE_IMAGE:
        shapes.append(_sample_shape(rng, SHAPES[int(rng.integers(len(SHAPES)))], size))
    return ImageSpec(scene=None, background=bg, bg_colors=_two_colors(rng), shapes=shapes)


def _sample_image_spec(rng: np.random.Generator, size: int) -> ImageSpec:
    """Sample the layout of one image and which categories its source annotates."""
    if rng.random() < P_TEXTURE_SOURCE:
        spec = _sample_texture_image(rng, size)
    else:
        spec = _sample_scene_image(rng, size)
    spec.part_annotated = bool(rng.random() < P_PART_ANNOTATED)
    spec.material_annotated = bool(rng.random() < P_MATERIAL_ANNOTATED)
    return spec


# ---------------------------------------------------------------------------------------
# Patterns (vectorised, values in [0, 1] = mix between two colours)
# ---------------------------------------------------------------------------------------


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return float pixel-centre coordinates ``(y, x)`` of a ``size`` x ``size`` image."""
    coords = np.arange(size, dtype=np.float64) + 0.5
    return coords[:, None], coords[None, :]


def _pattern(rng: np.random.Generator, kind: str, size: int, frame: tuple[float, float, float]):
    """Draw the parameters of pattern ``kind`` and return its tone map (``size`` x ``size``).

    ``frame = (cy, cx, extent)`` is the region the pattern should look right in (the whole
    image for a background, a shape's bounding box for a shape fill); it sets the scale of
    the pattern and the span of a gradient. Returns float values in [0, 1].
    """
    y, x = _grid(size)
    cy, cx, extent = frame
    period = float(rng.uniform(0.18, 0.32) * extent)
    phase = float(rng.uniform(0.0, period))
    if kind == "stripes":
        theta = float(rng.uniform(0.0, np.pi))
        u = x * np.cos(theta) + y * np.sin(theta) + phase
        return (np.floor(u / (period / 2)) % 2).astype(np.float64)
    if kind == "checker":
        p = period / 1.5
        return ((np.floor((x + phase) / p) + np.floor((y + phase) / p)) % 2).astype(np.float64)
    if kind == "dots":
        p = period / 1.5
        dx = (x + phase) % p - p / 2
        dy = (y + phase) % p - p / 2
        return ((dx**2 + dy**2) < (0.3 * p) ** 2).astype(np.float64)
    if kind == "noise":
        block = max(2, int(round(period / 5)))
        cells = size // block + 2
        values = rng.random((cells, cells))
        return np.kron(values, np.ones((block, block)))[:size, :size]
    if kind == "gradient":
        theta = float(rng.uniform(0.0, 2 * np.pi))
        u = (x - cx) * np.cos(theta) + (y - cy) * np.sin(theta)
        return np.clip(u / extent + 0.5, 0.0, 1.0) * np.ones((size, size))
    if kind == "zigzag":
        amp = period / 2
        tri = np.abs(((x + phase) / amp) % 2 - 1) * amp
        return (np.floor((y + tri) / (period / 2)) % 2).astype(np.float64)
    if kind == "grid":
        width = max(1.0, period / 6)
        lines = ((x + phase) % period < width) | ((y + phase) % period < width)
        return lines.astype(np.float64)
    if kind == "waves":
        amp = period / 3
        u = y + amp * np.sin(2 * np.pi * (x + phase) / (1.5 * period))
        return (np.floor(u / (period / 2)) % 2).astype(np.float64)
    raise ValueError(f"unknown pattern {kind!r}")


def _mix(tone: np.ndarray, c1: str, c2: str) -> np.ndarray:
    """Return the colours ``(1 - tone) * c1 + tone * c2`` (shape ``tone.shape + (3,)``)."""
    a = np.asarray(COLORS[c1], dtype=np.float64)
    b = np.asarray(COLORS[c2], dtype=np.float64)
    return a + tone[..., None] * (b - a)


# ---------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------


def _polygon(radii: list[float], cx: float, cy: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a polygon with vertex radii ``radii`` spread evenly around (cx, cy)."""
    n = len(radii)
    return [
        (cx + r * np.cos(angle + 2 * np.pi * k / n), cy + r * np.sin(angle + 2 * np.pi * k / n))
        for k, r in enumerate(radii)
    ]


def _cross_polygon(cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a plus sign of half-length ``r`` and arm half-width ``r / 3``."""
    w = r / 3
    pts = [
        (w, r),
        (w, w),
        (r, w),
        (r, -w),
        (w, -w),
        (w, -r),
        (-w, -r),
        (-w, -w),
        (-r, -w),
        (-r, w),
        (-w, w),
        (-w, r),
    ]
    c, s = np.cos(angle), np.sin(angle)
    return [(cx + px * c - py * s, cy + px * s + py * c) for px, py in pts]


def _draw_shape(
    draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, angle: float
) -> None:
    """Draw shape ``kind`` with value 255 on an ``L``-mode canvas."""
    if kind in ("circle", "ring"):
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        if kind == "ring":
            ri = 0.55 * r
            draw.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=0)
    elif kind == "square":
        draw.polygon(_polygon([r] * 4, cx, cy, angle), fill=255)
    elif kind == "triangle":
        draw.polygon(_polygon([r] * 3, cx, cy, angle), fill=255)
    elif kind == "star":
        draw.polygon(_polygon([r, 0.45 * r] * 5, cx, cy, angle), fill=255)
    elif kind == "cross":
        draw.polygon(_cross_polygon(cx, cy, r, angle), fill=255)
    else:
        raise ValueError(f"unknown shape {kind!r}")


def _shape_mask(kind: str, cx: float, cy: float, r: float, angle: float, size: int) -> np.ndarray:
    """Return the boolean ``size`` x ``size`` mask of one shape."""
    canvas = Image.new("L", (size, size), 0)
    _draw_shape(ImageDraw.Draw(canvas), kind, cx, cy, r, angle)
    return np.asarray(canvas) > 0


# ---------------------------------------------------------------------------------------
# Rendering: image + full-resolution label maps
# ---------------------------------------------------------------------------------------


@dataclass
class Rendered:
    """A rendered image (uint8 RGB) and its full-resolution label maps (global numbers)."""

    rgb: np.ndarray
    object: np.ndarray
    part1: np.ndarray
    part2: np.ndarray
    material: np.ndarray


def _render(spec: ImageSpec, rng: np.random.Generator, size: int, vocab: Vocabulary) -> Rendered:
    """Render ``spec``: paint background and shapes, and fill the label maps as it goes.

    Later shapes cover earlier ones in the image and in every label map.
    """
    tone = _pattern(rng, spec.background, size, (size / 2, size / 2, float(size)))
    rgb = _mix(tone, *spec.bg_colors)
    maps = {
        k: np.zeros((size, size), dtype=np.int32) for k in ("object", "part1", "part2", "material")
    }
    if spec.background in MATERIALS:
        maps["material"][:] = vocab.number[spec.background]
    rows = np.arange(size, dtype=np.float64)[:, None] + 0.5
    for shape in spec.shapes:
        mask = _shape_mask(shape.kind, shape.cx, shape.cy, shape.radius, shape.angle, size)
        if shape.material is None:
            rgb[mask] = COLORS[shape.color]
        else:
            frame = (shape.cy, shape.cx, 2 * shape.radius)
            tone = _pattern(rng, shape.material, size, frame)
            rgb[mask] = _mix(tone[mask], shape.color, shape.color2)
        maps["object"][mask] = vocab.number[shape.kind]
        maps["material"][mask] = vocab.number[shape.material] if shape.material else 0
        top = mask & (rows < shape.cy)
        maps["part1"][top] = vocab.number[f"{shape.kind}-top"]
        maps["part1"][mask & ~top] = vocab.number[f"{shape.kind}-bottom"]
        maps["part2"][mask] = 0
        if shape.kind in CENTER_SHAPES:
            inner = _shape_mask(
                shape.kind, shape.cx, shape.cy, CENTER_SCALE * shape.radius, shape.angle, size
            )
            maps["part2"][mask & inner] = vocab.number[f"{shape.kind}-center"]
    return Rendered(rgb=np.clip(np.rint(rgb), 0, 255).astype(np.uint8), **maps)


def _downsample(arr: np.ndarray, sh: int, sw: int) -> np.ndarray:
    """Nearest-neighbour 2x downsampling (odd pixel centres) to ``sh`` x ``sw``."""
    return arr[1 : 2 * sh : 2, 1 : 2 * sw : 2]


_PALETTE = np.asarray(list(COLORS.values()), dtype=np.int32)


def _color_labels(rgb: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    """Label every pixel of ``rgb`` with the global number of its nearest named colour."""
    pixels = rgb.reshape(-1, 3).astype(np.int32)
    packed = (pixels[:, 0] << 16) | (pixels[:, 1] << 8) | pixels[:, 2]
    distinct, inverse = np.unique(packed, return_inverse=True)
    colors = np.stack([distinct >> 16, (distinct >> 8) & 255, distinct & 255], axis=1)
    # Exact integer arithmetic: the nearest colour does not depend on the platform.
    dist = ((colors[:, None, :] - _PALETTE[None]) ** 2).sum(axis=2)
    numbers = np.asarray([vocab.number[c] for c in COLORS], dtype=np.int32)
    return numbers[dist.argmin(axis=1)][inverse.reshape(-1)].reshape(rgb.shape[:2])


# ---------------------------------------------------------------------------------------
# Per-image annotation assembly and file writing
# ---------------------------------------------------------------------------------------


def _pixel_layers(
    spec: ImageSpec, rendered: Rendered, sh: int, sw: int, vocab: Vocabulary
) -> dict[str, list[np.ndarray]]:
    """Return the non-empty segmentation layers (at ``sh`` x ``sw``) per pixel category."""
    layers: dict[str, list[np.ndarray]] = {cat: [] for cat in PIXEL_CATEGORIES}
    layers["color"].append(_color_labels(_downsample(rendered.rgb, sh, sw), vocab))
    obj = _downsample(rendered.object, sh, sw)
    if obj.any():
        layers["object"].append(obj)
    if spec.part_annotated:
        part1 = _downsample(rendered.part1, sh, sw)
        part2 = _downsample(rendered.part2, sh, sw)
        if part1.any():
            layers["part"].append(part1)
            if part2.any():
                layers["part"].append(part2)
    if spec.material_annotated:
        mat = _downsample(rendered.material, sh, sw)
        if mat.any():
            layers["material"].append(mat)
    return layers


def _image_labels(spec: ImageSpec, vocab: Vocabulary) -> dict[str, list[int]]:
    """Return the whole-image labels (global numbers) of ``spec`` per image category."""
    return {
        "scene": [vocab.number[spec.scene]] if spec.scene else [],
        "texture": [vocab.number[spec.background]] if spec.background in TEXTURES else [],
    }


def _encode_png(labels: np.ndarray) -> Image.Image:
    """Encode a label map as an RGB image with ``label = R + 256 * G`` and ``B = 0``."""
    out = np.zeros(labels.shape + (3,), dtype=np.uint8)
    out[:, :, 0] = labels % 256
    out[:, :, 1] = labels // 256
    return Image.fromarray(out, mode="RGB")


def _layer_name(stem: str, cat: str, k: int, n_layers: int) -> str:
    """File name of layer ``k`` (1-based) of ``cat``; parts are always numbered."""
    if cat == "part":
        return f"{stem}_part_{k}.png"
    return f"{stem}_{cat}.png" if n_layers == 1 else f"{stem}_{cat}_{k}.png"


def _write_image(
    images_dir: Path, stem: str, rgb: np.ndarray, layers: dict[str, list[np.ndarray]]
) -> dict[str, str]:
    """Write the JPEG and segmentation PNGs of one image.

    Returns the ``index.csv`` cells: ``image`` and one ``;``-joined path list per pixel
    category, all relative to ``images/``.
    """
    rel = f"{IMAGE_SUBDIR}/{stem}.jpg"
    Image.fromarray(rgb, mode="RGB").save(images_dir / rel, format="JPEG", quality=JPEG_QUALITY)
    cells = {"image": rel}
    for cat, maps in layers.items():
        paths = []
        for k, labels in enumerate(maps, start=1):
            path = f"{IMAGE_SUBDIR}/{_layer_name(stem, cat, k, len(maps))}"
            _encode_png(labels).save(images_dir / path, format="PNG")
            paths.append(path)
        cells[cat] = ";".join(paths)
    return cells


# ---------------------------------------------------------------------------------------
# Statistics and the vocabulary CSV files
# ---------------------------------------------------------------------------------------


class _Stats:
    """Accumulates per-category and per-label frequency/coverage over the images."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        k = vocab.size + 1
        self.cat_freq = {cat: np.zeros(k, dtype=np.int64) for cat in CATEGORIES}
        self.cat_cov = {cat: np.zeros(k, dtype=np.float64) for cat in CATEGORIES}
        self.label_freq = np.zeros(k, dtype=np.int64)
        self.label_cov = np.zeros(k, dtype=np.float64)
        self.images_with = {cat: 0 for cat in CATEGORIES}

    def add(self, layers: dict[str, list[np.ndarray]], image_labels: dict[str, list[int]]) -> None:
        """Add one image's annotations (pixel layers and whole-image labels)."""
        k = self.vocab.size + 1
        best = np.zeros(k, dtype=np.float64)
        present = np.zeros(k, dtype=bool)
        for cat, maps in layers.items():
            if not maps:
                continue
            self.images_with[cat] += 1
            covered = np.zeros(k, dtype=bool)
            counts = np.zeros(k, dtype=np.float64)
            # A label's pixels in a category: the union over that category's layers.
            stacked = np.stack(maps)
            for number in np.unique(stacked[stacked > 0]):
                counts[number] = (stacked == number).any(axis=0).mean()
                covered[number] = True
            self._add_category(cat, covered, counts)
            present |= covered
            best = np.maximum(best, counts)
        for cat, numbers in image_labels.items():
            if not numbers:
                continue
            self.images_with[cat] += 1
            covered = np.zeros(k, dtype=bool)
            covered[numbers] = True
            self._add_category(cat, covered, covered.astype(np.float64))
            present |= covered
            best = np.maximum(best, covered.astype(np.float64))
        self.label_freq += present
        self.label_cov += best

    def _add_category(self, cat: str, covered: np.ndarray, coverage: np.ndarray) -> None:
        """Count the labels ``covered`` in ``cat`` for one image, with their coverage."""
        self.cat_freq[cat] += covered
        self.cat_cov[cat] += coverage

    def category_coverage(self, cat: str, number: int) -> float:
        """Mean covered fraction of label ``number`` over the images having it in ``cat``."""
        n = self.cat_freq[cat][number]
        return float(self.cat_cov[cat][number] / n) if n else 0.0

    def label_coverage(self, number: int) -> float:
        """Mean (over images having the label) of its largest per-category coverage."""
        n = self.label_freq[number]
        return float(self.label_cov[number] / n) if n else 0.0


def _fmt(x: float) -> str:
    """Format a coverage value with six decimals."""
    return f"{x:.6f}"


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    """Write a CSV file with ``\\n`` line endings."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _label_categories(vocab: Vocabulary, name: str) -> list[str]:
    """Categories that contain label ``name``, in category order."""
    return [cat for cat in CATEGORIES if name in vocab.members[cat]]


def _write_label_csv(path: Path, vocab: Vocabulary, stats: _Stats) -> None:
    """Write ``label.csv``; the ``category`` cell lists the primary (largest coverage) first."""
    rows = []
    for number in range(1, vocab.size + 1):
        name = vocab.names[number]
        cats = _label_categories(vocab, name)
        cats.sort(key=lambda c: -stats.category_coverage(c, number))  # stable for ties
        cell = ";".join(f"{c}({int(stats.cat_freq[c][number])})" for c in cats)
        rows.append(
            [
                number,
                name,
                cell,
                int(stats.label_freq[number]),
                _fmt(stats.label_coverage(number)),
                ";".join(SYNONYMS.get(name, ())),
            ]
        )
    _write_csv(path, LABEL_HEADER, rows)


def _write_category_csvs(out: Path, vocab: Vocabulary, stats: _Stats) -> None:
    """Write ``category.csv`` and one ``c_<category>.csv`` per category."""
    cat_rows = []
    for cat in CATEGORIES:
        names = vocab.members[cat]
        cat_rows.append([cat, 1, len(names), len(names), stats.images_with[cat]])
        rows = []
        for code, name in enumerate(names, start=1):
            number = vocab.number[name]
            rows.append(
                [
                    code,
                    number,
                    name,
                    int(stats.cat_freq[cat][number]),
                    _fmt(stats.category_coverage(cat, number)),
                ]
            )
        _write_csv(out / f"c_{cat}.csv", C_HEADER, rows)
    _write_csv(out / "category.csv", CATEGORY_HEADER, cat_rows)


# ---------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------


def _check_args(n_images: int, image_size: int, val_fraction: float) -> None:
    """Raise ``ValueError`` for arguments the generator cannot honour."""
    if int(n_images) < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    if int(image_size) < 16:
        raise ValueError(f"image_size must be >= 16 pixels, got {image_size}")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")


def _val_mask(rng: np.random.Generator, n_images: int, val_fraction: float) -> np.ndarray:
    """Choose ``round(n_images * val_fraction)`` validation images at random."""
    n_val = int(round(n_images * val_fraction))
    mask = np.zeros(n_images, dtype=bool)
    mask[rng.permutation(n_images)[:n_val]] = True
    return mask


def _generate_into(root: Path, n_images: int, size: int, seed: int, val_fraction: float) -> dict:
    """Write the whole dataset into the (new, empty) directory ``root``; return the summary."""
    rng = np.random.default_rng(seed)
    vocab = build_vocabulary()
    images_dir = root / "images"
    (images_dir / IMAGE_SUBDIR).mkdir(parents=True)
    sh, sw = size // 2, size // 2
    is_val = _val_mask(rng, n_images, val_fraction)
    stats = _Stats(vocab)
    index_rows = []
    for i in range(n_images):
        spec = _sample_image_spec(rng, size)
        rendered = _render(spec, rng, size, vocab)
        layers = _pixel_layers(spec, rendered, sh, sw, vocab)
        image_labels = _image_labels(spec, vocab)
        cells = _write_image(images_dir, f"syn_{i + 1:06d}", rendered.rgb, layers)
        stats.add(layers, image_labels)
        index_rows.append(
            [
                cells["image"],
                "val" if is_val[i] else "train",
                size,
                size,
                sh,
                sw,
                *(cells[c] for c in PIXEL_CATEGORIES),
                *(";".join(map(str, image_labels[c])) for c in IMAGE_CATEGORIES),
            ]
        )
    _write_csv(root / "index.csv", INDEX_HEADER, index_rows)
    _write_label_csv(root / "label.csv", vocab, stats)
    _write_category_csvs(root, vocab, stats)
    return {
        "images": n_images,
        "labels": vocab.size,
        "train": int((~is_val).sum()),
        "val": int(is_val.sum()),
        "image_size": size,
        "segmentation_size": sh,
        "seed": seed,
        "categories": {c: len(vocab.members[c]) for c in CATEGORIES},
        "annotated_images": dict(stats.images_with),
    }


def generate_broden(
    out_dir: str | Path,
    n_images: int = 1500,
    image_size: int = 112,
    seed: int = 0,
    val_fraction: float = 0.2,
) -> dict:
    """Generate a synthetic dataset in the on-disk layout of Broden (``broden1_224``).

    Writes ``out_dir/images/synthetic/`` (``syn_NNNNNN.jpg`` images of ``image_size`` pixels
    and their half-resolution segmentation PNGs, label = ``R + 256 * G``), ``index.csv``,
    ``label.csv``, ``category.csv`` and ``c_<category>.csv`` for the six categories color,
    object, part, material, scene and texture (see the module docstring for the concepts).
    ``round(n_images * val_fraction)`` images get split ``val``, the rest ``train``.

    The dataset is built in the sibling folder ``<out_dir>.tmp-<pid>`` and renamed to
    ``out_dir`` only when complete; on failure the temporary folder is removed. All
    randomness comes from ``numpy.random.default_rng(seed)``: the same arguments give
    byte-identical files.

    Returns a summary dict: ``images``, ``labels`` (number K of labels, numbered 1..K),
    ``train``, ``val``, ``image_size``, ``segmentation_size``, ``seed``, ``categories``
    (labels per category) and ``annotated_images`` (images annotated per category).

    Raises ``FileExistsError`` if ``out_dir`` already exists and ``ValueError`` for
    ``n_images < 1``, ``image_size < 16`` or ``val_fraction`` outside [0, 1).
    """
    _check_args(n_images, image_size, val_fraction)
    out = Path(out_dir)
    if out.exists():
        raise FileExistsError(f"output directory already exists: {out}")
    tmp = Path(f"{out}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        summary = _generate_into(
            tmp, int(n_images), int(image_size), int(seed), float(val_fraction)
        )
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary["out_dir"] = str(out)
    return summary
