"""Training callbacks: a NaN/inf guard, per-epoch reseeding for exact resume, and the run summary.

Reported failure modes of the S4 reference training (arXiv 2111.00396, code release) include NaN
losses on ListOps and NaNs in ``log_dt`` that went unnoticed; :class:`NonFiniteGuard` stops the run at
the first non-finite loss or parameter and says which one, at which step.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any, Optional

import lightning.pytorch as pl
import numpy as np
import torch

__all__ = ["NonFiniteError", "NonFiniteGuard", "EpochReseed", "RunSummary", "rng_states", "set_rng_states"]


class NonFiniteError(RuntimeError):
    """Raised when the training loss or a parameter becomes NaN or infinite."""


def _where(trainer: "pl.Trainer", batch_idx: Optional[int] = None) -> str:
    text = f"epoch {trainer.current_epoch}, global step {trainer.global_step}"
    return text if batch_idx is None else f"{text}, batch {batch_idx}"


class NonFiniteGuard(pl.Callback):
    """Stop training with :class:`NonFiniteError` at the first non-finite loss or parameter.

    The loss is checked before its backward pass, so the parameters still hold their last finite
    values; parameters are checked after every optimizer step and the first bad one is named.

    Args:
        check_params_every_n_steps: how often (in optimizer steps) to scan the parameters; 1 checks
            every step. The scan is one fused reduction per parameter.
    """

    def __init__(self, check_params_every_n_steps: int = 1) -> None:
        if not isinstance(check_params_every_n_steps, int) or check_params_every_n_steps < 1:
            raise ValueError(
                "NonFiniteGuard.check_params_every_n_steps must be an integer >= 1, "
                f"got {check_params_every_n_steps!r}"
            )
        self.every = check_params_every_n_steps

    def on_before_backward(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", loss: torch.Tensor
    ) -> None:
        if not bool(torch.isfinite(loss.detach()).all()):
            raise NonFiniteError(
                f"training loss is {loss.detach().float().item()} at {_where(trainer)}; "
                "parameters still hold their last finite values"
            )

    def on_train_batch_end(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step % self.every:
            return
        bad = first_nonfinite_parameter(pl_module)
        if bad is not None:
            name, n_bad, numel = bad
            raise NonFiniteError(
                f"parameter '{name}' has {n_bad} non-finite value(s) of {numel} after "
                f"the optimizer step at {_where(trainer, batch_idx)}"
            )


def first_nonfinite_parameter(module: torch.nn.Module) -> Optional[tuple[str, int, int]]:
    """(name, number of non-finite entries, size) of the first parameter holding a NaN/inf, else None."""
    params = [(n, p) for n, p in module.named_parameters()]
    if not params:
        return None
    flags = torch.stack([torch.isfinite(p.detach()).all() for _, p in params])
    if bool(flags.all()):
        return None
    name, p = params[int((~flags).nonzero()[0])]
    return name, int((~torch.isfinite(p.detach())).sum()), p.numel()


def rng_states() -> dict[str, Any]:
    """The current states of the torch (CPU and CUDA), numpy and python generators.

    Only tensors and plain python values, so that checkpoints load with ``torch.load(weights_only=True)``.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore generator states produced by :func:`rng_states`."""
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = states["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """A 32-bit seed derived from (seed, epoch, rank) through numpy's SeedSequence."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


class EpochReseed(pl.Callback):
    """Start every training epoch's first batch from generator states that depend only on (seed, epoch, rank).

    Dropout, data augmentation and anything else drawing from the global torch, numpy or python
    generators during epoch ``e`` therefore draws the same numbers whether the run went through
    epoch ``e - 1`` itself or resumed from a checkpoint written at its end: Lightning draws from the
    global generator between epochs a different number of times in the two cases (it creates the
    data iterator at a different point), so restoring saved states alone would not be exact. The
    checkpoint still carries the seed and the generator states at the time of saving (restored on
    load), and a resume with a different seed is refused.

    Args:
        seed: the run's seed (``seed`` in the training config).
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def on_train_batch_start(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", batch: Any, batch_idx: int
    ) -> None:
        # The first batch, not on_train_epoch_start: Lightning skips that hook for the epoch it continues
        # after a restart from an end-of-epoch checkpoint.
        if batch_idx != 0:
            return
        s = epoch_seed(self.seed, trainer.current_epoch, trainer.global_rank)
        random.seed(s)
        np.random.seed(s)
        torch.manual_seed(s)  # also seeds every CUDA device

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "rng": rng_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if int(state_dict["seed"]) != self.seed:
            raise ValueError(
                f"seed={self.seed} differs from the seed of the checkpoint being resumed "
                f"({state_dict['seed']}); pass seed={state_dict['seed']} to continue that run"
            )
        set_rng_states(state_dict["rng"])


class RunSummary(pl.Callback):
    """Write ``summary.json`` and ``summary.md``: provenance, parameters, time, best and test metrics.

    The best validation result is taken after every validation (also those inside an epoch), by the
    same metric and mode as the best checkpoint. ``curve`` lists every validation as
    ``{step, epoch, seconds, val/...}`` (``seconds``: wall time since the start of fitting, summed over
    resumed segments), so a partial run still has its learning curve. For classification the test
    split's majority-class accuracy is recorded as ``baseline_acc``.

    Args:
        output_dir: folder of the run (the log folder); created if missing.
        monitor: the metric whose best value is reported (e.g. ``val/loss``).
        mode: ``"max"`` or ``"min"`` for ``monitor``.
        provenance: recorded as is (command, git commit, date, device, ...).
    """

    def __init__(self, output_dir: str, monitor: str = "val/loss", mode: str = "min",
                 provenance: Optional[dict[str, Any]] = None) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"RunSummary.mode must be 'max' or 'min', got {mode!r}")
        self.output_dir = Path(output_dir)
        self.monitor, self.mode = monitor, mode
        self.provenance = dict(provenance or {})
        self.epoch_times: list[float] = []
        self.best: dict[str, float] = {}
        self.test: dict[str, float] = {}
        self.curve: list[dict[str, float]] = []
        self.fit_seconds = 0.0
        # CPU time of this process (all its threads) during fit: on a shared machine the wall time
        # grows with the load, the CPU time much less.
        self.fit_cpu_seconds = 0.0
        self.steps = 0
        self.status = "running"
        self._t0: Optional[float] = None
        self._fit_t0: Optional[float] = None
        self._fit_cpu0: Optional[float] = None
        self._label_counts: Optional[torch.Tensor] = None
        self.info: dict[str, Any] = {}

    def on_fit_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        params = list(pl_module.parameters())
        ssm = getattr(pl_module, "ssm_parameter_count", lambda: None)()
        self.info = {
            "parameters": sum(p.numel() for p in params),
            "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
            "ssm_parameters": ssm,
            "model": type(getattr(pl_module, "model", pl_module)).__name__,
            "world_size": trainer.world_size,
        }
        self._fit_t0, self._fit_cpu0 = time.perf_counter(), time.process_time()
        self.write(trainer)

    def _elapsed(self) -> float:
        return self.fit_seconds + (time.perf_counter() - self._fit_t0 if self._fit_t0 is not None else 0.0)

    def _cpu_elapsed(self) -> float:
        running = time.process_time() - self._fit_cpu0 if self._fit_cpu0 is not None else 0.0
        return self.fit_cpu_seconds + running

    def _stop_clocks(self) -> None:
        self.fit_seconds, self.fit_cpu_seconds = self._elapsed(), self._cpu_elapsed()
        self._fit_t0 = self._fit_cpu0 = None

    def on_train_epoch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._t0 = time.perf_counter()

    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val")}
        if not metrics:
            return
        self.steps = int(trainer.global_step)
        self.curve.append({"step": self.steps, "epoch": trainer.current_epoch,
                           "seconds": round(self._elapsed(), 3), **metrics})
        value = metrics.get(self.monitor)
        if value is not None:
            old = self.best.get(self.monitor)
            better = old is None or (value > old if self.mode == "max" else value < old)
            if better:
                self.best = {**metrics, "epoch": trainer.current_epoch, "step": self.steps}
        self.write(trainer)

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._t0 is not None:
            self.epoch_times.append(time.perf_counter() - self._t0)
        self.steps = int(trainer.global_step)
        self.write(trainer)

    def on_fit_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._stop_clocks()
        self.steps = int(trainer.global_step)
        self.status = "finished"
        self.write(trainer)

    def on_exception(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", exception: BaseException) -> None:
        self._stop_clocks()
        self.status = "failed"
        self.provenance["reason"] = f"{type(exception).__name__}: {exception}"
        self.write(trainer)

    def on_test_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._label_counts = None

    def on_test_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any,
                          batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        y = batch.get("y") if isinstance(batch, dict) else None
        if y is None or y.dtype.is_floating_point:
            return
        counts = torch.bincount(y.detach().reshape(-1).cpu())
        if self._label_counts is None:
            self._label_counts = counts
        else:
            n = max(len(counts), len(self._label_counts))
            self._label_counts = (torch.nn.functional.pad(self._label_counts, (0, n - len(self._label_counts)))
                                  + torch.nn.functional.pad(counts, (0, n - len(counts))))

    def on_test_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self.test = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test")}
        if self._label_counts is not None and int(self._label_counts.sum()) > 0:
            self.test["baseline_acc"] = float(self._label_counts.max() / self._label_counts.sum())
        self.write(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_times": self.epoch_times, "best": self.best, "curve": self.curve,
                "fit_seconds": self._elapsed(), "fit_cpu_seconds": self._cpu_elapsed()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Restores a resumed run's history. Lightning also loads callback states when testing from the
        # best checkpoint after training; the summary of this run is then already complete and is kept.
        if self.epoch_times or self.curve:
            return
        self.epoch_times = list(state_dict["epoch_times"])
        self.best = dict(state_dict["best"])
        self.curve = [dict(c) for c in state_dict.get("curve", [])]
        self.fit_seconds = float(state_dict.get("fit_seconds", 0.0))
        self.fit_cpu_seconds = float(state_dict.get("fit_cpu_seconds", 0.0))

    def summary(self) -> dict[str, Any]:
        times = self.epoch_times
        return {
            **self.provenance,
            **self.info,
            "status": self.status,
            "epochs": len(times),
            "steps": self.steps,
            "fit_seconds": round(self._elapsed(), 3),
            "fit_cpu_seconds": round(self._cpu_elapsed(), 3),
            "seconds_per_epoch": (sum(times) / len(times)) if times else None,
            "best": self.best,
            "test": self.test,
            "curve": self.curve,
        }

    def write(self, trainer: "pl.Trainer") -> None:
        if trainer.global_rank != 0:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        s = self.summary()
        (self.output_dir / "summary.json").write_text(json.dumps(s, indent=2, default=str) + "\n")
        lines = ["# Run summary", "", "| item | value |", "|---|---|"]
        for key in (
            "model",
            "parameters",
            "trainable_parameters",
            "ssm_parameters",
            "status",
            "epochs",
            "steps",
            "fit_seconds",
            "fit_cpu_seconds",
            "seconds_per_epoch",
            "git_commit",
            "command",
        ):
            value = s.get(key)
            lines.append(f"| {key} | {value:.2f} |" if isinstance(value, float) else f"| {key} | {value} |")
        for prefix, metrics in (("best", s["best"]), ("test", s["test"])):
            for k, v in sorted(metrics.items()):
                lines.append(
                    f"| {prefix} {k} | {v:.4f} |" if isinstance(v, float) else f"| {prefix} {k} | {v} |"
                )
        (self.output_dir / "summary.md").write_text("\n".join(lines) + "\n")
