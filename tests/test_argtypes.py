"""octvideo.argtypes: the argparse types refuse out-of-range text in one line, through argparse."""

from __future__ import annotations

import argparse
import re

import pytest

from octvideo.argtypes import bounded_int, non_negative_int, number, positive_int, seconds


@pytest.mark.parametrize(
    ("parse", "text", "value"),
    [
        (positive_int, "1", 1),
        (positive_int, "256", 256),
        (non_negative_int, "0", 0),
        (bounded_int(5), "5", 5),
        (bounded_int(5, low=0), "0", 0),
        (bounded_int(5), " 3 ", 3),
        (seconds, "0.5", 0.5),
        (number, "-0.25", -0.25),
    ],
)
def test_text_in_range_is_read_as_its_value(parse, text, value):
    assert parse(text) == value


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (positive_int, "0", "'0': give 1 or more"),
        (positive_int, "two", "'two' is not a whole number"),
        (non_negative_int, "-1", "'-1': give 0 or more"),
        (non_negative_int, "1.5", "'1.5' is not a whole number"),
        (bounded_int(5), "6", "'6': give at most 5"),
        (bounded_int(5), "0", "'0': give 1 or more"),
        (bounded_int(5), "9" * 5000, "give at most 5"),  # int() refuses past 4300 digits
        (bounded_int(5, low=0), "-" + "9" * 5000, "give 0 or more"),
        (bounded_int(5), "1e3", "'1e3' is not a whole number"),
        (seconds, "0", "'0': give a number of seconds above 0"),
        (seconds, "inf", "'inf': give a number of seconds above 0"),
        (seconds, "nan", "'nan': give a number of seconds above 0"),
        (seconds, "soon", "'soon' is not a number of seconds"),
        (number, "a tenth", "'a tenth' is not a number"),
    ],
)
def test_text_out_of_range_is_refused_naming_the_text(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
        parse(text)


def test_a_refused_value_is_one_argparse_error_naming_the_option(capsys):
    parser = argparse.ArgumentParser(prog="octvideo data check")
    parser.add_argument("--workers", type=positive_int)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--workers", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "octvideo data check: error: argument --workers: '0': give 1 or more"
