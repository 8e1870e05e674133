"""The scene-classification training task: separate images, scene labels only, same renderer."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from cnninterp.data.synthetic_broden import SCENES, generate_broden, generate_scene_task


def rows(root):
    with open(root / "index.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def pixel_digests(root) -> set[str]:
    """sha256 of each image's decoded pixels."""
    return {hashlib.sha256(np.asarray(Image.open(root / "images" / r["image"])).tobytes()).hexdigest() for r in rows(root)}


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes") / "task"
    summary = generate_scene_task(root, n_images=72, image_size=64, seed=0, val_fraction=0.25)
    return root, summary


def test_every_image_has_one_scene_label_and_nothing_else(task):
    root, summary = task
    index = rows(root)
    assert summary["task"] is True and len(index) == 72 and summary["val"] == 18
    names = {r["number"]: r["name"] for r in csv.DictReader(open(root / "label.csv", newline=""))}
    for r in index:
        assert r["scene"].isdigit() and names[r["scene"]] in SCENES
        assert not any(r[c] for c in ("color", "object", "part", "material", "texture"))
    assert not list((root / "images").rglob("*.png"))  # no segmentation is written
    # balanced passes: 72 images = 3 of each of the 24 scenes
    assert set(Counter(r["scene"] for r in index).values()) == {3}


def test_task_images_are_not_probe_images(task, tmp_path):
    root, _ = task
    probe = tmp_path / "probe"
    generate_broden(probe, n_images=72, image_size=64, seed=0)
    assert not pixel_digests(root) & pixel_digests(probe)


def test_same_seed_same_files_other_seed_other_images(task, tmp_path):
    root, _ = task
    again = tmp_path / "again"
    generate_scene_task(again, n_images=72, image_size=64, seed=0, val_fraction=0.25)
    for r in rows(root):
        assert (again / "images" / r["image"]).read_bytes() == (root / "images" / r["image"]).read_bytes()
    other = tmp_path / "other"
    generate_scene_task(other, n_images=72, image_size=64, seed=1, val_fraction=0.25)
    assert not pixel_digests(other) & pixel_digests(root)


def test_the_task_shards_and_trains_through_the_broden_path(task, tmp_path):
    """The task is read by the real Broden reader and sharder; the trainer's scene targets come out."""
    from cnninterp.data.broden_shards import convert_broden, iter_broden
    from cnninterp.data.shards import read_manifest, shard_paths
    from cnninterp.train.baseline import sample_target, task_classes

    root, _ = task
    convert_broden(root, tmp_path / "shards", 40, {"kind": "synthetic_scene_task"}, {})
    manifest = read_manifest(tmp_path / "shards")
    assert len(task_classes(manifest, "scene")) == len(SCENES)
    assert manifest["coverage"]["scene"]["images"] == 72 and manifest["coverage"]["scene"]["max"] == pytest.approx(3 / 72)
    targets = [sample_target(s, "scene") for s in iter_broden(shard_paths(tmp_path / "shards"))]
    assert len(targets) == 72 and None not in targets


def test_command_line_replaces_an_incomplete_output_and_refuses_bad_arguments(tmp_path, capsys):
    from cnninterp.cli import main

    out = tmp_path / "task"
    (out / "junk").mkdir(parents=True)
    assert main(["data", "synth-scenes", "--out", str(out), "--n-images", "4", "--image-size", "32", "--seed", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 4 and not (out / "junk").exists() and len(rows(out)) == 4
    assert main(["data", "synth-scenes", "--out", str(tmp_path / "bad"), "--n-images", "0"]) == 2
    assert "n_images must be >= 1" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_scene_rules_set_how_far_ground_and_objects_follow_the_scene():
    """ground 0: the ground is a nuisance (every material about equally often within one scene);
    objects 1: both of the scene's objects always appear (a third, random one at most)."""
    import numpy as np

    from cnninterp.data.synthetic_broden import MATERIALS, SceneRules, _sample_scene_image

    rng = np.random.default_rng(5)
    grounds = Counter()
    for _ in range(2000):
        spec = _sample_scene_image(rng, 64, "village", SceneRules(ground=0.0, objects=1.0))
        kinds = [o.kind for o in spec.objects]
        assert {"house", "tree"} <= set(kinds) and len(kinds) <= 3
        grounds[spec.ground] += 1
    assert set(grounds) == set(MATERIALS)
    # uniform over 10 materials: 200 each, binomial sd 13.4; 5 sd either side
    assert all(130 <= n <= 270 for n in grounds.values()), grounds
    kept = Counter(_sample_scene_image(rng, 64, "village", SceneRules(ground=1.0, objects=0.0)).ground for _ in range(200))
    assert kept == {"grass": 200}


def test_rule_probabilities_outside_0_1_are_refused(tmp_path):
    from cnninterp.errors import ConfigError

    with pytest.raises(ConfigError, match="object_rule must be a probability"):
        generate_scene_task(tmp_path / "bad", n_images=4, image_size=32, object_rule=1.5)
    assert not list(tmp_path.iterdir())


def test_the_cli_passes_the_task_rules_and_names_a_bad_one(tmp_path):
    import json
    import subprocess
    import sys

    run = lambda *a: subprocess.run([sys.executable, "-m", "cnninterp.cli", "data", "synth-scenes", "--n-images", "8",
                                     "--image-size", "32", *a], capture_output=True, text=True)
    bad = run("--out", str(tmp_path / "bad"), "--ground-rule", "1.5")
    assert bad.returncode == 2 and "ground_rule must be a probability" in bad.stderr, bad.stderr
    assert not (tmp_path / "bad").exists()
    grounded = run("--out", str(tmp_path / "a"), "--ground-rule", "0.85", "--object-rule", "0.85", "--third-object", "0.5")
    default = run("--out", str(tmp_path / "b"))
    explicit = run("--out", str(tmp_path / "c"), "--ground-rule", "0", "--object-rule", "1", "--third-object", "0")
    assert grounded.returncode == default.returncode == explicit.returncode == 0, grounded.stderr + default.stderr
    assert json.loads(grounded.stdout)["images"] == json.loads(default.stdout)["images"] == 8
    # same seed, other rules: other grounds and objects, so other pictures; the CLI's defaults
    # are generate_scene_task's (ground a nuisance, both objects, no third)
    images = lambda d: {p.name: p.read_bytes() for p in (tmp_path / d / "images").rglob("*.jpg")}
    a, b, c = images("a"), images("b"), images("c")
    assert set(a) == set(b) and sum(a[k] != b[k] for k in a) >= 4
    assert b == c


def test_third_object_rule_sets_how_often_a_distractor_object_appears():
    """third_object 0: exactly the scene's two objects (no third object that could form another
    scene's pair); 1: always three. A bad probability is refused before anything is written."""
    import numpy as np

    from cnninterp.errors import ConfigError
    from cnninterp.data.synthetic_broden import SceneRules, _sample_scene_image

    for p, count in ((0.0, 2), (1.0, 3)):
        rng = np.random.default_rng(7)
        for _ in range(200):
            kinds = [o.kind for o in _sample_scene_image(rng, 64, "street", SceneRules(ground=0.0, objects=1.0, third_object=p)).objects]
            assert len(kinds) == count and {"car", "lamp"} <= set(kinds), kinds
    with pytest.raises(ConfigError, match="third_object must be a probability"):
        generate_scene_task("/nonexistent/never", n_images=4, image_size=32, third_object=-0.1)
