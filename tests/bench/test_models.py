"""``tools/bench.py models`` (octvideo.bench.models): its stage, operator and per-round tables on
injected figures, and tiny runs end to end for their structure (never for measured speed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import octvideo.bench.models as tool
from octvideo.bench.cli import main, parse_args
from tests.bench.test_cli import run_into_a_full_stdout


def _appended(tmp_path: Path, argv: str) -> str:
    """What one ``models`` run with ``argv`` appends to a fresh file."""
    out = tmp_path / "bench.md"
    assert main(["models", *argv.split(), "--append", str(out)]) == 0
    return out.read_text()


@pytest.mark.heavy
def test_tiny_run_with_pytorchvideo_baseline(tmp_path: Path) -> None:
    argv = "--model i3d_r50 --alpha 0.5 --frames 4 --size 64 --repeats 1 --warmup 0 --threads 2"
    text = _appended(tmp_path, argv + " --baseline pytorchvideo")
    assert "| inference ms |" in text and "PyTorchVideo hub.i3d_r50" in text
    assert "activations saved for backward" in text
    assert text.count("| minor page faults per training step |") == 2  # octave pair, baseline
    assert "malloc: freed memory kept" in text or "malloc: the environment's own" in text
    for label in ("octave / alpha 0", "alpha 0 / PyTorchVideo"):
        for kind in ("inference", "training step"):
            assert f"{label}, {kind}, per round: median " in text


def test_paired_lines_give_each_rounds_ratio() -> None:
    def measured(infer: list[float], train: list[float]):
        return tool.Measured(
            infer_ms=0.0,
            train_ms=0.0,
            train_faults=None,
            saved_mb=1.0,
            cuda_peak_mb=None,
            gflops=1.0,
            analytic_mem=1,
            infer_runs=infer,
            train_runs=train,
        )

    # the second round ran in a slow spell for the octave model only
    octm, van = measured([80, 100, 90], [50, 70, 60]), measured([100, 100, 120], [100, 100, 100])
    assert tool.paired_lines(octm, van, "oct / van", skip_train=False) == [
        "oct / van, inference, per round: median 0.800, range 0.750-1.000 over 3 rounds.",
        "oct / van, training step, per round: median 0.600, range 0.500-0.700 over 3 rounds.",
    ]
    assert len(tool.paired_lines(octm, van, "x", skip_train=True)) == 1


def test_stage_table_sums_to_the_model(tmp_path: Path) -> None:
    argv = "--model i3d_r18 --alpha 0.5 --frames 4 --size 64 --repeats 2 --warmup 0 --threads 2"
    text = _appended(tmp_path, argv + " --skip-train --stages")
    table = text[text.index("| stage (eager inference) |") :].splitlines()[2:]  # the body
    rows = {
        cells[0]: cells[1:]
        for cells in ([c.strip() for c in ln.strip("|").split("|")] for ln in table)
    }
    assert list(rows) == ["stem", "res2", "pool2", "res3", "res4", "res5", "head", "all stages"]
    gflops = next(ln for ln in text.splitlines() if ln.startswith("| GFLOPs / view |"))
    van, octm = (float(c) for c in gflops.strip("|").split("|")[1:3])
    # the stages' counts add up to the whole model's, and the shared stem costs the same in both
    assert float(rows["all stages"][4]) == pytest.approx(van, abs=0.02)
    assert float(rows["all stages"][5]) == pytest.approx(octm, abs=0.02)
    assert rows["stem"][4] == rows["stem"][5] and rows["stem"][6] == "1.000"
    assert float(rows["res2"][6]) < 0.6  # an alpha-0.5 stage does well under half the work
    shares = [float(r[3]) for r in rows.values()]
    assert sum(shares[:-1]) == pytest.approx(1.0, abs=0.005) and shares[-1] == 1.0


def test_stages_name_models_without_them(capsys) -> None:
    argv = "--model slowfast_r50 --frames 2 --size 32 --repeats 1 --warmup 0 --skip-train --stages"
    assert main(["models", *argv.split()]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("tools/bench.py models: error: --stages times the stages of the ")
    assert line.endswith("single-pathway ResNets (C2D, I3D, Slow); SlowFast is not one of them")


def test_alpha_per_stage(tmp_path: Path) -> None:
    argv = "--model i3d_r18 --frames 4 --size 64 --repeats 1 --warmup 0 --threads 2 --skip-train"
    text = _appended(tmp_path, argv + " --stages --alpha 0 0.5 0.5 0")
    assert "alpha=(0.0, 0.5, 0.5, 0.0)" in text
    table = text[text.index("| stage (eager inference) |") :].splitlines()[2:]
    flops = {ln.split("|")[1].strip(): float(ln.split("|")[8].strip() or "nan") for ln in table}
    assert flops["stem"] == flops["res2"] == 1.0  # res2 left vanilla
    assert flops["res3"] < 0.6 and flops["res4"] < 0.6 and flops["res5"] < 1.0


def test_op_split_counts_only_convolution_operators() -> None:
    profiles = [
        {
            "mkldnn::_convolution_pointwise": (3.0, 1),
            "aten::convolution_backward": (5.0, 2),
            "_OctConvTrainBackward": (1.0, 1),  # a Python autograd node, not a convolution
            "aten::avg_pool2d": (2.0, 4),
            "aten::cat": (0.5, 2),
        },
        {"mkldnn::_convolution_pointwise": (4.0, 1), "aten::avg_pool2d": (1.0, 4)},
        {"mkldnn::_convolution_pointwise": (6.0, 1), "aten::avg_pool2d": (3.0, 4)},
    ]
    split = tool.op_split(profiles, [40, 0, 7], top=2)
    assert split.convolution_ms == 6.0  # medians of 8, 4 and 6
    assert split.other_ms == 3.0  # of 3.5, 1 and 3
    assert split.top_other == [("aten::avg_pool2d", 2.0, 4), ("_OctConvTrainBackward", 0.0, 1)]
    assert split.faults == 7


def test_ops_table_of_a_tiny_run(tmp_path: Path, monkeypatch) -> None:
    count = 0

    def faults() -> int:  # one fault per reading, a thousand while the profiler records
        nonlocal count
        count += 1000 if torch.autograd._profiler_enabled() else 1
        return count

    monkeypatch.setattr(tool, "minor_faults", faults)
    real_op_times, profiled = tool.op_times, []

    def op_times(call):  # the real profile, kept to check what it holds (not how long it took)
        times, n_faults = real_op_times(call)
        profiled.append(times)
        return times, n_faults

    monkeypatch.setattr(tool, "op_times", op_times)
    out = tmp_path / "bench.md"
    argv = "--model i3d_r18 --alpha 0.5 --frames 4 --size 64 --repeats 1 --warmup 1 --threads 2"
    assert main(["models", *argv.split(), "--ops", "--append", str(out)]) == 0
    text = out.read_text()
    rows = {}
    for line in text.splitlines():
        if line.startswith(("| inference: ", "| training step: ")):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = [float(c) for c in cells[1:3]]
    assert list(rows) == [
        "inference: convolutions",
        "inference: other operators",
        "inference: minor page faults per profiled call",
        "training step: convolutions",
        "training step: other operators",
        "training step: minor page faults per profiled call",
    ]
    # every profiled call ran convolutions and other operators; the times are the machine's
    # (op_split's arithmetic is checked on injected profiles above)
    assert len(profiled) == 12  # 3 calls x 2 models x inference and training step
    for times in profiled:
        assert any(tool.is_convolution(op) for op in times)
        assert any(not tool.is_convolution(op) for op in times)
    assert all(t >= 0 for name, pair in rows.items() if "faults" not in name for t in pair)
    # a profiled inference reads the count twice, a profiled training step four times (its own
    # two readings inside); the timed steps' row counts the timed steps only, not the profiled
    assert rows["inference: minor page faults per profiled call"] == [1000, 1000]
    assert rows["training step: minor page faults per profiled call"] == [3000, 3000]
    assert "| minor page faults per training step | 1 | 1 | | |" in text
    # the octave passes show among the octave model's other operators
    assert "training step, largest other operators: " in text and "avg_pool2d" in text


def test_ops_is_cpu_only(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["models", "--ops", "--device", "cuda"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("tools/bench.py models: error: --ops splits CPU operator time")


@pytest.mark.parametrize("alpha", ["0.0_1", "inf", "\u0660.5"])  # float() reads each
def test_an_alpha_is_a_decimal_as_yaml_writes_it(alpha, capsys) -> None:
    assert parse_args(["models", "--alpha", ".5"]).alpha == [0.5]
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["models", "--alpha", alpha])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == f"tools/bench.py models: error: argument --alpha: {alpha!r} is not a number"


def test_a_full_stdout_loses_only_the_lines_never_the_table_appended(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    # ``models --append F > /dev/full``: the table was printed first, and the failed print
    # stopped the run before F had it; now the view alone stops and the run ends with status 0
    record = tmp_path / "bench.md"
    monkeypatch.setattr(tool, "measure_pair", lambda args: (None, None))
    monkeypatch.setattr(tool, "report", lambda *args: "| table |")
    run_into_a_full_stdout(monkeypatch, capsys, ["models", "--append", str(record)])
    assert record.read_text().endswith("\n| table |\n")
