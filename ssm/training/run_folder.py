"""What ``ssm-train`` adds to a run folder beside Lightning's own files.

- ``config_resolved.yaml``: the run's config with every interpolation (``${...}``) resolved, next to
  Hydra's ``.hydra/config.yaml`` which keeps them;
- the resolved config as hyperparameters of every logger (TensorBoard's HPARAMS tab), with the best
  validation and the test metrics (:class:`HyperparameterLog`);
- ``curves.png``: training and validation loss and accuracy against the optimizer step, drawn from the
  CSV logger's ``metrics.csv`` at the end of a run, also of a run that stopped early (:func:`plot_curves`;
  ``python -m ssm.training.run_folder RUN_DIR`` draws it for any run folder);
- Lightning's console messages in Hydra's job log ``train.log`` (:func:`attach_job_log`).
"""

from __future__ import annotations

import argparse
import csv
import inspect
import logging
import math
from pathlib import Path
from typing import Any, Callable, Optional

import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from ssm.training.callbacks import RunSummary

__all__ = ["RESOLVED_CONFIG", "CURVES", "write_resolved_config", "HyperparameterLog", "plot_curves",
           "find_metrics_csv", "attach_job_log"]

RESOLVED_CONFIG = "config_resolved.yaml"
CURVES = "curves.png"
# Metrics shown in TensorBoard's HPARAMS tab: the validation metrics at the best validation (the one
# the best checkpoint keeps) and the test metrics of that checkpoint.
HP_METRICS = ("hp/val_loss", "hp/val_acc", "hp/test_loss", "hp/test_acc")


def write_resolved_config(cfg: DictConfig, output_dir: str | Path) -> Path:
    """Write ``cfg`` with its interpolations resolved to ``output_dir/config_resolved.yaml``."""
    path = Path(output_dir) / RESOLVED_CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return path


def _takes_metrics(logger: Any) -> bool:
    try:
        return "metrics" in inspect.signature(logger.log_hyperparams).parameters
    except (TypeError, ValueError):
        return False


class HyperparameterLog(pl.Callback):
    """Log the run's hyperparameters to every logger and keep their result metrics up to date.

    At the start of fitting each logger receives ``params`` through ``log_hyperparams`` (nested dicts
    are flattened by the loggers, e.g. ``optimizer/lr``). Loggers that take metrics with them
    (TensorBoard) also get the metrics of :data:`HP_METRICS`, first as NaN, then updated after every
    validation (the metrics of the best validation so far, as ``summary`` keeps them) and after testing.

    Args:
        params: the hyperparameters, e.g. the resolved run config as a dict.
        summary: the run's :class:`RunSummary`, whose best and test metrics are reported; it must come
            before this callback in the Trainer's callbacks.
    """

    def __init__(self, params: dict[str, Any], summary: RunSummary) -> None:
        self.params, self.summary = params, summary

    def on_fit_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        for logger in trainer.loggers:
            if _takes_metrics(logger):
                logger.log_hyperparams(self.params, metrics={k: math.nan for k in HP_METRICS})
            else:
                logger.log_hyperparams(self.params)

    def _log(self, trainer: "pl.Trainer", prefix: str, metrics: dict[str, Any]) -> None:
        values = {}
        for name in ("loss", "acc"):
            value = metrics.get(f"{prefix}/{name}")
            if isinstance(value, (int, float)):
                values[f"hp/{prefix}_{name}"] = float(value)
        if not values:
            return
        for logger in trainer.loggers:
            if _takes_metrics(logger):
                logger.log_metrics(values, step=trainer.global_step)

    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not trainer.sanity_checking:
            self._log(trainer, "val", self.summary.best)

    def on_test_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._log(trainer, "test", self.summary.test)


def find_metrics_csv(trainer: "pl.Trainer") -> Optional[Path]:
    """The ``metrics.csv`` of the Trainer's CSV logger, or None without one."""
    from lightning.pytorch.loggers import CSVLogger

    for logger in trainer.loggers:
        if isinstance(logger, CSVLogger):
            return Path(logger.log_dir) / "metrics.csv"
    return None


def _read_series(metrics_csv: Path) -> dict[str, list[tuple[float, float]]]:
    """Column -> [(step, value), ...] of every numeric cell (Lightning leaves the others empty)."""
    series: dict[str, list[tuple[float, float]]] = {}
    with open(metrics_csv, newline="") as f:
        for row in csv.DictReader(f):
            try:
                step = float(row.get("step") or "nan")
            except ValueError:
                continue
            if math.isnan(step):
                continue
            for key, cell in row.items():
                if key in (None, "step", "epoch") or not cell:
                    continue
                try:
                    series.setdefault(key, []).append((step, float(cell)))
                except (TypeError, ValueError):  # a cell cut short by a run that was killed while writing
                    continue
    return series


def plot_curves(metrics_csv: str | Path, out_png: str | Path, title: str = "") -> Optional[Path]:
    """Draw loss (left) and accuracy (right) against the optimizer step from a CSV logger's file.

    Plots ``train/loss_step`` (else ``train/loss_epoch``), ``val/loss``, ``train/acc`` and ``val/acc``,
    whichever the file holds, so a run that stopped early (no validation yet, or no test) still gets its
    curves. Returns the PNG's path, or None when the file is missing or holds no such metric.
    """
    metrics_csv, out_png = Path(metrics_csv), Path(out_png)
    if not metrics_csv.is_file():
        return None
    series = _read_series(metrics_csv)
    train_loss = "train/loss_step" if "train/loss_step" in series else "train/loss_epoch"
    panels = [("loss", [train_loss, "val/loss"]), ("accuracy", ["train/acc", "val/acc"])]
    if not any(key in series for _, keys in panels for key in keys):
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8))
    FigureCanvasAgg(fig)  # the Agg backend, whatever pyplot's default is
    for i, (ylabel, keys) in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        for key in keys:
            points = sorted(series.get(key, []))
            if points:
                style = "-" if key == "train/loss_step" else "o-"
                ax.plot([p[0] for p in points], [p[1] for p in points], style, markersize=3, label=key)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    return out_png


def attach_job_log(prefixes: tuple[str, ...] = ("lightning", "pytorch_lightning")) -> Callable[[], None]:
    """Give Lightning's own loggers the root logger's file handlers (Hydra's ``train.log``).

    Lightning gives its loggers a console handler and turns off their propagation when it is imported
    before logging is configured, so their messages reach the console but not Hydra's job log file.
    Returns a function that detaches the handlers again.
    """
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    attached: list[tuple[logging.Logger, logging.Handler]] = []
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or name.split(".")[0] not in prefixes or logger.propagate:
            continue
        for handler in files:
            if handler not in logger.handlers:
                logger.addHandler(handler)
                attached.append((logger, handler))

    def detach() -> None:
        for logger, handler in attached:
            logger.removeHandler(handler)

    return detach


def main(argv: Optional[list[str]] = None) -> None:
    """``python -m ssm.training.run_folder RUN_DIR``: draw ``RUN_DIR/curves.png`` from its metrics.csv."""
    parser = argparse.ArgumentParser(prog="python -m ssm.training.run_folder", description=main.__doc__)
    parser.add_argument("run_dir", help="a run folder (holding csv/metrics.csv)")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    found = sorted(run_dir.glob("**/metrics.csv"))
    out = plot_curves(found[0], run_dir / CURVES, title=run_dir.name) if found else None
    if out is None:
        raise SystemExit(f"no training or validation metrics under {run_dir} (looked for **/metrics.csv)")
    print(out)


if __name__ == "__main__":
    main()
