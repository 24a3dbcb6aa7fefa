"""``predict_many`` and ``octvideo predict --workers``: decoding in worker processes gives the
sequential path's records bit for bit, clips of several videos share a forward pass, the workers
decode up to two passes ahead of the model and no further, an input whose decoder hangs or
crashes fails alone while the others are predicted, and workers are not forks of the caller.

Faulty decoders are put in place of ``pipeline.read_input`` from ``tests/inference/
pipeline_faults.py``: a worker starts from a fork server and gets what it runs pickled by
reference, so a function defined in a test would not reach it."""

from __future__ import annotations

import csv
import dataclasses
import errno
import json
import math
import os
import pathlib
import re
import time
from functools import partial

import pytest
import torch

from octvideo.cli import main
from octvideo.data import decoding
from octvideo.data.open_files import open_file_limit
from octvideo.errors import RunStopped
from octvideo.inference import Predictor
from octvideo.inference import pipeline as pipeline_module
from octvideo.inference import predictor as predictor_module
from octvideo.inference.pipeline import PipelineStats, ReadAhead, predict_many
from tests.data.test_open_files import fake_open_file_limit
from tests.deadline import run_with_deadline
from tests.inference import pipeline_faults as faults
from tests.inference.media_helpers import faststart, overflowing_checkpoint
from tests.scripts import run_script

NAMES = ["short", "long", "corrupt", "odd", "audio", "vfr"]


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return Predictor.from_checkpoint(checkpoint, batch_size=3)


def _same(a, b) -> None:
    assert (a.path, a.error, a.num_frames, a.fps, a.duration) == (
        b.path,
        b.error,
        b.num_frames,
        b.fps,
        b.duration,
    )
    assert (a.video is None) == (b.video is None)
    if a.video is not None:
        assert torch.equal(a.video.probs, b.video.probs)
    assert [(w.start, w.end) for w in a.windows] == [(w.start, w.end) for w in b.windows]
    assert all(torch.equal(x.probs, y.probs) for x, y in zip(a.windows, b.windows, strict=True))


def test_inputs_whose_logits_are_nan_fail_alone_as_predict_fails_them(checkpoint, videos, tmp_path):
    huge = Predictor.from_checkpoint(overflowing_checkpoint(checkpoint, tmp_path / "huge.ckpt"))
    paths = [videos["short"], videos["long"]]
    results = list(predict_many(huge, paths, window="1s", workers=0))
    for result, path in zip(results, paths, strict=True):
        assert result.video is None and result.windows == []
        assert result.error.startswith("NonFiniteLogits: the model gives NaN or infinite logits")
        _same(result, huge.predict(path, window="1s"))


@pytest.mark.parametrize(
    "options",
    [{}, {"window": "1s", "stride": "0.5s"}, {"views": (2, 3)}],
    ids=["centre", "windows", "multi-view"],
)
def test_worker_probabilities_equal_the_sequential_ones_bit_for_bit(predictor, videos, options):
    paths = [videos[n] for n in NAMES]
    sequential = list(predict_many(predictor, paths, workers=0, **options))
    stats = PipelineStats()
    workers = list(predict_many(predictor, paths, workers=2, stats=stats, **options))
    assert [r.ok for r in workers] == [n != "corrupt" for n in NAMES]
    for a, b in zip(sequential, workers, strict=True):
        _same(a, b)
    assert stats.inputs == len(NAMES) and stats.forwards >= 2


def test_on_views_counts_the_views_of_each_forward_pass(predictor, videos):
    calls, stats = [], PipelineStats()
    paths = [videos[n] for n in ("short", "long", "odd", "audio")]  # a centre clip each
    results = predict_many(predictor, paths, workers=0, stats=stats, on_views=calls.append)
    assert all(r.ok for r in results)
    assert calls == [3, 1]  # passes of batch_size 3, the last one shorter
    assert (len(calls), sum(calls)) == (stats.forwards, stats.views)


def _without_seconds(text: str) -> str:
    return re.sub(r"[\d.]+ s to predict", "_ s to predict", text)


@pytest.mark.parametrize(
    ("suffix", "extra"), [(".jsonl", ["--window", "2s", "--stride", "1s"]), (".csv", [])]
)
def test_worker_records_and_tables_equal_the_sequential_ones(
    checkpoint, videos, tmp_path, capsys, extra, suffix
):
    paths = [str(videos[n]) for n in ("short", "long", "corrupt", "odd", "vfr")]
    outputs = {}
    for workers in ("0", "2"):
        out = tmp_path / f"w{workers}{suffix}"
        args = ["--ckpt", str(checkpoint), *paths, "--batch-size", "3", "--topk", "3"]
        code = main(["predict", *args, *extra, "--workers", workers, "--out", str(out)])
        assert code == 1  # the corrupt file
        table = _without_seconds(capsys.readouterr().out).replace(str(out), "OUT")
        with out.open(newline="") as f:
            rows = (
                [json.loads(line) for line in f] if suffix == ".jsonl" else list(csv.DictReader(f))
            )
        for row in rows:
            row.pop("seconds", None)
        outputs[workers] = rows, table
    assert outputs["0"] == outputs["2"]
    assert "4 of 5 inputs predicted, 1 failed" in outputs["2"][1]


def test_clips_of_several_videos_share_a_forward_pass(checkpoint, videos, monkeypatch):
    sizes = []
    logits = Predictor.logits

    def spy(self, clips):
        sizes.append(len(clips))
        return logits(self, clips)

    monkeypatch.setattr(Predictor, "logits", spy)
    paths = [str(videos[n]) for n in ("short", "long", "odd", "audio", "vfr")]
    args = ["predict", "--ckpt", str(checkpoint), *paths, "--quiet", "--batch-size", "4"]
    assert main([*args, "--workers", "0"]) == 0
    assert sizes == [4, 1]  # five centre clips, not one pass per video
    sizes.clear()
    assert main([*args, "--workers", "2", "--views", "1x3"]) == 0
    assert sizes == [4, 4, 4, 3]  # three crops of five clips: 15 views in passes of 4


class _Clock:
    """Stands in for ``time.perf_counter`` in the pipeline: it moves only when a reader or the
    model says they worked, so the seconds a result gets are exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class _Ticking(torch.nn.Module):
    """A network whose every forward pass takes 6 s on ``clock``."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self.clock = clock

    def forward(self, clips):
        self.clock.now += 6.0
        return torch.zeros(len(clips), 3)


def _read_on(clock: _Clock, predictor, path: str, request, chunk: int):
    """Input "bad" fails after 1 s; the others open in 3 s and read 2 clips in 2 s each."""
    if path == "bad":
        clock.now += 1.0
        yield pipeline_module.ERROR, "DecodeError: bad"
        return
    clock.now += 3.0
    yield pipeline_module.OPEN, faults.header(2)
    for _ in range(2):
        clock.now += 2.0
        yield pipeline_module.CLIPS, torch.zeros(1, 3)
    yield pipeline_module.END, None


def test_seconds_are_each_inputs_own_reading_and_share_of_forward_passes(predictor, monkeypatch):
    # the failed input's seconds used to run from when the model side took it up to when the
    # input before it had its result: the next input's reading and a forward pass (12 s)
    clock = _Clock()
    monkeypatch.setattr(pipeline_module, "time", clock)
    monkeypatch.setattr(pipeline_module, "read_input", partial(_read_on, clock))
    model = _Ticking(clock)
    ticking = Predictor(model, predictor.classes, predictor.protocol, batch_size=3)
    ticking.model = model  # its fused copy would tick a copy of the clock
    results = list(predict_many(ticking, ["good", "bad", "good2"], workers=0))
    assert [r.ok for r in results] == [True, False, True]
    # good: 7 s reading and 2 of the first pass's 3 views; bad: 1 s; good2: 7 s, 1 of 3 views
    # of the first pass and the whole second
    assert [r.seconds for r in results] == pytest.approx([7 + 4, 1, 7 + 2 + 6])


def _precomputed(predictor, paths, request_args):
    """Each input's events, read here, so that a worker hands them over at once: the outcome of
    a timeout test must not depend on how fast the machine decodes."""
    request = pipeline_module.check_request(pipeline_module.ReadRequest(*request_args))
    return {str(p): list(pipeline_module.read_input(predictor, str(p), request, 3)) for p in paths}


def test_a_hanging_decoder_fails_its_input_after_the_timeout_and_the_others_are_predicted(
    predictor, videos, monkeypatch
):
    paths = [str(videos[n]) for n in ("short", "long", "odd", "audio")]
    events = _precomputed(predictor, paths, ("center", None, None))
    expected = list(predict_many(predictor, paths, workers=0))
    monkeypatch.setattr(pipeline_module, "read_input", partial(faults.hang_on, paths[1], events))
    results = run_with_deadline(  # 120 s: a safety net against a hang, not a measured time
        120, lambda: list(predict_many(predictor, paths, workers=2, timeout=2))
    )
    assert [r.ok for r in results] == [True, False, True, True]
    assert results[1].error.startswith("DecodeTimeout: no progress in 2 s")
    assert results[1].seconds >= 2  # its own time: until its worker was stopped
    assert results[1].video is None and results[1].windows == []
    for result in (results[0], results[2], results[3]):
        assert torch.allclose(result.video.probs, expected[paths.index(result.path)].video.probs)


def test_a_decoder_that_hangs_half_way_through_a_long_video_fails_it_alone(
    checkpoint, videos, tmp_path, monkeypatch
):
    predictor = Predictor.from_checkpoint(checkpoint, batch_size=3)
    paths = [str(videos[n]) for n in ("long", "short", "odd")]
    events = _precomputed(predictor, paths, ("center", 0.5, None))
    # the first video hangs after its header and two chunks of clips
    monkeypatch.setattr(pipeline_module, "read_input", partial(faults.hang_at, paths[0], 3, events))
    out = tmp_path / "preds.jsonl"
    args = ["predict", "--ckpt", str(checkpoint), *paths, "--window", "0.5s", "--out", str(out)]
    code = run_with_deadline(
        120, main, [*args, "--batch-size", "3", "--workers", "2", "--timeout", "2s", "--quiet"]
    )
    assert code == 1
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    videos_rows = [r for r in rows if r["type"] == "video"]
    assert [(r["path"], r["ok"]) for r in videos_rows] == [
        (paths[0], False),
        (paths[1], True),
        (paths[2], True),
    ]
    assert videos_rows[0]["error"].startswith("DecodeTimeout: no progress in 2 s")
    assert not [r for r in rows if r["type"] == "window" and r["path"] == paths[0]]
    windows = [events[p][0][1].clips for p in paths[1:]]  # from the headers read above
    assert [r["path"] for r in rows if r["type"] == "window"] == [paths[1]] * windows[0] + [
        paths[2]
    ] * windows[1]


def test_a_decoder_that_crashes_fails_its_input_alone(predictor, videos, monkeypatch):
    paths = [str(videos[n]) for n in ("short", "odd", "long", "audio", "vfr")]
    crash = partial(faults.crash_on, paths[1], os.getpid())  # segfaults on the odd-sized video
    monkeypatch.setattr(pipeline_module, "read_input", crash)
    results = run_with_deadline(
        120, lambda: list(predict_many(predictor, paths, workers=2, timeout=600))
    )
    assert [r.ok for r in results] == [True, False, True, True, True]
    assert results[1].error == "DecoderDied: the decoding process died (signal SIGSEGV)"


def test_workers_decode_with_one_thread_at_the_niceness_asked(predictor, videos, monkeypatch):
    monkeypatch.setattr(pipeline_module, "read_input", faults.report_setup)
    torch.set_num_threads(2)
    nice = os.nice(0)
    (result,) = predict_many(predictor, [videos["short"]], workers=1)
    assert result.error == f"threads 1 and 1, nice {nice}"
    (result,) = predict_many(predictor, [videos["short"]], workers=1, worker_nice=5)
    assert result.error == f"threads 1 and 1, nice {min(nice + 5, 19)}"
    assert decoding.PYAV_THREADS == 0  # FFmpeg's choice in this process


def test_workers_keep_their_freed_memory(predictor, videos, monkeypatch):
    # set in each worker, whoever called predict_many: its clips' buffers are reused, not faulted
    # in afresh chunk after chunk
    monkeypatch.setattr(pipeline_module, "keep_freed_memory", faults.mark_kept)
    monkeypatch.setattr(pipeline_module, "read_input", faults.report_kept)
    (result,) = predict_many(predictor, [videos["short"]], workers=1)
    assert result.error == "kept: yes"
    assert "OCTVIDEO_TEST_KEPT" not in os.environ  # the worker's, not this process's


def test_workers_are_not_forks_of_a_process_that_has_decoded(predictor, videos, monkeypatch):
    # forked from this process, which has decoded with decord, a worker could hang closing its
    # reader (decord's packet queue copied mid-use); they start from a clean fork server
    (decoded,) = predict_many(predictor, [videos["short"]], workers=0)
    assert decoded.ok
    monkeypatch.setattr(pipeline_module, "read_input", faults.report_parent)
    (result,) = run_with_deadline(
        120, lambda: list(predict_many(predictor, [videos["short"]], workers=1))
    )
    assert result.error.startswith("parent ") and result.error != f"parent {os.getpid()}"


_UNGUARDED_SCRIPT = """
import sys
from octvideo.errors import WorkerStartError
from octvideo.inference import Predictor
from octvideo.inference.pipeline import predict_many

predictor = Predictor.from_checkpoint(sys.argv[1])
try:  # at the top level: each worker runs this file again before anything else
    for result in predict_many(predictor, sys.argv[2:], workers=2):
        print(result.path, result.error)
except WorkerStartError as err:
    print("stopped:", err)
"""


def test_a_script_without_a_main_guard_stops_at_the_first_worker_not_at_each_input(
    checkpoint, videos, tmp_path
):
    # the documented example without its guard: each worker would start workers again as it
    # starts, and exit; one error, not every input failing as a decoder that died
    inputs = [str(videos[name]) for name in ("short", "long", "odd")]
    done = run_script(tmp_path, _UNGUARDED_SCRIPT, str(checkpoint), *inputs)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    assert line.startswith("stopped: a worker process exited as it started (exit code 1;")


@pytest.mark.heavy
def test_a_slow_model_does_not_time_out_the_workers_waiting_for_it(predictor, videos, monkeypatch):
    # The workers are ahead of a model that takes 4 s a pass; what they sent waits for it, and
    # that wait is not a decoder making no progress.
    paths = [str(videos[n]) for n in ("short", "long", "odd", "audio")]
    events = _precomputed(predictor, paths, ("center", None, None))
    logits = Predictor.logits

    def slow(self, clips):  # in this process: the model side runs here
        time.sleep(4)
        return logits(self, clips)

    monkeypatch.setattr(pipeline_module, "read_input", partial(faults.replay, events))
    monkeypatch.setattr(Predictor, "logits", slow)
    slow_predictor = Predictor(predictor.model, predictor.classes, predictor.protocol, batch_size=1)
    results = run_with_deadline(
        120, lambda: list(predict_many(slow_predictor, paths, workers=2, timeout=1))
    )
    assert [r.error for r in results] == [None] * 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": -1}, "workers must be 0 to 64, got -1"),
        ({"workers": 65}, "workers must be 0 to 64, got 65"),
        ({"workers": 2.5}, "workers must be 0 to 64, got 2.5: a whole number"),
        ({"workers": True}, "workers must be 0 to 64, got True: a whole number"),
        ({"decoder": "xx"}, "decoder must be 'decord', 'pyav' or 'auto', got 'xx'"),
        ({"decoder": None}, "decoder must be 'decord', 'pyav' or 'auto', got None"),
        ({"timeout": 0}, "timeout must be above 0 and at most 86400 s, got 0"),
        ({"timeout": float("nan")}, "timeout must be above 0 and at most 86400 s, got nan"),
        ({"timeout": 1e6}, "timeout must be above 0 and at most 86400 s, got 1000000.0"),
        ({"window": "0.01s"}, "window '0.01s': give at least 0.1s"),
        ({"stride": "1s"}, "a stride needs a window"),
        ({"window": float("nan")}, "window nan: a duration must be a finite number of seconds"),
        ({"window": float("inf")}, "window inf: a duration must be a finite number of seconds"),
        ({"window": "2s", "stride": math.inf}, "stride inf: a duration must be a finite number"),
        ({"window": -1.0}, "window -1.0: a duration must be positive"),
        ({"views": (1000, 3)}, "views must be N temporal clips (1 to 100) x 1 or 3 crops"),
        ({"views": "1000x3"}, "views must be N temporal clips (1 to 100) x 1 or 3 crops"),
        ({"views": "bogus"}, "views must be 'center', 'multi', 'NxC' (e.g. '10x3') or (clips,"),
        ({"views": (2, 3, 1)}, "views must be 'center', 'multi', 'NxC' (e.g. '10x3') or (clips,"),
        ({"worker_nice": 20}, "worker_nice must be 0 to 19, got 20"),
        ({"worker_nice": 2.5}, "worker_nice must be 0 to 19, got 2.5"),
        ({"window": True}, "window True: cannot read True as a duration"),
    ],
)
def test_arguments_out_of_bounds_are_refused_before_any_input_is_read(
    predictor, videos, kwargs, message
):
    with pytest.raises(ValueError) as caught:
        predict_many(predictor, [videos["short"]], **kwargs)
    assert str(caught.value).startswith(message)


def test_a_multi_view_protocol_out_of_bounds_is_refused_before_any_input_is_read(
    checkpoint, tmp_path
):
    predictor = Predictor.from_checkpoint(checkpoint)
    predictor.protocol = dataclasses.replace(predictor.protocol, test_num_clips=1000)
    never = tmp_path / "never.mp4"  # reading it would give a result, not this error
    with pytest.raises(ValueError, match=r"^views must be N temporal clips \(1 to 100\)"):
        predict_many(predictor, [never], views="multi", workers=0)
    windows = predict_many(predictor, [never], views="multi", window="1s", workers=0)
    assert [r.error for r in windows] == [f"video {never} does not exist"]  # one centre clip


def test_an_unknown_decoder_is_refused_with_the_message_predict_gives(predictor, videos):
    with pytest.raises(ValueError) as one:
        predictor.predict(videos["short"], decoder="xx")
    with pytest.raises(ValueError) as many:
        predict_many(predictor, [videos["short"]], workers=0, decoder="xx")
    assert str(many.value) == str(one.value)


@pytest.mark.parametrize("single", ["v.mp4", b"v.mp4", pathlib.Path("v.mp4")], ids=repr)
def test_one_path_alone_is_refused_not_read_as_its_characters(predictor, single):
    with pytest.raises(ValueError, match=r"^paths must be a list of paths; got the single path "):
        predict_many(predictor, single, workers=0)


def test_views_spelled_n_x_c_are_the_n_clips_by_c_crops(predictor, videos):
    paths = [videos["short"], videos["odd"]]
    spelled = list(predict_many(predictor, paths, workers=0, views="2x3"))
    pair = list(predict_many(predictor, paths, workers=0, views=(2, 3)))
    for a, b in zip(spelled, pair, strict=True):
        _same(a, b)
    assert all(r.ok for r in spelled)


class _DeviceSpy(torch.nn.Module):
    """Stands in for a network on another device: records where its batches are, and gives
    equal logits back on the CPU. The one clip the Predictor checks it with (``misfit``, on the
    meta device, before its copy is made) is not recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, int]] = []
        self.checked = False

    def forward(self, clips):
        if not self.checked:
            self.checked = True
        else:
            self.seen.append((clips.device.type, len(clips)))
        return torch.zeros(len(clips), 3)


def test_the_model_side_runs_every_batch_on_the_predictors_device(predictor, videos, monkeypatch):
    # what --device cuda does on a GPU, with the meta device in its place (which check_device
    # refuses): the workers decode on the CPU and never touch the model, the model side moves
    # each batch to the device
    monkeypatch.setattr(predictor_module, "check_device", torch.device)
    spy = _DeviceSpy()
    on_device = Predictor(spy, predictor.classes, predictor.protocol, device="meta", batch_size=2)
    paths = [videos[n] for n in ("short", "odd", "audio")]
    results = list(predict_many(on_device, paths, workers=2, window="1s"))
    assert all(r.ok for r in results)
    seen = on_device.model.seen  # the predictor runs its own (fused) copy of the model
    assert {device for device, _ in seen} == {"meta"}
    assert sum(n for _, n in seen) == sum(len(r.windows) for r in results)
    assert all(
        torch.equal(r.video.probs, torch.full((3,), 1 / 3, dtype=torch.float64)) for r in results
    )


@pytest.mark.parametrize(("batch", "crops"), [(8, 1), (8, 3), (2, 3), (1, 1), (64, 1)])
def test_a_reader_waits_only_while_more_than_a_pass_is_decoded_and_never_past_the_bound(
    batch, crops
):
    chunk = max(1, batch // crops) * crops  # views of one chunk, as predict_many cuts them
    ahead = ReadAhead.passes(batch, chunk)
    assert ahead.bound >= 2 * batch and ahead.chunk == chunk
    for views in range(1, chunk + 1):
        for waiting in range(ahead.bound + 1):
            if ahead.may_take(views, waiting, head=False, holds=1):
                assert waiting + views <= ahead.bound
            else:
                assert waiting > batch  # the model has more than a whole pass waiting
    # the input the model side reads passes a full bound by one chunk, not by two
    assert ahead.may_take(chunk, ahead.bound, head=True, holds=0)
    assert not ahead.may_take(chunk, ahead.bound, head=True, holds=chunk)
    assert not ahead.may_take(chunk, ahead.bound, head=False, holds=0)


def _wait_for(pool, condition, what: str) -> None:
    """Blocks until the pool's state satisfies ``condition``: woken by each change the pool
    announces, with no clock read here (the timeout only keeps a bug from hanging the suite)."""
    with pool._cv:
        assert pool._cv.wait_for(condition, timeout=120), f"never {what}"


def test_workers_decode_up_to_the_bound_while_the_model_side_takes_nothing(predictor, monkeypatch):
    # one clip a video: before, a worker got its next video only when the model side asked for
    # clips, so during a forward pass the workers idled after one video each
    monkeypatch.setattr(pipeline_module, "read_input", faults.one_clip_each)
    ahead = ReadAhead(bound=6, chunk=3)
    request = pipeline_module.check_request(pipeline_module.ReadRequest())
    paths = [str(i) for i in range(16)]
    pool = pipeline_module._Pool(
        predictor, request, 3, paths, workers=2, timeout=600.0, ahead=ahead
    )
    try:
        # at least: video 0's worker may pass the bound by one before this thread looks
        _wait_for(pool, lambda: pool.waiting >= ahead.bound, "filled the bound")
        _wait_for(pool, lambda: all(w.paused for w in pool._workers), "held both workers")
        # and not one view more, but for video 0's: the model side reads it first, so its worker
        # may always pass the bound (when it started last, as it can under load)
        assert pool.waiting == pool.peak in (ahead.bound, ahead.bound + 1)
        for index in range(len(paths)):
            kinds, values = [], []
            for kind, payload in pool.events(index):
                kinds.append(kind)
                if kind == pipeline_module.CLIPS:
                    values.append(payload[0, 0].item())
            assert kinds == [pipeline_module.OPEN, pipeline_module.CLIPS, pipeline_module.END]
            assert values == [index]
        assert pool.peak <= ahead.bound + ahead.chunk
    finally:
        pool.close()


def test_the_input_the_model_waits_for_passes_later_inputs_that_fill_the_bound(
    predictor, tmp_path, monkeypatch
):
    # A slow first input and quick later ones: the other worker fills the bound with videos 1-4,
    # and the model side waits for video 0, whose worker may then hand over one chunk past the
    # bound (else both sides would wait for each other for ever).
    paths = ["long", *(f"short{i}" for i in range(1, 9))]
    started = tmp_path / "video 5 started"
    monkeypatch.setattr(pipeline_module, "read_input", partial(faults.slow_long, str(started)))
    spy = Predictor(_DeviceSpy(), predictor.classes, predictor.protocol, batch_size=2)
    stats = PipelineStats()
    results = run_with_deadline(  # 120 s: a safety net against a hang, not a measured time
        120, lambda: list(predict_many(spy, paths, workers=2, timeout=600, stats=stats))
    )
    assert [(r.path, r.ok) for r in results] == [(p, True) for p in paths]
    assert len(spy.model.seen) == 7  # 6 + 8 views in passes of 2
    ahead = ReadAhead.passes(2, 2)
    assert stats.waiting_peak == ahead.bound + ahead.chunk  # 4 of videos 1-4, 2 of video 0


@pytest.fixture(scope="module")
def cut_short(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A recording cut short: its index first, its last tenth of bytes gone."""
    root = tmp_path_factory.mktemp("cut")
    whole = faststart(root / "whole.mp4")
    cut = root / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.9)])
    return cut


@pytest.mark.parametrize("workers", [0, 1])
def test_a_file_cut_short_keeps_the_windows_before_the_cut_as_predict_does(
    predictor, videos, cut_short, workers
):
    alone = predictor.predict(cut_short, window="1s")
    assert alone.windows and alone.video is not None
    assert alone.error.startswith(f"DecodeError: {cut_short}: frames ")
    paths = [cut_short, videos["short"]]
    cut, short = predict_many(predictor, paths, window="1s", workers=workers)
    assert (cut.error, cut.num_frames, cut.duration) == (
        alone.error,
        alone.num_frames,
        alone.duration,
    )
    assert [(w.start, w.end) for w in cut.windows] == [(w.start, w.end) for w in alone.windows]
    for ours, theirs in zip(cut.windows, alone.windows, strict=True):
        torch.testing.assert_close(ours.probs, theirs.probs)
    torch.testing.assert_close(cut.video.probs, alone.video.probs)
    assert short.ok, short.error


def test_a_file_cut_short_ends_with_a_cut_event_and_a_whole_one_with_end(
    predictor, videos, cut_short
):
    alone = predictor.predict(cut_short, window="1s")
    events = _precomputed(predictor, [cut_short, videos["short"]], ("center", "1s", None))
    cut, whole = events[str(cut_short)], events[str(videos["short"])]
    kind, (header, reason) = cut[-1]
    assert (kind, reason) == (pipeline_module.CUT, alone.error)
    assert header.clips == len(alone.windows)  # the clips before the cut, not the plan's
    assert [k for k, _ in cut[:-1]] == [pipeline_module.OPEN] + [pipeline_module.CLIPS] * (
        len(cut) - 2
    )
    assert whole[-1] == (pipeline_module.END, None)


def test_a_path_given_as_bytes_is_its_name_in_the_result(predictor, videos):
    (result,) = predict_many(predictor, [os.fsencode(videos["short"])], workers=0)
    assert result.ok, result.error
    assert result.path == str(videos["short"])


def test_on_clips_counts_each_inputs_clips_as_they_run(predictor, videos):
    calls: list[tuple[int, int, int]] = []
    paths = [videos["long"], videos["short"]]
    results = list(
        predict_many(predictor, paths, window="1s", workers=0, on_clips=lambda *c: calls.append(c))
    )
    for index, result in enumerate(results):
        mine = [(done, clips) for i, done, clips in calls if i == index]
        assert {clips for _, clips in mine} == {len(result.windows)}
        dones = [done for done, _ in mine]
        assert dones == sorted(dones) and dones[-1] == len(result.windows)
    assert sorted({i for i, _, _ in calls}) == [0, 1]


def test_an_open_file_limit_too_low_for_the_workers_is_refused_before_any_input_is_read(
    predictor, videos, monkeypatch
):
    fake_open_file_limit(monkeypatch, soft=20, hard=20)
    paths = [videos[n] for n in NAMES]
    with pytest.raises(ValueError) as caught:
        predict_many(predictor, paths, workers=8)
    assert str(caught.value) == (  # one worker an input at most: 6 of the 8
        "the open-file limit 20 is too low for 6 workers (workers 8); raise `ulimit -n` to at "
        "least 40 or use fewer workers"
    )
    predict_many(predictor, paths[:1], workers=8).close()  # one worker: 20 files


def test_running_out_of_open_files_stops_predict_after_the_results_before_it(
    predictor, videos, monkeypatch
):
    # the decoder's EMFILE was the input's error: a failed row for a video that decodes
    paths = [str(videos[n]) for n in ("short", "odd", "vfr")]
    open_input = predictor.open_input

    def out_of_files(path, *args, **kwargs):
        if path == paths[1]:
            raise OSError(errno.EMFILE, "Too many open files", path)
        return open_input(path, *args, **kwargs)

    monkeypatch.setattr(predictor, "open_input", out_of_files)
    results = predict_many(predictor, paths, workers=0)
    assert next(results).ok
    with pytest.raises(RunStopped) as caught:
        next(results)
    assert str(caught.value) == (
        f"decoding {paths[1]} ran out of open files (the open-file limit is "
        f"{open_file_limit()}); raise `ulimit -n` or use fewer workers"
    )
