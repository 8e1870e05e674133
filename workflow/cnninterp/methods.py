"""The methods beyond Network Dissection, and where each one plugs in.

A method ``<m>`` is one unit that can be read, switched off or removed on its own:

- ``workflow/cnninterp/<m>/`` its code, with ``cli.py`` (``register(subparsers)``) and
  ``report.py`` (``TITLE``, ``TEMPLATE``, ``available(results)``, ``render(ctx)``; its templates
  in ``<m>/templates/``),
- ``workflow/schemas/<m>.schema.yaml`` the schema of its config block ``<m>:`` (with ``enabled``),
- ``rules/<m>.smk`` its jobs, ending in ``results/eval/<m>/metrics.json``.

A method whose folder is absent is simply not offered (no CLI verb, no config key, no rules).
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

METHODS: tuple[str, ...] = ("icnn", "attention", "transform", "multiview")
PACKAGE_DIR = Path(__file__).resolve().parent
SCHEMA_DIR = PACKAGE_DIR.parent / "schemas"


def installed_methods() -> list[str]:
    """The names in METHODS whose package has its plug-in entry (``<m>/cli.py``), in METHODS order;
    a folder with only building blocks (no CLI yet) is importable but not part of the pipeline."""
    return [m for m in METHODS if (PACKAGE_DIR / m / "__init__.py").is_file() and (PACKAGE_DIR / m / "cli.py").is_file()]


def method_module(method: str, part: str):
    """Import and return ``cnninterp.<method>.<part>``, or None when that module does not exist."""
    name = f"cnninterp.{method}.{part}"
    if importlib.util.find_spec(f"cnninterp.{method}") is None or importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


def schema_path(method: str) -> Path:
    """The schema fragment of ``method``'s config block."""
    return SCHEMA_DIR / f"{method}.schema.yaml"


def metrics_path(method: str) -> str:
    """The method's metrics file, relative to the workflow: ``results/eval/<method>/metrics.json``."""
    return f"results/eval/{method}/metrics.json"
