"""How a video's frames are turned for display: its display matrix as a right angle and a mirror.

A phone held upright stores landscape frames and a display matrix of 90 degrees; the frames a
model sees are the displayed ones. ``orientation_of`` reads a matrix as an ``Orientation`` (a
matrix that is not a right angle is ignored, as decord ignores it), ``display_matrix`` takes it
from a decoded PyAV frame, and ``rotate_tag_matrix`` from the ``rotate`` tag FFmpeg 4 wrote into
MKV. ``decord_turn`` is the turn decord applies by itself (it takes a mirror for a rotation), which
``octvideo.data.decoding`` undoes. Pure coordinate maths: no file is read here.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Orientation(NamedTuple):
    """How stored frames become displayed ones: swap rows and columns, then mirror.

    A right angle or a mirror of a display matrix is one of eight such turns (90 degrees
    clockwise: transpose, then mirror left-right). As a map of pixel coordinates, from the centre,
    it is the signed permutation matrix ``matrix()``: ``x' = m[0][0] x + m[0][1] y``,
    ``y' = m[1][0] x + m[1][1] y``.
    """

    transpose: bool = False
    mirror_x: bool = False  # left-right
    mirror_y: bool = False  # top-bottom

    def matrix(self) -> tuple[tuple[int, int], tuple[int, int]]:
        sx, sy = -1 if self.mirror_x else 1, -1 if self.mirror_y else 1
        return ((0, sx), (sy, 0)) if self.transpose else ((sx, 0), (0, sy))

    @classmethod
    def of_matrix(cls, m: tuple[tuple[int, int], tuple[int, int]]) -> Orientation:
        if m[0][0] == 0:
            return cls(True, m[0][1] < 0, m[1][0] < 0)
        return cls(False, m[0][0] < 0, m[1][1] < 0)

    def then(self, other: Orientation) -> Orientation:
        """This turn followed by ``other``."""
        a, b = self.matrix(), other.matrix()
        return Orientation.of_matrix(
            tuple(  # type: ignore[arg-type]
                tuple(sum(b[i][k] * a[k][j] for k in range(2)) for j in range(2)) for i in range(2)
            )
        )

    def inverse(self) -> Orientation:
        m = self.matrix()  # orthogonal: its inverse is its transpose
        return Orientation.of_matrix(((m[0][0], m[1][0]), (m[0][1], m[1][1])))

    def size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of a turned ``width`` x ``height`` frame."""
        return (height, width) if self.transpose else (width, height)

    def apply(self, frames: np.ndarray) -> np.ndarray:
        """Turn frames (..., H, W, C): a contiguous copy, or ``frames`` itself when unturned."""
        if self == Orientation():
            return frames
        if self.transpose:
            frames = frames.swapaxes(-3, -2)  # (..., W, H, C)
        if self.mirror_x:
            frames = frames[..., :, ::-1, :]
        if self.mirror_y:
            frames = frames[..., ::-1, :, :]
        return np.ascontiguousarray(frames)


UPRIGHT = Orientation()
# decord's turn for its rotation angle (degrees clockwise; its filter graph knows only these)
_DECORD_TURNS = {
    90: Orientation(True, True, False),
    180: Orientation(False, True, True),
    270: Orientation(True, False, True),
}


def display_matrix(frame: object) -> np.ndarray | None:
    """The 3x3 display matrix (16.16 fixed point, FFmpeg's layout) a decoded PyAV frame carries;
    None when it has none."""
    # looked up by name: iterating ``side_data`` gives the entries before PyAV 18.1.1, their
    # types from it on (a mapping's keys)
    data = getattr(frame, "side_data", {}).get("DISPLAYMATRIX")
    if data is None:
        return None
    matrix = np.frombuffer(bytes(data), dtype=np.int32)
    return matrix if matrix.size == 9 else None


def orientation_of(matrix: np.ndarray | None) -> Orientation:
    """The turn a display matrix asks for: a right angle and a mirror; upright for none, or for a
    matrix that is not a right angle (ignored, as decord ignores it)."""
    if matrix is None:
        return UPRIGHT
    a, b, c, d = (int(matrix[k]) for k in (0, 1, 3, 4))  # x' = a x + c y, y' = b x + d y
    if b == c == 0 and a != 0 and d != 0:
        return Orientation.of_matrix(((int(np.sign(a)), 0), (0, int(np.sign(d)))))
    if a == d == 0 and b != 0 and c != 0:
        return Orientation.of_matrix(((0, int(np.sign(c))), (int(np.sign(b)), 0)))
    return UPRIGHT


def decord_turn(matrix: np.ndarray | None) -> Orientation:
    """The turn decord 0.6 gives frames of this display matrix: FFmpeg 4's ``rotate`` angle
    (``-av_display_rotation_get``, printed with ``%g``, cut to a whole degree), by its filter
    graph for 90, 180 and 270 only. It sees no mirror: a left-right mirror is 180 degrees to it."""
    if matrix is None:
        return UPRIGHT
    m = matrix.astype(np.float64) / 65536.0
    scale0, scale1 = np.hypot(m[0], m[3]), np.hypot(m[1], m[4])
    if scale0 == 0 or scale1 == 0:
        return UPRIGHT
    angle = float(np.degrees(np.arctan2(m[1] / scale1, m[0] / scale0)))
    angle = float(f"{angle + 360 if angle < 0 else angle:g}") % 360
    return _DECORD_TURNS.get(int(angle), UPRIGHT)


def rotate_tag_matrix(tag: str | None) -> np.ndarray | None:
    """The display matrix of a ``rotate`` metadata tag (degrees clockwise, as FFmpeg 4 wrote it
    into MKV), which decord's FFmpeg 4 applies and PyAV's FFmpeg 7 does not; None for no tag, 0,
    or an angle that is not a right angle."""
    try:
        angle = int(tag or "0") % 360
    except ValueError:
        return None
    if angle not in _DECORD_TURNS:
        return None
    cos, sin = {90: (0, 1), 180: (-1, 0), 270: (0, -1)}[angle]
    a, b, c, d = cos, sin, -sin, cos  # x' = a x + c y, y' = b x + d y
    return np.array([a << 16, b << 16, 0, c << 16, d << 16, 0, 0, 0, 1 << 30], dtype=np.int32)
