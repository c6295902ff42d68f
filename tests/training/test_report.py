"""Sweeps through Hydra's launcher plugins (joblib, submitit) and ``ssm-report`` on their run folders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from train_helpers import compose_cfg

from ssm.training.report import collect, main as report_main, split_name

REPO = Path(__file__).resolve().parents[2]

# A two-job grid (seeds 0 and 1) of the default experiment at a tiny size: a few seconds per job.
GRID = [
    "experiment=digits-s4d",
    "seed=0,1",
    "model.d_model=8",
    "layer.d_state=4",
    "model.n_layers=1",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=4",
    "trainer.val_check_interval=2",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.progress_bar=null",
]

SCHEMA = {"task", "family", "variant", "tier", "seed", "status", "test_acc", "best_val_acc", "steps", "epochs",
          "train_seconds", "train_cpu_seconds", "torch_threads", "params", "command", "git_commit", "date",
          "device", "baseline_acc"}


def _sweep(launcher: list[str], out: Path, cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("ssm-train")
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "ssm.training.train"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    return subprocess.run(cmd + ["-m", *launcher, *GRID, f"hydra.sweep.dir={out}"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def joblib_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    root = tmp_path_factory.mktemp("joblib")
    done = _sweep(["hydra/launcher=local"], root / "sweep", root)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "sweep"


def test_joblib_launcher_runs_the_grid_two_at_a_time(joblib_sweep: Path) -> None:
    cfg = compose_cfg(["hydra/launcher=local"])  # noqa: F841 (composes: the group option exists)
    runs = sorted(p.parent for p in joblib_sweep.rglob("summary.json"))
    assert [p.name for p in runs] == ["0", "1"]
    seeds = {json.loads((p / "summary.json").read_text())["seed"] for p in runs}
    assert seeds == {0, 1}


def test_report_turns_a_sweep_into_results(joblib_sweep: Path, tmp_path: Path) -> None:
    out, page = tmp_path / "results", tmp_path / "docs" / "results.md"
    assert report_main([str(joblib_sweep), "--out", str(out), "--weights", "--markdown", str(page)]) == 0
    files = sorted(out.rglob("*.json"))
    assert len(files) == 2
    for f in files:
        r = json.loads(f.read_text())
        # the best weights beside the result load into a ready model
        import ssm

        model = ssm.SequenceModel.from_checkpoint(f.with_name(r["checkpoint"]))
        assert not model.training and sum(p.numel() for p in model.parameters()) == r["params"]
        assert SCHEMA <= r.keys(), SCHEMA - r.keys()
        assert (r["task"], r["family"], r["variant"], r["tier"]) == ("digits", "s4d", "default", "cpu")
        assert r["status"] == "finished" and 0.0 <= r["test_acc"] <= 1.0
        assert 0.0 < r["baseline_acc"] <= 1.0
        assert r["steps"] == 4 and r["torch_threads"] >= 1 and r["params"] > 0
        # the training process's CPU time: positive, and bounded by its threads (torch's and one more) x wall
        assert 0.0 < r["train_cpu_seconds"] <= (r["torch_threads"] + 1) * r["train_seconds"] + 1.0
        assert r["command"].startswith("ssm-train ") and "seed=" in r["command"]
        assert [c["step"] for c in r["curve"]] == [2, 4]
        # the best validation accuracy is the maximum of the curve
        assert r["best_val_acc"] == max(c["val/acc"] for c in r["curve"])
    text = page.read_text()
    assert "| digits | S4D-LegS | cpu |" in text and "2 / 2" in text
    assert (page.with_suffix("") / "digits-cpu.png").stat().st_size > 1000
    # a second pass over the written JSONs (no run folders) gives the same results
    again = collect([out])
    assert [r["seed"] for r in again] == [r["seed"] for r in collect([joblib_sweep])]


def test_report_lists_partial_and_failed_runs(joblib_sweep: Path, tmp_path: Path) -> None:
    partial, failed = tmp_path / "partial", tmp_path / "failed"
    shutil.copytree(joblib_sweep / "0", partial)
    shutil.copytree(joblib_sweep / "1", failed)
    s = json.loads((partial / "summary.json").read_text())
    s.update(status="running", test={}, curve=s["curve"][:1])
    (partial / "summary.json").write_text(json.dumps(s))
    s = json.loads((failed / "summary.json").read_text())
    s.update(status="failed", reason="NonFiniteError: training loss is nan", test={})
    (failed / "summary.json").write_text(json.dumps(s))
    results = {r["run_dir"]: r for r in collect([tmp_path])}
    p, f = results[str(partial)], results[str(failed)]
    assert p["status"] == "stopped" and "killed" in p["reason"] and len(p["curve"]) == 1
    assert f["status"] == "failed" and "nan" in f["reason"] and f["test_acc"] is None
    page = tmp_path / "page.md"
    assert report_main([str(tmp_path), "--markdown", str(page)]) == 0
    text = page.read_text()
    assert "0 / 2" in text and "stopped: no end recorded" in text and "failed: NonFiniteError" in text


def test_report_refuses_an_empty_or_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert report_main([str(tmp_path)]) == 2
    assert "no runs" in capsys.readouterr().err
    assert report_main([str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, expected",
    [("sfmnist-s4-ptd", ("sfmnist", "s4-ptd")), ("lra/listops-s4", ("lra/listops", "s4")),
     ("listops-cpu-s5", ("listops-cpu", "s5")), ("pathfinder-cpu-s4d", ("pathfinder-cpu", "s4d")),
     ("psfmnist-dss", ("psfmnist", "dss")), ("something", ("something", "unknown"))],
)
def test_experiment_names_split_into_task_and_family(name: str, expected: tuple[str, str]) -> None:
    assert split_name(name) == expected


def test_submitit_local_executor_runs_the_slurm_resources(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    slurm = compose_cfg(["hydra/launcher=slurm"])
    # compose() drops the hydra node; read the launcher files as Hydra composes them for a sweep
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        s = compose("train", overrides=["hydra/launcher=slurm"], return_hydra_config=True).hydra.launcher
        local = compose("train", overrides=["hydra/launcher=submitit-local"], return_hydra_config=True).hydra.launcher
    assert slurm is not None and s._target_.endswith("SlurmLauncher") and local._target_.endswith("LocalLauncher")
    for key in ("timeout_min", "nodes", "tasks_per_node", "gpus_per_node", "cpus_per_task", "mem_gb"):
        assert s[key] == local[key], key
    done = _sweep(["hydra/launcher=submitit-local", "hydra.launcher.gpus_per_node=0",
                   "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2"], tmp_path / "sweep", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = collect([tmp_path / "sweep"])
    assert sorted(r["seed"] for r in results) == [0, 1]
    assert all(r["status"] == "finished" for r in results)
