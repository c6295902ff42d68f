"""Checkpoint files: CRC-verified loads, atomic saves that survive SIGKILL, one-line errors for bad files."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from train_helpers import TINY, compose_cfg

from ssm.training.checkpoint import CheckpointError, load_checkpoint, remove_stale_temporaries
from ssm.training.checkpoint_io import AtomicCheckpointIO
from ssm.training.resume import resume_run_dir
from ssm.training.sampling import ReproducibleDataModule
from ssm.training.train import build_datamodule, build_module, build_trainer

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ssm-train checkpoint (one short epoch) whose largest weight spans more than 4 KiB."""
    out = tmp_path_factory.mktemp("trained")
    cfg = compose_cfg([
        f"paths.output_dir={out}", *TINY, "model.d_model=32", "layer.d_state=4", "data.batch_size=16",
        "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
    ])
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm)
    trainer, _ = build_trainer(cfg)
    trainer.fit(module, datamodule=ReproducibleDataModule(dm, seed=cfg.seed))
    return out / "checkpoints" / "last.ckpt"


def _zero_4kib_of_the_largest_weight(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst`` with 4 KiB zeroed inside the largest tensor's bytes; return that member."""
    with zipfile.ZipFile(src) as archive:
        member = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    assert member.file_size >= 4096, member
    raw = bytearray(src.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[member.header_offset + 26: member.header_offset + 30])
    start = member.header_offset + 30 + name_len + extra_len + (member.file_size - 4096) // 2
    assert any(raw[start: start + 4096]), "the chosen bytes are already zero"
    raw[start: start + 4096] = bytes(4096)
    dst.write_bytes(bytes(raw))
    return member.filename


def _main_in_process(main, args: list[str], monkeypatch: pytest.MonkeyPatch, prog: str) -> int:
    """Run a console entry point in this process; return its exit status."""
    from hydra.core.global_hydra import GlobalHydra

    monkeypatch.setattr(sys, "argv", [prog, *args])
    try:
        with pytest.raises(SystemExit) as exit_info:
            main()
    finally:
        GlobalHydra.instance().clear()
    return exit_info.value.code


def _ssm_train(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    from ssm.training.train import main

    return _main_in_process(main, args, monkeypatch, "ssm-train")


def _ssm_eval(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    from ssm.training.evaluate import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code


def _one_error_line(err: str, prefix: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------------------------------ integrity
def test_a_corrupted_weight_is_refused_where_torch_load_accepts_it(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "checkpoints" / "last.ckpt"
    bad.parent.mkdir()
    member = _zero_4kib_of_the_largest_weight(trained, bad)
    # The hazard: torch.load does not check the CRC-32s and returns other weights without a word.
    good_state = torch.load(trained, weights_only=True)["state_dict"]
    bad_state = torch.load(bad, weights_only=True)["state_dict"]
    assert any(not torch.equal(good_state[k], bad_state[k]) for k in good_state)
    assert load_checkpoint(trained)["state_dict"].keys() == good_state.keys()

    with pytest.raises(CheckpointError, match="is corrupted") as info:
        load_checkpoint(bad)
    assert str(bad) in str(info.value) and member in str(info.value)

    assert _ssm_eval([str(bad), "--accelerator", "cpu"], monkeypatch) == 2
    line = _one_error_line(capsys.readouterr().err, "ssm-eval:")
    assert str(bad) in line and "corrupted" in line and member in line

    args = [f"ckpt_path={bad}", f"hydra.run.dir={tmp_path / 'resumed'}"]
    assert _ssm_train(args, monkeypatch) == 2
    line = _one_error_line(capsys.readouterr().err, "ssm-train:")
    assert line.startswith("ssm-train: config error: ckpt_path:") and str(bad) in line and "corrupted" in line


def test_lightning_loads_through_the_verifying_checkpoint_io(trained: Path, tmp_path: Path) -> None:
    bad = tmp_path / "last.ckpt"
    _zero_4kib_of_the_largest_weight(trained, bad)
    io = AtomicCheckpointIO()
    assert io.load_checkpoint(trained)["global_step"] == 2
    with pytest.raises(CheckpointError, match="is corrupted"):
        io.load_checkpoint(bad)
    with pytest.raises(FileNotFoundError):  # Lightning's own error for a missing file is kept
        io.load_checkpoint(tmp_path / "missing.ckpt")


# ----------------------------------------------------------------------------------------- bad files
def _bad_file(kind: str, root: Path) -> tuple[Path, str]:
    """A ``ckpt_path`` of the given kind, and the words the error must contain."""
    path = root / "checkpoints" / f"{kind}.ckpt"
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "directory":
        path = root / "checkpoints"
        return path, "expected a checkpoint file, got a directory"
    if kind == "empty":
        path.write_bytes(b"")
        return path, "expected a zip archive written by torch.save, got an empty file (0 bytes)"
    if kind == "random":
        path.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0))
                         .to(torch.uint8).numpy().tobytes())
        return path, "expected a zip archive written by torch.save, got 4096 bytes starting"
    if kind == "text":
        path.write_text("epoch,step,val/loss\n0,4,2.31\n")
        return path, "expected a zip archive written by torch.save, got a text file starting 'epoch,step"
    if kind == "state_dict":
        torch.save({"model.encoder.weight": torch.ones(4, 1), "model.encoder.bias": torch.zeros(4)}, path)
        return path, "expected a Lightning checkpoint written by ssm-train"
    raise AssertionError(kind)


KINDS = ["directory", "empty", "random", "text", "state_dict"]


@pytest.mark.parametrize("kind", KINDS)
def test_ssm_train_names_a_bad_ckpt_path_in_one_line(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    path, words = _bad_file(kind, tmp_path)
    assert _ssm_train([f"ckpt_path={path}", f"hydra.run.dir={tmp_path / 'run'}"], monkeypatch) == 2
    line = _one_error_line(capsys.readouterr().err, "ssm-train:")
    assert line.startswith(f"ssm-train: config error: ckpt_path: checkpoint {path}"), line
    assert words in line, line


@pytest.mark.parametrize("kind", KINDS)
def test_ssm_eval_names_a_bad_checkpoint_in_one_line(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    path, words = _bad_file(kind, tmp_path)
    assert _ssm_eval([str(path), "--accelerator", "cpu"], monkeypatch) == 2
    line = _one_error_line(capsys.readouterr().err, "ssm-eval:")
    assert line.startswith(f"ssm-eval: error: checkpoint {path}"), line
    assert words in line, line


def test_a_bare_state_dict_still_loads_when_a_lightning_checkpoint_is_not_required(tmp_path: Path) -> None:
    path, _ = _bad_file("state_dict", tmp_path)
    assert set(load_checkpoint(path, lightning=False)) == {"model.encoder.weight", "model.encoder.bias"}


# ------------------------------------------------------------------------------------- atomic saves
SAVER = """
import os, signal, sys, torch
from train_faults import _half_then_kill, kill_self
from ssm.training.checkpoint_io import AtomicCheckpointIO

path, point = sys.argv[1], sys.argv[2]
if point == "write":      # half of the real serialized bytes are in the file, then SIGKILL
    torch.save = _half_then_kill(torch.save)
elif point == "rename":   # the temporary file is complete and fsynced; SIGKILL before the rename
    os.replace = lambda *args: kill_self()
big = {"state_dict": {"w": torch.arange(4 * 2**20, dtype=torch.float32)}, "pytorch-lightning_version": "2",
       "global_step": 2}
AtomicCheckpointIO().save_checkpoint(big, path)
"""


@pytest.mark.parametrize("point", ["write", "rename"])
def test_a_save_killed_at_any_point_leaves_the_previous_checkpoint(point: str, tmp_path: Path) -> None:
    ckpt_dir = tmp_path / "checkpoints"
    path = ckpt_dir / "last.ckpt"
    old = {"state_dict": {"w": torch.ones(3)}, "pytorch-lightning_version": "2", "global_step": 1}
    AtomicCheckpointIO().save_checkpoint(old, path)
    system_tmp = tmp_path / "system_tmp"
    system_tmp.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(REPO)]), TMPDIR=str(system_tmp),
               OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", SAVER, str(path), point], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]

    # The previous checkpoint is intact; the killed save left its partial file beside it, nowhere else.
    assert torch.equal(load_checkpoint(path)["state_dict"]["w"], torch.ones(3))
    temporaries = [p for p in ckpt_dir.iterdir() if p.name != "last.ckpt"]
    assert len(temporaries) == 1 and temporaries[0].name.startswith(".last.ckpt."), temporaries
    assert temporaries[0].stat().st_size > 0
    assert list(system_tmp.iterdir()) == []

    # The next save replaces the file and removes the stale temporary file.
    new = {"state_dict": {"w": torch.zeros(5)}, "pytorch-lightning_version": "2", "global_step": 3}
    AtomicCheckpointIO().save_checkpoint(new, path)
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["last.ckpt"]
    assert torch.equal(load_checkpoint(path)["state_dict"]["w"], torch.zeros(5))


def test_atomic_saves_keep_the_usual_permissions_and_clean_only_their_own_files(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {}, "pytorch-lightning_version": "2"}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    stale = tmp_path / ".best-epoch001-step000008.ckpt.4242.0123abcd.tmp"
    stale.write_bytes(b"partial")
    unrelated = tmp_path / ".notes.tmp"
    unrelated.write_text("kept")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert unrelated.is_file() and path.is_file()


# ---------------------------------------------------------------------------------------- run folder
def test_a_resume_runs_in_the_folder_of_its_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "digits-s4d" / "2026-01-01_00-00-00"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (tmp_path / "elsewhere.ckpt").write_bytes(b"x")
    assert resume_run_dir(str(run / "checkpoints" / "last.ckpt"), "runs/new") == str(run)
    assert resume_run_dir(str(tmp_path / "elsewhere.ckpt"), "runs/new") == "runs/new"
    assert resume_run_dir(str(run / "checkpoints" / "missing.ckpt"), "runs/new") == "runs/new"
    assert resume_run_dir(None, "runs/new") == "runs/new"


def test_ssm_train_saves_and_loads_through_the_atomic_checkpoint_io(tmp_path: Path) -> None:
    trainer, _ = build_trainer(compose_cfg([f"paths.output_dir={tmp_path}", *TINY]))
    assert type(trainer.strategy.checkpoint_io) is AtomicCheckpointIO
