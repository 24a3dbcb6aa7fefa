"""octvideo.engine.logs: the commands' logging set-up, which the command line and the processes
of ``trainer.strategy=ddp_spawn`` make, needs neither torch nor Lightning, and leaves out the
lines that say a result the command prints on stdout (``extra=RESULT``); a caller of the library
functions still gets them."""

from __future__ import annotations

import logging

import pytest

from octvideo.cli import main
from octvideo.data.synth import generate_synthetic
from tests.data.media_helpers import raw_tree
from tests.scripts import run_code

_COMMAND = """
import logging, sys
from octvideo.engine.logs import command_logging
from octvideo.streams import RESULT
command_logging(logging.INFO)
log = logging.getLogger("octvideo.engine.run")
log.info("run directory: runs/x")
log.debug("below the level")
log.info("run directory: runs/y", extra=RESULT)
log.warning("a warning, said once however it is logged", extra=RESULT)
print([name for name in ("torch", "lightning") if name in sys.modules])
"""


def test_the_command_logging_gives_lines_of_its_level_and_needs_no_torch():
    done = run_code(_COMMAND)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "INFO octvideo.engine.run: run directory: runs/x",
        "WARNING octvideo.engine.run: a warning, said once however it is logged",
    ]
    assert done.stdout.split() == ["[]"]


@pytest.fixture
def command_stderr(monkeypatch):
    """Called in the test: the command's own logging set-up in this process (pytest's handlers,
    which it adds to the root logger as the test's body starts, would make it do nothing), to
    capsys's stderr; put back after the test."""
    root = logging.getLogger()
    level = root.level
    yield lambda: monkeypatch.setattr(root, "handlers", [])
    root.setLevel(level)  # setLevel: the loggers' caches of it are cleared


def test_data_commands_say_their_result_once(tmp_path, media, capsys, command_stderr):
    # "wrote sy/train.txt, ..." on stdout and "INFO octvideo.data.synth: wrote 6 train and 3 val
    # clips to sy" on stderr, the same for check and prepare, also under -q
    out = tmp_path / "sy"
    commands = [
        ["synth", "--out", str(out), "--num-train", "2", "--num-val", "1", "--size", "32"],
        ["check", str(out / "val.txt"), "--workers", "1"],
        ["prepare", str(raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4"}))],
    ]
    commands[-1] += [str(tmp_path / "prepared"), "--workers", "1"]
    command_stderr()
    for args in commands:
        capsys.readouterr()
        assert main(["data", *args, "-q"]) == 0
        said = capsys.readouterr()
        assert said.out.count("\n") == 1, said.out
        assert [line for line in said.err.splitlines() if line.startswith("INFO ")] == []
    logging.getLogger("octvideo.data.synth").info("an INFO line")  # the commands' logging is live
    assert capsys.readouterr().err == "INFO octvideo.data.synth: an INFO line\n"


def test_a_library_caller_still_gets_the_result_line(tmp_path, caplog):
    caplog.set_level(logging.INFO, "octvideo")
    generate_synthetic(tmp_path / "sy", num_train=2, num_val=1, size=32, progress=False)
    assert f"wrote 2 train and 1 val clips to {tmp_path / 'sy'}" in caplog.messages


_LINES = """
import logging
from octvideo.engine.logs import command_logging
command_logging(logging.INFO)
logging.getLogger("octvideo.data.synth").info("wrote 2 clips to %s", "s\\nyn")
logging.getLogger("lightning.pytorch").info("a table\\n  of two lines")
try:
    raise ValueError("from the\\ncode")
except ValueError:
    logging.getLogger("octvideo.engine.run").exception("failed on %s", "a\\rb")
"""


def test_octvideos_own_records_are_one_line_and_a_librarys_table_and_a_traceback_keep_theirs():
    done = run_code(_LINES)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[:4] == [
        "INFO octvideo.data.synth: wrote 2 clips to s\\nyn",
        "INFO lightning.pytorch: a table",
        "  of two lines",
        "ERROR octvideo.engine.run: failed on a\\rb",
    ]
    assert lines[4] == "Traceback (most recent call last):"
    assert lines[-2:] == ["ValueError: from the", "code"]
