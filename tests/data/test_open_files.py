"""``reserve_open_files``: the open-file limit, first raised to the hard one, holds the workers
that start, or is refused in one line; ``out_of_open_files`` finds EMFILE or ENFILE in the errors
an error came from; a forked worker out of open files exits and says so."""

from __future__ import annotations

import errno
import os
import resource
import sys

import pytest

from octvideo.data.open_files import (
    DATA_LOADER_OPEN_FILES,
    FORK_SERVER_OPEN_FILES,
    out_of_files_error,
    out_of_open_files,
    reserve_open_files,
    stop_forked_workers_out_of_files,
)
from octvideo.data.workers import check_worker_count


def fake_open_file_limit(monkeypatch, soft: int, hard: int) -> list[tuple[int, int]]:
    """Makes RLIMIT_NOFILE read ``(soft, hard)``; returns the list of limits then set."""
    real_get, set_to = resource.getrlimit, []

    def getrlimit(which: int) -> tuple[int, int]:
        if which != resource.RLIMIT_NOFILE:
            return real_get(which)
        return (set_to[-1][0] if set_to else soft), hard

    def setrlimit(which: int, limits: tuple[int, int]) -> None:
        assert which == resource.RLIMIT_NOFILE and limits[0] <= hard
        set_to.append(limits)

    monkeypatch.setattr(resource, "getrlimit", getrlimit)
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    return set_to


def test_a_soft_open_file_limit_below_the_hard_one_is_raised_to_it_for_workers(monkeypatch):
    set_to = fake_open_file_limit(monkeypatch, soft=20, hard=4096)
    reserve_open_files("--workers 0", 0, DATA_LOADER_OPEN_FILES)
    assert set_to == []  # no worker, no change
    assert check_worker_count("--workers", 2, low=1, cap=8) == 2
    assert set_to == []  # a count checked alone (a config's): no change
    reserve_open_files("--workers 2", 2, DATA_LOADER_OPEN_FILES)
    assert set_to == [(4096, 4096)]


@pytest.mark.parametrize(
    ("open_files", "needed"), [(DATA_LOADER_OPEN_FILES, 56), (FORK_SERVER_OPEN_FILES, 24)]
)
def test_an_open_file_limit_too_low_for_the_workers_is_refused_in_one_line(
    monkeypatch, open_files, needed
):
    # under `ulimit -n 20` PyTorch's loader hung for ever, its workers logging EMFILE at 9 MB/s
    fake_open_file_limit(monkeypatch, soft=20, hard=20)
    with pytest.raises(ValueError) as caught:
        reserve_open_files("--workers 8", 2, open_files)  # 8 asked, 2 to start (2 inputs)
    assert str(caught.value) == (
        f"the open-file limit 20 is too low for 2 workers (--workers 8); raise `ulimit -n` to at "
        f"least {needed} or use fewer workers"
    )


def test_out_of_open_files_is_found_in_the_errors_an_error_came_from():
    emfile = OSError(errno.EMFILE, "Too many open files")
    try:
        try:
            raise emfile
        except OSError:
            raise RuntimeError("DataLoader worker exited unexpectedly") from None
    except RuntimeError as err:
        assert out_of_open_files(err)  # `from None` hides the context, it still holds it
        assert out_of_files_error(err) is emfile
    enfile = OSError(errno.ENFILE, "Too many open files in system")
    assert out_of_open_files(enfile) and out_of_files_error(enfile) is enfile
    assert not out_of_open_files(OSError(errno.ENOENT, "No such file"))
    assert out_of_files_error(OSError(errno.ENOMEM, "Cannot allocate memory")) is None
    assert not out_of_open_files(RuntimeError("other"))


def test_a_forked_process_out_of_open_files_exits_and_its_caller_is_told():
    # multiprocessing's resource_sharer retries a failed accept for ever, reporting each failure
    # through sys.excepthook: a forked data-loader worker must exit instead
    before = sys.excepthook
    with stop_forked_workers_out_of_files() as ran_out:
        assert not ran_out()
        pid = os.fork()
        if pid == 0:  # the child: leaves by the hook's exit, or by this one
            try:
                error = OSError(errno.EMFILE, "Too many open files")
                sys.excepthook(OSError, error, None)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 1
        assert ran_out()
    assert sys.excepthook is before
