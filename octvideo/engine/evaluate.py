"""Multi-view evaluation: per-video aggregation, Kinetics metrics and the report files.

Kinetics results are reported on whole videos: each video is cut into ``num_clips`` temporal clips
x ``num_crops`` spatial crops (10 x 3 in the Non-local and Octave papers), the softmax scores of
all views are averaged, and top-1 / top-5 are taken on the average. Clip-level accuracy (each view
on its own) and mean class accuracy (the mean over classes of per-class video accuracy) are
reported beside it. Every ranking of classes (top-1, top-5, the predicted class, ``predict``'s top
classes) is ``ranked``'s: among equal scores the lower class index first, as ``argmax`` picks, so a
video with tied scores counts alike in every figure. A video whose decoding failed is never
substituted: it is left out of every metric and listed; NaN or infinite logits of a view that
decoded (a model whose activations overflow) stop the evaluation instead, with no metric
(``refuse_nonfinite_logits``). Everything but the report writing is a pure function of tensors,
testable on fixed logits. ``write_report`` writes each file whole or not at all
(``octvideo.paths``): a full disk is one line naming the file, and a symbolic link among them is
refused (``check_report_files`` refuses it before the evaluation). ``summary.json`` is written last
and ``remove_report`` removes it first, so that a folder with a summary holds one whole report.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from octvideo.engine.checkpoint import RUN_ADVICE
from octvideo.errors import CheckpointError
from octvideo.paths import ReadFiles, check_output_file, write_atomically

# the files of a test report in its folder; the summary first (``remove_report``)
REPORT_FILES = {
    "summary": "summary.json",
    "predictions": "predictions.csv",
    "per_class": "per_class.csv",
    "failed": "failed_videos.txt",
    "confusion": "confusion.png",
}


@dataclass
class ViewOutputs:
    """Logits of every test view. Rows are views; ``ok`` False marks a view that failed to decode.

    Attributes:
        video_index: (N,) video of each view.
        temporal_index: (N,) temporal clip of each view.
        spatial_index: (N,) spatial crop of each view.
        labels: (N,) ground-truth class of the view's video.
        ok: (N,) False where the video could not be decoded.
        logits: (N, K) float logits (rows of failed views are ignored).
        errors: video index -> decoder error, for failed videos.
    """

    video_index: Tensor
    temporal_index: Tensor
    spatial_index: Tensor
    labels: Tensor
    ok: Tensor
    logits: Tensor
    errors: dict[int, str] = field(default_factory=dict)

    def deduplicated(self) -> ViewOutputs:
        """One row per (video, temporal, spatial) view, the first seen.

        A guard: octvideo's test sampler (``ShareSampler``) repeats no view, but a sampler that
        does, such as ``DistributedSampler`` padding the last batch, must not count a view twice
        in the multi-view average.
        """
        keys = torch.stack([self.video_index, self.temporal_index, self.spatial_index], dim=1)
        _, inverse = torch.unique(keys, dim=0, return_inverse=True)
        first = torch.full((int(inverse.max()) + 1 if inverse.numel() else 0,), len(inverse))
        first = first.scatter_reduce(0, inverse, torch.arange(len(inverse)), reduce="amin")
        keep = torch.sort(first).values
        return ViewOutputs(
            video_index=self.video_index[keep],
            temporal_index=self.temporal_index[keep],
            spatial_index=self.spatial_index[keep],
            labels=self.labels[keep],
            ok=self.ok[keep],
            logits=self.logits[keep],
            errors=dict(self.errors),
        )


@dataclass
class VideoScores:
    """Per-video averaged softmax of the videos that decoded.

    Attributes:
        video_index: (V,) sorted video indices.
        labels: (V,) their classes.
        probs: (V, K) softmax averaged over the video's views.
        num_views: (V,) views averaged.
        failed: sorted indices of videos left out because a view failed to decode.
    """

    video_index: Tensor
    labels: Tensor
    probs: Tensor
    num_views: Tensor
    failed: list[int]

    @property
    def preds(self) -> Tensor:
        """(V,) the class of the highest averaged softmax (``ranked``'s first)."""
        return ranked(self.probs, 1)[:, 0]


def view_probs(logits: Tensor) -> Tensor:
    """(N, K) logits of N views -> (N, K) float64 softmax, what every fusion of views averages:
    ``test``'s per video (``aggregate_views``) and ``predict``'s per clip and per video
    (``Predictor.view_probs``). One function, so the two commands cannot drift: float32 would
    round two classes' means that differ in the 8th digit into an exact tie, which ``ranked``
    gives to the lower index, where float64 keeps them apart.
    """
    return torch.softmax(logits.double(), dim=-1)


def aggregate_views(views: ViewOutputs, *, advice: str = RUN_ADVICE) -> VideoScores:
    """Average the softmax of every view of a video; drop videos with any failed view.

    Raises:
        CheckpointError: a view that decoded has a NaN or infinite logit
            (``refuse_nonfinite_logits``, with ``advice``).
    """
    failed = sorted({int(v) for v in views.video_index[~views.ok]} | set(views.errors))
    keep = views.ok.clone()
    if failed:
        keep &= ~torch.isin(views.video_index, torch.tensor(failed, dtype=torch.long))
    refuse_nonfinite_logits(views, keep, advice)
    video_index = views.video_index[keep]
    probs = view_probs(views.logits[keep])  # (N', K) float64
    videos, inverse = torch.unique(video_index, sorted=True, return_inverse=True)
    num_classes = views.logits.shape[1]
    sums = torch.zeros(len(videos), num_classes, dtype=torch.float64)
    sums.index_add_(0, inverse, probs)
    counts = torch.bincount(inverse, minlength=len(videos))
    labels = torch.zeros(len(videos), dtype=torch.long)
    labels[inverse] = views.labels[keep]
    return VideoScores(
        video_index=videos,
        labels=labels,
        probs=sums / counts.unsqueeze(1),
        num_views=counts,
        failed=failed,
    )


def refuse_nonfinite_logits(views: ViewOutputs, keep: Tensor, advice: str = RUN_ADVICE) -> None:
    """Refuses NaN or infinite logits among the views ``keep`` marks: the clips are finite
    (normalised uint8 frames), so the model is broken, and an accuracy over its argmax (class 0
    for a NaN row) would be a number about nothing. Leaving those videos out as failed would
    instead report the model's accuracy on the videos it happens not to overflow on.

    Args:
        views: the test views' outputs.
        keep: (N,) bool, the views that decoded.
        advice: what to do about the checkpoint, as its origin says
            (``checkpoint.broken_advice``: an imported one is imported anew).

    Raises:
        CheckpointError: one line with how many views and videos, the first video and
            ``advice``.
    """
    bad = keep & ~torch.isfinite(views.logits).all(dim=1)
    if not bad.any():
        return
    videos = torch.unique(views.video_index[bad])
    raise CheckpointError(
        f"the model gives NaN or infinite logits for {int(bad.sum())} of {int(keep.sum())} "
        f"test views ({len(videos)} videos, the first video {int(videos[0])} of the list): its "
        "weights are so large that its activations overflow (a diverged run?); the checkpoint "
        f"is broken and no accuracy is reported: {advice}"
    )


# rows ranked at a time: a sort's values and int64 indices of 8192 x 400 classes take 39 MB,
# where all 30 views of Kinetics-400's 20k videos at once would take 2.9 GB
_RANK_ROWS = 8192


def ranked(scores: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` highest scores along the last dimension, highest first; among equal
    scores the lower index first, as ``argmax`` picks. ``Tensor.topk`` orders ties as its kernel
    happens to (index 3 of six equal scores first), so a tied video would count as right in one
    figure of a report and wrong in another; every ranking of classes in octvideo is this one.

    Args:
        scores: (..., K) scores of K classes.
        k: how many; capped at K.

    Returns:
        (..., min(k, K)) int64 class indices.
    """
    k = min(k, scores.shape[-1])
    rows = scores.reshape(-1, scores.shape[-1])  # (R, K)
    # a stable sort keeps equal scores in index order
    top = [
        torch.sort(chunk, dim=1, descending=True, stable=True).indices[:, :k]
        for chunk in rows.split(_RANK_ROWS)
    ]
    return torch.cat(top).reshape(*scores.shape[:-1], k)


def topk_correct(scores: Tensor, labels: Tensor, k: int) -> Tensor:
    """(N,) bool: the label is among the k highest scores (``ranked``; k capped at the class
    count)."""
    return (ranked(scores, k) == labels.unsqueeze(1)).any(dim=1)


class ClassAccuracy(NamedTuple):
    """Per-class video accuracy.

    Attributes:
        accuracy: (K,) float64, NaN for a class without videos.
        videos: (K,) videos of each class.
        correct: (K,) of those, the videos predicted right.
    """

    accuracy: Tensor
    videos: Tensor
    correct: Tensor


def per_class_accuracy(preds: Tensor, labels: Tensor, num_classes: int) -> ClassAccuracy:
    """Accuracy, video count and correct count of every class."""
    videos = torch.bincount(labels, minlength=num_classes)
    correct = torch.bincount(labels[preds == labels], minlength=num_classes)
    # float64 from the counts: int64 / int64 is float32, 9 of 20 would be 0.44999998807907104
    accuracy = correct.double() / videos.clamp(min=1).double()
    return ClassAccuracy(torch.where(videos > 0, accuracy, torch.nan), videos, correct)


def confusion_matrix(preds: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """(K, K) counts: row = true class, column = predicted class."""
    flat = torch.bincount(labels * num_classes + preds, minlength=num_classes * num_classes)
    return flat.view(num_classes, num_classes)


def _mean(values: Tensor) -> float:
    return float(values.double().mean()) if values.numel() else math.nan


def summarize(
    views: ViewOutputs, scores: VideoScores | None = None, *, advice: str = RUN_ADVICE
) -> dict[str, Any]:
    """Clip- and video-level top-1 / top-5 and mean class accuracy, as fractions in [0, 1].

    Raises:
        CheckpointError: a view that decoded has a NaN or infinite logit, where ``scores`` is
            None (``aggregate_views``, with ``advice``).
    """
    scores = scores or aggregate_views(views, advice=advice)
    num_classes = views.logits.shape[1]
    clip_rows = views.ok & ~torch.isin(
        views.video_index, torch.tensor(scores.failed, dtype=torch.long)
    )
    clip_logits, clip_labels = views.logits[clip_rows], views.labels[clip_rows]
    per_class = per_class_accuracy(scores.preds, scores.labels, num_classes)
    return {
        "clip_top1": _mean(topk_correct(clip_logits, clip_labels, 1)),
        "clip_top5": _mean(topk_correct(clip_logits, clip_labels, 5)),
        "video_top1": _mean(topk_correct(scores.probs, scores.labels, 1)),
        "video_top5": _mean(topk_correct(scores.probs, scores.labels, 5)),
        "mean_class_accuracy": _mean(per_class.accuracy[per_class.videos > 0]),
        "num_videos": len(scores.video_index),
        "num_views": int(clip_rows.sum()),
        "num_failed": len(scores.failed),
        "top5_k": min(5, num_classes),
    }


def write_report(
    out_dir: Path,
    views: ViewOutputs,
    *,
    classes: Sequence[str],
    paths: Sequence[str],
    protocol: dict[str, Any],
    confusion_png: bool = True,
    advice: str = RUN_ADVICE,
) -> dict[str, Path]:
    """Write the test report into ``out_dir``.

    Files: ``summary.json`` (metrics + protocol), ``predictions.csv`` (one row per video),
    ``per_class.csv``, ``confusion.png`` and ``failed_videos.txt`` (path and error per line).
    All are UTF-8 text: a video path with bytes that are not UTF-8 is written with escapes
    (``\udcff``, as the terminal shows it; ``paths.TEXT_ERRORS``), never failing the report.
    The summary is written last: with ``remove_report`` before the evaluation, a folder that
    holds one holds the other files of the same report.

    Args:
        out_dir: report folder (created).
        views: the test views' outputs.
        classes: class names, by index.
        paths: video paths, by video index.
        protocol: views, crop size, GFLOPs per view and so on, copied into the summary.
        confusion_png: draw the confusion matrix.
        advice: what to do about the checkpoint where its logits are not finite
            (``checkpoint.broken_advice``).

    Returns:
        Name -> path of every file written.

    Raises:
        UsageError: a report file is a symbolic link or a folder.
        CheckpointError: NaN or infinite logits (``refuse_nonfinite_logits``), before any file
            is written.
        OutputWriteError: a file cannot be written (full disk); it is left as it was, and the
            files before it are written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    scores = aggregate_views(views, advice=advice)
    metrics = summarize(views, scores)
    files = {
        k: out_dir / REPORT_FILES[k] for k in ("summary", "predictions", "per_class", "failed")
    }
    write_atomically(files["predictions"], _predictions_csv(scores, classes, paths))
    write_atomically(files["per_class"], _per_class_csv(scores, classes))
    write_atomically(files["failed"], _failed_text(scores.failed, views.errors, paths))
    if confusion_png:
        files["confusion"] = out_dir / REPORT_FILES["confusion"]
        num_classes = scores.probs.shape[1]
        plot_confusion(
            confusion_matrix(scores.preds, scores.labels, num_classes), classes, files["confusion"]
        )
    write_atomically(files["summary"], _summary_json(metrics, protocol, files))
    return files


def _predictions_csv(scores: VideoScores, classes: Sequence[str], paths: Sequence[str]) -> str:
    """``predictions.csv``: one row per scored video, with its top-5 class indices."""
    with io.StringIO(newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "video_index",
                "path",
                "label",
                "label_name",
                "pred",
                "pred_name",
                "confidence",
                "correct",
                "top5",
                "num_views",
            ]
        )
        top = ranked(scores.probs, 5)  # (V, min(5, K)), the first is ``pred``
        preds = scores.preds
        for row in range(len(scores.video_index)):
            vid, label, pred = (
                int(scores.video_index[row]),
                int(scores.labels[row]),
                int(preds[row]),
            )
            writer.writerow(
                [
                    vid,
                    paths[vid],
                    label,
                    classes[label],
                    pred,
                    classes[pred],
                    f"{float(scores.probs[row, pred]):.6f}",
                    int(pred == label),
                    " ".join(str(int(i)) for i in top[row]),
                    int(scores.num_views[row]),
                ]
            )
        return fh.getvalue()


def _per_class_csv(scores: VideoScores, classes: Sequence[str]) -> str:
    """``per_class.csv``: videos, correct and accuracy of every class (empty: no video)."""
    num_classes = scores.probs.shape[1]
    per_class = per_class_accuracy(scores.preds, scores.labels, num_classes)
    with io.StringIO(newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["class_index", "class_name", "videos", "correct", "accuracy"])
        for k in range(num_classes):
            acc = float(per_class.accuracy[k])
            writer.writerow(
                [
                    k,
                    classes[k],
                    int(per_class.videos[k]),
                    int(per_class.correct[k]),
                    "" if math.isnan(acc) else f"{acc:.6f}",
                ]
            )
        return fh.getvalue()


def _failed_text(failed: Sequence[int], errors: dict[int, str], paths: Sequence[str]) -> str:
    """``failed_videos.txt``: the path and decoder error of each failed video, a tab between."""
    return "".join(f"{paths[vid]}\t{errors.get(vid, 'failed to decode')}\n" for vid in failed)


def _summary_json(metrics: dict[str, Any], protocol: dict[str, Any], files: dict[str, Path]) -> str:
    """``summary.json``: metrics, protocol and the names of the report's files."""
    summary = {
        # no video scored: the accuracies are NaN, written as null (JSON has no NaN)
        "metrics": {
            k: None if isinstance(v, float) and math.isnan(v) else v for k, v in metrics.items()
        },
        "protocol": protocol,
        "files": {k: p.name for k, p in files.items()},
    }
    return json.dumps(summary, indent=2, allow_nan=False) + "\n"


def remove_report(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Removes the files of an earlier report from ``out_dir`` as a new evaluation begins, the
    summary first, so that an evaluation that is stopped or fails leaves no report that would
    pass for its own, and a report written without a confusion matrix keeps no earlier report's
    ``confusion.png``.
    ``check_report_files`` has refused links and folders among them.

    Returns:
        The files removed.
    """
    removed = []
    for name in REPORT_FILES.values():
        path = Path(out_dir) / name
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


def check_report_files(out_dir: str | os.PathLike[str], reads: ReadFiles | None = None) -> None:
    """Refuses, before an evaluation, report files in ``out_dir`` that ``write_report`` would
    refuse after it (symbolic links, folders) or that are files the evaluation reads
    (``reads``: the test list, the classes file, the checkpoint), which writing the report would
    destroy.

    Raises:
        UsageError: naming the report file.
    """
    for name in REPORT_FILES.values():
        check_output_file("report file", Path(out_dir) / name, reads, folder=False)


def plot_confusion(matrix: Tensor, classes: Sequence[str], path: Path) -> Path:
    """Row-normalised confusion matrix as a PNG (class names on the axes up to 50 classes),
    written whole or not at all (``write_atomically``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num_classes = matrix.shape[0]
    rows = matrix.double() / matrix.sum(dim=1, keepdim=True).clamp(min=1)
    size = min(24.0, 4.0 + 0.25 * num_classes)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(rows.numpy(), cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("confusion matrix (rows normalised)")
    if num_classes <= 50:
        ax.set_xticks(range(num_classes), labels=list(classes), rotation=90, fontsize=7)
        ax.set_yticks(range(num_classes), labels=list(classes), fontsize=7)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    return write_atomically(path, png.getbuffer())
