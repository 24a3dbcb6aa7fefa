"""Keep freed memory in the process (glibc malloc), so that tensors are not page-faulted in anew.

With glibc's defaults, an allocation above the dynamic mmap threshold (at most 32 MiB) gets
fresh pages from the kernel and gives them back when freed; the next step's tensor of the same
size pays a minor page fault per 4 KiB page again. A CPU training step of I3D-R50 (batch 2,
8x224x224) took 344 993 faults and 2.76 s that way against 0 faults and 1.88 s with freed memory
kept (BENCHMARKS.md, fourth pass). The octvideo commands therefore raise the mmap
threshold to 1 GiB and the heap-trim threshold to 2 GiB for their own process with ``mallopt``,
as ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...:glibc.malloc.trim_threshold=...`` would at
start.

The cost is that the process keeps its peak heap until it exits. Nothing is changed where the
user has set glibc's malloc tunables or ``MALLOC_*_`` variables, or ``OCTVIDEO_MALLOC=default``,
or where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = (1 << 31) - 1  # mallopt takes an int
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def keep_freed_memory(environ: dict[str, str] | None = None) -> bool:
    """Sets glibc's mmap and trim thresholds as above; True where they were set.

    Args:
        environ: the environment to read the user's own settings from (``os.environ``).
    """
    env = os.environ if environ is None else environ
    if env.get("OCTVIDEO_MALLOC", "") == "default" or user_settings(env):
        return False  # the user's own allocator settings win
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    log.debug("glibc malloc: freed memory kept in the heap (%s)", "set" if ok else "refused")
    return ok


def user_settings(environ: dict[str, str] | None = None) -> bool:
    """Whether the environment sets glibc's malloc tunables itself."""
    env = os.environ if environ is None else environ
    return "glibc.malloc." in env.get("GLIBC_TUNABLES", "") or any(k in env for k in _USER_SETTINGS)


def _glibc_mallopt():
    """glibc's ``mallopt``, or None under another C library (musl, macOS) or none found."""
    if not hasattr(os, "confstr") or "glibc" not in (_confstr("CS_GNU_LIBC_VERSION") or ""):
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt


def _confstr(name: str) -> str | None:
    try:
        return os.confstr(name)
    except (ValueError, OSError):
        return None
