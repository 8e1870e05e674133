"""Tests of cnninterp.data.synthetic_broden: Broden layout, consistency, determinism."""

from __future__ import annotations

import csv
import hashlib
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

try:
    import cnninterp  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from cnninterp.data import synthetic_broden as sb  # noqa: E402
from cnninterp.data.synthetic_broden import generate_broden  # noqa: E402

N_IMAGES = 40
SIZE = 64
CATEGORIES = ["color", "object", "part", "material", "scene", "texture"]
PIXEL = ["color", "object", "part", "material"]
WHOLE = ["scene", "texture"]
CATEGORY_CELL = re.compile(r"^([^(]*)\(([^)]*)\)$")


# ---------------------------------------------------------------------------------------------
# Helpers: a minimal Broden reader written from the layout description
# ---------------------------------------------------------------------------------------------


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Return the header and the rows of a CSV file."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def split_cell(cell: str) -> list[str]:
    """Split a ``;``-separated cell, dropping empty items."""
    return [s for s in cell.split(";") if s]


def decode_png(path: Path) -> np.ndarray:
    """Decode a segmentation PNG to label numbers (R + 256 * G)."""
    a = np.asarray(Image.open(path)).astype(np.int64)
    return a[:, :, 0] + 256 * a[:, :, 1]


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, keyed by relative path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class Dataset:
    """Parsed CSV files of one generated dataset."""

    def __init__(self, root: Path, summary: dict) -> None:
        self.root = root
        self.summary = summary
        self.headers = {}
        for name in ["index", "label", "category"] + [f"c_{c}" for c in CATEGORIES]:
            self.headers[name], rows = read_csv(root / f"{name}.csv")
            setattr(self, name.replace("c_", "cat_"), rows)
        self.labels = {int(r["number"]): r for r in self.label}
        self.c_rows = {c: getattr(self, f"cat_{c}") for c in CATEGORIES}
        self.c_numbers = {c: {int(r["number"]) for r in rows} for c, rows in self.c_rows.items()}

    def label_categories(self, number: int) -> dict[str, int]:
        """Parse the ``category`` cell of label ``number`` into {category: image count}."""
        out = {}
        for item in split_cell(self.labels[number]["category"]):
            name, count = CATEGORY_CELL.match(item).groups()
            out[name] = int(count)
        return out

    def pixel_labels(self, row: dict[str, str], cat: str) -> set[int]:
        """Label numbers found in the segmentation layers of ``cat`` of an index row."""
        found: set[int] = set()
        for rel in split_cell(row[cat]):
            found |= set(np.unique(decode_png(self.root / "images" / rel)).tolist())
        return found - {0}


@pytest.fixture(scope="module")
def out_root(tmp_path_factory) -> Path:
    """A fresh parent folder shared by the module's datasets."""
    return tmp_path_factory.mktemp("synthetic_broden")


@pytest.fixture(scope="module")
def ds(out_root: Path) -> Dataset:
    """The dataset every consistency test reads (seed 0)."""
    root = out_root / "seed0"
    summary = generate_broden(root, n_images=N_IMAGES, image_size=SIZE, seed=0)
    return Dataset(root, summary)


# ---------------------------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------------------------


def test_headers_are_exactly_brodens(ds: Dataset) -> None:
    assert ds.headers["index"] == ["image", "split", "ih", "iw", "sh", "sw", *CATEGORIES]
    assert ds.headers["label"] == ["number", "name", "category", "frequency", "coverage", "syns"]
    assert ds.headers["category"] == ["name", "first", "last", "count", "frequency"]
    for cat in CATEGORIES:
        assert ds.headers[f"c_{cat}"] == ["code", "number", "name", "frequency", "coverage"]


def test_top_level_files_and_no_temporary_left(ds: Dataset, out_root: Path) -> None:
    names = {p.name for p in ds.root.iterdir()}
    expected = {"images", "index.csv", "label.csv", "category.csv"}
    expected |= {f"c_{c}.csv" for c in CATEGORIES}
    assert names == expected
    assert not [p for p in out_root.iterdir() if ".tmp-" in p.name]


def test_summary(ds: Dataset) -> None:
    s = ds.summary
    assert s["images"] == N_IMAGES == len(ds.index)
    assert s["labels"] == len(ds.label) == max(ds.labels)
    assert s["train"] + s["val"] == N_IMAGES
    assert s["val"] == round(N_IMAGES * 0.2)
    assert Counter(r["split"] for r in ds.index) == {"train": s["train"], "val": s["val"]}
    assert s["labels"] == 11 + 12 + 33 + 10 + 24 + 32


def test_referenced_files_exist_with_right_sizes(ds: Dataset) -> None:
    for row in ds.index:
        ih, iw, sh, sw = (int(row[k]) for k in ("ih", "iw", "sh", "sw"))
        assert (ih, iw, sh, sw) == (SIZE, SIZE, SIZE // 2, SIZE // 2)
        assert re.fullmatch(r"synthetic/syn_\d{6}\.jpg", row["image"])
        with Image.open(ds.root / "images" / row["image"]) as im:
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (iw, ih)
        for cat in PIXEL:
            for rel in split_cell(row[cat]):
                assert rel.startswith("synthetic/") and rel.endswith(".png")
                with Image.open(ds.root / "images" / rel) as im:
                    assert im.format == "PNG" and im.mode == "RGB" and im.size == (sw, sh)
                    assert not np.asarray(im)[:, :, 2].any(), "blue channel must be 0"
        for cat in WHOLE:
            assert all(re.fullmatch(r"\d+", v) for v in split_cell(row[cat]))
    # every file under images/ is referenced by index.csv
    referenced = {row["image"] for row in ds.index}
    referenced |= {rel for row in ds.index for c in PIXEL for rel in split_cell(row[c])}
    on_disk = {
        p.relative_to(ds.root / "images").as_posix()
        for p in (ds.root / "images").rglob("*")
        if p.is_file()
    }
    assert on_disk == referenced


def test_color_labels_lie_on_solid_painted_object_pixels(ds: Dataset) -> None:
    """Colour is labelled only where an object part is painted in that named colour."""
    names = {n: r["name"] for n, r in ds.labels.items()}
    labelled = matched = 0
    for row in ds.index:
        for rel in split_cell(row["color"]):
            colors = decode_png(ds.root / "images" / rel)
            (obj_rel,) = split_cell(row["object"])
            assert not ((colors > 0) & (decode_png(ds.root / "images" / obj_rel) == 0)).any()
            with Image.open(ds.root / "images" / row["image"]) as im:
                rgb = np.asarray(im).astype(np.int64)[1::2, 1::2]
            for number in set(np.unique(colors).tolist()) - {0}:
                # JPEG blurs small regions: the named colour nearest to the label's median pixel
                median = np.median(rgb[colors == number], axis=0)
                palette = np.array(list(sb.COLORS.values()))
                nearest = list(sb.COLORS)[int(((palette - median) ** 2).sum(axis=1).argmin())]
                matched += nearest == names[number]
                labelled += 1
    assert labelled > 20 and matched >= 0.9 * labelled, (matched, labelled)


# ---------------------------------------------------------------------------------------------
# Label consistency
# ---------------------------------------------------------------------------------------------


def test_mask_and_image_labels_belong_to_their_category(ds: Dataset) -> None:
    for row in ds.index:
        for cat in PIXEL:
            found = ds.pixel_labels(row, cat)
            assert found <= set(ds.labels)
            assert found <= ds.c_numbers[cat], (row["image"], cat, found)
            if split_cell(row[cat]):
                assert found, f"{row['image']}: empty {cat} layer written"
        for cat in WHOLE:
            numbers = {int(v) for v in split_cell(row[cat])}
            assert numbers <= ds.c_numbers[cat]


def test_label_numbers_and_names(ds: Dataset) -> None:
    numbers = [int(r["number"]) for r in ds.label]
    assert numbers == list(range(1, len(numbers) + 1))
    names = [r["name"] for r in ds.label]
    assert len(set(names)) == len(names)
    # numbers grouped by category in category order (a shared label keeps its first number)
    firsts = [
        min(ds.c_numbers[c] - set().union(*[ds.c_numbers[p] for p in CATEGORIES[:i]]))
        for i, c in enumerate(CATEGORIES)
    ]
    assert firsts == sorted(firsts)


def test_c_files_consistent_with_label_and_category_csv(ds: Dataset) -> None:
    cat_rows = {r["name"]: r for r in ds.category}
    assert list(cat_rows) == CATEGORIES
    for cat in CATEGORIES:
        rows = ds.c_rows[cat]
        assert [int(r["code"]) for r in rows] == list(range(1, len(rows) + 1))
        c = cat_rows[cat]
        assert (int(c["first"]), int(c["last"]), int(c["count"])) == (1, len(rows), len(rows))
        with_cat = sum(1 for row in ds.index if split_cell(row[cat]))
        assert int(c["frequency"]) == with_cat
        for r in rows:
            number = int(r["number"])
            assert ds.labels[number]["name"] == r["name"]
            cats = ds.label_categories(number)
            assert cats[cat] == int(r["frequency"])
            cov = float(r["coverage"])
            assert 0.0 <= cov <= 1.0
            assert (cov > 0) == (int(r["frequency"]) > 0)
    for number in ds.labels:
        cats = ds.label_categories(number)
        assert set(cats) == {c for c in CATEGORIES if number in ds.c_numbers[c]}
        assert int(ds.labels[number]["frequency"]) >= max(cats.values())


def test_frequencies_match_the_annotations(ds: Dataset) -> None:
    counted: dict[str, Counter] = defaultdict(Counter)
    any_cat: Counter = Counter()
    for row in ds.index:
        present = set()
        for cat in PIXEL:
            found = ds.pixel_labels(row, cat)
            counted[cat].update(found)
            present |= found
        for cat in WHOLE:
            found = {int(v) for v in split_cell(row[cat])}
            counted[cat].update(found)
            present |= found
        any_cat.update(present)
    for cat in CATEGORIES:
        for r in ds.c_rows[cat]:
            assert int(r["frequency"]) == counted[cat][int(r["number"])], (cat, r["name"])
    for number, r in ds.labels.items():
        assert int(r["frequency"]) == any_cat[number]


def test_color_coverage_matches_masks(ds: Dataset) -> None:
    totals: Counter = Counter()
    images: Counter = Counter()
    for row in ds.index:
        if not row["color"]:
            continue
        (rel,) = split_cell(row["color"])
        labels = decode_png(ds.root / "images" / rel)
        for number, count in zip(*np.unique(labels, return_counts=True)):
            totals[int(number)] += count / labels.size
            images[int(number)] += 1
    for r in ds.cat_color:
        number = int(r["number"])
        if images[number]:
            assert float(r["coverage"]) == pytest.approx(totals[number] / images[number], abs=1e-5)


def test_every_label_belongs_to_one_category_which_is_primary(ds: Dataset) -> None:
    for number in ds.labels:
        cats = ds.label_categories(number)
        assert len(cats) == 1 and sum(number in ds.c_numbers[c] for c in CATEGORIES) == 1


# ---------------------------------------------------------------------------------------------
# Content: partial annotations, part layers, scenes
# ---------------------------------------------------------------------------------------------


def test_sources_annotate_different_categories(ds: Dataset) -> None:
    texture_rows = [r for r in ds.index if split_cell(r["texture"])]
    scene_rows = [r for r in ds.index if split_cell(r["scene"])]
    assert texture_rows and scene_rows and len(texture_rows) + len(scene_rows) == len(ds.index)
    for r in texture_rows:  # the "DTD" source: texture label only
        assert not any(split_cell(r[c]) for c in PIXEL + ["scene"])
    assert all(len(split_cell(r["scene"])) == 1 and split_cell(r["object"]) for r in scene_rows)
    assert any(not split_cell(r["part"]) for r in scene_rows)
    assert any(not split_cell(r["material"]) for r in scene_rows)
    assert max(len(split_cell(r["part"])) for r in ds.index) == 1


def test_parts_lie_inside_their_own_objects(ds: Dataset) -> None:
    names = {n: r["name"] for n, r in ds.labels.items()}
    checked = 0
    for row in ds.index:
        for rel in split_cell(row["part"]):
            parts = decode_png(ds.root / "images" / rel)
            (obj_path,) = split_cell(row["object"])
            objects = decode_png(ds.root / "images" / obj_path)
            assert ((parts > 0) == (objects > 0)).all(), "every object pixel is one of its parts"
            for p, o in set(zip(parts[parts > 0].tolist(), objects[parts > 0].tolist())):
                assert names[p].split("-")[0] == names[o], (names[p], names[o])
                checked += 1
    assert checked > 20


def test_object_vocabulary_has_two_to_five_parts_each() -> None:
    vocab = sb.build_vocabulary()
    assert len(vocab.members["object"]) >= 10 and len(vocab.members["scene"]) >= 20
    for obj in vocab.members["object"]:
        assert 2 <= len([p for p in vocab.members["part"] if p.startswith(obj + "-")]) <= 5


def test_scenes_follow_the_ground_rule(ds: Dataset) -> None:
    scene_cells = [r["scene"] for r in ds.index if r["scene"]]
    assert len(set(scene_cells)) >= 20  # balanced passes: 33 scene images hold 24 scenes
    names = {n: r["name"] for n, r in ds.labels.items()}
    # the material of the bottom row is the scene's ground in most of a scene's images
    agree = total = 0
    for row in ds.index:
        if not (row["scene"] and row["material"]):
            continue
        (rel,) = split_cell(row["material"])
        bottom = decode_png(ds.root / "images" / rel)[-1]
        counts = Counter(bottom[bottom > 0].tolist())
        if counts:
            total += 1
            agree += names[counts.most_common(1)[0][0]] == sb.SCENES[names[int(row["scene"])]][0]
    assert total >= 10 and agree / total >= 0.6, (agree, total)


# ---------------------------------------------------------------------------------------------
# Determinism, atomic writing, arguments
# ---------------------------------------------------------------------------------------------


def test_same_seed_is_byte_identical_and_other_seed_differs(ds: Dataset, out_root: Path) -> None:
    again = out_root / "seed0-again"
    generate_broden(again, n_images=N_IMAGES, image_size=SIZE, seed=0)
    assert tree_digest(again) == tree_digest(ds.root)
    other = out_root / "seed1"
    generate_broden(other, n_images=N_IMAGES, image_size=SIZE, seed=1)
    digest_other = tree_digest(other)
    digest = tree_digest(ds.root)
    assert digest_other != digest
    assert (
        digest_other["images/synthetic/syn_000001.jpg"] != digest["images/synthetic/syn_000001.jpg"]
    )


def test_existing_out_dir_raises(ds: Dataset) -> None:
    before = tree_digest(ds.root)
    with pytest.raises(FileExistsError, match=re.escape(str(ds.root))):
        generate_broden(ds.root, n_images=2, image_size=SIZE)
    assert tree_digest(ds.root) == before


def test_failure_removes_temporary_folder(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return original(*args, **kwargs)

    original = sb._write_image
    monkeypatch.setattr(sb, "_write_image", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_broden(tmp_path / "out", n_images=5, image_size=32)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs", [{"n_images": 0}, {"image_size": 8}, {"val_fraction": 1.0}, {"val_fraction": -0.1}]
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        generate_broden(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_full_resolution_224(tmp_path: Path) -> None:
    summary = generate_broden(tmp_path / "big", n_images=6, image_size=224, val_fraction=0.0)
    assert summary["val"] == 0 and summary["train"] == 6
    _, rows = read_csv(tmp_path / "big" / "index.csv")
    for row in rows:
        assert (row["ih"], row["iw"], row["sh"], row["sw"]) == ("224", "224", "112", "112")
        with Image.open(tmp_path / "big" / "images" / row["image"]) as im:
            assert im.size == (224, 224)
        for rel in split_cell(row["object"]):
            with Image.open(tmp_path / "big" / "images" / rel) as im:
                assert im.size == (112, 112)


# ---------------------------------------------------------------------------------------------
# Coverage: Broden's statistics, read back from the written folder by the real reader
# ---------------------------------------------------------------------------------------------


def test_every_concept_covers_between_0_1_and_5_percent_of_its_category(tmp_path: Path) -> None:
    """Issue 11: each concept's share of the pixels of the images carrying its category lies in
    [0.1 %, 5 %] at the default image size, counted by the reader (not the generator)."""
    from cnninterp.config import load_config
    from cnninterp.data.broden import BrodenFolder, coverage_statistics

    from conftest import ROOT

    size = load_config(ROOT / "config.yaml")["broden"]["synthetic"]["image_size"]
    generate_broden(tmp_path / "b", n_images=600, image_size=size, seed=0)
    stats = coverage_statistics(BrodenFolder(tmp_path / "b"))
    assert set(stats) == set(CATEGORIES)
    for cat, entry in stats.items():
        assert entry["concepts"] == len(sb.build_vocabulary().members[cat]), cat
        assert 0.001 <= entry["min"] <= entry["median"] <= entry["max"] <= 0.05, (cat, entry["min_label"], entry["min"], entry["max_label"], entry["max"])


# ---------------------------------------------------------------------------------------------
# Realism (issue 11: within-label variation of the probe's textures)
# ---------------------------------------------------------------------------------------------

FREE = sb.Realism(texture_variation=True, texture_kinds=True)


def _texture_tone(texture: str, realism, seed: int, size: int = 96) -> np.ndarray:
    """Render one texture image of label ``texture`` and return its grey level (float (size, size))."""
    spec = sb.ImageSpec(scene=None, texture=texture, horizon=0.0, ground=None, sky=(sb._TEXTURE_TONES[0], sb._TEXTURE_TONES[3]))
    rendered = sb._render(spec, np.random.default_rng(seed), size, sb.build_vocabulary(realism), realism)
    return rendered.rgb.astype(np.float64).mean(axis=2)


def _dominant_frequency(tone: np.ndarray) -> tuple[float, float]:
    """(orientation of the wave vector in degrees mod 180, cycles per image) of the strongest
    Fourier component of ``tone`` (numpy FFT, the mean removed)."""
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(tone - tone.mean())))
    n = tone.shape[0]
    iy, ix = np.unravel_index(int(spectrum.argmax()), spectrum.shape)
    fy, fx = iy - n // 2, ix - n // 2
    return float(np.degrees(np.arctan2(fy, fx)) % 180.0), float(np.hypot(fy, fx))


def test_oriented_texture_labels_are_one_orientation_and_scale_free_labels_are_not() -> None:
    """Today's vocabulary draws ``striped-20`` at one orientation and a 1.4x range of periods; the
    free vocabulary's ``striped`` spans orientations and a 3.6x range of periods (FFT peak)."""
    fixed = [_dominant_frequency(_texture_tone("striped-20", sb.Realism(), seed)) for seed in range(12)]
    free = [_dominant_frequency(_texture_tone("striped", FREE, seed)) for seed in range(12)]
    fixed_angles = np.array([a for a, _ in fixed])
    assert np.ptp(fixed_angles) <= 12.0, fixed_angles  # wave vector at 110 deg, FFT bins ~5 deg
    angles = np.sort([a for a, _ in free])
    gaps = np.diff(np.concatenate([angles, angles[:1] + 180.0]))
    assert gaps.max() <= 90.0, angles  # no half-circle of orientations left out
    radii = [r for _, r in free]
    assert max(radii) >= 2.0 * min(radii), radii
    assert max(r for _, r in fixed) <= 1.6 * min(r for _, r in fixed), fixed


@pytest.mark.parametrize("kind", sb.TEXTURE_KINDS_FREE)
def test_every_free_texture_kind_paints_both_tones(kind: str) -> None:
    """Each of the 24 structures covers between 3 % and 97 % of the image with its second tone
    at the smallest, a middle and the largest period, and two seeds give different images."""
    for period in (0.07 * 96, 0.13 * 96, 0.25 * 96):
        tone = sb._texture_free(np.random.default_rng(0), kind, 96, period, 0.4)
        assert tone.shape == (96, 96) and 0.0 <= tone.min() and tone.max() <= 1.0
        assert 0.03 <= tone.mean() <= 0.97, (kind, period, tone.mean())
    a = sb._texture_free(np.random.default_rng(1), kind, 96, 12.0, 0.4)
    b = sb._texture_free(np.random.default_rng(2), kind, 96, 12.0, 1.1)
    assert not np.array_equal(a, b)


def test_free_vocabulary_writes_24_texture_labels_deterministically(tmp_path: Path) -> None:
    """With ``texture_kinds`` the written label files carry the 24 structures as the texture
    category, every texture image one of them, and the same seed gives byte-identical files."""
    generate_broden(tmp_path / "a", n_images=60, image_size=48, seed=3, realism=FREE)
    generate_broden(tmp_path / "b", n_images=60, image_size=48, seed=3, realism=FREE)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    ds = Dataset(tmp_path / "a", {})
    assert [r["name"] for r in ds.c_rows["texture"]] == list(sb.TEXTURE_KINDS_FREE)
    assert len(ds.label) == sb.build_vocabulary(FREE).size == 122 - 32 + 24
    texture_rows = [r for r in ds.index if split_cell(r["texture"])]
    assert texture_rows
    for r in texture_rows:
        (number,) = split_cell(r["texture"])
        assert ds.labels[int(number)]["name"] in sb.TEXTURE_KINDS_FREE
    synonyms = {r["name"]: r["syns"] for r in ds.label}
    assert synonyms["chequered"] == "checkered"


def test_texture_share_sets_the_share_of_texture_images(tmp_path: Path) -> None:
    """``texture_share`` is the probability of a texture ("DTD" source) image: 0 gives none, 0.5
    about half (binomial, 200 images: 0.5 +- 0.1 is over 2.8 standard deviations); outside [0, 1)
    is a ConfigError naming the argument, and nothing is left behind."""
    generate_broden(tmp_path / "none", n_images=30, image_size=32, seed=0, texture_share=0.0)
    assert not any(split_cell(r["texture"]) for r in Dataset(tmp_path / "none", {}).index)
    generate_broden(tmp_path / "half", n_images=200, image_size=32, seed=0, texture_share=0.5)
    share = np.mean([bool(split_cell(r["texture"])) for r in Dataset(tmp_path / "half", {}).index])
    assert 0.4 <= share <= 0.6, share
    with pytest.raises(sb.ConfigError, match="texture_share"):
        generate_broden(tmp_path / "bad", n_images=4, image_size=32, seed=0, texture_share=1.0)
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob("bad.tmp-*"))
