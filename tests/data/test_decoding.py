"""Decoding: frame counts, frame identity per index, decord == PyAV, resize, bad files, and the
displayed orientation of a video with a display matrix (a phone video shot upright).

Streams with B-frames: decord returns MPEG-1/2/4 Part 2 frames out of order in any container,
and H.264 frames in AVI after a backward seek, so ``auto`` gives these to PyAV and ``decord``
refuses them; PyAV counts decoded frames in an AVI with B-frames, whose packet times are not
presentation times."""

from __future__ import annotations

import errno
import fractions
import io
import multiprocessing as mp
import os
import re
import types
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from octvideo.data import decode, decode_clip, probe
from octvideo.data import decoding as decoding_module
from octvideo.data.annotations import VIDEO_EXTENSIONS
from octvideo.data.config import MAX_RESIZE_SHORT_SIDE
from octvideo.data.decoding import Video
from octvideo.data.open_files import out_of_files_error, out_of_open_files
from octvideo.data.orientation import UPRIGHT
from octvideo.data.truncation import ShortOfLength, ShortOfSize, Truncation
from octvideo.errors import DecodeError
from tests.data.media_helpers import (
    GOOD,
    NUM_FRAMES,
    TURNS,
    cover_first,
    cover_only,
    cut_recordings_in,
    encode,
    encode_b_frames,
    encode_turned,
    ffmpeg_fails,
    frame_index,
    make_frames,
    no_free_files,
    turned_pattern,
    with_cover,
)
from tests.inference.media_helpers import faststart

INDICES = [0, 5, 23, 5, 11]


@pytest.mark.parametrize("name", GOOD)
@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_decoders_return_the_requested_frames(media, name, decoder):
    info = probe(media[name], decoder=decoder)
    assert info.num_frames == NUM_FRAMES
    assert info.decoder == decoder
    frames = decode(media[name], INDICES, decoder=decoder)
    height, width = (37, 53) if name == "odd.mkv" else (64, 96)
    assert frames.shape == (len(INDICES), height, width, 3)
    assert frames.dtype.is_floating_point is False
    got = [frame_index(float(f[8:, 8:].float().mean())) for f in frames]
    assert got == INDICES


@pytest.mark.parametrize("name", GOOD)
def test_decord_and_pyav_agree(media, name):
    a = decode(media[name], INDICES, decoder="decord").float()
    b = decode(media[name], INDICES, decoder="pyav").float()
    # Same codec output; only the YUV->RGB conversion may differ (chroma siting on odd sizes).
    assert (a - b).abs().mean() < 3.0
    assert probe(media[name], decoder="decord")[:4] == probe(media[name], decoder="pyav")[:4]


def test_decode_all_frames_and_resize(media):
    assert decode(media["vp9.webm"]).shape == (NUM_FRAMES, 64, 96, 3)
    assert decode(media["h264.mp4"], [1, 2], short_side=32).shape == (2, 32, 48, 3)
    assert decode(media["odd.mkv"], [0], short_side=20).shape == (1, 20, 28, 3)


@pytest.mark.parametrize("name", GOOD)
@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_sampled_frames_equal_the_same_frames_of_a_whole_decode(media, name, decoder):
    # a clip decodes (and converts to RGB) only the frames it samples, seeking where it can, one
    # open file read in pieces as predict reads it: the pixels are those of decoding every frame
    whole = decode(media[name], decoder=decoder)
    assert torch.equal(decode(media[name], INDICES, decoder=decoder), whole[INDICES])
    video = decoding_module.Video(media[name], decoder=decoder)
    for piece in ([11, 5, 5], [23], [0, 1, 2]):
        assert torch.equal(video.read(piece), whole[piece])


# a usual stream of each suffix counted as a video (Ogg holds VP8 here: PyAV has no Theora encoder)
_STREAM_OF = {
    ".mp4": "libx264",
    ".webm": "libvpx-vp9",
    ".mkv": "libx264",
    ".avi": "mpeg4",
    ".mov": "libx264",
    ".m4v": "libx264",
    ".mpg": "mpeg1video",
    ".mpeg": "mpeg2video",
    ".ogv": "libvpx",
}


@pytest.mark.parametrize("suffix", VIDEO_EXTENSIONS)
def test_a_file_of_every_suffix_counted_as_a_video_decodes(tmp_path, suffix):
    path = tmp_path / f"clip{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(_STREAM_OF[suffix], rate=24)  # a rate MPEG-1 can store
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for array in make_frames(NUM_FRAMES, 64, 96):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    assert _indices(decode(path, INDICES)) == INDICES


def test_variable_frame_rate_indices_are_frame_order(media):
    frames = decode(media["vfr.mp4"], np.arange(NUM_FRAMES), decoder="pyav")
    assert [frame_index(float(f[8:, 8:].float().mean())) for f in frames] == list(range(24))


@pytest.mark.parametrize("name", ["truncated.mp4", "zero.mp4", "text.mp4"])
@pytest.mark.parametrize("decoder", ["decord", "pyav", "auto"])
def test_bad_files_raise_decode_error_with_the_decoder_message(media, name, decoder):
    with pytest.raises(DecodeError) as err:
        decode(media[name], [0], decoder=decoder)
    assert name in str(err.value)


@pytest.mark.parametrize("name", ["zero.mp4", "text.mp4", "truncated.mp4"])
def test_auto_reports_pyavs_reason_once_and_ffmpeg_prints_nothing(media, name, capfd):
    # it chained both decoders' internals ("decord cannot open it: RuntimeError: ...; ...") and
    # decord's FFmpeg printed "[mov,mp4,...] moov atom not found" on stderr
    capfd.readouterr()
    with pytest.raises(DecodeError) as err:
        probe(media[name], decoder="auto")
    error = err.value
    assert (error.path, error.decoder) == (str(media[name]), "pyav")
    assert str(error) == f"{media[name]}: {error.reason}"
    assert "decord" not in str(error) and "Error" not in str(error) and "\n" not in str(error)
    assert str(error).count(str(media[name])) == 1
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("name", ["zero.mp4", "text.mp4", "truncated.mp4"])
def test_decord_refuses_a_file_it_cannot_open_in_one_error_and_prints_nothing(media, name, capfd):
    # decord printed "[10:24:05] .../video_reader.cc:83: ERROR opening: PATH, Invalid data found
    # when processing input" on fd 2 beside the error ("decord cannot open it: RuntimeError: Error
    # reading PATH...")
    capfd.readouterr()
    with pytest.raises(DecodeError) as err:
        Video(media[name], decoder="decord")
    assert capfd.readouterr().err == ""
    reason = (
        "the file is empty (0 bytes)"
        if name == "zero.mp4"
        else "Invalid data found when processing input"
    )
    assert (err.value.decoder, err.value.reason) == ("decord", f"decord cannot open it: {reason}")
    assert str(err.value) == f"{media[name]}: decord cannot open it: {reason}"


@pytest.mark.parametrize("name", [*GOOD, "zero.mp4", "text.mp4", "truncated.mp4", "missing.mp4"])
def test_the_open_check_fails_exactly_where_decords_open_prints_its_line(media, name, capfd):
    import decord

    path = str(media[name])
    reason = decoding_module._decord_open_error(path)  # also quiets decord's FFmpeg
    capfd.readouterr()
    try:
        decord.VideoReader(path, num_threads=1)
    except RuntimeError as err:
        assert str(err) == f"Error reading {path}..."
    printed = capfd.readouterr().err
    if reason is None:
        assert printed == ""
    else:
        assert printed.count("\n") == 1 and printed.endswith(f"ERROR opening: {path}, {reason}\n")


def test_an_empty_file_is_called_empty(media):
    with pytest.raises(DecodeError) as err:
        decode(media["zero.mp4"], [0])
    assert (
        str(err.value) == f"{media['zero.mp4']}: pyav cannot open it: the file is empty (0 bytes)"
    )


def test_auto_gives_one_sentence_for_a_frame_size_both_decoders_refuse(media, monkeypatch):
    monkeypatch.setattr(decoding_module, "MAX_ASPECT_RATIO", 1.2)  # h264.mp4 is 96x64
    with pytest.raises(DecodeError) as err:
        decode(media["h264.mp4"], [0], decoder="auto")
    assert str(err.value) == (
        f"{media['h264.mp4']}: frame size 96x64 (aspect ratio 2:1) is beyond the 1:1 octvideo "
        "decodes; crop or re-encode the video"
    )


def _audio_only(path: Path, codec: str = "aac", container_format: str | None = None) -> Path:
    """One second of silence in ``codec``, no video stream (``"wav"``: a WAV named ``path``)."""
    sample_format, dtype = ("s16", np.int16) if codec == "pcm_s16le" else ("fltp", np.float32)
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=16000)
        for start in range(0, 16000, 1024):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), dtype), format=sample_format, layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def test_a_file_without_video_is_not_given_to_decord(media, tmp_path, capfd):
    path = _audio_only(tmp_path / "audio_only.mp4")
    capfd.readouterr()
    with pytest.raises(DecodeError) as err:
        Video(path, decoder="auto")
    assert str(err.value) == f"{path}: no video stream"
    assert capfd.readouterr().err == ""  # decord's "Check failed: st_nb >= 0" never ran


def test_one_decoders_error_names_that_decoder_and_its_reason(media):
    with pytest.raises(DecodeError) as err:
        decode(media["zero.mp4"], [0], decoder="pyav")
    assert err.value.decoder == "pyav"
    assert str(err.value) == f"{media['zero.mp4']}: {err.value.reason}"


def test_pyav_taking_over_with_fewer_frames_names_the_frame(media, monkeypatch, caplog):
    video = decoding_module.Video(media["h264.mp4"], decoder="auto")
    assert video.info.decoder == "decord"

    def fail(indices):
        raise RuntimeError("decord lost the stream")

    # decord's index counted frames PyAV does not find, then decord failed to read one
    video._reader.info = video._reader.info._replace(num_frames=NUM_FRAMES + 6)
    monkeypatch.setattr(video._reader, "get", fail)
    with pytest.raises(DecodeError) as err, caplog.at_level("DEBUG", "octvideo.data.decoding"):
        video.read([NUM_FRAMES + 3])
    error = err.value  # PyAV's, which says what is wrong; decord's is in the DEBUG log
    assert error.decoder == "pyav" and error.frame == NUM_FRAMES + 3
    assert error.reason.startswith(f"frame indices must be in [0, {NUM_FRAMES})")
    assert "decord lost the stream" in caplog.text


def test_missing_file_and_bad_index(media):
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        decode(media["missing.mp4"])
    with pytest.raises(IndexError, match=r"\[0, 24\)"):
        decode(media["h264.mp4"], [24], decoder="pyav")


@pytest.mark.parametrize("decoder", ["ffmpeg", "AUTO", None])
def test_a_decoder_not_in_decoders_is_one_line_naming_them(media, decoder):
    path = media["h264.mp4"]
    for read in (lambda: decode(path, [0], decoder=decoder), lambda: probe(path, decoder=decoder)):
        with pytest.raises(ValueError) as err:
            read()
        assert str(err.value) == f"decoder must be 'decord', 'pyav' or 'auto', got {decoder!r}"
    with pytest.raises(ValueError, match="^decoder must be"):
        Video(path, decoder=decoder)


@pytest.mark.parametrize("short_side", [0, -5, 33.5, True, "32", MAX_RESIZE_SHORT_SIDE + 1])
def test_a_short_side_out_of_bounds_is_one_line_before_the_file_is_opened(media, short_side):
    message = (
        f"short_side must be a whole number from 1 to {MAX_RESIZE_SHORT_SIDE} (pixels) or None "
        f"(keep the size), got {short_side!r}"
    )
    video = Video(media["h264.mp4"], decoder="pyav")
    for read in (
        lambda: decode(media["missing.mp4"], [0], short_side=short_side),
        lambda: decode_clip(media["missing.mp4"], lambda info: [0], short_side=short_side),
        lambda: video.read([0], short_side=short_side),
    ):
        with pytest.raises(ValueError) as err:
            read()
        assert str(err.value) == message


def test_short_side_takes_whole_numbers_up_to_its_bound(media):
    path = media["h264.mp4"]
    assert decode(path, [0], short_side=np.int64(1)).shape == (1, 1, 1, 3)
    bound = MAX_RESIZE_SHORT_SIDE
    assert decode(path, [0], short_side=bound).shape == (1, bound, bound * 3 // 2, 3)


@pytest.mark.parametrize("indices", [[1.5], [[0, 1]], [[0], [1, 2]], [True], 3, "0", {0, 1}])
def test_indices_other_than_a_flat_sequence_of_whole_numbers_are_refused(media, indices):
    message = f"indices must be a flat sequence of whole frame numbers (0-based), got {indices!r}"
    with pytest.raises(ValueError) as err:
        decode(media["missing.mp4"], indices)
    assert str(err.value) == message
    with pytest.raises(ValueError) as err:
        Video(media["h264.mp4"]).read(indices)
    assert str(err.value) == message
    with pytest.raises(ValueError, match="^the indices choose gives must be a flat sequence"):
        decode_clip(media["h264.mp4"], lambda info: indices)


def test_indices_of_numpy_torch_and_range_read_the_same_frames(media):
    path = media["h264.mp4"]
    frames = decode(path, [0, 3, 2], decoder="pyav")
    for indices in (np.array([0, 3, 2], np.uint8), torch.tensor([0, 3, 2]), [np.int32(0), 3, 2]):
        assert torch.equal(decode(path, indices, decoder="pyav"), frames)
    assert torch.equal(decode(path, range(3), decoder="pyav")[2], frames[2])
    with pytest.raises(IndexError, match="past any video's frames"):
        decode(path, [2**70])


def test_auto_falls_back_to_pyav_per_file(media, monkeypatch):
    def refuse(self, path, header=None):
        raise RuntimeError("decord refuses this file")

    monkeypatch.setattr(decoding_module._DecordReader, "__init__", refuse)
    frames, indices, info = decoding_module.decode_clip(
        media["h264.mp4"], lambda info: [info.num_frames - 1], decoder="auto"
    )
    assert info.decoder == "pyav"
    assert indices.tolist() == [23]
    assert frame_index(float(frames[0, 8:, 8:].float().mean())) == 23
    with pytest.raises(DecodeError, match="decord refuses"):
        decode(media["h264.mp4"], [0], decoder="decord")


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_frames_beyond_the_size_bound_are_decoded_scaled_down(media, monkeypatch, decoder):
    # an 8K video took 100 MB a frame; the decoders now scale down to short side <= the bound
    monkeypatch.setattr(decoding_module, "MAX_DECODE_SHORT_SIDE", 40)  # h264.mp4 is 96x64
    info = probe(media["h264.mp4"], decoder=decoder)
    assert (info.width, info.height) == (60, 40)
    frames = decode(media["h264.mp4"], INDICES, decoder=decoder)
    assert frames.shape == (len(INDICES), 40, 60, 3)
    assert [frame_index(float(f[5:, 5:].float().mean())) for f in frames] == INDICES
    video = decoding_module.Video(media["h264.mp4"], decoder=decoder)
    assert video.read([3, 1]).shape == (2, 40, 60, 3)


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_frames_at_the_size_bound_decode_unchanged(media, monkeypatch, decoder):
    full = decode(media["h264.mp4"], INDICES, decoder=decoder)
    monkeypatch.setattr(decoding_module, "MAX_DECODE_SHORT_SIDE", 64)
    assert torch.equal(decode(media["h264.mp4"], INDICES, decoder=decoder), full)


def test_the_decoded_size_keeps_the_aspect_and_leaves_1080p_as_it_is():
    assert decoding_module.MAX_DECODE_SHORT_SIDE == 1080
    assert decoding_module.decoded_size(7680, 4320) == (1920, 1080)
    assert decoding_module.decoded_size(4320, 7680) == (1080, 1920)
    assert decoding_module.decoded_size(2560, 1440) == (1920, 1080)
    for size in ((1920, 1080), (1080, 1920), (1440, 1080), (320, 240)):
        assert decoding_module.decoded_size(*size) == size


ALL = list(range(NUM_FRAMES))


STRIDED = [0, 6, 12, 18, 3, 21]


BACKWARD = [23, 22, 21, 20, 19, 18]  # decord misorders H.264 in AVI after seeking back


@pytest.fixture(scope="module")
def bframes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bframes")
    names = {
        "mpeg4.avi": "mpeg4",  # Xvid / DivX
        "mpeg4.mkv": "mpeg4",
        "mpeg4.mp4": "mpeg4",
        "mpeg2.mpg": "mpeg2video",
        "h264.avi": "libx264",
        "h264.mp4": "libx264",
    }
    return {name: encode_b_frames(root / name, codec) for name, codec in names.items()}


def _indices(frames) -> list[int]:
    return [frame_index(float(f[8:, 8:].float().mean())) for f in frames]


@pytest.mark.parametrize("name", ["mpeg4.avi", "mpeg4.mkv", "mpeg4.mp4", "mpeg2.mpg", "h264.avi"])
def test_auto_gives_pyav_the_streams_decord_misorders(bframes, name):
    assert _indices(decode(bframes[name], ALL)) == ALL
    assert _indices(decode(bframes[name], STRIDED)) == STRIDED
    assert _indices(decode(bframes[name], BACKWARD)) == BACKWARD
    assert probe(bframes[name]).decoder == "pyav"
    video = Video(bframes[name])
    assert video.info.decoder == "pyav"
    assert _indices(video.read(STRIDED)) == STRIDED


@pytest.mark.parametrize("name", ["mpeg4.avi", "mpeg2.mpg", "h264.avi"])
def test_decord_refuses_the_streams_it_misorders(bframes, name):
    with pytest.raises(DecodeError) as err:
        decode(bframes[name], [0, 6], decoder="decord")
    message = str(err.value)
    assert message.startswith(str(bframes[name])) and "\n" not in message
    assert "with B-frames" in message and "in the wrong order" in message
    assert "decoder 'pyav'" in message


def test_pyav_counts_frames_of_an_avi_with_b_frames(bframes):
    # its packet times count in decode order: seeking by them returned neighbouring frames
    one_at_a_time = [decode(bframes["h264.avi"], [i], decoder="pyav")[0] for i in ALL]
    assert _indices(one_at_a_time) == ALL
    assert _indices(decode(bframes["h264.avi"], STRIDED, decoder="pyav")) == STRIDED


@pytest.mark.parametrize("decoder", ["auto", "decord", "pyav"])
def test_h264_with_b_frames_in_mp4_stays_with_decord(bframes, decoder):
    if decoder == "auto":  # decord orders H.264 B-frames in MP4 right: still the first choice
        assert probe(bframes["h264.mp4"]).decoder == "decord"
    assert _indices(decode(bframes["h264.mp4"], ALL, decoder=decoder)) == ALL
    assert _indices(decode(bframes["h264.mp4"], STRIDED, decoder=decoder)) == STRIDED
    assert _indices(decode(bframes["h264.mp4"], BACKWARD, decoder=decoder)) == BACKWARD


@pytest.fixture(scope="module")
def turned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("turned")
    return {name: encode_turned(root / f"{name}.mp4", turn) for name, (turn, _) in TURNS.items()}


@pytest.mark.parametrize("name", TURNS)
def test_every_decoder_gives_the_displayed_orientation(turned, name):
    # decord turned a 90 degree phone video upright and PyAV did not: predict (auto) and test
    # (pyav) saw different frames and gave different probabilities for the same file
    expected = TURNS[name][1](turned_pattern()).astype(np.float32)
    height, width = expected.shape[:2]
    for decoder in ("decord", "pyav", "auto"):
        assert probe(turned[name], decoder=decoder)[2:4] == (width, height), decoder
        frames = decode(turned[name], [0, 3, 5], decoder=decoder)
        assert frames.shape == (3, height, width, 3), decoder
        assert np.abs(frames.float().numpy() - expected).mean() < 3.0, decoder
        video = Video(turned[name], decoder=decoder)
        assert torch.equal(video.read([5, 0]), frames[[2, 0]])
    a = decode(turned[name], [0, 5], decoder="decord").float()
    b = decode(turned[name], [0, 5], decoder="pyav").float()
    assert (a - b).abs().mean() < 1.0


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_a_turned_video_beyond_the_size_bound_is_scaled_as_displayed(turned, monkeypatch, decoder):
    monkeypatch.setattr(decoding_module, "MAX_DECODE_SHORT_SIDE", 40)  # stored 96x64
    info = probe(turned["90"], decoder=decoder)
    assert (info.width, info.height) == (40, 60)
    frames = decode(turned["90"], [0, 1], decoder=decoder)
    assert frames.shape == (2, 60, 40, 3)
    small = torch.from_numpy(TURNS["90"][1](turned_pattern()).copy())[None]
    expected = decoding_module.resize_short_side(small, 40).float()
    assert (frames[:1].float() - expected).abs().mean() < 6.0


def test_decord_scaling_to_another_size_than_asked_is_refused_in_displayed_sizes(
    turned, monkeypatch
):
    # decord 0.6 pads some small widths; the message names the displayed sizes, not decord's
    import decord

    real = decord.VideoReader

    def padding(path, *args, width=-1, height=-1, **kwargs):
        return real(path, *args, width=width + 2 if width > 0 else width, height=height, **kwargs)

    monkeypatch.setattr(decord, "VideoReader", padding)
    monkeypatch.setattr(decoding_module, "MAX_DECODE_SHORT_SIDE", 40)  # stored 96x64
    with pytest.raises(DecodeError, match="decord cannot scale 64x96 to 40x60$"):
        probe(turned["90"], decoder="decord")


def test_decord_refuses_a_turn_it_makes_otherwise_than_expected(turned, monkeypatch):
    # a guard: decord's own turn is predicted from the matrix; were that wrong, the frames would be
    # turned twice, so decord is refused and auto gives the file to PyAV
    monkeypatch.setattr(decoding_module, "decord_turn", lambda matrix: UPRIGHT)
    with pytest.raises(DecodeError, match="not as their display matrix says"):
        probe(turned["90"], decoder="decord")
    assert probe(turned["90"], decoder="auto").decoder == "pyav"


def test_a_rotate_tag_in_mkv_is_applied_by_every_decoder(tmp_path):
    # FFmpeg 4 wrote a rotation into MKV as a ROTATE tag: decord (FFmpeg 4 inside) turns it and
    # PyAV's FFmpeg 7 did not, so the two decoders disagreed on the frame size
    import av

    path = tmp_path / "tagged.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"crf": "4"}
        stream.metadata["rotate"] = "90"
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(turned_pattern(), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    expected = np.rot90(turned_pattern(), -1).astype(np.float32)
    for decoder in ("decord", "pyav", "auto"):
        frames = decode(path, [0, 2], decoder=decoder)
        assert frames.shape == (2, 96, 64, 3), decoder
        assert np.abs(frames.float().numpy() - expected).mean() < 3.0, decoder


def test_a_path_that_is_no_regular_file_says_what_it_is_without_opening_it(tmp_path):
    fifo, device, dangling = tmp_path / "fifo.mp4", tmp_path / "zero.mp4", tmp_path / "gone.mp4"
    os.mkfifo(fifo)  # opening it would wait for a writer for ever
    device.symlink_to("/dev/zero")  # a link that resolves, to something endless
    nowhere = tmp_path / "nowhere.mp4"
    dangling.symlink_to(nowhere)
    loop = tmp_path / "loop.mp4"
    loop.symlink_to(loop)
    cases = {  # in the words of paths.why_not_a_file, as --ckpt and lists are
        fifo: f"{fifo} is a pipe, not a video file",
        device: f"{device} links to a device, not a video file",
        dangling: f"{dangling} is a broken symlink (to {nowhere}), not a video file",
        loop: f"{loop} is a symlink loop, not a video file",
        tmp_path / "none.mp4": f"video {tmp_path / 'none.mp4'} does not exist",
    }
    for path, message in cases.items():
        with pytest.raises(FileNotFoundError) as err:
            decoding_module.check_video_path(path)
        assert str(err.value) == message
    with pytest.raises(IsADirectoryError, match="is a directory, not a video file"):
        decoding_module.check_video_path(tmp_path)


# ---------------------------------------------------------------------------------- cut short


@pytest.fixture(scope="module")
def cut_short(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A recording cut short (its index first, its last tenth of bytes gone: a camera whose card
    filled), and how many of its frames FFmpeg decodes."""
    root = tmp_path_factory.mktemp("cut")
    whole = faststart(root / "whole.mp4")
    cut = root / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.9)])
    with av.open(str(cut)) as container:
        decodable = 0
        try:
            for _ in container.decode(video=0):
                decodable += 1
        except av.FFmpegError:
            pass
    return cut, decodable


@pytest.mark.parametrize("threads", [0, 1])
@pytest.mark.parametrize("timestamps", [True, False], ids=["by-seek", "in-order"])
@pytest.mark.parametrize("index", ["lists-60", "lists-what-it-holds"])
def test_a_file_cut_short_names_the_first_frame_that_cannot_be_decoded(
    cut_short, monkeypatch, threads, timestamps, index
):
    path, good = cut_short
    monkeypatch.setattr(decoding_module, "PYAV_THREADS", threads)  # 1: FFmpeg raises; 0: stops
    if index == "lists-what-it-holds":  # as a container whose index is read from what it holds
        monkeypatch.setattr(decoding_module, "index_past_end", lambda stream, path: None)
    video = Video(path, decoder="auto")
    assert video.info.decoder == "pyav"  # decord cannot open it
    if not timestamps:  # a file without usable timestamps is decoded from its start
        video._reader._pts = None
    total = video.info.num_frames
    assert 0 < good < total < 60  # its packets are listed, the last ones cannot be decoded
    where = f"frames {good} to {total - 1} of {total} (from {good / 10:.1f} s) cannot be decoded"
    if index == "lists-60":  # the frames its index lists past its end are named too
        reason = (
            f"{where} and the file's index lists 60 frames (6.0 s), {60 - total} of them "
            f"missing: the file is truncated"
        )
    else:
        reason = f"{where}: the file is truncated or corrupt"
    for wanted in ([total - 1], [good - 2, good], [good]):
        with pytest.raises(DecodeError) as err:
            video.read(wanted)
        assert err.value.frame == good
        assert err.value.reason == reason
    assert video.read(list(range(good))).shape == (good, 48, 64, 3)  # all before it decode


def cut_between_frames(whole: Path, path: Path, kept: int) -> Path:
    """``whole``, an MP4 with its index first, cut right after the bytes of its first ``kept``
    frames in the file (a partial download that stops between two frames)."""
    with av.open(str(whole)) as container:
        ends = sorted(entry.pos + entry.size for entry in container.streams.video[0].index_entries)
    path.write_bytes(whole.read_bytes()[: ends[kept - 1]])
    return path


@pytest.mark.parametrize("decoder", ["auto", "decord", "pyav"])
def test_a_file_cut_between_two_frames_names_the_frames_its_index_lists(media, tmp_path, decoder):
    # its 40 frames decode to the end: nothing said the index lists 60
    whole = faststart(tmp_path / "whole.mp4")  # 60 frames at 10 fps
    path = cut_between_frames(whole, tmp_path / "cut.mp4", 40)
    video = Video(path, decoder=decoder)
    assert video.read(list(range(40))).shape[0] == video.info.num_frames == 40
    assert video.truncation == Truncation(listed=60, seconds=6.0, missing=20)
    with pytest.raises(DecodeError) as err:
        video.check_whole()
    assert err.value.reason == (
        "the file's index lists 60 frames (6.0 s), 20 of them missing: the file is truncated"
    )
    assert err.value.frame == 40
    for name in GOOD:  # every frame they list, they hold
        whole_video = Video(media[name], decoder=decoder)
        assert whole_video.truncation is None
        whole_video.check_whole()


def cut_at(whole: Path, path: Path, fraction: float = 0.6) -> Path:
    """The first ``fraction`` of the bytes of ``whole``: a partial download (yt-dlp's .part)."""
    data = whole.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


# containers whose index is written last: a cut one opens, and only its header keeps its length
INDEXED_LAST = {
    "h264.mkv": ("libx264", "yuv420p"),
    "vp9.webm": ("libvpx-vp9", "yuv420p"),
    "vp8.webm": ("libvpx", "yuv420p"),
    "mpeg4.avi": ("mpeg4", "yuv420p"),
    "mjpeg.avi": ("mjpeg", "yuvj420p"),
}


def encode_seconds(
    path: Path | io.RawIOBase,
    codec: str,
    pix_fmt: str,
    n: int = 96,
    form: str | None = None,
    rate: int = 12,
) -> Path | io.RawIOBase:
    """``n`` frames at ``rate`` fps (8 s at 12), a square moving over noise: bytes spread evenly
    over time; ``path`` may be a file object, written as the container ``form``."""
    rng = np.random.default_rng(0)
    with av.open(
        path if isinstance(path, io.RawIOBase) else str(path), "w", format=form
    ) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        for i in range(n):
            array = rng.integers(0, 60, (48, 64, 3), dtype=np.uint8)
            array[16:24, i % 56 : i % 56 + 8] = 230
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize("decoder", ["auto", "pyav"])  # decord opens a cut MJPEG AVI at times
@pytest.mark.parametrize("name", INDEXED_LAST)
def test_a_partial_download_indexed_last_names_the_length_its_header_lists(tmp_path, name, decoder):
    # its frames decoded to the cut, as of a whole shorter video: data check called it fine
    codec, pix_fmt = INDEXED_LAST[name]
    whole = encode_seconds(tmp_path / name, codec, pix_fmt)  # 8.0 s at 12 fps
    path = cut_at(whole, tmp_path / f"cut_{name}")
    video = Video(path, decoder=decoder)
    held = video.info.num_frames
    assert 0 < held < 96
    missing = 8.0 - held / 12
    assert video.truncation == ShortOfLength(8.0, pytest.approx(missing, abs=0.01))  # ms ticks
    words = f"the file's header lists 8.0 s, {missing:.1f} s of it missing: the file is truncated"
    try:
        video.read(list(range(held)))
    except DecodeError as cut_inside:  # its last packet is cut in two (MJPEG's)
        assert cut_inside.reason.endswith(f" cannot be decoded and {words}")
    with pytest.raises(DecodeError) as err:
        video.check_whole()
    assert err.value.reason == words
    assert err.value.frame == held
    whole_video = Video(whole, decoder=decoder)
    assert whole_video.truncation is None
    whole_video.check_whole()


@pytest.mark.parametrize("name", ["h264.mkv", "vp9.webm"])
def test_a_partial_download_missing_under_a_second_is_truncated(tmp_path, name):
    # 30 frames of 120 at 40 fps (0.75 s) gone: within the second once allowed, it passed
    codec, pix_fmt = INDEXED_LAST[name]
    whole = encode_seconds(tmp_path / name, codec, pix_fmt, n=120, rate=40)  # 3.0 s
    with av.open(str(whole)) as container:
        starts = sorted(packet.pos for packet in container.demux(video=0) if packet.size)
    path = tmp_path / f"cut_{name}"
    path.write_bytes(whole.read_bytes()[: starts[90]])  # the bytes of the first 90 frames
    video = Video(path, decoder="pyav")
    assert video.info.num_frames == 90
    # H.264's B-frames: the 90 packets held may end a frame or two past frame 89
    assert video.truncation == ShortOfLength(3.0, pytest.approx(0.75, abs=0.06))
    with pytest.raises(DecodeError) as err:
        video.check_whole()
    assert err.value.reason == (
        f"the file's header lists 3.0 s, {video.truncation.missing:.1f} s of it missing: the file "
        f"is truncated"
    )
    assert Video(whole, decoder="pyav").truncation is None


@pytest.mark.parametrize("name", ["mpeg4.avi", "vp9.webm"])
def test_a_file_cut_at_95_percent_is_truncated(tmp_path, name):
    # its last frames, or its index written last, gone: the size it declares is not its own
    whole = encode_seconds(tmp_path / name, *INDEXED_LAST[name])
    path = cut_at(whole, tmp_path / f"cut_{name}", 0.95)
    video = Video(path, decoder="pyav")
    assert isinstance(video.truncation, (ShortOfLength, ShortOfSize))
    with pytest.raises(DecodeError) as err:
        video.check_whole()
    assert err.value.reason.startswith(
        ("the file's header lists ", "the file's container runs to ")
    )
    assert err.value.reason.endswith(" missing: the file is truncated")


def with_null_frames(path: Path) -> Path:
    """A whole 3 s MJPEG AVI: 12 coded frames at 12 fps, then 2 s of AVI null frames
    (zero-size chunks its index and frame count hold, "show the last frame again": what a
    capture program writes for a dropped or still frame), which PyAV does not demux."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        for array in make_frames(12, 48, 64):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
        for i in range(12, 36):
            packet = av.Packet(0)
            packet.stream, packet.pts, packet.dts = stream, i, i
            packet.time_base = fractions.Fraction(1, 12)
            container.mux(packet)
    return path


@pytest.mark.parametrize("decoder", ["auto", "pyav"])
def test_an_avi_ending_in_null_frames_is_whole(tmp_path, decoder):
    # its header counts 3 s, its packets end at 1 s: it was called truncated
    path = with_null_frames(tmp_path / "still.avi")
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 36
    video = Video(path, decoder=decoder)
    assert video.truncation is None
    video.check_whole()
    cut = Video(cut_at(path, tmp_path / "cut.avi", 0.8), decoder=decoder)
    assert isinstance(cut.truncation, (ShortOfLength, ShortOfSize))


def with_longer_sound(path: Path, codec: str, sound: str, rate: int) -> Path:
    """24 frames (2 s at 12 fps) and 6 s of silence in ``sound``: a recording whose audio runs
    on after its video, which Matroska's Segment Duration and FFmpeg's own length count."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=12)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        audio = container.add_stream(sound, rate=rate)
        for array in make_frames(NUM_FRAMES, 64, 96):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
        chunk = audio.codec_context.frame_size or 1024
        for start in range(0, 6 * rate, chunk):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, chunk), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = rate, start
            container.mux(audio.encode(frame))
        container.mux(audio.encode())
    return path


def with_long_last_frame(path: Path, codec: str) -> Path:
    """24 frames at 12 fps, the last one shown for 5 s (a screen recording that stops moving):
    the header's length ends 5 s after the last frame starts."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=12)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.time_base = stream.codec_context.time_base = fractions.Fraction(1, 1000)
        packets = []
        for i, array in enumerate(make_frames(NUM_FRAMES, 64, 96)):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = i * 1000 // 12, fractions.Fraction(1, 1000)
            packets += stream.encode(frame)
        packets += stream.encode()
        for packet in packets:
            if packet.pts == (NUM_FRAMES - 1) * 1000 // 12:
                packet.duration = 5000
            container.mux(packet)
    return path


def test_a_whole_file_is_not_taken_for_a_partial_download(media, bframes, tmp_path):
    # the header's length is the longest stream's, from time 0, to the last frame's end
    later = [5000 + i * 1000 // 12 for i in range(NUM_FRAMES)]  # a first frame at 5 s
    paused = np.cumsum([0, *[2000 if i % 6 == 5 else 40 for i in range(NUM_FRAMES - 1)]]).tolist()
    paths = (
        [media[name] for name in GOOD]
        + [bframes[name] for name in bframes]
        + [
            with_longer_sound(tmp_path / "sound.mkv", "libx264", "aac", 16000),
            with_longer_sound(tmp_path / "sound.webm", "libvpx-vp9", "libopus", 48000),
            with_longer_sound(tmp_path / "sound.avi", "mpeg4", "aac", 16000),
            encode(tmp_path / "later.mkv", "libx264", pts_ms=later),
            encode(tmp_path / "later.avi", "mpeg4", pts_ms=later),
            encode(tmp_path / "vfr.mkv", "libx264", pts_ms=paused),
            encode(tmp_path / "vfr.webm", "libvpx-vp9", pts_ms=paused),
            with_long_last_frame(tmp_path / "still.mkv", "libx264"),
            with_long_last_frame(tmp_path / "still.webm", "libvpx-vp9"),
        ]
    )
    for path in paths:
        for decoder in ("auto", "pyav"):
            video = Video(path, decoder=decoder)
            assert video.truncation is None, (path.name, decoder, video.truncation)
            video.check_whole()


class _Unseekable(io.RawIOBase):
    """A file that can only be written on: a pipe, to which a muxer cannot go back to fill in
    the header."""

    def __init__(self, file: io.BufferedWriter) -> None:
        self._file = file

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return self._file.write(data)


def test_a_partial_download_whose_header_lists_no_length_is_read_as_it_is(tmp_path):
    # a Matroska file written to a pipe records no length: nothing says what is missing
    whole = tmp_path / "piped.mkv"
    with whole.open("wb") as file:
        encode_seconds(_Unseekable(file), "libx264", "yuv420p", form="matroska")
    data = whole.read_bytes()
    segment = data.index(bytes.fromhex("18538067"))
    assert data[segment + 4 : segment + 12] == bytes.fromhex("01ffffffffffffff")  # unknown
    video = Video(cut_at(whole, tmp_path / "cut.mkv"), decoder="pyav")
    assert video.info.num_frames < 84
    assert video.truncation is None
    video.check_whole()


def test_a_file_cut_short_is_one_error_for_every_reader(cut_short):
    path, good = cut_short
    total = probe(path).num_frames
    reason = f"frames {good} to {total - 1} of {total}"
    with pytest.raises(DecodeError, match=reason):
        decode(path, [total - 1])
    with pytest.raises(DecodeError, match=reason):
        decode_clip(path, lambda info: [info.num_frames - 1], decoder="pyav")


# ------------------------------------------------------------------- decord's C++ errors


def _no_video_files(root: Path) -> dict[str, Path]:
    whole = faststart(root / "whole.mp4").read_bytes()
    (root / "tiny.mp4").write_bytes(whole[:100])  # its index begun, no stream in it yet
    return {
        "aac.mp4": _audio_only(root / "aac.mp4"),
        "mp3.mp4": _audio_only(root / "mp3.mp4", "mp3"),
        "wav.mp4": _audio_only(root / "wav.mp4", "pcm_s16le", "wav"),
        "tiny.mp4": root / "tiny.mp4",
    }


def _in_octvideos_words(message: str) -> bool:
    """No trace of decord's C++ text: its timestamp, its source file, its CHECK."""
    return not re.search(r"\[\d\d:\d\d:\d\d\]|video_reader\.cc|\.cc:\d|Check failed", message)


@pytest.mark.parametrize("name", ["aac.mp4", "mp3.mp4", "wav.mp4", "tiny.mp4"])
def test_decord_names_a_file_without_a_video_stream_in_octvideos_words(
    tmp_path, name, capfd, caplog
):
    # it was "decord cannot open it: DECORDError: [10:26:09] .../video_reader.cc:151: Check
    # failed: st_nb >= 0 (-1381258232 vs. 0) ERROR cannot find video stream with wanted index: -1"
    path = _no_video_files(tmp_path)[name]
    capfd.readouterr()
    with pytest.raises(DecodeError) as err, caplog.at_level("DEBUG", "octvideo.data.decoding"):
        Video(path, decoder="decord")
    assert str(err.value) == f"{path}: decord cannot open it: no video stream"
    assert err.value.decoder == "decord"
    assert capfd.readouterr().err == ""
    assert "video_reader.cc" in caplog.text  # decord's own text, for whoever needs it
    with pytest.raises(DecodeError, match="no video stream$"):
        probe(path, decoder="auto")


def test_decord_names_a_file_cut_short_in_octvideos_words(cut_short, capfd):
    # it was "decord cannot open it: DECORDError: [10:26:09] .../video_reader.cc:486: Error:
    # av_read_frame failed with 1094995529"
    path, _ = cut_short
    capfd.readouterr()
    with pytest.raises(DecodeError) as err:
        decode(path, [0], decoder="decord")
    assert err.value.reason == (
        "decord cannot open it: reading its packets failed (Invalid data found when processing "
        "input): the file is truncated or corrupt"
    )
    assert _in_octvideos_words(str(err.value)) and err.value.__cause__ is None
    assert capfd.readouterr().err == ""


def test_decord_names_the_first_frame_it_cannot_decode(media, monkeypatch, caplog):
    import decord

    video = Video(media["h264.mp4"], decoder="decord")
    get_batch = video._reader._vr.get_batch

    def fail_from_frame_11(indices):
        if max(indices) >= 11:
            raise decord._ffi.base.DECORDError(
                "[10:26:09] /github/workspace/src/video/ffmpeg/threaded_decoder.cc:290: Check "
                "failed: ret >= 0 (-1094995529 vs. 0) ERROR Fail to send packet."
            )
        return get_batch(indices)

    monkeypatch.setattr(video._reader._vr, "get_batch", fail_from_frame_11)
    with pytest.raises(DecodeError) as err, caplog.at_level("DEBUG", "octvideo.data.decoding"):
        video.read([23, 5, 11])
    assert (err.value.decoder, err.value.frame) == ("decord", 11)
    assert err.value.reason == (
        f"frame 11 of {NUM_FRAMES} (from {11 / video.info.fps:.1f} s) cannot be decoded: the file "
        "is truncated or corrupt"
    )
    assert _in_octvideos_words(str(err.value)) and "Fail to send packet" in caplog.text
    assert video.read([5]).shape[0] == 1  # the frames before it still decode


def test_an_unknown_decord_error_is_named_without_its_cpp_text():
    error = RuntimeError("[10:26:09] /src/video/video_reader.cc:99: Check failed: x ERROR who")
    cause = decoding_module._decord_cause(error)
    assert _in_octvideos_words(cause) and "DEBUG" in cause


# ------------------------------------------------------------------ cut inside or before the index


@pytest.fixture(scope="module")
def cut_recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return cut_recordings_in(tmp_path_factory.mktemp("cut_index"))


@pytest.mark.parametrize("decoder", ["auto", "decord", "pyav"])
@pytest.mark.parametrize("read", ["decode_clip", "Video", "probe"])
def test_a_video_stream_without_a_codec_is_a_decode_error_for_every_decoder(
    cut_recordings, decoder, read
):
    # it was "AttributeError: 'NoneType' object has no attribute 'name'" out of the header read,
    # which the training dataset (it skips DecodeErrors) let stop the run
    path = cut_recordings["in_index"]
    with av.open(str(path)) as container:  # what the file is: a stream PyAV has no codec for
        assert container.streams.video[0].codec_context is None
    reads = {
        "decode_clip": lambda: decode_clip(path, lambda info: [0], decoder=decoder),
        "Video": lambda: Video(path, decoder=decoder),
        "probe": lambda: probe(path, decoder=decoder),
    }
    with pytest.raises(DecodeError) as err:
        reads[read]()
    opening = "decord cannot open it: " if decoder == "decord" else ""
    assert str(err.value) == f"{path}: {opening}{decoding_module.NO_CODEC}"
    assert err.value.decoder == ("decord" if decoder == "decord" else "pyav")
    assert "truncated or corrupt" in decoding_module.NO_CODEC


@pytest.mark.parametrize("name", ["in_index", "at_10", "at_50", "at_90"])
@pytest.mark.parametrize("decoder", ["auto", "decord", "pyav"])
def test_a_recording_cut_before_its_index_is_one_decode_error(cut_recordings, name, decoder):
    path = cut_recordings[name]
    with pytest.raises(DecodeError) as err:
        decode_clip(path, lambda info: [0], decoder=decoder)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
    assert _in_octvideos_words(str(err.value)) and "Error" not in err.value.reason


@pytest.mark.parametrize("decoder", ["decord", "pyav", "auto"])
def test_a_decoder_out_of_open_files_raises_its_oserror_not_the_videos(media, decoder):
    # decord's and PyAV's "cannot open it: Too many open files" was a DecodeError without its
    # errno, counted as a bad video; "auto" went on to PyAV and blamed the file
    path = str(media["h264.mp4"])
    decode(path, [0], decoder=decoder)  # each decoder loaded before the files run out
    with no_free_files(), pytest.raises(OSError) as caught:
        decode(path, [0, 1], decoder=decoder)
    assert not isinstance(caught.value, DecodeError)
    assert caught.value.errno == errno.EMFILE
    assert out_of_files_error(caught.value) is caught.value
    assert decode(path, [0, 1], decoder=decoder).shape[0] == 2  # the file was fine


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENFILE])
def test_ffmpeg_out_of_open_files_is_raised_with_its_errno(media, monkeypatch, code):
    ffmpeg_fails(monkeypatch, code)
    with pytest.raises(OSError) as caught:
        probe(media["h264.mp4"], decoder="pyav")
    assert caught.value.errno == code
    assert out_of_files_error(caught.value) is caught.value


def test_ffmpeg_out_of_memory_is_the_files_decode_error(media, monkeypatch):
    # FFmpeg returns AVERROR(ENOMEM) for a corrupt header that asks for an absurd allocation:
    # taken for running out of open files, it stopped train with a traceback
    ffmpeg_fails(monkeypatch, errno.ENOMEM)
    with pytest.raises(DecodeError) as caught:
        probe(media["h264.mp4"], decoder="pyav")
    assert str(caught.value) == f"{media['h264.mp4']}: pyav cannot open it: Cannot allocate memory"
    assert not out_of_open_files(caught.value)


def test_a_files_fault_is_not_out_of_open_files(media):
    with pytest.raises(DecodeError) as caught:
        probe(media["zero.mp4"])
    assert not out_of_open_files(caught.value)


def _trim(source: Path, path: Path, start: int, end: int, shorten: bool = True) -> Path:
    """``source``, an MP4 of ``NUM_FRAMES`` frames at 12 fps with one edit list entry, trimmed as
    a lossless trim (``ffmpeg -ss .. -c copy``) writes it: the entry starts ``start`` frames into
    the media and (when ``shorten``) ends ``end`` frames before its end."""
    with av.open(str(source)) as container:
        ticks = container.streams.video[0].time_base.denominator // 12  # media ticks a frame
    data = bytearray(source.read_bytes())
    at = data.index(b"elst")
    assert data[at + 4] == 0 and int.from_bytes(data[at + 8 : at + 12], "big") == 1  # v0, 1 entry
    duration = int.from_bytes(data[at + 12 : at + 16], "big")  # movie timescale
    media_time = int.from_bytes(data[at + 16 : at + 20], "big", signed=True)
    if shorten:
        duration = duration * (NUM_FRAMES - start - end) // NUM_FRAMES
    data[at + 12 : at + 16] = duration.to_bytes(4, "big")
    data[at + 16 : at + 20] = (media_time + start * ticks).to_bytes(4, "big", signed=True)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("start", "end", "shorten"), [(6, 0, True), (0, 6, True), (6, 0, False), (5, 4, True)]
)
def test_a_trimmed_mp4_is_its_displayed_frames_and_decord_refuses_it(
    bframes, tmp_path, start, end, shorten
):
    # both decoders counted the frames its edit list leaves out (24, not 18): decord's frames
    # jumped back, PyAV's came from the untrimmed timeline and its last frames "cannot be decoded"
    path = _trim(bframes["h264.mp4"], tmp_path / "trimmed.mp4", start, end, shorten)
    shown = list(range(start, NUM_FRAMES - end))
    for decoder in ("pyav", "auto"):
        info = probe(path, decoder=decoder)
        assert (info.num_frames, info.decoder) == (len(shown), "pyav")
        whole = decode(path, decoder=decoder)
        assert _indices(whole) == shown
        one_by_one = torch.cat([decode(path, [i], decoder=decoder) for i in range(len(shown))])
        assert torch.equal(one_by_one, whole)
        assert _indices(Video(path, decoder=decoder).read([len(shown) - 1, 2, 0])) == [
            shown[-1],
            shown[2],
            shown[0],
        ]
    with pytest.raises(DecodeError) as err:
        decode(path, [0], decoder="decord")
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert "edit list" in message and "decoder 'pyav'" in message


def _two_streams(path: Path, height: int, width: int) -> Path:
    """The test frames as the first video stream, and noise of ``height`` x ``width`` (the higher
    bit rate, which FFmpeg ranks best) as the second."""
    noise = np.random.default_rng(0).integers(0, 255, (NUM_FRAMES, height, width, 3), np.uint8)
    with av.open(str(path), "w") as container:
        first, second = (container.add_stream("libx264", rate=12) for _ in range(2))
        first.width, first.height, first.pix_fmt = 96, 64, "yuv420p"
        second.width, second.height, second.pix_fmt = width, height, "yuv420p"
        for array, other in zip(make_frames(NUM_FRAMES, 64, 96), noise, strict=True):
            container.mux(first.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
            container.mux(second.encode(av.VideoFrame.from_ndarray(other, format="rgb24")))
        container.mux(first.encode())
        container.mux(second.encode())
    return path


@pytest.mark.parametrize("size", [(64, 96), (120, 160)])
def test_every_decoder_reads_the_first_of_several_video_streams(tmp_path, size):
    # decord read the noise stream of higher bit rate, PyAV the first; with another size decord
    # blamed a display matrix
    path = _two_streams(tmp_path / "two.mp4", *size)
    for decoder in ("pyav", "auto"):
        assert probe(path, decoder=decoder).decoder == "pyav"
        assert _indices(decode(path, STRIDED, decoder=decoder)) == STRIDED
    with pytest.raises(DecodeError) as err:
        decode(path, [0], decoder="decord")
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert "2 video streams" in message and "display matrix" not in message
    assert "decoder 'pyav'" in message


@pytest.mark.parametrize(
    "layout", ["cover first", "cover last", "cover first, trimmed", "cover first, turned"]
)
def test_every_decoder_reads_the_movie_not_its_cover_picture(tmp_path, layout):
    # with the cover before the movie PyAV read the cover as a video of 1 frame at 90000 fps,
    # decord the movie's 24; auto gave it to PyAV as "2 video streams"
    turned = layout.endswith("turned")
    path = with_cover(tmp_path / "cover_last.mp4", turned)
    size = (64, 96) if turned else (96, 64)  # displayed (width, height)
    shown = ALL
    if layout.endswith("trimmed"):  # the movie's edit list leaves its first 6 frames out
        path, shown = _trim(path, tmp_path / "trimmed.mp4", 6, 0), ALL[6:]
    if layout.startswith("cover first"):
        path = cover_first(path, tmp_path / "cover_first.mp4")
    decoders = ("pyav", "auto") if shown != ALL else ("pyav", "auto", "decord")
    for decoder in decoders:
        info = probe(path, decoder=decoder)
        assert (info.num_frames, info.fps, (info.width, info.height)) == (len(shown), 12, size)
        assert _indices(decode(path, decoder=decoder)) == shown
        picked = [i for i in STRIDED if i < len(shown)]
        assert _indices(decode(path, picked, decoder=decoder)) == [shown[i] for i in picked]
        assert _indices(Video(path, decoder=decoder).read([4, 1])) == [shown[4], shown[1]]
    assert probe(path).decoder == ("decord" if shown == ALL else "pyav")


@pytest.mark.parametrize("decoder", ["pyav", "decord", "auto"])
def test_a_file_whose_only_video_is_a_cover_picture_is_refused(tmp_path, decoder, capfd):
    # PyAV read the cover as a video of 1 frame; decord failed in its C++ words
    path = cover_only(tmp_path / "song.m4a")
    capfd.readouterr()
    for call in (lambda: probe(path, decoder=decoder), lambda: decode(path, [0], decoder=decoder)):
        with pytest.raises(DecodeError) as err:
            call()
        message = str(err.value)
        assert message.startswith(f"{path}: ") and "\n" not in message
        assert "only a cover picture" in message and "no video stream" in message
    assert capfd.readouterr().err == ""


def _mjpeg_with_times(path: Path, times_ms: list[int]) -> Path:
    """The test frames as MJPEG in MKV (no reordering), packet ``i`` stamped ``times_ms[i]``."""
    ms = fractions.Fraction(1, 1000)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=12)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuvj420p"
        stream.time_base = stream.codec_context.time_base = ms
        for i, array in enumerate(make_frames(NUM_FRAMES, 64, 96)):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = 80 * i, ms
            for packet in stream.encode(frame):
                packet.pts = times_ms[i]
                packet.dts = min(times_ms[i], 80 * i)  # the muxer takes no decreasing dts
                container.mux(packet)
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize("change", ["repeated", "backwards"])
def test_frames_with_a_repeated_or_backward_time_come_in_file_order(tmp_path, change):
    # PyAV sorted the times: index 12 read frame 11 (repeated time), and a clip holding both
    # failed with "KeyError: 11"
    times = [80 * i for i in range(NUM_FRAMES)]
    times[12] = times[11] if change == "repeated" else 80 * 13 + 40  # 880, 1080, 1040, 1120
    path = _mjpeg_with_times(tmp_path / f"{change}.mkv", times)
    whole = decode(path, decoder="pyav")
    assert _indices(whole) == ALL
    assert torch.equal(whole, decode(path, decoder="decord"))
    assert torch.equal(decode(path, [11, 12, 13], decoder="pyav"), whole[[11, 12, 13]])
    assert torch.equal(decode(path, [12], decoder="pyav"), whole[[12]])
    assert Video(path, decoder="pyav").times() is None  # no times to trust


# frames / average rate is 3.85 s, the stream 3.45 s long: a variable frame rate, nothing cut
LONG_GAPS_FIRST = [250 * i for i in range(12)] + [2800 + 50 * i for i in range(12)]


@pytest.mark.parametrize("kind", ["vfr", "intra-trimmed-end"])
def test_an_mp4_whose_index_keeps_no_cut_frame_goes_to_decord(tmp_path, kind):
    # no packet marked discarded: an all-intra stream trimmed at its end has its cut frames left
    # out of FFmpeg's index, so decord counts and returns what PyAV shows
    if kind == "vfr":
        path, shown = encode(tmp_path / "vfr.mp4", "libx264", pts_ms=LONG_GAPS_FIRST), ALL
    else:
        intra = encode(tmp_path / "intra.mov", "mjpeg", pix_fmt="yuvj420p")
        path, shown = _trim(intra, tmp_path / "trimmed.mov", 0, 6), list(range(NUM_FRAMES - 6))
    assert probe(path).decoder == "decord"
    for decoder in ("decord", "pyav"):
        assert probe(path, decoder=decoder).num_frames == len(shown)
        assert _indices(decode(path, decoder=decoder)) == shown
        # its header counts the cut frames (24), its index does not: it is not truncated
        assert Video(path, decoder=decoder).truncation is None


@pytest.mark.parametrize(("start", "end"), [(0, 6), (5, 4), (0, 1), (0, 0)])
def test_pyav_without_an_index_finds_a_trimmed_end_by_seeking(bframes, tmp_path, start, end):
    # PyAV before Stream.index_entries: the packets cut at the end are demuxed from a keyframe
    path = _trim(bframes["h264.mp4"], tmp_path / "trimmed.mp4", start, end)
    with av.open(str(path)) as container:
        found = decoding_module._tail_discards(container, container.streams.video[0])
    assert found == (end > 0)


class _CountingContainer:
    """A PyAV container that counts the frames its ``decode`` gives."""

    def __init__(self, container, decoded: list[int]) -> None:
        self._container, self._decoded = container, decoded

    def __getattr__(self, name):
        return getattr(self._container, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._container.__exit__(*exc)

    def decode(self, *args, **kwargs):
        for frame in self._container.decode(*args, **kwargs):
            self._decoded[0] += 1
            yield frame


@pytest.mark.parametrize("name", ["h264.avi", "repeated.mkv"])
def test_chunks_read_in_decode_order_decode_each_frame_once(bframes, tmp_path, monkeypatch, name):
    # frames counted in decode order (an AVI with B-frames, a repeated time) were decoded from
    # frame 0 for every chunk: data check and predict --window grew with the frames squared
    if name == "repeated.mkv":
        times = [80 * i for i in range(NUM_FRAMES)]
        times[12] = times[11]
        path = _mjpeg_with_times(tmp_path / name, times)
    else:
        path = bframes[name]
    whole = decode(path, decoder="pyav")
    decoded = [0]
    opened = decoding_module.open_container
    monkeypatch.setattr(
        decoding_module, "open_container", lambda p: _CountingContainer(opened(p), decoded)
    )
    video = Video(path, decoder="pyav")
    chunks = [video.read(range(start, start + 4)) for start in range(0, 20, 4)]
    assert torch.equal(torch.cat(chunks), whole[:20])
    assert decoded[0] == 20  # 60 from frame 0 for each of the 5 chunks
    assert torch.equal(video.read([22, 21, 22]), whole[[22, 21, 22]])  # on from frame 20
    assert decoded[0] == 23
    assert torch.equal(video.read([5, 2, 5]), whole[[5, 2, 5]])  # an earlier frame: from 0
    assert torch.equal(video.read([9]), whole[[9]])
    assert decoded[0] == 23 + 10


class _StoppedFrame:
    """A frame whose conversion is stopped, as Ctrl-C stops it (``_stopping``)."""

    def __init__(self, frame) -> None:
        self.frame = frame


def _stopping(reformatted):
    """``decoding.reformatted`` that stops at a ``_StoppedFrame``."""

    def stopping(frame, **kwargs):
        if isinstance(frame, _StoppedFrame):
            raise KeyboardInterrupt
        return reformatted(frame, **kwargs)

    return stopping


class _StoppingContainer(_CountingContainer):
    """A PyAV container whose ``decode`` gives frame ``stops[0]`` as a ``_StoppedFrame``, once
    of all containers sharing ``stops``."""

    def __init__(self, container, stops: list[int]) -> None:
        super().__init__(container, [0])
        self._stops = stops

    def decode(self, *args, **kwargs):
        for i, frame in enumerate(super().decode(*args, **kwargs)):
            if self._stops and i == self._stops[0]:
                self._stops.clear()
                frame = _StoppedFrame(frame)
            yield frame


def test_a_decode_order_read_stopped_midway_leaves_later_reads_right(bframes, monkeypatch):
    # a read stopped between taking a frame and counting it left the decode open one frame
    # behind: later reads gave frame i + 1 for frame i
    path = bframes["h264.avi"]
    whole = decode(path, decoder="pyav")
    opened, stops = decoding_module.open_container, []
    monkeypatch.setattr(
        decoding_module, "open_container", lambda p: _StoppingContainer(opened(p), stops)
    )
    monkeypatch.setattr(decoding_module, "reformatted", _stopping(decoding_module.reformatted))
    video = Video(path, decoder="pyav")
    stops.append(6)  # the reads' decode, not the header's
    assert torch.equal(video.read(range(4)), whole[:4])
    with pytest.raises(KeyboardInterrupt):
        video.read(range(4, 8))
    assert torch.equal(video.read(range(8, 12)), whole[8:12])


def test_a_process_forked_after_pyav_decoded_decodes_frames_of_another_size(tmp_path):
    # PyAV 18.1.1 keeps one threaded scaler per thread for the thread's life: a DataLoader
    # worker forked after its parent had decoded inherited it without its threads, and waited
    # for them forever on its first frame
    wide = encode(tmp_path / "wide.mp4", "libx264", n=4, height=64, width=96)
    tall = encode(tmp_path / "tall.mp4", "libx264", n=4, height=96, width=64)
    assert decode(str(wide), decoder="pyav").shape == (4, 64, 96, 3)
    child = mp.get_context("fork").Process(target=_decode_tall, args=(str(tall),))
    child.start()
    child.join(120)  # a bound on a hang, not a timing: it takes well under a second
    if child.is_alive():
        child.kill()
        child.join()
    assert child.exitcode == 0


def _decode_tall(path: str) -> None:
    """Decode ``path`` (96x64) with PyAV; exit 1 unless its frames come out whole."""
    if decode(path, decoder="pyav").shape != (4, 96, 64, 3):
        os._exit(1)


class _Entries:
    """An index of ``n`` entries, discarded where ``discards`` says; it counts the entries
    looked at."""

    def __init__(self, n: int, discards: set[int]) -> None:
        self.n, self.discards, self.looked = n, discards, 0

    def __iter__(self):
        for i in range(self.n):
            self.looked += 1
            yield types.SimpleNamespace(is_discard=i in self.discards)


@pytest.mark.parametrize(
    ("format_name", "discard", "found"),
    [
        ("avi", 5000, False),  # no edit lists: no cut, nothing looked at
        ("matroska,webm", 5000, False),
        ("mov,mp4,m4a,3gp,3g2,mj2", None, False),
        ("mov,mp4,m4a,3gp,3g2,mj2", 40, True),
        ("mov,mp4,m4a,3gp,3g2,mj2", 5000, True),  # a cut between two edits
        ("mov,mp4,m4a,3gp,3g2,mj2", 9990, True),
    ],
)
def test_the_header_looks_for_cut_frames_only_in_formats_with_edit_lists(
    format_name, discard, found
):
    # every header read walked the whole index in Python, also for containers without edit lists
    container = types.SimpleNamespace(format=types.SimpleNamespace(name=format_name))
    entries = _Entries(10_000, set() if discard is None else {discard})
    stream = types.SimpleNamespace(index_entries=entries)
    assert decoding_module._edit_list_cuts(container, stream) == found
    if "mov" not in format_name:
        assert entries.looked == 0
