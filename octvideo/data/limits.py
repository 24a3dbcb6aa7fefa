"""Bounds on the numeric arguments of ``octvideo data synth | check | prepare``.

Every size, count and duration a user can type has a bound; a value outside it is refused in one
line that names the option and the bound, before any work or output: a slip of the keyboard must
not allocate more memory than the machine has (``data synth --frames``) or start a process per
video (``--workers``). The bounds sit far beyond any real use; each module keeps its own
(``synth.MAX_FRAMES``, ``decoding.MAX_DECODE_SHORT_SIDE``, ...), and the ones shared by several
commands live here. Worker processes are bounded by the machine as well:
``workers.check_worker_count`` takes ``WORKERS_PER_CORE`` per CPU core the command may run on,
under ``MAX_WORKERS``.
"""

from __future__ import annotations

from octvideo.argtypes import MAX_TIMEOUT  # seconds one video may take in check or prepare

# worker processes of ``data check`` / ``data prepare`` and a run's ``data.num_workers`` (DataLoader
# workers), whatever the machine: on 64 cores or more, this bound and not the cores' applies
MAX_WORKERS = 256


def check_range(option: str, value: float, low: float, high: float, unit: str = "") -> None:
    """Refuse ``value`` outside ``[low, high]`` (NaN included) in one line naming the bound.

    Raises:
        ValueError: ``{option} must be {low} to {high}{unit}, got {value}``.
    """
    if not low <= value <= high:
        raise ValueError(
            f"{option} must be {_show(low)} to {_show(high)}{unit}, got {_show(value)}"
        )


def check_timeout(timeout: float) -> None:
    """Refuse a ``--timeout`` (seconds one video may take) that is not above 0 and at most
    ``MAX_TIMEOUT`` (NaN included).

    Raises:
        ValueError: one line naming ``--timeout`` and the bound.
    """
    if not timeout > 0:
        raise ValueError(f"--timeout must be a number of seconds > 0, got {timeout:g}")
    if timeout > MAX_TIMEOUT:
        raise ValueError(
            f"--timeout must be at most {MAX_TIMEOUT:g} seconds (one day), got {timeout:g}"
        )


def _show(value: float) -> str:
    """``300``, ``0.5``, ``inf``: an int as typed (``:g`` would round 10**23), a float short."""
    return f"{value:g}" if isinstance(value, float) else str(value)
