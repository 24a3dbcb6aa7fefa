"""A call that fails its test past a deadline instead of hanging the suite."""

from __future__ import annotations

import threading


def run_with_deadline(seconds: float, function, *args, **kwargs):
    """``function(*args, **kwargs)``, failing the test (not hanging it) past ``seconds``."""
    result: dict = {}

    def target() -> None:
        try:
            result["value"] = function(*args, **kwargs)
        except BaseException as err:  # handed to the test below
            result["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"did not return within {seconds} s"
    if "error" in result:
        raise result["error"]
    return result["value"]
