"""Faulty decoders for the ``data check`` tests, injected in place of ``check.check_one``.

A check worker starts from a fork server, not as a fork of the test process: what it runs travels
pickled by reference, so these are module-level functions (bound with ``functools.partial``), and
this module imports nothing heavy that a worker would wait for.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from octvideo.data.check import check_one


def crash_on(suffix: str, path: str, decoder: str) -> str:
    """Decodes for real, except that a file ending in ``suffix`` kills the worker."""
    if path.endswith(suffix):
        os.kill(os.getpid(), signal.SIGSEGV)  # what a decoder bug does to its process
    return check_one(path, decoder)


def hang_on(suffix: str, results: dict[str, str], path: str, decoder: str) -> str:
    """Answers from ``results`` at once, except that a file ending in ``suffix`` never returns."""
    if path.endswith(suffix):
        time.sleep(600)  # a decoder stuck in a loop
    return results[path]


def hang_first_time(suffix: str, marker: str, path: str, decoder: str) -> str:
    """Hangs on a file ending in ``suffix`` the first time (``marker`` remembers), else fine."""
    if path.endswith(suffix) and not Path(marker).exists():
        Path(marker).touch()
        time.sleep(600)
    return ""


def die_first_time(suffix: str, marker: str, path: str, decoder: str) -> str:
    """Aborts on a file ending in ``suffix`` the first time (``marker`` remembers), else fine."""
    if path.endswith(suffix) and not Path(marker).exists():
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGABRT)  # as decord's threaded decoder did once
    return ""


def parent_pid(path: str, decoder: str) -> str:
    """Reports the worker's parent process as the video's error."""
    return f"parent {os.getppid()}"
