"""Byte-reproducible figures: matplotlib charts (Agg, no pyplot state) and unit image strips (PIL).

Every PNG written here depends only on its data: matplotlib's style is reset to its defaults
for each figure, the dpi is fixed and the ``Software`` metadata entry is left out; PIL writes
no time stamps.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from ..dissect.bilinear import upsample

DPI = 100
TILE = 128  # height in pixels of one image in a unit strip
GAP = 4  # white pixels between the images of a strip
OUTLINE = (255, 214, 0)  # colour of the activation region's border
DIM = 0.3  # brightness kept outside the activation region
TRAINED_COLOR = "#1f6fb4"
CONTROL_COLOR = "#a6a6a6"
THRESHOLD_COLOR = "#c0392b"
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "axes.axisbelow": True,
    "grid.color": "#e0e0e0",
    "legend.frameon": False,
    "svg.hashsalt": "cnninterp",
}


@contextlib.contextmanager
def chart_style():
    """Apply matplotlib's default style plus ``STYLE`` for the figures made inside the block."""
    import matplotlib.style

    with matplotlib.style.context("default"), matplotlib.rc_context(STYLE):
        yield


def new_figure(width: float, height: float):
    """Return a matplotlib Figure (inches) that is not registered with pyplot (no global state)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def save_png(fig, path: str | Path) -> tuple[int, int]:
    """Write ``fig`` as a reproducible PNG; return its (width, height) in pixels."""
    fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    return png_size(path)


def png_size(path: str | Path) -> tuple[int, int]:
    """Return the (width, height) of a PNG file."""
    from PIL import Image

    with Image.open(path) as img:
        return img.size


def mask_border(mask: np.ndarray) -> np.ndarray:
    """Pixels of a bool (H, W) mask that touch a pixel outside it (4-neighbourhood; image edges don't count)."""
    padded = np.pad(mask, 1, mode="edge")
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def overlay_activation(image: np.ndarray, activation: np.ndarray, threshold: float) -> np.ndarray:
    """Show where a unit fires: the image dimmed outside ``activation > threshold``, that region outlined.

    ``image`` uint8 (H, W, 3); ``activation`` float (h, w) raw map, upsampled bilinearly to (H, W).
    Returns uint8 (H, W, 3).
    """
    mask = upsample(activation, image.shape[:2]) > threshold
    out = image.astype(np.float64)
    out[~mask] *= DIM
    out = np.rint(out).astype(np.uint8)
    out[mask_border(mask)] = OUTLINE
    return out


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    """Resize uint8 (H, W, 3) to ``height`` pixels high, keeping the aspect ratio (bilinear)."""
    from PIL import Image

    h, w = image.shape[:2]
    if h == height:
        return image
    width = max(1, round(w * height / h))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def unit_strip(images: list[np.ndarray], maps: list[np.ndarray], threshold: float, height: int = TILE) -> np.ndarray:
    """Return one unit's top images side by side, each overlaid with its activation region.

    ``images`` uint8 (H_i, W_i, 3); ``maps`` float (h, w) raw activation maps of those images.
    Each image is resized to ``height`` pixels before the map is upsampled onto it. Returns
    uint8 (height, total width, 3) with ``GAP`` white pixels between images.
    """
    tiles = [overlay_activation(_fit_height(img, height), amap, threshold) for img, amap in zip(images, maps)]
    width = sum(t.shape[1] for t in tiles) + GAP * (len(tiles) - 1)
    strip = np.full((height, max(width, 1), 3), 255, np.uint8)
    x = 0
    for tile in tiles:
        strip[:, x : x + tile.shape[1]] = tile
        x += tile.shape[1] + GAP
    return strip


def save_rgb_png(array: np.ndarray, path: str | Path) -> tuple[int, int]:
    """Write uint8 (H, W, 3) as a PNG (no metadata); return its (width, height)."""
    from PIL import Image

    Image.fromarray(array).save(path, format="PNG", compress_level=6)
    return array.shape[1], array.shape[0]
