"""Tests that need a service (a browser, a SLURM cluster): skipped with the reason outside CI,
failed under CI (env CI set to a true value), where .ci/run installs and starts them."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    """Whether the CI environment variable is set to a true value."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(problem: str | None) -> None:
    """Do nothing when ``problem`` is None; else skip the test with it, or fail under CI."""
    if problem is None:
        return
    if in_ci():
        pytest.fail(f"CI is set, so this service must be available: {problem}")
    pytest.skip(problem)
