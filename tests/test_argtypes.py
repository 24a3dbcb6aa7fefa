"""octvideo.argtypes: the argparse types read numbers as YAML 1.2 and a reader write them, and
refuse other text, or out-of-range text, in one line, through argparse; ``is_whole`` is the one
whole-number test of the layers above ops, and needs no torch."""

from __future__ import annotations

import argparse
import re
from fractions import Fraction

import numpy as np
import pytest

from octvideo.argtypes import (
    bounded_int,
    check_timeout,
    is_whole,
    number,
    shown_path,
    whole,
)
from tests.scripts import run_code


@pytest.mark.parametrize(
    ("parse", "text", "value"),
    [
        (whole, "0", 0),
        (whole, "-3", -3),
        (whole, "+12", 12),
        (whole, "9" * 30, int("9" * 30)),  # exact: the command names its own bound
        (whole, "9" * 4000, int("9" * 4000)),  # up to int()'s own limit, 4300 digits
        (whole, "-" + "9" * 4000, -int("9" * 4000)),
        (whole, "0x1f", 31),  # YAML 1.2's core schema, as a config reads it
        (whole, "0o17", 15),
        (whole, "0x1F", 31),
        (bounded_int(100), "0x10", 16),
        (bounded_int(5), "5", 5),
        (bounded_int(5, low=0), "0", 0),
        (bounded_int(5), " 3 ", 3),
        (number, "0.5", 0.5),
        (number, "-0.25", -0.25),
        (number, ".5", 0.5),
        (number, "1e-3", 0.001),
        (number, "300", 300.0),
    ],
)
def test_text_in_range_is_read_as_its_value(parse, text, value):
    assert parse(text) == value


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (whole, "two", "'two' is not a whole number"),
        (whole, "1.5", "'1.5' is not a whole number"),
        (whole, "1_0", "'1_0' is not a whole number"),  # int() reads 10
        (whole, "\u0663", "'\u0663' is not a whole number"),  # int() reads the Arabic-Indic 3
        (whole, "9" * 5000, "has more than 4300 digits; give a shorter number"),
        (whole, "0x", "'0x' is not a whole number"),
        (whole, "0o8", "'0o8' is not a whole number"),
        (whole, "-0x1", "'-0x1' is not a whole number"),  # YAML 1.2: 0x and 0o take no sign
        (whole, "0X1", "'0X1' is not a whole number"),
        (whole, "0b1", "'0b1' is not a whole number"),
        (bounded_int(5), "0x6", "'0x6': give at most 5"),
        (bounded_int(5), "6", "'6': give at most 5"),
        (bounded_int(5), "0", "'0': give 1 or more"),
        (bounded_int(5), "9" * 5000, "give at most 5"),  # int() refuses past 4300 digits
        (bounded_int(5, low=0), "-" + "9" * 5000, "give 0 or more"),
        (bounded_int(5), "1e3", "'1e3' is not a whole number"),
        (number, "a tenth", "'a tenth' is not a number"),
        (number, "nan", "'nan' is not a number"),  # float() reads these three
        (number, "inf", "'inf' is not a number"),
        (number, "0_0.5", "'0_0.5' is not a number"),
        (number, "0x10", "'0x10' is not a number"),  # a decimal: YAML 1.2's float form
        (number, "1e400", "'1e400' is past the largest number a float holds"),  # float(): inf
        (number, "-1e400", "'-1e400' is past the largest number a float holds"),
        (number, "x" * 100, "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... is not a number"),
    ],
)
def test_text_out_of_range_is_refused_naming_the_text(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
        parse(text)


def test_a_refused_value_is_one_argparse_error_naming_the_option(capsys):
    parser = argparse.ArgumentParser(prog="octvideo predict")
    parser.add_argument("--topk", type=bounded_int(10))
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--topk", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "octvideo predict: error: argument --topk: '0': give 1 or more"


WHOLE_OR_NOT = [
    (3, True),
    (-1, True),
    (0, True),
    (10**30, True),
    (np.int64(5), True),  # numpy's whole numbers are whole
    (np.uint8(2), True),
    (True, False),  # a bool is no number
    (False, False),
    (np.bool_(True), False),
    (3.0, False),
    (np.float32(3), False),
    (Fraction(3, 1), False),
    ("3", False),
    (None, False),
]


@pytest.mark.parametrize(("value", "whole_"), WHOLE_OR_NOT)
def test_is_whole_takes_any_integral_number_but_a_bool(value, whole_):
    assert is_whole(value) is whole_


@pytest.mark.parametrize(("value", "whole_"), WHOLE_OR_NOT)
def test_the_config_and_ops_agree_with_is_whole(value, whole_):
    from octvideo.data.config import is_kind
    from octvideo.ops.pair import is_whole as ops_is_whole  # ops' copy: it imports no octvideo

    assert is_kind(value, int) is whole_
    assert ops_is_whole(value) is whole_


def test_argtypes_imports_without_torch():
    done = run_code("import sys, octvideo.argtypes; print('torch' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]


@pytest.mark.parametrize(
    ("seconds", "message"),
    [
        (1e-300, "--timeout '1e-300': give at least 1 second (a shorter one stops work "),
        (0.999, "--timeout '0.999': give at least 1 second"),
        (0.0, "--timeout '0': give at least 1 second"),
        (-5.0, "--timeout '-5': give at least 1 second"),
        (float("nan"), "--timeout 'nan': give at least 1 second"),
        (86_400.5, "--timeout '86400.5': give at most 86400 seconds (a day)"),
    ],
)
def test_every_timeout_has_one_floor_and_ceiling(seconds, message):
    # below a second every video that decodes was reported as hung, "timed out after 1e-300 s"
    with pytest.raises(ValueError) as refused:
        check_timeout("--timeout", f"{seconds:g}", seconds)
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize("seconds", [1.0, 60.0, 86_400.0])
def test_a_timeout_within_the_bounds_is_taken_as_it_is(seconds):
    assert check_timeout("--run-timeout", "x", seconds) == seconds


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("runs/a b/ü.ckpt", "runs/a b/ü.ckpt"),  # printable: as it is, however long
        ("x" * 300, "x" * 300),
        ("s\nyn", "'s\\nyn'"),  # a line break would split a one-line message
        ("a\tb\x1b[2J", "'a\\tb\\x1b[2J'"),
        ("p\u2028q", "'p\\u2028q'"),
    ],
)
def test_a_path_is_named_whole_and_quoted_only_where_it_would_break_a_line(path, named):
    assert shown_path(path) == named
