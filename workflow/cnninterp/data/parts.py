"""The ``parts`` dataset: synthetic objects made of known parts, with landmarks and part masks.

An object ("creature") has five parts: head, body, tail, front_leg, back_leg. Each image draws
one object under a random translation, scale, rotation and horizontal flip, on a cluttered
background (smooth colour noise plus random distractor shapes), with per-pixel noise; the
negative class is the same background with one or two *scattered* parts (a part alone, at a
random place and angle) and no object, so that a part's colour alone does not tell the classes
apart. Parts are painted in a fixed order (tail, back_leg, body, front_leg, head), so later parts
occlude earlier ones.

Ground truth per image: the class (0 = negative, 1 = object), every part's centre (landmark,
the centroid of its shape, (x, y) in pixel units with pixel k covering [k, k + 1)), its
visibility (centre inside the image and at least ``MIN_VISIBLE`` of the part's pixels not
occluded), and the part masks as one label map (0 = no part, p + 1 = part p; the painter's order
leaves each pixel its visible part).

Shards are in the Broden shard format (see ``broden_shards``), so the project's dissection engine
reads them directly: ``png`` image (S, S, 3), ``seg.npy`` uint16 (1, S, S) label map, ``json`` with
image, split, ih, iw, sh, sw, layers ``["part"]``, image_labels ``{}`` and, beyond Broden, ``cls``,
``landmarks`` [[x, y] per part] and ``visible`` [bool per part]. The manifest holds the part
vocabulary (``parts``), the classes, and Broden's ``categories`` (``["part"]``) and ``labels``.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from .shards import iter_samples, npy_bytes, npy_load, read_manifest, shard_paths, write_shards

PARTS = ("head", "body", "tail", "front_leg", "back_leg")
CLASSES = ("negative", "object")
PAINT_ORDER = ("tail", "back_leg", "body", "front_leg", "head")
MIN_VISIBLE = 0.25
#: base colour (RGB 0..255) of each part; jittered per image
PART_COLOURS = {"head": (220, 60, 50), "body": (60, 90, 210), "tail": (60, 190, 80), "front_leg": (235, 200, 40), "back_leg": (235, 200, 40)}


def _ellipse(cx: float, cy: float, rx: float, ry: float, k: int = 24) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, k, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def _rect(cx: float, cy: float, w: float, h: float) -> np.ndarray:
    return np.array([[cx - w / 2, cy - h / 2], [cx + w / 2, cy - h / 2], [cx + w / 2, cy + h / 2], [cx - w / 2, cy + h / 2]])


#: each part's polygon in the object frame (unit = the object's scale, facing +x, y down), float64 (V, 2)
SHAPES = {
    "body": _ellipse(0.0, 0.0, 1.0, 0.55),
    "head": _ellipse(1.3, -0.45, 0.45, 0.45),
    "tail": np.array([[-0.9, -0.1], [-1.9, -0.6], [-1.9, 0.35]]),
    "front_leg": _rect(0.5, 0.95, 0.28, 0.85),
    "back_leg": _rect(-0.5, 0.95, 0.28, 0.85),
}


def shape_centre(poly: np.ndarray) -> np.ndarray:
    """Area centroid of a simple polygon float (V, 2) -> float (2,) (shoelace formula)."""
    x, y = poly[:, 0], poly[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    area = cross.sum() / 2
    return np.array([((x + xn) * cross).sum(), ((y + yn) * cross).sum()]) / (6 * area)


def pose_matrix(cx: float, cy: float, scale: float, angle: float, flip: bool) -> np.ndarray:
    """2x3 affine map from the object frame to image coordinates: flip (x -> -x), scale, rotate by
    ``angle`` radians (counter-clockwise on screen), translate to (cx, cy). float64 (2, 3)."""
    c, s = math.cos(angle), math.sin(angle)
    f = -1.0 if flip else 1.0
    # y points down on screen: a counter-clockwise screen rotation is [[c, s], [-s, c]]
    a = scale * np.array([[c * f, s], [-s * f, c]])
    return np.concatenate([a, [[cx], [cy]]], 1)


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Cluttered background float (S, S, 3) in 0..255: smooth colour noise plus distractor shapes."""
    from PIL import Image, ImageDraw

    coarse = rng.uniform(70, 190, (4, 4, 3)).astype(np.uint8)
    img = Image.fromarray(coarse).resize((size, size), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 7))):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cx, cy = rng.uniform(0, size, 2)
        r = rng.uniform(0.04, 0.1) * size
        if rng.random() < 0.5:
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        else:
            poly = _apply(pose_matrix(cx, cy, r, rng.uniform(0, np.pi), False), _rect(0, 0, rng.uniform(0.5, 2), rng.uniform(0.3, 1)))
            draw.polygon([tuple(p) for p in poly], fill=colour)
    return np.asarray(img, dtype=np.float64)


def _paint(image, labels, polys: dict, colours: dict) -> dict:
    """Paint the parts in PAINT_ORDER onto the PIL ``image`` and ``labels`` (mode 'L'); return each part's drawn pixel count."""
    from PIL import Image, ImageDraw

    draw, lab = ImageDraw.Draw(image), ImageDraw.Draw(labels)
    drawn = {}
    for name in PAINT_ORDER:
        if name not in polys:
            continue
        pts = [tuple(p) for p in polys[name]]
        draw.polygon(pts, fill=colours[name])
        lab.polygon(pts, fill=PARTS.index(name) + 1)
        alone = Image.new("L", labels.size, 0)
        ImageDraw.Draw(alone).polygon(pts, fill=1)
        drawn[name] = int(np.asarray(alone).sum())
    return drawn


def render(rng: np.random.Generator, size: int, positive: bool) -> dict:
    """Draw one image.

    Returns ``image`` uint8 (S, S, 3), ``seg`` uint16 (S, S) label map (0 none, p + 1 part p),
    ``landmarks`` float64 (P, 2) part centres (x, y) (NaN for parts not drawn), ``visible`` bool (P,),
    ``cls`` int (1 object, 0 negative).
    """
    from PIL import Image

    bg = _background(rng, size)
    image = Image.fromarray(bg.astype(np.uint8))
    labels = Image.new("L", (size, size), 0)
    colours = {p: tuple(int(np.clip(c + rng.normal(0, 18), 0, 255)) for c in PART_COLOURS[p]) for p in PARTS}
    polys, centres = {}, {}
    if positive:
        scale = rng.uniform(0.13, 0.19) * size
        m = pose_matrix(*rng.uniform(0.3 * size, 0.7 * size, 2), scale, rng.uniform(-np.pi / 4, np.pi / 4), bool(rng.random() < 0.5))
        for p in PARTS:
            polys[p] = _apply(m, SHAPES[p])
            centres[p] = _apply(m, shape_centre(SHAPES[p])[None])[0]
    else:
        for p in rng.choice(PARTS, size=int(rng.integers(1, 3)), replace=False):
            m = pose_matrix(*rng.uniform(0.15 * size, 0.85 * size, 2), rng.uniform(0.13, 0.19) * size,
                            rng.uniform(-np.pi, np.pi), bool(rng.random() < 0.5))
            local = SHAPES[str(p)] - shape_centre(SHAPES[str(p)])
            polys[str(p)] = _apply(m, local)
            centres[str(p)] = _apply(m, np.zeros((1, 2)))[0]
    drawn = _paint(image, labels, polys, colours)
    seg = np.asarray(labels, dtype=np.uint16)
    pixels = np.clip(np.asarray(image, dtype=np.float64) + rng.normal(0, 10, (size, size, 3)), 0, 255)
    landmarks = np.full((len(PARTS), 2), np.nan)
    visible = np.zeros(len(PARTS), dtype=bool)
    for p, c in centres.items():
        k = PARTS.index(p)
        landmarks[k] = c
        inside = 0 <= c[0] < size and 0 <= c[1] < size
        visible[k] = inside and drawn[p] > 0 and (seg == k + 1).sum() >= MIN_VISIBLE * drawn[p]
    return {"image": np.round(pixels).astype(np.uint8), "seg": seg, "landmarks": landmarks, "visible": visible, "cls": int(positive)}


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 (H, W, 3) -> PNG bytes (deterministic for equal input)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def encode_sample(key: str, split: str, image: np.ndarray, seg: np.ndarray, cls: int, landmarks: np.ndarray, visible: np.ndarray) -> dict:
    """One shard sample in the parts/Broden format (see the module docstring) from
    image uint8 (S, S, 3), seg uint16 (sh, sw), landmarks float (P, 2) (NaN = absent), visible bool (P,)."""
    h, w = image.shape[:2]
    meta = {
        "image": f"{key}.png", "split": split, "ih": int(h), "iw": int(w), "sh": int(seg.shape[0]), "sw": int(seg.shape[1]),
        "layers": ["part"], "image_labels": {}, "cls": int(cls),
        "landmarks": [[None if np.isnan(v) else round(float(v), 3) for v in pt] for pt in landmarks],
        "visible": [bool(v) for v in visible],
    }
    return {"__key__": key, "png": png_bytes(image), "seg.npy": npy_bytes(seg[None].astype(np.uint16)),
            "json": json.dumps(meta, sort_keys=True).encode(), "cls": str(int(cls)).encode()}


def part_manifest(parts: list[str], classes: list[str], source: dict, config: dict, image_size: int | None) -> dict:
    """The manifest entries of a parts shard folder: the part vocabulary, classes and Broden's label list."""
    return {
        "dataset": "parts",
        "parts": list(parts),
        "classes": list(classes),
        "image_size": image_size,
        "categories": ["part"],
        "labels": [{"number": i + 1, "name": p, "categories": {"part": 1.0}, "primary": "part"} for i, p in enumerate(parts)],
        "source": source,
        "config": config,
        "sample_fields": {"png": "image", "seg.npy": "uint16 (1, sh, sw) part label map (0 none, p+1 part p)",
                          "json": "Broden meta + cls, landmarks [[x, y] | [null, null]], visible", "cls": "class number"},
    }


def write_parts(out_dir: str | Path, *, splits: dict[str, int], image_size: int, positive_fraction: float, seed: int, shard_size: int) -> dict:
    """Write synthetic parts shards under ``out_dir``: ``splits`` maps split name -> image count.
    Image i of split s is drawn from its own generator seeded (seed, s, i), so counts can change
    without changing earlier images. Returns the manifest."""
    if image_size < 16:
        raise DataError(f"parts: image_size must be >= 16, got {image_size}")
    if not 0.0 < positive_fraction < 1.0:
        raise DataError(f"parts: positive_fraction must lie in (0, 1), got {positive_fraction}")
    for split, count in splits.items():
        if not split.isalpha() or count < 1:
            raise DataError(f"parts: split {split!r} must be a word with >= 1 image, got {count}")

    def samples():
        for split in sorted(splits):
            salt = int.from_bytes(split.encode()[:8], "little")
            for i in range(splits[split]):
                rng = np.random.default_rng([seed, salt, i])
                r = render(rng, image_size, positive=bool(rng.random() < positive_fraction))
                yield split, encode_sample(f"{split}_{i:06d}", split, r["image"], r["seg"], r["cls"], r["landmarks"], r["visible"])

    config = {"splits": dict(sorted(splits.items())), "image_size": image_size, "positive_fraction": positive_fraction, "seed": seed}
    manifest = part_manifest(list(PARTS), list(CLASSES), {"kind": "synthetic", "generator": "cnninterp.data.parts"}, config, image_size)
    return write_shards(samples(), out_dir, shard_size, manifest)


def check_classes(manifest: dict, shard_dir: str | Path) -> None:
    """DataError unless the manifest's ``classes`` list starts with ``negative``: the ICNN task reads
    class 0 as the negative class (no filters, only the negative template) and the others as
    object categories, so shards whose class 0 is an object (e.g. one bird species) would train and
    score the wrong images."""
    classes = list(manifest.get("classes") or [])
    if len(classes) < 2 or classes[0] != CLASSES[0]:
        shown = classes if len(classes) <= 4 else [*classes[:3], "...", classes[-1]]
        raise DataError(f"{Path(shard_dir) / 'manifest.json'}: classes {shown} ({len(classes)}) do not start with "
                        f"{CLASSES[0]!r} and at least one object class: the ICNN task reads class 0 as the negative class; "
                        "write the shards with `cnninterp icnn data` (--source cub for CUB birds against negatives)")


def load_split(shard_dir: str | Path, split: str) -> dict:
    """A split in key order: ``images`` uint8 (N, S, S, 3), ``labels`` int64 (N,), ``landmarks`` float32 (N, P, 2)
    (NaN where absent), ``visible`` bool (N, P), ``seg`` uint16 (N, S, S), ``keys`` [str], ``parts`` [str]."""
    from .broden_shards import decode_image

    manifest = read_manifest(shard_dir)
    if "parts" not in manifest:
        raise DataError(f"{Path(shard_dir) / 'manifest.json'} has no 'parts' list: not a parts shard folder")
    check_classes(manifest, shard_dir)
    out = {"images": [], "labels": [], "landmarks": [], "visible": [], "seg": [], "keys": []}
    for raw in iter_samples(shard_paths(shard_dir, [split])):
        meta = json.loads(raw["json"])
        out["keys"].append(raw["__key__"])
        out["images"].append(decode_image(raw["png"], "png"))
        out["labels"].append(int(meta["cls"]))
        out["landmarks"].append([[np.nan if v is None else v for v in pt] for pt in meta["landmarks"]])
        out["visible"].append(meta["visible"])
        out["seg"].append(npy_load(raw["seg.npy"])[0])
    if not out["keys"]:
        raise DataError(f"{shard_dir}: split {split!r} holds no images")
    shapes = {im.shape for im in out["images"]}
    if len(shapes) != 1:
        raise DataError(f"{shard_dir}: split {split!r} holds images of several sizes {sorted(shapes)}; parts shards need one size")
    return {
        "images": np.stack(out["images"]), "labels": np.asarray(out["labels"], np.int64),
        "landmarks": np.asarray(out["landmarks"], np.float32), "visible": np.asarray(out["visible"], bool),
        "seg": np.stack(out["seg"]), "keys": out["keys"], "parts": list(manifest["parts"]),
    }
