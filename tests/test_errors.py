"""octvideo.errors: one hierarchy, the built-in bases kept, fields that survive pickling."""

from __future__ import annotations

import errno
import pickle
import traceback

import pytest

from octvideo import errors
from octvideo.errors import (
    AnnotationError,
    CheckpointError,
    CheckpointWriteError,
    ConfigError,
    DecodeError,
    ExportError,
    InputPathError,
    Interrupted,
    NonFiniteLoss,
    OctvideoError,
    OutputWriteError,
    RunFailed,
    RunStopped,
    Terminated,
    TextFileError,
    TooManyBadVideos,
    TooManyWindows,
    UsageError,
    WorkerStartError,
    first_line,
    one_line,
    usage_errors,
)

KINDS = [
    (UsageError, OctvideoError),
    (RunStopped, OctvideoError),
    (ConfigError, UsageError),
    (InputPathError, UsageError),
    (InputPathError, FileNotFoundError),
    (AnnotationError, UsageError),
    (AnnotationError, ValueError),
    (CheckpointError, UsageError),
    (OutputWriteError, RunStopped),
    (CheckpointWriteError, RunStopped),
    (NonFiniteLoss, RunStopped),
    (WorkerStartError, RunStopped),
    (DecodeError, RuntimeError),
    (TooManyBadVideos, RuntimeError),
    (CheckpointError, ValueError),
    (TooManyWindows, ValueError),
    (TextFileError, ValueError),
    (ExportError, RuntimeError),
    (RunFailed, OctvideoError),
]


@pytest.mark.parametrize(("kind", "base"), KINDS, ids=lambda k: k.__name__)
def test_each_error_keeps_its_place_in_the_hierarchy(kind, base):
    assert issubclass(kind, base) and issubclass(kind, OctvideoError)


def test_every_exception_class_in_the_module_is_listed_here():
    defined = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    assert defined == {kind for kind, _ in KINDS} | {OctvideoError, Interrupted, Terminated}


def test_sigterm_unwinds_a_command_as_ctrl_c_does():
    assert issubclass(Terminated, Interrupted) and issubclass(Interrupted, KeyboardInterrupt)
    assert not issubclass(Interrupted, Exception)  # ``except Exception`` does not swallow it


def test_an_interrupt_is_the_line_after_the_command_and_its_exit_status():
    assert (str(Interrupted()), Interrupted().status) == ("stopped by Ctrl-C", 130)
    assert (str(Terminated()), Terminated().status) == ("stopped by SIGTERM", 143)
    where = "stopped by SIGTERM at global step 5; last.ckpt (global step 5) is kept"
    assert str(Terminated(where)) == where


def test_decode_error_reads_as_path_then_reason():
    error = DecodeError("clip.mp4", "decord found no video frames", decoder="decord")
    assert str(error) == "clip.mp4: decord found no video frames"
    assert (error.path, error.decoder, error.frame) == ("clip.mp4", "decord", None)


def test_decode_error_pickles_with_its_fields():
    back = pickle.loads(pickle.dumps(DecodeError("a.mp4", "worse", decoder="pyav", frame=3)))
    assert str(back) == "a.mp4: worse"
    assert (back.path, back.reason, back.decoder, back.frame) == ("a.mp4", "worse", "pyav", 3)


def test_checkpoint_error_pickles_with_its_field():
    error = CheckpointError("checkpoint metadata clip.num_frames is 0", field="clip.num_frames")
    back = pickle.loads(pickle.dumps(error))
    assert (str(back), back.field) == (str(error), "clip.num_frames")


def test_text_file_error_pickles_with_its_fields():
    for error in (TextFileError("a.txt", 16), TextFileError("a.txt", 16, line=2, byte=0xFF)):
        back = pickle.loads(pickle.dumps(error))
        assert (str(back), vars(back)) == (str(error), vars(error))
    assert str(error) == "a.txt:2: not UTF-8 text (byte 0xff)"


def test_too_many_bad_videos_can_be_rebuilt_from_its_text_alone():
    # PyTorch's DataLoader re-raises a worker's exception as ``type(err)(text)``
    rebuilt = TooManyBadVideos("Caught TooManyBadVideos in DataLoader worker process 0.")
    assert rebuilt.failures == []
    kept = TooManyBadVideos("2 videos failed", failures=[("a.mp4", "DecodeError: x")])
    assert pickle.loads(pickle.dumps(kept)).failures == [("a.mp4", "DecodeError: x")]


def test_too_many_bad_videos_gives_back_the_worker_message_as_reason():
    message = "3 videos in a row failed to decode: a.mp4: DecodeError: x; b.mp4: y"
    try:
        raise TooManyBadVideos(message, failures=[("a.mp4", "DecodeError: x"), ("b.mp4", "y")])
    except TooManyBadVideos as err:
        assert err.reason == message
        # as PyTorch's DataLoader rebuilds it in the main process from the worker's traceback
        trace = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    rebuilt = TooManyBadVideos(f"Caught TooManyBadVideos in DataLoader worker process 0.\n{trace}")
    assert rebuilt.reason == message


def test_output_write_error_names_the_file_what_was_kept_and_what_to_do(tmp_path):
    err = OSError(errno.ENOSPC, "No space left on device")
    error = OutputWriteError(tmp_path / "report.json", err, existed=True)
    assert (error.errno, error.reason, error.existed) == (errno.ENOSPC, err.strerror, True)
    assert str(error) == (
        f"cannot write {tmp_path / 'report.json'} (No space left on device); the earlier file "
        "is kept; free space there or choose another folder"
    )


def test_first_line_is_the_first_line_of_a_message_that_goes_on() -> None:
    err = RuntimeError("\n  shapes do not match\n  mat1: 2x3\n")
    assert first_line(err) == "shapes do not match"
    assert first_line(ValueError("")) == "ValueError"
    assert first_line(ValueError(" \n"), empty="") == ""


def test_one_line_keeps_every_line_of_a_message_on_one() -> None:
    err = ValueError("missing keys:\n  stem.conv.weight\n\tres2.0.conv_a.weight")
    assert one_line(err) == "missing keys: stem.conv.weight res2.0.conv_a.weight"
    assert one_line(OSError()) == "OSError"
    assert one_line(OSError(), empty="") == ""


def test_usage_errors_reports_the_kinds_named_and_lets_the_rest_through():
    with pytest.raises(UsageError) as info, usage_errors(ValueError):
        raise ValueError("--window 0s: give more than 0s")
    assert type(info.value) is UsageError and str(info.value) == "--window 0s: give more than 0s"
    refusal = CheckpointError("checkpoint metadata clip.num_frames is 0", field="clip.num_frames")
    with pytest.raises(CheckpointError) as info, usage_errors(ValueError):
        raise refusal  # a UsageError already: kept whole, its field too
    assert info.value is refusal
    with pytest.raises(TypeError), usage_errors(ValueError):
        raise TypeError("a bug")
