"""Lightning module for sequence classification and the LRA two-tower retrieval task.

Training recipe of S4 (arXiv 2111.00396) and the Long Range Arena benchmark (arXiv 2011.04006):
cross-entropy, AdamW with the SSM parameters (A/Lambda, B, P, dt) in their own group (own learning
rate, no weight decay; :func:`ssm.training.optim.param_groups`), a cosine schedule with linear
warm-up stepped per optimizer step, accuracy from torchmetrics. Retrieval encodes both documents with
the same backbone and classifies ``[u, v, u * v, u - v]`` with an MLP, as the LRA baselines did.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Optional

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from ssm.training.schedule import CosineWarmupLR, fit_warmup_steps

__all__ = ["SequenceLightningModule", "RetrievalHead", "TASKS"]

log = logging.getLogger(__name__)

TASKS = ("classification", "retrieval")
GROUP_KEYS = frozenset({"dt_lr", "regular_ssm_params"})
"""Optimizer-config keys that shape the parameter groups and are not passed to the optimizer."""


class RetrievalHead(nn.Module):
    """Classify a document pair from its two feature vectors through ``[u, v, u * v, u - v]``.

    Args:
        d_model: size of each document's feature vector.
        d_hidden: width of the MLP's hidden layer.
        num_classes: number of output classes.
    """

    def __init__(self, d_model: int, d_hidden: int, num_classes: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(4 * d_model, d_hidden), nn.GELU(), nn.Linear(d_hidden, num_classes)
        )

    def forward(self, u: Tensor, v: Tensor) -> Tensor:
        """u, v: (B, d_model) -> logits (B, num_classes)."""
        return self.mlp(torch.cat([u, v, u * v, u - v], dim=-1))


class SequenceLightningModule(pl.LightningModule):
    """Train a sequence model on batches ``{"x", "y", "lengths"}`` or, for retrieval,
    ``{"x1", "x2", "lengths1", "lengths2", "y"}``.

    Args:
        model: the backbone, called as ``model(x, lengths=lengths)``. Classification: returns logits
            (B, num_classes). Retrieval: returns pooled features (B, d_model) (a model built with
            ``d_output=None``).
        num_classes: number of classes.
        optimizer: a partial optimizer taking the parameter groups (Hydra ``_partial_: true``); its
            ``lr`` and ``weight_decay`` keywords are the base values of the non-SSM parameters.
        scheduler: a partial LR scheduler taking the optimizer, stepped once per optimizer step, or None.
            A ``total_steps`` keyword left None is filled from ``trainer.estimated_stepping_batches``;
            a ``warmup_steps`` as long as that run is then shortened to a tenth of it, with a warning
            (:func:`ssm.training.schedule.fit_warmup_steps`).
        task: ``"classification"`` or ``"retrieval"``.
        ssm_lr: learning rate of the SSM parameters (None: the base lr).
        ssm_weight_decay: weight decay of the SSM parameters.
        d_model: feature size of the backbone (retrieval only).
        retrieval_hidden: hidden width of the retrieval MLP (retrieval only; None: ``d_model``).
    """

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Optional[Callable[..., Any]] = None,
        *,
        task: str = "classification",
        ssm_lr: Optional[float] = None,
        ssm_weight_decay: float = 0.0,
        d_model: Optional[int] = None,
        retrieval_hidden: Optional[int] = None,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if not isinstance(optimizer, functools.partial) or "lr" not in optimizer.keywords:
            raise ValueError(
                "optimizer must be a partial optimizer with an lr keyword "
                f"(Hydra `_partial_: true` and `lr:`), got {optimizer!r}"
            )
        if ssm_lr is not None and not float(ssm_lr) > 0:
            raise ValueError(f"ssm_lr must be positive or null, got {ssm_lr!r}")
        self.model = model
        self.task = task
        self.num_classes = num_classes
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.ssm_lr = None if ssm_lr is None else float(ssm_lr)
        self.ssm_weight_decay = float(ssm_weight_decay)
        self.head: Optional[RetrievalHead] = None
        if task == "retrieval":
            if d_model is None:
                raise ValueError("task='retrieval' needs d_model (the backbone's feature size)")
            self.head = RetrievalHead(d_model, retrieval_hidden or d_model, num_classes)
        # The composed run config (set by ssm-train); saved in checkpoints so ssm-eval can rebuild the run.
        self.run_config: Optional[dict[str, Any]] = None
        self.loss_fn = nn.CrossEntropyLoss()
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    # --------------------------------------------------------------------------------------- forward
    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Logits (B, num_classes) of a batch dict."""
        if self.task == "retrieval":
            assert self.head is not None
            u = self.model(batch["x1"], lengths=batch.get("lengths1"))
            v = self.model(batch["x2"], lengths=batch.get("lengths2"))
            return self.head(u, v)
        return self.model(batch["x"], lengths=batch.get("lengths"))

    def _shared_step(self, batch: dict[str, Tensor], stage: str, metric: MulticlassAccuracy) -> Tensor:
        logits = self(batch)
        y = batch["y"]
        if logits.dim() != 2 or logits.shape[-1] != self.num_classes:
            raise RuntimeError(
                f"the model returned logits of shape {tuple(logits.shape)}; expected "
                f"(batch, {self.num_classes}). Is the model pooled (pool != null)?"
            )
        loss = self.loss_fn(logits.float(), y)
        metric(logits.detach(), y)
        bs = y.shape[0]
        on_step = stage == "train"
        self.log(
            f"{stage}/loss",
            loss,
            on_step=on_step,
            on_epoch=True,
            prog_bar=True,
            batch_size=bs,
            sync_dist=stage != "train",
        )
        self.log(f"{stage}/acc", metric, on_step=False, on_epoch=True, prog_bar=True, batch_size=bs)
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train", self.train_acc)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "val", self.val_acc)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "test", self.test_acc)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint["ssm_config"] = self.run_config
        # The backbone's own plain config (d_input, d_output, model and layer settings), so that
        # ssm.SequenceModel.from_checkpoint rebuilds it without Lightning or Hydra.
        config = getattr(self.model, "config", None)
        if callable(config):
            try:
                checkpoint["ssm_model"] = config()
            except ValueError:  # a layer callable that cannot be written down: ssm_config still holds the run
                pass

    # ------------------------------------------------------------------------------------ optimizers
    def ssm_parameter_count(self) -> int:
        """Number of scalar SSM parameters (A/Lambda, B, P, dt: those the layers register as such)."""
        total = 0
        for module in self.modules():
            names = getattr(module, "ssm_parameters", None)
            if callable(names):
                total += sum(getattr(module, n).numel() for n in names())
        return total

    def _param_groups(self) -> list[dict[str, Any]]:
        from ssm.training.optim import param_groups

        kw = self.optimizer_factory.keywords
        return param_groups(
            self,
            lr=float(kw["lr"]),
            weight_decay=float(kw.get("weight_decay", 0.0)),
            ssm_lr=self.ssm_lr,
            ssm_weight_decay=self.ssm_weight_decay,
            dt_lr=kw.get("dt_lr"),  # the timestep's own lr (optimizer config; null: ssm_lr)
            regular_ssm_params=kw.get("regular_ssm_params"),  # a list or ListConfig of names
        )

    def configure_optimizers(self) -> Any:
        factory = self.optimizer_factory
        if GROUP_KEYS & set(factory.keywords):  # read by _param_groups, not optimizer arguments
            kw = {k: v for k, v in factory.keywords.items() if k not in GROUP_KEYS}
            factory = functools.partial(factory.func, *factory.args, **kw)
        optimizer = factory(self._param_groups())
        if self.scheduler_factory is None:
            return optimizer
        kwargs = {}
        factory = self.scheduler_factory
        if (
            isinstance(factory, functools.partial)
            and factory.keywords.get("total_steps") is None
            and ("total_steps" in factory.keywords or factory.func is CosineWarmupLR)
        ):
            total = max(1, int(self.trainer.estimated_stepping_batches))
            kwargs["total_steps"] = total
            warmup = factory.keywords.get("warmup_steps")
            if isinstance(warmup, int) and fit_warmup_steps(warmup, total) != warmup:
                kwargs["warmup_steps"] = fit_warmup_steps(warmup, total)
                if self.trainer.global_rank == 0:
                    log.warning(
                        "scheduler.warmup_steps=%d is not shorter than the run (%d optimizer steps): the "
                        "learning rate would never reach its peak nor decay; warming up over %d steps (a "
                        "tenth of the run) instead. Set scheduler.warmup_steps below %d to choose.",
                        warmup, total, kwargs["warmup_steps"], total,
                    )
        scheduler = factory(optimizer, **kwargs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
