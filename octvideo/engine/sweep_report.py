"""The table and figure of an ``octvideo sweep`` study, from its rows: study.csv, study.json,
study.md, study.png and the terminal's lines. Pure: rows in, text and files out; the rows are
made from the run folders by ``octvideo.engine.sweep.collect``.

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049), Table 8 and its
accuracy-vs-GFLOPs figure.

A row is one point: ``point`` (its label), ``folder``, ``baseline`` (the first point),
``settings``, ``status``, ``seeds_finished``, ``<metric>_<mean|std|min|max>`` over the finished
seeds for each of ``METRICS``, the measured cost (``MEASURED_COLUMNS``), ``measure_error`` and
``wall_s_mean``; a value not known is None.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from octvideo.paths import AtomicOutputs

# the accuracies of a run's test summary (test/summary.json) that the table shows
METRICS = ("video_top1", "clip_top1", "mean_class_accuracy")
# a point's measured cost: the fields of ``sweep.Measured`` but its error (``measure_error``)
MEASURED_COLUMNS = (
    "gflops",
    "params",
    "saved_mib_per_clip",
    "infer_ms",
    "infer_ratio",
    "infer_ratio_min",
    "infer_ratio_max",
    "train_ms",
    "train_ratio",
    "train_ratio_min",
    "train_ratio_max",
)
CSV_COLUMNS = (
    "point",
    "status",
    "seeds_finished",
    *(f"{k}_{s}" for k in METRICS for s in ("mean", "std", "min", "max")),
    *MEASURED_COLUMNS,
    "wall_s_mean",
    "baseline",
    "folder",
    "measure_error",
)


def iter_rows(rows: Sequence[dict[str, Any]]) -> Iterator[str]:
    """One line per point for the terminal."""
    for row in rows:
        yield (
            f"{row['point']}{' (baseline)' if row['baseline'] else ''}: video top-1 "
            f"{_pct(row, 'video_top1')}%, GFLOPs {_num(row['gflops'], '.4g')}, inference "
            f"{_ratio(row, 'infer')}, {row['status']}"
        )


def _pct(row: dict[str, Any], key: str) -> str:
    mean, std = row[f"{key}_mean"], row[f"{key}_std"]
    if mean is None:
        return "-"
    return f"{100 * mean:.1f}" + ("" if std is None else f" ± {100 * std:.1f}")


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _ratio(row: dict[str, Any], key: str) -> str:
    if row[f"{key}_ratio"] is None:
        return "-"
    return (
        f"{row[f'{key}_ratio']:.3f} ({row[f'{key}_ratio_min']:.3f}-{row[f'{key}_ratio_max']:.3f})"
    )


def markdown(rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"Study of `{meta['config']}`, {meta['seeds']} seed(s) per point, "
        f"{meta.get('jobs', 1)} run(s) at a time; {_taken(meta.get('timing'))}.",
        "",
        f"`{meta['command']}`",
        "",
        "Accuracies in %: mean ± sample standard deviation over the finished seeds (study.csv "
        "also has min and max). GFLOPs: multiply-adds of one test view (convolutions and "
        "classifier). Saved MiB: activations a training step keeps for backward, per clip. "
        "Times: medians of interleaved rounds in one process; ratios against the baseline "
        "(first) point: median of the per-round ratios (range). Wall: train + test of one run, "
        "mean over seeds.",
        "",
        "| point | video top-1 | clip top-1 | mean class acc | GFLOPs | params (M) | saved MiB "
        "| inference ms | inference ratio | train step ms | train ratio | wall s | status |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        name = row["point"] + (" (baseline)" if row["baseline"] else "")
        params = None if row["params"] is None else row["params"] / 1e6
        lines.append(
            f"| {name} | {_pct(row, 'video_top1')} | {_pct(row, 'clip_top1')} | "
            f"{_pct(row, 'mean_class_accuracy')} | {_num(row['gflops'], '.4g')} | "
            f"{_num(params, '.3f')} | {_num(row['saved_mib_per_clip'], '.3g')} | "
            f"{_num(row['infer_ms'], '.1f')} | {_ratio(row, 'infer')} | "
            f"{_num(row['train_ms'], '.1f')} | {_ratio(row, 'train')} | "
            f"{_num(row['wall_s_mean'], '.0f')} | {row['status'].replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"


def _taken(timing: dict[str, Any] | None) -> str:
    """When and on what machine the timings were taken, from ``measured.json`` (a study that
    reuses it keeps its date), never the time the table is written."""
    if timing is None:
        return "cost and times not measured"
    if not (timing.get("date") and timing.get("machine")):
        return "timings' date and machine unknown (measured.json of an older octvideo)"
    return f"{timing['date']}, {timing['machine']} (timings)"


def plot(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """The paper's figure: video top-1 (error bars: min-max over seeds) against GFLOPs per view,
    and against the measured inference time ratio; one marker per point, the baseline a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("gflops", None, "GFLOPs per view"),
        ("infer_ratio", ("infer_ratio_min", "infer_ratio_max"), "inference time / baseline"),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    markers = itertools.cycle("osD^v<>phX")
    for row in rows:
        marker = "*" if row["baseline"] else next(markers)
        y = row["video_top1_mean"]
        for ax, (xkey, xrange_, _) in zip(axes, panels, strict=True):
            x = row[xkey]
            if x is None or y is None:
                continue
            yerr = [[100 * (y - row["video_top1_min"])], [100 * (row["video_top1_max"] - y)]]
            xerr = None
            if xrange_ is not None and row[xrange_[0]] is not None:
                xerr = [[x - row[xrange_[0]]], [row[xrange_[1]] - x]]
            label = row["point"] + (" (baseline)" if row["baseline"] else "")
            ax.errorbar(
                x,
                100 * y,
                yerr=yerr,
                xerr=xerr,
                fmt=marker,
                markersize=12 if row["baseline"] else 7,
                capsize=3,
                label=label,
            )
            ax.annotate(
                row["point"], (x, 100 * y), textcoords="offset points", xytext=(6, 6), fontsize=7
            )
    for ax, (_, _, xlabel) in zip(axes, panels, strict=True):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("video top-1 (%)")
        ax.grid(True, alpha=0.3)
    axes[0].set_title("accuracy vs FLOPs")
    axes[1].set_title("accuracy vs measured time")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_study(out: Path, rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Path]:
    """study.csv, study.json, study.md and study.png in ``out``: one result, all four new or all
    as they were (``paths.AtomicOutputs``), so a table never sits beside another study's figure.

    Raises:
        OutputWriteError: a file cannot be written (a full disk, an append-only earlier file);
            the earlier files are kept, no temporary is left.
    """
    files = {
        "csv": out / "study.csv",
        "json": out / "study.json",
        "md": out / "study.md",
        "png": out / "study.png",
    }
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in CSV_COLUMNS})
    clean = [{k: finite(v) for k, v in row.items()} for row in rows]
    study_json = json.dumps({"meta": meta, "rows": clean}, indent=2, allow_nan=False) + "\n"
    with AtomicOutputs() as study:  # all four new, or all four as they were
        parts = {key: study.add(path) for key, path in files.items()}  # a failure names all
        parts["csv"].write(table.getvalue())
        parts["json"].write(study_json)
        parts["md"].write(markdown(rows, meta))
        plot(rows, parts["png"].tmp)  # same extension: the figure's format
    return files


def finite(value: Any) -> Any:
    """None for inf and nan, which JSON cannot hold; any other value as it is."""
    return None if isinstance(value, float) and not math.isfinite(value) else value
