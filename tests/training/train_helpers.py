"""Helpers of the training tests: composing the configs with small overrides."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "configs"

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


def run_ssm_train(args: list[str], cwd: Path, timeout: int = 420) -> subprocess.CompletedProcess:
    """``ssm-train ARGS`` in a fresh process, through the function the ``ssm-train`` script calls."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               PYTHONUNBUFFERED="1", HYDRA_FULL_ERROR="0", OMP_NUM_THREADS="1")
    code = "import sys; from ssm.training.cli import train; sys.argv[0] = 'ssm-train'; train()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
