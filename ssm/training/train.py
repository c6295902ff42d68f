"""``ssm-train``: the Hydra entry point that composes a run, validates it, trains and tests.

Runs the training recipe of S4 (arXiv 2111.00396) on any task x model pair of ``configs/``. The configs
ship inside the package (``ssm.configs``), so the command works from any directory after a plain
install; in a source checkout without an install the repository's ``configs/`` folder is used.
"""

from __future__ import annotations

import datetime
import logging
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import hydra
import lightning.pytorch as pl
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from ssm.data import DatasetNotFoundError, MalformedFileError
from ssm.training.callbacks import EpochReseed, NonFiniteError, NonFiniteGuard, RunSummary
from ssm.training.checkpoint import CheckpointError, load_checkpoint, remove_stale_temporaries
from ssm.training.checkpoint_io import AtomicCheckpointIO
from ssm.training.config import (
    ConfigError,
    _experiments_help,
    _get,
    config_path,
    experiment_names,
    validate_config,
)
from ssm.training.lit_module import SequenceLightningModule
from ssm.training.resume import continue_csv_logs, resume_run_dir, resumed_logger_config
from ssm.training.run_folder import (
    CURVES,
    HyperparameterLog,
    attach_job_log,
    find_metrics_csv,
    plot_curves,
    write_resolved_config,
)
from ssm.training.sampling import ReproducibleDataModule

__all__ = [
    "ConfigError",
    "config_path",
    "experiment_names",
    "validate_config",
    "check_resume",
    "build_datamodule",
    "load_data",
    "build_module",
    "build_trainer",
    "run",
    "main",
]


log = logging.getLogger(__name__)


def _instantiate(node: Any, what: str, **kwargs: Any) -> Any:
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__ if err.__cause__ is not None else err
        raise ConfigError(f"cannot build {what} ({node.get('_target_')}): {cause}") from err
    except (ValueError, TypeError) as err:
        raise ConfigError(f"cannot build {what} ({node.get('_target_')}): {err}") from err


# ---------------------------------------------------------------------------------------------- build
def build_datamodule(cfg: DictConfig) -> pl.LightningDataModule:
    """The task's data module (config group ``data``)."""
    dm = _instantiate(cfg.data, "the data module (group data)")
    for attr in ("d_input", "d_output", "embedding"):
        if not hasattr(dm, attr):
            raise ConfigError(f"data module {type(dm).__name__} has no attribute '{attr}'")
    return dm


def _one_line(text: str) -> str:
    """A multi-line message (paths tried, how to get the data) as one line."""
    parts: list[str] = []
    for line in (line.strip() for line in text.splitlines()):
        if line:
            if parts and not parts[-1].endswith((".", ":", ";", ",")):
                parts[-1] += ";"
            parts.append(line)
    return " ".join(parts)


def load_data(cfg: DictConfig, dm: pl.LightningDataModule) -> None:
    """Load the data set (``dm.setup("fit")``) before the model and the Trainer are built.

    A missing data set or a malformed or empty file becomes a :class:`ConfigError` whose one line names
    the paths tried or the file, and how to get the data.
    """
    try:
        dm.setup("fit")
    except (DatasetNotFoundError, MalformedFileError) as err:
        what = f"cannot load the data (group data, {cfg.data._target_})"
        raise ConfigError(f"{what}: {_one_line(str(err))}") from err


def build_module(cfg: DictConfig, dm: pl.LightningDataModule) -> SequenceLightningModule:
    """The backbone (groups ``model`` and ``layer``) wrapped in the Lightning module."""
    retrieval = cfg.task == "retrieval"
    layer = _instantiate(cfg.layer, "the layer (group layer)")
    model = _instantiate(
        cfg.model,
        "the model (groups model and layer)",
        layer=layer,
        d_input=int(dm.d_input),
        d_output=None if retrieval else int(dm.d_output),
        embedding=bool(dm.embedding),
    )
    optimizer = _instantiate(cfg.optimizer, "the optimizer (group optimizer)")
    scheduler = _instantiate(cfg.scheduler, "the scheduler") if _get(cfg, "scheduler") is not None else None
    try:
        module = SequenceLightningModule(
            model,
            int(dm.d_output),
            optimizer,
            scheduler,
            task=cfg.task,
            ssm_lr=cfg.ssm_lr,
            ssm_weight_decay=cfg.ssm_weight_decay,
            d_model=int(cfg.model.d_model),
            retrieval_hidden=cfg.retrieval_hidden,
        )
    except ValueError as err:
        raise ConfigError(str(err)) from err
    module.run_config = OmegaConf.to_container(cfg, resolve=True)
    return module


def _named(node: Optional[DictConfig], what: str) -> list[Any]:
    if node is None:
        return []
    return [_instantiate(sub, f"{what} '{key}'") for key, sub in node.items() if sub is not None]


def _git(*args: str) -> Optional[str]:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _device_name(cfg: DictConfig) -> str:
    accelerator = str(_get(cfg, "trainer.accelerator") or "auto")
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {cpu} ({os.cpu_count()} logical cores)"


def provenance(cfg: DictConfig) -> dict[str, Any]:
    """What a result needs to be reproduced: the command, the code's commit, the date and the machine."""
    try:
        from hydra.core.hydra_config import HydraConfig

        overrides = list(HydraConfig.get().overrides.task)
    except ValueError:  # not under Hydra (run() called directly)
        overrides = sys.argv[1:]
    device = _device_name(cfg)
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "name": cfg.name,
        "variant": _get(cfg, "variant") or "default",
        "tier": "cpu" if device.startswith("CPU") else "gpu",
        "seed": cfg.seed,
        "command": shlex.join(["ssm-train", *overrides]),
        "git_commit": commit,
        "git_dirty": None if dirty is None else bool(dirty),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
    }


def build_trainer(cfg: DictConfig, resume_step: Optional[int] = None) -> tuple[pl.Trainer, RunSummary]:
    """The Trainer with the configured loggers and callbacks, plus the guard, reseeding and summary.

    Checkpoints are written atomically and verified on load (:class:`AtomicCheckpointIO`). With
    ``resume_step`` (the global step of the checkpoint being resumed) the CSV and TensorBoard logs of
    the run folder continue from that step (:mod:`ssm.training.resume`).
    """
    out = Path(cfg.paths.output_dir)
    summary = RunSummary(
        str(out),
        monitor=_get(cfg, "callbacks.model_checkpoint.monitor") or "val/loss",
        mode=_get(cfg, "callbacks.model_checkpoint.mode") or "min",
        provenance=provenance(cfg),
    )
    callbacks = _named(_get(cfg, "callbacks"), "callback")
    hparams = HyperparameterLog(OmegaConf.to_container(cfg, resolve=True), summary)  # after the summary
    callbacks += [NonFiniteGuard(), EpochReseed(cfg.seed), summary, hparams]
    logger_cfg = _get(cfg, "logger")
    if resume_step is not None and logger_cfg is not None:
        logger_cfg = resumed_logger_config(logger_cfg, resume_step)
    loggers = _named(logger_cfg, "logger")
    trainer = _instantiate(
        cfg.trainer,
        "the trainer (group trainer)",
        callbacks=callbacks,
        logger=loggers if loggers else False,
        plugins=[AtomicCheckpointIO()],
    )
    if resume_step is not None:
        continue_csv_logs(trainer.loggers, resume_step)
    return trainer, summary


def check_resume(cfg: DictConfig) -> Optional[int]:
    """Refuse a ``ckpt_path`` that is not an intact Lightning checkpoint or was written with another seed.

    The file is verified (every zip member's CRC-32) and loaded weights-only
    (:func:`ssm.training.checkpoint.load_checkpoint`). Returns the checkpoint's global step, where the
    resumed run's logs continue (None without ``ckpt_path``).
    """
    if _get(cfg, "ckpt_path") is None:
        return None
    try:
        ckpt = load_checkpoint(cfg.ckpt_path)
    except CheckpointError as err:
        raise ConfigError(f"ckpt_path: {err}") from err
    stored = ckpt.get("ssm_config") or {}
    if "seed" in stored and stored["seed"] != cfg.seed:
        raise ConfigError(
            f"seed={cfg.seed} differs from the seed of the checkpoint being resumed ({stored['seed']}); "
            f"pass seed={stored['seed']} to continue that run"
        )
    return int(ckpt.get("global_step", 0))


def run(cfg: DictConfig) -> dict[str, Any]:
    """Validate, load the data, build, train, test; return the run summary (also written to the run
    folder, with ``config_resolved.yaml`` and ``curves.png``)."""
    validate_config(cfg)
    resume_step = check_resume(cfg)
    if pl.utilities.rank_zero_only.rank == 0:
        write_resolved_config(cfg, cfg.paths.output_dir)
    if _get(cfg, "torch_threads") is not None:
        torch.set_num_threads(cfg.torch_threads)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_datamodule(cfg)
    load_data(cfg, dm)
    module = build_module(cfg, dm)
    trainer, summary = build_trainer(cfg, resume_step)
    if trainer.is_global_zero:  # temporary files of a save that a kill interrupted
        for callback in trainer.checkpoint_callbacks:
            if getattr(callback, "dirpath", None):
                remove_stale_temporaries(callback.dirpath)
    data = ReproducibleDataModule(dm, seed=cfg.seed)
    try:
        trainer.fit(module, datamodule=data, ckpt_path=cfg.ckpt_path)
        if cfg.test:
            best = trainer.checkpoint_callback
            use_best = best is not None and best.best_model_path and not trainer.fast_dev_run
            trainer.test(module, datamodule=data, ckpt_path="best" if use_best else None)
    finally:  # also the curves of a run that stopped early (the loggers are flushed by then)
        _plot_curves(cfg, trainer)
    return summary.summary()


def _plot_curves(cfg: DictConfig, trainer: pl.Trainer) -> None:
    metrics = find_metrics_csv(trainer)
    if trainer.global_rank != 0 or metrics is None:
        return
    try:
        plot_curves(metrics, Path(cfg.paths.output_dir) / CURVES, title=str(cfg.name))
    except (OSError, ValueError, ImportError) as err:  # a missing plot must not fail a finished run
        log.warning("could not draw %s: %s", CURVES, err)


def _report(result: dict[str, Any], output_dir: str) -> None:
    best, test = result.get("best", {}), result.get("test", {})
    parts = [f"{k}={v:.4f}" for k, v in list(best.items()) + list(test.items()) if isinstance(v, float)]
    print(
        f"ssm-train: done ({result.get('epochs')} epochs, {result.get('parameters')} parameters); "
        + ", ".join(parts)
        + f"; logs and checkpoints in {output_dir}"
    )


def _task(cfg: DictConfig) -> None:
    detach = attach_job_log()  # Lightning's messages into Hydra's train.log too
    try:
        result = run(cfg)
    except ConfigError as err:
        print(f"ssm-train: config error: {err}", file=sys.stderr)
        sys.exit(2)
    except NonFiniteError as err:
        print(f"ssm-train: stopped: {err}", file=sys.stderr)
        sys.exit(3)
    finally:
        detach()
    if pl.utilities.rank_zero_only.rank == 0:
        _report(result, cfg.paths.output_dir)


def main() -> None:
    """Console entry point ``ssm-train`` (Hydra command line: ``ssm-train key=value ...``)."""
    OmegaConf.register_new_resolver("ssm_experiments", _experiments_help, replace=True)
    # hydra.run.dir: a resume (ckpt_path=<run>/checkpoints/...) continues in <run>.
    OmegaConf.register_new_resolver("ssm_run_dir", resume_run_dir, replace=True)
    hydra.main(version_base="1.3", config_path=config_path(), config_name="train")(_task)()


if __name__ == "__main__":
    main()
