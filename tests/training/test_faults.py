"""ssm-train killed (SIGKILL) at chosen points and resumed ends exactly as a run that was never stopped.

Each run is a separate ``ssm-train`` process on the digits task with a tiny model: 3 epochs of 4
batches, dropout on. The run kills itself through the ``train_faults.KillAt`` callback (added from the
command line) halfway through writing a checkpoint, is resumed and killed again in the middle of an
epoch, and is resumed to its end. A resume passes only ``ckpt_path`` (no ``hydra.run.dir``) and must
continue in the same folder. Every number the run reports is compared with an uninterrupted run:
``summary.json`` (best and test metrics, validation curve), the CSV log, the TensorBoard scalars, and
the weights of the best and last checkpoints.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from ssm.training.checkpoint import load_checkpoint

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

ARGS = [
    "model.d_model=8",
    "model.n_layers=1",
    "model.dropout=0.2",
    "layer.d_state=4",
    "data.batch_size=16",
    "scheduler.warmup_steps=2",
    "trainer.accelerator=cpu",
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.progress_bar=null",
]
STEPS_PER_EPOCH = 4
KILL = "+callbacks.kill._target_=train_faults.KillAt"
# Differ between any two runs: wall-clock times and how and when the command was started.
VOLATILE = {"command", "date", "git_dirty", "fit_seconds", "fit_cpu_seconds", "seconds_per_epoch"}


def _ssm_train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("ssm-train")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "ssm.training.train"]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")]),
        OMP_NUM_THREADS="1",
        HYDRA_FULL_ERROR="0",
    )
    return subprocess.run(command + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("uninterrupted")
    proc = _ssm_train([*ARGS, "hydra.run.dir=run"], root)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root / "run"


def _summary(run: Path) -> dict[str, Any]:
    summary = json.loads((run / "summary.json").read_text())
    for key in VOLATILE:
        summary.pop(key, None)
    for point in summary["curve"]:
        point.pop("seconds")
    return summary


def _csv_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard's view of the run's scalars (it drops the events a resume purged)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["state_dict"]


def _kill(args: list[str], cwd: Path) -> None:
    proc = _ssm_train([*ARGS, KILL, *args], cwd)
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_killed_mid_save_and_mid_epoch_then_resumed_run_reports_what_an_uninterrupted_run_reports(
    uninterrupted: Path, tmp_path: Path
) -> None:
    best = _summary(uninterrupted)["best"]
    assert best["step"] <= STEPS_PER_EPOCH, (
        f"the best validation is now at step {best['step']}, after the first interruption: choose settings "
        "whose best comes before it, or this test no longer checks that a resumed run keeps the earlier best"
    )
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    resume = f"ckpt_path={last.relative_to(tmp_path)}"

    # Killed halfway through writing the second last.ckpt (end of epoch 1): epoch 0's file survives.
    _kill(["+callbacks.kill.save_name=last.ckpt", "+callbacks.kill.save_index=2", "hydra.run.dir=run"],
          tmp_path)
    assert load_checkpoint(last)["global_step"] == STEPS_PER_EPOCH
    assert len(list((run / "checkpoints").glob(".last.ckpt.*.tmp"))) == 1  # the interrupted write

    # Resumed, and killed before the batch at global step 10 (epoch 2, batch 2).
    _kill([resume, "+callbacks.kill.step=10"], tmp_path)
    assert load_checkpoint(last)["global_step"] == 2 * STEPS_PER_EPOCH

    resumed = _ssm_train([*ARGS, resume], tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"logs and checkpoints in {run}" in resumed.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no second run folder

    expected = _summary(uninterrupted)
    got = _summary(run)
    assert got["status"] == "finished" and got["test"]["test/acc"] == expected["test"]["test/acc"]
    assert got == expected
    assert _csv_rows(run) == _csv_rows(uninterrupted)
    # hp/* (the HPARAMS tab) restart at every fit start; compare their final values only.
    want, have = _scalars(uninterrupted), _scalars(run)
    assert want.keys() == have.keys()
    for tag in want:
        if tag.startswith("hp/"):
            assert have[tag][-1] == want[tag][-1], tag
        else:
            assert have[tag] == want[tag], tag

    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == sorted(p.name for p in (uninterrupted / "checkpoints").iterdir())  # no temporary left
    for name in names:
        want_w, have_w = _weights(uninterrupted / "checkpoints" / name), _weights(run / "checkpoints" / name)
        assert want_w.keys() == have_w.keys()
        for k in want_w:
            assert torch.equal(want_w[k], have_w[k]), f"{name}: {k} differs"
    best_file = f"best-epoch{best['epoch']:03d}-step{best['step']:06d}.ckpt"
    assert best_file in names  # the summary's best is the checkpoint the test ran on
