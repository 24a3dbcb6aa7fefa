"""The per-epoch log line of a run without a progress bar: epoch N/M, train loss, val top-1,
elapsed and time left; Lightning's bar only where stdout is a terminal."""

from __future__ import annotations

import logging
import re

from octvideo.config import load_config
from octvideo.engine.run import run_train, show_progress_bar
from tests.engine.conftest import tiny_overrides

LINE = re.compile(
    r"^epoch (\d+)/2: train loss \d+\.\d{4}, val top-1 \d+\.\d{2}%, "
    r"\d+:\d{2}:\d{2} elapsed, about \d+:\d{2}:\d{2} left$"
)


def test_a_run_without_a_progress_bar_logs_one_line_per_epoch(tiny_synth, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="octvideo.engine.callbacks")
    run_train(None, tiny_overrides(tiny_synth), out=str(tmp_path / "run"))
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "octvideo.engine.callbacks" and r.getMessage().startswith("epoch ")
    ]
    assert [LINE.match(line).group(1) for line in lines] == ["1", "2"], lines
    assert lines[-1].endswith("about 0:00:00 left")


def test_epochs_without_validation_leave_it_out_of_the_line(tiny_synth, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="octvideo.engine.callbacks")
    overrides = tiny_overrides(tiny_synth, **{"trainer.check_val_every_n_epoch": 2})
    run_train(None, overrides, out=str(tmp_path / "run"))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(lines) == 2
    assert "val top-1" not in lines[0] and LINE.match(lines[1])


def test_the_progress_bar_is_shown_only_on_a_terminal(monkeypatch):
    cfg = load_config(None, ["trainer.progress_bar=true"])
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert not show_progress_bar(cfg)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert show_progress_bar(cfg)
    assert not show_progress_bar(load_config(None, ["trainer.progress_bar=false"]))
