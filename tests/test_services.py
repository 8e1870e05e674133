"""A newcomer's `make test`: a missing browser or cluster skips (with the reason) outside CI and
fails under CI. Runs the service tests through pytest itself, each service made missing in turn."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT

MISSING = {
    "chromedriver": ("tests/test_report_browser.py", {"CNNINTERP_CHROMIUM": sys.executable, "CNNINTERP_CHROMEDRIVER": "/nonexistent/chromedriver"}, "is installed but /nonexistent/chromedriver is not"),
    "chromium": ("tests/test_report_browser.py", {"CNNINTERP_CHROMIUM": "/nonexistent/chromium"}, "/nonexistent/chromium is missing"),
    "slurm": ("tests/test_slurm.py", {"CNNINTERP_SINFO": "/nonexistent/sinfo"}, "no SLURM here"),
}


def run_pytest(path: str, extra_env: dict, ci: str | None):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(extra_env)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", path], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("service", sorted(MISSING))
def test_missing_service_skips_outside_ci_and_fails_under_ci(service):
    path, extra, reason = MISSING[service]
    outside = run_pytest(path, extra, None)
    assert outside.returncode == 0, outside.stdout[-2000:]
    assert "skipped" in outside.stdout and reason in outside.stdout, outside.stdout[-2000:]
    under = run_pytest(path, extra, "true")
    assert under.returncode != 0 and reason in under.stdout, under.stdout[-2000:]
