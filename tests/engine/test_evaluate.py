"""Multi-view aggregation and metrics against hand computations on fixed logits; the report files
(``failed_videos.txt`` names a failed video's error once; the summary is written last and removed
first, so that it is there only beside the whole report it sums up)."""

from __future__ import annotations

import csv
import json
import math
import os

import pytest
import torch

from octvideo.engine import evaluate
from octvideo.engine.checkpoint import broken_advice
from octvideo.engine.evaluate import (
    REPORT_FILES,
    ViewOutputs,
    aggregate_views,
    confusion_matrix,
    per_class_accuracy,
    refuse_nonfinite_logits,
    remove_report,
    summarize,
    write_report,
)
from octvideo.engine.run import run_test
from octvideo.errors import CheckpointError
from tests.inference.media_helpers import overflowing_checkpoint


def _views(rows: list[tuple[int, int, int, list[float]]], ok: list[bool] | None = None):
    """rows: (video, temporal, label, logits)."""
    n = len(rows)
    return ViewOutputs(
        video_index=torch.tensor([r[0] for r in rows]),
        temporal_index=torch.tensor([r[1] for r in rows]),
        spatial_index=torch.zeros(n, dtype=torch.long),
        labels=torch.tensor([r[2] for r in rows]),
        ok=torch.tensor(ok if ok is not None else [True] * n),
        logits=torch.tensor([r[3] for r in rows], dtype=torch.float32),
    )


# Three classes, three videos of two views each. Hand computation:
# video 0 (label 0): view A softmax(2, 0, 0) = (.7870, .1065, .1065), view B softmax(0, 1, 0)
#   = (.2119, .5761, .2119); mean = (.4995, .3413, .1592) -> class 0, correct, although one of its
#   two views is wrong (clip-level 1 of 2).
# video 1 (label 1): views (0, 3, 0) and (0, 3, 0): class 1, correct (clips 2 of 2).
# video 2 (label 2): views (5, 0, 0) -> class 0 and (0, 0, 1) -> class 2; mean softmax of class 0
#   (.9867 + .2119) / 2 = .599 beats class 2 (.0066 + .5761) / 2 = .291 -> wrong.
FIXED = [
    (0, 0, 0, [2.0, 0.0, 0.0]),
    (0, 1, 0, [0.0, 1.0, 0.0]),
    (1, 0, 1, [0.0, 3.0, 0.0]),
    (1, 1, 1, [0.0, 3.0, 0.0]),
    (2, 0, 2, [5.0, 0.0, 0.0]),
    (2, 1, 2, [0.0, 0.0, 1.0]),
]


def test_video_accuracy_equals_hand_computation():
    views = _views(FIXED)
    scores = aggregate_views(views)
    expected_v0 = (
        torch.softmax(torch.tensor([2.0, 0, 0]), 0) + torch.softmax(torch.tensor([0.0, 1, 0]), 0)
    ) / 2
    torch.testing.assert_close(scores.probs[0].float(), expected_v0)
    assert scores.probs.argmax(1).tolist() == [0, 1, 0]
    m = summarize(views)
    assert m["video_top1"] == pytest.approx(2 / 3)
    assert m["clip_top1"] == pytest.approx(4 / 6)  # views correct: A, B1, B2, C2
    # top-5 is capped at the class count: every label is among 3 of 3 classes.
    assert m["video_top5"] == 1.0 and m["top5_k"] == 3
    # Per class: class 0 1/1, class 1 1/1, class 2 0/1 -> mean 2/3.
    assert m["mean_class_accuracy"] == pytest.approx(2 / 3)
    assert m["num_videos"] == 3 and m["num_failed"] == 0 and m["num_views"] == 6


def test_views_order_does_not_matter_and_duplicates_count_once():
    perm = [5, 2, 0, 3, 1, 4]
    shuffled = _views([FIXED[i] for i in perm])
    padded = _views([FIXED[i] for i in perm] + [FIXED[4], FIXED[4]])  # a padding sampler's repeats
    base = summarize(_views(FIXED))
    assert summarize(shuffled) == base
    assert summarize(padded.deduplicated()) == base
    # Without deduplication the repeated confident wrong view would change the result.
    assert summarize(padded)["clip_top1"] != base["clip_top1"]


def test_failed_video_is_excluded_not_substituted():
    ok = [True, True, True, True, False, False]  # video 2 failed to decode
    views = _views(FIXED, ok)
    scores = aggregate_views(views)
    assert scores.failed == [2]
    assert scores.video_index.tolist() == [0, 1]
    m = summarize(views)
    assert m["num_videos"] == 2 and m["num_failed"] == 1
    assert m["video_top1"] == 1.0
    assert m["clip_top1"] == pytest.approx(3 / 4)
    # Class 2 has no evaluated video: it is left out of the mean, not counted as 0.
    assert m["mean_class_accuracy"] == 1.0


IMPORTED = {"hyper_parameters": {"meta": {"source": {"from": "pytorchvideo", "file": "S.pyth"}}}}


@pytest.mark.parametrize(
    ("origin", "advice"),
    [
        (None, "use an earlier checkpoint of the run, or get the file again"),
        (IMPORTED, "get 'S.pyth' again and import it anew"),  # no run to go back to
    ],
    ids=["run", "import"],
)
def test_nan_or_infinite_logits_stop_the_evaluation_with_no_metric(tmp_path, origin, advice):
    # an accuracy was reported over the argmax of NaN rows (class 0), "0 failed"
    rows = [*FIXED[:4], (2, 0, 2, [math.nan, 0.0, 0.0]), (2, 1, 2, [math.inf, 0.0, 0.0])]
    message = (
        "the model gives NaN or infinite logits for 2 of 6 test views (1 videos, the first "
        "video 2 of the list): its weights are so large that its activations overflow (a "
        "diverged run?); the checkpoint is broken and no accuracy is reported: " + advice
    )
    given = {} if origin is None else {"advice": broken_advice(origin)}
    for evaluation in (aggregate_views, summarize):
        with pytest.raises(CheckpointError) as caught:
            evaluation(_views(rows), **given)
        assert str(caught.value) == message
    with pytest.raises(CheckpointError) as caught:
        refuse_nonfinite_logits(_views(rows), keep=torch.ones(6, dtype=torch.bool), **given)
    assert str(caught.value) == message
    # the views that failed to decode are not looked at
    refuse_nonfinite_logits(_views(rows), keep=torch.tensor([True] * 4 + [False] * 2))
    with pytest.raises(CheckpointError) as caught:
        write_report(tmp_path, _views(rows), classes="abc", paths="012", protocol={}, **given)
    assert str(caught.value) == message
    assert list(tmp_path.iterdir()) == []  # refused before any file is written
    # the logits of a view that failed to decode are ignored, NaN or not
    assert aggregate_views(_views(rows, [True] * 4 + [False] * 2)).failed == [2]


def test_a_test_of_a_model_whose_logits_are_nan_writes_no_report(media, checkpoint, tmp_path):
    huge = overflowing_checkpoint(checkpoint, tmp_path / "huge.ckpt")
    # the video that cannot be opened is left out; some views of the other two overflow
    with pytest.raises(CheckpointError, match=r"NaN or infinite logits for \d+ of 18 test views"):
        _test_tiny(huge, media, tmp_path)
    assert not (tmp_path / "run" / "test" / "summary.json").exists()


def test_per_class_and_confusion():
    preds = torch.tensor([0, 1, 1, 2, 0])
    labels = torch.tensor([0, 1, 2, 2, 2])
    acc, videos, correct = per_class_accuracy(preds, labels, 4)
    assert videos.tolist() == [1, 1, 3, 0]
    assert correct.tolist() == [1, 1, 1, 0]  # counted, not rebuilt from the accuracy
    assert acc[:3].tolist() == pytest.approx([1.0, 1.0, 1 / 3])
    assert math.isnan(acc[3])
    cm = confusion_matrix(preds, labels, 4)
    assert cm[2].tolist() == [1, 1, 1, 0]
    assert int(cm.sum()) == 5


def test_write_report_files(tmp_path):
    views = _views(FIXED, [True, True, True, True, False, False])
    views.errors[2] = "DecodeError: truncated"
    files = write_report(
        tmp_path,
        views,
        classes=["a", "b", "c"],
        paths=["v0.mp4", "v1.mp4", "v2.mp4"],
        protocol={"views": 2, "crop_size": 32, "gflops": "1.00 x 2 views at 32"},
    )
    summary = json.loads(files["summary"].read_text())
    assert summary["metrics"]["video_top1"] == 1.0
    assert summary["protocol"]["gflops"] == "1.00 x 2 views at 32"
    with files["predictions"].open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["path"] for r in rows] == ["v0.mp4", "v1.mp4"]
    assert [r["pred_name"] for r in rows] == ["a", "b"]
    with files["per_class"].open() as fh:
        per_class = list(csv.DictReader(fh))
    assert [r["videos"] for r in per_class] == ["1", "1", "0"]
    assert per_class[2]["accuracy"] == ""
    assert files["failed"].read_text() == "v2.mp4\tDecodeError: truncated\n"
    assert files["confusion"].read_bytes()[:4] == b"\x89PNG"


def test_the_report_keeps_a_path_whose_bytes_are_not_utf8(tmp_path):
    # a class-folder set's file name with such bytes failed the report after the evaluation
    views = _views(FIXED, [True, True, True, True, False, False])
    views.errors[2] = "DecodeError: truncated"
    paths = ["v0.mp4", os.fsdecode(b"x\xffy.mp4"), os.fsdecode(b"q\xe9r.mp4")]
    files = write_report(tmp_path, views, classes="abc", paths=paths, protocol={})
    with files["predictions"].open(encoding="utf-8", newline="") as fh:
        assert [r["path"] for r in csv.DictReader(fh)] == ["v0.mp4", "x\\udcffy.mp4"]
    text = files["failed"].read_text(encoding="utf-8")
    assert text == "q\\udce9r.mp4\tDecodeError: truncated\n"
    assert json.loads(files["summary"].read_text(encoding="utf-8"))["metrics"]["num_failed"] == 1


def test_the_report_texts_are_built_without_the_disk():
    views = _views(FIXED, [True, True, True, True, False, False])
    scores = aggregate_views(views)
    classes, paths = ["a", "b", "c"], ["v0.mp4", "v1.mp4", "v2.mp4"]
    predictions = evaluate._predictions_csv(scores, classes, paths).splitlines()
    assert predictions[0].startswith("video_index,path,label,label_name,pred,pred_name,")
    # video 0: the mean softmax of FIXED's hand computation, (.4995, .3413, .1592)
    assert len(predictions) == 3 and predictions[1] == "0,v0.mp4,0,a,0,a,0.499464,1,0 1 2,2"
    assert evaluate._per_class_csv(scores, classes).splitlines() == [
        "class_index,class_name,videos,correct,accuracy",
        "0,a,1,1,1.000000",
        "1,b,1,1,1.000000",
        "2,c,0,0,",
    ]
    assert evaluate._failed_text([2], {}, paths) == "v2.mp4\tfailed to decode\n"
    summary = evaluate._summary_json({"video_top1": math.nan}, {"views": 2}, {})
    assert json.loads(summary) == {
        "metrics": {"video_top1": None},
        "protocol": {"views": 2},
        "files": {},
    }


def test_the_summary_is_written_last_and_removed_first(tmp_path, monkeypatch):
    # a test stopped between the two leaves no summary beside another test's files
    written = []
    real = evaluate.write_atomically

    def record(path, data):
        written.append(path.name)
        return real(path, data)

    monkeypatch.setattr(evaluate, "write_atomically", record)
    args = {"classes": ["a", "b", "c"], "paths": ["v0.mp4", "v1.mp4", "v2.mp4"], "protocol": {}}
    write_report(tmp_path, _views(FIXED), **args)
    assert written[-1] == "summary.json" and sorted(written) == sorted(REPORT_FILES.values())
    (tmp_path / "notes.txt").write_text("mine")
    removed = remove_report(tmp_path)
    assert [p.name for p in removed] == list(REPORT_FILES.values())
    assert removed[0].name == "summary.json"
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert remove_report(tmp_path) == []


def test_a_report_with_no_scored_video_is_strict_json(tmp_path):
    # the NaN accuracies were written as bare NaN, which strict JSON readers (jq) refuse
    views = _views(FIXED, [False] * 6)
    files = write_report(
        tmp_path,
        views,
        classes=["a", "b", "c"],
        paths=["v0.mp4", "v1.mp4", "v2.mp4"],
        protocol={"views": 2},
        confusion_png=False,
    )

    def refuse(name: str) -> None:
        raise ValueError(f"{name} in summary.json")

    summary = json.loads(files["summary"].read_text(), parse_constant=refuse)
    assert summary["metrics"]["video_top1"] is None
    assert summary["metrics"]["num_failed"] == 3


def test_test_names_top_k_by_the_class_count(monkeypatch, tmp_path, capsys):
    # on a 3-class set "top-5" was printed for what is top-3
    from octvideo import cli
    from octvideo.cli import run as run_cli
    from octvideo.engine.run import TestResult

    metrics = {
        "video_top1": 0.5,
        "video_top5": 1.0,
        "top5_k": 3,
        "clip_top1": 0.25,
        "mean_class_accuracy": 0.5,
        "num_videos": 4,
        "num_failed": 0,
    }
    monkeypatch.setattr(run_cli, "run_test", lambda *a, **k: TestResult(tmp_path, metrics, {}))
    assert cli.main(["test", "--cfg", "any.yaml", "--ckpt", "any.ckpt"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("video top-1 50.00%  top-3 100.00%  clip top-1 25.00%")


def _report(out_dir, confusion_png=True):
    return write_report(
        out_dir,
        _views(FIXED),
        classes=["a", "b", "c"],
        paths=["v0.mp4", "v1.mp4", "v2.mp4"],
        protocol={"views": 2},
        confusion_png=confusion_png,
    )


def test_a_real_full_disk_under_the_report_is_one_line(request, tmp_path):
    from octvideo.errors import OutputWriteError
    from tests.small_disk import fill, small_disk

    disk = small_disk(request, tmp_path / "report")
    (disk / "summary.json").write_text("earlier")
    fill(disk, leave=0)
    with pytest.raises(OutputWriteError) as info:
        _report(disk)
    message = str(info.value)
    assert message.startswith(f"cannot write {disk / 'predictions.csv'} (No space left on device)")
    assert "\n" not in message
    assert sorted(p.name for p in disk.iterdir()) == ["ballast", "summary.json"]  # no temporary
    assert (disk / "summary.json").read_text() == "earlier"


def test_a_symbolic_link_among_the_report_files_is_refused(tmp_path):
    from octvideo.errors import UsageError

    target = tmp_path / "keep.json"
    target.write_text("keep")
    out = tmp_path / "report"
    out.mkdir()
    (out / "summary.json").symlink_to(target)
    with pytest.raises(UsageError, match=r"summary\.json is a symbolic link to .*keep\.json; give"):
        _report(out, confusion_png=False)
    assert target.read_text() == "keep"


def test_test_refuses_a_linked_report_file_before_the_evaluation(monkeypatch, tmp_path, capsys):
    from octvideo import cli
    from octvideo.engine import run as run_module
    from octvideo.engine.checkpoint import atomic_save

    ckpt = atomic_save({}, tmp_path / "any.ckpt")
    report = tmp_path / "run" / "test"
    report.mkdir(parents=True)
    target = tmp_path / "elsewhere.csv"
    target.write_text("keep")
    (report / "predictions.csv").symlink_to(target)
    evaluated = []
    monkeypatch.setattr(run_module, "_trainer", lambda *a, **k: evaluated.append(1))
    args = ["test", "--cfg", "oct_i3d_synth", "--ckpt", str(ckpt), "--out", str(tmp_path / "run")]
    assert cli.main(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"octvideo test: error: report file {report / 'predictions.csv'} is a symbolic link to "
        f"{target}; give the real path or remove the link"
    )
    assert not evaluated and target.read_text() == "keep"


def _test_tiny(checkpoint, media, tmp_path, workers: int = 0):
    """``run_test`` of ``checkpoint``, the shared tiny one (tests/conftest.py: c2d_r18 of width
    8, 3 classes, 4 x 32 x 32) or one like it, on three videos, one that cannot be opened."""
    (tmp_path / "classes.txt").write_text("left\nright\nstill\n")
    val = tmp_path / "val.txt"
    val.write_text(f"{media['h264.mp4']} 0\n{media['zero.mp4']} 1\n{media['odd.mkv']} 2\n")
    overrides = {
        "model.name": "c2d_r18",
        "model.num_classes": 3,
        "model.alpha": 0.25,
        "model.extra": "{width: 8}",
        "data.val_list": val,
        "data.classes_file": tmp_path / "classes.txt",
        "data.decoder": "pyav",
        "data.num_frames": 4,
        "data.sampling_rate": 2,
        "data.test_short_side": 32,
        "data.test_crop_size": 32,
        "data.test_num_clips": 3,
        "data.test_num_crops": 3,
        "data.batch_size": 4,
        "data.num_workers": workers,
        "trainer.accelerator": "cpu",
        "trainer.progress_bar": False,
        "test.count_flops": False,
        "test.confusion_matrix": False,
    }
    return run_test(
        None,
        [f"{k}={v}" for k, v in overrides.items()],
        ckpt=checkpoint,
        out=str(tmp_path / "run"),
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_failed_videos_txt_names_the_error_once(media, checkpoint, tmp_path, workers):
    result = _test_tiny(checkpoint, media, tmp_path, workers)
    assert result.metrics["num_failed"] == 1 and result.metrics["num_videos"] == 2
    (line,) = result.files["failed"].read_text().splitlines()
    path, message = line.split("\t")
    assert path == str(media["zero.mp4"])
    assert message.startswith("DecodeError: ") and message.count("DecodeError") == 1, message
    assert "cannot open it" in message


def _by_rule(row: list[float], k: int) -> list[int]:
    """The ranking rule by hand: higher score first, then the lower class index."""
    return sorted(range(len(row)), key=lambda i: (-row[i], i))[:k]


@pytest.mark.parametrize("shape", [(7,), (5, 7), (2, 3, 7), (0, 7)])
def test_ranked_puts_the_lower_class_first_among_equal_scores(monkeypatch, shape):
    monkeypatch.setattr(evaluate, "_RANK_ROWS", 2)  # several chunks of rows
    scores = torch.randint(0, 3, shape, generator=torch.Generator().manual_seed(0)).float()
    for k in (1, 3, 7, 9):
        got = evaluate.ranked(scores, k)
        assert got.shape == (*shape[:-1], min(k, 7)) and got.dtype == torch.long
        rows = scores.reshape(-1, 7).tolist()
        assert got.reshape(len(rows), min(k, 7)).tolist() == [_by_rule(r, k) for r in rows]
    # the first is argmax's pick; torch's topk gives [3, 4, 1, 0, 2] of 400 equal scores
    assert evaluate.ranked(scores, 1)[..., 0].tolist() == scores.argmax(-1).tolist()
    assert evaluate.ranked(torch.zeros(400), 5).tolist() == [0, 1, 2, 3, 4]


def test_tied_scores_count_alike_in_every_figure_of_the_report(tmp_path):
    """Ten videos each of classes 0, 1 and 2 of six, every logit equal (a zeroed classifier):
    every figure ranks class 0 first, so top-1 is 10 of 30, as mean class accuracy is."""
    rows = [(v, 0, v // 10, [0.0] * 6) for v in range(30)]
    views = _views(rows)
    m = summarize(views)
    assert m["video_top1"] == m["clip_top1"] == m["mean_class_accuracy"] == pytest.approx(1 / 3)
    assert m["video_top5"] == 1.0  # classes 0 to 4
    files = write_report(
        tmp_path,
        views,
        classes=list("abcdef"),
        paths=[f"v{v}.mp4" for v in range(30)],
        protocol={},
        confusion_png=False,
    )
    with files["predictions"].open() as fh:
        predictions = list(csv.DictReader(fh))
    assert {(r["pred"], r["top5"]) for r in predictions} == {("0", "0 1 2 3 4")}
    assert sum(int(r["correct"]) for r in predictions) == 10
    with files["per_class"].open() as fh:
        per_class = list(csv.DictReader(fh))
    assert [r["correct"] for r in per_class] == ["10", "0", "0", "0", "0", "0"]
    scores = aggregate_views(views)
    assert confusion_matrix(scores.preds, scores.labels, 6)[:, 0].tolist() == [10] * 3 + [0] * 3


def test_mean_class_accuracy_is_exact_from_the_counts():
    """A balanced set, 20 videos a class, 0, 9, 0, 13, 2 and 3 right: the accuracies are those
    fractions in float64 (not float32's 0.44999998807907104 for 9 of 20), and their mean equals
    the video top-1 of 27 of 120, 0.225."""
    right = [0, 9, 0, 13, 2, 3]
    rows = []
    for label, count in enumerate(right):
        for i in range(20):
            pred = label if i < count else (label + 1) % 6
            rows.append((len(rows), 0, label, [5.0 if c == pred else 0.0 for c in range(6)]))
    views = _views(rows)
    scores = aggregate_views(views)
    accuracy = per_class_accuracy(scores.preds, scores.labels, 6).accuracy
    assert accuracy.dtype == torch.float64
    assert accuracy.tolist() == [0.0, 0.45, 0.0, 0.65, 0.1, 0.15]
    m = summarize(views, scores)
    assert m["mean_class_accuracy"] == m["video_top1"] == 0.225
