"""argparse types that the octvideo commands (``octvideo.cli``) and the benchmarks
(``octvideo.bench``, ``tools/bench.py``) share.

Each parses one option's text or raises ``argparse.ArgumentTypeError``, which argparse prints as
one line, ``octvideo CMD: error: argument --X: ...``, with exit status 2. This module imports
nothing of octvideo, so any layer that parses options may import it.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable


def _at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{text!r}: give {low} or more")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number of 1 or more (``--workers``, ``--seeds``, ``--frames``)."""
    return _at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: a whole number of 0 or more (``sweep --time-repeats``)."""
    return _at_least(text, 0)


def bounded_int(high: int, low: int = 1) -> Callable[[str], int]:
    """argparse type: a whole number from ``low`` (0 or 1) to ``high`` (``predict --topk``)."""

    def parse(text: str) -> int:
        digits = text.strip()
        if not re.fullmatch(r"[+-]?\d+", digits):
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
        # past 12 digits only the sign matters (and int() refuses past 4300)
        value = int(digits) if len(digits) <= 12 else (low - 1 if digits[0] == "-" else high + 1)
        if value < low:
            raise argparse.ArgumentTypeError(f"{text!r}: give {low} or more")
        if value > high:
            raise argparse.ArgumentTypeError(f"{text!r}: give at most {high}")
        return value

    return parse


def seconds(text: str) -> float:
    """argparse type: a finite number of seconds above 0 (``sweep --run-timeout``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0")
    return value


def number(text: str) -> float:
    """argparse type: any number ``float`` reads (``import --alpha``)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
