"""Faulty encoders for the ``data prepare`` tests, injected in place of ``prepare.transcode``.

An encoding job starts from a fork server, not as a fork of the test process: what it runs travels
pickled by reference, so these are module-level functions (bound with ``functools.partial``), and
this module imports nothing heavy that a job would wait for.
"""

from __future__ import annotations

import os
import signal
import time

from octvideo.data.prepare import transcode


def killed_on(suffix: str, src: str, dst: str, short_side: int) -> float:
    """Encodes for real, except that a source ending in ``suffix`` kills its process."""
    if src.endswith(suffix):
        os.kill(os.getpid(), signal.SIGKILL)  # the OOM killer, or a decoder crash
    return transcode(src, dst, short_side)


def report_parent(src: str, dst: str, short_side: int) -> float:
    """Fails every video with the job's parent process as the error."""
    raise RuntimeError(f"parent {os.getppid()}")


def hangs_on(suffix: str, src: str, dst: str, short_side: int) -> float:
    """Encodes for real, except that a source ending in ``suffix`` never returns."""
    if src.endswith(suffix):
        time.sleep(600)  # a decoder stuck in a loop
    return transcode(src, dst, short_side)


def interrupts_caller(caller: int, src: str, dst: str, short_side: int) -> float:
    """Starts a part file as an encoder does, then Ctrl-C reaches ``caller`` while it encodes."""
    from octvideo.data.prepare import part_path

    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(part_path(src, dst), "wb") as part:
        part.write(b"half a video")
    os.kill(caller, signal.SIGINT)
    time.sleep(600)
    return 0
