"""Readers for the ``predict_many`` tests, put in place of ``pipeline.read_input`` (and one of
``pipeline.keep_freed_memory``): decoders that hang, crash or answer at once, and workers that
report how they were set up.

A decoding worker starts from a fork server, not as a fork of the test process: what it runs
travels pickled by reference, so these are module-level functions (bound with
``functools.partial``; what they are bound to travels by value). A reader takes ``(predictor,
path, request, chunk)`` and yields the events of ``read_input``.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from octvideo.data import decoding
from octvideo.inference.pipeline import CLIPS, END, ERROR, OPEN, Event, InputHeader, read_input

Events = dict[str, list[Event]]  # each input's events, read beforehand by ``read_input``


def header(clips: int) -> InputHeader:
    """The ``OPEN`` event's header of an input of ``clips`` centre clips, 10 frames each."""
    return InputHeader(10 * clips, 10.0, float(clips), [], clips, 1)


def replay(events: Events, predictor, path: str, request, chunk: int) -> Iterator[Event]:
    """Hands over ``events[path]`` at once: no decoding whose speed could decide a test."""
    yield from events[path]


def hang_on(
    hanging: str, events: Events, predictor, path: str, request, chunk: int
) -> Iterator[Event]:
    """Replays ``events``, except that input ``hanging`` never opens."""
    if path == hanging:
        time.sleep(600)  # a decoder stuck in a loop
    yield from events[path]


def hang_at(
    hanging: str, number: int, events: Events, predictor, path: str, request, chunk: int
) -> Iterator[Event]:
    """Replays ``events``, except that input ``hanging`` stops before its event ``number``."""
    for index, event in enumerate(events[path]):
        if path == hanging and index == number:
            time.sleep(600)
        yield event


def crash_on(
    crashing: str, caller: int, predictor, path: str, request, chunk: int
) -> Iterator[Event]:
    """Reads for real, except that input ``crashing`` kills its process, which must not be the
    ``caller``."""
    if path == crashing:
        assert os.getpid() != caller, "only a worker may crash"
        faulthandler.disable()  # no stack dump of the crash in the test's output
        os.kill(os.getpid(), signal.SIGSEGV)  # what a decoder's bad pointer does
    yield from read_input(predictor, path, request, chunk)


def report_setup(predictor, path: str, request, chunk: int) -> Iterator[Event]:
    """Fails every input with the worker's torch and FFmpeg threads and niceness."""
    threads = f"{torch.get_num_threads()} and {decoding.PYAV_THREADS}"
    yield ERROR, f"threads {threads}, nice {os.nice(0)}"


def mark_kept() -> None:
    """Stands in for ``keep_freed_memory``: leaves a mark in the environment of its process."""
    os.environ["OCTVIDEO_TEST_KEPT"] = "yes"


def report_kept(predictor, path: str, request, chunk: int) -> Iterator[Event]:
    """Fails every input with whether ``mark_kept`` ran in this process."""
    yield ERROR, f"kept: {os.environ.get('OCTVIDEO_TEST_KEPT', 'no')}"


def report_parent(predictor, path: str, request, chunk: int) -> Iterator[Event]:
    """Fails every input with the worker's parent process."""
    yield ERROR, f"parent {os.getppid()}"


def one_clip_each(predictor, path: str, request, chunk: int) -> Iterator[Event]:
    """Every input (named by a number) is one clip of one view holding that number."""
    yield OPEN, header(1)
    yield CLIPS, torch.full((1, 3), float(path))
    yield END, None


def slow_long(started: str, predictor, path: str, request, chunk: int) -> Iterator[Event]:
    """Input "long" (6 clips) sends its clips only once input "short5" has been opened (the file
    ``started``); "short1" to "short8" are a clip each."""
    if path == "long":
        yield OPEN, header(6)
        while not Path(started).exists():  # a slow decoder
            time.sleep(0.01)
        for _ in range(3):
            yield CLIPS, torch.zeros(2, 3)
    else:
        if path == "short5":  # videos 1-4 are read: their views fill the bound
            Path(started).touch()
        yield OPEN, header(1)
        yield CLIPS, torch.zeros(1, 3)
    yield END, None
