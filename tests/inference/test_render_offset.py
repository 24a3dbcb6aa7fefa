"""``--render`` of a clip cut from a longer recording: its first frame's time is not 0 (MKV and MP4
keep the offset), and frames are labelled by their time from the first frame, as windows count."""

from __future__ import annotations

import pytest

from octvideo.inference import Predictor
from octvideo.inference import render as render_module
from tests.inference.conftest import encode_timed


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return Predictor.from_checkpoint(checkpoint, batch_size=3)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_render_counts_frame_times_from_the_first_frame(predictor, tmp_path, monkeypatch, suffix):
    # 4 s at 10 fps whose first frame is at 10 s
    path = encode_timed(tmp_path / f"cut{suffix}", [10_000 + 100 * i for i in range(40)])
    result = predictor.predict(path, window="1s")
    assert result.ok, result.error
    assert [(w.start, w.end) for w in result.windows] == [(k, k + 1.0) for k in range(4)]
    chosen: list[tuple[float, int]] = []
    label_for = render_module._label_for

    def spy(result, t, *rest):
        window = label_for(result, t, *rest)
        chosen.append((t, [id(w) for w in result.windows].index(id(window))))
        return window

    monkeypatch.setattr(render_module, "_label_for", spy)
    render_module.render(result, predictor.classes, tmp_path / "out.mp4", k=1)
    assert len(chosen) == 40
    assert chosen[0] == (pytest.approx(0.0), 0)
    assert chosen[15] == (pytest.approx(1.5), 1)
    # frame i at i / 10 s lies in window i // 10 (on a boundary, two windows are as near)
    assert all(index == i // 10 for i, (_, index) in enumerate(chosen) if i % 10)
