"""Fixtures shared by several test folders: a small checkpoint in the format ``octvideo train``
writes (weights under ``model.``, metadata under ``hyper_parameters.meta``), the data tests' videos
(good, short and bad ones, encoded once with PyAV), the inference tests' videos (short, long,
odd-sized, with audio, variable frame rate, corrupt), and a loader for the scripts in tools/."""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from octvideo.checkpoint_meta import CheckpointMeta, ClipProtocol
from octvideo.config import ModelConfig
from octvideo.engine.checkpoint import atomic_save
from octvideo.network import build_network
from octvideo.signals import STOPS, restored
from tests.data.media_helpers import NUM_FRAMES, SHORT_FRAMES, encode
from tests.inference.media_helpers import encode as encode_clip

# The tests' tensors are tiny: one intra-op thread runs them about as fast as two, and on a busy
# machine (CI shares its cores) no test waits at an OpenMP barrier for a thread the kernel put
# aside. Commands that tests start as subprocesses get the same through the environment.
torch.set_num_threads(1)
os.environ["OMP_NUM_THREADS"] = "1"

# The tests of Ctrl-C send it to this process and expect Python's own handler, a terminal's: a test
# run started as a shell's background job (``pytest ... &`` in a script, without job control)
# starts with SIGINT ignored, in which every one of them saw its Ctrl-C do nothing (an ignored
# Ctrl-C is left ignored, as octvideo's commands must). Set before collection, so that the tests
# start with it and ``_stop_signals_restored`` puts it back after each.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

TOOLS = Path(__file__).resolve().parents[1] / "tools"
CLASSES = ["left", "right", "still"]
META = CheckpointMeta(
    model=ModelConfig(name="c2d_r18", num_classes=3, alpha=0.25, dropout=0.0, extra={"width": 8}),
    classes=tuple(CLASSES),
    clip=ClipProtocol(
        num_frames=4,
        sampling_rate=2,
        test_short_side=32,
        test_crop_size=32,
        test_num_clips=3,
        test_num_crops=3,
    ),
    name="tiny",
)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = build_network(META.model)
    with torch.no_grad():  # non-trivial BN statistics, so eval mode matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    atomic_save({"state_dict": state, "hyper_parameters": {"meta": META.to_dict()}}, path)
    return path


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> path of the test videos: good ones, a short one, and bad ones."""
    root = tmp_path_factory.mktemp("media")
    files = {
        "h264.mp4": encode(root / "h264.mp4", "libx264"),
        "mpeg4.avi": encode(root / "mpeg4.avi", "mpeg4"),
        "mjpeg.avi": encode(root / "mjpeg.avi", "mjpeg", pix_fmt="yuvj420p"),
        "vp9.webm": encode(root / "vp9.webm", "libvpx-vp9"),
        "odd.mkv": encode(root / "odd.mkv", "mpeg4", height=37, width=53),
        "short.mp4": encode(root / "short.mp4", "libx264", n=SHORT_FRAMES),
    }
    gaps = [40 if i % 3 else 120 for i in range(NUM_FRAMES - 1)]
    files["vfr.mp4"] = encode(root / "vfr.mp4", "libx264", pts_ms=np.cumsum([0, *gaps]).tolist())
    whole = files["h264.mp4"].read_bytes()
    (root / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    (root / "zero.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("this is not a video\n" * 50)
    for name in ("truncated.mp4", "zero.mp4", "text.mp4", "missing.mp4"):
        files[name] = root / name
    return files


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict_videos")
    gaps = [50 if i % 4 else 200 for i in range(39)]
    files = {
        "short": encode_clip(root / "short.mp4", 6),
        "long": encode_clip(root / "long.mp4", 95),  # 9.5 s at 10 fps
        "odd": encode_clip(root / "odd size.mp4", 20, height=37, width=53, codec="mpeg4"),
        "audio": encode_clip(root / "with_audio.mp4", 30, audio=True),
        "vfr": encode_clip(root / "vfr.mp4", 40, pts_ms=np.cumsum([0, *gaps]).tolist()),
    }
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    files["corrupt"] = corrupt
    return files


def _load_tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_tool():
    """``load_tool("bench")`` imports tools/bench.py (tools/ is not a package)."""
    return _load_tool


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """A tool's ``main(["--threads", "1"])`` sets torch's thread count for the whole process:
    restored after each test, so no test runs with what an earlier one left."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _stop_signals_restored():
    """The handlers of SIGINT, SIGTERM and SIGHUP and the exception hooks a test found are put
    back after it: a command's function called in-process (its ``print_last`` makes a stop
    signal do nothing, as the program exits next) or a test's own ``signal.signal`` would leave
    them to the next tests, which would run with Ctrl-C and SIGTERM doing nothing."""
    hooks = sys.excepthook, threading.excepthook
    with restored(*STOPS):
        yield
    sys.excepthook, threading.excepthook = hooks


@pytest.fixture(autouse=True)
def _logging_restored():
    """Each logger's level, filters, propagation and disabling, and each named logger's handlers,
    as a test found them, are put back after it: a level a test left on a library's logger
    (fvcore's, set to ERROR by a count) hid that library's lines from a later test on the same
    worker, in some orders only. A name that was only a parent of loggers (a placeholder, as
    "fvcore" was) is put back to a new logger's state. The root logger's handlers are pytest's
    own (one set per test phase) and are left to it."""

    def state(logger: logging.Logger) -> tuple:
        handlers = [] if logger is logging.root else list(logger.handlers)
        return logger.level, list(logger.filters), handlers, logger.propagate, logger.disabled

    def loggers() -> dict[str, logging.Logger | logging.PlaceHolder]:
        return dict(logging.root.manager.loggerDict, **{"": logging.root})

    fresh = (logging.NOTSET, [], [], True, False)
    kept = {k: state(x) if isinstance(x, logging.Logger) else fresh for k, x in loggers().items()}
    yield
    now = loggers()
    for name, was in kept.items():
        logger = now[name]
        if isinstance(logger, logging.Logger) and state(logger) != was:
            level, filters, handlers, propagate, disabled = was
            logger.setLevel(level)  # setLevel: the loggers' caches of it are cleared
            logger.filters[:] = filters
            if logger is not logging.root:
                logger.handlers[:] = handlers
            logger.propagate, logger.disabled = propagate, disabled
