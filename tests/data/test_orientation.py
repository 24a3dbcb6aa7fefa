"""Orientation: a display matrix read as a right angle and a mirror, the eight turns' algebra
(composition, inverse, size), the turn decord makes by itself, and the ``rotate`` tag's matrix.
The decoders' use of it (every decoder gives the displayed frames) is in test_decoding.py."""

from __future__ import annotations

import itertools

import av
import numpy as np
import pytest

from octvideo.data.orientation import (
    UPRIGHT,
    Orientation,
    decord_turn,
    display_matrix,
    orientation_of,
    rotate_tag_matrix,
)
from tests.data.media_helpers import TURNS, encode_turned, turned_pattern

EIGHT = [Orientation(*flags) for flags in itertools.product([False, True], repeat=3)]


def _matrix(a: float, b: float, c: float, d: float) -> np.ndarray:
    """A display matrix in FFmpeg's layout (16.16 fixed point; x' = a x + c y, y' = b x + d y)."""
    cells = [a, b, 0, c, d, 0]
    return np.array([round(v * 65536) for v in cells] + [0, 0, 1 << 30], dtype=np.int32)


@pytest.mark.parametrize("name", TURNS)
def test_a_display_matrix_turns_frames_as_they_are_displayed(name):
    turn, shown = TURNS[name]
    orientation = orientation_of(_matrix(*turn))
    frame = turned_pattern()
    expected = shown(frame)
    assert np.array_equal(orientation.apply(frame), expected)
    assert orientation.apply(frame[None]).shape == (1, *expected.shape)  # (T, H, W, C)
    assert orientation.size(96, 64) == (expected.shape[1], expected.shape[0])


@pytest.mark.parametrize(("first", "second"), list(itertools.product(EIGHT, EIGHT)))
def test_then_composes_turns_and_inverse_undoes_one(first, second):
    frame = turned_pattern(6, 10)
    both = first.then(second)
    assert np.array_equal(both.apply(frame), second.apply(first.apply(frame)))
    assert first.then(first.inverse()) == UPRIGHT
    assert Orientation.of_matrix(first.matrix()) == first


def test_no_matrix_or_one_that_is_no_right_angle_leaves_frames_upright():
    frame = turned_pattern()
    assert UPRIGHT.apply(frame) is frame
    tilted = _matrix(0.7071, 0.7071, -0.7071, 0.7071)  # 45 degrees
    for matrix in (None, tilted):
        assert orientation_of(matrix) == UPRIGHT
        assert decord_turn(matrix) == UPRIGHT


@pytest.mark.parametrize(
    ("name", "decords"),
    [("90", "90"), ("180", "180"), ("270", "270"), ("mirror", "180"), ("flip", "upright")],
)
def test_decord_turns_right_angles_and_takes_a_mirror_for_a_rotation(name, decords):
    assert decord_turn(_matrix(*TURNS[name][0])) == orientation_of(_matrix(*TURNS[decords][0]))


@pytest.mark.parametrize(
    ("tag", "name"), [("90", "90"), ("180", "180"), ("270", "270"), ("-90", "270")]
)
def test_a_rotate_tag_is_the_matrix_of_its_right_angle(tag, name):
    assert orientation_of(rotate_tag_matrix(tag)) == orientation_of(_matrix(*TURNS[name][0]))


@pytest.mark.parametrize("tag", [None, "", "0", "360", "45", "ninety"])
def test_a_rotate_tag_of_no_right_angle_gives_no_matrix(tag):
    assert rotate_tag_matrix(tag) is None


@pytest.mark.parametrize("turn", [TURNS["90"][0], None], ids=["90", "none"])
def test_a_decoded_frame_carries_its_display_matrix(tmp_path, turn):
    path = encode_turned(tmp_path / "turned.mp4", turn, n=1)
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        matrix = display_matrix(frame)
    if turn is None:
        assert matrix is None
    else:
        assert orientation_of(matrix) == orientation_of(_matrix(*turn))
