"""``octvideo models``: the table comes from an in-process function; the view is bounded as
``octvideo train`` bounds a clip (--frames, --size, their product and --octave are refused in one
line naming the option and the bound, before any model runs a view); views the networks cannot
take are one line and exit status 2 when no listed model can, and "not applicable" rows with the
network's reason when some can."""

from __future__ import annotations

import pytest

from octvideo.cli import build_parser, main
from octvideo.cli.models import format_table, models_table
from octvideo.config import LIMITS, MAX_CLIP_PIXELS


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["--size", "100000"],
            f"--size 100000 is over the limit of {LIMITS['data.test_crop_size'][0]}",
        ),
        (
            ["--frames", "100000"],
            f"--frames 100000 is over the limit of {LIMITS['data.num_frames'][0]}",
        ),
        (["--frames", "256", "--size", "1024"], f"over the limit of {MAX_CLIP_PIXELS:,}"),
        (  # the parser refused it: "give at most 30 digits"
            ["--frames", "9" * 40],
            f"--frames {'9' * 40} is over the limit of {LIMITS['data.num_frames'][0]}",
        ),
    ],
)
def test_a_view_over_the_bounds_is_one_line(args, needle, capsys, monkeypatch):
    def no_model_may_run(*args, **kwargs):
        raise AssertionError("a model was built for a refused view")

    monkeypatch.setattr("octvideo.cli.models.cost_table", no_model_may_run)
    monkeypatch.setattr("octvideo.cli.models._not_applicable", no_model_may_run)
    assert main(["models", *args, "--filter", "c2d_r18"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("octvideo models: error: ") and needle in line


_OCTAVE = "give three factors T,H,W, each 1 or 2, e.g. 1,2,2"
_ALPHA = "give one value or four (res2,res3,res4,res5), each in [0, 1), e.g. 0.5"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--octave", "1,2,100"),
        ("--octave", "1,3,3"),
        ("--octave", "inf"),  # int() refused it as "invalid _octave value"
        ("--octave", "2,2,\u0662"),  # int() reads the Arabic-Indic 2
        ("--octave", "1,2,2_0"),
        ("--alpha", "1"),
        ("--alpha", "0.1,0.2"),
        ("--alpha", "0.0_1"),  # float() reads 0.01
        ("--alpha", "0x10"),  # float() refused it as "invalid _alpha value"
        ("--alpha", "nan"),
    ],
)
def test_an_octave_or_alpha_the_models_do_not_take_is_refused_by_the_parser(capsys, option, value):
    with pytest.raises(SystemExit) as exit_:
        main(["models", option, value, "--filter", "c2d_r18"])
    assert exit_.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    message = _OCTAVE if option == "--octave" else _ALPHA
    assert line == f"octvideo models: error: argument {option}: {value!r}: {message}"


@pytest.mark.parametrize(
    ("args", "alpha", "octave"),
    [
        (["--alpha", "0.25", "--octave", "2,2,2"], 0.25, (2, 2, 2)),
        (["--alpha", ".5,0,0,0.25", "--octave", "0x1,2,2"], (0.5, 0.0, 0.0, 0.25), (1, 2, 2)),
    ],
)
def test_alpha_and_octave_are_read_as_the_config_reads_numbers(args, alpha, octave):
    namespace = build_parser().parse_args(["models", *args])
    assert (namespace.alpha, namespace.octave) == (alpha, octave)


def test_a_slowfast_view_whose_fast_pathway_is_over_the_bound_is_not_applicable():
    # 64 Slow frames are 256 Fast ones at slowfast_alpha 4: 256 x 512^2 > MAX_CLIP_PIXELS
    with pytest.raises(ValueError, match="Fast pathway's 256 frames .* use fewer frames"):
        models_table(frames=64, size=512, pattern="slowfast_r50")


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
    assert "cannot take views of 1x" in line and "clips of 2 or more frames" in line


@pytest.mark.parametrize(
    ("option", "value"), [("--frames", "0"), ("--size", "0"), ("--size", "-5"), ("--size", "6_4")]
)
def test_frames_or_size_other_than_whole_numbers_from_1_are_refused_in_one_line(
    option, value, capsys
):
    try:
        code = main(["models", option, value, "--filter", "c2d_r18"])
    except SystemExit as stop:  # the parser's refusal of text that is not a whole number
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("octvideo models: error: ")
    assert "must be >= 1" in last or f"{value!r} is not a whole number" in last
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
    assert "clips of 2 or more frames" in by_name["c2d_r50"]["not_applicable"]
    for name in ("slow_r50", "slowfast_r50"):
        assert by_name[name]["not_applicable"] is None and by_name[name]["gflops"] > 0
    table = format_table(rows, 1, 32).splitlines()
    assert table[2].startswith("c2d_r50") and "not applicable: ResNet3D-50 takes" in table[2]
    assert table[3].startswith("slow_r50") and "not applicable" not in table[3]


def test_models_table_rows() -> None:
    rows = models_table(frames=4, size=64, alpha=0.5, pattern="c2d_r18")
    assert [r["model"] for r in rows] == ["c2d_r18"]
    vanilla = models_table(frames=4, size=64, alpha=0.0, pattern="c2d_r18")[0]
    assert rows[0]["params_m"] == vanilla["params_m"]
    assert 0 < rows[0]["gflops"] < vanilla["gflops"]
    assert rows[0]["attention_gflops"] == 0


def test_models_table_counts_attention() -> None:
    (row,) = models_table(frames=4, size=64, alpha=0.1, pattern="i3d_nl_r50")
    assert row["attention_gflops"] > 0


def test_cli_prints_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--frames", "4", "--size", "64", "--filter", "slowfast_r50"]) == 0
    out = capsys.readouterr().out
    assert "slowfast_r50" in out and "GFLOPs" in out


def test_cli_unknown_filter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--filter", "nothing*"]) == 2
    assert "no model matches" in capsys.readouterr().err
