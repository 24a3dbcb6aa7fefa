"""The per-epoch log line of a run without a progress bar: epoch N/M, train loss, val top-1,
elapsed and time left; Lightning's bar only where stdout is a terminal. Parameter digests of a
bfloat16 model. Precise BN (``trainer.precise_bn_batches``): each batch norm's running statistics
become the mean and variance of its input over the given training batches, with everything else
as it was, at the points where checkpoints are written. The replica record and the curves PNG are
written whole, never through a symbolic link."""

from __future__ import annotations

import json
import logging
import re
from types import SimpleNamespace

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from octvideo.config import load_config
from octvideo.engine.callbacks import (
    PreciseBatchNorm,
    ReplicaCheck,
    parameter_digest,
    plot_curves,
)
from octvideo.engine.checkpoint import load_checkpoint, model_state_dict
from octvideo.engine.run import run_train, show_progress_bar
from octvideo.errors import UsageError
from octvideo.paths import temporaries
from tests.engine.conftest import bn_population_moments, tiny_overrides

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


def test_parameter_digest_of_a_bfloat16_model() -> None:
    """numpy has no bfloat16: the digest hashes raw bytes, the same bytes as before for float32."""
    layer = nn.Linear(3, 2)
    digest = parameter_digest(layer)
    assert parameter_digest(layer) == digest
    half = parameter_digest(layer.to(torch.bfloat16))
    assert len(half) == 64 and half != digest


class TinyNet(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv3d(3, 4, 3, padding=1, bias=False),
            nn.BatchNorm3d(4),
            nn.ReLU(),
            nn.Conv3d(4, 5, 1),
            nn.BatchNorm3d(5, momentum=0.3),
            nn.AdaptiveAvgPool3d(1),
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(5, 3),
        )

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.model(video)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return F.cross_entropy(self(batch["video"]), batch["label"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.5)


def _batches(n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        {
            # a shifted, scaled input, so the statistics are far from BN's initial 0 / 1
            "video": 3.0 + 2.0 * torch.randn(4, 3, 2, 6, 6, generator=g, dtype=torch.float64),
            "label": torch.randint(0, 3, (4,), generator=g),
        }
        for _ in range(n)
    ]


def _norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _fit(callback: L.Callback) -> tuple[L.Trainer, TinyNet]:
    torch.manual_seed(0)
    module = TinyNet().double()
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
    )
    trainer.fit(module, train_dataloaders=DataLoader(_batches(5, seed=1), batch_size=None))
    return trainer, module


def _assert_moments(module: nn.Module, batches: list[dict[str, torch.Tensor]]) -> None:
    want = bn_population_moments(module.model, [b["video"] for b in batches])
    for bn, (mean, var) in zip(_norms(module), want, strict=True):
        torch.testing.assert_close(bn.running_mean, mean, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(bn.running_var, var, rtol=1e-10, atol=1e-12)


def test_statistics_are_the_moments_of_the_first_batches_at_epoch_end():
    epochs: list[int] = []
    source = _batches(3, seed=2)

    def loader(epoch: int) -> DataLoader:
        epochs.append(epoch)
        return DataLoader(source, batch_size=None)

    trainer, module = _fit(PreciseBatchNorm(2, loader))
    # once, at the end of the only epoch (no validation), from the first 2 of the 3 batches
    assert epochs == [0]
    _assert_moments(module, source[:2])


def test_update_leaves_everything_else_as_it_was():
    trainer, module = _fit(L.Callback())
    module.eval()
    norms = _norms(module)
    buffers = [(bn.running_mean, bn.running_var) for bn in norms]
    tracked = [int(bn.num_batches_tracked) for bn in norms]  # 5 training steps
    params = {k: v.clone() for k, v in module.state_dict().items() if "running" not in k}
    source = _batches(4, seed=3)

    PreciseBatchNorm(10, lambda epoch: DataLoader(source, batch_size=None)).update(trainer, module)

    _assert_moments(module, source)  # all 4: fewer batches than asked for
    assert not any(m.training for m in module.modules())
    assert [bn.momentum for bn in norms] == [0.1, 0.3]
    assert [int(bn.num_batches_tracked) for bn in norms] == tracked == [5, 5]
    for bn, (mean, var) in zip(norms, buffers, strict=True):
        assert bn.running_mean is mean and bn.running_var is var  # the same tensors, updated
    after = module.state_dict()
    for key, value in params.items():
        assert torch.equal(after[key], value), key


def test_no_batches_changes_nothing():
    trainer, module = _fit(L.Callback())
    before = [bn.running_mean.clone() for bn in _norms(module)]
    PreciseBatchNorm(2, lambda epoch: DataLoader([], batch_size=None)).update(trainer, module)
    for bn, mean in zip(_norms(module), before, strict=True):
        assert torch.equal(bn.running_mean, mean)


def test_batches_must_be_positive():
    with pytest.raises(ValueError, match="num_batches must be >= 1, got 0"):
        PreciseBatchNorm(0, lambda epoch: [])


class Final(L.Callback):
    """Keeps the model and the precise-BN batches of the last epoch when training ends."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        last_epoch = trainer.max_epochs - 1
        loader = trainer.datamodule.precise_bn_dataloader(last_epoch)
        self.clips = [b["video"] for _, b in zip(range(2), loader, strict=False)]
        self.model = pl_module.model


def test_training_run_stores_precise_statistics_and_trains_the_same(tiny_synth, tmp_path, caplog):
    # 12 clips, batch 4: 3 steps per epoch, 2 epochs, validation every epoch (the update runs
    # before it) and then only every 2nd epoch (the first update runs at that epoch's end).
    caplog.set_level(logging.INFO, logger="octvideo.engine.callbacks")
    runs = {}
    for name, extra in (
        ("plain", {}),
        ("precise", {"trainer.precise_bn_batches": 2}),
        ("precise_val2", {"trainer.precise_bn_batches": 2, "trainer.check_val_every_n_epoch": 2}),
    ):
        final = Final()
        run_train(
            None, tiny_overrides(tiny_synth, **extra), out=str(tmp_path / name), callbacks=[final]
        )
        runs[name] = (final, load_checkpoint(tmp_path / name / "checkpoints" / "last.ckpt"))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("precise BN")]
    assert len(lines) == 4, lines  # once per epoch in each precise run
    assert [line.rsplit(" ", 1)[-1] for line in lines] == ["3", "6", "3", "6"]  # global steps

    plain = model_state_dict(runs["plain"][1])
    for name in ("precise", "precise_val2"):
        final, ckpt = runs[name]
        state = model_state_dict(ckpt)
        stats = [k for k in state if k.endswith(("running_mean", "running_var"))]
        assert stats
        # the weights do not depend on the running statistics (training normalises with the
        # batch's own), so the three runs trained the same network
        for key, value in state.items():
            if key not in stats:
                assert torch.equal(value, plain[key]), (name, key)
        assert any(not torch.equal(state[k], plain[k]) for k in stats)
        # last.ckpt holds the moments of the last epoch's first 2 batches under its weights
        want = bn_population_moments(final.model, final.clips)
        got = [
            (state[f"{key}.running_mean"], state[f"{key}.running_var"])
            for key, m in final.model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]
        assert len(got) == len(want)
        for (mean, var), (want_mean, want_var) in zip(got, want, strict=True):
            torch.testing.assert_close(mean.double(), want_mean, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(var.double(), want_var, rtol=1e-4, atol=1e-5)


class CrashInLastValidation(L.Callback):
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step == trainer.estimated_stepping_batches:
            raise RuntimeError("preempted")


def test_a_run_stopped_in_its_last_validation_resumes_to_the_same_end(tiny_synth, tmp_path):
    # 3 epochs x 3 steps, last.ckpt every 3 steps. A last.ckpt written at step 9, before the
    # last validation, resumed as a finished run: no precise BN (last.ckpt kept the running
    # averages) and no last validation. The step trigger now skips the last step.
    overrides = tiny_overrides(
        tiny_synth,
        **{
            "trainer.max_epochs": 3,
            "trainer.precise_bn_batches": 2,
            "trainer.deterministic": "true",
            "output.ckpt_every_n_steps": 3,
        },
    )
    run_train(None, overrides, out=str(tmp_path / "ref"))
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="preempted"):
        run_train(None, overrides, out=str(run), callbacks=[CrashInLastValidation()])
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 6
    assert run_train(None, overrides, out=str(run), resume="auto").global_step == 9
    for name in ("last", "best"):
        want = load_checkpoint(tmp_path / "ref" / "checkpoints" / f"{name}.ckpt")
        got = load_checkpoint(run / "checkpoints" / f"{name}.ckpt")
        assert got["global_step"] == want["global_step"]
        want_state, got_state = model_state_dict(want), model_state_dict(got)
        for key, value in want_state.items():
            torch.testing.assert_close(got_state[key], value, rtol=0, atol=0, msg=key)


def test_replica_record_is_written_whole_and_never_through_a_link(tmp_path):
    out = tmp_path / "replicas.json"
    trainer = SimpleNamespace(is_global_zero=True, global_step=3)
    ReplicaCheck(out).on_train_end(trainer, nn.Linear(2, 2))
    assert json.loads(out.read_text())["global_step"] == 3
    assert not temporaries(out)
    victim = tmp_path / "victim.txt"
    victim.write_text("victim data\n")
    link = tmp_path / "link.json"
    link.symlink_to(victim)
    with pytest.raises(UsageError, match="is a symbolic link"):
        ReplicaCheck(link).on_train_end(trainer, nn.Linear(2, 2))
    assert victim.read_text() == "victim data\n"


@pytest.mark.parametrize("rank", [0, 1])
def test_only_global_rank_zero_says_the_replicas_are_identical(tmp_path, monkeypatch, caplog, rank):
    def all_gather_object(digests: list, digest: str) -> None:
        digests[:] = [digest, digest]

    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
    monkeypatch.setattr(torch.distributed, "all_gather_object", all_gather_object)
    trainer = SimpleNamespace(is_global_zero=rank == 0, global_step=3)
    with caplog.at_level(logging.INFO, logger="octvideo.engine.callbacks"):
        ReplicaCheck(tmp_path / "replicas.json").on_train_end(trainer, nn.Linear(2, 2))
    said = ["parameters identical on all 2 ranks"] if rank == 0 else []
    assert [r.getMessage() for r in caplog.records] == said


@pytest.mark.parametrize("rank", [0, 1])
def test_only_global_rank_zero_says_a_precise_bn_update(monkeypatch, caplog, rank):
    """Every process updates (the statistics are combined over them); fvcore's line and
    octvideo's are said once, and fvcore's logger keeps no filter of the update's."""
    trainer, module = _fit(L.Callback())
    monkeypatch.setattr(L.Trainer, "is_global_zero", property(lambda self: rank == 0))
    fvcore_logger = logging.getLogger("fvcore.nn.precise_bn")
    filters = list(fvcore_logger.filters)
    source = _batches(2, seed=4)
    with caplog.at_level(logging.INFO):
        PreciseBatchNorm(2, lambda epoch: DataLoader(source, batch_size=None)).update(
            trainer, module
        )
    _assert_moments(module, source)
    said = [r.getMessage().split(" for ")[0] for r in caplog.records if "precise" in r.name]
    said += [r.getMessage().split(":")[0] for r in caplog.records if r.name.startswith("octvideo")]
    assert said == (["Computing precise BN statistics", "precise BN"] if rank == 0 else [])
    assert fvcore_logger.filters == filters


def test_training_curves_are_written_whole_and_never_through_a_link(tmp_path):
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("epoch,step,train/loss_step,lr\n0,0,1.5,0.1\n0,1,1.2,0.1\n")
    png = plot_curves(metrics, tmp_path / "curves.png")
    assert png.read_bytes().startswith(b"\x89PNG") and not temporaries(png)
    victim = tmp_path / "victim.txt"
    victim.write_text("victim data\n")
    link = tmp_path / "link.png"
    link.symlink_to(victim)
    with pytest.raises(UsageError, match="is a symbolic link"):
        plot_curves(metrics, link)
    assert victim.read_text() == "victim data\n"
