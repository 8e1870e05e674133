"""argparse types shared by the command lines."""

from __future__ import annotations

import argparse
import math


def finite_float(text: str) -> float:
    """An option's text -> float; NaN and ±inf are refused (argparse then names the option and exits 2).

    Why: range checks are comparisons, and every comparison with NaN is false, so a NaN passed every
    ``< 0`` / ``> 1`` check and reached the data (NaN angles in shards, a NaN azimuth in a split).
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def json_object(text: str) -> dict:
    """An option's JSON text -> dict; anything else is refused (argparse then names the option and exits 2)."""
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text[:80]!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object {{...}}, got {type(value).__name__}: {text[:80]!r}")
    return value


def non_negative_int(text: str) -> int:
    """An option's text -> int >= 0; anything else is refused (argparse then names the option and
    exits 2), e.g. ``--threads -1``, which torch refused with a traceback."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value
