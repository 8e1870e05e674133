"""Shared by the method benchmarks: a method's schema defaults, ``--set`` overrides, timing.

    from method_settings import method_defaults, apply_overrides, settings_parser, timed
"""

from __future__ import annotations

import argparse
import time

import yaml
from cnninterp.config import method_defaults  # noqa: F401  (the benchmarks import it from here)


def apply_overrides(cfg: dict, items: list[str]) -> dict:
    """Apply ``section.key=value`` (or a top-level ``key=value``, e.g. ``seed=1``) overrides, values
    read as YAML, to ``cfg`` in place; return it."""
    for item in items:
        key, value = item.split("=", 1)
        if "." in key:
            section, name = key.split(".", 1)
            cfg[section][name] = yaml.safe_load(value)
        else:
            cfg[key] = yaml.safe_load(value)
    return cfg


def settings_parser(doc: str, example: str = "train.epochs=40") -> argparse.ArgumentParser:
    """An argument parser described by the first line of ``doc`` with the ``--set`` option every
    method benchmark takes (``section.key=value`` or ``seed=1``, values read as YAML, repeatable;
    ``example`` shows one in the help)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], help=f"override of a default, e.g. {example} (YAML value)")
    return parser


def timed(fn, *args, **kwargs):
    """(result, wall s, CPU s) of ``fn(*args, **kwargs)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu
