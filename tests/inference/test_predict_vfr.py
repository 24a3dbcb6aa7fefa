"""Windows over a variable-frame-rate video map seconds to frames through the frames' timestamps
(``seconds x average fps`` put a window's clip seconds away from the window) and end at the last
frame's time (``frames / average fps`` is before or after it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from octvideo.inference import Predictor
from tests.inference.conftest import encode_timed

# 12 frames 250 ms apart (0-2.75 s), then 12 frames 50 ms apart (2.8-3.35 s)
PTS_MS = [250 * i for i in range(12)] + [2800 + 50 * i for i in range(12)]


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return Predictor.from_checkpoint(checkpoint, batch_size=3)


@pytest.fixture(scope="module")
def vfr_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode_timed(tmp_path_factory.mktemp("vfr") / "vfr.mp4", PTS_MS)


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_window_clips_lie_in_their_windows(predictor, vfr_video, monkeypatch, decoder):
    plans = []
    run = Predictor._run

    def spy(self, plan, *args):
        plans.append(plan)
        return run(self, plan, *args)

    monkeypatch.setattr(Predictor, "_run", spy)
    result = predictor.predict(vfr_video, window="1s", decoder=decoder)
    assert result.ok, result.error
    assert len(result.windows) >= 3
    for window, indices in zip(result.windows, plans[0], strict=True):
        # the clip's middle (4 frames, 2 apart: between its 2nd and 3rd) at the window's middle
        middle = (PTS_MS[indices[1]] + PTS_MS[indices[2]]) / 2000
        assert window.start <= middle <= window.end, (window.start, window.end, indices)


@pytest.mark.parametrize(
    "pts_ms",
    [
        PTS_MS,  # frames / average fps: 3.85 s, after the last frame (3.35 s)
        [100 * i for i in range(10)] + [1000 + 500 * i for i in range(10)],  # 4.8 s, before 5.5 s
    ],
    ids=["long-gaps-first", "long-gaps-last"],
)
@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_windows_end_at_the_last_frame(predictor, tmp_path, decoder, pts_ms):
    path = encode_timed(tmp_path / "vfr.mp4", pts_ms)
    result = predictor.predict(path, window="1s", stride="0.5s", decoder=decoder)
    assert result.ok, result.error
    last = (pts_ms[-1] - pts_ms[0]) / 1000
    assert result.windows[-1].end == pytest.approx(last, abs=1e-6)
    assert result.windows[-2].end < last  # only the last window reaches it
    assert result.duration == pytest.approx(last, abs=1e-6)
    assert result.video.end == result.duration
