"""Config validation: the schema rejects typos and wrong types with the key's path, in the CLI and the Snakefile."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cnninterp.config import dissect_settings, load_config, validate_config
from cnninterp.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def default_config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_default_config_is_valid_and_defaults_are_filled():
    config = load_config(ROOT / "config.yaml")
    assert config["broden"]["download"]["url"].endswith("broden1_224.zip")
    assert config["train"]["baseline"]["momentum"] == 0.9
    s = dissect_settings(config, "baseline_random")
    assert s["random_init"] is True and s["quantile"] == 0.005 and s["layers"][-1] == "layer4"


def test_unknown_key_names_its_path():
    config = default_config()
    config["broden"]["synthetic"]["n_imagse"] = 10
    with pytest.raises(ConfigError, match=r"broden\.synthetic: Additional properties are not allowed \('n_imagse'"):
        validate_config(config)


def test_wrong_type_names_its_path_and_value():
    config = default_config()
    config["train"]["baseline"]["epochs"] = "three"
    with pytest.raises(ConfigError, match=r"train\.baseline\.epochs: 'three' is not of type 'integer'"):
        validate_config(config)


@pytest.mark.parametrize("text, key", [(".nan", "attention.data.lookahead_m"), (".inf", "attention.data.max_gap_s"),
                                       ("-.inf", "dissect.defaults.iou_threshold")])
def test_a_non_finite_number_is_refused_naming_its_key(text, key):
    # NaN passes the schema's ranges (comparisons with NaN are false): it must not reach the data
    config = default_config()
    *parents, name = key.split(".")
    block = config
    for part in parents:
        block = block.setdefault(part, {})
    block[name] = yaml.safe_load(text)
    with pytest.raises(ConfigError, match=re.escape(key) + r": .*(not a finite number|less than|greater than)"):
        validate_config(config)


def test_cli_options_refuse_nan(capsys):
    from cnninterp.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["multiview", "data", "--out", "unused", "--heldout-azimuth-deg", "nan"])
    assert exit_.value.code == 2 and "--heldout-azimuth-deg: not a finite number: 'nan'" in capsys.readouterr().err


def test_a_trained_model_is_dissected_with_its_trainings_preprocessing():
    config = default_config()
    config["train"]["baseline"]["preprocess"] = "netdissect_lite"
    with pytest.raises(ConfigError, match=r"dissect.models.baseline.preprocess is 'imagenet' but train.baseline.preprocess is 'netdissect_lite'"):
        dissect_settings(validate_config(config), "baseline")
    for name in config["dissect"]["models"]:
        config["dissect"]["models"][name]["preprocess"] = "netdissect_lite"
    assert dissect_settings(validate_config(config), "baseline")["preprocess"] == "netdissect_lite"


def test_model_override_wins_over_defaults():
    config = default_config()
    config["dissect"]["models"]["baseline"]["quantile"] = 0.01
    config["dissect"]["defaults"]["denominator"] = "lite"
    s = dissect_settings(validate_config(config), "baseline")
    assert s["quantile"] == 0.01 and s["denominator"] == "lite"
    assert dissect_settings(validate_config(config), "baseline_random")["quantile"] == 0.005


def test_trained_source_must_name_a_train_entry():
    config = default_config()
    config["dissect"]["models"]["baseline"]["source"] = "trained:nope"
    with pytest.raises(ConfigError, match="no train entry 'nope'"):
        dissect_settings(validate_config(config), "baseline")


def test_cli_reports_bad_config(tmp_path):
    bad = default_config()
    bad["seed"] = 1.5
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = subprocess.run([sys.executable, "-m", "cnninterp.cli", "validate-config", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "seed: 1.5 is not of type 'integer'" in proc.stderr and str(path) in proc.stderr


def test_snakefile_rejects_bad_config_before_any_job(tmp_path):
    bad = default_config()
    bad["broden"]["sourc"] = "local"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    snakemake = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run([str(snakemake), "-n", "--configfile", str(path), "-d", str(tmp_path / "wd"), "-s", str(ROOT / "Snakefile")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode != 0
    assert "sourc" in proc.stderr + proc.stdout
    assert not (tmp_path / "wd" / "results").exists()


def test_a_config_without_dissect_defaults_gets_the_schemas_defaults():
    """The block's default sits behind a $ref; it used to be skipped (KeyError 'layers' in the DAG)."""
    config = default_config()
    del config["dissect"]["defaults"]
    filled = validate_config(config)
    assert filled["dissect"]["defaults"]["layers"] == ["layer1", "layer2", "layer3", "layer4"]
    settings = dissect_settings(filled, "baseline")
    assert (settings["quantile"], settings["iou_threshold"], settings["batch_size"], settings["top_images"]) == (0.005, 0.04, 64, 8)


@pytest.mark.parametrize("path", [("train", "baseline", "epochs"), ("report", "gallery_units")])
def test_a_whole_float_where_an_integer_is_due_is_refused(path):
    """JSON Schema counts 3.0 as an integer; training's argparse then failed late, the report with a TypeError."""
    config = default_config()
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = 3.0
    with pytest.raises(ConfigError, match=re.escape(".".join(path)) + r": 3\.0 is not of type 'integer'"):
        validate_config(config)


def test_a_negative_seed_is_refused_before_any_job():
    config = default_config()
    config["broden"]["synthetic"]["seed"] = -1
    with pytest.raises(ConfigError, match=r"broden\.synthetic\.seed: -1 is less than the minimum of 0"):
        validate_config(config)


def test_a_training_name_of_a_methods_model_folder_is_refused():
    """train.icnn_cnn would write results/models/icnn_cnn/, the icnn method's folder."""
    config = default_config()
    config["train"]["icnn_cnn"] = dict(config["train"]["baseline"])
    with pytest.raises(ConfigError, match=r"train\.icnn_cnn: names starting with icnn_"):
        validate_config(config)


def test_negative_threads_exit_2_naming_the_option(capsys):
    """torch.set_num_threads(-1) used to end in a RuntimeError traceback."""
    from cnninterp.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--threads", "-1", "validate-config", str(ROOT / "config.yaml")])
    assert exit_.value.code == 2 and "--threads: must be >= 0, got -1" in capsys.readouterr().err


def test_validate_config_checks_a_partial_file_laid_over_config_yaml(tmp_path, capsys):
    """make run CONFIG=my.yaml: Snakemake lays my.yaml over config.yaml, so that is what is checked
    (the file alone was checked before: a partial file was refused, a file without train entries
    passed while Snakemake still planned config.yaml's baseline)."""
    from cnninterp.cli import main
    from cnninterp.config import load_config

    mine = tmp_path / "mine.yaml"
    mine.write_text("broden: {synthetic: {n_images: 40}}\ndissect: {defaults: {layers: [layer4]}}\n")
    merged = load_config(ROOT / "config.yaml", mine)
    assert merged["broden"]["synthetic"]["n_images"] == 40 and merged["broden"]["synthetic"]["image_size"] == 112
    assert merged["dissect"]["defaults"]["layers"] == ["layer4"] and "baseline" in merged["train"] and "baseline_random" in merged["dissect"]["models"]
    assert main(["validate-config", str(ROOT / "config.yaml"), str(mine)]) == 0
    assert "config.yaml + " in capsys.readouterr().out
    mine.write_text("broden: {synthetic: {n_images: -4}}\n")
    with pytest.raises(ConfigError, match=r"config\.yaml \+ .*mine\.yaml:\n  broden\.synthetic\.n_images"):
        load_config(ROOT / "config.yaml", mine)


def test_config_files_are_read_and_laid_over_as_snakemake_does(tmp_path):
    """JSON first (PyYAML reads JSON's 1e-3 as a string), an empty file refused naming it, and the
    merge is Snakemake's own update_config (its function is the oracle)."""
    import json

    from snakemake.utils import update_config

    from cnninterp.config import load_config, merge_on_top, read_config_file

    mine = tmp_path / "lr.json"
    mine.write_text(json.dumps({"attention": {"train": {"lr": 1e-3}}}).replace("0.001", "1e-3"))
    assert "1e-3" in mine.read_text() and read_config_file(mine) == {"attention": {"train": {"lr": 0.001}}}
    assert load_config(ROOT / "config.yaml", mine)["attention"]["train"]["lr"] == 0.001
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match=r"config file .*empty\.yaml is empty"):
        load_config(ROOT / "config.yaml", empty)
    cases = [({"a": 1, "b": {"c": 2}}, {"b": {"d": 3}}), ({"a": 1}, {"a": {}}), ({"a": 1}, {"a": {"x": 1}}),
             ({"a": {"b": 1}}, {"a": {"b": {"c": 2}}}), ({"a": [1]}, {"a": [2, 3], "n": None}), ({}, {"a": {"b": {}}})]
    for base, top in cases:
        expected = json.loads(json.dumps(base))
        update_config(expected, top)
        assert merge_on_top(base, top) == expected, (base, top)


@pytest.mark.parametrize("data, what", [({"views": 4, "heldout_view": 4}, "heldout_view < views"),
                                        ({"heldout_azimuth_deg": 45.5}, "coincides with a training camera")])
def test_a_moved_camera_that_does_not_fit_the_rig_is_refused_before_any_job(data, what):
    """Only the evaluation data job checked it, after the training data and the three trainings."""
    config = default_config()
    config.setdefault("multiview", {}).setdefault("data", {}).update(data)
    with pytest.raises(ConfigError, match=r"multiview\.data\.heldout_view / heldout_azimuth_deg: .*" + re.escape(what)):
        validate_config(config)


def test_a_camera_pitch_that_does_not_fit_the_frame_is_refused_before_any_job():
    """The default pitch (13 px, for 64-row frames) on a 24-row frame failed inside the attention data
    job; the config check names the key, the value and the height."""
    config = default_config()
    config.setdefault("attention", {}).setdefault("data", {}).update(height=24, width=48)
    with pytest.raises(ConfigError, match=r"attention\.data\.pitch_px: must be at most 0\.5 of the frame height \(24 px\), got 13"):
        validate_config(config)
    config["attention"]["data"]["pitch_px"] = 12
    assert validate_config(config)["attention"]["data"]["pitch_px"] == 12
    config["attention"]["data"]["source"] = "udacity"  # real recordings have no synthetic camera
    config["attention"]["data"].update(pitch_px=13, path="/data/x")
    validate_config(config)


def test_threads_bound_torch_and_the_blas_pools(tmp_path):
    """--threads bounded torch only: the gather's numpy matrix products used every core (15 CPU s in
    1.2 s of wall time on a 16-core machine). Pools loaded after the option is read (torch, SciPy,
    scikit-learn, as the commands import them) are bounded too. In a child process, as the limits
    are global."""
    code = (
        "import json, sys; from cnninterp.cli import main; "
        f"main(['--threads', '1', 'validate-config', {str(ROOT / 'config.yaml')!r}]); "
        "import torch, scipy.linalg, sklearn.linear_model; from threadpoolctl import threadpool_info; "
        "print(json.dumps([torch.get_num_threads()] + [p['num_threads'] for p in threadpool_info()]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(counts) >= 3 and set(counts) == {1}, counts  # torch, numpy's and SciPy's BLAS, OpenMP
