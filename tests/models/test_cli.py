"""``octvideo models`` bounds its view as ``octvideo train`` bounds a clip: --frames, --size, their
product and --octave are refused in one line naming the option and the bound, before any model
runs a view."""

from __future__ import annotations

import pytest

from octvideo.cli import main
from octvideo.cli.models import models_table
from octvideo.config import LIMITS, MAX_CLIP_PIXELS


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["--size", "100000"],
            f"--size 100000 is over the limit of {LIMITS['data.test_crop_size'][0]}",
        ),
        (
            ["--frames", "100000"],
            f"--frames 100000 is over the limit of {LIMITS['data.num_frames'][0]}",
        ),
        (["--frames", "256", "--size", "1024"], f"over the limit of {MAX_CLIP_PIXELS:,}"),
    ],
)
def test_a_view_over_the_bounds_is_one_line(args, needle, capsys, monkeypatch):
    def no_model_may_run(*args, **kwargs):
        raise AssertionError("a model was built for a refused view")

    monkeypatch.setattr("octvideo.cli.models.cost_table", no_model_may_run)
    monkeypatch.setattr("octvideo.cli.models._not_applicable", no_model_may_run)
    assert main(["models", *args, "--filter", "c2d_r18"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("octvideo models: error: ") and needle in line


def test_an_octave_factor_over_the_bound_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["models", "--octave", "1,2,100", "--filter", "c2d_r18"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --octave: --octave takes three factors T,H,W from 1 to 4" in err
    assert "Traceback" not in err


def test_a_slowfast_view_whose_fast_pathway_is_over_the_bound_is_not_applicable():
    # 64 Slow frames are 256 Fast ones at slowfast_alpha 4: 256 x 512^2 > MAX_CLIP_PIXELS
    with pytest.raises(ValueError, match="Fast pathway's 256 frames .* use fewer frames"):
        models_table(frames=64, size=512, pattern="slowfast_r50")
