"""A warm-up longer than the run is fitted to it (a tenth of the run, with a warning): the learning rate
reaches its peak and decays. An explicit total_steps shorter than the warm-up is a config error."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
import pytest
from train_helpers import TINY, compose_cfg

from ssm.training.sampling import ReproducibleDataModule
from ssm.training.schedule import fit_warmup_steps
from ssm.training.train import ConfigError, build_datamodule, build_module, build_trainer, validate_config


@pytest.mark.parametrize("warmup, total, fitted", [(50, 600, 50), (599, 600, 599), (600, 600, 60),
                                                   (1000, 40, 4), (50, 9, 0)])
def test_fit_warmup_steps(warmup: int, total: int, fitted: int) -> None:
    assert fit_warmup_steps(warmup, total) == fitted


class _RecordLR(pl.Callback):
    """The learning rate of the first (decayed, non-SSM) parameter group at every training step."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_warmup_longer_than_the_run_is_fitted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # digits-s4d warms up over 50 steps; this run has 2 epochs of 10 batches = 20 optimizer steps.
    cfg = compose_cfg([f"paths.output_dir={tmp_path}", *TINY, "layer.d_state=4", "trainer.max_epochs=2",
                       "trainer.limit_train_batches=10", "trainer.limit_val_batches=1", "test=false"])
    assert cfg.scheduler.warmup_steps == 50 and cfg.scheduler.total_steps is None
    validate_config(cfg)
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm)
    trainer, _ = build_trainer(cfg)
    record = _RecordLR()
    trainer.callbacks.append(record)
    with caplog.at_level(logging.WARNING, logger="ssm.training.lit_module"):
        trainer.fit(module, datamodule=ReproducibleDataModule(dm, seed=cfg.seed))
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert (scheduler.warmup_steps, scheduler.total_steps) == (2, 20)
    assert any("scheduler.warmup_steps=50 is not shorter than the run (20 optimizer steps)" in r.getMessage()
               and "warming up over 2 steps" in r.getMessage() for r in caplog.records)
    peak = cfg.optimizer.lr
    lrs = record.lrs
    assert len(lrs) == 20
    assert lrs[0] == pytest.approx(peak / 2) and lrs[1] == pytest.approx(peak)  # warm-up of 2 steps
    assert lrs[2] == pytest.approx(peak)  # the cosine starts at the peak
    assert all(b < a for a, b in zip(lrs[2:], lrs[3:]))  # and decays, to near zero
    assert lrs[-1] < 0.01 * peak


def test_explicit_total_steps_shorter_than_the_warmup_is_refused(tmp_path: Path) -> None:
    cfg = compose_cfg([f"paths.output_dir={tmp_path}", "scheduler.total_steps=40"])
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert str(err.value) == (
        "scheduler.warmup_steps must be below scheduler.total_steps=40 (the learning rate would never reach "
        "its peak), got 50; or set scheduler.total_steps=null to fit the schedule to the run"
    )
    validate_config(compose_cfg([f"paths.output_dir={tmp_path}", "scheduler.total_steps=51"]))
