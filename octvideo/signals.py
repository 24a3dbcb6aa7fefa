"""Signal handlers set for a block of code and put back after it, in the main thread only.

Python runs a signal's handler in the main thread and lets only that thread set one
(``signal.signal`` raises ``ValueError`` elsewhere). A command run in another thread (a test, a
notebook's worker thread) keeps the handlers it has: ``handler`` and ``restored`` do nothing
there. This module imports nothing of octvideo, so that every layer may use it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

# what ``signal.signal`` takes: a function, ``signal.SIG_DFL`` or ``signal.SIG_IGN``
Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers


def in_main_thread() -> bool:
    """Whether this is the main thread, the one thread where signal handlers can be set."""
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def restored(signum: int) -> Iterator[None]:
    """Puts back, when the block ends, the handler ``signum`` has when it begins, whatever the
    block (or a library it calls) sets in between. A handler that was not set from Python
    (``signal.getsignal`` gives None) cannot be put back: the default is, in its place."""
    if not in_main_thread():
        yield
        return
    previous = signal.getsignal(signum)
    try:
        yield
    finally:
        signal.signal(signum, signal.SIG_DFL if previous is None else previous)


@contextlib.contextmanager
def handler(signum: int, fn: Handler) -> Iterator[None]:
    """``fn`` handles ``signum`` inside the block, and the handler before it does again after.

    Example::

        with handler(signal.SIGINT, signal.SIG_IGN):  # Ctrl-C waits until the block ends
            start_the_server()
    """
    with restored(signum):
        if in_main_thread():
            signal.signal(signum, fn)
        yield
