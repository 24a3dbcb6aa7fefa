"""``octvideo data``'s own arguments: ``data check``'s default bad-file list (named after the list
file or the whole folder name) and worker counts the parser refuses."""

from __future__ import annotations

import shutil

import pytest

from octvideo.cli import main
from octvideo.cli.data import default_bad_list
from octvideo.data import prepare as prepare_module
from octvideo.data.check import read_bad_videos
from tests.data.media_helpers import raw_tree
from tests.reliability.bad_input_matrix import make_no_file


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
    [(path, _)] = read_bad_videos(sets / "a.v1.bad.jsonl")
    assert path == str(sets / "a.v1" / "jump" / "zero.mp4")
    assert (sets / "a.v2.bad.jsonl").read_text() == ""
    assert f"(listed in {sets / 'a.v2.bad.jsonl'})" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["broken symlink", "pipe"])
def test_a_list_that_is_no_file_is_named_for_what_it_is(tmp_path, capsys, kind):
    what = make_no_file(tmp_path / "train.txt", kind)
    assert main(["data", "check", str(tmp_path / "train.txt")]) == 2
    assert f"annotation file {tmp_path / 'train.txt'} {what}, not a file" in capsys.readouterr().err


def test_a_list_file_loses_only_its_extension(tmp_path, monkeypatch):
    (tmp_path / "k400.v2").mkdir()
    (tmp_path / "k400.v2" / "validate.txt").write_text("")
    assert default_bad_list(str(tmp_path / "k400.v2" / "validate.txt")) == str(
        tmp_path / "k400.v2" / "validate.bad.jsonl"
    )
    monkeypatch.chdir(tmp_path / "k400.v2")
    assert default_bad_list(".") == str(tmp_path / "k400.v2.bad.jsonl")


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["check", "list.txt", "--workers", "0"], "--workers 0: give 1 to "),
        (["prepare", "src", "dst", "--workers", "-2"], "--workers -2: give 1 to "),
        (["synth", "--out", "s", "--frames", "1_6"], "argument --frames: '1_6' is not a whole"),
        (["check", "list.txt", "--timeout", "nan"], "argument --timeout: 'nan' is not a number"),
        # below every command's timeout floor, each video that decodes was reported bad
        (["check", "list.txt", "--timeout", "1e-300"], "--timeout '1e-300': give at least 1 "),
        (["prepare", "src", "dst", "--timeout", "0.5"], "--timeout '0.5': give at least 1 second"),
        (["prepare", "src", "dst", "--timeout", "86401"], "--timeout '86401': give at most 86400 "),
    ],
)
def test_numbers_are_refused_in_one_line_before_any_work(argv, line, tmp_path, monkeypatch, capsys):
    """A count out of its bound is one line from the command; text that is not a number as YAML
    1.2 writes it (int() reads "1_6" as 16) is one line from the parser."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "list.txt").write_text("")
    (tmp_path / "src").mkdir()
    try:
        code = main(["data", *argv])
    except SystemExit as stop:  # the parser's refusal
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err
    assert f"octvideo data {argv[0]}: error: {line}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.txt", "src"]


@pytest.mark.parametrize(
    ("root", "says"),
    [
        ("nonexistent", "does not exist"),
        ("list.txt", "is not a folder"),
        ("locked", "cannot be read (no permission)"),
    ],
)
def test_a_root_that_is_no_readable_folder_is_refused_before_any_check(
    tmp_path, media, monkeypatch, capsys, root, says
):
    # every video was reported bad, with FileNotFoundError in its record, and exit status 1
    monkeypatch.chdir(tmp_path)
    (tmp_path / "list.txt").write_text(f"{media['h264.mp4'].name} 0\n")
    (tmp_path / "locked").mkdir(mode=0)
    # the superuser reads a mode-0 folder: what access() answers is set here
    monkeypatch.setattr("os.access", lambda path, mode: path != root)
    assert main(["data", "check", "list.txt", "--root", root, "-q"]) == 2
    assert capsys.readouterr().err == (
        f"octvideo data check: error: --root '{root}' {says}; give the folder the listed paths "
        "are relative to\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.txt", "locked"]


def test_paths_with_a_line_break_are_quoted_and_each_line_stays_one(
    tmp_path, media, monkeypatch, capsys
):
    # "wrote s\nyn/train.txt, ..." and "error: l\nx.txt lists no videos" spanned two lines
    monkeypatch.chdir(tmp_path)
    (tmp_path / "l\nx.txt").write_text("")
    assert main(["data", "check", "l\nx.txt", "-q"]) == 2
    assert capsys.readouterr().err == (
        "octvideo data check: error: l\\nx.txt lists no videos; nothing to check\n"
    )
    args = ["--out", "s\nyn", "--num-train", "2", "--num-val", "1", "--size", "16", "--frames", "2"]
    assert main(["data", "synth", *args, "-q"]) == 0
    assert capsys.readouterr().out == (
        "wrote 's\\nyn'/train.txt, 's\\nyn'/val.txt, 's\\nyn'/classes.txt\n"
    )


@pytest.mark.parametrize("command", [["check", "list.txt"], ["prepare", "src", "dst"]])
def test_the_workers_help_gives_the_bound_by_the_cores(command, capsys):
    with pytest.raises(SystemExit):
        main(["data", *command, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # as wrapped to any terminal width
    assert "processes (1 to 4 per CPU core, at most 256) (default: 2)" in help_text


def test_a_value_error_while_preparing_keeps_its_traceback(tmp_path, media, monkeypatch):
    """Only prepare's refusals of its input are one usage line; a ValueError from the encoding (a
    bug's) reaches the caller as itself, not as the user's mistake."""

    def bug(*args, **kwargs):
        raise ValueError("a bug while encoding")

    monkeypatch.setattr(prepare_module, "_run_jobs", bug)
    src = raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4"})
    with pytest.raises(ValueError, match="^a bug while encoding$"):
        main(["data", "prepare", str(src), str(tmp_path / "out"), "-q"])


def test_check_without_out_names_its_read_only_default_report_as_the_default(
    tmp_path, media, capsys
):
    (tmp_path / "list.txt").write_text(f"{media['zero.mp4']} 0\n")
    report = tmp_path / "list.bad.jsonl"
    report.write_text('{"path": "old.mp4", "error": "DecodeError: x"}\n')
    report.chmod(0o444)
    before = report.read_bytes()
    assert main(["data", "check", str(tmp_path / "list.txt"), "-q"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"octvideo data check: error: the default report {report} is read-only: make it "
        "writable (chmod u+w) to replace it, or choose another path"
    )
    assert report.read_bytes() == before
