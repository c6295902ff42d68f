"""Resuming from an epoch-boundary checkpoint ends exactly where an uninterrupted run ends."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from train_helpers import TINY, compose_cfg

from ssm.training.sampling import ReproducibleDataModule
from ssm.training.train import build_datamodule, build_module, build_trainer

# Dropout on (model and layer), shuffling on, a warm-up + cosine schedule spanning the run.
SMALL = [
    *TINY,
    "model.dropout=0.3",
    "layer.dropout=0.2",
    "layer.d_state=4",
    "data.batch_size=16",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=2",
    "scheduler.warmup_steps=3",
    "scheduler.total_steps=12",
]


def _fit(out: Path, max_epochs: int, ckpt_path: str | None = None) -> tuple[dict, dict]:
    cfg = compose_cfg([f"paths.output_dir={out}", f"trainer.max_epochs={max_epochs}", "seed=7", *SMALL])
    pl.seed_everything(cfg.seed, verbose=False)  # as ssm-train does before building
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm)
    trainer, _ = build_trainer(cfg)
    trainer.fit(module, datamodule=ReproducibleDataModule(dm, seed=cfg.seed), ckpt_path=ckpt_path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return {k: v.detach().clone() for k, v in module.state_dict().items()}, metrics


def test_resume_from_epoch_boundary_matches_uninterrupted_run(tmp_path: Path) -> None:
    full_state, full_metrics = _fit(tmp_path / "full", max_epochs=3)
    _fit(tmp_path / "part", max_epochs=2)
    last = tmp_path / "part" / "checkpoints" / "last.ckpt"
    assert last.is_file()
    ckpt = torch.load(last, map_location="cpu", weights_only=True)  # loads without pickled objects
    assert ckpt["epoch"] == 1 and "ssm_config" in ckpt
    resumed_state, resumed_metrics = _fit(tmp_path / "resumed", max_epochs=3, ckpt_path=str(last))
    assert full_state.keys() == resumed_state.keys()
    for k in full_state:
        assert torch.equal(full_state[k], resumed_state[k]), f"{k} differs after resuming"
    for k in ("train/loss_epoch", "train/acc", "val/loss", "val/acc"):
        assert resumed_metrics[k] == full_metrics[k], (k, resumed_metrics[k], full_metrics[k])


def test_the_compared_runs_are_stochastic(tmp_path: Path) -> None:
    # Guards the test above against passing trivially: with these settings dropout changes the
    # output from one call to the next, so equal end states mean equal random draws.
    cfg = compose_cfg([f"paths.output_dir={tmp_path}", *SMALL])
    dm = build_datamodule(cfg)
    dm.setup("fit")
    module = build_module(cfg, dm).train()
    batch = next(iter(dm.train_dataloader()))
    assert not torch.equal(module(batch), module(batch))


def test_resume_with_another_seed_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    from ssm.training.train import ConfigError, check_resume

    _fit(tmp_path / "part", max_epochs=1)
    last = tmp_path / "part" / "checkpoints" / "last.ckpt"
    check_resume(compose_cfg([f"ckpt_path={last}", "seed=7", f"paths.output_dir={tmp_path}"]))
    with pytest.raises(
        ConfigError, match=r"seed=8 differs from the seed of the checkpoint being resumed \(7\)"
    ):
        check_resume(compose_cfg([f"ckpt_path={last}", "seed=8", f"paths.output_dir={tmp_path}"]))
    with pytest.raises(ConfigError, match="does not exist"):
        check_resume(compose_cfg([f"ckpt_path={tmp_path / 'nope.ckpt'}", f"paths.output_dir={tmp_path}"]))


def test_rng_states_round_trip_through_a_weights_only_load(tmp_path: Path) -> None:
    import random

    import numpy as np

    from ssm.training.callbacks import rng_states, set_rng_states

    torch.save(rng_states(), tmp_path / "rng.pt")
    first = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_states(torch.load(tmp_path / "rng.pt", weights_only=True))
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]
