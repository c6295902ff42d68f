"""Resuming continues the same run: its folder, its best checkpoint and its CSV and TensorBoard logs.

``ssm-train ckpt_path=<run>/checkpoints/last.ckpt`` runs in ``<run>`` again (:func:`resume_run_dir`, the
Hydra resolver ``ssm_run_dir`` of ``hydra.run.dir``), so the checkpoint callbacks find their own folder
in the checkpoint and restore their best score and file (Lightning restores them only when the folder is
unchanged), the summary is rewritten in place and the test runs on the run's true best checkpoint. The
logs continue from the checkpoint's global step ``G``: rows and events at steps ``>= G`` were written
after that checkpoint by the interrupted process and are logged again by the resumed one, so the CSV
logger keeps the rows before ``G`` (:func:`continue_csv_logs`) and TensorBoard's writer gets
``purge_step=G`` (:func:`resumed_logger_config`), which makes TensorBoard drop the older events from
``G`` on.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Optional, Sequence

import hydra
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

__all__ = ["resume_run_dir", "resumed_logger_config", "continue_csv_logs"]


def resume_run_dir(ckpt_path: Optional[str], default: str) -> str:
    """The run folder of ``ckpt_path`` when it lies in ``<run>/checkpoints/``, else ``default``.

    Args:
        ckpt_path: the ``ckpt_path`` of the config (None: a fresh run).
        default: the folder of a fresh run (``runs/<name>/<date_time>``).
    """
    if not ckpt_path:
        return default
    path = Path(str(ckpt_path)).expanduser()
    if path.parent.name != "checkpoints" or not path.is_file():
        return default  # not an ssm-train run's checkpoint (or no file: check_resume reports it)
    return str(path.parent.parent)


def resumed_logger_config(loggers: DictConfig, step: int) -> DictConfig:
    """A copy of the ``logger`` config group whose TensorBoard loggers purge the events from ``step`` on."""
    out = OmegaConf.create(OmegaConf.to_container(loggers, resolve=True))  # a detached copy
    for key, node in out.items():
        if node is None or "_target_" not in node:
            continue
        target = hydra.utils.get_class(node._target_)
        if isinstance(target, type) and issubclass(target, TensorBoardLogger):
            out[key]["purge_step"] = int(step)  # passed to the SummaryWriter
    return out


def continue_csv_logs(loggers: Sequence[Any], step: int) -> None:
    """Keep the rows of each CSV logger's existing ``metrics.csv`` logged before ``step``.

    Lightning's CSV writer deletes an existing ``metrics.csv`` when it starts; the kept rows are handed
    back to the writer (``log_metrics`` with their own step), which writes them out unchanged, and the
    resumed run appends its rows after them. Call before the trainer logs anything.
    """
    for logger in loggers:
        if not isinstance(logger, CSVLogger):
            continue
        path = Path(logger.log_dir) / "metrics.csv"
        if not path.is_file():
            continue
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) < step]
        writer = logger.experiment  # created here: this removes the old file (rank 0 only; a no-op elsewhere)
        for row in rows:
            values = {k: v for k, v in row.items() if k != "step" and v != ""}
            writer.log_metrics(values, step=int(row["step"]))
        writer.save()
