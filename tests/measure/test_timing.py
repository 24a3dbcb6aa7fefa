"""Interleaved timing (octvideo.measure.timing), the one implementation the benchmarks and the
study share: the order of the calls in each round, warm-up, and per-round ratios, on an injected
clock (no real time is asserted)."""

from __future__ import annotations

import pytest

from octvideo.measure.timing import (
    paired_ratios,
    per_round_line,
    ratio_stats,
    round_order,
    run_rounds,
    spread_text,
    time_interleaved,
)


def test_interleaved_timing_alternates_order_and_takes_per_round_ratios():
    order = []
    clock_values = {"a": 1.0, "b": 3.0}
    now = [0.0]

    def timer() -> float:
        return now[0]

    def call(name):
        def run():
            order.append(name)
            now[0] += clock_values[name]

        return run

    times = time_interleaved([call("a"), call("b")], repeats=3, warmup=1, timer=timer)
    assert order == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-up, then a b / b a / a b
    assert times == [[1.0, 1.0, 1.0], [3.0, 3.0, 3.0]]
    base, other = ratio_stats(times, 0)
    assert base.ratio == 1.0
    assert (other.ratio, other.ratio_min, other.ratio_max, other.median_s) == (3.0, 3.0, 3.0, 3.0)


def test_zero_repeats_is_refused():
    with pytest.raises(ValueError, match="repeats must be 1 or more"):
        time_interleaved([lambda: None], repeats=0)
    with pytest.raises(ValueError, match="repeats must be 1 or more"):
        run_rounds([lambda: None], repeats=0)


def test_interleaved_rounds_alternate_their_order():
    seen: list[str] = []

    def case(name: str):
        def run() -> float:  # injected: a value by case and call, no real time
            seen.append(name)
            return {"a": 1.0, "b": 2.0, "c": 4.0}[name] * len(seen)

        return run

    results = run_rounds([case("a"), case("b"), case("c")], repeats=3)
    assert seen == ["a", "b", "c", "c", "b", "a", "a", "b", "c"]
    # each case's own value times its position in the whole sequence
    assert results == [[1.0, 6.0, 7.0], [4.0, 10.0, 16.0], [12.0, 16.0, 36.0]]


def test_rotated_rounds_start_one_call_later_each_round():
    assert [round_order(3, r, "rotate") for r in range(4)] == [
        [0, 1, 2],
        [1, 2, 0],
        [2, 0, 1],
        [0, 1, 2],
    ]
    assert [round_order(3, r) for r in range(3)] == [[0, 1, 2], [2, 1, 0], [0, 1, 2]]


def test_warmup_calls_are_not_recorded():
    calls = []

    def call() -> int:
        calls.append(1)
        return len(calls)

    assert run_rounds([call], repeats=2, warmup=3) == [[4, 5]]


def test_unknown_order_is_refused_before_anything_runs():
    ran = []
    with pytest.raises(ValueError, match="order 'shuffle' is not one of alternate, rotate"):
        run_rounds([lambda: ran.append(1)], repeats=1, warmup=1, order="shuffle")  # type: ignore[arg-type]
    assert ran == []


def test_ratios_are_taken_within_each_round():
    # the second round ran in a slow spell for the first call only
    times = [[0.8, 1.0, 0.9], [1.0, 1.0, 1.2]]
    assert paired_ratios(*times) == pytest.approx([0.8, 1.0, 0.75])
    other, base = ratio_stats(times, baseline=1)
    assert (base.ratio, base.ratio_min, base.ratio_max) == (1.0, 1.0, 1.0)
    assert other.median_s == 0.9
    assert (other.ratio, other.ratio_min, other.ratio_max) == pytest.approx((0.8, 0.75, 1.0))
    assert spread_text(paired_ratios(*times)) == "median 0.800, range 0.750-1.000 over 3 rounds"
    assert per_round_line("a / b", [2.0]) == (
        "a / b, per round: median 2.000, range 2.000-2.000 over 1 rounds."
    )
