"""The ``driving`` dataset: frame sequences with a steering target and, where known, the causal mask.

Three sources write the same shards (``results/shards/driving/<split>-NNNNNN.tar``), one sample per
sequence of T frames:

- ``frames.npy``  uint8 (T, 3, H, W) RGB,
- ``angle.npy``   float32 (T,) steering angle in radians,
- ``cause.npy``   uint8 (T, H, W) 1 on the pixels that determine the target (synthetic only),
- ``distractor.npy`` uint8 (T, H, W) 1 on distractor pixels (synthetic only).

Synthetic roads (``generate_driving``)
    A flat road seen from a camera ``CAM_HEIGHT`` m above it. Inside the look-ahead band the road
    centre's lateral position at distance z ahead is the cubic P(z) = offset + heading·z + c0·z²/2
    + c1·z³/6 (metres); from ``ramp_m`` m outside the band on (``RAMP`` by default), it is an independent cubic Q (blended
    smoothly in between; ``Road``), and all eight coefficients drift smoothly and independently
    over the sequence. Why: with one cubic everywhere, any four marking depths outside the band
    determine X(L) exactly (held-out R² 1.000 from the markings at 3–6 m), so the band would not be
    the cause; with the outer road, R² from the markings beyond the ramp is 0.0 (measured,
    ``tests/test_attention_data.py``). Image row y (below the
    horizon row) sees the ground at depth z = f·CAM_HEIGHT/(y − horizon); column x = W/2 + f·X/z.
    The target is pure pursuit on the lane centre at the look-ahead distance L:
    δ = atan(2·WHEELBASE·X(L)/L²). It is a function of the road's geometry alone
    (``pursuit_angle``). Drawn from the same geometry: white edge lines, a dashed yellow centre
    line. Distractors (trees, cars, signs, shadows) are placed and moved in screen space at random,
    independently of the road, and drawn *under* the markings, so they never hide the cause. The
    causal mask is the marking pixels in the look-ahead band, the rows whose depth lies in
    [L/band, L·band].

Real formats (readers; sequences never cross a piece boundary, the split never a drive)
    A *drive* is one source recording: the split holds out whole drives, or a block at each drive's
    end (``split_windows``). A *piece* (``Recording``) is a run of consecutive frames inside one
    drive; sequences are cut inside pieces. Cutting a drive into pieces does not make them
    independent (neighbouring pieces can be seconds apart), so pieces of one drive always stay on
    one side of the split (``Recording.drive``).

    - Udacity: a folder holding ``interpolated.csv`` (header ``index,timestamp,width,height,
      frame_id,filename,angle,torque,speed,lat,long,alt``, timestamp in ns, angle in radians),
      frames under ``center/`` etc.; only ``center_camera`` rows are used. Drive: each folder with
      its own ``interpolated.csv`` (the given one, or its sub-folders). Pieces: cut at each
      timestamp gap above ``max_gap_s``.
    - comma.ai research: ``camera/<name>.h5`` (dataset ``X`` uint8 (N, 3, 160, 320), 20 Hz) and
      ``log/<name>.h5`` (100 Hz; ``cam1_ptr`` the camera frame of each log row, ``steering_angle``
      in degrees of the steering wheel, ``speed``). A frame's angle is the mean of its log rows,
      converted to radians. Drive: each ``<name>``. Pieces: cut where frames have no log row.

Each split can be written on its own (``splits``), into its own folder: the training data's job
then depends only on the settings that change the training data. Both manifests record
``shared``, the settings both splits were drawn with, so an evaluation can refuse a test split
that does not belong to the training split (``check_same_draw``).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import DataError
from .shards import npy_bytes, npy_load, iter_samples, shard_paths, write_shards

CAM_HEIGHT = 1.5  # metres
WHEELBASE = 2.7  # metres
ROAD_HALF_WIDTH = 1.8  # metres
LINE_WIDTH = 0.15  # metres
DASH = 3.0  # metres: centre-line dash and gap length
RAMP = 1.5  # metres: how fast the independent outer road takes over outside the look-ahead band
HORIZON = 0.3  # horizon row as a fraction of the image height
SKY, GRASS, ASPHALT = (150, 190, 230), (70, 130, 60), (105, 105, 105)
EDGE, CENTRE = (250, 250, 250), (240, 200, 40)
DISTRACTOR_COLOURS = {"tree": (30, 85, 35), "car": (200, 40, 40), "sign": (230, 120, 20)}
UDACITY_COLUMNS = ("index", "timestamp", "width", "height", "frame_id", "filename", "angle", "torque", "speed", "lat", "long", "alt")


# ---------------------------------------------------------------------------------------------
# synthetic roads
@dataclass(frozen=True)
class Road:
    """The road's geometry in one frame. Its centre's lateral position (metres) at depth z is
    X(z) = P(z) + gate(z) · (Q(z) − P(z)), where P(z) = offset + heading·z + c0·z²/2 + c1·z³/6 and
    Q is the same cubic with the coefficients ``outer`` (an independent road outside the band);
    ``gate`` is 0 at depths inside ``quiet`` = (near, far) and rises smoothly to exactly 1 at
    ``ramp`` metres outside it (default ``RAMP``; 0: at once), so beyond that the road shows nothing
    of P. Without ``outer`` the road is P everywhere. ``travel`` (metres driven)
    moves the centre-line dashes."""

    offset: float
    heading: float
    c0: float
    c1: float
    travel: float = 0.0
    outer: tuple = ()
    quiet: tuple = (0.0, 0.0)
    ramp: float = RAMP  # metres; 0: Q takes over at the band's edges at once

    def lateral(self, z):
        """Lateral position (m) of the road centre at depth z (m); z float or array (float64)."""
        z = np.asarray(z, np.float64)
        x = cubic((self.offset, self.heading, self.c0, self.c1), z)
        if self.outer:
            d = np.maximum(np.maximum(self.quiet[0] - z, z - self.quiet[1]), 0.0)
            u = np.minimum(d / self.ramp, 1.0) if self.ramp > 0 else (d > 0).astype(np.float64)
            gate = u * u * (3 - 2 * u)  # smoothstep: 0 in the band, exactly 1 from ``ramp`` metres outside it
            x = x + gate * (cubic(self.outer, z) - x)
        return x


def cubic(coeffs, z):
    """offset + heading·z + c0·z²/2 + c1·z³/6 for coeffs (offset, heading, c0, c1); z float64 array."""
    offset, heading, c0, c1 = coeffs
    return offset + heading * z + c0 * z**2 / 2 + c1 * z**3 / 6


@dataclass(frozen=True)
class Distractor:
    """A distractor in screen coordinates (fractions of width/height); kind in tree, car, sign, shadow."""

    kind: str
    x: float
    y: float
    size: float


@dataclass(frozen=True)
class Camera:
    """Image size and the geometry of the look-ahead band."""

    height: int = 40
    width: int = 80
    lookahead: float = 10.0
    band: float = 1.3
    pitch: float = 0.0  # the horizon row's shift (pixels, + down) from HORIZON · height: the camera's pitch

    @property
    def focal(self) -> float:
        return float(self.width)

    @property
    def horizon(self) -> float:
        return HORIZON * self.height + self.pitch


def pursuit_angle(road: Road, lookahead: float) -> float:
    """Pure-pursuit steering angle (radians) towards the lane centre at ``lookahead`` metres."""
    return math.atan(2 * WHEELBASE * float(road.lateral(lookahead)) / lookahead**2)


def row_depths(camera: Camera) -> np.ndarray:
    """float64 (H,): ground depth (m) seen by each row's centre; inf at and above the horizon."""
    dy = np.arange(camera.height) + 0.5 - camera.horizon
    with np.errstate(divide="ignore"):
        z = np.where(dy > 0, camera.focal * CAM_HEIGHT / np.maximum(dy, 1e-9), np.inf)
    return z


def markings(road: Road, camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bool (H, W) masks of the road surface, the edge lines and the centre-line dashes."""
    h, w, f = camera.height, camera.width, camera.focal
    z = row_depths(camera)[:, None]
    ground = np.isfinite(z)
    zz = np.where(ground, z, 1.0)
    cols = np.arange(w)[None, :] + 0.5
    centre = w / 2 + f * road.lateral(zz) / zz
    half = f * ROAD_HALF_WIDTH / zz
    line = np.maximum(f * LINE_WIDTH / zz, 0.6)  # at least about one pixel wide
    d = cols - centre
    surface = ground & (np.abs(d) <= half + line / 2)
    edges = ground & (np.abs(np.abs(d) - half) <= line / 2)
    dashes = ground & (np.floor((zz + road.travel) / DASH) % 2 == 0) & (np.abs(d) <= line / 2)
    return surface, edges, dashes & ~edges


def cause_mask(road: Road, camera: Camera) -> np.ndarray:
    """uint8 (H, W): the marking pixels (edges, centre dashes) whose depth lies in the look-ahead band."""
    _, edges, dashes = markings(road, camera)
    z = row_depths(camera)[:, None]
    band = (z >= camera.lookahead / camera.band) & (z <= camera.lookahead * camera.band)
    return ((edges | dashes) & band).astype(np.uint8)


def distractor_mask(d: Distractor, camera: Camera) -> np.ndarray:
    """Bool (H, W): the pixels a distractor covers (a disc for trees, a box for the others)."""
    h, w = camera.height, camera.width
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    cx, cy, r = d.x * w, d.y * h, max(d.size * h, 1.0)
    if d.kind == "tree":
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2
    if d.kind == "shadow":
        return (np.abs(xx - cx) <= 2.5 * r) & (np.abs(yy - cy) <= 0.5 * r)
    if d.kind == "sign":
        return (np.abs(xx - cx) <= 0.5 * r) & (np.abs(yy - cy) <= 0.5 * r)
    return (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= 0.6 * r)


def render_frame(road: Road, distractors: list[Distractor], camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one frame. Returns (image uint8 (3, H, W), cause uint8 (H, W), distractor uint8 (H, W)).

    Order: sky and grass, the road surface, the distractors, then the markings on top.
    """
    h, w = camera.height, camera.width
    img = np.empty((h, w, 3), np.float32)
    img[:] = GRASS
    img[: int(math.ceil(camera.horizon))] = SKY
    surface, edges, dashes = markings(road, camera)
    img[surface] = ASPHALT
    covered = np.zeros((h, w), bool)
    for d in distractors:
        m = distractor_mask(d, camera)
        if d.kind == "shadow":
            img[m] *= 0.55
        else:
            img[m] = DISTRACTOR_COLOURS[d.kind]
        covered |= m
    img[edges] = EDGE
    img[dashes] = CENTRE
    covered &= ~(edges | dashes)
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8).transpose(2, 0, 1)
    return np.ascontiguousarray(image), cause_mask(road, camera), covered.astype(np.uint8)


@dataclass
class RoadSpec:
    """Ranges of the synthetic roads and distractors (see the module docstring)."""

    camera: Camera = field(default_factory=Camera)
    seq_len: int = 8
    offset: float = 0.6
    heading: float = 0.04
    c0: float = 0.01
    c1: float = 0.0004
    distractors: int = 5
    speed: float = 2.0  # metres per frame
    outer: bool = True  # outside the look-ahead band the road follows an independent cubic
    lateral_scale: float = 1.0  # multiplies the drift amplitudes offset, heading, c0, c1 (road_sequence)
    pitch_px: float = 0.0  # drift amplitude (pixels) of the horizon row per frame (synthetic_sequence)
    ramp_m: float = RAMP  # metres over which the outer road takes over outside the band (Road.ramp)


def _drift(rng: np.random.Generator, amplitude: float, steps: int) -> np.ndarray:
    """float64 (steps,): a smooth curve in [-amplitude, amplitude] (random phase, slow frequency)."""
    t = np.arange(steps)
    a, b = rng.uniform(-1, 1, 2)
    freq, phase = rng.uniform(0.05, 0.25), rng.uniform(0, 2 * np.pi)
    return amplitude * np.clip(0.6 * a + 0.4 * b * np.sin(2 * np.pi * freq * t + phase), -1, 1)


def road_sequence(rng: np.random.Generator, spec: RoadSpec) -> list[Road]:
    """The road geometry of each of ``spec.seq_len`` frames, each coefficient drifting on its own
    within ``spec.lateral_scale`` times its amplitude (offset, heading, c0, c1).

    Why the scale: with the amplitudes × 1 (80×160 frames, look-ahead 10 m) the causal pixels'
    column centroid moves by a standard deviation of 6.2 px over frames (5-95 %: columns 71-91),
    less than one 8-px feature cell, so fixed cells on the grass beside the markings, whose 61-px
    fields see them, were as good a place for the attention as the markings; × 3 gives 18.2 px
    (54-116) and the road crosses cells as a curving road does in driving video."""
    n, cam = spec.seq_len, spec.camera
    amplitudes = [a * spec.lateral_scale for a in (spec.offset, spec.heading, spec.c0, spec.c1)]
    coeffs = [_drift(rng, a, n) for a in amplitudes]
    start = rng.uniform(0, 2 * DASH)
    outer = [_drift(rng, a, n) for a in amplitudes]
    quiet = (cam.lookahead / cam.band, cam.lookahead * cam.band)
    return [Road(*(float(c[t]) for c in coeffs), travel=start + spec.speed * t, quiet=quiet,
                 outer=tuple(float(c[t]) for c in outer) if spec.outer else (), ramp=spec.ramp_m)
            for t in range(n)]


def distractor_sequence(rng: np.random.Generator, spec: RoadSpec) -> list[list[Distractor]]:
    """Per frame, ``spec.distractors`` distractors that move on their own straight screen paths."""
    kinds = ("tree", "car", "sign", "shadow")
    tracks = []
    for _ in range(spec.distractors):
        kind = kinds[rng.integers(len(kinds))]
        y0 = rng.uniform(0.1, 0.3) if kind == "sign" else rng.uniform(HORIZON + 0.05, 0.95)
        x0, size = rng.uniform(0, 1), rng.uniform(0.07, 0.16)
        vx, vy = rng.uniform(-0.05, 0.05, 2)
        tracks.append((kind, x0, y0, size, vx, vy))
    return [
        [Distractor(k, float((x + vx * t) % 1.0), float(np.clip(y + vy * t, 0.05, 0.98)), s) for k, x, y, s, vx, vy in tracks]
        for t in range(spec.seq_len)
    ]


def synthetic_sequence(rng: np.random.Generator, spec: RoadSpec) -> dict[str, np.ndarray]:
    """One sequence: frames uint8 (T, 3, H, W), angle float32 (T,), cause and distractor uint8 (T, H, W).

    With ``spec.pitch_px`` > 0 the camera's pitch drifts (the horizon row moves by up to that many
    pixels), so the look-ahead band's rows move in the image. Why: on a flat road seen by a fixed
    camera the band always lies on the same image rows, and cells above or below it, whose 61-px
    fields see it, were as good a place for the attention as the band itself."""
    roads = road_sequence(rng, spec)
    dists = distractor_sequence(rng, spec)
    cams = [spec.camera] * spec.seq_len
    if spec.pitch_px > 0:  # drawn last, so that pitch_px 0 leaves every other draw (and the data) as before
        cams = [replace(spec.camera, pitch=float(p)) for p in _drift(rng, spec.pitch_px, spec.seq_len)]
    frames, causes, distract = zip(*(render_frame(r, d, c) for r, d, c in zip(roads, dists, cams)))
    angle = np.array([pursuit_angle(r, spec.camera.lookahead) for r in roads], np.float32)
    return {"frames": np.stack(frames), "angle": angle, "cause": np.stack(causes), "distractor": np.stack(distract)}


def _sample(key: str, arrays: dict[str, np.ndarray]) -> dict:
    return {"__key__": key, **{f"{name}.npy": npy_bytes(np.ascontiguousarray(a)) for name, a in arrays.items()}}


SPLITS = ("train", "test")


def _check_splits(splits) -> tuple[str, ...]:
    splits = tuple(splits)
    if not splits or any(s not in SPLITS for s in splits) or len(set(splits)) != len(splits):
        raise ValueError(f"splits must be distinct names among {SPLITS}, got {splits}")
    return splits


def generate_driving(out_dir: str | Path, spec: RoadSpec, train_sequences: int, test_sequences: int,
                     seed: int = 0, shard_size: int = 64, splits=SPLITS) -> dict:
    """Write synthetic road sequences as driving shards (the splits named in ``splits``, train and
    test by default); return the manifest.

    Each split draws from its own seed stream (``default_rng([seed, 0])`` for train, ``[seed, 1]``
    for test), so the training sequences are the same whatever ``test_sequences`` is (and the test
    sequences whatever ``train_sequences`` is), and a folder holding one split has a manifest that
    does not mention the other split's count: the training data's job is keyed by the settings
    that change the training data only."""
    cam = spec.camera
    splits = _check_splits(splits)
    counts = {"train": train_sequences, "test": test_sequences}

    def samples():
        for split in ("test", "train"):
            if split not in splits:
                continue
            sub = np.random.default_rng([seed, 0 if split == "train" else 1])
            for i in range(counts[split]):
                yield split, _sample(f"seq-{i:06d}", synthetic_sequence(sub, spec))

    shared = {"seq_len": spec.seq_len, "offset": spec.offset, "heading": spec.heading, "c0": spec.c0, "c1": spec.c1,
              "distractors": spec.distractors, "speed": spec.speed, "outer": spec.outer,
              "lateral_scale": spec.lateral_scale, "pitch_px": spec.pitch_px, "ramp_m": spec.ramp_m, "height": cam.height, "width": cam.width,
              "lookahead": cam.lookahead, "band": cam.band, "seed": seed}
    config = {**shared, **{f"{s}_sequences": counts[s] for s in SPLITS if s in splits}, "shard_size": shard_size}
    manifest = {"dataset": "driving", "source": {"kind": "synthetic"}, "config": config, "has_cause": True,
                "height": cam.height, "width": cam.width, "seq_len": spec.seq_len, "angle_unit": "rad",
                "fields": ["frames", "angle", "cause", "distractor"], "shared": {"source": {"kind": "synthetic"}, **shared}}
    return write_shards(samples(), out_dir, shard_size, manifest)


def check_same_draw(train_dir: str | Path, test_dir: str | Path) -> None:
    """Refuse a test split that was not drawn with its training split: the ``shared`` settings of
    the two folders' manifests (source, generator or reader settings, the split rule; see
    ``generate_driving`` / ``convert_recordings``) must be equal. DataError naming both manifests
    and the first differing setting otherwise."""
    from .shards import MANIFEST, read_manifest

    if Path(train_dir).resolve() == Path(test_dir).resolve():
        return
    train, test = read_manifest(train_dir).get("shared"), read_manifest(test_dir).get("shared")
    if train is None or test is None or train != test:
        keys = sorted(set(train or {}) | set(test or {}), key=lambda k: (k in ("recordings", "split"), k))  # settings first
        diff = next((k for k in keys if (train or {}).get(k) != (test or {}).get(k)), "shared")
        raise DataError(
            f"{Path(test_dir) / MANIFEST} was not drawn with {Path(train_dir) / MANIFEST}: {diff} is "
            f"{(test or {}).get(diff)!r} there against {(train or {}).get(diff)!r}, so its sequences are not held out "
            f"from that training data; write both splits with the same settings (cnninterp attention data --split train / test)")


# ---------------------------------------------------------------------------------------------
# real formats
@dataclass
class Recording:
    """One piece of a drive: frames uint8 (N, 3, H, W) and angles float32 (N,) radians, consecutive
    in time. ``drive`` names the source recording it was cut from (the Udacity folder, the comma.ai
    file; see the module docstring); empty: the piece is a drive of its own."""

    name: str
    frames: np.ndarray
    angle: np.ndarray
    drive: str = ""

    @property
    def source(self) -> str:
        """The drive's name (``drive``, or ``name`` for a piece that is a drive of its own)."""
        return self.drive or self.name


def _resize(frame_hwc: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (h, w, 3) -> uint8 (3, height, width), bilinear."""
    from PIL import Image

    img = Image.fromarray(frame_hwc).convert("RGB").resize((width, height), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def _finite_angle(value: str | float, where: str) -> float:
    try:
        angle = float(value)
    except ValueError:
        raise DataError(f"{where}: angle {value!r} is not a number") from None
    if not math.isfinite(angle):
        raise DataError(f"{where}: angle is {angle}; remove or fix the row")
    return angle


def udacity_tables(folder: str | Path) -> list[Path]:
    """The ``interpolated.csv`` of the Udacity folder ``folder``, or of each of its sub-folders (one
    drive each, in name order): what ``read_udacity`` reads, and what keys the driving shards in
    the DAG. DataError naming the folder if it holds neither."""
    folder = Path(folder)
    if (folder / "interpolated.csv").is_file():
        return [folder / "interpolated.csv"]
    tables = sorted(folder.glob("*/interpolated.csv"))
    if not tables:
        raise DataError(f"{folder / 'interpolated.csv'} is missing: a Udacity folder holds interpolated.csv and the frame "
                        "folders (or sub-folders that each do)")
    return tables


def comma_files(root: str | Path) -> list[Path]:
    """The comma.ai files under ``root``, each ``camera/<name>.h5`` followed by its ``log/<name>.h5``,
    in name order: what ``read_comma`` reads, and what keys the driving shards in the DAG.
    DataError naming the folder if there is no camera file, or the camera file whose log is missing."""
    root = Path(root)
    cams = sorted((root / "camera").glob("*.h5"))
    if not cams:
        raise DataError(f"{root / 'camera'} holds no .h5 files: expected camera/<name>.h5 and log/<name>.h5")
    files = []
    for cam in cams:
        log = root / "log" / cam.name
        if not log.is_file():
            raise DataError(f"{cam} has no log file {log}")
        files += [cam, log]
    return files


def source_files(source: str, path: str | Path) -> list[Path]:
    """The files the driving shards of ``source`` read from ``path``, for the DAG's inputs (a file
    edited inside a folder does not change the folder's time): none for ``synthetic``,
    ``udacity_tables`` for ``udacity`` (the frames are not listed), ``comma_files`` for ``comma``."""
    if source == "synthetic":
        return []
    if source == "udacity":
        return udacity_tables(path)
    if source == "comma":
        return comma_files(path)
    raise ValueError(f"unknown driving source {source!r}")


def read_udacity(folder: str | Path, height: int, width: int, max_gap_s: float = 0.5) -> list[Recording]:
    """Read a Udacity folder (``interpolated.csv`` + frames), or a folder whose sub-folders are such
    folders (one drive each, in name order): the center_camera frames in time order, cut into pieces
    at timestamp gaps above ``max_gap_s``. Each piece's ``drive`` is its folder's name (the pieces of
    one folder are one drive and stay on one side of the split). Frames uint8 (N, 3, height,
    width), angles float32 (N,) radians. DataError names the file on bad input."""
    tables = udacity_tables(folder)
    if tables != [Path(folder) / "interpolated.csv"]:
        return [rec for table in tables for rec in read_udacity(table.parent, height, width, max_gap_s)]
    folder = Path(folder)
    csv_path = tables[0]
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in UDACITY_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{csv_path}: missing column(s) {', '.join(missing)} (expected header {','.join(UDACITY_COLUMNS)})")
        rows = []
        for line, row in enumerate(reader, start=2):
            where = f"{csv_path} line {line}"
            if any(row[c] is None for c in UDACITY_COLUMNS):
                raise DataError(f"{where}: fewer fields than the header's {len(UDACITY_COLUMNS)}")
            if row["frame_id"] != "center_camera":
                continue
            try:
                stamp = int(float(row["timestamp"]))
            except (ValueError, OverflowError):  # OverflowError: inf
                raise DataError(f"{where}: timestamp {row['timestamp']!r} is not a finite number") from None
            rows.append((stamp, row["filename"], _finite_angle(row["angle"], where), line))
    if not rows:
        raise DataError(f"{csv_path}: no center_camera rows")
    rows.sort()
    from PIL import Image

    recordings, frames, angles, last = [], [], [], None

    def close():
        if frames:
            recordings.append(Recording(f"{folder.name}-{len(recordings)}", np.stack(frames), np.array(angles, np.float32),
                                        drive=folder.name))
        frames.clear()
        angles.clear()

    for stamp, filename, angle, line in rows:
        path = folder / filename
        if not path.is_file():
            raise DataError(f"{csv_path} line {line}: frame {filename} is listed but {path} is missing")
        if last is not None and (stamp - last) / 1e9 > max_gap_s:
            close()
        last = stamp
        try:
            with Image.open(path) as img:
                frames.append(_resize(np.asarray(img.convert("RGB")), height, width))
        except OSError as err:
            raise DataError(f"{csv_path} line {line}: frame {path} is not a readable image ({err})") from None
        angles.append(angle)
    close()
    return recordings


class CommaRecordings(list):
    """``read_comma``'s pieces (a list of ``Recording``) and ``unlogged``: {drive: count of its camera
    frames that no log row points at}, left out of every piece (``dropped_frames`` records them)."""

    def __init__(self, pieces=(), unlogged: dict[str, int] | None = None):
        super().__init__(pieces)
        self.unlogged = dict(unlogged or {})


def read_comma(root: str | Path, height: int, width: int) -> CommaRecordings:
    """Read comma.ai research data (``camera/<name>.h5`` + ``log/<name>.h5``): per name (one drive)
    one or more pieces (cut where frames have no log rows), each with ``drive`` = name. Frames uint8
    (N, 3, height, width), angles float32 (N,) radians. The camera frames without a log row (before,
    between or after the pieces) are counted per drive in the result's ``unlogged``. DataError names
    the file."""
    import h5py

    files = comma_files(root)
    recordings = CommaRecordings()
    for cam_path, log_path in zip(files[::2], files[1::2]):
        with _open_h5(cam_path) as cam, _open_h5(log_path) as log:
            x = cam.get("X")
            if not isinstance(x, h5py.Dataset):
                raise DataError(f"{cam_path}: no dataset 'X' (uint8 (N, 3, 160, 320))")
            if x.ndim != 4 or x.shape[1] != 3 or x.dtype != np.uint8:
                raise DataError(f"{cam_path}: X is {x.dtype} {x.shape}, expected uint8 (N, 3, H, W)")
            for key in ("cam1_ptr", "steering_angle"):
                if not isinstance(log.get(key), h5py.Dataset):
                    raise DataError(f"{log_path}: no dataset {key!r}")
            ptr = np.asarray(log["cam1_ptr"][()], np.float64).reshape(-1)
            steer = np.asarray(log["steering_angle"][()], np.float64).reshape(-1)
            if ptr.shape != steer.shape:
                raise DataError(f"{log_path}: cam1_ptr has {ptr.size} rows but steering_angle {steer.size}; the log is inconsistent")
            if "speed" in log and np.asarray(log["speed"]).reshape(-1).size != ptr.size:
                raise DataError(f"{log_path}: speed has {np.asarray(log['speed']).size} rows but cam1_ptr {ptr.size}")
            n = x.shape[0]
            if ptr.size == 0:
                raise DataError(f"{log_path}: the log is empty")
            if not np.isfinite(ptr).all() or ptr.min() < 0:
                raise DataError(f"{log_path}: cam1_ptr holds negative or non-finite frame numbers")
            fractional = np.flatnonzero(ptr != np.round(ptr))
            if fractional.size:  # truncating would move a log row to the frame before its own
                raise DataError(f"{log_path}: cam1_ptr is {ptr[fractional[0]]} at log row {fractional[0]}; frame numbers must be whole")
            if int(ptr.max()) >= n:
                raise DataError(f"{log_path}: cam1_ptr reaches frame {int(ptr.max())} but {cam_path} holds {n} frames (camera/log length mismatch)")
            bad = np.flatnonzero(~np.isfinite(steer))
            if bad.size:
                raise DataError(f"{log_path}: steering_angle is {steer[bad[0]]} at log row {bad[0]}")
            idx = ptr.astype(np.int64)
            counts = np.bincount(idx, minlength=n)
            sums = np.bincount(idx, weights=steer, minlength=n)
            covered = counts > 0
            recordings.unlogged[cam_path.stem] = int(n - covered.sum())
            angle = np.where(covered, sums / np.maximum(counts, 1), 0.0)
            # runs of frames with log rows
            start = None
            for i in range(n + 1):
                if i < n and covered[i]:
                    start = i if start is None else start
                elif start is not None:
                    frames = np.stack([_resize(np.asarray(x[j]).transpose(1, 2, 0), height, width) for j in range(start, i)])
                    recordings.append(Recording(f"{cam_path.stem}-{start}", frames, np.radians(angle[start:i]).astype(np.float32),
                                                drive=cam_path.stem))
                    start = None
    return recordings


def _open_h5(path: Path):
    """h5py.File(path, "r"), a DataError naming ``path`` when it is not a readable HDF5 file."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{path} is not a readable HDF5 file ({err})") from None


def dropped_frames(recordings: list[Recording], seq_len: int) -> dict:
    """What ``cut_sequences`` leaves out: {"frames": tails and short recordings' frames, "recordings":
    names of recordings shorter than ``seq_len`` (none of their frames is used)}; for ``read_comma``'s
    recordings also what the reader left out, "unlogged_frames": camera frames without a log row and
    "unlogged_by_drive": {drive: that count} of the drives that have any."""
    out = {"frames": int(sum(len(r.angle) % seq_len for r in recordings)),
           "recordings": [r.name for r in recordings if len(r.angle) < seq_len]}
    unlogged = getattr(recordings, "unlogged", None)
    if unlogged is not None:
        out["unlogged_frames"] = int(sum(unlogged.values()))
        out["unlogged_by_drive"] = {d: int(n) for d, n in unlogged.items() if n}
    return out


def cut_sequences(recordings: list[Recording], seq_len: int) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """Non-overlapping windows of ``seq_len`` frames inside each recording (tails dropped, counted
    by ``dropped_frames``)."""
    for rec in recordings:
        for s in range(0, len(rec.angle) - seq_len + 1, seq_len):
            yield rec.name, {"frames": rec.frames[s : s + seq_len], "angle": rec.angle[s : s + seq_len]}


def split_windows(windows: list[int], test_every: int, drives: list[str] | None = None) -> list[list[str]]:
    """Held-out test sequences of real recordings, none next to a training one: per piece (its
    count of sequences in ``windows``) a list of "train" / "test" / "gap" per sequence.

    ``drives`` names each piece's drive (the source recording it was cut from; by default each
    piece is a drive of its own); a drive's pieces are taken in the order given (time order). The
    split is over drives, never pieces: pieces of one drive can be seconds apart, so holding out
    one while training on its neighbour measures interpolation, as neighbouring frames (50 ms apart
    at 20 Hz) do. With at least ``test_every`` drives that hold a sequence, every
    ``test_every``-th of them is held out whole (all its pieces). Otherwise each drive's last
    max(1, n // test_every) sequences (n: the drive's count, over its pieces in order) are held out
    as one block, the sequence before it is a gap (used by neither split), and a drive too short
    for train + gap + test (n < block + 2) goes to train.
    """
    drives = [str(i) for i in range(len(windows))] if drives is None else list(drives)
    if len(drives) != len(windows):
        raise ValueError(f"{len(drives)} drive names for {len(windows)} pieces")
    order: dict[str, list[int]] = {}  # drive -> its pieces, in the order given
    for i, d in enumerate(drives):
        order.setdefault(d, []).append(i)
    total = {d: sum(windows[i] for i in pieces) for d, pieces in order.items()}  # sequences per drive
    per_drive: dict[str, list[str]] = {}
    used = [d for d, n in total.items() if n > 0]
    if len(used) >= test_every:
        held = {d for k, d in enumerate(used) if k % test_every == test_every - 1}
        for d, n in total.items():
            per_drive[d] = ["test" if d in held else "train"] * n
    else:
        for d, n in total.items():
            block = max(1, n // test_every)
            per_drive[d] = ["train"] * (n - block - 1) + ["gap"] + ["test"] * block if n >= block + 2 else ["train"] * n
    out: list[list[str]] = [[] for _ in windows]
    for d, pieces in order.items():
        labels = iter(per_drive[d])
        for i in pieces:
            out[i] = [next(labels) for _ in range(windows[i])]
    return out


def convert_recordings(recordings: list[Recording], out_dir: str | Path, seq_len: int, test_every: int,
                       source: dict, shard_size: int = 64, splits=SPLITS) -> dict:
    """Write real recordings (pieces of drives, see ``Recording``) as driving shards, the splits named
    in ``splits`` (train and test by default), test sequences held out away from the training ones
    (``split_windows``: whole drives, or a block at each drive's end after a one-sequence gap).
    The split depends on every recording and on ``seq_len`` and ``test_every``, so each of those
    changes the training data too; the manifest's ``shared`` holds them (and ``source``)."""
    splits = _check_splits(splits)
    seqs = list(cut_sequences(recordings, seq_len))
    if not seqs:
        raise DataError(f"{source.get('path')}: no recording holds {seq_len} consecutive frames")
    height, width = seqs[0][1]["frames"].shape[2:]
    per_recording = split_windows([len(r.angle) // seq_len for r in recordings], test_every,
                                  [r.source for r in recordings])
    split_of = [s for rec in per_recording for s in rec]
    drives = list(dict.fromkeys(r.source for r in recordings))
    if "test" not in split_of or "train" not in split_of:
        raise DataError(f"{source.get('path')}: {len(seqs)} sequence(s) of {seq_len} frames in {len(recordings)} recording(s) "
                        f"of {len(drives)} drive(s): too few to hold out test sequences with a gap of one sequence from the "
                        f"training ones (test_every = {test_every}: at least {test_every} drives, or one of at least 3 "
                        f"sequences; shorten seq_len or lower test_every)")
    dropped = dropped_frames(recordings, seq_len)
    if dropped["frames"]:
        print(f"driving: {dropped['frames']} frame(s) left out (recording tails shorter than {seq_len} frames; "
              f"recordings too short for one sequence: {dropped['recordings'] or 'none'})")
    if dropped.get("unlogged_frames"):
        print(f"driving: {dropped['unlogged_frames']} camera frame(s) without a log row left out "
              f"({', '.join(f'{d}: {n}' for d, n in dropped['unlogged_by_drive'].items())})")
    whole = all(len(set(rec)) <= 1 for rec in per_recording) and "gap" not in split_of
    split = {"rule": "whole drives" if whole else "a block at each drive's end after a gap", "test_every": test_every,
             "gap_sequences": split_of.count("gap"),
             "test_recordings": [r.name for r, rec in zip(recordings, per_recording) if "test" in rec],
             "test_drives": list(dict.fromkeys(r.source for r, rec in zip(recordings, per_recording) if "test" in rec))}

    def samples():
        for part in ("test", "train"):
            if part not in splits:
                continue
            for i, (_, arrays) in enumerate(seqs):
                if split_of[i] == part:
                    yield part, _sample(f"seq-{i:06d}", arrays)

    names = [r.name for r in recordings]
    shared = {"source": source, "seq_len": seq_len, "test_every": test_every, "height": int(height), "width": int(width),
              "recordings": {r.name: [r.source, int(len(r.angle))] for r in recordings}, "split": split}
    manifest = {"dataset": "driving", "source": source, "has_cause": False, "height": int(height), "width": int(width),
                "seq_len": seq_len, "angle_unit": "rad", "fields": ["frames", "angle"],
                "config": {"seq_len": seq_len, "test_every": test_every, "shard_size": shard_size},
                "recordings": names, "drives": drives, "dropped": dropped, "split": split, "shared": shared}
    return write_shards(samples(), out_dir, shard_size, manifest)


def load_split(shard_dir: str | Path, split: str) -> dict[str, np.ndarray]:
    """All sequences of a split stacked: frames uint8 (S, T, 3, H, W), angle float32 (S, T), and where
    present cause / distractor uint8 (S, T, H, W)."""
    out: dict[str, list] = {}
    for sample in iter_samples(shard_paths(shard_dir, [split])):
        for name, value in sample.items():
            if name.endswith(".npy"):
                out.setdefault(name[:-4], []).append(npy_load(value))
    if not out:
        raise DataError(f"{shard_dir}: split {split!r} holds no sequences")
    return {k: np.stack(v) for k, v in out.items()}


__all__ = ["Camera", "CommaRecordings", "Distractor", "Road", "RoadSpec", "SPLITS", "cause_mask", "check_same_draw", "convert_recordings", "generate_driving",
           "load_split", "markings", "split_windows", "pursuit_angle", "read_comma", "read_udacity", "render_frame"]
