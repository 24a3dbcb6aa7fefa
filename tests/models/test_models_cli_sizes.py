"""``octvideo models`` with views the networks cannot take: one line and exit status 2 when no
listed model can, "not applicable" rows with the network's reason when some can, and non-positive
sizes refused by the argument parser, never a traceback."""

from __future__ import annotations

import pytest

from octvideo.cli import main
from octvideo.cli.models import format_table, models_table


@pytest.mark.parametrize(
    "args",
    [
        ["--frames", "1", "--size", "32", "--filter", "i3d_r18"],
        ["--octave", "2,2,2", "--frames", "1", "--filter", "i3d_r18"],
        ["--frames", "1", "--size", "32", "--filter", "c2d_r1*"],
    ],
)
def test_a_view_no_listed_model_can_take_is_one_line(args, capsys):
    assert main(["models", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("octvideo models: error: ")
    assert "cannot take views of 1x" in line and "Output size is too small" in line


@pytest.mark.parametrize(
    ("option", "value"), [("--frames", "0"), ("--size", "0"), ("--size", "-5")]
)
def test_non_positive_frames_or_size_are_refused_by_the_parser(option, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["models", option, value, "--filter", "c2d_r18"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {value!r}: give 1 or more" in err
    assert "Traceback" not in err


def test_models_table_refuses_non_positive_sizes():
    with pytest.raises(ValueError, match="--frames and --size must be >= 1, got 0 and 32"):
        models_table(frames=0, size=32, pattern="c2d_r18")


def test_models_that_cannot_take_the_view_are_listed_as_not_applicable(capsys):
    # one frame: C2D's temporal pooling after res2 needs two; Slow and SlowFast keep time
    rows = models_table(frames=1, size=32, pattern="[cs]*_r50")
    by_name = {r["model"]: r for r in rows}
    assert list(by_name) == ["c2d_r50", "slow_r50", "slowfast_r50"]
    assert by_name["c2d_r50"]["gflops"] is None
    assert "Output size is too small" in by_name["c2d_r50"]["not_applicable"]
    for name in ("slow_r50", "slowfast_r50"):
        assert by_name[name]["not_applicable"] is None and by_name[name]["gflops"] > 0
    table = format_table(rows, 1, 32).splitlines()
    assert table[2].startswith("c2d_r50") and "not applicable: Given input size" in table[2]
    assert table[3].startswith("slow_r50") and "not applicable" not in table[3]
