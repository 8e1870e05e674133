"""The ``multiview`` dataset: a synthetic 17-joint person seen by calibrated cameras, as shards.

Skeleton: Human3.6M's 17 joints in its order (``JOINTS``, ``PARENTS``), bone lengths in mm close
to an adult's (``BONES_MM``). A pose draws joint angles uniformly within limits (hip flexion
−30..100°, abduction 0..40°, knee 0..130°, trunk bend −10..40°, side −15..15°, twist −30..30°,
arm forward −40..150°, lateral 0..100°, elbow 0..140°), a yaw uniform on the circle, and a pelvis
position uniform in a 2 m × 2 m square at pelvis height 900..1000 mm (world z up, mm).

Cameras (``ring_rig``): pinhole, Human3.6M-like intrinsics (f = 1145 px, principal point (500, 500)
of a 1000 × 1000 frame), on a circle of radius 4.5 m at 1.5 m height, looking at (0, 0, 0.9 m);
convention x_cam = R·X + t (mm), pixel = K·x_cam / z, camera y axis pointing down.

Views are crops centred on the projected pelvis, of side ``f · 2400 mm / depth`` (about 2.4 m at
the person), rendered at ``image_size`` pixels; ``crop_intrinsics`` gives the crop's K, so 2D joints
and K refer to crop pixels and P = K [R | t] projects world mm into the crop. Rendering draws each
bone as a shaded capsule (radius ``LIMB_RADIUS_MM``) with a per-pixel depth test (the nearest
capsule wins), colours per limb (left warm, right cool), and the head as a sphere.

Splits: ``train`` and ``test`` (poses drawn from separate streams) with the rig's cameras;
``unseen``, test poses where view ``heldout_view`` is replaced by a camera at azimuth
``heldout_azimuth_deg``, a position never used in training. Each split draws from its own
generator (``np.random.default_rng([seed, stream])``: train 0, test and unseen 1), so a split's
samples depend only on the settings in ``SPLIT_FIELDS``; ``write_multiview`` can write any subset
of the splits into one folder, whose manifest records only those settings. The workflow writes
the training split and the evaluation splits into two folders, so that a test-only setting
(test count, held-out camera) leaves the training manifest, and so the trained models, as they
are; ``check_pair`` says whether two such folders belong together.

Sample fields (all ``.npy``): ``images`` uint8 (V, S, S, 3); ``joints3d`` float32 (17, 3) mm;
``joints2d`` float32 (V, 17, 2) crop pixels; ``K`` float64 (V, 3, 3) crop intrinsics; ``R``
float64 (V, 3, 3); ``t`` float64 (V, 3) mm; ``azimuth`` float64 (V,) degrees.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .rig import FOCAL, Rig, check_heldout_camera
from .shards import iter_samples, npy_bytes, npy_load, read_manifest, shard_paths, write_shards

JOINTS = ("pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax",
          "neck", "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist")
PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
BONES_MM = {"hip": 130.0, "thigh": 450.0, "shin": 440.0, "spine": 230.0, "chest": 250.0, "neck": 110.0,
            "head": 120.0, "shoulder": 150.0, "upper_arm": 280.0, "forearm": 250.0}
LIMB_RADIUS_MM = 45.0
HEAD_RADIUS_MM = 95.0
FRAME = 1000
CROP_MM = 2400.0
# limb colours (RGB) per child joint: left warm, right cool, trunk grey-blue
_COLOURS = {1: (40, 90, 230), 2: (30, 170, 230), 3: (60, 220, 200), 4: (230, 60, 40), 5: (240, 140, 30),
            6: (240, 210, 40), 7: (150, 150, 190), 8: (120, 120, 170), 9: (200, 200, 220), 10: (235, 235, 235),
            11: (200, 40, 120), 12: (230, 80, 170), 13: (250, 150, 210), 14: (40, 120, 60), 15: (60, 180, 80),
            16: (150, 230, 120)}


def _rot(axis: str, angle):
    c, s = math.cos(angle), math.sin(angle)
    return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


def look_at(centre, target=(0.0, 0.0, 900.0)):
    """World→camera (R (3, 3), t (3,)) float64 of a camera at ``centre`` (mm) looking at ``target``, y down."""
    centre = np.asarray(centre, np.float64)
    z = np.asarray(target, np.float64) - centre
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return R, -R @ centre


def camera_at(azimuth_deg: float, rig: Rig):
    """(K (3, 3), R (3, 3), t (3,)) float64 of the full-frame camera at ``azimuth_deg`` on ``rig``'s circle."""
    a = math.radians(azimuth_deg)
    R, t = look_at((rig.radius_mm * math.cos(a), rig.radius_mm * math.sin(a), rig.height_mm))
    K = np.array([[rig.focal_px, 0, FRAME / 2], [0, rig.focal_px, FRAME / 2], [0, 0, 1]], np.float64)
    return K, R, t


def ring_cameras(views: int = 4, radius: float = 4500.0, start_deg: float = 45.0):
    """Projection matrices P = K [R | t] of a rig, float64 numpy (views, 3, 4)."""
    rig = Rig(views=views, radius_mm=radius, start_deg=start_deg)
    out = []
    for az in rig.azimuths():
        K, R, t = camera_at(az, rig)
        out.append(K @ np.concatenate([R, t[:, None]], 1))
    return np.stack(out)


def random_pose(rng: np.random.Generator) -> np.ndarray:
    """One pose: float64 (17, 3) world mm, joint angles uniform within the limits in the module doc."""
    d = np.radians
    u = lambda lo, hi: d(rng.uniform(lo, hi))  # noqa: E731
    down, up = np.array([0.0, 0.0, -1.0]), np.array([0.0, 0.0, 1.0])
    B = BONES_MM
    J = np.zeros((17, 3))
    for side, (hip, knee, ankle), sign in (("r", (1, 2, 3), -1.0), ("l", (4, 5, 6), 1.0)):
        R_thigh = _rot("x", u(-30, 100)) @ _rot("y", -sign * u(0, 40))
        J[hip] = np.array([sign * B["hip"], 0, 0])
        J[knee] = J[hip] + B["thigh"] * (R_thigh @ down)
        J[ankle] = J[knee] + B["shin"] * (R_thigh @ _rot("x", -u(0, 130)) @ down)
    R_torso = _rot("z", u(-30, 30)) @ _rot("x", u(-10, 40)) @ _rot("y", u(-15, 15))
    J[7] = B["spine"] * (R_torso @ up)
    J[8] = J[7] + B["chest"] * (R_torso @ up)
    R_head = R_torso @ _rot("x", u(-20, 30)) @ _rot("y", u(-20, 20))
    J[9] = J[8] + B["neck"] * (R_head @ up)
    J[10] = J[9] + B["head"] * (R_head @ up)
    for (sh, el, wr), sign in (((11, 12, 13), 1.0), ((14, 15, 16), -1.0)):
        J[sh] = J[8] + B["shoulder"] * (R_torso @ np.array([sign, 0.0, 0.0]))
        R_arm = R_torso @ _rot("x", u(-40, 150)) @ _rot("y", -sign * u(0, 100))
        J[el] = J[sh] + B["upper_arm"] * (R_arm @ down)
        J[wr] = J[el] + B["forearm"] * (R_arm @ _rot("x", u(0, 140)) @ down)
    yaw = _rot("z", rng.uniform(0, 2 * math.pi))
    pelvis = np.array([rng.uniform(-1000, 1000), rng.uniform(-1000, 1000), rng.uniform(900, 1000)])
    return J @ yaw.T + pelvis


def project_np(K, R, t, X):
    """Pixels (V, N, 2) and depths (V, N) of world points X (N, 3) mm through cameras K, R (V, 3, 3), t (V, 3)."""
    cam = np.einsum("vij,nj->vni", R, X) + t[:, None, :]
    pix = np.einsum("vij,vnj->vni", K, cam)
    return pix[..., :2] / pix[..., 2:3], cam[..., 2]


def crop_intrinsics(K, R, t, pelvis, image_size: int):
    """Crop K (V, 3, 3): the square of side f·CROP_MM/depth centred on the projected ``pelvis`` (3,), scaled to ``image_size``."""
    uv, depth = project_np(K, R, t, pelvis[None])
    side = K[:, 0, 0] * CROP_MM / depth[:, 0]
    s = image_size / side
    Kc = K.copy()
    Kc[:, 0, 0] *= s
    Kc[:, 1, 1] *= s
    Kc[:, 0, 2] = s * (K[:, 0, 2] - (uv[:, 0, 0] - side / 2))
    Kc[:, 1, 2] = s * (K[:, 1, 2] - (uv[:, 0, 1] - side / 2))
    return Kc


def render_views(Kc, R, t, X, image_size: int) -> np.ndarray:
    """Render the skeleton X (17, 3) mm in each crop camera: uint8 (V, S, S, 3), per-pixel depth test."""
    S = image_size
    uv, depth = project_np(Kc, R, t, X)  # (V, 17, 2), (V, 17)
    uv, depth = uv.astype(np.float32), depth.astype(np.float32)
    ys, xs = np.mgrid[0:S, 0:S].astype(np.float32) + 0.5
    px, py = xs.ravel(), ys.ravel()  # (P,)
    children = np.arange(1, 17)
    parents = np.asarray(PARENTS)[1:]
    ax, ay = uv[:, parents, 0, None], uv[:, parents, 1, None]  # (V, L, 1)
    abx, aby = uv[:, children, 0, None] - ax, uv[:, children, 1, None] - ay
    za, zb = depth[:, parents, None], depth[:, children, None]
    w = np.clip(((px - ax) * abx + (py - ay) * aby) / np.maximum(abx**2 + aby**2, 1e-9), 0, 1)  # (V, L, P)
    dist = np.sqrt((px - ax - w * abx) ** 2 + (py - ay - w * aby) ** 2)
    z = za + w * (zb - za)
    dist /= Kc[:, None, 0, 0, None].astype(np.float32) * LIMB_RADIUS_MM / z
    head_r = (Kc[:, 0, 0] * HEAD_RADIUS_MM / depth[:, 10]).astype(np.float32)[:, None]
    head_d = np.sqrt((px - uv[:, 10, 0, None]) ** 2 + (py - uv[:, 10, 1, None]) ** 2) / head_r  # (V, P)
    dist = np.concatenate([dist, head_d[:, None]], 1)  # (V, L+1, P), < 1 inside
    z = np.concatenate([z, np.broadcast_to(depth[:, 10, None, None], (len(R), 1, px.size))], 1)
    z = np.where(dist < 1.0, z, np.inf)
    front = z.argmin(1)  # (V, P)
    inside = np.isfinite(np.take_along_axis(z, front[:, None], 1)[:, 0])
    colours = np.array([_COLOURS[c] for c in children] + [_COLOURS[10]], np.float32)  # (L+1, 3)
    shade = 1.0 - 0.45 * np.take_along_axis(dist, front[:, None], 1)[:, 0] ** 2
    img = colours[front] * (shade * inside)[..., None]
    return np.round(img).reshape(len(R), S, S, 3).astype(np.uint8)


def occlude(images, rng: np.random.Generator, probability: float) -> np.ndarray:
    """Per view, with ``probability``, a grey box (side 35..55 % of the crop, centred within the middle
    half) drawn in front of the person: uint8 (V, S, S, 3) -> a new array of the same shape."""
    out = images.copy()
    S = images.shape[1]
    for v in range(len(out)):
        if rng.random() < probability:
            w, h = (rng.uniform(0.35, 0.55, 2) * S).astype(int)
            cx, cy = rng.uniform(0.25 * S, 0.75 * S, 2)
            x0, y0 = int(max(cx - w / 2, 0)), int(max(cy - h / 2, 0))
            out[v, y0 : y0 + h, x0 : x0 + w] = 110
    return out


def make_sample(X, azimuths, rig: Rig, image_size: int) -> dict:
    """All fields of one sample (see the module doc) for pose X (17, 3) mm and camera azimuths (V,) degrees."""
    cams = [camera_at(az, rig) for az in azimuths]
    K = np.stack([c[0] for c in cams])
    R = np.stack([c[1] for c in cams])
    t = np.stack([c[2] for c in cams])
    Kc = crop_intrinsics(K, R, t, X[0], image_size)
    uv, depth = project_np(Kc, R, t, X)
    if (depth <= 0).any():
        raise DataError("multiview: a joint lies behind a camera; the capture volume does not fit the rig")
    return {"images": render_views(Kc, R, t, X, image_size), "joints3d": X.astype(np.float32),
            "joints2d": uv.astype(np.float32), "K": Kc, "R": R, "t": t, "azimuth": np.asarray(azimuths, np.float64)}


def encode_sample(key: str, fields: dict) -> dict:
    """A shard sample (``__key__`` and ``<field>.npy`` bytes) from the arrays of ``make_sample``."""
    return {"__key__": key, **{f"{_STORED.get(name, name)}.npy": npy_bytes(np.ascontiguousarray(v)) for name, v in fields.items()}}


def decode_sample(sample: dict) -> dict:
    """Arrays of a shard sample (field name -> numpy array), inverse of ``encode_sample``."""
    return {_FIELD.get(k[:-4], k[:-4]): npy_load(v) for k, v in sample.items() if k.endswith(".npy")}


# tar member suffixes are read back lower-cased (webdataset), so K and R are stored under other names
_STORED = {"K": "intrinsics", "R": "rotation", "t": "translation"}
_FIELD = {v: k for k, v in _STORED.items()}


@dataclass(frozen=True)
class MultiviewConfig:
    """What the synthetic multiview shards are made of (every field lands in the manifest)."""

    train: int = 1200
    test: int = 300
    image_size: int = 64
    views: int = 4
    heldout_view: int = 3
    heldout_azimuth_deg: float = 0.0
    occluder_probability: float = 0.0
    seed: int = 0


SPLITS = ("train", "test", "unseen")
# the MultiviewConfig fields each split's samples depend on (and that its manifest records)
SPLIT_FIELDS = {
    "train": ("train", "image_size", "views", "occluder_probability", "seed"),
    "test": ("test", "image_size", "views", "occluder_probability", "seed"),
    "unseen": ("test", "image_size", "views", "heldout_view", "heldout_azimuth_deg", "occluder_probability", "seed"),
}
_STREAM = {"train": 0, "test": 1, "unseen": 1}


def recorded_config(config: MultiviewConfig, splits) -> dict:
    """The settings that ``splits`` depend on (``SPLIT_FIELDS``), in ``MultiviewConfig``'s field order."""
    wanted = {f for split in splits for f in SPLIT_FIELDS[split]}
    return {k: v for k, v in asdict(config).items() if k in wanted}


def write_multiview(out_dir: str | Path, config: MultiviewConfig, shard_size: int = 1000, splits=SPLITS) -> dict:
    """Write ``splits`` (a subset of ``train``, ``test``, ``unseen``; see the module doc) under
    ``out_dir``; return the manifest, whose ``config`` holds only the settings those splits depend on.

    A split's samples (and shards) are the same whatever the settings of the other splits are.
    DataError for settings out of range or an unknown split; nothing is written then.
    """
    c = config
    splits = tuple(splits)
    unknown = [s for s in splits if s not in SPLITS]
    if not splits or unknown or len(set(splits)) != len(splits):
        raise DataError(f"multiview: splits must be distinct names among {list(SPLITS)}, got {list(splits)}")
    if c.image_size < 16 or c.image_size % 4:
        raise DataError(f"multiview: image_size must be a multiple of 4 and >= 16, got {c.image_size}")
    if c.views < 2:
        raise DataError(f"multiview: needs views >= 2, got views={c.views}")
    if "train" in splits and c.train < 1 or {"test", "unseen"} & set(splits) and c.test < 1:
        raise DataError(f"multiview: train and test must be >= 1, got {c.train} and {c.test}")
    rig = Rig(views=c.views)
    seen = rig.azimuths()
    unseen = seen.copy()
    if "unseen" in splits:
        check_heldout_camera(c.views, c.heldout_view, c.heldout_azimuth_deg)
        unseen[c.heldout_view] = c.heldout_azimuth_deg
    counts = {"train": c.train, "test": c.test, "unseen": c.test}

    def samples():
        for split in ("test", "train", "unseen"):
            if split not in splits:
                continue
            rng = np.random.default_rng([c.seed, _STREAM[split]])
            for i in range(counts[split]):
                X = random_pose(rng)
                fields = make_sample(X, unseen if split == "unseen" else seen, rig, c.image_size)
                if c.occluder_probability > 0:
                    fields["images"] = occlude(fields["images"], rng, c.occluder_probability)
                yield split, encode_sample(f"{split}_{i:06d}", fields)

    cameras = {"seen_azimuth_deg": [float(a) for a in seen]}
    if "unseen" in splits:
        cameras["unseen_azimuth_deg"] = [float(a) for a in unseen]
    manifest = {
        "dataset": "multiview",
        "joints": list(JOINTS),
        "parents": list(PARENTS),
        "image_size": c.image_size,
        "views": c.views,
        "source": {"kind": "synthetic", "generator": "cnninterp.data.multiview"},
        "cameras": {**cameras, "radius_mm": rig.radius_mm, "height_mm": rig.height_mm, "focal_px": rig.focal_px},
        "config": recorded_config(c, splits),
    }
    return write_shards(samples(), out_dir, shard_size, manifest)


def check_pair(train_dir: str | Path, eval_dir: str | Path) -> None:
    """Refuse evaluating on ``eval_dir`` models trained on ``train_dir`` unless the two folders
    belong together: ``train_dir`` holds a ``train`` split, ``eval_dir`` a ``test`` split, and the
    manifests agree on the dataset, source, image size, views and every setting both record
    (seed, occluders, ...), and for Human3.6M layouts no subject of the training split is a test
    subject. The same folder passes.
    DataError naming both manifests and the first disagreement otherwise."""
    if Path(train_dir).resolve() == Path(eval_dir).resolve():
        return
    a, b = read_manifest(train_dir), read_manifest(eval_dir)
    ta, tb = Path(train_dir) / "manifest.json", Path(eval_dir) / "manifest.json"
    if "train" not in a.get("splits", {}):
        raise DataError(f"{ta} has no train split (has {sorted(a.get('splits', {}))}): pass the training shards as the train folder")
    if "test" not in b.get("splits", {}):
        raise DataError(f"{tb} has no test split (has {sorted(b.get('splits', {}))}): pass the evaluation shards as the evaluation folder")
    pairs = [(k, a.get(k), b.get(k)) for k in ("dataset", "source", "image_size", "views")]
    ca, cb = a.get("config", {}), b.get("config", {})
    pairs += [(f"config.{k}", ca[k], cb[k]) for k in ca if k in cb]
    for name, was, now in pairs:
        if was != now:
            raise DataError(f"the training shards {ta} have {name} {was!r} but the evaluation shards {tb} have {now!r}: "
                            f"they were not written together; rebuild both with the same settings")
    both = sorted(set(ca.get("train_subjects", ())) & set(cb.get("test_subjects", ())))
    if both:
        raise DataError(f"subjects {both} are among the training shards' train_subjects ({ta}) and the evaluation shards' "
                        f"test_subjects ({tb}): the test set would hold training data")


def load_split(shard_dir: str | Path, split: str, limit: int | None = None) -> dict:
    """A split as stacked arrays: images uint8 (N, V, S, S, 3), joints3d (N, 17, 3), joints2d (N, V, 17, 2), K, R, t, azimuth.

    ``limit``: at most that many samples, evenly spaced over the split in key order (its first and
    last included), not its first ones: a Human3.6M split is written by subject, action and frame,
    so its first samples were a few seconds of one subject's first action."""
    keep = None
    if limit is not None:
        count = int(read_manifest(shard_dir)["splits"].get(split, {}).get("samples", 0))
        if limit < count:
            keep = set(np.linspace(0, count - 1, limit).round().astype(int).tolist()) if limit > 1 else {0}
    out: dict[str, list] = {}
    for i, sample in enumerate(iter_samples(shard_paths(shard_dir, [split]))):
        if keep is not None and i not in keep:
            continue
        for k, v in decode_sample(sample).items():
            out.setdefault(k, []).append(v)
    if not out:
        raise DataError(f"{shard_dir}: split {split!r} holds no samples")
    missing = {"images", "joints3d", "joints2d", "K", "R", "t"} - set(out)
    if missing:
        raise DataError(f"{shard_dir}: split {split!r} samples lack the fields {sorted(missing)}; rebuild the shards")
    return {k: np.stack(v) for k, v in out.items()}


def projections(K, R, t):
    """P = K [R | t]: K, R (..., 3, 3), t (..., 3) -> (..., 3, 4), same dtype."""
    return K @ np.concatenate([R, t[..., None]], -1)


def manifest_info(shard_dir: str | Path) -> dict:
    """The manifest's image size, views and joint count."""
    try:
        m = read_manifest(shard_dir)
    except DataError as err:
        raise DataError(f"{err}; for the multiview shards run: cnninterp multiview data --out {shard_dir}") from None
    if m.get("dataset") != "multiview":
        raise DataError(f"{shard_dir}: manifest is for dataset {m.get('dataset')!r}, not 'multiview'")
    return {"image_size": int(m["image_size"]), "views": int(m["views"]), "joints": len(m["joints"])}
