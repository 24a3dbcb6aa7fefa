"""``octvideo data``'s own arguments: ``data check``'s default bad-file list (named after the list
file or the whole folder name) and worker counts the parser refuses."""

from __future__ import annotations

import shutil

import pytest

from octvideo.cli import main
from octvideo.cli.data import default_bad_list
from octvideo.data.check import read_report


def test_folders_with_dotted_names_get_a_report_each(tmp_path, media, capsys):
    sets = tmp_path / "sets"
    for version, name in (("a.v1", "zero.mp4"), ("a.v2", "h264.mp4")):
        (sets / version / "jump").mkdir(parents=True)
        shutil.copy(media[name], sets / version / "jump" / name)
    assert main(["data", "check", str(sets / "a.v1"), "--workers", "1", "-q"]) == 1
    assert main(["data", "check", str(sets / "a.v2"), "--workers", "1", "-q"]) == 0
    assert sorted(p.name for p in sets.iterdir() if p.is_file()) == [
        "a.v1.bad.jsonl",
        "a.v2.bad.jsonl",
    ]
    [(path, _)] = read_report(sets / "a.v1.bad.jsonl")
    assert path == str(sets / "a.v1" / "jump" / "zero.mp4")
    assert (sets / "a.v2.bad.jsonl").read_text() == ""
    assert f"(listed in {sets / 'a.v2.bad.jsonl'})" in capsys.readouterr().out


def test_a_list_file_loses_only_its_extension(tmp_path, monkeypatch):
    (tmp_path / "k400.v2").mkdir()
    (tmp_path / "k400.v2" / "validate.txt").write_text("")
    assert default_bad_list(str(tmp_path / "k400.v2" / "validate.txt")) == str(
        tmp_path / "k400.v2" / "validate.bad.jsonl"
    )
    monkeypatch.chdir(tmp_path / "k400.v2")
    assert default_bad_list(".") == str(tmp_path / "k400.v2.bad.jsonl")


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "check", "--workers", "0", "list.txt"],
        ["data", "prepare", "--workers", "-2", "src", "dst"],
    ],
)
def test_worker_counts_below_one_are_refused_by_the_parser(argv, capsys):
    # they used to run with one worker as if nothing were wrong
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert f"argument --workers: {argv[3]!r}: give 1 or more" in capsys.readouterr().err
