"""Broden folder -> reader -> shards -> decoded samples, determinism and bad inputs."""

import csv
import hashlib
import io
import re
import tarfile

import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from cnninterp.data.broden import BrodenFolder
from cnninterp.data.broden_shards import convert_broden, iter_broden
from cnninterp.data.shards import read_manifest, shard_paths
from cnninterp.errors import DataError


def decode_png_labels(path):
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1]


def test_every_pixel_and_label_survives_the_round_trip(broden_dir, broden_shards):
    with open(broden_dir / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    samples = {s["key"]: s for s in iter_broden(shard_paths(broden_shards))}
    assert len(samples) == len(rows) == 40
    layers_seen = 0
    for i, row in enumerate(rows):
        s = samples[f"{i:07d}"]
        image_bytes = (broden_dir / "images" / row["image"]).read_bytes()
        np.testing.assert_array_equal(s["image"], np.asarray(Image.open(io.BytesIO(image_bytes)).convert("RGB")))
        assert (s["ih"], s["iw"], s["sh"], s["sw"]) == tuple(int(row[k]) for k in ("ih", "iw", "sh", "sw"))
        assert s["split"] == row["split"]
        expected = []
        for cat in ("color", "object", "part", "material"):
            for rel in filter(None, row[cat].split(";")):
                expected.append((cat, decode_png_labels(broden_dir / "images" / rel)))
        assert s["layers"] == [c for c, _ in expected]
        assert s["seg"].shape == (len(expected), s["sh"], s["sw"]) and s["seg"].dtype == np.uint16
        for got, (_, want) in zip(s["seg"], expected):
            np.testing.assert_array_equal(got, want)
        layers_seen += len(expected)
        for cat in ("scene", "texture"):
            want = [int(v) for v in filter(None, row[cat].split(";"))]
            assert s["image_labels"].get(cat, []) == want
    assert layers_seen > 80  # many layers were compared, multi-layer parts included


def test_original_image_bytes_are_stored(broden_dir, broden_shards):
    with tarfile.open(shard_paths(broden_shards)[0]) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".jpg"))
        key = member.name.split(".")[0]
        data = tar.extractfile(member).read()
    row = BrodenFolder(broden_dir).rows[int(key)]
    assert data == (broden_dir / "images" / row.image).read_bytes()


def test_manifest_holds_counts_checksums_vocabulary_and_source(broden_dir, broden_shards):
    manifest = read_manifest(broden_shards)
    assert manifest["splits"]["train"]["samples"] + manifest["splits"]["val"]["samples"] == 40
    for split in manifest["splits"].values():
        for shard in split["shards"]:
            data = (broden_shards / shard["name"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == shard["sha256"]
            with tarfile.open(broden_shards / shard["name"]) as tar:
                assert len({m.name.split(".")[0] for m in tar.getmembers()}) == shard["samples"]
    folder = BrodenFolder(broden_dir)
    by_number = {lab["number"]: lab for lab in manifest["labels"]}
    assert set(by_number) == set(folder.labels)
    for lab in manifest["labels"]:
        assert lab["primary"] == max(lab["categories"], key=lab["categories"].get)
    assert manifest["source"]["kind"] == "synthetic" and len(manifest["source"]["content_sha256"]) == 64
    assert manifest["config"] == {"shard_size": 12}


def test_readme_webdataset_snippet_reads_the_keys(broden_shards):
    urls = [str(p) for p in shard_paths(broden_shards, ["train"])]
    dataset = wds.WebDataset(urls, shardshuffle=False).decode("rgb8")
    sample = next(iter(dataset))
    assert sample["jpg"].shape == (64, 64, 3)
    assert sample["seg.npy"].ndim == 3
    assert set(sample["json"]) >= {"layers", "image_labels", "sh", "sw"}


def test_same_config_gives_byte_identical_shards(broden_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    convert_broden(broden_dir, a, 7, {"kind": "synthetic"}, {})
    convert_broden(broden_dir, b, 7, {"kind": "synthetic"}, {})
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and len(names) > 3
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_keys_are_sorted_and_free_of_dots(broden_shards):
    for path in shard_paths(broden_shards):
        with tarfile.open(path) as tar:
            keys = [m.name.split(".", 1)[0] for m in tar.getmembers()]
            assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in tar.getmembers())
        assert keys == sorted(keys)
        assert all("." not in k for k in keys)


# -- bad inputs: a clear error naming the file, key or value; nothing partial left -------------


def _rewrite_index(folder, change):
    path = folder / "index.csv"
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, list(reader)
    fields, rows = change(fields, rows)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _set_index_cell(folder, row, column, value):
    def change(fields, rows):
        rows[row][column] = value
        return fields, rows

    _rewrite_index(folder, change)


def _red_also_in_material(folder, coverage):
    """List the colour label red in c_material.csv too, with ``coverage``; return red's number."""
    with open(folder / "c_color.csv", newline="") as handle:
        red = next(r for r in csv.DictReader(handle) if r["name"] == "red")
    with open(folder / "c_material.csv", "a", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerow([99, red["number"], "red", 1, coverage])
    return red


def _assert_nothing_written(out):
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert left == [], f"partial output left behind: {left}"


def _first_with(rows, column):
    return next(r for r in rows if r[column])


def test_missing_index_column(broden_copy, tmp_path):
    _rewrite_index(broden_copy, lambda f, r: ([c for c in f if c != "sh"], r))
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"index\.csv.*missing column.*sh"):
        convert_broden(broden_copy, out, 10, {}, {})
    _assert_nothing_written(out)


def test_referenced_png_missing(broden_copy, tmp_path):
    rows = _rewrite_index(broden_copy, lambda f, r: (f, r))
    rel = _first_with(rows[20:], "part")["part"].split(";")[0]
    (broden_copy / "images" / rel).unlink()
    out = tmp_path / "out"
    with pytest.raises(DataError, match="segmentation .*" + rel.split("/")[-1] + r".* is missing"):
        convert_broden(broden_copy, out, 10, {}, {})
    _assert_nothing_written(out)


def test_corrupt_jpeg(broden_copy, tmp_path):
    rows = _rewrite_index(broden_copy, lambda f, r: (f, r))
    path = broden_copy / "images" / rows[25]["image"]
    path.write_bytes(path.read_bytes()[:200])
    out = tmp_path / "out"
    with pytest.raises(DataError, match=path.name + ".*corrupt"):
        convert_broden(broden_copy, out, 10, {}, {})
    _assert_nothing_written(out)


def test_label_absent_from_label_csv_in_a_mask(broden_copy, tmp_path):
    rows = _rewrite_index(broden_copy, lambda f, r: (f, r))
    rel = _first_with(rows[30:], "object")["object"]
    path = broden_copy / "images" / rel
    rgb = np.asarray(Image.open(path).convert("RGB")).copy()
    rgb[0, 0] = (231, 3, 0)  # label 231 + 3*256 = 999
    Image.fromarray(rgb).save(path)
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"label number 999 is not in .*label\.csv"):
        convert_broden(broden_copy, out, 10, {}, {})
    _assert_nothing_written(out)


def test_label_absent_from_label_csv_as_whole_image_label(broden_copy, tmp_path):
    _set_index_cell(broden_copy, 5, "scene", "4242")
    with pytest.raises(DataError, match=r"index\.csv line 7, column scene: label number 4242"):
        BrodenFolder(broden_copy)


def test_error_during_conversion_leaves_previous_shards_consistent(broden_copy, broden_shards, tmp_path):
    """A failed rerun removes the manifest, so no reader trusts a half-rewritten folder."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(broden_shards, out)
    rows = _rewrite_index(broden_copy, lambda f, r: (f, r))
    (broden_copy / "images" / rows[-1]["image"]).write_bytes(b"not a jpeg")
    with pytest.raises(DataError):
        convert_broden(broden_copy, out, 12, {}, {})
    _assert_nothing_written(out)


def test_a_label_in_two_categories_takes_the_larger_coverage_as_primary(broden_copy, tmp_path):
    """Real Broden lists some labels in two categories; the reader's primary is the larger coverage."""
    red = _red_also_in_material(broden_copy, "0.9")
    label = BrodenFolder(broden_copy).labels[int(red["number"])]
    assert label.categories == {"color": float(red["coverage"]), "material": 0.9} and label.primary == "material"


@pytest.mark.parametrize("coverage", ["nan", "-0.5", "inf"])
def test_a_coverage_that_is_not_a_finite_share_names_the_file_and_line(broden_copy, coverage):
    # NaN made max() keep the first category as primary, silently (a label's primary decides its row)
    _red_also_in_material(broden_copy, coverage)
    with pytest.raises(DataError, match=rf"c_material.csv line \d+: coverage '{re.escape(coverage)}' is not a finite number >= 0"):
        BrodenFolder(broden_copy)


def test_a_negative_segmentation_size_names_the_file_and_line(broden_copy, tmp_path):
    _set_index_cell(broden_copy, 0, "sh", "-3")
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"index.csv line 2: sh = -3"):
        convert_broden(broden_copy, out, 10, {}, {})
    _assert_nothing_written(out)


def test_manifest_coverage_is_each_concepts_share_of_its_categorys_pixels(broden_dir, broden_shards):
    """The manifest's coverage, recomputed here from the PNGs and index.csv with plain numpy."""
    with open(broden_dir / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    names = {lab["number"]: lab["name"] for lab in read_manifest(broden_shards)["labels"]}
    coverage = read_manifest(broden_shards)["coverage"]
    for cat in ("color", "object", "part", "material", "scene", "texture"):
        pixels, counts, images = 0, {}, 0
        for row in rows:
            area = int(row["sh"]) * int(row["sw"])
            cells = [c for c in row[cat].split(";") if c]
            if not cells:
                continue
            images += 1
            pixels += area
            if cells[0].isdigit():
                for number in {int(c) for c in cells}:
                    counts[number] = counts.get(number, 0) + area
            else:
                stack = np.stack([decode_png_labels(broden_dir / "images" / c) for c in cells])
                for number in set(np.unique(stack).tolist()) - {0}:
                    counts[number] = counts.get(number, 0) + int((stack == number).any(axis=0).sum())
        entry = coverage[cat]
        assert entry["images"] == images and entry["concepts"] == len(counts)
        want = {names[n]: c / pixels for n, c in counts.items()}
        assert entry["coverage"] == pytest.approx(want, abs=1e-6)
        assert entry["min"] == pytest.approx(min(want.values())) and entry["max"] == pytest.approx(max(want.values()))
        assert entry["median"] == pytest.approx(float(np.median(list(want.values()))))
        assert want[entry["min_label"]] == pytest.approx(entry["min"])


def test_coverage_counts_a_pixel_labelled_twice_once():
    """Two layers of one category holding the same label at a pixel count that pixel once."""
    from cnninterp.data.broden import CoverageCounter, Label

    counter = CoverageCounter(["part", "scene"])
    seg = np.array([[[1, 1], [2, 0]], [[1, 0], [1, 0]]], dtype=np.uint16)  # (2 layers, 2, 2)
    counter.add(seg, ["part", "part"], {"scene": [3]}, 2, 2)
    counter.add(np.zeros((0, 2, 2), np.uint16), [], {"scene": [4]}, 2, 2)
    labels = {n: Label(n, f"l{n}", {}, "part") for n in (1, 2, 3, 4)}
    stats = counter.statistics(labels)
    # label 1: pixels (0,0), (0,1), (1,0) -> 3 of 4; label 2: 1 of 4; the unlabelled pixel counts in the total
    assert stats["part"]["coverage"] == {"l1": 0.75, "l2": 0.25} and stats["part"]["images"] == 1
    assert stats["scene"]["coverage"] == {"l3": 0.5, "l4": 0.5} and stats["scene"]["images"] == 2


def _first_mask(folder):
    """(reader, row, rel) of the first row with an object mask, and its labels decoded from the RGB file."""
    reader = BrodenFolder(folder)
    row = next(r for r in reader.rows if dict(r.layers).get("object"))
    rel = dict(row.layers)["object"]
    return reader, row, rel, decode_png_labels(folder / "images" / rel)


@pytest.mark.parametrize("mode", ["L", "I;16"])
def test_a_mask_that_is_not_rgb_is_refused_naming_the_png_and_its_mode(broden_copy, mode):
    """Mode L decoded v as label 257·v (convert("RGB") gives (v, v, v)); I;16 was clipped to 65535."""
    reader, row, rel, labels = _first_mask(broden_copy)
    path = broden_copy / "images" / rel
    assert labels.max() < 256  # the labels fit in one grayscale byte, so only the mode is wrong
    if mode == "L":
        Image.fromarray(labels.astype(np.uint8), mode="L").save(path)
    else:
        Image.fromarray(labels.astype(np.uint16)).save(path)
    assert Image.open(path).mode == mode
    with pytest.raises(DataError, match=re.escape(str(path)) + f".* is a mode {re.escape(mode)} PNG.*label = R \\+ 256·G"):
        reader.read_layer(row, rel)


def _png_16bit_rgb(path, rgb):
    """Write ``rgb`` (H, W, 3) as a PNG of 16 bits per channel (colour type 2, bit depth 16, big-endian
    samples, filter 0 per row), the layout of the PNG specification."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    h, w, _ = rgb.shape
    rows = b"".join(b"\x00" + np.ascontiguousarray(rgb[y], dtype=">u2").tobytes() for y in range(h))
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_a_mask_with_16_bits_per_channel_is_refused_naming_the_png(broden_copy):
    """Pillow opens a 48-bit PNG as mode RGB keeping each channel's high byte: every label below 256
    was read as 0 (unlabelled) without a word."""
    reader, row, rel, labels = _first_mask(broden_copy)
    path = broden_copy / "images" / rel
    codes = np.stack([labels & 0xFF, labels >> 8, np.zeros_like(labels)], axis=-1).astype(np.uint16)
    _png_16bit_rgb(path, codes)
    assert Image.open(path).mode == "RGB"
    with pytest.raises(DataError, match=re.escape(str(path)) + ".* is a mode RGB with 16 bits per channel PNG"):
        reader.read_layer(row, rel)


@pytest.mark.parametrize("mode", ["RGBA", "P"])
def test_rgba_and_palette_masks_decode_to_the_same_labels(broden_copy, mode):
    reader, row, rel, labels = _first_mask(broden_copy)
    path = broden_copy / "images" / rel
    rgb = Image.open(path).convert("RGB")
    if mode == "RGBA":
        rgb.convert("RGBA").save(path)
    else:
        rgb.quantize(colors=256, method=Image.Quantize.MAXCOVERAGE).save(path)
    assert Image.open(path).mode == mode
    np.testing.assert_array_equal(reader.read_layer(row, rel), labels)
