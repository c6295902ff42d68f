"""The run folder of a tiny ``ssm-train`` run: the resolved config, the hyperparameters in TensorBoard's
HPARAMS tab, the training curves as a PNG (also for a run that stopped early) and Lightning's messages
in train.log."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from ssm.training.run_folder import CURVES, HP_METRICS, RESOLVED_CONFIG, main as run_folder_main, plot_curves

ARGS = [
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null",
    "model.n_layers=1",
    "model.d_model=8",
    "layer.d_state=4",
]


def _ssm_train(args: list[str]) -> int:
    """``ssm-train ARGS`` in this process (Hydra sets up its job logging, as on the command line)."""
    from hydra.core.global_hydra import GlobalHydra

    from ssm.training.train import main

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["ssm-train", *args])
        try:
            main()
        except SystemExit as exit_info:
            return int(exit_info.code or 0)
        finally:
            GlobalHydra.instance().clear()
    return 0


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run_folder") / "run"
    assert _ssm_train([*ARGS, f"hydra.run.dir={out}"]) == 0
    return out


def test_resolved_config_is_written_beside_hydras(run_dir: Path) -> None:
    assert "${" in (run_dir / ".hydra" / "config.yaml").read_text()  # Hydra keeps the interpolations
    text = (run_dir / RESOLVED_CONFIG).read_text()
    assert "${" not in text
    resolved = OmegaConf.to_container(OmegaConf.load(run_dir / RESOLVED_CONFIG))
    assert resolved["paths"]["output_dir"] == str(run_dir)
    assert resolved["logger"]["csv"]["save_dir"] == str(run_dir)
    assert resolved["layer"]["tie_dropout"] is False  # was ${oc.select:model.tie_dropout,false}
    # The same config the checkpoints carry for ssm-eval.
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["ssm_config"] == resolved


def test_hyperparameters_and_result_metrics_reach_tensorboard(run_dir: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    content = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert [m.name.tag for m in experiment.metric_infos] == list(HP_METRICS)
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["optimizer/lr"].number_value == pytest.approx(0.01)
    assert hparams["trainer/max_epochs"].number_value == 2
    assert hparams["layer/_target_"].string_value == "ssm.S4D"
    assert hparams["model/prenorm"].number_value == 1  # torch writes bools as numbers
    summary = json.loads((run_dir / "summary.json").read_text())
    last = {tag: events.Scalars(tag)[-1].value for tag in HP_METRICS}
    assert last["hp/val_loss"] == pytest.approx(summary["best"]["val/loss"])
    assert last["hp/val_acc"] == pytest.approx(summary["best"]["val/acc"])
    assert last["hp/test_loss"] == pytest.approx(summary["test"]["test/loss"])
    assert last["hp/test_acc"] == pytest.approx(summary["test"]["test/acc"])


def test_curves_png_is_drawn(run_dir: Path, tmp_path: Path) -> None:
    import matplotlib.image

    image = matplotlib.image.imread(run_dir / CURVES)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 500
    assert float(image[..., :3].std()) > 0.05  # not blank
    # The same drawing on demand for any run folder.
    copy = tmp_path / "copy"
    (copy / "csv").mkdir(parents=True)
    (copy / "csv" / "metrics.csv").write_bytes((run_dir / "csv" / "metrics.csv").read_bytes())
    run_folder_main([str(copy)])
    assert (copy / CURVES).is_file()


def test_train_log_keeps_lightnings_messages(run_dir: Path) -> None:
    log = (run_dir / "train.log").read_text()
    assert "[lightning.pytorch" in log and "GPU available" in log
    assert "`Trainer.fit` stopped: `max_epochs=2` reached." in log
    for name in ("lightning.pytorch", "lightning.fabric"):  # the file handler is detached after the run
        files = [getattr(h, "baseFilename", "") for h in logging.getLogger(name).handlers]
        assert str(run_dir / "train.log") not in files


def test_a_run_that_stops_early_still_gets_its_curves(tmp_path: Path) -> None:
    # An absurd learning rate: the loss is NaN at the second step and the run stops (exit status 3).
    out = tmp_path / "nan"
    args = [*ARGS, "optimizer.lr=1e30", "ssm_lr=1e30", "scheduler=constant", f"hydra.run.dir={out}"]
    assert _ssm_train(args) == 3
    assert (out / CURVES).is_file() and (out / RESOLVED_CONFIG).is_file()
    assert "NonFiniteError" in (out / "summary.json").read_text()


def test_plot_curves_reads_partial_metrics_files(tmp_path: Path) -> None:
    csv = tmp_path / "metrics.csv"
    # A run killed while writing: no validation yet, and a last line cut short.
    csv.write_text("epoch,step,train/loss_step,val/loss\n0,0,2.3,\n0,1,2.2,\n0,2,2.")
    assert plot_curves(csv, tmp_path / "a.png") == tmp_path / "a.png"
    csv.write_text("epoch,step,train/loss_step\n")
    assert plot_curves(csv, tmp_path / "b.png") is None and not (tmp_path / "b.png").exists()
    assert plot_curves(tmp_path / "missing.csv", tmp_path / "c.png") is None
