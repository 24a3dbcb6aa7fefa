"""The study's table and figure from its rows: the CSV's columns, JSON without inf or nan, the
markdown table and the terminal's lines, files whole or not written; on made-up rows (no runs)."""

from __future__ import annotations

import csv
import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from octvideo.engine import sweep_report
from octvideo.engine.sweep_report import CSV_COLUMNS, iter_rows, markdown, write_study
from octvideo.errors import OutputWriteError
from tests.failing_writes import fail_output

META = {
    "config": "oct_i3d_synth.yaml",
    "overrides": [],
    "seeds": 2,
    "jobs": 3,
    "command": "octvideo sweep --cfg oct_i3d_synth.yaml --out runs/study",
    "date": "2026-01-01 00:00 UTC",
    "machine": "a test machine",
    "timing": {
        "repeats": 10,
        "train_batch": 2,
        "date": "2025-06-30 12:34 UTC",
        "machine": "the timing machine",
    },
}


def _row(point: str, **values: Any) -> dict[str, Any]:
    """A made-up row: every column None but those given."""
    row: dict[str, Any] = dict.fromkeys(CSV_COLUMNS)
    row.update(point=point, folder=point, baseline=False, settings={}, status="ok")
    row.update(seeds_finished=2, measure_error="")
    row.update(values)
    return row


def _rows() -> list[dict[str, Any]]:
    return [
        _row(
            "alpha=0",
            baseline=True,
            video_top1_mean=0.7,
            video_top1_std=0.1,
            video_top1_min=0.6,
            video_top1_max=0.8,
            gflops=2.0,
            params=1_500_000,
            infer_ratio=1.0,
            infer_ratio_min=1.0,
            infer_ratio_max=1.0,
        ),
        _row("alpha=0.5", status="failed: seed 0: a | b", seeds_finished=0, infer_ms=float("inf")),
    ]


def test_terminal_lines_give_accuracy_cost_ratio_and_status():
    assert list(iter_rows(_rows())) == [
        "alpha=0 (baseline): video top-1 70.0 ± 10.0%, GFLOPs 2, inference 1.000 (1.000-1.000), ok",
        "alpha=0.5: video top-1 -%, GFLOPs -, inference -, failed: seed 0: a | b",
    ]


def test_markdown_table_has_one_line_per_point_and_keeps_its_columns():
    lines = markdown(_rows(), META).splitlines()
    assert lines[0].startswith("Study of `oct_i3d_synth.yaml`, 2 seed(s) per point, 3 run(s)")
    assert lines[2] == f"`{META['command']}`"
    base, other = lines[-2:]
    assert base.startswith("| alpha=0 (baseline) | 70.0 ± 10.0 | - | - | 2 | 1.500 |")
    # a "|" in a failure's reason would split its cell
    assert other.endswith("| failed: seed 0: a / b |")
    assert base.count("|") == other.count("|") == lines[-4].count("|")


@pytest.mark.parametrize(
    "taken, head",
    [
        ({}, "2025-06-30 12:34 UTC, the timing machine (timings)."),
        (
            {"date": None, "machine": None},
            "timings' date and machine unknown (measured.json of an older octvideo).",
        ),
        (None, "cost and times not measured."),
    ],
)
def test_table_head_dates_the_timings_by_when_they_were_taken(taken, head):
    timing = None if taken is None else {**META["timing"], **taken}
    first = markdown(_rows(), {**META, "timing": timing}).splitlines()[0]
    assert first.endswith(f"3 run(s) at a time; {head}")
    assert "2026-01-01" not in first and "a test machine" not in first  # when it was written


def test_study_files_are_written(tmp_path):
    files = write_study(tmp_path, _rows(), META)
    assert files == {k: tmp_path / f"study.{k}" for k in ("csv", "json", "md", "png")}
    with open(files["csv"], newline="") as fh:
        table = list(csv.reader(fh))
    assert tuple(table[0]) == CSV_COLUMNS
    assert table[0][:4] == ["point", "status", "seeds_finished", "video_top1_mean"]
    assert table[2][CSV_COLUMNS.index("gflops")] == ""  # None
    data = json.loads(files["json"].read_text())
    assert data["meta"] == META
    assert data["rows"][1]["infer_ms"] is None  # inf: JSON has no such number
    assert [r["point"] for r in data["rows"]] == ["alpha=0", "alpha=0.5"]
    assert "(baseline)" in files["md"].read_text()
    assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_study_files_are_whole_or_not_written(tmp_path, monkeypatch):
    write_study(tmp_path, _rows(), META)
    before = (tmp_path / "study.png").read_bytes()

    def full_disk(rows, path):
        Path(path).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(sweep_report, "plot", full_disk)
    with pytest.raises(OutputWriteError):
        write_study(tmp_path, _rows(), META)
    assert (tmp_path / "study.png").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "study.csv",
        "study.json",
        "study.md",
        "study.png",
    ]


@pytest.mark.parametrize(
    ("how", "name", "reason"),
    [
        ("write", "study.json", "No space left on device"),
        ("rename", "study.md", "Operation not permitted"),
        ("rename", "study.png", "Operation not permitted"),
    ],
)
def test_a_study_file_that_cannot_be_written_keeps_the_earlier_four(
    tmp_path, monkeypatch, how, name, reason
):
    # the files were replaced one after another: a full disk or an append-only earlier file
    # part-way left a new table beside the earlier study's figure
    write_study(tmp_path, _rows(), META)
    names = ["study.csv", "study.json", "study.md", "study.png"]
    before = [(tmp_path / n).read_bytes() for n in names]
    fail_output(monkeypatch, how, tmp_path / name)
    with pytest.raises(OutputWriteError) as caught:
        write_study(tmp_path, _rows()[:1], {**META, "seeds": 3})  # every file differs
    assert str(caught.value).startswith(
        f"cannot write {tmp_path / name} ({reason}); the earlier study.csv, study.json, study.md "
        "and study.png are kept; "
    )
    assert [(tmp_path / n).read_bytes() for n in names] == before
    assert sorted(os.listdir(tmp_path)) == names  # no temporary, no backup


def test_the_report_needs_neither_the_study_nor_torch():
    code = (
        "import sys, octvideo.engine.sweep_report; "
        "print(sorted(m for m in ('octvideo.engine.sweep', 'torch', 'matplotlib') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
