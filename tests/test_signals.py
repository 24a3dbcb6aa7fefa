"""``octvideo.signals``: a handler set for a block is the one in force inside it, the one before
is put back after, also when the block raises or sets another, and outside the main thread
nothing is set and nothing raises; once a command is finishing, a stop signal stops nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from octvideo.signals import (
    STOPS,
    deferred,
    finishing,
    handler,
    hangup_as_terminate,
    held_for_fork,
    ignore_stops,
    in_main_thread,
    restored,
)

SIGNUM = signal.SIGUSR1  # one that pytest and the commands leave alone


def _process_state() -> list[object]:
    """The stop signals' handlers and the exception hooks: what every test of the process shares."""
    return [*(signal.getsignal(signum) for signum in STOPS), sys.excepthook, threading.excepthook]


# as the tests were collected, before any of them ran
_AT_COLLECTION = _process_state()


def _before(signum: int, frame: object) -> None:
    """The handler a caller had before the block."""


def _inside(signum: int, frame: object) -> None:
    """The handler of the block."""


@pytest.fixture(autouse=True)
def _caller_handler():
    previous = signal.signal(SIGNUM, _before)
    yield
    signal.signal(SIGNUM, previous)


def test_a_handler_is_in_force_inside_its_block_and_the_one_before_after_it():
    with handler(SIGNUM, _inside):
        assert signal.getsignal(SIGNUM) is _inside
    assert signal.getsignal(SIGNUM) is _before


def test_the_handler_before_is_put_back_when_the_block_raises():
    with pytest.raises(KeyError), handler(SIGNUM, signal.SIG_IGN):
        raise KeyError("the block failed")
    assert signal.getsignal(SIGNUM) is _before


def test_restored_puts_back_the_handler_a_block_replaced():
    # as Lightning's loops leave their own SIGINT handler in place when they stop
    with restored(SIGNUM):
        signal.signal(SIGNUM, _inside)
    assert signal.getsignal(SIGNUM) is _before


def test_a_handler_set_outside_python_gives_way_to_the_default(monkeypatch):
    monkeypatch.setattr(signal, "getsignal", lambda signum: None)  # as for a C library's handler
    with handler(SIGNUM, _inside):
        pass
    monkeypatch.undo()
    assert signal.getsignal(SIGNUM) is signal.SIG_DFL


def test_outside_the_main_thread_no_handler_is_set_and_nothing_raises():
    seen: list[object] = []

    def in_a_thread() -> None:
        seen.append(in_main_thread())
        with handler(SIGNUM, _inside), restored(signal.SIGINT):
            seen.append(signal.getsignal(SIGNUM))

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert seen == [False, _before]
    assert in_main_thread()


def _run_script(body: str) -> subprocess.Popen[str]:
    code = f"import atexit, sys, time\nfrom octvideo.signals import exit_now\n{body}"
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a terminal's process: a background job starts with SIGINT ignored, one under nohup
        # (or a CI runner started by it) with SIGHUP ignored
        preexec_fn=_terminal_signals,
    )


def _terminal_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def test_exit_now_runs_the_exit_functions_flushes_and_ends_with_the_status():
    script = _run_script(
        "atexit.register(lambda: print('exit function ran'))\n"
        "sys.stdout.write('work done; ')\n"  # no newline: only a flush writes it
        "exit_now(5)\n"
    )
    out, err = script.communicate(timeout=60)
    assert (script.returncode, out, err) == (5, "work done; exit function ran\n", "")


def test_exit_now_skips_the_teardown_of_the_modules_objects():
    # what torch's objects take up to seconds for, one by one, at the interpreter's own exit
    script = _run_script(
        "class Slow:\n"
        "    def __del__(self):\n"
        "        print('torn down')\n"
        "kept = Slow()\n"
        "exit_now(0)\n"
    )
    out, err = script.communicate(timeout=60)
    assert (script.returncode, out, err) == (0, "", "")


@pytest.fixture
def sighup_default():
    """SIGHUP at its default, as in a terminal's process (not under nohup), put back after."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGHUP, previous)


def test_sighup_does_what_sigterm_does_inside_the_block(sighup_default):
    # by default SIGHUP (the terminal closed) ended a command at once, its temporary files left
    seen = []
    with handler(signal.SIGTERM, lambda signum, frame: seen.append(signum)):
        with hangup_as_terminate():
            os.kill(os.getpid(), signal.SIGHUP)
            # the handler runs in the main thread at its next check; a call makes one
            sum(range(10))
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
    assert seen == [signal.SIGTERM]


def test_an_ignored_sighup_stays_ignored(sighup_default):
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup
    with hangup_as_terminate():
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_while_the_process_exits_ends_it_with_its_status(signum):
    # an exit function that waits (a worker pool shutting down): the signal lands in it
    script = _run_script(
        "atexit.register(lambda: (print('exiting', flush=True), time.sleep(120)))\nexit_now(3)\n"
    )
    assert script.stdout is not None
    assert script.stdout.readline() == "exiting\n"
    script.send_signal(signum)
    _, err = script.communicate(timeout=60)
    # not killed by the signal's default action, nor a KeyboardInterrupt in the exit function
    assert (script.returncode, err) == (3, "")


class _Stopped(Exception):
    """What the caller's handlers of the stop signals raise."""


def _stop(signum: int, frame: object) -> None:
    raise _Stopped(signum)


@pytest.fixture
def stop_handlers():
    """SIGINT, SIGTERM and SIGHUP raise ``_Stopped`` (none kills the test's process), put back
    after."""
    previous = {signum: signal.signal(signum, _stop) for signum in STOPS}
    yield
    for signum, fn in previous.items():
        signal.signal(signum, fn)


@pytest.mark.parametrize("signum", STOPS, ids=[signum.name for signum in STOPS])
def test_once_finishing_a_stop_signal_stops_nothing_and_restored_puts_them_back(
    stop_handlers, signum
):
    # a Ctrl-C after a command's last line, as its objects were freed, printed a traceback
    with restored(*STOPS):
        finishing()
        signal.raise_signal(signum)
        sum(range(10))  # the handler runs in the main thread at its next check; a call makes one
    assert [signal.getsignal(signum) for signum in STOPS] == [_stop] * len(STOPS)
    with pytest.raises(_Stopped):  # the caller's handlers answer again
        signal.raise_signal(signum)
        sum(range(10))


def test_finishing_leaves_an_ignored_sighup_ignored(stop_handlers):
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup
    with restored(*STOPS):
        finishing()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN


def test_finishing_outside_the_main_thread_sets_nothing(stop_handlers):
    errors: list[BaseException] = []

    def in_a_thread() -> None:
        try:
            finishing()
        except BaseException as err:  # noqa: BLE001 - the assertion below names it
            errors.append(err)

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert errors == []
    assert [signal.getsignal(signum) for signum in STOPS] == [_stop] * len(STOPS)


@pytest.mark.parametrize("signum", STOPS, ids=[signum.name for signum in STOPS])
def test_a_stop_signal_inside_deferred_reaches_the_handler_as_the_block_ends(stop_handlers, signum):
    # a Ctrl-C between starting an encoder and recording it left the encoder running
    done = []
    with pytest.raises(_Stopped), deferred():
        signal.raise_signal(signum)
        sum(range(10))  # where the handler would run: it is held
        done.append("second half")
    assert done == ["second half"]
    assert [signal.getsignal(signum) for signum in STOPS] == [_stop] * len(STOPS)


def test_deferred_without_a_signal_raises_nothing(stop_handlers):
    with deferred():
        sum(range(10))
    assert [signal.getsignal(signum) for signum in STOPS] == [_stop] * len(STOPS)


def test_a_stop_signal_held_by_deferred_is_raised_when_the_block_fails(stop_handlers):
    # SIGTERM to a process group killed the fork server too: the job's start failed, and the
    # held signal was lost behind an EOFError traceback
    with pytest.raises(_Stopped) as caught, deferred():
        signal.raise_signal(signal.SIGTERM)
        sum(range(10))
        raise EOFError("the fork server died of the same signal")
    assert isinstance(caught.value.__context__, EOFError)


def test_a_test_that_leaves_the_stop_signals_changed():
    # as a command's function called in-process does (``print_last``), or a test of its own
    finishing()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sys.excepthook = threading.excepthook = lambda *args: None
    assert _process_state() != _AT_COLLECTION


def test_the_next_test_starts_with_the_handlers_the_tests_were_collected_with():
    # the test before left Ctrl-C, SIGTERM and SIGHUP doing nothing; tests/conftest.py puts
    # them back, so no test runs with what an earlier one left (in the order the file gives)
    assert _process_state() == _AT_COLLECTION


def test_ctrl_c_raises_keyboard_interrupt_in_a_test():
    # what the tests that stop a command with Ctrl-C send this process
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def _background_job() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as ``cmd &`` in a script starts cmd


def test_a_test_run_started_as_a_background_job_still_gets_ctrl_c():
    # its tests of Ctrl-C saw it do nothing: "DID NOT RAISE Interrupted", status 0 for 130
    test = f"{__file__}::test_ctrl_c_raises_keyboard_interrupt_in_a_test"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        preexec_fn=_background_job,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_stop_sent_to_a_worker_as_it_forks_waits_until_it_ignores_stops():
    # a DataLoader worker forked as the group got SIGTERM died of it before it could ignore it
    with held_for_fork():
        pid = os.fork()
        if pid == 0:  # the worker: the group's stops reach it before it has set anything
            for signum in STOPS:
                os.kill(os.getpid(), signum)
            ignore_stops()
            os.kill(os.getpid(), signal.SIGTERM)  # and after, ignored too
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0  # exited 0, not killed by a signal


_CHILD = """
import os, signal, sys, time
from octvideo.signals import end_with_parent
end_with_parent(int(sys.argv[2]))
def ended(signum, frame):
    open(sys.argv[1] + ".tmp", "w").write(signal.Signals(signum).name)
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    os._exit(0)
signal.signal(signal.SIGTERM, ended)
print("ready", flush=True)
time.sleep(600)
"""

_PARENT = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2], str(__import__("os").getpid())])
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_command_told_to_end_with_its_parent_gets_sigterm_when_it_is_killed(tmp_path):
    # a sweep's run went on, an orphan, after the sweep was killed (SIGKILL)
    mark = tmp_path / "ended"
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, _CHILD, str(mark)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout.readline() == "ready\n"  # the child's, through the same pipe
    finally:
        parent.kill()
        parent.wait()
    assert parent.stdout.read() == ""  # the child has exited: the pipe's last writer is gone
    assert mark.read_text() == "SIGTERM"


def test_a_command_whose_parent_has_ended_already_stops_at_once():
    done = subprocess.run(
        [sys.executable, "-c", "from octvideo.signals import end_with_parent; end_with_parent(1)"],
        timeout=120,
    )
    assert done.returncode == (-signal.SIGTERM if sys.platform.startswith("linux") else 0)
