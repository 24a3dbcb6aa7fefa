"""The logging set-up of the ``octvideo`` commands, in a module that imports neither torch nor
Lightning.

The command line makes it (``octvideo.cli``), and so does each process that
``trainer.strategy=ddp_spawn`` starts (``octvideo.engine.module``): such a process imports
octvideo afresh, where the processes of ``ddp`` run the command again.
"""

from __future__ import annotations

import logging

# ``INFO octvideo.engine.run: run directory: runs/x``
FORMAT = "%(levelname)s %(name)s: %(message)s"


def command_logging(level: int) -> None:
    """Lines of ``level`` and above to stderr in ``FORMAT``; nothing where the root logger has
    handlers already (``logging.basicConfig``)."""
    logging.basicConfig(level=level, format=FORMAT)
