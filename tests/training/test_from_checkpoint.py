"""A real (tiny) ssm-train run, then SequenceModel.from_checkpoint on its checkpoint and on the weights
file exported from it: the same model as the one Lightning restores, ready for inference."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_helpers import TINY, compose_cfg

import ssm
from ssm.training import export_weights
from ssm.training.train import build_datamodule, build_module, run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """The default experiment (digits, S4D) at a tiny size: one epoch of two batches."""
    out = tmp_path_factory.mktemp("tiny_run")
    cfg = compose_cfg([f"paths.output_dir={out}", *TINY, "layer.d_state=4", "trainer.max_epochs=1",
                       "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
                       "+trainer.limit_test_batches=1"])
    run(cfg)
    return out / "checkpoints" / "last.ckpt", cfg


def _lightning_model(ckpt: Path, cfg) -> torch.nn.Module:
    """The backbone as ssm-eval restores it: the run config, the data module, Lightning's module."""
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm)
    module.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"])
    return module.model.eval()


def test_checkpoint_stores_the_model_config(tiny_run) -> None:
    ckpt, _ = tiny_run
    stored = torch.load(ckpt, map_location="cpu", weights_only=True)
    config = stored["ssm_model"]
    assert (config["d_input"], config["d_output"], config["embedding"]) == (1, 10, False)
    assert config["layer"]["_target_"] == "ssm.S4D" and config["layer"]["d_state"] == 4
    assert stored["ssm_config"]["name"] == "digits-s4d"


def test_from_checkpoint_matches_the_lightning_restore(tiny_run) -> None:
    ckpt, cfg = tiny_run
    model = ssm.SequenceModel.from_checkpoint(ckpt)
    assert isinstance(model, ssm.SequenceModel) and not model.training
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    reference = _lightning_model(ckpt, cfg)
    x = torch.rand(3, 64, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=0)


def test_exported_weights_load_to_the_same_model(tiny_run, tmp_path: Path) -> None:
    ckpt, _ = tiny_run
    path = export_weights(ckpt, tmp_path / "result" / "model.pt", metadata={"test_acc": 0.5})
    stored = torch.load(path, weights_only=True)
    assert stored["format"] == "ssm-weights/1"
    assert set(stored) == {"format", "config", "state_dict", "ssm_version", "metadata"}
    assert stored["metadata"]["experiment"] == "digits-s4d" and stored["metadata"]["test_acc"] == 0.5
    assert path.stat().st_size < ckpt.stat().st_size  # no optimizer state
    a, b = ssm.SequenceModel.from_checkpoint(ckpt), ssm.SequenceModel.from_checkpoint(path)
    x = torch.rand(2, 64, 1)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_export_command(tiny_run, tmp_path: Path) -> None:
    ckpt, _ = tiny_run
    out = tmp_path / "model.pt"
    proc = subprocess.run([sys.executable, "-m", "ssm.training.export", str(ckpt), str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.is_file() and "from_checkpoint" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "ssm.training.export", str(tmp_path / "none.ckpt"), str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
