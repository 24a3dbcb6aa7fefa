"""``octvideo.data.limits``: the shared bounds refuse a value outside them, NaN included, in one
line naming the option and the bound, and let every value inside through."""

from __future__ import annotations

import pytest

from octvideo.data.limits import MAX_TIMEOUT, check_range, check_timeout


@pytest.mark.parametrize(
    ("timeout", "message"),
    [
        (0, "--timeout must be a number of seconds > 0, got 0"),
        (-1.5, "--timeout must be a number of seconds > 0, got -1.5"),
        (float("nan"), "--timeout must be a number of seconds > 0, got nan"),
        (86_401, "--timeout must be at most 86400 seconds (one day), got 86401"),
        (float("inf"), "--timeout must be at most 86400 seconds (one day), got inf"),
    ],
)
def test_a_timeout_outside_its_bound_is_refused_naming_it(timeout, message):
    with pytest.raises(ValueError) as caught:
        check_timeout(timeout)
    assert str(caught.value) == message


@pytest.mark.parametrize("timeout", [1e-4, 1, MAX_TIMEOUT])
def test_a_timeout_inside_its_bound_is_taken(timeout):
    check_timeout(timeout)


def test_a_range_refusal_shows_each_number_as_typed():
    with pytest.raises(ValueError) as caught:
        check_range("--frames", 10**23, 2, 1024)
    assert str(caught.value) == "--frames must be 2 to 1024, got 100000000000000000000000"
    with pytest.raises(ValueError, match=r"^--fps must be 0.5 to 60 fps, got nan$"):
        check_range("--fps", float("nan"), 0.5, 60, " fps")
