"""The logging set-up of the ``octvideo`` commands, in a module that imports neither torch nor
Lightning.

The command line makes it (``octvideo.cli``), and so does each process that
``trainer.strategy=ddp_spawn`` starts (``octvideo.engine.module``): such a process imports
octvideo afresh, where the processes of ``ddp`` run the command again.
"""

from __future__ import annotations

import logging

from octvideo.argtypes import breaks_escaped
from octvideo.streams import RESULT_KEY

# ``INFO octvideo.engine.run: run directory: runs/x``
FORMAT = "%(levelname)s %(name)s: %(message)s"


def not_a_result(record: logging.LogRecord) -> bool:
    """False for a record below WARNING logged with ``extra=RESULT`` (``octvideo.streams``),
    which says what the command prints: the filter of the commands' handler."""
    return record.levelno >= logging.WARNING or not getattr(record, RESULT_KEY, False)


class _OneLineFormatter(logging.Formatter):
    """``FORMAT``, with the line breaks of octvideo's own messages written as escapes (``\\n``):
    a path holding a newline (``wrote 6 train and 3 val clips to s\\nyn``) leaves each record
    one line of the log. A library's message laid out in lines (a table) and a traceback keep
    their lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        text = super().formatMessage(record)
        return breaks_escaped(text) if record.name.split(".")[0] == "octvideo" else text


def command_logging(level: int) -> None:
    """Lines of ``level`` and above to stderr in ``FORMAT`` (``_OneLineFormatter``), but for the
    result lines, which the command prints on stdout (``not_a_result``); nothing where the root
    logger has handlers already (``logging.basicConfig``)."""
    handler = logging.StreamHandler()  # stderr
    handler.addFilter(not_a_result)
    handler.setFormatter(_OneLineFormatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
