"""Faults for the training tests: a callback that SIGKILLs its own process at a chosen point.

``ssm-train`` builds callbacks from the config, so a test adds this one on the command line
(``+callbacks.kill._target_=train_faults.KillAt +callbacks.kill.step=6``) with this folder on
``PYTHONPATH``. SIGKILL cannot be caught: nothing of the process runs after it (no ``finally``, no
Lightning exception hook), as when the machine or a scheduler kills a job.
"""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path
from typing import Any, Optional

import lightning.pytorch as pl
import torch


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillAt(pl.Callback):
    """SIGKILL this process before the training batch at global step ``step``, or in the middle of
    writing the ``save_index``-th checkpoint file named ``save_name`` (1-based).

    The kill in a save lets the real writer open its file and receive the first half of the real
    serialized checkpoint, then kills the process before the rest is written.
    """

    def __init__(
        self, step: Optional[int] = None, save_name: Optional[str] = None, save_index: int = 1
    ) -> None:
        self.step, self.save_name, self.save_index = step, save_name, save_index
        self.saves = 0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self.step is not None and trainer.global_step == self.step:
            kill_self()

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.save_name is None:
            return
        checkpoint_io = trainer.strategy.checkpoint_io
        save_checkpoint = checkpoint_io.save_checkpoint

        def save(checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            if Path(path).name == self.save_name:
                self.saves += 1
                if self.saves == self.save_index:
                    torch.save = _half_then_kill(torch.save)
            save_checkpoint(checkpoint, path, storage_options)

        checkpoint_io.save_checkpoint = save


def _half_then_kill(real_save: Any) -> Any:
    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        kill_self()

    return save
