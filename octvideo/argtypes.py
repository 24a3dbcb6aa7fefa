"""argparse types that the octvideo commands (``octvideo.cli``) and the benchmarks
(``octvideo.bench``, ``tools/bench.py``) share.

Each parses one option's text or raises ``argparse.ArgumentTypeError``, which the commands'
parser (``octvideo.cli.CommandParser``) prints as one line, ``octvideo CMD: error: argument --X:
'0': give 1 or more``, with exit status 2, as the benchmarks' (``octvideo.bench.cli``) does;
argparse's own parser prints its usage block first. ``is_whole`` is the test of a whole-number
value that the data section (``octvideo.data.config``), the run config and the data loaders
share. This module imports nothing of octvideo, nor torch, so any layer that parses options or
checks values may import it (``octvideo.ops``, below every layer, keeps its own ``is_whole``).
"""

from __future__ import annotations

import argparse
import numbers
import os
import re
import sys
import unicodedata
from collections.abc import Callable

# the numbers of the YAML 1.2 core schema, which octvideo.config reads config values with too:
# ASCII digits with no "_" separators (int() and float() also read "1_0" and other scripts'
# digits, and float() "inf" and "nan"); a whole number may also be 0o octal or 0x hexadecimal
WHOLE = re.compile(r"[+-]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""A decimal number as YAML 1.2 writes it (no ``inf`` or ``nan``), for ``re.fullmatch``."""


def is_whole(value: object) -> bool:
    """A whole number (any ``numbers.Integral``: numpy's too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# the bounds of every timeout a command takes (``predict``, ``data check`` and ``data prepare``
# ``--timeout``, ``sweep --run-timeout``), in seconds. The floor: starting a worker process and
# opening a file alone take a good part of a second on a busy machine, so a shorter timeout (a
# slip like ``1e-3``, or ``1`` meant as minutes) fails every video, each reported as hung, though
# each decodes; the ceiling: a day, past any one video's decode or one training run a sweep waits
# for.
MIN_TIMEOUT = 1.0
MAX_TIMEOUT = 86_400.0


def shown(text: str) -> str:
    """``text`` as a refusal quotes it: its repr, cut after 37 characters."""
    return repr(text) if len(text) <= 40 else f"{text[:37]!r}..."


# what ``str.splitlines`` breaks a line at: written as their escapes where a line must stay one
_LINE_BREAKS = {
    ord(c): c.encode("unicode_escape").decode("ascii")
    for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
}


def breaks_escaped(text: str) -> str:
    """``text`` with its line breaks written as escapes (``\\n``): an error or log line that
    quotes a value or path holding a newline stays one line, whichever layer worded it (the
    commands' own messages quote values with ``shown``)."""
    return text.translate(_LINE_BREAKS)


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a command's line names it: as it is, or whole as its repr where it holds a
    control character (a newline, a tab, an escape) or a line separator, so that the line stays
    one line that names it exactly. A file name's bytes that are not UTF-8 are left to the
    streams, which write them as escapes (``paths.TEXT_ERRORS``)."""
    text = os.fspath(path)
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text):
        return repr(text)
    return text


def check_timeout(option: str, text: str, seconds: float) -> float:
    """``seconds``, the value of timeout ``option`` given as ``text``, from ``MIN_TIMEOUT`` to
    ``MAX_TIMEOUT`` (NaN refused too).

    Raises:
        ValueError: one line naming ``option``, ``text`` and the bound.
    """
    if not seconds >= MIN_TIMEOUT:
        raise ValueError(
            f"{option} {shown(text)}: give at least {MIN_TIMEOUT:g} second (a shorter one stops "
            "work that would succeed)"
        )
    if seconds > MAX_TIMEOUT:
        raise ValueError(f"{option} {shown(text)}: give at most {MAX_TIMEOUT:g} seconds (a day)")
    return seconds


def _longest() -> int:
    """The most decimal digits int() reads (Python 3.11's guard against quadratic time: 4300 by
    default; 0 is no limit)."""
    return sys.get_int_max_str_digits() or 1_000_000


def _whole(text: str, low: int | None = None, high: int | None = None) -> int:
    digits = text.strip()
    if not WHOLE.fullmatch(digits):
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a whole number")
    base = {"0o": 8, "0x": 16}.get(digits[:2], 10)
    body = digits[2:] if base != 10 else digits
    if len(body.lstrip("+-")) <= _longest():
        value = int(body, base)
    elif low is not None and high is not None:  # past int()'s limit only the sign matters
        value = low - 1 if digits[0] == "-" else high + 1
    else:
        raise argparse.ArgumentTypeError(
            f"{shown(text)} has more than {_longest()} digits; give a shorter number"
        )
    if low is not None and value < low:
        raise argparse.ArgumentTypeError(f"{shown(text)}: give {low} or more")
    if high is not None and value > high:
        raise argparse.ArgumentTypeError(f"{shown(text)}: give at most {high}")
    return value


def _decimal(text: str, what: str) -> float:
    digits = text.strip()
    if not DECIMAL.fullmatch(digits):
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a {what}")
    value = float(digits)
    if value in (float("inf"), float("-inf")):  # 1e400
        raise argparse.ArgumentTypeError(
            f"{shown(text)} is past the largest number a float holds (about 1.8e308)"
        )
    return value


def whole(text: str) -> int:
    """argparse type: a whole number (``12``, ``-3``, ``0x1f``, ``0o17``), of any sign and up to
    int()'s digits; the command checks its range, in one line naming the option and the bound
    (``data synth --frames``, ``sweep --seeds``)."""
    return _whole(text)


def bounded_int(high: int, low: int = 1) -> Callable[[str], int]:
    """argparse type: a whole number from ``low`` (0 or 1) to ``high`` (``predict --topk``)."""

    def parse(text: str) -> int:
        return _whole(text, low, high)

    return parse


def number(text: str) -> float:
    """argparse type: a decimal number; the command checks its range (``import --alpha``,
    ``data check --timeout``)."""
    return _decimal(text, "number")
