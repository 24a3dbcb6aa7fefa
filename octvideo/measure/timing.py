"""Interleaved timing: the one implementation every benchmark and the study's cost measurement use.

Times are only comparable within one run: on a shared machine a median can move by 10% between
runs. The calls being compared therefore run back to back in rounds, one call each per round, and
a ratio is taken within each round (``ratio_stats``, ``spread_text``), so that a slow spell of the
machine slows both sides of it. The order within a round changes from round to round, so that no
call always runs first (or always follows the same one): ``"alternate"`` runs the calls in order
on even rounds and in reverse on odd ones, ``"rotate"`` starts round r at call r.

The clock is a parameter, so tests inject their own and no test depends on measured speed.

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049): the FLOPs savings that
these ratios hold the implementation to.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import torch

T = TypeVar("T")
Order = Literal["alternate", "rotate"]
ORDERS: tuple[Order, ...] = ("alternate", "rotate")


def round_order(count: int, round_index: int, order: Order = "alternate") -> list[int]:
    """The indices of ``count`` calls in the order round ``round_index`` runs them."""
    if order not in ORDERS:
        raise ValueError(f"order {order!r} is not one of {', '.join(ORDERS)}")
    indices = list(range(count))
    if order == "alternate":
        return indices if round_index % 2 == 0 else indices[::-1]
    shift = round_index % count if count else 0
    return indices[shift:] + indices[:shift]


def run_rounds(
    calls: Sequence[Callable[[], T]],
    *,
    repeats: int,
    warmup: int = 0,
    order: Order = "alternate",
) -> list[list[T]]:
    """What each call returns in each of ``repeats`` rounds: ``result[k][r]`` is call k in round
    r. Every call first runs ``warmup`` times, unrecorded (weight packing, allocator, kernels).

    For calls that measure themselves (a profile, a stage's times, a run with its own
    statistics); ``time_interleaved`` times plain calls.

    Raises:
        ValueError: ``repeats`` below 1 or an unknown ``order``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be 1 or more, got {repeats}")
    round_order(len(calls), 0, order)  # an unknown order fails before anything runs
    for call in calls:
        for _ in range(warmup):
            call()
    results: list[list[T]] = [[] for _ in calls]
    for r in range(repeats):
        for k in round_order(len(calls), r, order):
            results[k].append(calls[k]())
    return results


def time_interleaved(
    calls: Sequence[Callable[[], object]],
    *,
    repeats: int,
    warmup: int = 1,
    order: Order = "alternate",
    timer: Callable[[], float] = time.perf_counter,
) -> list[list[float]]:
    """Seconds of each call in each of ``repeats`` rounds: ``result[k][r]`` is call k in round r.

    A call on an accelerator must wait for its own work before it returns (``sync``), so that
    the clock stops when the work is done.
    """

    def timed(call: Callable[[], object]) -> Callable[[], float]:
        def run() -> float:
            start = timer()
            call()
            return timer() - start

        return run

    for call in calls:  # untimed: the clock is read only in the rounds
        for _ in range(warmup):
            call()
    return run_rounds([timed(c) for c in calls], repeats=repeats, order=order)


def sync(device: torch.device) -> None:
    """Waits for ``device``'s queued work (CUDA runs kernels asynchronously; a CPU does not)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """``a[i] / b[i]``: two calls' times within each interleaved round."""
    return [x / y for x, y in zip(a, b, strict=True)]


@dataclass(frozen=True)
class RatioStats:
    """A call's time against the baseline's, over the interleaved rounds.

    Attributes:
        median_s: median time of one call (in the unit of the times given: seconds as
            ``time_interleaved`` gives them).
        ratio: median of the per-round ratios (this call / the baseline, same round).
        ratio_min: smallest per-round ratio.
        ratio_max: largest per-round ratio.
    """

    median_s: float
    ratio: float
    ratio_min: float
    ratio_max: float


def ratio_stats(times: Sequence[Sequence[float]], baseline: int = 0) -> list[RatioStats]:
    """Per call of ``time_interleaved``'s result: its median time and its per-round ratios
    against call ``baseline`` (median, min, max)."""
    out = []
    for t in times:
        ratios = paired_ratios(t, times[baseline])
        out.append(
            RatioStats(statistics.median(t), statistics.median(ratios), min(ratios), max(ratios))
        )
    return out


def spread_text(ratios: Sequence[float]) -> str:
    """The per-round ratios as a median and a range: ``median 0.800, range 0.750-1.000 over 3
    rounds``."""
    return (
        f"median {statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f} "
        f"over {len(ratios)} rounds"
    )


def per_round_line(label: str, ratios: Sequence[float]) -> str:
    """``label``, then the rounds' ratios as a median and a range, as a sentence."""
    return f"{label}, per round: {spread_text(ratios)}."
