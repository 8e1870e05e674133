"""The report in a real browser: headless Chromium loads every image without console errors.

Needs Debian's ``chromium`` and ``chromium-driver`` (/usr/bin/chromium, /usr/bin/chromedriver).
Skipped where either is not installed, except on CI (env CI set), where that is a failure.
The paths can be moved with CNNINTERP_CHROMIUM / CNNINTERP_CHROMEDRIVER.
"""

from __future__ import annotations

import os

import pytest

import report_fixture as rf
from services import require

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    if not rf.CHROMIUM.is_file():
        require(f"{rf.CHROMIUM} is missing: apt-get install chromium chromium-driver")
    if not rf.CHROMEDRIVER.is_file():
        require(f"{rf.CHROMIUM} is installed but {rf.CHROMEDRIVER} is not: apt-get install chromium-driver")
    driver = rf.chrome_driver(tmp_path_factory.mktemp("chromium_profile"))
    try:
        yield driver
    finally:
        driver.quit()


def test_report_renders_in_chromium(driver, tmp_path_factory, tmp_path):
    index = rf.shared_report(tmp_path_factory)
    driver.get(index.resolve().as_uri())
    rf.wait_until_loaded(driver)
    images = driver.execute_script("return Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth, i.naturalHeight])")
    assert len(images) > 10
    broken = [src for src, width, height in images if not width or not height]
    assert broken == [], f"images that did not load: {broken}"
    sections = driver.execute_script("return Array.from(document.querySelectorAll('main > section')).map(s => s.id)")
    assert sections == ["overview", "dissection", "provenance"]
    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == [], f"browser console errors: {severe}"
    shot = tmp_path / "report.png"
    rf.full_page_screenshot(driver, shot)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
