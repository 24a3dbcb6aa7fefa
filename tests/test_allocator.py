"""The octvideo commands keep freed memory in glibc's heap: a tensor-sized block freed and
allocated again is not page-faulted in anew, and the user's own malloc settings win."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from octvideo import allocator

GLIBC = "glibc" in (allocator._confstr("CS_GNU_LIBC_VERSION") or "")

# Allocates, touches and frees 64 MiB (above glibc's largest dynamic mmap threshold, 32 MiB),
# then counts the minor page faults of doing it again. Transparent huge pages are turned off for
# the process (PR_SET_THP_DISABLE): where they are on ("always"), a fault maps 2 MiB or 4 KiB
# depending on how much contiguous memory is free, so the count would depend on the machine's
# free memory.
_FAULTS = """
import ctypes, resource, sys
from octvideo.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
libc = ctypes.CDLL("libc.so.6")
libc.prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
n = 64 << 20
def touch():
    p = libc.malloc(n)
    ctypes.memset(p, 1, n)
    libc.free(p)
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env = {k: v for k, v in env.items() if not k.startswith("MALLOC_")}
    env.pop("OCTVIDEO_MALLOC", None)
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_freed_memory_is_reused_without_page_faults() -> None:
    kept, faults = _faults("keep")
    assert kept == "True"
    assert faults < 1000  # 64 MiB is 16 384 pages of 4 KiB
    kept, faults = _faults("default")
    assert kept == "False"
    assert faults > 8000  # glibc's defaults: the block went back to the kernel


@pytest.mark.parametrize(
    "env",
    [
        {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"},
        {"MALLOC_TRIM_THRESHOLD_": "1"},
        {"MALLOC_MMAP_THRESHOLD_": "1"},
        {"OCTVIDEO_MALLOC": "default"},
    ],
)
def test_user_settings_win(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise AssertionError("mallopt must not be called")

    monkeypatch.setattr(allocator, "_glibc_mallopt", refuse)
    assert allocator.keep_freed_memory(env) is False
    assert allocator.user_settings(env) is ("OCTVIDEO_MALLOC" not in env)


def test_other_tunables_do_not_count_as_malloc_settings() -> None:
    assert not allocator.user_settings({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"})


def test_no_glibc_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_confstr", lambda name: None)
    assert allocator._glibc_mallopt() is None
    assert allocator.keep_freed_memory({}) is False
