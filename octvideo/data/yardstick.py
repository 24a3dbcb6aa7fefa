"""The yardstick action set: twelve classes told apart only by how things move, under nuisances.

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049): on this set
``octvideo sweep`` compares the Oct-I3D variants of the paper's Table 8, weighing an octave
network's accuracy against its savings (the set itself is octvideo's). The demo set
(``octvideo.data.synth``) is solved by every model; this one is tuned for the vanilla reference
(``configs/study/i3d_r18_yardstick.yaml``: I3D ResNet-18, width 16, alpha 0) to land between 55%
and 85% video top-1 within the study's budget (not solved, not chance), and it asks for what octave
convolution trades away: spatial detail (a small texture turning) and temporal order. What the
reference reaches, and the alpha study on the set, are in docs/study.md ("The yardstick set").

Every clip shows the same cast, drawn from the same law in every class: an *actor* (a large shape
with a small four-sector textured disc, its *part*, inside it), a *partner* (a smaller plain
shape), one to three *distractors* (small discs moving in straight lines of their own), a
textured, cluttered background, and in half the clips an occluding bar. The class says which of
them moves and how; everything else holds still (the camera aside). The classes, in label order::

     0 slide_slow          the actor slides in a straight line, slowly
     1 slide_fast          the same, SPEED_RATIO times as fast (same start, same direction law)
     2 oscillate           the actor slides back and forth along a line (1.5-2 periods), at
                           slide_fast's speed: periodic vs one-way
     3 turn_cw             the actor turns clockwise (180-260 degrees in a clip)
     4 turn_ccw            ... anticlockwise
     5 rock                the actor turns back and forth (1.5-2 periods) at a turn's rate:
                           periodic vs one-way
     6 part_cw             the actor holds still; only its small textured part turns clockwise
     7 part_ccw            ... anticlockwise
     8 actor_hops_first    the actor hops (up and back down), then the partner hops
     9 partner_hops_first  the partner hops, then the actor: the order of two events
    10 approach            actor and partner move towards each other and stop side by side
    11 pass                they move the same way but do not stop: they pass side by side
                           and go on

Why one frame cannot tell them: every class makes the same draws in the same order and plays
none of its motion at time 0, so with the same draws the first frame is the same picture in all
twelve classes (a test pins it). A later frame shows the same kinds of things at other places and
angles: a pose, never a velocity. The actor's orientation and its part's angle are uniform, so a
turned actor looks like any other; positions along a slide, an oscillation or an approach are
positions the start law also produces; a hop's top is an actor a little higher; the two hop
classes, and the two pair classes up to their stop, differ only in when things happen. Only the
change between frames, its rate, its direction, its reversals and its order carry the class, and
the same change at another place (a distractor, the camera) carries none.

Nuisances, drawn per clip from one law for every class: a background of gratings and 8-16
cluttered shapes; a camera that pans (up to PAN of the side over the clip, per axis) and shakes
(SHAKE of the side per frame); distractors whose straight-line speeds span the slides' speeds; an
occluding bar (half the clips); an illumination ramp (gain 0.7-1.3 at each end); Gaussian blur
(sigma up to BLUR pixels at 64 px); per-pixel noise (NOISE); H.264 at x264's default CRF 23: about
31 kbit/s at 64x64 and 8 fps, 0.94 bit a pixel (web video at 360p gets about 0.1, but at 64 pixels
the noise and the part's texture are most of the picture). Frames are drawn at twice the size and
averaged down, so sub-pixel motion moves edges smoothly.

The output's layout, determinism and bounds are the demo set's (``octvideo.data.synth``): clip
``n`` of a split draws from ``numpy.random.default_rng([seed, split, n])``, x264 runs
single-threaded without MB-tree, files are written atomically and the lists last.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from octvideo.data.shapes import SHAPES

CLASSES = (
    "slide_slow",
    "slide_fast",
    "oscillate",
    "turn_cw",
    "turn_ccw",
    "rock",
    "part_cw",
    "part_ccw",
    "actor_hops_first",
    "partner_hops_first",
    "approach",
    "pass",
)
# The fine-grained pairs: (class, class, what only the motion tells apart).
PAIRS = (
    ("slide_slow", "slide_fast", "speed"),
    ("slide_fast", "oscillate", "periodic vs one-way"),
    ("turn_cw", "rock", "periodic vs one-way"),
    ("actor_hops_first", "partner_hops_first", "order of two events"),
    ("approach", "pass", "approach vs pass"),
    ("part_cw", "part_ccw", "a small textured part moving inside a still object"),
)

# Difficulty knobs. Lengths are shares of the frame side, angles degrees over the whole clip.
SLOW_TRAVEL = (0.16, 0.22)  # distance the slow slide covers in a clip
SPEED_RATIO = 2.5  # slide_fast / slide_slow (and oscillate's path length)
PERIODS = (1.5, 2.0)  # oscillate and rock: periods in a clip
TURN = (180.0, 260.0)  # turn_cw / turn_ccw (rock turns at the same rate)
PART_TURN = (180.0, 270.0)  # part_cw / part_ccw: the part's turn (4 sectors, 3 colours)
HOP = 0.3  # a hop's duration, as a share of the clip
HOP_HEIGHT = (0.10, 0.15)
PAIR_DISTANCE = (0.30, 0.38)  # actor to partner along their axis at the start
PAN = 0.04  # camera pan over the clip, per axis, at most
SHAKE = 0.006  # camera shake per frame (standard deviation)
DISTRACTOR_TRAVEL = (0.05, 0.45)
BLUR = 0.8  # Gaussian blur sigma at most, in pixels of a 64-pixel frame
NOISE = (2.0, 5.0)  # per-pixel noise standard deviation
GAIN = (0.7, 1.3)  # illumination at the start and at the end of a clip, linear between
CRF = 23  # H.264 constant rate factor (x264's default is 23; higher is coarser)
NUM_TRAIN = 600  # default clip counts of ``data synth --preset yardstick``
NUM_VAL = 240

SUPERSAMPLE = 2
ACTOR_SIZE = (0.15, 0.19)  # half-size of the actor
PART_SIZE = 0.5  # the part's radius, as a share of the actor's half-size
PARTNER_SIZE = (0.08, 0.11)
DISTRACTOR_SIZE = (0.03, 0.045)
# Actor bodies: outlines in units of the half-size, none with a rotational symmetry, each holding
# a disc of radius PART_SIZE around its origin (the hub the part turns on).
BODIES: dict[str, np.ndarray] = {
    "house": np.array([(-1, 1), (1, 1), (1, -0.15), (0, -1.1), (-1, -0.15)]) - (0, 0.2),
    "tab": np.array([(-1, -0.7), (0.1, -0.7), (0.3, -1.2), (0.9, -1.2), (1, 0.7), (-1, 0.7)]),
    "arrow": np.array([(-1, -0.75), (0.35, -0.75), (1.15, 0), (0.35, 0.75), (-1, 0.75)])
    + (
        0.05,
        0,
    ),
    "kite": np.array([(-1.1, 0), (-0.2, -0.8), (1, -0.6), (0.8, 0.7), (-0.2, 0.9)]),
}


def _triangle(x: float) -> float:
    """A triangle wave of period 2: 0 at 0, 1 at 1, 0 at 2."""
    x = x % 2.0
    return x if x <= 1.0 else 2.0 - x


def _hop(tau: float, start: float, height: float) -> float:
    """Upward offset of a hop that starts at clip time ``start`` (a share of the clip)."""
    s = (tau - start) / HOP
    return height * math.sin(math.pi * s) if 0.0 <= s <= 1.0 else 0.0


def _colour(rng: np.random.Generator, low: int, high: int) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(low, high, 3))


def _background(rng: np.random.Generator, side: int, size: int) -> Image.Image:
    """A textured, cluttered canvas ``side`` pixels square (supersampled; ``size`` is the output
    frame side the scales refer to)."""
    base = rng.integers(30, 100, 3).astype(np.float32)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / SUPERSAMPLE
    canvas = np.broadcast_to(base, (side, side, 3)).copy()
    for _ in range(2):  # two gratings: period 3-12 px of the output frame, any orientation
        period = rng.uniform(3.0, 12.0) * size / 64
        angle = rng.uniform(0, math.pi)
        phase = rng.uniform(0, 2 * math.pi)
        wave = np.sin(2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle)) / period + phase)
        canvas += wave[..., None] * rng.uniform(6, 18, 3).astype(np.float32)
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(8, 17))):  # clutter: still rectangles and ellipses
        w, h = rng.uniform(0.05, 0.2, 2) * size * SUPERSAMPLE
        x, y = rng.uniform(0, side, 2)
        fill = tuple(int(c) for c in np.clip(base + rng.uniform(-45, 45, 3), 0, 255))
        box = (x - w, y - h, x + w, y + h)
        (draw.rectangle if rng.uniform() < 0.5 else draw.ellipse)(box, fill=fill)
    return image


def _polygon(outline: np.ndarray, centre: np.ndarray, half: float, angle: float) -> list:
    """Points of ``outline`` turned by ``angle`` (radians, clockwise on screen: y points down),
    scaled by ``half`` and moved to ``centre``."""
    c, s = math.cos(angle), math.sin(angle)
    points = outline @ np.array([[c, -s], [s, c]]).T * half + centre
    return [tuple(p) for p in points]


def _inward_direction(rng: np.random.Generator, start: np.ndarray, travel: float, size: int):
    """A unit vector: the first of 16 uniform directions whose path of length ``travel`` from
    ``start`` ends inside the frame's middle (0.15-0.85 of the side), else the one ending
    nearest the centre. Draws 16 angles whatever the outcome, so later draws do not shift."""
    angles = rng.uniform(0, 2 * math.pi, 16)
    ends = start + travel * np.stack([np.cos(angles), np.sin(angles)], 1)
    inside = np.all((ends > 0.15 * size) & (ends < 0.85 * size), axis=1)
    pick = (
        int(np.argmax(inside)) if inside.any() else int(np.argmin(np.abs(ends - size / 2).sum(1)))
    )
    return np.array([math.cos(angles[pick]), math.sin(angles[pick])])


def iter_clip(label: int, size: int, frames: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Draw one clip of class ``label``, a frame at a time: ``frames`` uint8 (size, size, 3).

    Every class makes the same draws in the same order (``_draw_scene``, then one noise draw per
    frame), so the scene's law does not depend on the class; the class only chooses which drawn
    motion is played (``_pose``).
    """
    name = CLASSES[label]
    scene = _draw_scene(rng, size, frames)
    steps = max(frames - 1, 1)
    for t in range(frames):
        tau = t / steps
        yield _render(scene, t, tau, _pose(name, tau, scene), rng)


@dataclass(frozen=True)
class _Scene:
    """Every draw of one clip but its per-frame noise: the scene, the motions each class may
    play, and the nuisances. Lengths are in pixels of the output frame, angles in radians."""

    size: int
    margin: int  # canvas border the camera may pan and shake into
    background: Image.Image  # supersampled, (size + 2 * margin) * SUPERSAMPLE square
    pan: np.ndarray  # (2,) camera travel over the clip
    shake: np.ndarray  # (frames, 2) camera offset per frame
    body: np.ndarray  # the actor's outline
    actor_half: float
    actor_colour: tuple[int, int, int]
    part_colours: list[tuple[int, int, int]]  # the part's four sectors
    partner: np.ndarray  # the partner's outline
    partner_half: float
    partner_colour: tuple[int, int, int]
    axis: np.ndarray  # unit vector the pair classes move actor and partner along
    distance: float  # actor to partner along the axis at the start
    actor0: np.ndarray
    partner0: np.ndarray
    actor_angle0: float
    part_angle0: float
    partner_angle: float
    slow: float  # slide_slow's travel over the clip
    fast: float  # slide_fast's, and oscillate's path length
    direction: np.ndarray  # unit vector of the slides and the oscillation
    periods: float  # oscillate and rock
    turn: float  # turn_cw / turn_ccw over the clip (rock turns at its rate)
    part_turn: float
    rock_sign: float
    first_hop: float  # start of the first and the second hop, shares of the clip
    second_hop: float
    hop_height: float
    meet: float  # approach: along-axis gap left when they stop, share of distance
    d_pos: np.ndarray  # distractors: (count, 2) start positions
    d_vel: np.ndarray  # (count, 2) travel over the clip
    d_half: np.ndarray  # (count,)
    d_colour: list[tuple[int, int, int]]
    occluded: bool
    bar_vertical: bool
    bar_at: float
    bar_half: float
    bar_colour: tuple[int, int, int]
    gain0: float  # illumination at the start and at the end of the clip
    gain1: float
    blur: float  # Gaussian blur sigma, in output pixels
    noise: float  # per-pixel noise standard deviation


def _draw_scene(rng: np.random.Generator, size: int, frames: int) -> _Scene:
    """The clip's draws, whatever its class, in an order that must not change (a changed order
    changes every yardstick clip)."""
    # -- the scene: background, camera, cast
    margin = int(math.ceil((PAN + 4 * SHAKE) * size)) + 2
    background = _background(rng, (size + 2 * margin) * SUPERSAMPLE, size)
    pan = rng.uniform(-PAN, PAN, 2) * size
    shake = np.clip(rng.normal(0, SHAKE * size, (frames, 2)), -3 * SHAKE * size, 3 * SHAKE * size)
    body = BODIES[list(BODIES)[rng.integers(len(BODIES))]]
    actor_half = rng.uniform(*ACTOR_SIZE) * size
    actor_colour = _colour(rng, 120, 256)
    part_colours = [_colour(rng, 0, 70), _colour(rng, 170, 256), _colour(rng, 0, 70)]
    part_colours.insert(3, _colour(rng, 170, 256))  # sectors: dark, bright, dark, other bright
    partner = SHAPES[list(SHAPES)[rng.integers(len(SHAPES))]]
    partner_half = rng.uniform(*PARTNER_SIZE) * size
    partner_colour = _colour(rng, 120, 256)
    # actor and partner: on an axis at a random angle, side by side across it (the pair classes
    # move them along it and they pass without touching)
    axis_angle = rng.uniform(0, 2 * math.pi)
    axis = np.array([math.cos(axis_angle), math.sin(axis_angle)])
    across = np.array([-axis[1], axis[0]]) * rng.choice([-1.0, 1.0])
    distance = rng.uniform(*PAIR_DISTANCE) * size
    offset = (actor_half + partner_half) * 1.05
    middle = rng.uniform(0.4, 0.6, 2) * size
    actor0 = middle - (distance * axis + offset * across) / 2
    partner0 = middle + (distance * axis + offset * across) / 2
    actor_angle0 = rng.uniform(0, 2 * math.pi)
    part_angle0 = rng.uniform(0, 2 * math.pi)
    partner_angle = rng.uniform(0, 2 * math.pi)
    # -- the motions each class may play
    slow = rng.uniform(*SLOW_TRAVEL) * size
    fast = SPEED_RATIO * slow
    direction = _inward_direction(rng, actor0, fast, size)
    periods = rng.uniform(*PERIODS)
    turn = math.radians(rng.uniform(*TURN))
    part_turn = math.radians(rng.uniform(*PART_TURN))
    rock_sign = rng.choice([-1.0, 1.0])
    first_hop = rng.uniform(0.05, 0.2)
    second_hop = rng.uniform(0.55, 1.0 - HOP)
    hop_height = rng.uniform(*HOP_HEIGHT) * size
    meet = rng.uniform(0.0, 0.3)
    # -- distractors, occluder, photometry
    count = int(rng.integers(1, 4))
    d_pos = rng.uniform(0.1, 0.9, (count, 2)) * size
    d_angle = rng.uniform(0, 2 * math.pi, count)
    d_travel = rng.uniform(*DISTRACTOR_TRAVEL, count) * size
    d_vel = d_travel[:, None] * np.stack([np.cos(d_angle), np.sin(d_angle)], 1)
    d_half = rng.uniform(*DISTRACTOR_SIZE, count) * size
    d_colour = [_colour(rng, 100, 256) for _ in range(count)]
    occluded = rng.uniform() < 0.5
    bar_vertical = rng.uniform() < 0.5
    bar_at = rng.uniform(0.15, 0.85) * size
    bar_half = rng.uniform(0.04, 0.07) * size
    bar_colour = _colour(rng, 0, 256)
    gain0, gain1 = rng.uniform(*GAIN, 2)
    blur = rng.uniform(0, BLUR) * size / 64
    noise = rng.uniform(*NOISE)
    return _Scene(
        size=size, margin=margin, background=background, pan=pan, shake=shake, body=body,
        actor_half=actor_half, actor_colour=actor_colour, part_colours=part_colours,
        partner=partner, partner_half=partner_half, partner_colour=partner_colour, axis=axis,
        distance=distance, actor0=actor0, partner0=partner0, actor_angle0=actor_angle0,
        part_angle0=part_angle0, partner_angle=partner_angle, slow=slow, fast=fast,
        direction=direction, periods=periods, turn=turn, part_turn=part_turn, rock_sign=rock_sign,
        first_hop=first_hop, second_hop=second_hop, hop_height=hop_height, meet=meet, d_pos=d_pos,
        d_vel=d_vel, d_half=d_half, d_colour=d_colour, occluded=occluded,
        bar_vertical=bar_vertical, bar_at=bar_at, bar_half=bar_half, bar_colour=bar_colour,
        gain0=gain0, gain1=gain1, blur=blur, noise=noise,
    )  # fmt: skip


class _Pose(NamedTuple):
    """Where class ``name`` has the actor and partner at one time, and how they are turned."""

    actor: np.ndarray  # centre (hub) of the actor, output pixels
    partner: np.ndarray  # centre of the partner
    actor_angle: float
    part_angle: float  # the part's angle relative to its body


def _pose(name: str, tau: float, scene: _Scene) -> _Pose:
    """The pose of class ``name`` at clip time ``tau`` (0 to 1); it makes no draws. At ``tau``
    0 every class has the same pose."""
    s = scene
    actor, partner = s.actor0.copy(), s.partner0.copy()
    actor_angle, part_angle = s.actor_angle0, s.part_angle0
    if name == "slide_slow":
        actor += s.slow * tau * s.direction
    elif name == "slide_fast":
        actor += s.fast * tau * s.direction
    elif name == "oscillate":  # 2 * periods legs, each fast / (2 * periods) long
        actor += s.fast / (2 * s.periods) * _triangle(2 * s.periods * tau) * s.direction
    elif name in ("turn_cw", "turn_ccw"):
        actor_angle += s.turn * tau * (1.0 if name == "turn_cw" else -1.0)
    elif name == "rock":
        actor_angle += s.rock_sign * s.turn / (2 * s.periods) * _triangle(2 * s.periods * tau)
    elif name in ("part_cw", "part_ccw"):
        part_angle += s.part_turn * tau * (1.0 if name == "part_cw" else -1.0)
    elif name in ("actor_hops_first", "partner_hops_first"):
        actor_first = name == "actor_hops_first"
        actor[1] -= _hop(tau, s.first_hop if actor_first else s.second_hop, s.hop_height)
        partner[1] -= _hop(tau, s.second_hop if actor_first else s.first_hop, s.hop_height)
    elif name in ("approach", "pass"):
        # pass: each covers `distance`, so they cross mid-clip; approach: the same until
        # their along-axis gap is `meet * distance`, then they stop
        stop = (1 - s.meet) / 2 if name == "approach" else 1.0
        actor += s.distance * min(tau, stop) * s.axis
        partner -= s.distance * min(tau, stop) * s.axis
    return _Pose(actor, partner, actor_angle, part_angle)


def _render(scene: _Scene, t: int, tau: float, pose: _Pose, rng: np.random.Generator) -> np.ndarray:
    """Frame ``t`` (at clip time ``tau``) of ``scene`` with the cast at ``pose``: uint8 (size,
    size, 3). Its per-pixel noise is the clip's only draw after ``_draw_scene``."""
    s, ss, size = scene, SUPERSAMPLE, scene.size
    camera = s.pan * tau + s.shake[t]
    # the view's top-left corner in the canvas, in supersampled pixels
    corner = np.round((s.margin + camera) * ss).astype(int)
    shift = corner / ss - s.margin  # the camera offset the crop realises
    image = s.background.crop((corner[0], corner[1], corner[0] + size * ss, corner[1] + size * ss))
    draw = ImageDraw.Draw(image)
    for pos, vel, half, colour in zip(s.d_pos, s.d_vel, s.d_half, s.d_colour, strict=True):
        x, y = (pos + vel * tau - shift) * ss
        r = half * ss
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    draw.polygon(
        _polygon(s.partner, (pose.partner - shift) * ss, s.partner_half * ss, s.partner_angle),
        fill=s.partner_colour,
    )
    hub = (pose.actor - shift) * ss
    draw.polygon(_polygon(s.body, hub, s.actor_half * ss, pose.actor_angle), fill=s.actor_colour)
    r = PART_SIZE * s.actor_half * ss
    box = (hub[0] - r, hub[1] - r, hub[0] + r, hub[1] + r)
    start = math.degrees(pose.actor_angle + pose.part_angle)  # the part turns with its body
    for k, colour in enumerate(s.part_colours):
        draw.pieslice(box, start + 90 * k, start + 90 * (k + 1), fill=colour)
    if s.occluded:
        at = (s.bar_at - shift[0 if s.bar_vertical else 1]) * ss
        h = s.bar_half * ss
        edge = size * ss
        draw.rectangle(
            (at - h, 0, at + h, edge) if s.bar_vertical else (0, at - h, edge, at + h),
            fill=s.bar_colour,
        )
    image = image.resize((size, size), Image.Resampling.BOX)
    if s.blur > 0.05:
        image = image.filter(ImageFilter.GaussianBlur(s.blur))
    frame = np.asarray(image, np.float32) * (s.gain0 + (s.gain1 - s.gain0) * tau)
    frame += rng.normal(0, s.noise, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)
