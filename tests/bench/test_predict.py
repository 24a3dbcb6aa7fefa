"""``tools/bench.py predict`` (octvideo.bench.predict): the clips it makes, its interleaved
rounds, and its table and ratios on injected timings (never on measured speed), and one tiny run
end to end for its structure."""

from __future__ import annotations

import argparse

import pytest

import octvideo.bench.predict as predict
from octvideo.bench.cli import main, parse_args
from octvideo.data.decoding import probe
from tests.bench.test_cli import run_into_a_full_stdout


@pytest.fixture(scope="module")
def tool():
    return predict


def test_clips_are_h264_at_the_asked_size_rate_and_length(tool, tmp_path):
    (path,) = tool.make_clips(tmp_path, 1, seconds=1.0, fps=30, short_side=64)
    info = probe(path)
    assert (info.num_frames, info.fps, info.width, info.height) == (30, 30.0, 112, 64)
    import av

    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    before = path.stat().st_mtime_ns
    assert tool.make_clips(tmp_path, 1, seconds=1.0, fps=30, short_side=64) == [path]
    assert path.stat().st_mtime_ns == before  # kept, not made again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip_000.mp4"]  # no .part left


def test_rounds_rotate_the_order_of_the_variants(tool):
    seen: list[str] = []

    def variant(name: str):
        def run():
            seen.append(name)
            return tool.Timing(1.0)

        return run

    times = tool.interleaved({n: variant(n) for n in ("model", "workers 0", "workers 2")}, 4)
    assert seen == [
        *("model", "workers 0", "workers 2"),
        *("workers 0", "workers 2", "model"),
        *("workers 2", "model", "workers 0"),
        *("model", "workers 0", "workers 2"),
    ]
    assert all(len(runs) == 4 for runs in times.values())


def _args(**changes) -> argparse.Namespace:
    base = dict(
        model="i3d_r50",
        alpha=0.1,
        frames=8,
        size=224,
        short_side=320,
        seconds=10.0,
        fps=30,
        threads=2,
        nice=0,
        batch_size=8,
        rounds=3,
        workers=[2],
    )
    return argparse.Namespace(**{**base, **changes})


def test_report_gives_medians_and_ratios_of_the_injected_times(tool):
    T = tool.Timing
    times = {
        "model": [T(10.0, 10.0), T(12.0, 12.0), T(11.0, 11.0)],
        "workers 0": [T(16.0, 11.0, 5.0), T(15.0, 10.0, 5.0), T(18.0, 12.0, 6.0)],
        "workers 2": [T(11.0, 10.5, 0.2), T(13.0, 12.5, 0.4), T(12.0, 11.0, 0.3)],
    }
    text = tool.report(_args(), times, clips=40, device="cpu")
    rows = {
        cells[0]: cells[1:]
        for cells in (
            [c.strip() for c in line.strip("|").split("|")]
            for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| variant")
        )
    }
    # medians: model 11, workers 0: 16, workers 2: 12; 40 clips
    assert rows["model"] == ["11.00", "275", "1.000", "11.00", ""]
    assert rows["workers 0"] == ["16.00", "400", "1.455", "11.00", "5.00"]
    assert rows["workers 2"] == ["12.00", "300", "1.091", "11.00", "0.30"]
    lines = text.splitlines()
    over_model = next(ln for ln in lines if ln.startswith("workers 2 / model: "))
    assert over_model == (
        "workers 2 / model: 1.091 (target <= 1.15, met); each round: median 1.091, range "
        "1.083-1.100 over 3 rounds"
    )
    speedup = next(ln for ln in lines if ln.startswith("workers 0 / workers 2: "))
    assert speedup == (
        "workers 0 / workers 2: 1.333 (target >= 1.3, met); each round: median 1.455, range "
        "1.154-1.500 over 3 rounds"
    )
    assert text.startswith(
        "i3d_r50 alpha 0.1, 8x224x224 centre clips, 40 clips (320-pixel H.264, 10 s at 30 fps), "
        "cpu, 2 model threads, workers at nice 0, batch 8, 3 interleaved rounds (medians)"
    )


def test_a_target_missed_is_said(tool):
    T = tool.Timing
    times = {"model": [T(10.0)], "workers 0": [T(12.0)], "workers 2": [T(12.0)]}
    text = tool.report(_args(rounds=1), times, clips=4, device="cpu")
    assert "workers 2 / model: 1.200 (target <= 1.15, NOT met)" in text
    assert "workers 0 / workers 2: 1.000 (target >= 1.3, NOT met)" in text


def test_workers_zero_is_always_timed_and_options_out_of_bounds_are_one_line(capsys):
    assert parse_args(["predict", "--workers", "0", "2", "1", "2"]).workers == [1, 2]
    for argv, message in (
        (["--workers", "0"], "--workers: give at least one count above 0 (0 is always timed)"),
        (["--nice", "20"], "argument --nice: '20': give at most 19"),
        (["--seconds", "nan"], "argument --seconds: 'nan' is not a number"),
        (["--seconds", "1_0"], "argument --seconds: '1_0' is not a number"),  # float(): 10
        (["--seconds", "0"], "--seconds 0: give a length above 0, at most 3600"),
        (["--alpha", "0.0_1"], "argument --alpha: '0.0_1' is not a number"),
        (["--seconds", "3601"], "--seconds 3601: give a length above 0, at most 3600"),
        (["--workers", "65"], "argument --workers: '65': give at most 64"),
        (
            ["--folder", __file__],
            f"--folder {__file__}: {__file__} is a file, not a folder; choose another path",
        ),
    ):
        with pytest.raises(SystemExit) as exit_info:
            parse_args(["predict", *argv])
        assert exit_info.value.code == 2
        assert capsys.readouterr().err == f"tools/bench.py predict: error: {message}\n"


def _tiny_argv(tmp_path) -> list[str]:
    """A tiny run's options: two one-second clips, one round, workers 0 and 1."""
    return (
        f"--clips 2 --seconds 1 --short-side 64 --model c2d_r18 --classes 3 --frames 4 --size 32 "
        f"--batch-size 2 --rounds 1 --workers 1 --threads 1 --folder {tmp_path / 'clips'}"
    ).split()


def test_tiny_run_end_to_end(tmp_path, capsys):
    out = tmp_path / "bench.md"
    argv = _tiny_argv(tmp_path)
    assert main(["predict", *argv, "--append", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.split("\n\nthe same runs")[0].strip() in out.read_text()
    names = [ln.split("|")[1].strip() for ln in printed.splitlines() if ln.startswith("| ")]
    assert names == ["variant", "---", "model", "workers 0", "workers 1"]
    assert any(ln.startswith("workers 1 / model: ") for ln in printed.splitlines())
    assert (
        f"octvideo predict --ckpt CKPT {tmp_path / 'clips'} --workers 1 --batch-size 2" in printed
    )


def test_a_full_stdout_loses_only_the_lines_never_the_table_appended(tmp_path, monkeypatch, capsys):
    # ``predict --append F > /dev/full``: the table was printed first, and the failed print
    # stopped the run before F had it; now the view alone stops and the run ends with status 0
    record = tmp_path / "bench.md"
    run_into_a_full_stdout(
        monkeypatch, capsys, ["predict", *_tiny_argv(tmp_path), "--append", str(record)]
    )
    assert "| workers 1 |" in record.read_text()
