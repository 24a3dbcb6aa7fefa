"""octvideo.engine.logs: the commands' logging set-up, which the command line and the processes
of ``trainer.strategy=ddp_spawn`` make, needs neither torch nor Lightning."""

from __future__ import annotations

from tests.scripts import run_code

_COMMAND = """
import logging, sys
from octvideo.engine.logs import command_logging
command_logging(logging.INFO)
logging.getLogger("octvideo.engine.run").info("run directory: runs/x")
logging.getLogger("octvideo.engine.run").debug("below the level")
print([name for name in ("torch", "lightning") if name in sys.modules])
"""


def test_the_command_logging_gives_lines_of_its_level_and_needs_no_torch():
    done = run_code(_COMMAND)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["INFO octvideo.engine.run: run directory: runs/x"]
    assert done.stdout.split() == ["[]"]
