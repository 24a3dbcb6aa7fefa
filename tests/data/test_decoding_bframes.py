"""Streams with B-frames: decord returns MPEG-1/2/4 Part 2 frames out of order in any container,
and H.264 frames in AVI after a backward seek, so ``auto`` gives these to PyAV and ``decord``
refuses them; PyAV counts decoded frames in an AVI with B-frames, whose packet times are not
presentation times."""

from __future__ import annotations

from pathlib import Path

import pytest

from octvideo.data import decode, probe
from octvideo.data.decoding import Video
from octvideo.errors import DecodeError
from tests.data.media_helpers import NUM_FRAMES, encode_b_frames, frame_index

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
