"""Impossible config values are refused when the config loads, in one line naming the key, the
value and what is allowed, so ``octvideo train`` / ``test`` stop with status 2 before any work;
the boundary values that are allowed still load."""

from __future__ import annotations

import pytest

from octvideo import cli
from octvideo.config import MONITORS, load_config, parse_overrides
from octvideo.errors import ConfigError, UsageError


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        # 1. best.ckpt keeps the maximum: only metrics that are logged and higher-is-better
        (["output.monitor=val/foo"], ["output.monitor", "'val/foo'", "val/top1, val/top5"]),
        (["output.monitor=val/loss"], ["output.monitor", "'val/loss'", "highest"]),
        (["output.monitor=train/loss_epoch"], ["output.monitor", "'train/loss_epoch'"]),
        (["output.monitor=val/failed"], ["output.monitor", "'val/failed'"]),
        # 2. the DataLoader's workers assert prefetch_factor > 0
        (["data.prefetch_factor=0", "data.num_workers=1"], ["data.prefetch_factor", ">= 1", "0"]),
        (["data.prefetch_factor=-1", "data.num_workers=0"], ["data.prefetch_factor", "-1"]),
        # 3. null is "no resize"; 0 and negatives are no size
        (["data.decode_short_side=-5"], ["data.decode_short_side", "null", ">= 1", "-5"]),
        (["data.decode_short_side=0"], ["data.decode_short_side", "got 0"]),
        # 4.
        (["trainer.check_val_every_n_epoch=0"], ["trainer.check_val_every_n_epoch", ">= 1"]),
        # 5. 0 is off (last.ckpt per epoch only)
        (["output.ckpt_every_n_steps=-1"], ["output.ckpt_every_n_steps", ">= 0", "-1"]),
        # 6. SGD is the only optimiser
        (["optim.momentum=-1"], ["optim.momentum", "[0, 1)", "-1"]),
        (["optim.momentum=1.0"], ["optim.momentum", "[0, 1)", "1.0"]),
        (["optim.momentum=.nan"], ["optim.momentum", "nan"]),
        # 7. finite and in range
        (["optim.lr=.nan"], ["optim.lr", "finite", "> 0", "nan"]),
        (["optim.lr=.inf"], ["optim.lr", "inf"]),
        (["optim.lr=0"], ["optim.lr", "> 0"]),
        (["optim.lr_reference_batch=0"], ["optim.lr_reference_batch", ">= 1"]),
        (["optim.weight_decay=-1"], ["optim.weight_decay", ">= 0", "-1"]),
        (["optim.weight_decay=.nan"], ["optim.weight_decay", "finite", "nan"]),
        (["optim.weight_decay=.inf"], ["optim.weight_decay", "inf"]),
        (["optim.warmup_epochs=.inf"], ["optim.warmup_epochs", "finite", "inf"]),
        (["optim.warmup_epochs=-1"], ["optim.warmup_epochs", ">= 0"]),
        (["optim.warmup_start_factor=0"], ["optim.warmup_start_factor", "(0, 1]"]),
        (["optim.final_lr_factor=-0.1"], ["optim.final_lr_factor", "[0, 1]", "-0.1"]),
        (["optim.final_lr_factor=.nan"], ["optim.final_lr_factor", "nan"]),
        (["optim.step_gamma=0"], ["optim.step_gamma", "(0, 1]"]),
        (["optim.step_gamma=-0.1"], ["optim.step_gamma", "-0.1"]),
        (["optim.step_gamma=.inf"], ["optim.step_gamma", "inf"]),
        (["optim.step_epochs=[-1, 5]"], ["optim.step_epochs", ">= 0", "[-1, 5]"]),
        (["optim.label_smoothing=.nan"], ["optim.label_smoothing", "nan"]),
        (["optim.mixup_alpha=.inf"], ["optim.mixup_alpha", "finite", "inf"]),
        (["optim.cutmix_alpha=.nan"], ["optim.cutmix_alpha", "nan"]),
        (["optim.mix_prob=1.5"], ["optim.mix_prob", "[0, 1]", "1.5"]),
        # 8. validation clips are resized to the low jitter scale, then centre-cropped
        (
            ["data.val_crop_size=288"],
            ["data.train_jitter_scales low end 256", "data.val_crop_size 288"],
        ),
        # found in the scan of the numeric fields
        (["trainer.gradient_clip_val=.nan"], ["trainer.gradient_clip_val", "finite", "nan"]),
        (["trainer.gradient_clip_val=.inf"], ["trainer.gradient_clip_val", "inf"]),
        (["trainer.log_every_n_steps=-1"], ["trainer.log_every_n_steps", ">= 0", "-1"]),
        (["trainer.num_sanity_val_steps=-2"], ["trainer.num_sanity_val_steps", "-1 (all)", "-2"]),
        (["trainer.seed=-1"], ["trainer.seed", "[0, 4294967295]", "-1"]),
        (["trainer.seed=4294967296"], ["trainer.seed", "4294967296"]),
        (["trainer.precise_bn_batches=-1"], ["trainer.precise_bn_batches", ">= 0", "-1"]),
        (["data.target_fps=0"], ["data.target_fps", "> 0 or null", "0"]),
        (["data.num_workers=-1"], ["data.num_workers", ">= 0", "-1"]),
        (["data.max_retries=-1"], ["data.max_retries", ">= 0", "-1"]),
        (["data.std=[0.2, .nan, 0.2]"], ["data.std", "finite", "nan"]),
        (["data.mean=[0.4, .inf, 0.4]"], ["data.mean", "finite", "inf"]),
    ],
)
def test_bad_value_names_the_key(overrides, needles):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)
    assert isinstance(err.value, UsageError)  # the CLI prints it and exits with status 2


@pytest.mark.parametrize(
    "overrides",
    [
        *([f"output.monitor={m}"] for m in MONITORS),
        ["data.prefetch_factor=1", "data.num_workers=1"],
        ["data.prefetch_factor=1", "data.num_workers=0"],
        ["data.decode_short_side=1"],
        ["data.decode_short_side=null"],
        ["trainer.check_val_every_n_epoch=1"],
        ["output.ckpt_every_n_steps=0"],
        ["output.ckpt_every_n_steps=1"],
        ["optim.momentum=0", "optim.nesterov=false"],
        ["optim.momentum=0.999"],
        ["optim.lr=1.0e-12"],
        ["optim.weight_decay=0"],
        ["optim.warmup_epochs=0", "optim.warmup_start_factor=1"],
        ["optim.final_lr_factor=0"],
        ["optim.final_lr_factor=1"],
        ["optim.step_gamma=1", "optim.step_epochs=[0, 3]"],
        ["optim.label_smoothing=0", "optim.mixup_alpha=0", "optim.cutmix_alpha=0"],
        ["optim.mix_prob=0"],
        ["optim.mix_prob=1"],
        ["data.val_crop_size=256"],  # = the low jitter scale: the crop just fits
        ["data.train_jitter_scales=[224, 320]", "data.val_crop_size=224"],
        ["trainer.gradient_clip_val=0"],
        ["trainer.log_every_n_steps=0"],
        ["trainer.num_sanity_val_steps=-1"],
        ["trainer.seed=0"],
        ["trainer.seed=4294967295"],
        ["trainer.precise_bn_batches=0"],
        ["data.target_fps=null"],
        ["data.target_fps=29.97"],
        ["trainer.precise_bn_batches=1"],
        ["data.num_workers=0", "data.max_retries=0"],
    ],
)
def test_boundary_value_loads(overrides):
    cfg = load_config(None, overrides)
    for key, value in parse_overrides(overrides):  # loaded as given, never changed
        section, name = key.split(".")
        got = getattr(getattr(cfg, section), name)
        assert (list(got) if isinstance(got, tuple) else got) == value


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--cfg", "oct_i3d_synth"],
        ["test", "--cfg", "oct_i3d_synth", "--ckpt", "no_such.ckpt"],
    ],
)
def test_cli_refuses_a_bad_value_with_status_2(capsys, command):
    assert cli.main([*command, "output.monitor=val/loss"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "output.monitor" in err and "'val/loss'" in err
