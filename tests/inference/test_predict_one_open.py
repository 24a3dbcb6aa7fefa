"""A long video with windows is opened (and indexed) once, not once per batch of clips."""

from __future__ import annotations

import pytest

from octvideo.data import decoding as decoding_module
from octvideo.inference import Predictor


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return Predictor.from_checkpoint(checkpoint, batch_size=3)


@pytest.mark.parametrize("decoder", ["auto", "decord", "pyav"])
def test_windows_decode_from_one_open_file(predictor, videos, monkeypatch, decoder):
    opened = []
    open_file = decoding_module._open

    def counting(path, name):
        opened.append(name)
        return open_file(path, name)

    monkeypatch.setattr(decoding_module, "_open", counting)
    batches = []
    result = predictor.predict(
        videos["long"], window="0.5s", decoder=decoder, on_batch=batches.append
    )
    assert result.ok, result.error
    assert len(result.windows) == 19 and len(batches) == 7  # 9.5 s, 3 clips a batch
    assert opened == ["pyav" if decoder == "pyav" else "decord"]
