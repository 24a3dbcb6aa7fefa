"""``octvideo models``: every registered variant with its parameters and GFLOPs per view.

Reference: Chen et al., "Drop an Octave", ICCV 2019, Table 8 (GFLOPs = multiply-adds of one
8 x 224 x 224 view; the attention products of Non-local blocks are listed apart, see
``octvideo.models.cost``). A model that cannot take the view (too few frames or pixels for its
pooling) is listed as not applicable, with the network's own words, as ``octvideo train`` would
refuse it (``octvideo.engine.build.check_clip``).
"""

from __future__ import annotations

import argparse

from octvideo.argtypes import number, shown, whole
from octvideo.cli import print_last
from octvideo.errors import usage_errors
from octvideo.models import list_models
from octvideo.models.cost import cost_table


def _alpha(text: str) -> float | tuple[float, ...]:
    try:
        values = tuple(number(v) for v in text.split(","))
    except argparse.ArgumentTypeError:
        values = ()
    if len(values) not in (1, 4) or not all(0 <= v < 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"{shown(text)}: give one value or four (res2,res3,res4,res5), each in [0, 1), e.g. 0.5"
        )
    return values[0] if len(values) == 1 else values


def _octave(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(whole(v) for v in text.split(","))
    except argparse.ArgumentTypeError:
        values = ()
    if len(values) != 3 or not all(v in (1, 2) for v in values):  # what OctConv3d takes
        raise argparse.ArgumentTypeError(
            f"{shown(text)}: give three factors T,H,W, each 1 or 2, e.g. 1,2,2"
        )
    return values  # type: ignore[return-value]


def check_view(frames: int, size: int) -> None:
    """Refuses a view the training config would refuse: more than ``data.num_frames``'s bound of
    frames, a crop over ``data.test_crop_size``'s, or more pixels than ``MAX_CLIP_PIXELS``
    (each listed model runs one view to count its FLOPs).

    Raises:
        ValueError: naming the option, its value and the bound.
    """
    from octvideo.config import LIMITS, MAX_CLIP_PIXELS

    if frames < 1 or size < 1:
        raise ValueError(f"--frames and --size must be >= 1, got {frames} and {size}")
    for option, value, key in (
        ("--frames", frames, "data.num_frames"),
        ("--size", size, "data.test_crop_size"),
    ):
        bound, unit = LIMITS[key]
        if value > bound:
            raise ValueError(f"{option} {value} is over the limit of {bound:g} {unit} ({key}'s)")
    if frames * size * size > MAX_CLIP_PIXELS:
        raise ValueError(
            f"--frames {frames} x --size {size}^2 is {frames * size * size:,} pixels a view, over "
            f"the limit of {MAX_CLIP_PIXELS:,} (e.g. 64 frames at 512x512)"
        )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the model zoo with parameters and GFLOPs per view",
        description=(
            "Every registered variant with its parameters and GFLOPs (multiply-adds of "
            "convolutions and the classifier, counted by fvcore) for one view; Non-local "
            "attention products are shown apart. For SlowFast, --frames is the Slow pathway's "
            "length (the Fast pathway gets slowfast_alpha times as many)."
        ),
    )
    parser.add_argument("--frames", type=whole, default=8, help="frames per view")
    parser.add_argument("--size", type=whole, default=224, help="crop size")
    parser.add_argument(
        "--alpha",
        type=_alpha,
        default="0",
        help="low share: one value (res2-res4, res5 vanilla) or four comma-separated",
    )
    parser.add_argument(
        "--octave",
        type=_octave,
        default="1,2,2",
        help="T,H,W octave factors: 1,2,2 spatial, 2,2,2 also halves time",
    )
    parser.add_argument(
        "--filter", "--name", dest="filter", default="*", help="shell pattern on model names"
    )
    parser.set_defaults(func=run)


def models_table(
    *,
    frames: int = 8,
    size: int = 224,
    alpha: float | tuple[float, ...] = 0.0,
    octave: tuple[int, int, int] = (1, 2, 2),
    pattern: str = "*",
) -> list[dict[str, object]]:
    """Rows of the table (what ``octvideo models`` prints), one per matching model.

    A model that cannot take a view of ``frames`` x ``size`` x ``size`` has None for its counts
    and the network's reason under ``"not_applicable"`` (None in the other rows).

    Raises:
        ValueError: no model matches, ``frames`` or ``size`` below 1 or over their bounds
            (``check_view``), or no matching model can take the view.
    """
    check_view(frames, size)
    names = list_models(pattern)
    if not names:
        raise ValueError(f"no model matches {pattern!r}")
    too_large = {name: _fast_pixels(name, frames, size, alpha, octave) for name in names}
    reasons = {
        name: too_large[name] or _not_applicable(name, frames, size, alpha, octave)
        for name in names
    }
    fit = [name for name in names if reasons[name] is None]
    if not fit:
        name = names[0]
        more = f" (and {len(names) - 1} more models)" if len(names) > 1 else ""
        raise ValueError(
            f"{name}{more} cannot take views of {frames}x{size}x{size} (--frames x --size x "
            f"--size): {reasons[name]}; use "
            f"{'fewer frames or a smaller' if too_large[name] else 'more frames or a larger'} "
            "size"
        )
    costs = {
        row["model"]: row
        for row in cost_table(fit, frames=frames, size=size, alpha=alpha, octave=octave)
    }
    empty = {"params_m": None, "gflops": None, "attention_gflops": None}
    return [
        {**costs[name], "not_applicable": None}
        if name in costs
        else {
            "model": name,
            "alpha": alpha,
            "octave": tuple(octave),
            **empty,
            "not_applicable": reasons[name],
        }
        for name in names
    ]


def _speed(name: str, alpha: float | tuple[float, ...], octave: tuple[int, int, int]) -> int | None:
    """Frames of the Fast pathway per frame of the Slow one (None: a single-pathway model)."""
    import torch

    from octvideo.models._registry import create_model

    with torch.device("meta"):
        return getattr(create_model(name, alpha=alpha, octave=octave), "slowfast_alpha", None)


def _fast_pixels(
    name: str,
    frames: int,
    size: int,
    alpha: float | tuple[float, ...],
    octave: tuple[int, int, int],
) -> str | None:
    """Why a SlowFast view (``frames`` of the Slow pathway) is over ``MAX_CLIP_PIXELS``, or None."""
    from octvideo.config import MAX_CLIP_PIXELS

    speed = _speed(name, alpha, octave)
    if speed is None or frames * speed * size * size <= MAX_CLIP_PIXELS:
        return None
    return (
        f"its Fast pathway's {frames * speed} frames at {size}x{size} are over the limit of "
        f"{MAX_CLIP_PIXELS:,} pixels a view"
    )


def _not_applicable(
    name: str,
    frames: int,
    size: int,
    alpha: float | tuple[float, ...],
    octave: tuple[int, int, int],
) -> str | None:
    """Why ``name`` cannot take a view of ``frames`` x ``size`` x ``size`` (frames of the Slow
    pathway for SlowFast), in the network's words; None if it can. Decided as ``octvideo train``
    does, by ``check_clip`` on the meta device."""

    from octvideo.config import ModelConfig
    from octvideo.data.config import DataConfig
    from octvideo.engine.build import check_clip
    from octvideo.errors import ConfigError, first_line

    speed = _speed(name, alpha, octave)
    data = DataConfig(num_frames=frames * (speed or 1), slowfast_alpha=speed)
    try:
        check_clip(ModelConfig(name=name, alpha=alpha, octave=octave), data, (size,))
    except ConfigError as err:
        cause = err.__cause__ if err.__cause__ is not None else err
        return first_line(cause)
    return None


def format_table(rows: list[dict[str, object]], frames: int, size: int) -> str:
    header = f"{'model':<16} {'alpha':<22} {'octave':<10} {'params (M)':>10} "
    header += f"{'GFLOPs':>8} {'+attn':>6}"
    lines = [f"GFLOPs per view of {frames}x{size}x{size} (multiply-adds)", header]
    for r in rows:
        octave = ",".join(str(o) for o in r["octave"])  # type: ignore[union-attr]
        line = f"{r['model']:<16} {r['alpha']!s:<22} {octave:<10} "
        if r.get("not_applicable"):
            lines.append(f"{line}not applicable: {r['not_applicable']}")
            continue
        lines.append(
            f"{line}{r['params_m']:>10.2f} {r['gflops']:>8.2f} {r['attention_gflops']:>6.2f}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    with usage_errors(ValueError):
        rows = models_table(
            frames=args.frames,
            size=args.size,
            alpha=args.alpha,
            octave=args.octave,
            pattern=args.filter,
        )
    print_last(format_table(rows, args.frames, args.size))
    return 0
