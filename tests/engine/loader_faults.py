"""Faulty decoding for the DataLoader-worker tests, injected in place of
``datamodule.start_loader_worker`` (a worker's ``worker_init_fn``).

A DataLoader worker starts from a fork server, not as a fork of the test process: a function
replaced in the test process does not reach it, and what it runs travels pickled by reference. So
the fault is a module-level function (bound with ``functools.partial``) that sets itself up in the
worker, and this module imports nothing the fork server has not imported already.
"""

from __future__ import annotations

import os
import signal
from functools import partial

from octvideo.data import datasets
from octvideo.data.workers import start_loader_worker


def crash_on(suffix: str, *setup) -> None:
    """A worker's ``worker_init_fn``: the real one (``setup`` are its arguments), then decoding
    for real, except that a file ending in ``suffix`` kills the worker."""
    start_loader_worker(*setup)
    datasets.decode_clip = partial(_decode_or_crash, suffix, datasets.decode_clip)


def _decode_or_crash(suffix: str, decode, path: str, *args, **kwargs):
    if path.endswith(suffix):
        os.kill(os.getpid(), signal.SIGSEGV)  # what a crashing FFmpeg does to a worker
    return decode(path, *args, **kwargs)
