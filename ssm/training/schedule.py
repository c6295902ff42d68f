"""Learning-rate schedule: linear warm-up followed by a half-cosine decay.

The schedule used to train S4 (arXiv 2111.00396) and its successors: the learning rate of every
parameter group rises linearly from 0 to its base value over ``warmup_steps`` optimizer steps, then
follows ``min_lr + (base - min_lr) * (1 + cos(pi * progress)) / 2`` down to ``min_lr_ratio * base`` at
``total_steps``. The value is a closed form of the step number, so resuming from a checkpoint gives
exactly the same rates as an uninterrupted run.

A warm-up at least as long as the run would never reach the peak rate nor decay; when the run's length
fills in ``total_steps``, :func:`fit_warmup_steps` shortens it to a tenth of the run.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

__all__ = ["CosineWarmupLR", "cosine_warmup_factor", "fit_warmup_steps"]

# The warm-up's share of a run it would otherwise outlast (a common choice for short fine-tuning runs).
FIT_WARMUP_FRACTION = 0.1


def fit_warmup_steps(warmup_steps: int, total_steps: int) -> int:
    """``warmup_steps`` if the warm-up ends before ``total_steps``, else a tenth of the run (rounded down).

    A warm-up of ``total_steps`` steps or more would keep the learning rate below its peak for the whole
    run and never start the decay (e.g. a recipe's 1000 warm-up steps in a 2-epoch trial run).
    """
    if warmup_steps < total_steps:
        return warmup_steps
    return int(total_steps * FIT_WARMUP_FRACTION)


def cosine_warmup_factor(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based).

    Args:
        step: number of optimizer steps taken so far.
        warmup_steps: length of the linear warm-up (0 disables it).
        total_steps: step at which the cosine reaches ``min_lr_ratio``; later steps stay there.
        min_lr_ratio: final learning rate as a fraction of the base one, in [0, 1].
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = total_steps - warmup_steps
    if decay_steps <= 0:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class CosineWarmupLR(torch.optim.lr_scheduler.LambdaLR):
    """Linear warm-up then cosine decay, stepped once per optimizer step.

    Args:
        optimizer: the optimizer whose groups are scheduled (each from its own base lr).
        warmup_steps: linear warm-up length in optimizer steps (>= 0).
        total_steps: total optimizer steps of the run (> 0). The training module fills it from
            ``trainer.estimated_stepping_batches`` when the config leaves it ``null``.
        min_lr_ratio: final lr as a fraction of the base lr, in [0, 1].
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int = 0,
        total_steps: Optional[int] = None,
        min_lr_ratio: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(warmup_steps, int) or isinstance(warmup_steps, bool) or warmup_steps < 0:
            raise ValueError(f"scheduler.warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        if total_steps is None or not isinstance(total_steps, int) or total_steps <= 0:
            raise ValueError(f"scheduler.total_steps must be a positive integer, got {total_steps!r}")
        if not 0.0 <= float(min_lr_ratio) <= 1.0:
            raise ValueError(f"scheduler.min_lr_ratio must lie in [0, 1], got {min_lr_ratio!r}")
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_lr_ratio = float(min_lr_ratio)
        super().__init__(optimizer, self._factor, last_epoch=last_epoch)

    def _factor(self, step: int) -> float:
        return cosine_warmup_factor(step, self.warmup_steps, self.total_steps, self.min_lr_ratio)
