"""A small results tree made by the real pipeline pieces, shared by the report tests.

``shared_results`` builds it once per pytest process (synthetic Broden -> shards -> dissection of
two randomly initialised resnet10s standing in for a trained model and its random control ->
config.json); ``shared_report`` renders its report once. Tests treat both as read-only and copy
them when they need to change something.
"""

from __future__ import annotations

import sys
import os
from pathlib import Path

try:
    import cnninterp  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

LAYERS = ["layer3", "layer4"]
TRAINED, CONTROL = "baseline", "baseline_random"
SEEDS = {TRAINED: 1, CONTROL: 2}
GALLERY_UNITS, GALLERY_IMAGES = 3, 3
CONFIG = {
    "broden": {"source": "synthetic", "synthetic": {"n_images": 40, "image_size": 64, "seed": 0}, "shard_size": 20},
    "train": {"baseline": {"arch": "resnet10", "task": "scene", "epochs": 1}},
    "dissect": {
        "defaults": {"layers": LAYERS, "batch_size": 20, "top_images": 4},
        "models": {
            TRAINED: {"source": "trained:baseline"},
            CONTROL: {"source": "trained:baseline", "random_init": True},
        },
    },
    "report": {"gallery_units": GALLERY_UNITS, "gallery_images": GALLERY_IMAGES},
}
CHROMIUM = Path(os.environ.get("CNNINTERP_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CNNINTERP_CHROMEDRIVER", "/usr/bin/chromedriver"))

_cache: dict[str, Path] = {}


def build_results(root: Path) -> Path:
    """Run the pipeline's pieces into ``root/results`` and return that folder."""
    from cnninterp.atomic import write_json
    from cnninterp.config import validate_config
    from cnninterp.data.broden_shards import convert_broden
    from cnninterp.data.synthetic_broden import generate_broden
    from cnninterp.dissect.pipeline import dissect
    from cnninterp.models.backbones import random_model

    config = validate_config(CONFIG, "report test config")
    results = root / "results"
    synth = config["broden"]["synthetic"]
    broden = root / "broden"
    generate_broden(broden, synth["n_images"], synth["image_size"], synth["seed"], synth["val_fraction"])
    shards = results / "shards" / "broden"
    convert_broden(broden, shards, config["broden"]["shard_size"], {"kind": "synthetic", **synth}, config["broden"])
    defaults = config["dissect"]["defaults"]
    for name, spec in config["dissect"]["models"].items():
        model = random_model("resnet10", seed=SEEDS[name])
        settings = {"model": name, "source": spec["source"]}
        dissect(
            model,
            LAYERS,
            shards,
            results / "dissect" / name,
            quantile=defaults["quantile"],
            iou_threshold=defaults["iou_threshold"],
            denominator=defaults["denominator"],
            batch_size=defaults["batch_size"],
            top_images=defaults["top_images"],
            device="cpu",
            settings=settings,
        )
    write_json(results / "config.json", config)
    return results


def shared_results(tmp_path_factory) -> Path:
    """The results tree, built on first use in this pytest process. Treat as read-only."""
    if "results" not in _cache:
        _cache["results"] = build_results(tmp_path_factory.mktemp("report_results"))
    return _cache["results"]


def shared_report(tmp_path_factory) -> Path:
    """``index.html`` of the report of ``shared_results`` (in ``results/report``). Treat as read-only."""
    if "report" not in _cache:
        from cnninterp.report.build import build_report

        results = shared_results(tmp_path_factory)
        _cache["report"] = build_report(results / "config.json", results, results / "report")
    return _cache["report"]


def chrome_driver(user_data_dir: Path, width: int = 1200, height: int = 900):
    """A headless Chromium driven by Debian's chromedriver (selenium-manager never runs)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        f"--user-data-dir={user_data_dir}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


def wait_until_loaded(driver, timeout: float = 30.0) -> None:
    """Wait for document.readyState 'complete' and every <img> to be complete."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script("return document.readyState") == "complete")
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script("return Array.from(document.images).every(i => i.complete)"))


def full_page_screenshot(driver, path: Path, width: int = 1200) -> None:
    """Resize the window to the page's full height and save a PNG screenshot of it."""
    height = driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)")
    driver.set_window_size(width, min(int(height) + 100, 16000))
    wait_until_loaded(driver)
    driver.save_screenshot(str(path))
