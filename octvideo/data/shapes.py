"""Outlines the synthetic sets draw: asymmetric (no rotational symmetry), so that a turn shows.

The demo set (``octvideo.data.synth``) moves one of them per clip; the yardstick
(``octvideo.data.yardstick``) draws one as its partner. Both sets' clips depend on these points and
on their order (a clip draws an index into it).
"""

from __future__ import annotations

import numpy as np

# Outlines in units of the shape's half-size, y down.
SHAPES: dict[str, np.ndarray] = {
    "L": np.array([(-1, -1), (-0.3, -1), (-0.3, 0.4), (1, 0.4), (1, 1), (-1, 1)]),
    "arrow": np.array(
        [(-1, -0.35), (0.2, -0.35), (0.2, -0.9), (1, 0), (0.2, 0.9), (0.2, 0.35), (-1, 0.35)]
    ),
    "flag": np.array(
        [(-0.9, -1), (-0.5, -1), (-0.5, -0.6), (1, -0.3), (-0.5, 0.1), (-0.5, 1), (-0.9, 1)]
    ),
    "wedge": np.array([(-1, -1), (1, -0.2), (0.2, 0.2), (-0.2, 1)]),
}
