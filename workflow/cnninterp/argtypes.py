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
