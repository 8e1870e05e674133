"""The CUB-200-2011 reader on a small folder written in exactly that layout, and its errors."""

import re

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


def convert(root, out):
    """The birds of ``root`` against as many synthetic negatives, as the icnn data step writes them."""
    return cub.write_cub_parts(root, out / "shards", out / "probe", image_size=16, disc_radius=2.0, positive_fraction=0.5,
                               probe_images=1, seed=0, shard_size=10)


def test_conversion_scales_landmarks_and_draws_discs(tmp_path):
    root = write_cub(tmp_path / "cub")
    manifest = convert(root, tmp_path)
    assert manifest["parts"] == PARTS and manifest["classes"] == ["negative", "bird"]
    assert manifest["splits"]["train"]["samples"] == 2 + 2 and manifest["splits"]["test"]["samples"] == 1 + 1
    train = load_split(tmp_path / "shards", "train")
    # image 1 is 40x20, resized to 16x16: beak (30, 10) -> (12, 8)
    assert np.allclose(train["landmarks"][0, 1], [12.0, 8.0])
    assert np.isnan(train["landmarks"][0, 2]).all() and train["visible"][0].tolist() == [True, True, False]
    seg = train["seg"][0]
    assert seg[7, 11] == 2 and seg[7, 12] == 2 and seg[0, 0] == 0
    assert (seg == 3).sum() == 0
    # a disc of radius 2 around a pixel corner holds 12 pixel centres
    assert (seg == 2).sum() == 12
    assert train["labels"].tolist() == [1, 1, 0, 0]  # both species are birds (class 1); keys cub_* before neg_*
    assert train["images"].shape == (4, 16, 16, 3) and train["images"][1, 0, 0, 0] == 120


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
        convert(root, tmp_path)
    assert not (tmp_path / "shards" / "manifest.json").exists()
    assert not list((tmp_path / "shards").glob("*.tar"))


@pytest.mark.parametrize("content", [b"not an image", "truncated"])
def test_a_corrupt_or_truncated_image_names_the_image_and_its_line(tmp_path, content):
    # it had raised an OSError that the CLI reported as "check that the folder exists and is writable"
    root = write_cub(tmp_path / "cub")
    path = root / "images" / IMAGES[2][1]
    path.write_bytes(path.read_bytes()[:100] if content == "truncated" else content)
    with pytest.raises(DataError, match=r"image .*Laysan_Albatross_0001.jpg \(.*images.txt line 3\) cannot be read"):
        convert(root, tmp_path)
    assert not (tmp_path / "shards" / "manifest.json").exists()
    assert not list((tmp_path / "shards").glob("*.tar"))


def test_landmark_outside_the_image_names_file_and_line(tmp_path):
    images = [IMAGES[0], (2, "x/b.jpg", 1, 0, (20, 20), [(1, 25.0, 3.0, 1), (2, 0.0, 0.0, 0), (3, 1.0, 1.0, 1)])]
    root = write_cub(tmp_path / "cub", images)
    with pytest.raises(DataError, match=r"part_locs.txt line 4: landmark \(25.0, 3.0\) of part 1 \(back\) lies outside image x/b.jpg \(20x20\)"):
        convert(root, tmp_path)


def test_unknown_image_id_and_bad_numbers(tmp_path):
    root = write_cub(tmp_path / "cub")
    (root / "image_class_labels.txt").write_text("1 1\n9 1\n")
    with pytest.raises(DataError, match=r"image_class_labels.txt line 2: image id 9 is not listed"):
        cub.CubFolder(root)
    (root / "image_class_labels.txt").write_text("1 one\n")
    with pytest.raises(DataError, match=r"image_class_labels.txt line 1: 'one' is not a whole number"):
        cub.CubFolder(root)


@pytest.mark.parametrize("name", ["image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt"])
def test_an_image_without_its_line_in_a_per_image_file_is_named(tmp_path, name):
    # it had kept the defaults silently: class 0 (cls -1) or the train split
    root = write_cub(tmp_path / "cub")
    lines = (root / name).read_text().splitlines()
    (root / name).write_text("\n".join(lines[:2]) + "\n")
    with pytest.raises(DataError, match=rf"{name}: 1 image\(s\) of images.txt have no line, e.g. id 3 \(002.Laysan"):
        cub.CubFolder(root)
    (root / name).write_text("\n".join(lines + lines[:1]) + "\n")
    with pytest.raises(DataError, match=rf"{name} line 4: image id 1 is listed twice \(first on line 1\)"):
        cub.CubFolder(root)


@pytest.mark.parametrize("option, value", [("--disc-radius", "-3"), ("--image-size", "0")])
def test_a_size_out_of_range_exits_2_naming_it(tmp_path, capsys, option, value):
    root = write_cub(tmp_path / "cub")
    assert cli_data(root, tmp_path, option, value) == 2
    assert option.lstrip("-").replace("-", "_") in capsys.readouterr().err
    assert not (tmp_path / "parts").exists() or not list((tmp_path / "parts").iterdir())


def cli_data(root, out, *extra):
    """Run ``cnninterp icnn data --source cub`` in-process on the folder ``root``; return the exit status."""
    from cnninterp.cli import main

    return main(["icnn", "data", "--out", str(out / "parts"), "--probe-out", str(out / "probe"), "--source", "cub",
                 "--cub-root", str(root), "--image-size", "16", "--disc-radius", "2", "--probe-images", "1", "--shard-size", "10", *extra])


def test_the_cli_data_step_turns_a_cub_folder_into_bird_and_negative_shards(tmp_path):
    from cnninterp.data.shards import read_manifest

    root = write_cub(tmp_path / "CUB_200_2011")
    assert cli_data(root, tmp_path) == 0
    manifest = read_manifest(tmp_path / "parts")
    assert manifest["parts"] == PARTS and manifest["classes"] == ["negative", "bird"]
    assert manifest["source"]["kind"] == "cub-200-2011" and manifest["config"]["negatives"]["kind"] == "synthetic backgrounds"
    # train_test_split.txt: images 1, 3 train, image 2 test; positive_fraction 0.5: as many negatives as birds
    train, test = load_split(tmp_path / "parts", "train"), load_split(tmp_path / "parts", "test")
    assert train["keys"] == ["cub_000001", "cub_000003", "neg_000000", "neg_000001"] and train["labels"].tolist() == [1, 1, 0, 0]
    assert test["keys"] == ["cub_000002", "neg_000000"] and test["labels"].tolist() == [1, 0]
    # image 2 is 20x20, resized to 16: back (5, 15) -> (4, 12), beak hidden, left eye (12, 4) -> (9.6, 3.2)
    assert np.allclose(test["landmarks"][0, 0], [4.0, 12.0]) and np.allclose(test["landmarks"][0, 2], [9.6, 3.2])
    assert test["visible"][0].tolist() == [True, False, True] and test["seg"][0, 12, 4] == 1 and test["seg"][0, 3, 9] == 3
    # a negative: no part anywhere, no landmark, and an image with clutter (not one flat colour)
    assert not train["visible"][2:].any() and np.isnan(train["landmarks"][2:]).all() and not train["seg"][2:].any()
    assert train["images"][2].std() > 5
    # the probe set for the dissection: the first test bird, the same pixels and masks as in the test split
    probe = load_split(tmp_path / "probe", "probe")
    assert probe["keys"] == ["cub_000002"]
    assert np.array_equal(probe["images"][0], test["images"][0]) and np.array_equal(probe["seg"][0], test["seg"][0])


def test_negatives_from_a_folder_split_by_position(tmp_path):
    root = write_cub(tmp_path / "cub")
    negatives = tmp_path / "negatives"
    for k, name in enumerate(["a/1.jpg", "a/2.PNG", "b/3.jpeg", "notes.txt"]):
        (negatives / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".txt"):
            (negatives / name).write_text("not an image")
        else:
            Image.fromarray(np.full((12, 24, 3), 50 + 60 * k, np.uint8)).save(negatives / name)
    assert cli_data(root, tmp_path, "--negatives-root", str(negatives)) == 0
    train, test = load_split(tmp_path / "parts", "train"), load_split(tmp_path / "parts", "test")
    # sorted a/1.jpg, a/2.PNG, b/3.jpeg: even positions train, odd test (flat colours survive JPEG and resizing)
    assert train["labels"].tolist() == [1, 1, 0, 0] and test["labels"].tolist() == [1, 0]
    assert abs(int(train["images"][2].mean()) - 50) <= 2 and abs(int(train["images"][3].mean()) - 170) <= 2
    assert abs(int(test["images"][1].mean()) - 110) <= 2


def test_bad_cub_settings_exit_2_naming_the_setting_or_file_and_leave_nothing(tmp_path, capsys):
    from cnninterp.data.cub import check_cub_settings
    from cnninterp.errors import ConfigError

    with pytest.raises(ConfigError, match="icnn.data.cub_root is not set"):
        check_cub_settings("")
    with pytest.raises(ConfigError, match=r"icnn.data.cub_root: '.*nowhere' is not an existing folder"):
        check_cub_settings(str(tmp_path / "nowhere"))
    root = write_cub(tmp_path / "cub")
    with pytest.raises(ConfigError, match=r"icnn.data.negatives_root: '.*nonegs' is not an existing folder"):
        check_cub_settings(str(root), str(tmp_path / "nonegs"))
    (root / "parts/part_locs.txt").unlink()
    assert cli_data(root, tmp_path) == 2
    assert "--cub-root: " + str(root / "parts/part_locs.txt") + " is missing" in capsys.readouterr().err
    write_cub(tmp_path / "cub2")
    (tmp_path / "cub2" / "images" / IMAGES[1][1]).unlink()
    assert cli_data(tmp_path / "cub2", tmp_path) == 2
    assert "Black_Footed_Albatross_0002.jpg is missing" in capsys.readouterr().err
    assert not (tmp_path / "parts" / "manifest.json").exists() and not list((tmp_path / "parts").glob("*.tar"))


def test_a_repeated_image_part_line_names_both_lines(tmp_path):
    """A second (image 1, part 2) line had silently replaced the first."""
    root = write_cub(tmp_path / "cub")
    path = root / "parts/part_locs.txt"
    rows = path.read_text().splitlines()
    path.write_text("\n".join(rows[:3] + ["1 2 0.0 0.0 0"] + rows[3:]) + "\n")
    with pytest.raises(DataError, match=r"part_locs.txt line 4: image 1, part 2 \(beak\) is listed twice \(first on line 2\)"):
        cub.CubFolder(root)


def _replace_second_line(path, change):
    """Rewrite line 2 of a CUB text file as ``change(old line)``."""
    rows = path.read_text().splitlines()
    rows[1] = change(rows[1])
    path.write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("flag", ["2", "-1", "1.0"])
def test_a_visible_flag_other_than_0_or_1_names_file_and_line(tmp_path, flag):
    """CUB writes visible as 0 or 1; "2" had read as hidden."""
    root = write_cub(tmp_path / "cub")
    _replace_second_line(root / "parts/part_locs.txt", lambda row: row.rsplit(" ", 1)[0] + " " + flag)
    with pytest.raises(DataError, match=rf"part_locs.txt line 2: visible is '{re.escape(flag)}', expected 0 or 1"):
        cub.CubFolder(root)


@pytest.mark.parametrize("flag", ["7", "2", "-1"])
def test_an_is_training_image_other_than_0_or_1_names_file_and_line(tmp_path, flag):
    """CUB writes is_training_image as 0 or 1; "7" had read as test."""
    root = write_cub(tmp_path / "cub")
    _replace_second_line(root / "train_test_split.txt", lambda row: f"2 {flag}")
    with pytest.raises(DataError, match=rf"train_test_split.txt line 2: is_training_image is '{re.escape(flag)}', expected 0 or 1"):
        cub.CubFolder(root)
