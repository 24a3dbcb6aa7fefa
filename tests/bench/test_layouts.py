"""``tools/bench.py layouts`` (octvideo.bench.layouts): each case runs in its layout, its report
on injected times, and one tiny run end to end."""

from __future__ import annotations

import pytest

import octvideo.bench.layouts as tool
from octvideo.bench.cli import main, parse_args
from octvideo.models import create_model
from octvideo.ops import is_channels_last
from tests.bench.test_cli import run_into_a_full_stdout


def test_case_puts_weights_and_clips_in_its_layout() -> None:
    args = parse_args(["layouts", "--model", "i3d_r18", "--frames", "4", "--size", "32"])
    model = create_model("i3d_r18", alpha=0.5, num_classes=400, width=4)
    stem = next(p for p in model.parameters() if p.dim() == 5)
    for name, layout in tool.LAYOUTS.items():
        case = tool.step_timer(model, args, layout)
        want = name == "channels-last"
        assert is_channels_last(stem) is want
        assert is_channels_last(case.infer_clip) is want
        assert is_channels_last(case.train_clip) is want
        assert case.infer_clip.shape == (1, 3, 4, 32, 32) and case.labels.shape == (2,)


def test_tiny_run_reports_both_layouts_and_ratios(capsys, tmp_path) -> None:
    out = tmp_path / "bench.md"
    argv = "--model i3d_r18 --alphas 0.5 0 --frames 4 --size 32 --repeats 2 --threads 2"
    assert main(["layouts", *argv.split(), "--append", str(out)]) == 0
    printed = capsys.readouterr().out
    text = out.read_text()
    assert text.startswith(f"\n`python tools/bench.py layouts {argv} --append {out}`")
    assert printed.strip() in text and "cpu float32, threads 2" in printed
    rows = [ln for ln in printed.splitlines() if ln.startswith("| 0")]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in rows]
    assert [(c[0], c[1]) for c in cells] == [
        ("0.5", "contiguous"),
        ("0.5", "channels-last"),
        ("0.0", "contiguous"),
        ("0.0", "channels-last"),
    ]
    for contiguous, last in (cells[0:2], cells[2:4]):
        # measured figures are numbers and only channels-last rows carry ratios; their sizes are
        # the machine's, so the arithmetic is checked on injected times below
        assert all(float(c) >= 0 for c in (*contiguous[2:4], *last[2:6]))
        assert contiguous[4:] == ["", ""]
    for alpha in ("0.5", "0.0"):  # each round's own ratio, per alpha and kind
        for kind in ("inference", "training step"):
            prefix = f"alpha {alpha}, channels-last / contiguous, {kind}, per round: median "
            line = next(ln for ln in printed.splitlines() if ln.startswith(prefix))
            assert line.endswith("over 2 rounds.")


def test_interleaved_rounds_alternate_their_order(monkeypatch) -> None:
    """Every case once a round, in order on even rounds and reversed on odd ones, inference
    rounds before training steps; the rows give each round's time in ms."""
    seen: list[tuple[str, int]] = []
    made: list[object] = []

    class Timer:  # injected: records its calls instead of running a model
        def __init__(self, model, args, layout) -> None:
            self.index = len(made)
            made.append(layout)

        def infer(self) -> None:
            seen.append(("infer", self.index))

        def train_step(self) -> None:
            seen.append(("train", self.index))

    clock = iter(range(100))
    monkeypatch.setattr(tool, "step_timer", Timer)
    monkeypatch.setattr(tool, "time_interleaved", _with_clock(tool.time_interleaved, clock))
    args = parse_args(["layouts", "--model", "c2d_r18", "--alphas", "0.5", "0", "--repeats", "3"])
    rows = tool.measure(args)
    warmup = [(kind, k) for k in range(4) for kind in ("train", "infer")]
    rounds = [[0, 1, 2, 3], [3, 2, 1, 0], [0, 1, 2, 3]]
    timed = [(kind, k) for kind in ("infer", "train") for order in rounds for k in order]
    assert seen == warmup + timed
    assert made == [*tool.LAYOUTS.values()] * 2
    assert [(alpha, layout) for alpha, layout, _, _ in rows] == [
        (0.5, "contiguous"),
        (0.5, "channels-last"),
        (0.0, "contiguous"),
        (0.0, "channels-last"),
    ]
    # the clock advances by 1 s per reading: every call took 1 s, reported as 1000 ms
    assert all(i == [1000.0] * 3 and t == [1000.0] * 3 for _, _, i, t in rows)


def _with_clock(time_interleaved, clock):
    def timed(calls, **kwargs):
        return time_interleaved(calls, timer=lambda: float(next(clock)), **kwargs)

    return timed


def test_report_ratios_are_of_medians_on_injected_times() -> None:
    args = parse_args(["layouts", "--model", "i3d_r18", "--repeats", "3"])
    rows = [
        (0.5, "contiguous", [10.0, 30.0, 20.0], [100.0, 90.0, 80.0]),
        (0.5, "channels-last", [5.0, 12.0, 40.0], [40.0, 45.0, 50.0]),
    ]
    lines = tool.report(args, rows).splitlines()
    assert lines[4:6] == [
        "| 0.5 | contiguous | 20.0 | 90.0 | | |",
        "| 0.5 | channels-last | 12.0 | 45.0 | 0.600 | 0.500 |",
    ]
    # each round's own ratio: 0.5, 0.4, 2.0 and 0.4, 0.5, 0.625
    assert lines[7:] == [
        "alpha 0.5, channels-last / contiguous, inference, per round: median 0.500, range "
        "0.400-2.000 over 3 rounds.",
        "alpha 0.5, channels-last / contiguous, training step, per round: median 0.500, range "
        "0.400-0.625 over 3 rounds.",
    ]


@pytest.mark.parametrize("alpha", ["0.0_1", "nan", "\u0660.5"])  # float() reads each
def test_an_alpha_is_a_decimal_as_yaml_writes_it(alpha, capsys) -> None:
    assert parse_args(["layouts", "--alphas", ".5", "0"]).alphas == [0.5, 0.0]
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["layouts", "--alphas", "0.5", alpha])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == f"tools/bench.py layouts: error: argument --alphas: {alpha!r} is not a number"


def test_a_full_stdout_loses_only_the_lines_never_the_table_appended(
    tmp_path, monkeypatch, capsys
) -> None:
    # ``layouts --append F > /dev/full``: the table was printed first, and the failed print
    # stopped the run before F had it; now the view alone stops and the run ends with status 0
    record = tmp_path / "bench.md"
    monkeypatch.setattr(tool, "measure", lambda args: {})
    monkeypatch.setattr(tool, "report", lambda *args: "| table |")
    run_into_a_full_stdout(monkeypatch, capsys, ["layouts", "--append", str(record)])
    assert record.read_text().endswith("\n| table |\n")
