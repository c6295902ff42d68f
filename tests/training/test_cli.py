"""The ssm-train command: help, a clear config error, and a 2-process DDP run on the CPU (gloo)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _command() -> list[str]:
    """The installed console script when present (next to this interpreter or on PATH), else the module."""
    script = Path(sys.executable).with_name("ssm-train")
    if script.is_file():
        return [str(script)]
    found = shutil.which("ssm-train")
    return [found] if found else [sys.executable, "-m", "ssm.training.train"]


def _run(args: list[str], cwd: Path, timeout: int = 420) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        PYTHONUNBUFFERED="1",
        HYDRA_FULL_ERROR="0",
    )
    return subprocess.run(
        _command() + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _main_in_process(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from hydra.core.global_hydra import GlobalHydra

    from ssm.training.train import main

    monkeypatch.setattr(sys, "argv", ["ssm-train", *args])
    try:
        main()
    finally:
        GlobalHydra.instance().clear()


def test_help_lists_experiments(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _main_in_process(["--help"], monkeypatch)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "lra/listops-s4" in out and "psmnist-s5-ptd" in out and "digits-s4d" in out


def test_bad_override_gives_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _main_in_process(["optimizer.lr=-1", f"hydra.run.dir={tmp_path / 'bad'}"], monkeypatch)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "ssm-train: config error: optimizer.lr must be a positive number, got -1" in err
    assert "Traceback" not in err


def test_ddp_two_processes_on_cpu(tmp_path: Path) -> None:
    run_dir = tmp_path / "ddp"
    proc = _run(
        [
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
            "trainer.enable_progress_bar=false",
            "callbacks.progress_bar=null",
            "model.d_model=8",
            "model.n_layers=1",
            "layer.d_state=4",
            "data.batch_size=16",
            f"hydra.run.dir={run_dir}",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ssm-train: done" in proc.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert 0.0 <= summary["test"]["test/acc"] <= 1.0
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_divergence_stops_the_command_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # An absurd learning rate: the first step throws the weights to ~1e30 and the next loss is NaN.
    args = [
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=5",
        "optimizer.lr=1e30",
        "ssm_lr=1e30",
        "scheduler=constant",
        "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false",
        "model.n_layers=1",
        f"hydra.run.dir={tmp_path / 'nan'}",
    ]
    with pytest.raises(SystemExit) as exit_info:
        _main_in_process(args, monkeypatch)
    assert exit_info.value.code == 3
    err = capsys.readouterr().err
    assert "ssm-train: stopped: training loss is nan at epoch 0, global step 1" in err
    assert "Traceback" not in err
