"""The CUB-200-2011 reader on a small folder written in exactly that layout, and its errors."""

import numpy as np
import pytest
from PIL import Image

from cnninterp.data import cub
from cnninterp.data.parts import load_split
from cnninterp.errors import DataError

PARTS = ["back", "beak", "left eye"]
# image id, name, class, is_train, size (w, h), part locs (part id, x, y, visible)
IMAGES = [
    (1, "001.Black_footed_Albatross/Black_Footed_Albatross_0001.jpg", 1, 1, (40, 20), [(1, 10.0, 5.0, 1), (2, 30.0, 10.0, 1), (3, 0.0, 0.0, 0)]),
    (2, "001.Black_footed_Albatross/Black_Footed_Albatross_0002.jpg", 1, 0, (20, 20), [(1, 5.0, 15.0, 1), (2, 0.0, 0.0, 0), (3, 12.0, 4.0, 1)]),
    (3, "002.Laysan_Albatross/Laysan_Albatross_0001.jpg", 2, 1, (30, 30), [(1, 15.0, 15.0, 1), (2, 25.0, 5.0, 1), (3, 20.0, 6.0, 1)]),
]


def write_cub(root, images=IMAGES, parts=PARTS):
    (root / "parts").mkdir(parents=True)
    lines = {"images.txt": [], "image_class_labels.txt": [], "train_test_split.txt": [], "bounding_boxes.txt": [], "parts/part_locs.txt": []}
    for image_id, name, cls, train, (w, h), locs in images:
        path = root / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((h, w, 3), 40 * image_id, np.uint8)).save(path)
        lines["images.txt"].append(f"{image_id} {name}")
        lines["image_class_labels.txt"].append(f"{image_id} {cls}")
        lines["train_test_split.txt"].append(f"{image_id} {train}")
        lines["bounding_boxes.txt"].append(f"{image_id} 1.0 2.0 {w - 2}.0 {h - 3}.0")
        lines["parts/part_locs.txt"] += [f"{image_id} {p} {x:.1f} {y:.1f} {v}" for p, x, y, v in locs]
    lines["parts/parts.txt"] = [f"{i + 1} {name}" for i, name in enumerate(parts)]
    lines["classes.txt"] = ["1 001.Black_footed_Albatross", "2 002.Laysan_Albatross"]
    for name, rows in lines.items():
        (root / name).write_text("\n".join(rows) + "\n")
    return root


def test_reader_reads_annotations(tmp_path):
    folder = cub.CubFolder(write_cub(tmp_path / "CUB_200_2011"))
    assert folder.parts == PARTS  # a name with a space stays whole
    assert folder.classes == ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
    img = folder.images[2]
    assert img.class_id == 1 and img.train is False and img.bbox == (1.0, 2.0, 18.0, 17.0)
    assert img.visible.tolist() == [True, False, True]
    assert img.landmarks[2].tolist() == [12.0, 4.0]


def test_conversion_scales_landmarks_and_draws_discs(tmp_path):
    root = write_cub(tmp_path / "cub")
    manifest = cub.convert_cub(root, tmp_path / "shards", image_size=16, disc_radius=2.0, shard_size=10)
    assert manifest["parts"] == PARTS and manifest["splits"]["train"]["samples"] == 2 and manifest["splits"]["test"]["samples"] == 1
    train = load_split(tmp_path / "shards", "train")
    # image 1 is 40x20, resized to 16x16: beak (30, 10) -> (12, 8)
    assert np.allclose(train["landmarks"][0, 1], [12.0, 8.0])
    assert np.isnan(train["landmarks"][0, 2]).all() and train["visible"][0].tolist() == [True, True, False]
    seg = train["seg"][0]
    assert seg[7, 11] == 2 and seg[7, 12] == 2 and seg[0, 0] == 0
    assert (seg == 3).sum() == 0
    # a disc of radius 2 around a pixel corner holds 12 pixel centres
    assert (seg == 2).sum() == 12
    assert train["labels"].tolist() == [0, 1]
    assert train["images"].shape == (2, 16, 16, 3) and train["images"][1, 0, 0, 0] == 120


def test_missing_part_locs_is_named(tmp_path):
    root = write_cub(tmp_path / "cub")
    (root / "parts/part_locs.txt").unlink()
    with pytest.raises(DataError, match="part_locs.txt is missing"):
        cub.CubFolder(root)


def test_part_id_out_of_range_names_file_and_line(tmp_path):
    root = write_cub(tmp_path / "cub")
    path = root / "parts/part_locs.txt"
    rows = path.read_text().splitlines()
    rows[4] = "2 7 3.0 3.0 1"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"part_locs.txt line 5: part id 7 is out of range 1\.\.3"):
        cub.CubFolder(root)


def test_listed_but_missing_image_names_file_and_line(tmp_path):
    root = write_cub(tmp_path / "cub")
    (root / "images" / IMAGES[2][1]).unlink()
    with pytest.raises(DataError, match=r"Laysan_Albatross_0001.jpg is missing .*images.txt line 3"):
        cub.convert_cub(root, tmp_path / "shards", image_size=16, disc_radius=2.0, shard_size=10)
    assert not (tmp_path / "shards" / "manifest.json").exists()
    assert not list((tmp_path / "shards").glob("*.tar"))


def test_landmark_outside_the_image_names_file_and_line(tmp_path):
    images = [IMAGES[0], (2, "x/b.jpg", 1, 1, (20, 20), [(1, 25.0, 3.0, 1), (2, 0.0, 0.0, 0), (3, 1.0, 1.0, 1)])]
    root = write_cub(tmp_path / "cub", images)
    with pytest.raises(DataError, match=r"part_locs.txt line 4: landmark \(25.0, 3.0\) of part 1 \(back\) lies outside image x/b.jpg \(20x20\)"):
        cub.convert_cub(root, tmp_path / "shards", image_size=16, disc_radius=2.0, shard_size=10)


def test_unknown_image_id_and_bad_numbers(tmp_path):
    root = write_cub(tmp_path / "cub")
    (root / "image_class_labels.txt").write_text("1 1\n9 1\n")
    with pytest.raises(DataError, match=r"image_class_labels.txt line 2: image id 9 is not listed"):
        cub.CubFolder(root)
    (root / "image_class_labels.txt").write_text("1 one\n")
    with pytest.raises(DataError, match=r"image_class_labels.txt line 1: 'one' is not a whole number"):
        cub.CubFolder(root)
