"""``octvideo``'s entry point: what every command shares. A command takes its inputs or overrides
between its options, an argument it does not take is refused under its own usage, and its
``--help`` gives every option's default, and a value an option refuses is one line. A command
whose stdout reader went away ends quietly, one with stdout closed prints nowhere, Ctrl-C and
SIGTERM stop a command with one line, and a path that cannot be used is one line; what a command
prints on stderr is its own: no library's import-time warnings (fvcore's focal-loss module calls
the deprecated ``torch.jit.script`` when ``fvcore.nn`` is imported, which the engine and the FLOP
count both do)."""

from __future__ import annotations

import argparse
import builtins
import errno
import os
import signal
import subprocess
import sys

import pytest

from octvideo import cli
from octvideo.cli import build_parser, main
from octvideo.cli import data as cli_data
from octvideo.cli import models as cli_models
from octvideo.errors import (
    InputPathError,
    Interrupted,
    Terminated,
    UsageError,
    raise_terminated,
)
from octvideo.signals import STOPS


@pytest.mark.parametrize(
    ("argv", "dest"),
    [
        (["predict", "--ckpt", "c.ckpt", "a", "--topk", "3", "b"], "inputs"),
        (["train", "--cfg", "c.yaml", "a", "--out", "runs/a", "b"], "overrides"),
        (["test", "--cfg", "c.yaml", "a", "--ckpt", "c.ckpt", "b"], "overrides"),
        (["sweep", "--cfg", "c.yaml", "a", "--out", "s", "--seeds", "2", "b"], "overrides"),
    ],
)
def test_inputs_and_overrides_may_come_between_options(argv, dest):
    # each used to be refused: "octvideo: error: unrecognized arguments: b"
    assert getattr(build_parser().parse_args(argv), dest) == ["a", "b"]


def test_words_after_a_double_dash_are_inputs():
    args = build_parser().parse_args(["predict", "--ckpt", "c.ckpt", "--", "-a.mp4", "b.mp4"])
    assert args.inputs == ["-a.mp4", "b.mp4"]


@pytest.mark.parametrize(
    ("argv", "dest", "words"),
    [
        # each was refused: "unrecognized arguments: --" (the words before -- were parsed in order)
        (
            ["train", "--cfg", "c.yaml", "a=1", "--out", "r", "--", "b=2"],
            "overrides",
            ["a=1", "b=2"],
        ),
        (["predict", "a.mp4", "--ckpt", "c.ckpt", "--", "-b.mp4"], "inputs", ["a.mp4", "-b.mp4"]),
        (["predict", "a.mp4", "--ckpt", "c.ckpt", "-q", "--"], "inputs", ["a.mp4"]),
        (["predict", "--ckpt", "c.ckpt", "--", "-b.mp4", "--topk"], "inputs", ["-b.mp4", "--topk"]),
        (["data", "check", "--workers", "0", "--", "-list.txt"], "annotations", "-list.txt"),
    ],
)
def test_options_and_words_mix_in_any_order_before_a_double_dash(argv, dest, words):
    assert getattr(build_parser().parse_args(argv), dest) == words


@pytest.mark.parametrize(
    ("argv", "prog", "unknown"),
    [
        (["models", "--", "x"], "models", "x"),  # was "unrecognized arguments: --"
        (["data", "check", "a.txt", "--bogus", "--", "b.txt"], "data check", "--bogus"),
        (["data", "check", "a.txt", "--", "-b.txt"], "data check", "-b.txt"),
    ],
)
def test_a_double_dash_is_never_named_as_an_unknown_argument(argv, prog, unknown, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    line = capsys.readouterr().err.splitlines()[-1]
    assert line == f"octvideo {prog}: error: unrecognized arguments: {unknown}"


@pytest.mark.parametrize(
    ("argv", "prog", "unknown"),
    [
        (["predict", "--ckpt", "c.ckpt", "a.mp4", "--bogus", "3", "b.mp4"], "predict", "--bogus"),
        (["train", "--cfg", "c.yaml", "a=1", "--bogus"], "train", "--bogus"),
        (["data", "check", "list.txt", "more.txt"], "data check", "more.txt"),
        (["models", "--bogus"], "models", "--bogus"),
    ],
)
def test_an_unknown_argument_is_refused_under_the_commands_own_usage(argv, prog, unknown, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: octvideo {prog} ")
    assert err.splitlines()[-1] == f"octvideo {prog}: error: unrecognized arguments: {unknown}"


def _hint(word):
    return (
        f"; {word} begins with - and is read as an option: write it as ./{word} (an input may "
        "also follow --)"
    )


@pytest.mark.parametrize(
    ("argv", "prog", "message"),
    [
        (
            ["predict", "--ckpt", "c.ckpt", "-b.mp4"],
            "predict",
            "the following arguments are required: inputs" + _hint("-b.mp4"),
        ),
        (
            ["import", "--from", "octvideo", "--model", "c2d_r18", "--out", "o.ckpt", "-b.mp4"],
            "import",
            "the following arguments are required: src" + _hint("-b.mp4"),
        ),
        (
            ["data", "check", "-b.mp4"],
            "data check",
            "the following arguments are required: annotations" + _hint("-b.mp4"),
        ),
        (  # -q.mp4 read as -q with the value .mp4
            ["predict", "--ckpt", "c.ckpt", "a.mp4", "-q.mp4"],
            "predict",
            "argument -q/--quiet: ignored explicit argument '.mp4'" + _hint("-q.mp4"),
        ),
        (  # a file here among options it does not have
            ["predict", "--ckpt", "c.ckpt", "a.mp4", "-b.mp4", "--bogus"],
            "predict",
            "unrecognized arguments: -b.mp4 --bogus" + _hint("-b.mp4"),
        ),
        (  # an option's value
            ["export", "--ckpt", "-new.ckpt", "--format", "onnx"],
            "export",
            "argument --ckpt: expected one argument" + _hint("-new.ckpt"),
        ),
    ],
)
def test_a_path_that_begins_with_a_dash_is_refused_saying_how_to_give_it(
    argv, prog, message, tmp_path, monkeypatch, capsys
):
    # each said only "the following arguments are required: ...", "unrecognized arguments: ..."
    # or "expected one argument", naming none of the ways to give such a path
    monkeypatch.chdir(tmp_path)
    for name in ("-b.mp4", "-q.mp4"):
        (tmp_path / name).touch()
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"octvideo {prog}: error: {message}"


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "--ckpt", "c.ckpt", "a.mp4", "--bogus"],
        ["predict", "--ckpt", "c.ckpt", "--topk", "x", "a"],  # a refused value: one line
        ["export", "--ckpt=-b.mp4", "--out", "m"],  # the value is given as it should be
    ],
)
def test_refusals_without_a_dash_path_get_no_hint(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(argv)
    assert "read as an option" not in capsys.readouterr().err


def test_a_dash_path_after_a_double_dash_or_dot_slash_is_an_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-b.mp4").touch()
    for inputs in (["--", "-b.mp4"], ["./-b.mp4"]):
        args = build_parser().parse_args(["predict", "--ckpt", "c.ckpt", *inputs])
        assert args.inputs == inputs[-1:]
    args = build_parser().parse_args(["export", "--ckpt=-b.mp4", "--format", "onnx"])
    assert args.ckpt == "-b.mp4"


def _commands(parser: argparse.ArgumentParser):
    """The parser of every command, ``data``'s subcommands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                yield command
                yield from _commands(command)


def _help_of(option: str, help_text: str) -> str:
    """The help text of ``option``: its line of ``--help`` and those under it."""
    lines = help_text.splitlines()
    start = next(
        i for i, line in enumerate(lines) if line[:3] == "  -" and line.split()[0] == option
    )
    end = next(
        (i for i in range(start + 1, len(lines)) if not lines[i].startswith(" " * 8)), len(lines)
    )
    return " ".join(line.strip() for line in lines[start:end])


def test_help_gives_the_default_of_every_option_that_has_one():
    # predict --topk, data check --workers, sweep --time-repeats and others gave none
    for command in _commands(build_parser()):
        help_text = command.format_help()
        for action in command._actions:
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
                text = _help_of(action.option_strings[0], help_text)
                assert "(default: " in text, f"{command.prog} {action.option_strings}: {text}"


def _typed_options():
    """``(command words, option)`` of every option of every command that has a type or choices:
    those whose value the parser itself may refuse."""
    for command in _commands(build_parser()):
        for action in command._actions:
            if action.option_strings and (action.type is not None or action.choices is not None):
                yield command.prog.split()[1:], action.option_strings[-1]


TYPED_OPTIONS = list(_typed_options())


def test_the_typed_options_are_those_of_every_command():
    commands = {" ".join(words) for words, _ in TYPED_OPTIONS}
    assert commands == {
        "data synth", "data check", "data prepare", "sweep", "import", "predict", "export",
        "models",
    }  # fmt: skip
    assert (["predict"], "--topk") in TYPED_OPTIONS


@pytest.mark.parametrize(("words", "option"), TYPED_OPTIONS, ids=str)
def test_a_value_an_option_refuses_is_one_line_naming_the_option_and_text(words, option, capsys):
    # "1_0" is no number as YAML 1.2 writes it (int() reads 10), and no choice of any option;
    # each was argparse's usage block (3 to 8 lines), then this line
    with pytest.raises(SystemExit) as exit_:
        main([*words, option, "1_0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    prefix = f"octvideo {' '.join(words)}: error: argument {option}: "
    assert err.startswith(prefix), err
    assert err.count("\n") == 1, err
    assert "'1_0'" in err


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["predict", "--topk", "2000"],
            "predict: error: argument --topk: '2000': give at most 1000",
        ),
        (["predict", "--topk", "five"], "predict: error: argument --topk: 'five' is not a whole"),
        (["predict", "--batch-size", "0"], "predict: error: argument --batch-size: '0': give 1 or"),
        (["data", "synth", "--num-train", "1e400"], "data synth: error: argument --num-train: '1e"),
        (["sweep", "--run-timeout", "1e400"], "sweep: error: argument --run-timeout: '1e400' is "),
        (["models", "--alpha", "0.0_1"], "models: error: argument --alpha: '0.0_1': give one "),
        (
            ["data", "check", "l", "--format", "csv"],
            "data check: error: argument --format: invalid",
        ),
        (["export", "--format", "tflite"], "export: error: argument --format: invalid choice: 'tf"),
        (["predict", "--topk", "-1"], "predict: error: argument --topk: '-1': give 1 or more"),
    ],
)
def test_a_value_past_its_bound_or_not_a_choice_is_one_line(argv, line, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"octvideo {line}"), err
    assert err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("option", "value", "line"),
    [
        (
            "--window",
            "-2s",
            "--window '-2s': a duration must be positive, got '-2s'; give at least",
        ),
        (
            "--stride",
            "-1s",
            "--stride '-1s': a duration must be positive, got '-1s'; give at least",
        ),
        ("--timeout", "-5s", "--timeout '-5s': a duration must be positive, got '-5s'"),
    ],
)
def test_a_value_that_begins_with_a_dash_and_a_digit_is_the_options_value(
    option, value, line, capsys
):
    # argparse takes "-2" as a value but read "-2s" as an option: "--window -2s" was a window
    # option without its value, refused under the usage block
    assert main(["predict", "--ckpt", "c.ckpt", "a.mp4", option, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"octvideo predict: error: {line}"), err
    assert err.count("\n") == 1, err


@pytest.mark.parametrize(("words", "option"), TYPED_OPTIONS, ids=str)
def test_a_typed_option_without_its_value_keeps_the_usage(words, option, capsys):
    """A command line that cannot be read (an option without its value) is no refused value:
    the usage block stays."""
    with pytest.raises(SystemExit) as exit_:
        main([*words, option])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: octvideo {' '.join(words)} "), err
    assert err.splitlines()[-1].endswith(f"argument {option}: expected one argument"), err


def test_an_unknown_command_keeps_the_usage(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["data", "bogus"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: octvideo data ")
    assert "invalid choice: 'bogus'" in err.splitlines()[-1]


def test_every_cfg_option_has_the_same_help():
    # test and sweep said "config path or shipped name": they take short names too
    helps = {
        command.prog: action.help
        for command in _commands(build_parser())
        for action in command._actions
        if "--cfg" in action.option_strings
    }
    assert sorted(helps) == ["octvideo sweep", "octvideo test", "octvideo train"]
    assert set(helps.values()) == {"config path, shipped name or short name"}


def test_every_quiet_option_is_also_q():
    for command in _commands(build_parser()):
        for action in command._actions:
            if "--quiet" in action.option_strings:
                assert action.option_strings == ["-q", "--quiet"], command.prog


def _buffered_env() -> dict[str, str]:
    """The environment with stdout block-buffered into a pipe, as in a user's shell (this one
    may set PYTHONUNBUFFERED)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return {**env, "OMP_NUM_THREADS": "1"}


def run_with_stdout_closed(*args: str, stderr: int = subprocess.PIPE) -> tuple[int, bytes | None]:
    """``octvideo ARGS | true``: the status and stderr of a command whose stdout's reader is gone
    before its first line is written (``stderr=subprocess.STDOUT``: ``2>&1 | true``)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "octvideo.cli", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=_buffered_env(),
    )
    proc.stdout.close()
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def test_a_command_whose_stdout_reader_went_away_ends_quietly_with_status_1():
    # ``octvideo models ... | head -1`` once head has exited: Python's default is a
    # BrokenPipeError traceback at exit (status 120); a command whose output is what it prints
    # ends quietly instead
    code, err = run_with_stdout_closed(
        "models", "--frames", "4", "--size", "32", "--filter", "c2d_r18"
    )
    assert code == 1, err.decode()
    assert err.decode() == ""


def test_a_command_that_writes_files_goes_on_when_its_stdout_reader_went_away(tmp_path):
    # ``octvideo data synth --out D | true``: what it prints is a view of its files, which it
    # writes whole and ends with its own status; it ended with status 1, nothing said
    out = tmp_path / "synth"
    args = ["data", "synth", "--out", str(out), "--num-train", "2", "--num-val", "1"]
    code, err = run_with_stdout_closed(*args, "--size", "16", "--frames", "2", "-q")
    stderr = err.decode()
    assert code == 0, stderr
    assert "Traceback" not in stderr, stderr  # its result line is stdout's, gone with it
    assert len((out / "train.txt").read_text().splitlines()) == 2
    assert len((out / "val.txt").read_text().splitlines()) == 1


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_command_that_writes_files_goes_on_when_its_stdout_is_full(tmp_path):
    # ``octvideo data synth --out D > /dev/full`` (a log on a full disk): it stopped at its first
    # line with status 1; the view stops instead, the files are written whole, and one line at
    # the end says what was dropped
    out = tmp_path / "synth"
    args = ["data", "synth", "--out", str(out), "--num-train", "2", "--num-val", "1"]
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "octvideo.cli", *args, "--size", "16", "--frames", "2"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=_buffered_env(),
            timeout=300,
        )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr  # its result line was stdout's, the files below tell
    assert proc.stderr.splitlines()[-1] == (
        "octvideo data synth: the lines to stdout from the first that could not be written on "
        "were dropped (No space left on device)"
    )
    assert len((out / "train.txt").read_text().splitlines()) == 2
    assert len((out / "val.txt").read_text().splitlines()) == 1


class FullStream:
    """A stream on a full disk: each write and flush fails as ``> /dev/full`` does."""

    def __init__(self) -> None:
        self.tried: list[str] = []

    def write(self, text: str) -> int:
        self.tried.append(text)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def isatty(self) -> bool:
        return False


def _octvideo(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
    return subprocess.run(
        [sys.executable, "-m", "octvideo.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_a_refused_command_prints_one_line(tmp_path):
    proc = _octvideo("data", "check", str(tmp_path / "missing.txt"))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"octvideo data check: error: annotations {tmp_path / 'missing.txt'} do not exist: pass a "
        "path/label list, a Kinetics CSV or a class-folder root"
    ]


@pytest.mark.parametrize("args", [["--help"], ["predict", "clip.mp4"]])
def test_a_deleted_current_folder_is_named_before_torch_loads(tmp_path, args):
    gone = tmp_path / "gone"
    gone.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "octvideo.cli", *args],
        cwd=gone,
        # the folder goes after the child is in it: the child's working directory is deleted
        stderr=subprocess.PIPE,
        text=True,
        # the folders of this interpreter's path (an editable install's path hook is a name,
        # which the child could not make absolute in a deleted folder: Python would not start)
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if os.path.isabs(p))},
        preexec_fn=lambda: os.rmdir(gone),
    )
    _, err = proc.communicate(timeout=300)
    prog = "octvideo" if args == ["--help"] else "octvideo predict"
    assert (proc.returncode, err.splitlines()) == (
        2,
        [
            f"{prog}: error: the current folder no longer exists (it was deleted, or moved "
            "away); cd to a folder that exists and run the command again"
        ],
    )


def test_flop_count_prints_no_warning():
    proc = _octvideo("models", "--frames", "4", "--size", "32", "--filter", "c2d_r18")
    assert proc.returncode == 0, proc.stderr
    assert "c2d_r18" in proc.stdout
    assert proc.stderr == ""


def _models_with_stdout(redirect: str) -> subprocess.CompletedProcess:
    """``octvideo models ...`` run by the shell with its stdout redirected (``>&-``)."""
    args = "models --frames 4 --size 32 --filter c2d_r18"
    return subprocess.run(
        ["sh", "-c", f'exec "$0" -m octvideo.cli {args} {redirect}', sys.executable],
        capture_output=True,
        text=True,
        env=_buffered_env(),
        timeout=300,
    )


def test_a_command_with_stdout_closed_runs_and_prints_nowhere():
    # ``octvideo models >&-``: Python sets sys.stdout to None; the command used to fail with an
    # AttributeError at its first flush, after its work
    proc = _models_with_stdout(">&-")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


@pytest.mark.parametrize("stdout_errors", ["strict", "surrogateescape"])
def test_a_name_that_is_not_utf8_is_printed_as_its_escape(tmp_path, stdout_errors):
    # stdout's errors are "strict" under a locale such as en_US.UTF-8, where the summary line
    # failed with UnicodeEncodeError after the work, and "surrogateescape" under C.UTF-8, where
    # it wrote the raw byte; logs and files write the escape \udcff
    env = {**_buffered_env(), "PYTHONIOENCODING": f"utf-8:{stdout_errors}"}
    proc = subprocess.run(
        [sys.executable, "-m", "octvideo.cli", "data", "synth", "--out", b"s\xff", "--quiet"]
        + ["--num-train", "1", "--num-val", "1"],
        capture_output=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout.decode() == (
        "wrote s\\udcff/train.txt, s\\udcff/val.txt, s\\udcff/classes.txt\n"
    )
    assert (tmp_path / os.fsdecode(b"s\xff") / "classes.txt").is_file()


def _signalling(signum: int):
    """A command that receives ``signum`` while it works."""

    def run(args):
        os.kill(os.getpid(), signum)
        raise AssertionError("the signal did not stop the command")

    return run


@pytest.mark.parametrize(
    ("signum", "cause", "status"),
    [(signal.SIGINT, "Ctrl-C", 130), (signal.SIGTERM, "SIGTERM", 143)],
)
def test_ctrl_c_and_sigterm_stop_a_command_with_one_line(
    monkeypatch, capsys, signum, cause, status
):
    monkeypatch.setattr(cli_models, "run", _signalling(signum))
    before = signal.getsignal(signal.SIGTERM)
    sigint = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        assert main(["models"]) == status
    finally:
        signal.signal(signal.SIGINT, sigint)
    assert capsys.readouterr().err == f"octvideo models: stopped by {cause}\n"
    assert signal.getsignal(signal.SIGTERM) is before  # put back for whoever called main


def test_a_data_subcommand_names_itself_in_its_error_and_stop_lines(monkeypatch, capsys):
    # both said "octvideo data: ..."
    def refused(args):
        raise UsageError("--out x is a file; choose another --out")

    monkeypatch.setattr(cli_data, "run_check", refused)
    monkeypatch.setattr(cli_data, "run_synth", _signalling(signal.SIGTERM))
    assert main(["data", "check", "list.txt"]) == 2
    assert main(["data", "synth", "--out", "x"]) == 143
    assert capsys.readouterr().err.splitlines() == [
        "octvideo data check: error: --out x is a file; choose another --out",
        "octvideo data synth: stopped by SIGTERM",
    ]


@pytest.mark.parametrize("signum", STOPS, ids=[signum.name for signum in STOPS])
def test_a_signal_after_a_commands_last_line_changes_nothing(monkeypatch, capsys, signum):
    # a Ctrl-C as the command's objects were freed printed a traceback from a progress bar's
    # __del__; one that landed in ordinary code, "stopped by Ctrl-C" and status 130
    monkeypatch.setattr(cli_models, "models_table", lambda **kwargs: [])
    monkeypatch.setattr(cli_models, "format_table", lambda rows, frames, size: "the table")
    print_once = builtins.print
    raised = []

    def print_then_signal(*args, **kwargs):
        print_once(*args, **kwargs)
        if not raised:  # the command's last line is printed: the signal comes after it
            raised.append(signum)
            signal.raise_signal(signum)

    monkeypatch.setattr(builtins, "print", print_then_signal)
    before = [signal.default_int_handler, *(signal.getsignal(s) for s in STOPS[1:])]
    sigint = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        status = main(["models"])
        after = [signal.getsignal(s) for s in STOPS]
    finally:
        signal.signal(signal.SIGINT, sigint)
    assert (raised, status, *capsys.readouterr()) == ([signum], 0, "the table\n", "")
    assert after == before  # put back for whoever called main


# ``octvideo models`` whose process gets SIGTERM after the command returned, as ``exit_now``
# begins: before, main had put SIGTERM's default back, and the finished command was killed.
_SIGNAL_AT_EXIT = """
import signal, sys
from octvideo import cli, signals
from octvideo.cli import models

models.models_table = lambda **kwargs: []
models.format_table = lambda rows, frames, size: "the table"
exit_now = signals.exit_now

def signal_then_exit(status):
    signal.raise_signal(signal.SIGTERM)
    exit_now(status)

signals.exit_now = signal_then_exit
sys.argv = ["octvideo", "models"]
cli.entry()
"""


def test_a_signal_as_the_program_exits_keeps_the_commands_status():
    proc = subprocess.run(
        [sys.executable, "-c", _SIGNAL_AT_EXIT],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "the table\n", "")


@pytest.mark.parametrize(
    ("argv", "inner"),
    [
        (["train", "--cfg", "oct_i3d.yaml"], "_train"),
        (["test", "--cfg", "oct_i3d.yaml", "--ckpt", "c.ckpt"], "_test"),
    ],
)
def test_train_and_test_answer_sigterm_with_the_engines_handler(monkeypatch, argv, inner):
    # the handler Lightning's loops replace by their stop at a batch end is there as the
    # engine runs; another, raising where the command is, would stop a step half done
    from octvideo.engine import run

    seen = []

    def runs(*args):
        seen.append(signal.getsignal(signal.SIGTERM))
        raise UsageError("seen")

    monkeypatch.setattr(run, inner, runs)
    before = signal.getsignal(signal.SIGTERM)
    assert main(argv) == 2
    assert seen == [raise_terminated]
    assert signal.getsignal(signal.SIGTERM) is before


# A child that sends itself SIGTERM when it first imports the module named by argv[1]: the
# signal arrives at a known point of the command's start, whatever the machine's load.
_SIGNAL_ON_IMPORT = """
import os, signal, sys

class SignalOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == sys.argv[1]:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGTERM)
        return None

sys.meta_path.insert(0, SignalOnImport())
from octvideo.cli import main

sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize(
    ("module", "argv", "prog"),
    [
        ("torch", ["train", "--cfg", "oct_i3d_synth"], "octvideo train"),  # the commands' import
        ("octvideo.engine.run", ["train", "--cfg", "oct_i3d_synth"], "octvideo train"),
        ("octvideo.engine.run", ["test", "--cfg", "c.yaml", "--ckpt", "c.ckpt"], "octvideo test"),
    ],
)
def test_sigterm_while_a_command_starts_is_one_line(module, argv, prog):
    # killed silently (status 143 from the shell, no line) before main's handler was set, and
    # for train and test until the engine set its own, after Lightning's import
    proc = subprocess.run(
        [sys.executable, "-c", _SIGNAL_ON_IMPORT, module, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert (proc.returncode, proc.stderr) == (143, f"{prog}: stopped by SIGTERM\n")


def test_a_path_that_cannot_be_used_is_one_line(monkeypatch, capsys):
    def run(args):
        raise OSError(errno.ENAMETOOLONG, "File name too long", "a" * 300)

    monkeypatch.setattr(cli_models, "run", run)
    assert main(["models"]) == 2
    assert capsys.readouterr().err == (
        f"octvideo models: error: {'a' * 300}: File name too long; check the path\n"
    )


def test_an_input_that_is_not_there_is_one_line_but_a_bugs_missing_file_is_raised(
    monkeypatch, capsys
):
    def run(args):
        raise InputPathError("source folder clips does not exist")

    monkeypatch.setattr(cli_models, "run", run)
    assert main(["models"]) == 2
    assert capsys.readouterr().err == "octvideo models: error: source folder clips does not exist\n"

    def broken(args):  # an internal path gone: not the user's to fix, so its traceback stays
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/tmp/gone.tmp")

    monkeypatch.setattr(cli_models, "run", broken)
    with pytest.raises(FileNotFoundError, match="gone.tmp"):
        main(["models"])


def test_a_full_stdout_is_one_stopped_line_not_a_traceback():
    # ``octvideo models > /dev/full``: every print fails with ENOSPC
    proc = _models_with_stdout(">/dev/full")
    assert proc.returncode == 1
    assert proc.stderr == (
        "octvideo models: stopped: cannot write to stdout or stderr (No space left on device); "
        "the files written are kept\n"
    )


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (["models"], "octvideo models"),
        (["-v", "data", "synth", "--out", "x"], "octvideo data synth"),
        (["data", "--help"], "octvideo data"),
        (["predict", "train"], "octvideo predict"),  # an input named as a command
        (["--verbose"], "octvideo"),
    ],
)
def test_ctrl_c_while_the_commands_import_names_the_command(monkeypatch, capsys, argv, prog):
    # said "octvideo: stopped by Ctrl-C" until the command line was parsed
    def interrupted(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.importlib, "import_module", interrupted)
    assert main(argv) == 130
    assert capsys.readouterr().err == f"{prog}: stopped by Ctrl-C\n"


def test_the_command_names_read_before_parsing_are_the_parsers():
    def names(parser):
        groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return {n: names(sub) for g in groups for n, sub in g.choices.items()}

    commands = {name: {sub: {} for sub in subs} for name, subs in cli.COMMANDS.items()}
    assert names(cli.build_parser()) == commands


@pytest.mark.parametrize(
    ("stop", "status"),
    [
        (Interrupted("stopped by Ctrl-C at global step 6; last.ckpt is kept"), 130),
        (Terminated("stopped by SIGTERM after 1 of 3 test batches"), 143),
    ],
)
def test_a_command_that_says_where_it_stopped_is_reported_in_its_words(
    monkeypatch, capsys, stop, status
):
    def run(args):
        raise stop

    monkeypatch.setattr(cli_models, "run", run)
    assert main(["models"]) == status
    assert capsys.readouterr().err == f"octvideo models: {stop}\n"


# A child in which the first import of the module named by argv[2] gets the signal argv[1] and,
# as a library's import may (numpy's, matplotlib's), catches what it raises: the signal arrives
# at a known point of the command's start, whatever the machine's load.
_SIGNAL_CAUGHT_IN_IMPORT = """
import signal, sys

# the dispositions a terminal gives, whatever this test's process holds: a signal ignored there
# (by a worker's code run in it) stays ignored in the processes it starts
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
signal.signal(signal.SIGHUP, signal.SIG_DFL)

class CaughtInImport:
    def find_spec(self, name, path=None, target=None):
        if name == sys.argv[2]:
            sys.meta_path.remove(self)
            try:
                signal.raise_signal(getattr(signal, sys.argv[1]))
            except BaseException:
                pass
        return None

sys.meta_path.insert(0, CaughtInImport())
from octvideo.cli import main

sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.parametrize(
    ("signum", "module", "argv", "line", "status"),
    [
        (
            "SIGINT",
            "numpy",
            ["train", "--cfg", "no.yaml"],
            "octvideo train: stopped by Ctrl-C",
            130,
        ),
        ("SIGHUP", "numpy", ["models"], "octvideo models: stopped by SIGTERM", 143),
        (  # Lightning's import, which imports matplotlib, as train and test start
            "SIGTERM",
            "matplotlib",
            ["test", "--cfg", "c.yaml", "--ckpt", "c.ckpt"],
            "octvideo test: stopped by SIGTERM",
            143,
        ),
    ],
)
def test_a_stop_while_the_modules_import_waits_for_them_and_stops(
    signum, module, argv, line, status
):
    # raised inside an import, a stop was lost to the library's code (the command ran on) or
    # left a module half made (a traceback of the next import)
    proc = subprocess.run(
        [sys.executable, "-c", _SIGNAL_CAUGHT_IN_IMPORT, signum, module, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert (proc.returncode, proc.stderr, proc.stdout) == (status, f"{line}\n", "")
