"""Reader (and writer, for tests and conversions) of a Human3.6M-style multi-view layout.

The layout under ``root``::

    cameras.json                                   {"S<n>": {"<camera id>": {"R": 3x3, "t": [3], "K": 3x3,
                                                    "dist": [k1, k2, p1, p2, k3]}}}
    S<n>/<action>/imageSequence/<camera id>/img_<frame:06d>.jpg   frames numbered from 1
    S<n>/<action>/joints_3d.npy                    float (F, 17, 3): world joints in mm, Human3.6M's
                                                    17-joint order, row i = frame i + 1

Cameras map world mm to camera mm by x_cam = R·X + t; pixels follow the pinhole K with the
distortion ``dist`` (radial k1, k2, k3, tangential p1, p2) applied to the normalised coordinates
as Human3.6M's own projection (its ProjectPointRadial) defines it, see ``distort``; its tangential
terms are not OpenCV's Brown–Conrady ones. The reader crops each view around
the projected pelvis exactly as the synthetic generator does (``data.multiview.crop_intrinsics``),
resizes to ``image_size`` and returns the same fields as ``data.multiview.make_sample``, so real
and synthetic data reach the model through one format. Triangulation downstream is pinhole (DLT);
``joints2d`` include the distortion, which for Human3.6M's lenses is a few pixels at most.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from . import multiview

CAMERAS = "cameras.json"
JOINTS_FILE = "joints_3d.npy"
CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")


def distort(xy, dist):
    """Human3.6M's lens distortion of normalised coordinates: xy float (..., 2) -> float64 (..., 2);
    ``dist`` (5,) = k1, k2, p1, p2, k3 (p1, p2 as Human3.6M stores its ``p``).

    With r² = x² + y², radial = 1 + k1 r² + k2 r⁴ + k3 r⁶ and tan = p1·y + p2·x:
    x' = x·(radial + tan) + p2·r², y' = y·(radial + tan) + p1·r² (Human3.6M's ProjectPointRadial;
    OpenCV's tangential terms, 2·p1·x·y + p2·(r² + 2x²) and p1·(r² + 2y²) + 2·p2·x·y, differ).
    """
    k1, k2, p1, p2, k3 = (float(v) for v in dist)
    xy = np.asarray(xy, np.float64)
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    tan = p1 * y + p2 * x
    return np.stack([x * (radial + tan) + p2 * r2, y * (radial + tan) + p1 * r2], -1)


def project_distorted(cam: dict, X):
    """Full-frame pixels (N, 2) of world points X (N, 3) mm through one camera dict (R, t, K, dist)."""
    c = X @ cam["R"].T + cam["t"]
    xy = distort(c[:, :2] / c[:, 2:3], cam["dist"])
    return xy @ cam["K"][:2, :2].T + cam["K"][:2, 2]


def _camera(entry, where: str) -> dict:
    try:
        cam = {k: np.asarray(entry[k], np.float64) for k in ("R", "t", "K")}
        cam["dist"] = np.asarray(entry.get("dist", [0.0] * 5), np.float64)
    except KeyError as err:
        raise DataError(f"{where}: missing key {err.args[0]!r} (needs R, t, K and optionally dist)") from None
    except (TypeError, ValueError) as err:
        raise DataError(f"{where}: unreadable numbers ({err})") from None
    shapes = {"R": (3, 3), "t": (3,), "K": (3, 3), "dist": (5,)}
    for k, shape in shapes.items():
        if cam[k].shape != shape:
            raise DataError(f"{where}: {k} has shape {cam[k].shape}, expected {shape}")
        if not np.isfinite(cam[k]).all():
            raise DataError(f"{where}: {k} holds a non-finite number ({cam[k].tolist()})")
    if abs(np.linalg.det(cam["K"])) < 1e-9 or abs(np.linalg.det(cam["R"]) - 1.0) > 1e-3 or not np.allclose(cam["R"] @ cam["R"].T, np.eye(3), atol=1e-3):
        raise DataError(f"{where}: singular camera (det K = {np.linalg.det(cam['K']):.3g}, det R = {np.linalg.det(cam['R']):.3g}); "
                        "K must be invertible and R a rotation")
    return cam


def _camera_file(path: Path) -> dict:
    """The parsed camera file (a JSON object); DataError naming it if missing, not JSON or not an object."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path} is missing: a Human3.6M-style root needs its camera file") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected {{subject: {{camera id: {{R, t, K, dist}}}}}} objects")
    return raw


def read_cameras(root: str | Path) -> dict:
    """``cameras.json`` as {subject: {camera id: {R, t, K, dist} float64 arrays}}, validated."""
    path = Path(root) / CAMERAS
    raw = _camera_file(path)
    if not all(isinstance(cams, dict) and all(isinstance(e, dict) for e in cams.values()) for cams in raw.values()):
        raise DataError(f"{path}: expected {{subject: {{camera id: {{R, t, K, dist}}}}}} objects")
    return {s: {c: _camera(e, f"{path} [{s!r}][{c!r}]") for c, e in cams.items()} for s, cams in raw.items()}


def subject_folders(root: str | Path, subjects) -> None:
    """DataError naming the root and every subject of ``subjects`` (names such as "S5") that has no
    folder under ``root`` (a configured subject without data was skipped while the manifest listed it)."""
    root = Path(root)
    def order(name):  # S5 before S11
        return (int(name[1:]) if name[1:].isdigit() else float("inf"), name)

    missing = sorted((s for s in set(subjects) if not (root / s).is_dir()), key=order)
    if missing:
        held = sorted((p.name for p in root.glob("S*") if p.is_dir()), key=order)
        raise DataError(f"subjects {missing} have no folder under {root} (it holds {', '.join(held) or 'no S<n> folder'}); "
                        "add their S<n>/<action>/imageSequence folders or leave them out of the training and test subjects "
                        "(--train-subjects, --test-subjects)")


def sequences(root: str | Path, subjects=None) -> list[tuple[str, str]]:
    """Sorted (subject, action) pairs under ``root`` that have an imageSequence folder.

    With ``subjects`` (names such as "S5"): DataError naming the root when one of them has no folder
    (``subject_folders``) or its folder holds no <action>/imageSequence folder."""
    root = Path(root)
    if subjects is not None:
        subject_folders(root, subjects)
    out = []
    for sub in sorted(root.glob("S*")):
        if sub.is_dir() and (subjects is None or sub.name in subjects):
            found = [(sub.name, a.name) for a in sorted(sub.iterdir()) if (a / "imageSequence").is_dir()]
            if subjects is not None and not found:
                raise DataError(f"{sub} holds no <action>/imageSequence folders (subject {sub.name} is configured)")
            out += found
    if not out:
        raise DataError(f"{root}: no S<subject>/<action>/imageSequence folders" + (f" for subjects {list(subjects)}" if subjects else ""))
    return out


def _frames(folder: Path) -> dict[int, Path]:
    """{frame number: path} of ``folder``'s ``img_<frame>.jpg`` files; DataError naming the folder and
    what it holds when it has none, and for a name whose frame is not a number >= 1."""
    frames = {}
    if not any(folder.glob("img_*.jpg")):
        held: dict[str, int] = {}
        for path in folder.iterdir():
            held[path.suffix or path.name] = held.get(path.suffix or path.name, 0) + 1
        what = ", ".join(f"{n} {kind} file{'s' * (n != 1)}" for kind, n in sorted(held.items()))
        raise DataError(f"{folder} {'holds ' + what if held else 'is empty'}, no img_*.jpg frames "
                        "(frames are JPEGs img_<frame:06d>.jpg, numbered from 1)")
    for path in sorted(folder.glob("img_*.jpg")):
        digits = path.stem[len("img_"):]
        if not digits.isdigit() or int(digits) < 1:
            raise DataError(f"{path}: not a frame image name (img_<frame>.jpg, frames numbered from 1)")
        frames[int(digits)] = path
    return frames


def read_sequence(root: str | Path, subject: str, action: str, image_size: int, cameras: dict | None = None,
                  camera_ids=None):
    """Yield (frame number, fields) of one sequence; fields as ``data.multiview.make_sample``'s.

    Views are the camera folders under imageSequence (or ``camera_ids``), in sorted order; a frame's
    views and joints are paired by its number (joints row = frame − 1), never by position.
    DataError names the file or key when a camera is missing for a view, a camera is singular or
    non-finite, a camera folder holds no img_*.jpg frame (and what it holds instead), views hold
    different frame numbers, the joints file has the wrong shape, too few rows or a non-finite
    value, or a joint lies at or behind a camera.
    """
    from PIL import Image

    root = Path(root)
    cameras = read_cameras(root) if cameras is None else cameras
    seq = root / subject / action
    views = sorted(camera_ids or [p.name for p in (seq / "imageSequence").iterdir() if p.is_dir()])
    if not views:
        raise DataError(f"{seq / 'imageSequence'}: no camera folders")
    if subject not in cameras:
        raise DataError(f"{root / CAMERAS}: no cameras for subject {subject!r} (has {sorted(cameras)})")
    for v in views:
        if v not in cameras[subject]:
            raise DataError(f"{root / CAMERAS}: no camera {v!r} for subject {subject!r}, but {seq / 'imageSequence' / v} exists")
    frames = {v: _frames(seq / "imageSequence" / v) for v in views}
    numbers = sorted(frames[views[0]])
    for v in views[1:]:
        if set(frames[v]) != set(numbers):
            only = sorted(set(frames[v]) ^ set(numbers))[:5]
            counts = {v: len(f) for v, f in frames.items()}
            raise DataError(f"{seq / 'imageSequence'}: views have different frames (frame counts {counts}); "
                            f"frames {only} are in only one of {views[0]} and {v}")
    joints_path = seq / JOINTS_FILE
    try:
        joints = np.load(joints_path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{joints_path} is missing (float array (frames, 17, 3), world mm)") from None
    except ValueError as err:
        raise DataError(f"{joints_path} is not a readable .npy array: {err}") from None
    if joints.ndim != 3 or joints.shape[1:] != (len(multiview.JOINTS), 3):
        raise DataError(f"{joints_path}: shape {joints.shape}, expected (frames, {len(multiview.JOINTS)}, 3)")
    if numbers and joints.shape[0] < numbers[-1]:
        raise DataError(f"{joints_path}: {joints.shape[0]} frames of joints but images up to frame {numbers[-1]} (row i = frame i + 1)")
    cams = [cameras[subject][v] for v in views]
    K = np.stack([c["K"] for c in cams])
    R = np.stack([c["R"] for c in cams])
    t = np.stack([c["t"] for c in cams])
    for number in numbers:
        X = joints[number - 1].astype(np.float64)
        if not np.isfinite(X).all():
            raise DataError(f"{joints_path}: frame {number} (row {number - 1}) holds a non-finite joint")
        _, depth = multiview.project_np(K, R, t, X)  # (V, 17) camera z in mm
        if (depth <= 0).any():
            v = int(np.argwhere(depth <= 0)[0, 0])
            raise DataError(f"{joints_path}: frame {number} has a joint at or behind camera {views[v]} "
                            f"(depth {depth[v].min():.0f} mm; check its R and t in {root / CAMERAS})")
        Kc = multiview.crop_intrinsics(K, R, t, X[0], image_size)
        images, uv = [], []
        for v, cam, kc in zip(views, cams, Kc):
            path = frames[v][number]
            try:
                with Image.open(path) as im:
                    img = im.convert("RGB")
            except OSError as err:
                raise DataError(f"{path}: unreadable image ({err})") from None
            s = kc[0, 0] / cam["K"][0, 0]
            x0, y0 = cam["K"][0, 2] - kc[0, 2] / s, cam["K"][1, 2] - kc[1, 2] / s
            side = image_size / s
            box = (x0, y0, x0 + side, y0 + side)
            images.append(np.asarray(img.transform((image_size, image_size), Image.Transform.EXTENT, box, Image.Resampling.BILINEAR)))
            uv.append((project_distorted(cam, X) - [x0, y0]) * s)
        yield number, {"images": np.stack(images).astype(np.uint8), "joints3d": X.astype(np.float32),
                       "joints2d": np.stack(uv).astype(np.float32), "K": Kc, "R": R, "t": t,
                       "azimuth": azimuths(R, t)}


def azimuths(R, t):
    """Azimuths in degrees (V,) of the camera centres C = −Rᵀt about the world z axis; R (V, 3, 3), t (V, 3)."""
    C = -np.einsum("vji,vj->vi", R, t)
    return np.degrees(np.arctan2(C[:, 1], C[:, 0]))


SPLITS = ("train", "test")  # the splits of a Human3.6M-style root, each from its own subjects


def write_h36m(root: str | Path, out_dir: str | Path, *, train_subjects, test_subjects, image_size: int,
               shard_size: int = 1000, splits=SPLITS) -> dict:
    """Shards of a Human3.6M-style root in the ``multiview`` format, split ``train`` from
    ``train_subjects`` and ``test`` from ``test_subjects``; returns the manifest.

    ``splits`` (a subset of ``SPLITS``) writes only those splits, and only their subjects are read
    and recorded in the manifest's config (``train_subjects`` / ``test_subjects``): the workflow
    writes the training split and the test split into separate folders, so that the test subjects
    do not key the training data (``data.multiview.check_pair`` refuses a pair whose subjects
    overlap). ConfigError if a subject is in both lists or ``splits`` is empty or unknown; DataError
    naming the root for a configured subject without a folder (``subject_folders``)."""
    splits = tuple(splits)
    if not splits or not set(splits) <= set(SPLITS):
        raise ConfigError(f"splits must be some of {list(SPLITS)}, got {list(splits)}")
    subjects_of = {"train": list(train_subjects), "test": list(test_subjects)}
    both = sorted(set(train_subjects) & set(test_subjects))
    if both and len(splits) == 2:
        raise ConfigError(f"subjects {both} are in both the training and the test split: the test set would hold training data")
    subject_folders(root, [s for split in splits for s in subjects_of[split]])
    cameras = read_cameras(root)
    views = None

    def samples():
        nonlocal views
        for split in (sp for sp in ("test", "train") if sp in splits):  # (written sorted by split and key)
            for subject, action in sequences(root, subjects_of[split]):
                for number, fields in read_sequence(root, subject, action, image_size, cameras):
                    if views is not None and len(fields["R"]) != views:
                        raise DataError(f"{Path(root) / subject / action / 'imageSequence'}: {len(fields['R'])} views, "
                                        f"but earlier sequences have {views} (every sequence needs the same cameras)")
                    views = len(fields["R"])
                    key = f"{split}_{subject}_{action.replace(' ', '-').replace('.', '-')}_{number:06d}"
                    yield split, multiview.encode_sample(key, fields)

    def manifest():
        return {"dataset": "multiview", "joints": list(multiview.JOINTS), "parents": list(multiview.PARENTS),
                "image_size": image_size, "views": views, "source": {"kind": "h36m-layout", "root": str(root)},
                "config": {f"{split}_subjects": subjects_of[split] for split in SPLITS if split in splits}}

    return write_shards_sorted(samples(), out_dir, shard_size, manifest)


def source_files(root: str | Path, subjects) -> list[Path]:
    """The ``joints_3d.npy`` of each sequence of ``subjects`` in a Human3.6M-style root (in subject,
    action order): inputs of the DAG's shard job (a file edited inside a folder does not change the
    folder's time; the frame images are not listed; the cameras are keyed by ``camera_digest``,
    since ``cameras.json`` holds every subject's). DataError as ``sequences``."""
    root = Path(root)
    return [root / subject / action / JOINTS_FILE for subject, action in sequences(root, list(subjects))]


def camera_digest(root: str | Path, subjects) -> str:
    """sha256 (hex) of the ``cameras.json`` entries of ``subjects`` only (canonical JSON; a subject
    without an entry counts as null): a parameter of the shard job of those subjects, so editing
    another subject's cameras, or adding one, reruns nothing of theirs. DataError naming the file
    if it is missing or not JSON."""
    import hashlib

    raw = _camera_file(Path(root) / CAMERAS)
    mine = {subject: raw.get(subject) for subject in sorted(set(subjects))}
    return hashlib.sha256(json.dumps(mine, sort_keys=True).encode()).hexdigest()


def check_settings(root: str, train_subjects, test_subjects) -> None:
    """Check the config's ``multiview.data.h36m`` block before any job: ``root`` set and an existing
    folder, no subject in both lists, every subject a folder under it. ConfigError naming the key."""
    key = "multiview.data.h36m"
    if not root:
        raise ConfigError(f"multiview.data.source is 'h36m' but {key}.root is not set: give the root of the S<n>/<action>/imageSequence layout")
    if not Path(root).is_dir():
        raise ConfigError(f"{key}.root: {root!r} is not an existing folder")
    both = sorted(set(train_subjects) & set(test_subjects))
    if both:
        raise ConfigError(f"{key}: subjects {both} are in both train_subjects and test_subjects: the test set would hold training data")
    try:
        subject_folders(root, [*train_subjects, *test_subjects])
    except DataError as err:
        raise ConfigError(f"{key}: {err}") from None


def write_shards_sorted(samples, out_dir, shard_size, manifest):
    """``data.shards.write_shards`` after sorting the samples by (split, key) (keys must increase per split)."""
    from .shards import write_shards

    return write_shards(sorted(samples, key=lambda s: (s[0], s[1]["__key__"])), out_dir, shard_size, manifest)


def write_layout(root: str | Path, subject: str, action: str, cameras: dict, images: dict, joints) -> None:
    """Write one sequence in the layout: ``cameras`` {id: {R, t, K, dist}}, ``images`` {id: uint8 (F, H, W, 3)},
    ``joints`` float (F, 17, 3) mm; merges the subject's cameras into ``cameras.json``. JPEG quality 95."""
    from PIL import Image

    root = Path(root)
    path = root / CAMERAS
    allcams = json.loads(path.read_text()) if path.is_file() else {}
    allcams.setdefault(subject, {}).update({c: {k: np.asarray(v).tolist() for k, v in cam.items()} for c, cam in cameras.items()})
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(allcams, indent=1))
    seq = root / subject / action
    for cam_id, frames in images.items():
        folder = seq / "imageSequence" / cam_id
        folder.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(frames):
            Image.fromarray(frame).save(folder / f"img_{i + 1:06d}.jpg", quality=95)
    np.save(seq / JOINTS_FILE, np.asarray(joints, np.float64), allow_pickle=False)
