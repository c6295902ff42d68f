"""Helpers of the training tests: composing the configs with small overrides."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"

# Small model and loader settings that let any experiment run a few batches on a CPU in seconds.
TINY = [
    "model.d_model=8",
    "model.n_layers=1",
    "data.batch_size=2",
    "data.num_workers=0",
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "~logger",
    "callbacks.progress_bar=null",
    "callbacks.lr_monitor=null",
]


def compose_cfg(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)
