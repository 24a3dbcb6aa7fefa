"""``octvideo models``: every registered variant with its parameters and GFLOPs per view.

Reference: Chen et al., "Drop an Octave", ICCV 2019, Table 8 (GFLOPs = multiply-adds of one
8 x 224 x 224 view; the attention products of Non-local blocks are listed apart, see
``octvideo.models.cost``).
"""

from __future__ import annotations

import argparse

from octvideo.models._registry import list_models
from octvideo.models.cost import cost_table


def _alpha(text: str) -> float | tuple[float, ...]:
    values = tuple(float(v) for v in text.split(","))
    if len(values) not in (1, 4):
        raise argparse.ArgumentTypeError("--alpha takes one value or four (res2,res3,res4,res5)")
    return values[0] if len(values) == 1 else values


def _octave(text: str) -> tuple[int, int, int]:
    values = tuple(int(v) for v in text.split(","))
    if len(values) != 3:
        raise argparse.ArgumentTypeError("--octave takes three factors T,H,W, e.g. 1,2,2")
    return values  # type: ignore[return-value]


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
    parser.add_argument("--frames", type=int, default=8, help="frames per view (default 8)")
    parser.add_argument("--size", type=int, default=224, help="crop size (default 224)")
    parser.add_argument(
        "--alpha",
        type=_alpha,
        default=0.0,
        help="low share: one value (res2-res4, res5 vanilla) or four comma-separated",
    )
    parser.add_argument(
        "--octave", type=_octave, default=(1, 2, 2), help="T,H,W octave (default 1,2,2)"
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
    """Rows of the table (what ``octvideo models`` prints), one per matching model."""
    names = list_models(pattern)
    if not names:
        raise ValueError(f"no model matches {pattern!r}")
    return cost_table(names, frames=frames, size=size, alpha=alpha, octave=octave)


def format_table(rows: list[dict[str, object]], frames: int, size: int) -> str:
    header = f"{'model':<16} {'alpha':<22} {'octave':<10} {'params (M)':>10} "
    header += f"{'GFLOPs':>8} {'+attn':>6}"
    lines = [f"GFLOPs per view of {frames}x{size}x{size} (multiply-adds)", header]
    for r in rows:
        octave = ",".join(str(o) for o in r["octave"])  # type: ignore[union-attr]
        lines.append(
            f"{r['model']:<16} {r['alpha']!s:<22} {octave:<10} {r['params_m']:>10.2f} "
            f"{r['gflops']:>8.2f} {r['attention_gflops']:>6.2f}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        rows = models_table(
            frames=args.frames,
            size=args.size,
            alpha=args.alpha,
            octave=args.octave,
            pattern=args.filter,
        )
    except ValueError as err:
        from octvideo.cli import UsageError

        raise UsageError(str(err)) from err
    print(format_table(rows, args.frames, args.size))  # noqa: T201
    return 0
