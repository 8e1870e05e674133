"""The ``objects3d`` dataset: simple 3-D objects rendered under azimuth (out-of-plane) rotation.

A small numpy software renderer (orthographic camera, z-buffer, flat Lambertian shading, 2×2
supersampling) draws six closed triangle meshes: cube, tetrahedron, octahedron, triangular prism,
square pyramid and an extruded "L" glyph. Each shape has a fixed, distinct grey level per face (so
that no turn maps it onto itself, and a view of one side tells the other sides); an object instance
is a shape with its own brightness and scale (drawn from a seeded generator).

Two factors, as in the paper's chairs and faces:

- ``azimuth_deg``: the object turned about its vertical axis (out of plane), then seen from a camera
  raised by ``elevation_deg``. Rendered on a grid of ``azimuth_step_deg`` and **stored per sample**
  (field ``json``: object, shape, azimuth). The arc ``[heldout_start_deg, heldout_start_deg +
  heldout_width_deg)`` is *not written into the train split at all*; the test split (other object
  instances) holds every azimuth of the grid.
- ``inplane_deg``: a turn of the image about its centre (camera roll), **drawn at training time**
  (``digits.rotate_images``) uniformly on [−r, r] (``inplane_range_deg``, declared in the manifest;
  180 = the whole circle); every object fits in the disc inscribed in the frame, so it stays inside
  at any roll.

Images: uint8 (S, S), 0..255, black background. Sample keys ``o<object>_a<azimuth index>``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from .shards import iter_samples, npy_bytes, npy_load, read_manifest, shard_paths, write_shards

ANGLE_RANGE_DEG = (-180.0, 180.0)
LIGHT = np.array([0.4, 0.5, 1.0]) / np.linalg.norm([0.4, 0.5, 1.0])
AMBIENT = 0.4
SUPERSAMPLE = 2
FILL = 0.9  # the unit sphere's image covers this fraction of the half frame


def _prism(polygon: np.ndarray, depth: float) -> tuple[np.ndarray, list[list[int]]]:
    """An extrusion of a 2-D polygon (n, 2) in the x-z plane along y: vertices and faces (winding is
    free: the renderer turns every visible normal toward the viewer)."""
    n = len(polygon)
    low = np.c_[polygon[:, 0], np.full(n, -depth / 2), polygon[:, 1]]
    high = np.c_[polygon[:, 0], np.full(n, depth / 2), polygon[:, 1]]
    verts = np.r_[low, high]
    faces = [list(range(n)), list(range(n, 2 * n))]  # fan from vertex 0: polygon[0] must see every vertex
    faces += [[i, (i + 1) % n, n + (i + 1) % n, n + i] for i in range(n)]
    return verts, faces


def _shapes() -> dict[str, tuple[np.ndarray, list[list[int]]]]:
    """Name -> (vertices (V, 3) float, faces as vertex-index polygons)."""
    cube = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) * 0.55
    cube_faces = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    tetra = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float) * 0.55
    tetra_faces = [[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]]
    octa = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float) * 0.9
    octa_faces = [[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]]
    pyramid = np.array([[-1, -0.6, -1], [1, -0.6, -1], [1, -0.6, 1], [-1, -0.6, 1], [0, 0.9, 0]], float) * 0.6
    pyramid_faces = [[0, 1, 2, 3], [0, 4, 1], [1, 4, 2], [2, 4, 3], [3, 4, 0]]
    tri = np.array([[math.cos(a), math.sin(a)] for a in np.radians([90, 210, 330])]) * 0.75
    ell = np.array([[-0.6, -0.6], [0.6, -0.6], [0.6, -0.2], [-0.2, -0.2], [-0.2, 0.7], [-0.6, 0.7]])
    return {
        "cube": (cube, cube_faces),
        "tetrahedron": (tetra, tetra_faces),
        "octahedron": (octa, octa_faces),
        "prism": _prism(tri, 1.1),
        "pyramid": (pyramid, pyramid_faces),
        "ell": _prism(ell, 0.5),
    }


SHAPES = _shapes()
SHAPE_NAMES = tuple(SHAPES)


def rotation(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """The object-to-camera rotation (3, 3) float64: turn by the azimuth about the vertical y axis,
    then tilt the object toward the viewer by the elevation (about x).

    Camera frame: x right, y up, z toward the viewer. Azimuth +90° takes the point (0, 0, 1) that
    faces the viewer to (1, 0, 0), the right of the screen (counter-clockwise seen from above).
    """
    a, e = math.radians(azimuth_deg), math.radians(elevation_deg)
    ry = np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(e), -math.sin(e)], [0.0, math.sin(e), math.cos(e)]])
    return rx @ ry


def project(points: np.ndarray, size: int) -> np.ndarray:
    """Camera-frame points (N, 3) -> pixel coordinates (N, 2) float (column, row) of an S×S image;
    the unit disc maps inside the frame (orthographic; row 0 is the top)."""
    half = size / 2.0
    return np.c_[half + points[:, 0] * half * FILL, half - points[:, 1] * half * FILL]


def triangles(shape: str) -> tuple[np.ndarray, np.ndarray]:
    """The shape's triangles (T, 3, 3) float64 and their face index (T,) int64 (fan triangulation)."""
    if shape not in SHAPES:
        raise DataError(f"objects3d: unknown shape {shape!r}; known: {', '.join(SHAPE_NAMES)}")
    verts, faces = SHAPES[shape]
    tris, ids = [], []
    for f, poly in enumerate(faces):
        for i in range(1, len(poly) - 1):
            tris.append(verts[[poly[0], poly[i], poly[i + 1]]])
            ids.append(f)
    return np.asarray(tris), np.asarray(ids, np.int64)


def render(shape: str, albedo: np.ndarray, scale: float, azimuth_deg: float, elevation_deg: float, size: int) -> np.ndarray:
    """One view: float64 (size, size) in [0, 1], black background.

    ``albedo``: grey level per face (F,) in [0, 1]; ``scale`` ≤ 1 shrinks the object (it stays in
    the unit sphere). Flat Lambertian shading under a light fixed in the camera frame, a z-buffer
    per sub-pixel, then the 2×2 sub-pixels averaged.
    """
    tris, face = triangles(shape)
    if albedo.shape != (int(face.max()) + 1,):
        raise DataError(f"objects3d: shape {shape!r} has {int(face.max()) + 1} faces, got {albedo.shape[0]} albedos")
    cam = tris.reshape(-1, 3) @ rotation(azimuth_deg, elevation_deg).T * scale
    cam = cam.reshape(-1, 3, 3)
    big = size * SUPERSAMPLE
    px = project(cam.reshape(-1, 3), big).reshape(-1, 3, 2)
    normal = np.cross(cam[:, 1] - cam[:, 0], cam[:, 2] - cam[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    normal *= np.where(normal[:, 2:] < 0, -1.0, 1.0)  # the visible side of a closed mesh faces the viewer
    shade = albedo[face] * (AMBIENT + (1 - AMBIENT) * np.clip(normal @ LIGHT, 0, None))
    # sub-pixel centres
    c = np.arange(big) + 0.5
    pc, pr = np.meshgrid(c, c)  # (big, big): column, row
    p = np.stack([pc.ravel(), pr.ravel()], 1)  # (P, 2)
    a, b, d = px[:, 0][:, None], px[:, 1][:, None], px[:, 2][:, None]  # (T, 1, 2)

    def edge(u, v, q):
        return (v[..., 0] - u[..., 0]) * (q[..., 1] - u[..., 1]) - (v[..., 1] - u[..., 1]) * (q[..., 0] - u[..., 0])

    area = edge(a, b, d)  # (T, 1)
    w0, w1, w2 = edge(b, d, p[None]), edge(d, a, p[None]), edge(a, b, p[None])  # (T, P)
    safe = np.where(np.abs(area) < 1e-12, 1.0, area)
    inside = (np.sign(w0) * np.sign(safe) >= 0) & (np.sign(w1) * np.sign(safe) >= 0) & (np.sign(w2) * np.sign(safe) >= 0)
    inside &= np.abs(area) >= 1e-12
    depth = (w0 * cam[:, 0, 2:3] + w1 * cam[:, 1, 2:3] + w2 * cam[:, 2, 2:3]) / safe  # z toward the viewer
    depth = np.where(inside, depth, -np.inf)
    front = depth.argmax(0)
    hit = np.isfinite(depth.max(0))
    image = np.where(hit, shade[front], 0.0).reshape(big, big)
    return image.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean((1, 3))


def azimuth_grid(step_deg: float) -> np.ndarray:
    """The rendered azimuths in degrees: −180, −180 + step, ... (< 180); 360 must be a multiple of step."""
    if not 0.0 < step_deg <= 360.0:  # before dividing by it (also refuses NaN)
        raise DataError(f"objects3d: azimuth_step_deg must lie in (0, 360] and divide 360, got {step_deg}")
    n = 360.0 / step_deg
    if abs(n - round(n)) > 1e-9:
        raise DataError(f"objects3d: azimuth_step_deg must divide 360, got {step_deg}")
    return -180.0 + step_deg * np.arange(int(round(n)))


def in_arc(theta_deg, arc: tuple[float, float]) -> np.ndarray:
    """Bool mask: which angles (degrees, any value) lie on the arc [start, end) taken modulo 360°."""
    start, end = arc
    return np.mod(np.asarray(theta_deg, np.float64) - start, 360.0) < (end - start)


def check_heldout(start_deg: float, width_deg: float, step_deg: float) -> None:
    """DataError unless the held-out arc lies in the range, holds at least one azimuth of the grid
    (an empty arc left every held-out metric out and the report without its numbers) and leaves at
    least two azimuths to train on."""
    lo, hi = ANGLE_RANGE_DEG
    if not (lo <= start_deg < hi) or not (0.0 <= width_deg <= hi - lo - 2 * step_deg):
        raise DataError(f"objects3d: held-out arc start {start_deg}° width {width_deg}° must have start in [{lo}, {hi}) "
                        f"and width in [0, {hi - lo - 2 * step_deg}] (two azimuths of the {step_deg}° grid left to train on)")
    if not in_arc(azimuth_grid(step_deg), (start_deg, start_deg + width_deg)).any():
        raise DataError(f"objects3d: held-out arc [{start_deg}°, {start_deg + width_deg}°) holds no azimuth of the {step_deg}° grid: "
                        "nothing would be held out (widen it or move its start onto the grid)")


def face_levels(shape: str) -> np.ndarray:
    """The shape's grey level per face (F,) float64: distinct levels spread over [0.45, 1] in an order
    fixed per shape, so that no turn maps the object onto an identical view and a face hidden in
    one view has a known grey level in every other (one view determines all views)."""
    faces = len(SHAPES[shape][1])
    order = np.random.default_rng(SHAPE_NAMES.index(shape)).permutation(faces)
    return np.linspace(0.45, 1.0, faces)[order]


def object_instances(n: int, seed: int) -> list[dict]:
    """n object instances (shapes in turn): shape name, per-face grey levels (the shape's
    ``face_levels`` times a brightness in [0.8, 1]) and scale in [0.8, 1], from a seeded generator."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        shape = SHAPE_NAMES[i % len(SHAPE_NAMES)]
        out.append({"shape": shape, "albedo": face_levels(shape) * rng.uniform(0.8, 1.0), "scale": float(rng.uniform(0.8, 1.0))})
    return out


def write_objects3d(out_dir: str | Path, *, objects_train: int, objects_test: int, image_size: int, azimuth_step_deg: float,
                    elevation_deg: float, heldout_start_deg: float, heldout_width_deg: float, seed: int,
                    shard_size: int, inplane_range_deg: float = 180.0) -> dict:
    """Render the objects and write shards (``train``: train objects at seen azimuths only; ``test``:
    other objects at every azimuth) and the manifest under ``out_dir``; return the manifest."""
    if objects_train < 1 or objects_test < 1:
        raise DataError(f"objects3d: objects_train and objects_test must be >= 1, got {objects_train}, {objects_test}")
    if image_size < 8 or image_size % 4:
        raise DataError(f"objects3d: image_size must be >= 8 and divisible by 4, got {image_size}")
    if not 0.0 <= inplane_range_deg <= 180.0:
        raise DataError(f"objects3d: inplane_range_deg must lie in [0, 180], got {inplane_range_deg}")
    grid = azimuth_grid(azimuth_step_deg)
    check_heldout(heldout_start_deg, heldout_width_deg, azimuth_step_deg)
    arc = (float(heldout_start_deg), float(heldout_start_deg + heldout_width_deg))
    held = in_arc(grid, arc)
    instances = object_instances(objects_train + objects_test, seed)

    def samples():
        for split, first, count in (("test", objects_train, objects_test), ("train", 0, objects_train)):
            for o in range(first, first + count):
                inst = instances[o]
                for k, az in enumerate(grid):
                    if split == "train" and held[k]:
                        continue
                    img = render(inst["shape"], inst["albedo"], inst["scale"], az, elevation_deg, image_size)
                    meta = {"object": o, "shape": inst["shape"], "azimuth_deg": float(az)}
                    yield split, {"__key__": f"o{o:05d}_a{k:04d}", "image.npy": npy_bytes(np.round(img * 255).astype(np.uint8)),
                                  "json": json.dumps(meta, sort_keys=True).encode()}

    manifest = {
        "dataset": "objects3d",
        "labels": list(SHAPE_NAMES),
        "source": {"kind": "synthetic: numpy renderer (cnninterp.data.objects3d)", "objects": objects_train + objects_test},
        "image_size": int(image_size),
        "factors": {
            "azimuth_deg": {
                "range": list(ANGLE_RANGE_DEG),
                "stored": f"per sample (rendered on a {azimuth_step_deg}° grid)",
                "grid": [float(a) for a in grid],
                "heldout": list(arc),
                "heldout_note": "held-out azimuths are absent from the train split; the test split has other objects at every azimuth",
            },
            "inplane_deg": {"range": [-float(inplane_range_deg), float(inplane_range_deg)],
                            "drawn": "at training and evaluation time (image roll about the centre), uniform on the range",
                            "heldout": None},
        },
        "config": {"objects_train": objects_train, "objects_test": objects_test, "image_size": image_size,
                   "azimuth_step_deg": azimuth_step_deg, "elevation_deg": elevation_deg, "heldout_start_deg": heldout_start_deg,
                   "heldout_width_deg": heldout_width_deg, "inplane_range_deg": inplane_range_deg, "seed": seed},
    }
    return write_shards(samples(), out_dir, shard_size, manifest)


def load_views(shard_dir: str | Path, split: str) -> dict:
    """A split as a view grid.

    Returns ``images`` float32 (O, K, 1, S, S) in [0, 1] (object × azimuth), ``azimuth_deg``
    float64 (K,), ``shape`` int64 (O,) (index into the manifest's labels), ``objects`` int64 (O,).
    DataError when the split is empty, an object misses an azimuth another has, or an azimuth lies
    outside the declared range.
    """
    manifest = read_manifest(shard_dir)
    labels = manifest["labels"]
    views: dict[int, dict[float, np.ndarray]] = {}
    shape_of: dict[int, int] = {}
    for sample in iter_samples(shard_paths(shard_dir, [split])):
        meta = json.loads(sample["json"])
        az = float(meta["azimuth_deg"])
        check_angles(np.array([az]), f"{shard_dir}: sample {sample['__key__']} azimuth")
        views.setdefault(int(meta["object"]), {})[az] = npy_load(sample["image.npy"])
        shape_of[int(meta["object"])] = labels.index(meta["shape"])
    if not views:
        raise DataError(f"{shard_dir}: split {split!r} holds no views")
    objects = sorted(views)
    azimuths = sorted(views[objects[0]])
    for o in objects:
        if sorted(views[o]) != azimuths:
            raise DataError(f"{shard_dir}: split {split!r}: object {o} has azimuths {sorted(views[o])}, object {objects[0]} has {azimuths}")
    images = np.stack([np.stack([views[o][a] for a in azimuths]) for o in objects])[:, :, None]
    return {"images": images.astype(np.float32) / 255.0, "azimuth_deg": np.asarray(azimuths),
            "shape": np.asarray([shape_of[o] for o in objects], np.int64), "objects": np.asarray(objects, np.int64)}


def inplane_range(shard_dir: str | Path) -> float:
    """r of the manifest's in-plane factor range [−r, r] in degrees (180: the whole circle)."""
    lo, hi = read_manifest(shard_dir)["factors"]["inplane_deg"]["range"]
    return float(hi)


def heldout_arc(shard_dir: str | Path) -> tuple[float, float]:
    """The manifest's held-out azimuth arc (start, end) in degrees."""
    start, end = read_manifest(shard_dir)["factors"]["azimuth_deg"]["heldout"]
    return float(start), float(end)


def check_angles(theta_deg: np.ndarray, what: str = "azimuth") -> None:
    """DataError when any angle (degrees) lies outside the factor's declared range [−180°, 180°)."""
    theta_deg = np.asarray(theta_deg, dtype=np.float64)
    lo, hi = ANGLE_RANGE_DEG
    bad = ~((theta_deg >= lo) & (theta_deg < hi))
    if bad.any():
        raise DataError(f"objects3d: {what} {float(theta_deg[bad][0])}° lies outside the declared range [{lo}°, {hi}°)")
