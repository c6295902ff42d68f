"""A NaN in the loss or in a parameter stops training with a message saying where."""

from __future__ import annotations

import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from train_helpers import TINY, compose_cfg

from ssm.training.callbacks import NonFiniteError, first_nonfinite_parameter
from ssm.training.sampling import ReproducibleDataModule
from ssm.training.train import build_datamodule, build_module, build_trainer

SMALL = [
    *TINY,
    "layer.d_state=4",
    "data.batch_size=16",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=5",
    "trainer.limit_val_batches=1",
]


def _trainer_and_module(tmp_path: Path):
    cfg = compose_cfg([f"paths.output_dir={tmp_path}", *SMALL])
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm)
    trainer, _ = build_trainer(cfg)
    return trainer, module, ReproducibleDataModule(dm, seed=cfg.seed)


class _PoisonParameter(pl.Callback):
    """Writes a NaN into one entry of a parameter after the optimizer step of batch ``at``."""

    def __init__(self, name: str, at: int) -> None:
        self.name, self.at = name, at

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.at:
            with torch.no_grad():
                dict(pl_module.named_parameters())[self.name].view(-1)[1] = math.nan


def test_nan_loss_stops_the_run_naming_the_step(tmp_path: Path) -> None:
    trainer, module, data = _trainer_and_module(tmp_path)
    calls = {"n": 0}

    def poison_output(mod, args, out):  # the third training batch produces NaN logits
        calls["n"] += mod.training
        return out * math.nan if mod.training and calls["n"] == 3 else out

    module.model.register_forward_hook(poison_output)
    with pytest.raises(NonFiniteError, match=r"training loss is nan at epoch 0, global step 2;"):
        trainer.fit(module, datamodule=data)
    assert all(torch.isfinite(p).all() for p in module.parameters()), (
        "parameters must keep their last finite values"
    )


def test_nan_parameter_stops_the_run_naming_the_parameter(tmp_path: Path) -> None:
    trainer, module, data = _trainer_and_module(tmp_path)
    name = next(n for n in dict(module.named_parameters()) if n.endswith("log_dt"))
    trainer.callbacks.insert(0, _PoisonParameter(name, at=1))
    with pytest.raises(NonFiniteError) as err:
        trainer.fit(module, datamodule=data)
    assert str(err.value) == (
        f"parameter '{name}' has 1 non-finite value(s) of "
        f"{dict(module.named_parameters())[name].numel()} after the optimizer step at "
        "epoch 0, global step 2, batch 1"
    )


def test_first_nonfinite_parameter() -> None:
    m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    assert first_nonfinite_parameter(m) is None
    with torch.no_grad():
        m[1].weight[0, 0] = math.inf
        m[1].weight[1, 1] = math.nan
    assert first_nonfinite_parameter(m) == ("1.weight", 2, 8)
