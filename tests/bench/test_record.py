"""``octvideo.bench.record``: a table is appended under the command that made it, and an
``--append`` file that a table would spoil is refused before the benchmark runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from octvideo.bench.cli import parse_args
from octvideo.bench.record import append_table, command_line
from octvideo.measure.machine import machine


def test_a_table_is_appended_under_its_command_date_and_machine(tmp_path: Path) -> None:
    record = tmp_path / "BENCHMARKS.md"
    record.write_text("# Benchmarks\n")
    command = command_line(["models", "--repeats", "3"])
    append_table(record, command, "| a | b |")
    lines = record.read_text().splitlines()
    assert lines[:3] == ["# Benchmarks", "", "`python tools/bench.py models --repeats 3`"]
    assert lines[4].endswith(f"UTC, {machine()}")
    assert lines[-1] == "| a | b |"


def test_a_markdown_file_or_a_new_one_is_taken(tmp_path: Path) -> None:
    (tmp_path / "old.md").write_text("text é\n")
    for name in ("old.md", "new/record.md"):
        args = parse_args(["models", "--append", str(tmp_path / name)])
        assert args.append == tmp_path / name


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b"PK\x03\x04\x00binary"), "is not a Markdown record"),
        (lambda p: p.write_bytes(b"\xff\xfe not utf-8"), "is not a Markdown record"),
        (lambda p: p.mkdir(), "is a folder; give a Markdown file"),
        (os.mkfifo, "is a pipe, a device or a socket, not a file"),  # reading would wait
        (lambda p: p.symlink_to(p.with_name("elsewhere.md")), "is a symbolic link to"),
    ],
)
def test_an_append_file_a_table_would_spoil_is_refused_untouched(
    tmp_path: Path, make, reason, capsys
) -> None:
    path = tmp_path / "record.ckpt"
    make(path)
    before = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["models", "--append", str(path)])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"tools/bench.py models: error: --append {path} {reason}")
    if before is not None:
        assert path.read_bytes() == before


def test_an_append_file_inside_a_file_is_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit):
        parse_args(["predict", "--append", str(tmp_path / "file" / "record.md")])
    assert "is a file, not a folder" in capsys.readouterr().err
