"""Deterministic generator of a small synthetic dataset in the on-disk layout of Broden.

The real Broden dataset (Bau et al., *Network Dissection*, ``broden1_224``) merges several
annotated sources. This module writes a miniature, fully synthetic stand-in with exactly
the same files, so that a Broden reader and a Network Dissection run can be exercised
end to end without a download:

``images/synthetic/syn_NNNNNN.jpg``
    the RGB images (JPEG, quality 90), ``image_size`` x ``image_size`` pixels.
``images/synthetic/syn_NNNNNN_<category>.png``
    segmentation layers at half resolution; the label number of a pixel is ``R + 256 * G``
    (``B`` is 0, label 0 means "unlabeled").
``index.csv``
    one row per image: ``image,split,ih,iw,sh,sw,color,object,part,material,scene,texture``.
    Pixel-level categories hold ``;``-separated PNG paths (relative to ``images/``),
    whole-image categories hold ``;``-separated global label numbers; empty = not annotated.
``label.csv``, ``category.csv``, ``c_<category>.csv``
    the label vocabulary and its statistics, in the formats of the real dataset.

The images are outdoor-like scenes: a pale sky above a ground band painted with a material,
and two to three objects made of parts. Concepts are sized so that, as in real Broden, each
concept covers a small share (about 0.1 % to 5 %) of the pixels of the images annotated with
its category; a unit's IoU at the 0.005 activation quantile can then reach the detector
threshold for every category. Vocabulary (122 labels):

* color (11, pixel-level): the Broden colour terms, labelled only on the object parts painted
  in a solid named colour (sky, ground and material fills carry no colour label).
* object (12, pixel-level): house, tree, car, lamp, flower, table, boat, snowman, umbrella,
  rocket, mushroom, fish; each drawn upright from 2-5 parts (:data:`OBJECTS`).
* part (33, pixel-level): ``<object>-<part>`` such as ``house-roof`` or ``car-wheel``.
* material (10, pixel-level): wood, brick, tile, grass, water, sand, stone, metal, fabric,
  snow; each a pattern in its own palette, painted on the ground band of scene images and on
  about 40 % of object parts.
* scene (24, whole image): each scene fixes the ground material, the two objects it is made
  of and their arrangement (:data:`SCENES`), each rule kept with probability 0.85, so a scene is
  recognisable from which objects appear, where, on what ground.
* texture (32, whole image): a tiled pattern (8 kinds at 4 orientations) filling a texture
  image (the "DTD" source: texture label only, no other annotation); with
  ``Realism.texture_kinds`` instead 24 orientation-free structures (:data:`TEXTURE_KINDS_FREE`).

As in the real dataset, images come from "sources" that annotate different categories:
``P_TEXTURE_SOURCE`` of them (``texture_share``) are texture images, and of the scene images about 30 % have no
part and about 20 % no material annotation. :func:`generate_scene_task` writes the
separate training task (scene images only, whole-image scene labels only) with the same
renderer; its images are drawn from a different random stream, so they are not probe images.

:class:`Realism` switches photograph-like variation on (within-label texture and material
variation, unlabelled clutter, shading and grain); all are off by default.

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

from ..atomic import remove_stale_temps, temp_sibling
from ..errors import ConfigError

__all__ = [
    "CATEGORIES",
    "COLORS",
    "OBJECTS",
    "MATERIALS",
    "SCENES",
    "TEXTURES",
    "INDEX_HEADER",
    "LABEL_HEADER",
    "CATEGORY_HEADER",
    "C_HEADER",
    "Vocabulary",
    "build_vocabulary",
    "generate_broden",
    "generate_scene_task",
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

# A part is a list of primitives in the object's unit box (x right, y down, both in [0, 1]):
# ("rect", x0, y0, x1, y1), ("ellipse", x0, y0, x1, y1) or ("poly", ((x, y), ...)).
_HALF_DISC = tuple((0.5 + 0.5 * np.cos(t), 0.5 - 0.5 * np.sin(t)) for t in np.linspace(0, np.pi, 13))
_STAR = tuple(
    (0.5 + (0.48 if k % 2 == 0 else 0.24) * np.sin(np.pi * k / 6), 0.3 - (0.3 if k % 2 == 0 else 0.15) * np.cos(np.pi * k / 6))
    for k in range(12)
)
#: object -> (height / width, ((part, (primitive, ...)), ...)); later parts cover earlier ones.
OBJECTS: dict[str, tuple[float, tuple]] = {
    "house": (1.0, (
        ("body", (("rect", 0.1, 0.45, 0.9, 1.0),)),
        ("roof", (("poly", ((0.0, 0.47), (0.5, 0.0), (1.0, 0.47))),)),
        ("door", (("rect", 0.52, 0.62, 0.76, 1.0),)),
        ("window", (("rect", 0.18, 0.56, 0.44, 0.82),)),
    )),
    "tree": (1.4, (
        ("trunk", (("rect", 0.38, 0.5, 0.62, 1.0),)),
        ("crown", (("ellipse", 0.05, 0.0, 0.95, 0.66),)),
    )),
    "car": (0.6, (
        ("body", (("rect", 0.0, 0.42, 1.0, 0.8),)),
        ("cabin", (("poly", ((0.18, 0.43), (0.3, 0.0), (0.7, 0.0), (0.82, 0.43))),)),
        ("wheel", (("ellipse", 0.08, 0.58, 0.36, 1.0), ("ellipse", 0.64, 0.58, 0.92, 1.0))),
    )),
    "lamp": (2.0, (
        ("pole", (("rect", 0.4, 0.2, 0.6, 0.92),)),
        ("head", (("ellipse", 0.1, 0.0, 0.9, 0.3),)),
        ("base", (("rect", 0.15, 0.86, 0.85, 1.0),)),
    )),
    "flower": (1.5, (
        ("stem", (("rect", 0.42, 0.5, 0.58, 1.0),)),
        ("petals", (("poly", _STAR),)),
        ("center", (("ellipse", 0.3, 0.14, 0.7, 0.46),)),
    )),
    "table": (0.7, (
        ("top", (("rect", 0.0, 0.25, 1.0, 0.45),)),
        ("leg", (("rect", 0.06, 0.45, 0.2, 1.0), ("rect", 0.8, 0.45, 0.94, 1.0))),
    )),
    "boat": (1.0, (
        ("hull", (("poly", ((0.0, 0.66), (1.0, 0.66), (0.8, 1.0), (0.2, 1.0))),)),
        ("mast", (("rect", 0.42, 0.04, 0.56, 0.66),)),
        ("sail", (("poly", ((0.54, 0.06), (0.54, 0.62), (0.98, 0.62))),)),
    )),
    "snowman": (1.5, (
        ("body", (("ellipse", 0.05, 0.42, 0.95, 1.0),)),
        ("head", (("ellipse", 0.2, 0.14, 0.8, 0.52),)),
        ("hat", (("rect", 0.26, 0.0, 0.74, 0.2),)),
    )),
    "umbrella": (1.1, (
        ("handle", (("rect", 0.44, 0.4, 0.56, 1.0),)),
        ("canopy", (("poly", tuple((x, 0.9 * y) for x, y in _HALF_DISC)),)),
    )),
    "rocket": (2.0, (
        ("body", (("rect", 0.28, 0.25, 0.72, 0.85),)),
        ("nose", (("poly", ((0.24, 0.3), (0.5, 0.0), (0.76, 0.3))),)),
        ("fin", (("poly", ((0.28, 0.55), (0.0, 1.0), (0.28, 0.85))), ("poly", ((0.72, 0.55), (1.0, 1.0), (0.72, 0.85))))),
    )),
    "mushroom": (1.0, (
        ("stem", (("rect", 0.32, 0.45, 0.68, 1.0),)),
        ("cap", (("poly", tuple((x, 0.12 + 1.1 * (y - 0.5)) for x, y in _HALF_DISC)),)),
    )),
    "fish": (0.6, (
        ("body", (("ellipse", 0.22, 0.12, 0.95, 0.88),)),
        ("tail", (("poly", ((0.0, 0.05), (0.32, 0.5), (0.0, 0.95))),)),
        ("fin", (("poly", ((0.38, 0.3), (0.52, 0.0), (0.8, 0.3))),)),
    )),
}

#: material -> (pattern kind, (colour A, colour B)); a material's colours are jittered per use.
MATERIALS: dict[str, tuple[str, tuple[tuple[int, int, int], tuple[int, int, int]]]] = {
    "wood": ("grain", ((150, 100, 55), (105, 65, 30))),
    "brick": ("brick", ((170, 75, 55), (205, 195, 180))),
    "tile": ("checker", ((225, 225, 215), (110, 140, 160))),
    "grass": ("speckle", ((70, 140, 50), (120, 180, 70))),
    "water": ("waves", ((60, 110, 170), (120, 170, 210))),
    "sand": ("dots", ((225, 200, 150), (190, 160, 110))),
    "stone": ("blotch", ((120, 118, 112), (165, 160, 150))),
    "metal": ("sheen", ((150, 155, 165), (215, 220, 228))),
    "fabric": ("weave", ((140, 90, 130), (185, 140, 175))),
    "snow": ("flakes", ((245, 248, 252), (200, 210, 225))),
}

#: Texture images: 8 tiled pattern kinds at 4 orientations (degrees).
TEXTURE_KINDS = ("striped", "zigzagged", "wavy", "grid", "dotted", "chequered", "banded", "scaly")
TEXTURE_ANGLES = (0, 20, 40, 60)
TEXTURES = tuple(f"{k}-{a}" for k in TEXTURE_KINDS for a in TEXTURE_ANGLES)

#: scene -> (ground material, (the two objects it is made of), arrangement). Arrangements:
#: ``row`` stands the objects on the horizon, ``low`` puts them large in the foreground,
#: ``high`` floats them in the sky.
SCENES: dict[str, tuple[str, tuple[str, str], str]] = {
    "village": ("grass", ("house", "tree"), "row"),
    "street": ("stone", ("car", "lamp"), "row"),
    "harbor": ("water", ("boat", "lamp"), "row"),
    "garden": ("grass", ("flower", "mushroom"), "low"),
    "kitchen": ("tile", ("table", "flower"), "low"),
    "forest": ("grass", ("tree", "mushroom"), "row"),
    "beach": ("sand", ("umbrella", "boat"), "row"),
    "launchpad": ("metal", ("rocket", "lamp"), "row"),
    "aquarium": ("water", ("fish", "flower"), "high"),
    "snowfield": ("snow", ("snowman", "tree"), "row"),
    "parking": ("stone", ("car", "house"), "low"),
    "patio": ("brick", ("table", "umbrella"), "row"),
    "market": ("brick", ("umbrella", "house"), "low"),
    "fishery": ("wood", ("fish", "boat"), "low"),
    "workshop": ("wood", ("table", "car"), "row"),
    "playground": ("sand", ("snowman", "rocket"), "low"),
    "hangar": ("metal", ("car", "rocket"), "low"),
    "bedroom": ("fabric", ("table", "lamp"), "low"),
    "nursery": ("fabric", ("flower", "snowman"), "row"),
    "space": ("tile", ("rocket", "fish"), "high"),
    "pond": ("water", ("fish", "mushroom"), "row"),
    "ski_resort": ("snow", ("house", "snowman"), "low"),
    "orchard": ("sand", ("tree", "umbrella"), "high"),
    "plaza": ("tile", ("lamp", "house"), "row"),
}
SYNONYMS: dict[str, tuple[str, ...]] = {
    "grey": ("gray",),
    "chequered-0": ("checkered-0",),
    "chequered": ("checkered",),
}

INDEX_HEADER = ["image", "split", "ih", "iw", "sh", "sw", *CATEGORIES]
LABEL_HEADER = ["number", "name", "category", "frequency", "coverage", "syns"]
CATEGORY_HEADER = ["name", "first", "last", "count", "frequency"]
C_HEADER = ["code", "number", "name", "frequency", "coverage"]

IMAGE_SUBDIR = "synthetic"
JPEG_QUALITY = 90
# Sampling probabilities of the image "sources", the annotations and the scene rules.
P_TEXTURE_SOURCE = 0.15
P_PART_ANNOTATED = 0.70
P_MATERIAL_ANNOTATED = 0.80
P_SCENE_RULE = 0.85
P_THIRD_OBJECT = 0.5
P_MATERIAL_PART = 0.4
P_SHAPE_IN_TEXTURE_IMAGE = 0.0


def part_names() -> list[str]:
    """Return the part label names ``<object>-<part>`` in object order."""
    return [f"{obj}-{part}" for obj, (_, parts) in OBJECTS.items() for part, _ in parts]


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


def build_vocabulary(realism: "Realism | None" = None) -> Vocabulary:
    """Build the fixed vocabulary: global numbers grouped by category, in category order.

    Every name belongs to exactly one category. The texture labels are :data:`TEXTURES`, or
    :data:`TEXTURE_KINDS_FREE` where ``realism.texture_kinds`` (default: :data:`REALISM`).
    Returns a :class:`Vocabulary`.
    """
    realism = REALISM if realism is None else realism
    members = {
        "color": tuple(COLORS),
        "object": tuple(OBJECTS),
        "part": tuple(part_names()),
        "material": tuple(MATERIALS),
        "scene": tuple(SCENES),
        "texture": TEXTURE_KINDS_FREE if realism.texture_kinds else TEXTURES,
    }
    names = ["-"]
    number: dict[str, int] = {}
    for cat in CATEGORIES:
        for name in members[cat]:
            assert name not in number, name
            number[name] = len(names)
            names.append(name)
    return Vocabulary(names=tuple(names), members=members, number=number)


# ---------------------------------------------------------------------------------------
# Random scene layout
# ---------------------------------------------------------------------------------------


@dataclass
class ObjectSpec:
    """One object to draw: kind, box (left, top, width, height), mirror flag, part fills.

    ``fills[i]`` is ``("color", name)`` or ``("material", name)`` for part ``i``.
    """

    kind: str
    left: float
    top: float
    width: float
    height: float
    mirror: bool
    fills: list


@dataclass
class ImageSpec:
    """Everything random about one image except the pattern parameters."""

    scene: str | None
    texture: str | None
    horizon: float  # row of the horizon (pixels); the ground band lies below it
    ground: str | None  # material of the ground band
    sky: tuple[tuple[int, int, int], tuple[int, int, int]]
    objects: list[ObjectSpec] = field(default_factory=list)
    part_annotated: bool = True
    material_annotated: bool = True


_SKIES = (((200, 220, 235), (235, 240, 245)), ((215, 215, 220), (240, 238, 235)), ((235, 215, 200), (245, 235, 225)))
_TEXTURE_TONES = ((35, 35, 40), (90, 85, 80), (150, 140, 130), (210, 205, 195), (120, 60, 70), (60, 90, 120), (80, 110, 70), (190, 160, 90))


def _pick(rng: np.random.Generator, items):
    """Return one element of ``items`` drawn uniformly."""
    items = list(items)
    return items[int(rng.integers(len(items)))]


def _sample_fills(rng: np.random.Generator, kind: str) -> list:
    """Draw the fill of every part of ``kind``: a solid named colour or a material."""
    fills = []
    for _ in OBJECTS[kind][1]:
        if rng.random() < P_MATERIAL_PART:
            fills.append(("material", _pick(rng, MATERIALS)))
        else:
            fills.append(("color", _pick(rng, COLORS)))
    return fills


def _sample_object(rng: np.random.Generator, kind: str, arrangement: str, slot: float, horizon: float, size: int) -> ObjectSpec:
    """Place one object of ``kind`` around column fraction ``slot`` following ``arrangement``."""
    aspect = OBJECTS[kind][0]
    scale = {"row": (0.24, 0.34), "low": (0.3, 0.4), "high": (0.22, 0.3)}[arrangement]
    width = float(rng.uniform(*scale) * size / np.sqrt(aspect))
    height = width * aspect
    cx = float((slot + rng.uniform(-0.08, 0.08)) * size)
    if arrangement == "row":
        bottom = horizon + rng.uniform(0.0, 0.08) * size
    elif arrangement == "low":
        bottom = rng.uniform(0.9, 1.0) * size
    else:  # high: in the sky
        bottom = min(horizon, rng.uniform(0.35, 0.6) * size)
    top = float(bottom - height)
    return ObjectSpec(kind, cx - width / 2, top, width, height, bool(rng.random() < 0.5), _sample_fills(rng, kind))


class _Balanced:
    """Draws names in random order so that counts stay balanced: each pass over ``names`` is a
    fresh random permutation (every name once per pass)."""

    def __init__(self, names) -> None:
        self.names = list(names)
        self.queue: list[str] = []

    def draw(self, rng: np.random.Generator) -> str:
        """Return the next name, starting a new random pass when the current one is used up."""
        if not self.queue:
            self.queue = [self.names[int(i)] for i in rng.permutation(len(self.names))]
        return self.queue.pop()


@dataclass(frozen=True)
class SceneRules:
    """How strictly an image follows its scene's rule (``SCENES``).

    ``ground``: probability that the ground is the scene's material (else a uniformly drawn one;
    0 makes the ground a nuisance independent of the scene); ``objects``: probability that each of
    the scene's two objects is kept (else a uniformly drawn object); ``third_object``: probability
    of a third, uniformly drawn object (a distractor that can form another scene's pair).
    """

    ground: float = P_SCENE_RULE
    objects: float = P_SCENE_RULE
    third_object: float = P_THIRD_OBJECT


@dataclass(frozen=True)
class Realism:
    """Photograph-like variation the renderer adds (issue 11: is the probe too easy for random filters?).

    Each switch adds variation a photograph has and the flat renderer lacked; none adds a label.
    ``texture_variation``: a texture image's scale (period 0.07-0.25 of the image, log-uniform), its
    two tones (any colours, contrast 0.35-1), and its orientation (+-9 degrees around the label's)
    vary within a label. ``material_variation``: a material's scale (x0.6-1.6), orientation
    (+-34 degrees), palette (+-25 per channel) and contrast (0.5-1) vary per use. ``clutter``:
    scene images get 4-9 unlabelled patterned blobs (bushes, fences, rocks: a random pattern at a
    random scale and orientation in random colours) behind the objects, centred from a fifth of the
    image above the horizon to the bottom (the ground's material label is removed where a blob
    covers it), and soft clouds in the sky.
    ``shading``: every image gets a directional illumination gradient (x0.75-1.25 across the
    image), every object part a shading gradient, and sensor grain (Gaussian, sigma 2-6 levels).
    ``texture_kinds``: the texture vocabulary is :data:`TEXTURE_KINDS_FREE` (24 structures, each
    drawn at a uniformly random orientation) instead of :data:`TEXTURES` (8 kinds x 4 fixed
    orientations), as DTD's classes are named by structure, not orientation.

    All off by default (:data:`REALISM`). Measured on the default experiment (issue 11,
    ``benchmarks/default_probe_realism.py``, benchmarks/RESULTS.md): no switch lowers the random
    control's detector count at the default probe size (its texture detectors are at chance level
    there, as permuting the texture labels shows), and clutter drops the scene task's held-out
    accuracy to 0.45 at the default training budget.
    """

    texture_variation: bool = False
    material_variation: bool = False
    clutter: bool = False
    shading: bool = False
    texture_kinds: bool = False


#: The renderer's default realism (see :class:`Realism`).
REALISM = Realism()


def _sample_scene_image(rng: np.random.Generator, size: int, scene: str, rules: SceneRules = SceneRules()) -> ImageSpec:
    """Sample an image of ``scene``: the scene sets the ground, two objects and their arrangement,
    each kept with the probabilities in ``rules``."""
    ground, pair, arrangement = SCENES[scene]
    if rng.random() >= rules.ground:
        ground = _pick(rng, MATERIALS)
    kinds = [k if rng.random() < rules.objects else _pick(rng, OBJECTS) for k in pair]
    if rng.random() < rules.third_object:
        kinds.append(_pick(rng, OBJECTS))
    horizon = float(rng.uniform(0.64, 0.76) * size)
    slots = rng.permutation([0.2, 0.5, 0.8][: max(2, len(kinds))] if len(kinds) == 3 else [0.28, 0.72])
    objects = [_sample_object(rng, k, arrangement, float(s), horizon, size) for k, s in zip(kinds, slots)]
    # far objects first: the lower an object stands, the later it is drawn (it covers the others)
    objects.sort(key=lambda o: o.top + o.height)
    sky = _SKIES[int(rng.integers(len(_SKIES)))]
    return ImageSpec(scene=scene, texture=None, horizon=horizon, ground=ground, sky=sky, objects=objects)


def _sample_texture_image(rng: np.random.Generator, size: int, texture: str) -> ImageSpec:
    """Sample a texture image of ``texture``: the pattern over the whole image, texture label only."""
    i, j = rng.choice(len(_TEXTURE_TONES), size=2, replace=False)
    return ImageSpec(scene=None, texture=texture, horizon=0.0, ground=None, sky=(_TEXTURE_TONES[int(i)], _TEXTURE_TONES[int(j)]))


def _sample_image_spec(rng: np.random.Generator, size: int, texture_source: float, scenes: _Balanced, textures: _Balanced, rules: SceneRules = SceneRules()) -> ImageSpec:
    """Sample the layout of one image and which categories its source annotates.

    Scenes and textures are drawn from balanced passes, so each is about equally frequent.
    """
    if rng.random() < texture_source:
        spec = _sample_texture_image(rng, size, textures.draw(rng))
    else:
        spec = _sample_scene_image(rng, size, scenes.draw(rng), rules)
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


def _bands(u: np.ndarray, period: float) -> np.ndarray:
    """Alternating 0/1 bands of width ``period / 2`` along ``u``."""
    return (np.floor(u / (period / 2)) % 2).astype(np.float64)


def _noise(rng: np.random.Generator, size: int, block: int) -> np.ndarray:
    """Blocky uniform noise in [0, 1] with ``block`` x ``block`` pixel cells."""
    cells = size // block + 2
    return np.kron(rng.random((cells, cells)), np.ones((block, block)))[:size, :size]


def _pattern(rng: np.random.Generator, kind: str, size: int, period: float, angle: float = 0.0) -> np.ndarray:
    """Return the tone map (float (size, size) in [0, 1]) of pattern ``kind``.

    ``period`` (pixels) is the pattern's scale, ``angle`` (radians) its orientation; the phase
    is random.
    """
    y, x = _grid(size)
    c, s = np.cos(angle), np.sin(angle)
    phase = float(rng.uniform(0.0, period))
    u = x * c + y * s + phase  # along the pattern
    v = -x * s + y * c + phase  # across
    if kind in ("striped", "grain"):
        wobble = 0.0 if kind == "striped" else 0.15 * period * np.sin(2 * np.pi * u / (2.3 * period))
        return _bands(v + wobble, period)
    if kind in ("chequered", "checker"):
        p = period / 2
        return ((np.floor(u / p) + np.floor(v / p)) % 2).astype(np.float64)
    if kind in ("dotted", "dots", "flakes"):
        p = period / 1.3
        du, dv = u % p - p / 2, v % p - p / 2
        r = 0.3 if kind != "flakes" else 0.16
        return ((du**2 + dv**2) < (r * p) ** 2).astype(np.float64)
    if kind == "zigzagged":
        amp = period / 2
        tri = np.abs((u / amp) % 2 - 1) * amp
        return _bands(v + tri, period)
    if kind in ("wavy", "waves"):
        return _bands(v + period / 3 * np.sin(2 * np.pi * u / (1.5 * period)), period)
    if kind == "grid":
        width = max(1.0, period / 5)
        return ((u % period < width) | (v % period < width)).astype(np.float64)
    if kind == "banded":
        return (v % period < period / 4).astype(np.float64)
    if kind == "scaly":
        p = period
        row = np.floor(v / p)
        du = (u + 0.5 * p * (row % 2)) % p - p / 2
        dv = v % p
        return ((du**2 + (dv - p) ** 2) < (0.62 * p) ** 2).astype(np.float64)
    if kind == "brick":
        p = period / 2
        row = np.floor(y / p)
        mortar = (y % p < max(1.0, p / 5)) | ((x + phase + p * (row % 2)) % (2 * p) < max(1.0, p / 5))
        return mortar.astype(np.float64)
    if kind == "speckle":
        return (_noise(rng, size, max(1, int(round(period / 8)))) > 0.55).astype(np.float64)
    if kind == "blotch":
        return _noise(rng, size, max(2, int(round(period / 3))))
    if kind == "sheen":
        return np.clip(0.5 + 0.5 * np.sin(2 * np.pi * u / (3 * period)), 0, 1) * np.ones((size, size))
    if kind == "weave":
        return ((np.floor(u / (period / 4)) + np.floor(v / (period / 4))) % 2) * 0.5 + 0.5 * _bands(u, period / 2)
    raise ValueError(f"unknown pattern {kind!r}")


#: The orientation-free texture vocabulary (``Realism.texture_kinds``): 24 kinds, most of them DTD
#: class names, each drawn at a random orientation, scale and phase, so a label is a structure,
#: not one orientation and frequency.
TEXTURE_KINDS_FREE = (
    "striped", "zigzagged", "wavy", "grid", "dotted", "chequered", "banded", "scaly",
    "crosshatched", "honeycombed", "cracked", "bubbly", "spiralled", "veined", "marbled", "blotchy",
    "speckled", "studded", "stratified", "woven", "bricked", "fibrous", "polka-dotted", "lined",
)


def _lattice(u: np.ndarray, v: np.ndarray, pu: float, pv: float, du: float = 0.0, dv: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (float arrays like ``u``) from each pixel to the nearest point of the lattice
    ``(du + i * pu, dv + j * pv)``."""
    return (u - du + pu / 2) % pu - pu / 2, (v - dv + pv / 2) % pv - pv / 2


def _cells(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Jittered-lattice Voronoi of cell size ``period``: distances to the nearest and second-nearest
    seed and the nearest seed's random radius factor in [0.5, 1] (float arrays like ``u``)."""
    iu, iv = np.floor(u / period).astype(np.int64), np.floor(v / period).astype(np.int64)
    n = 64
    jitter = rng.random((n, n, 2))
    radius = rng.uniform(0.5, 1.0, (n, n))
    d1 = np.full(u.shape, np.inf)
    d2 = np.full(u.shape, np.inf)
    r1 = np.zeros(u.shape)
    for a in (-1, 0, 1):
        for b in (-1, 0, 1):
            cu, cv = (iu + a) % n, (iv + b) % n
            d = np.hypot((iu + a + jitter[cu, cv, 0]) * period - u, (iv + b + jitter[cu, cv, 1]) * period - v)
            closer = d < d1
            d2 = np.where(closer, d1, np.minimum(d2, d))
            r1 = np.where(closer, radius[cu, cv], r1)
            d1 = np.where(closer, d, d1)
    return d1, d2, r1


def _texture_free(rng: np.random.Generator, kind: str, size: int, period: float, angle: float) -> np.ndarray:
    """Return the tone map (float (size, size) in [0, 1]) of orientation-free texture ``kind``
    (:data:`TEXTURE_KINDS_FREE`) at scale ``period`` (pixels) and orientation ``angle`` (radians)."""
    if kind in ("striped", "zigzagged", "wavy", "grid", "dotted", "chequered", "banded", "scaly"):
        return _pattern(rng, kind, size, period, angle)
    y, x = _grid(size)
    c, s = np.cos(angle), np.sin(angle)
    phase_u, phase_v = rng.uniform(0.0, 4 * period, size=2)
    u = x * c + y * s + phase_u
    v = -x * s + y * c + phase_v
    u, v = u * np.ones((1, size)), v * np.ones((size, 1))
    w = max(1.0, period / 8)
    if kind == "crosshatched":
        v2 = u * np.sin(np.pi / 3) + v * np.cos(np.pi / 3)
        return ((v % period < w) | (v2 % period < w)).astype(np.float64)
    if kind in ("honeycombed", "polka-dotted"):
        h = period * np.sqrt(3.0)  # a hexagonal lattice: two rectangular ones, offset by half a cell
        (ua, va), (ub, vb) = _lattice(u, v, period, h), _lattice(u, v, period, h, period / 2, h / 2)
        d = np.sort(np.stack([np.hypot(uu + k * period, vv) for uu, vv in ((ua, va), (ub, vb)) for k in (-1, 0, 1)]), axis=0)
        if kind == "polka-dotted":
            return (d[0] < 0.3 * period).astype(np.float64)
        return (d[1] - d[0] < w).astype(np.float64)  # the hexagonal cells' edges
    if kind in ("cracked", "bubbly"):
        d1, d2, r1 = _cells(rng, u, v, period)
        if kind == "cracked":
            return (d2 - d1 < w).astype(np.float64)
        return (np.abs(d1 - 0.4 * period * r1) < w).astype(np.float64)
    if kind == "spiralled":
        cy, cx = rng.uniform(0.2, 0.8, size=2) * size
        r, theta = np.hypot(x - cx, y - cy), np.arctan2(y - cy, x - cx)
        return _bands(r + period * theta / (2 * np.pi), period)
    if kind in ("veined", "marbled", "blotchy"):
        cells = max(2, int(round(size / (1.5 * period))))
        n = _smooth_noise(rng, size, cells)
        if kind == "veined":
            return ((n * 6.0) % 1.0 < 0.12).astype(np.float64)
        if kind == "marbled":
            return (np.sin(2 * np.pi * v / (2 * period) + 6.0 * n) > 0.3).astype(np.float64)
        return (n > 0.5).astype(np.float64)
    if kind == "speckled":
        return (rng.random((size, size)) > 0.8).astype(np.float64)
    if kind == "studded":
        du, dv = _lattice(u, v, period, period)
        return ((np.abs(du) < period / 6) & (np.abs(dv) < period / 6)).astype(np.float64)
    if kind == "stratified":
        edges = np.cumsum(rng.uniform(0.2, 1.0, 256) * period)
        layer = np.searchsorted(edges, v % edges[-1])
        return (layer % 2).astype(np.float64)
    if kind == "woven":
        return _pattern(rng, "weave", size, period, angle)
    if kind == "bricked":
        q = period / 2
        row = np.floor(v / q)
        return ((v % q < max(1.0, q / 5)) | ((u + q * (row % 2)) % (2 * q) < max(1.0, q / 5))).astype(np.float64)
    if kind == "fibrous":
        canvas = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(3 * (size / period) ** 2)):
            x0, y0 = rng.uniform(0, size, size=2)
            t = angle + rng.normal(0.0, 0.3)
            length = period * rng.uniform(0.5, 1.0)
            draw.line([x0, y0, x0 + length * np.cos(t), y0 + length * np.sin(t)], fill=255, width=1)
        return (np.asarray(canvas) > 0).astype(np.float64)
    if kind == "lined":
        return (v % period < w).astype(np.float64)
    raise ValueError(f"unknown texture {kind!r}")


def _mix(tone: np.ndarray, a, b) -> np.ndarray:
    """Return the colours ``(1 - tone) * a + tone * b`` (shape ``tone.shape + (3,)``)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return a + tone[..., None] * (b - a)


def _material_rgb(rng: np.random.Generator, name: str, size: int, period: float, realism: Realism = REALISM) -> np.ndarray:
    """Render material ``name`` over a whole ``size`` x ``size`` canvas (float RGB, shape (size, size, 3)).

    With ``realism.material_variation`` the scale, orientation, palette and contrast vary per use.
    """
    kind, (a, b) = MATERIALS[name]
    if not realism.material_variation:
        jitter = rng.uniform(-12, 12, size=3)
        angle = float(rng.uniform(-0.25, 0.25))
        return _mix(_pattern(rng, kind, size, period, angle), np.add(a, jitter), np.add(b, jitter))
    period *= float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
    jitter = rng.uniform(-25, 25, size=3)
    angle = float(rng.uniform(-0.6, 0.6))
    a, b = np.add(a, jitter), np.add(b, jitter)
    b = a + float(rng.uniform(0.5, 1.0)) * (b - a)
    return _mix(_pattern(rng, kind, size, period, angle), a, b)


#: Pattern kinds of the unlabelled clutter (``Realism.clutter``): foliage, stones, fences, pebbles, ripples.
CLUTTER_KINDS = ("speckle", "blotch", "striped", "grid", "dotted", "wavy", "zigzagged", "scaly")


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1] (float (size, size)): ``cells`` x ``cells`` random values, bilinearly upsampled."""
    grid = rng.random((cells + 1, cells + 1))
    t = np.linspace(0.0, cells, size)
    i = np.minimum(t.astype(int), cells - 1)
    f = t - i
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]  # (size, cells + 1)
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _clutter(rng: np.random.Generator, rgb: np.ndarray, size: int, horizon: float) -> np.ndarray:
    """Paint 4-9 unlabelled patterned blobs (bushes, rocks, fences) centred between 0.2 ``size`` above
    ``horizon`` and the bottom into ``rgb`` (float (size, size, 3), in place); return their union mask
    (bool (size, size))."""
    covered = np.zeros((size, size), dtype=bool)
    for _ in range(int(rng.integers(4, 10))):
        w, h = rng.uniform(0.08, 0.3, size=2) * size
        cx, cy = float(rng.uniform(0, size)), float(rng.uniform(horizon - 0.2 * size, size))
        canvas = Image.new("L", (size, size), 0)
        ImageDraw.Draw(canvas).ellipse([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], fill=255)
        mask = np.asarray(canvas) > 0
        if not mask.any():
            continue
        kind = _pick(rng, CLUTTER_KINDS)
        period = float(size * np.exp(rng.uniform(np.log(0.03), np.log(0.2))))
        a, b = rng.uniform(20, 235, size=3), rng.uniform(20, 235, size=3)
        tone = _pattern(rng, kind, size, period, float(rng.uniform(0, np.pi)))
        rgb[mask] = _mix(tone, a, b)[mask]
        covered |= mask
    return covered


def _shade(rng: np.random.Generator, rgb: np.ndarray, size: int) -> np.ndarray:
    """Return ``rgb`` (float (size, size, 3)) under a directional illumination gradient plus sensor grain."""
    y, x = _grid(size)
    theta = float(rng.uniform(0, 2 * np.pi))
    ramp = ((x * np.cos(theta) + y * np.sin(theta)) / size - 0.5 * (np.cos(theta) + np.sin(theta)))  # about [-0.7, 0.7]
    gain = 1.0 + float(rng.uniform(0.1, 0.35)) * ramp
    grain = rng.normal(0.0, float(rng.uniform(2.0, 6.0)), size=(size, size, 1))
    return rgb * gain[..., None] + grain


# ---------------------------------------------------------------------------------------
# Objects
# ---------------------------------------------------------------------------------------


def _part_mask(primitives, obj: ObjectSpec, size: int) -> np.ndarray:
    """Return the boolean ``size`` x ``size`` mask of one part of ``obj``."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)

    def pt(px: float, py: float) -> tuple[float, float]:
        px = 1.0 - px if obj.mirror else px
        return obj.left + px * obj.width, obj.top + py * obj.height

    for prim in primitives:
        if prim[0] == "poly":
            draw.polygon([pt(px, py) for px, py in prim[1]], fill=255)
        else:
            (x0, y0), (x1, y1) = pt(prim[1], prim[2]), pt(prim[3], prim[4])
            box = [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
            (draw.rectangle if prim[0] == "rect" else draw.ellipse)(box, fill=255)
    return np.asarray(canvas) > 0


# ---------------------------------------------------------------------------------------
# Rendering: image + full-resolution label maps
# ---------------------------------------------------------------------------------------


@dataclass
class Rendered:
    """A rendered image (uint8 RGB) and its full-resolution label maps (global numbers)."""

    rgb: np.ndarray
    color: np.ndarray
    object: np.ndarray
    part: np.ndarray
    material: np.ndarray


def _render(spec: ImageSpec, rng: np.random.Generator, size: int, vocab: Vocabulary, realism: Realism = REALISM) -> Rendered:
    """Render ``spec``: paint sky, ground and objects, and fill the label maps as it goes.

    ``realism`` (:class:`Realism`) adds within-label variation, unlabelled clutter and shading.

    Later objects cover earlier ones in the image and in every label map.
    """
    maps = {k: np.zeros((size, size), dtype=np.int32) for k in ("color", "object", "part", "material")}
    if spec.texture is not None and realism.texture_kinds:
        if realism.texture_variation:
            period = float(size * np.exp(rng.uniform(np.log(0.07), np.log(0.25))))
            tone = _texture_free(rng, spec.texture, size, period, float(rng.uniform(0, np.pi)))
            a, b = rng.uniform(20, 235, size=3), rng.uniform(20, 235, size=3)
            rgb = _mix(tone, a, a + float(rng.uniform(0.35, 1.0)) * (b - a))
        else:
            period = float(rng.uniform(0.14, 0.2) * size)
            rgb = _mix(_texture_free(rng, spec.texture, size, period, float(rng.uniform(0, np.pi))), *spec.sky)
        if realism.shading:
            rgb = _shade(rng, rgb, size)
        return Rendered(rgb=np.clip(np.rint(rgb), 0, 255).astype(np.uint8), **maps)
    if spec.texture is not None:
        kind, angle = spec.texture.rsplit("-", 1)
        if realism.texture_variation:
            period = float(size * np.exp(rng.uniform(np.log(0.07), np.log(0.25))))
            tone = _pattern(rng, kind, size, period, np.deg2rad(float(angle)) + rng.uniform(-0.15, 0.15))
            a, b = rng.uniform(20, 235, size=3), rng.uniform(20, 235, size=3)
            rgb = _mix(tone, a, a + float(rng.uniform(0.35, 1.0)) * (b - a))
        else:
            period = float(rng.uniform(0.14, 0.2) * size)
            tone = _pattern(rng, kind, size, period, np.deg2rad(float(angle)) + rng.uniform(-0.05, 0.05))
            rgb = _mix(tone, *spec.sky)
        if realism.shading:
            rgb = _shade(rng, rgb, size)
        return Rendered(rgb=np.clip(np.rint(rgb), 0, 255).astype(np.uint8), **maps)
    y, _ = _grid(size)
    sky = _mix(np.clip(y / size, 0, 1) * np.ones((1, size)), *spec.sky)
    if realism.clutter:  # soft clouds
        sky = _mix(np.clip(_smooth_noise(rng, size, 4) * 1.6 - 0.6, 0, 1) * 0.6, sky, np.array([248.0, 248.0, 250.0]))
    rgb = sky.copy()
    ground = (y >= spec.horizon) & np.ones((1, size), dtype=bool)
    rgb[ground] = _material_rgb(rng, spec.ground, size, float(rng.uniform(0.1, 0.16) * size), realism)[ground]
    maps["material"][ground] = vocab.number[spec.ground]
    if realism.clutter:
        maps["material"][_clutter(rng, rgb, size, spec.horizon)] = 0
    for obj in spec.objects:
        for (part, prims), (how, name) in zip(OBJECTS[obj.kind][1], obj.fills):
            mask = _part_mask(prims, obj, size)
            if not mask.any():
                continue
            if how == "color":
                if realism.shading:  # light from above: x1.1 at the part's top to x0.85 at its bottom
                    rows = np.nonzero(mask.any(axis=1))[0]
                    t = np.clip((np.arange(size) - rows[0]) / max(1, rows[-1] - rows[0]), 0, 1)
                    gain = float(rng.uniform(1.0, 1.15)) - float(rng.uniform(0.1, 0.25)) * t
                    rgb[mask] = (np.asarray(COLORS[name], dtype=np.float64) * gain[:, None, None] * np.ones((1, size, 1)))[mask]
                else:
                    rgb[mask] = COLORS[name]
                maps["color"][mask] = vocab.number[name]
                maps["material"][mask] = 0
            else:
                rgb[mask] = _material_rgb(rng, name, size, float(rng.uniform(0.25, 0.4) * obj.width), realism)[mask]
                maps["color"][mask] = 0
                maps["material"][mask] = vocab.number[name]
            maps["object"][mask] = vocab.number[obj.kind]
            maps["part"][mask] = vocab.number[f"{obj.kind}-{part}"]
    if realism.shading:
        rgb = _shade(rng, rgb, size)
    return Rendered(rgb=np.clip(np.rint(rgb), 0, 255).astype(np.uint8), **maps)


def _downsample(arr: np.ndarray, sh: int, sw: int) -> np.ndarray:
    """Nearest-neighbour 2x downsampling (odd pixel centres) to ``sh`` x ``sw``."""
    return arr[1 : 2 * sh : 2, 1 : 2 * sw : 2]


# ---------------------------------------------------------------------------------------
# Per-image annotation assembly and file writing
# ---------------------------------------------------------------------------------------


def _pixel_layers(spec: ImageSpec, rendered: Rendered, sh: int, sw: int) -> dict[str, list[np.ndarray]]:
    """Return the non-empty segmentation layers (at ``sh`` x ``sw``) per pixel category.

    Texture images (the "DTD" source) carry no pixel-level annotation.
    """
    layers: dict[str, list[np.ndarray]] = {cat: [] for cat in PIXEL_CATEGORIES}
    if spec.texture is not None:
        return layers
    wanted = {"color": True, "object": True, "part": spec.part_annotated, "material": spec.material_annotated}
    for cat in PIXEL_CATEGORIES:
        labels = _downsample(getattr(rendered, cat), sh, sw)
        if wanted[cat] and labels.any():
            layers[cat].append(labels)
    return layers


def _image_labels(spec: ImageSpec, vocab: Vocabulary) -> dict[str, list[int]]:
    """Return the whole-image labels (global numbers) of ``spec`` per image category."""
    return {
        "scene": [vocab.number[spec.scene]] if spec.scene else [],
        "texture": [vocab.number[spec.texture]] if spec.texture else [],
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
    """Raise ``ConfigError`` (a ``ValueError``) for arguments the generator cannot honour."""
    if int(n_images) < 1:
        raise ConfigError(f"n_images must be >= 1, got {n_images}")
    if int(image_size) < 16:
        raise ConfigError(f"image_size must be >= 16 pixels, got {image_size}")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")


def _val_mask(rng: np.random.Generator, n_images: int, val_fraction: float) -> np.ndarray:
    """Choose ``round(n_images * val_fraction)`` validation images at random."""
    n_val = int(round(n_images * val_fraction))
    mask = np.zeros(n_images, dtype=bool)
    mask[rng.permutation(n_images)[:n_val]] = True
    return mask



def _generate_into(root: Path, n_images: int, size: int, seed: int, val_fraction: float, task: bool, rules: SceneRules = SceneRules(), realism: Realism = REALISM,
                   texture_share: float = P_TEXTURE_SOURCE) -> dict:
    """Write the whole dataset into the (new, empty) directory ``root``; return the summary.

    ``task``: scene images only, annotated with their scene label only (no segmentation).
    """
    rng = np.random.default_rng(seed)
    vocab = build_vocabulary(realism)
    images_dir = root / "images"
    (images_dir / IMAGE_SUBDIR).mkdir(parents=True)
    sh, sw = size // 2, size // 2
    is_val = _val_mask(rng, n_images, val_fraction)
    stats = _Stats(vocab)
    index_rows = []
    scenes, textures = _Balanced(SCENES), _Balanced(vocab.members["texture"])
    for i in range(n_images):
        spec = _sample_image_spec(rng, size, 0.0 if task else texture_share, scenes, textures, rules)
        rendered = _render(spec, rng, size, vocab, realism)
        layers = {cat: [] for cat in PIXEL_CATEGORIES} if task else _pixel_layers(spec, rendered, sh, sw)
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
        "task": task,
        "categories": {c: len(vocab.members[c]) for c in CATEGORIES},
        "annotated_images": dict(stats.images_with),
    }


def _generate(out_dir, n_images: int, image_size: int, seed: int, val_fraction: float, task: bool,
              rules: SceneRules = SceneRules(), replace: bool = False, realism: Realism = REALISM, texture_share: float = P_TEXTURE_SOURCE) -> dict:
    """Check the arguments, write the dataset atomically (temporary sibling folder + rename).
    With ``replace`` an existing ``out_dir`` folder is removed only once the new one is complete."""
    _check_args(n_images, image_size, val_fraction)
    if not 0.0 <= float(texture_share) < 1.0:
        raise ConfigError(f"texture_share must be in [0, 1), got {texture_share}")
    out = Path(out_dir)
    if out.exists() and not (replace and out.is_dir() and not out.is_symlink()):
        raise FileExistsError(f"output directory already exists: {out}" + ("" if replace else " (pass replace=True to overwrite it)"))
    remove_stale_temps(out)  # a killed writer's temporary folder
    tmp = temp_sibling(out)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        summary = _generate_into(tmp, int(n_images), int(image_size), int(seed), float(val_fraction), task, rules, realism, float(texture_share))
        if out.exists():
            shutil.rmtree(out)  # the previous output (replace): kept until the new one was complete
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary["out_dir"] = str(out)
    return summary


def generate_broden(
    out_dir: str | Path,
    n_images: int = 1500,
    image_size: int = 112,
    seed: int = 0,
    val_fraction: float = 0.2,
    replace: bool = False,
    realism: Realism = REALISM,
    texture_share: float = P_TEXTURE_SOURCE,
) -> dict:
    """Generate a synthetic probe dataset in the on-disk layout of Broden (``broden1_224``).

    Writes ``out_dir/images/synthetic/`` (``syn_NNNNNN.jpg`` images of ``image_size`` pixels
    and their half-resolution segmentation PNGs, label = ``R + 256 * G``), ``index.csv``,
    ``label.csv``, ``category.csv`` and ``c_<category>.csv`` for the six categories color,
    object, part, material, scene and texture (see the module docstring for the concepts).
    ``round(n_images * val_fraction)`` images get split ``val``, the rest ``train``. Each image is a
    texture image (the "DTD" source) with probability ``texture_share``, else a scene image;
    ``realism`` (:class:`Realism`) switches on photograph-like variation.

    The dataset is built in the sibling folder ``<out_dir>.tmp-<pid>`` and renamed to
    ``out_dir`` only when complete; on failure the temporary folder is removed. All
    randomness comes from ``numpy.random.default_rng(seed)``: the same arguments give
    byte-identical files.

    Returns a summary dict: ``images``, ``labels`` (number K of labels, numbered 1..K),
    ``train``, ``val``, ``image_size``, ``segmentation_size``, ``seed``, ``task`` (False),
    ``categories`` (labels per category) and ``annotated_images`` (images annotated per
    category).

    Raises ``FileExistsError`` if ``out_dir`` already exists (unless ``replace``: then an existing
    folder is removed just before the complete new one is renamed into place; a failure leaves
    it untouched) and ``ValueError`` for
    ``n_images < 1``, ``image_size < 16`` or ``val_fraction`` outside [0, 1).
    """
    return _generate(out_dir, n_images, image_size, seed, val_fraction, task=False, replace=replace, realism=realism, texture_share=texture_share)


#: The scene task's probability of a third, random object (the probe set keeps P_THIRD_OBJECT).
#: Off: a third object can complete another scene's pair (Bayes accuracy 0.957 with 0.5, objects
#: always kept and the ground a nuisance), and with it the task stayed below 0.8 (issue 11).
TASK_THIRD_OBJECT = 0.0

#: Added to the task's seed so that its random stream never equals a probe set's of the same seed.
TASK_SEED_OFFSET = 1_000_003


def generate_scene_task(
    out_dir: str | Path,
    n_images: int = 3000,
    image_size: int = 112,
    seed: int = 0,
    val_fraction: float = 0.2,
    ground_rule: float = 0.0,
    object_rule: float = 1.0,
    third_object: float = TASK_THIRD_OBJECT,
    replace: bool = False,
    realism: Realism = REALISM,
) -> dict:
    """Generate the scene-classification training task in Broden's layout (scene labels only).

    As in the paper, the dissected network is trained on a task that is not the probe set: a
    scene is defined by which two objects appear, how they are arranged and on which ground
    material (``SCENES``), so object, part and material detectors help the classifier. Written
    by ``cnninterp data synth-scenes``, sharded by ``cnninterp data shard-broden``.

    The same renderer and scene rules as :func:`generate_broden`, scene images only, each
    labelled with its scene (whole-image ``scene`` column) and nothing else (no segmentation
    PNGs). The random stream is ``default_rng(seed + TASK_SEED_OFFSET)``, so the images are not
    the probe set's. Returns the same summary as :func:`generate_broden` with ``task`` True.
    Errors and ``replace`` as :func:`generate_broden`; also ``ConfigError`` for a rule outside [0, 1].

    ``ground_rule`` / ``object_rule`` / ``third_object`` (:class:`SceneRules`): how often the ground
    is the scene's material, each of its two objects is kept, and a third, random object is added.
    The defaults (0, 1, 0: the ground a nuisance, the scene told by its two objects and their
    arrangement) are the task the default experiment trains on. Measured (issue 11,
    ``benchmarks/default_task_rules.py`` and ``default_task_levers.py``, resnet10, 3,000 images,
    1 thread; benchmarks/RESULTS.md): with ground and objects at 0.85 and a third object half the
    time, the network learns the ground (material detectors about 230 of layer4's ~300, object and
    part 1-3 %, accuracy 0.83); with the ground a nuisance and the third object kept, object and
    part become 55 % of layer4 but accuracy stays at 0.70; without the third object, 4 epochs reach
    0.87 (0.905 with the BatchNorm statistics re-estimated) and 3 epochs 0.83 after that
    re-estimation, object and part 52 % of layer4's detectors.
    """
    for name, value in (("ground_rule", ground_rule), ("object_rule", object_rule), ("third_object", third_object)):
        if not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f"{name} must be a probability in [0, 1], got {value}")
    rules = SceneRules(ground=float(ground_rule), objects=float(object_rule), third_object=float(third_object))
    return _generate(out_dir, n_images, image_size, int(seed) + TASK_SEED_OFFSET, val_fraction, task=True, rules=rules, replace=replace, realism=realism)
