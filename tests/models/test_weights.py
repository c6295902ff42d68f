"""Weights-only files: SequenceModel.save_weights / from_checkpoint round trips, the stored config, the
refusal of targets outside ssm, the archive's CRC check, and loading without Lightning or Hydra."""

from __future__ import annotations

import functools
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

import ssm
from ssm.models.weights import FORMAT, CheckpointError, build_from_config

REPO = Path(__file__).resolve().parents[2]

LAYERS = {
    "s4": functools.partial(ssm.S4, d_state=4, init="legt"),
    "s4d": functools.partial(ssm.S4D, d_state=4, init="inv", bidirectional=True),
    "dss": functools.partial(ssm.DSS, d_state=4, variant="softmax", l_max=16),
    "s5": functools.partial(ssm.S5, d_state=8, blocks=2),
}


def _trained_like(model: torch.nn.Module) -> torch.nn.Module:
    """Move every parameter away from its init, so that a load that kept the init would show."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("family", list(LAYERS))
def test_round_trip_gives_the_same_model(family: str, tmp_path: Path) -> None:
    model = _trained_like(ssm.SequenceModel(3, 8, 5, 2, layer=LAYERS[family], norm="batch", prenorm=True,
                                            dropout=0.1)).eval()
    with torch.no_grad():  # nonzero batch-norm running statistics (buffers) must travel too
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
    path = model.save_weights(tmp_path / "w.pt", metadata={"note": "test"})
    loaded = ssm.SequenceModel.from_checkpoint(path)
    assert not loaded.training and loaded.config() == model.config()
    assert next(loaded.parameters()).device.type == "cpu"
    x = torch.randn(2, 16, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    stored = torch.load(path, weights_only=True)
    assert stored["format"] == FORMAT == "ssm-weights/1"
    assert stored["metadata"] == {"note": "test"} and stored["ssm_version"] == ssm.__version__
    assert stored["config"]["layer"]["_target_"] == f"ssm.{type(model.blocks[0].layer).__name__}"


def test_config_is_the_constructor_arguments() -> None:
    model = ssm.SequenceModel(17, 8, None, 1, layer=functools.partial(ssm.S4D, d_state=4), embedding=True,
                              padding_idx=0, pool=None)
    config = model.config()
    assert config == {
        "_target_": "ssm.SequenceModel", "d_input": 17, "d_model": 8, "d_output": None, "n_layers": 1,
        "embedding": True, "dropout": 0.0, "norm": "layer", "prenorm": False, "glu": True,
        "activation": "gelu", "pool": None, "padding_idx": 0, "tie_dropout": False,
        "layer": {"_target_": "ssm.S4D", "_partial_": True, "d_state": 4},
    }
    rebuilt = build_from_config(config)
    assert [n for n, _ in rebuilt.named_parameters()] == [n for n, _ in model.named_parameters()]


def test_layer_class_without_arguments_is_writable() -> None:
    assert ssm.SequenceModel(1, 4, 2, 1, layer=ssm.S4D).config()["layer"] == {"_target_": "ssm.S4D",
                                                                              "_partial_": True}


def test_unwritable_layer_callable_is_refused_with_a_hint(tmp_path: Path) -> None:
    model = ssm.SequenceModel(1, 4, 2, 1, layer=lambda d: ssm.S4D(d, d_state=4))
    model(torch.randn(1, 3, 1))  # the model itself works
    with pytest.raises(ValueError, match=r"functools.partial\(ssm.S4D, d_state=64\)"):
        model.save_weights(tmp_path / "w.pt")
    assert not (tmp_path / "w.pt").exists()


@pytest.mark.parametrize("target", ["os.system", "torch.nn.Linear", "ssm.init.hippo", "ssm.nothing_here"])
def test_targets_outside_ssm_classes_are_refused(target: str, tmp_path: Path) -> None:
    model = ssm.SequenceModel(1, 4, 2, 1, layer=functools.partial(ssm.S4D, d_state=4))
    payload = torch.load(model.save_weights(tmp_path / "w.pt"), weights_only=True)
    payload["config"]["layer"]["_target_"] = target
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="layer config"):
        ssm.SequenceModel.from_checkpoint(tmp_path / "bad.pt")


def _flip_a_data_byte(path: Path) -> None:
    """Flip one byte inside the largest member's data (not in a zip header)."""
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_len = int.from_bytes(raw[info.header_offset + 26: info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28: info.header_offset + 30], "little")
    data = info.header_offset + 30 + name_len + extra_len
    raw[data + info.file_size // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_corrupted_and_truncated_files_are_refused(tmp_path: Path) -> None:
    model = ssm.SequenceModel(1, 8, 2, 1, layer=functools.partial(ssm.S4D, d_state=4))
    good = model.save_weights(tmp_path / "w.pt")
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(good.read_bytes())
    _flip_a_data_byte(flipped)
    with pytest.raises(CheckpointError, match="CRC"):
        ssm.SequenceModel.from_checkpoint(flipped)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        ssm.SequenceModel.from_checkpoint(truncated)
    with pytest.raises(FileNotFoundError):
        ssm.SequenceModel.from_checkpoint(tmp_path / "missing.pt")


def test_other_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    torch.save({"weight": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="neither an ssm weights file"):
        ssm.SequenceModel.from_checkpoint(tmp_path / "plain.pt")
    torch.save({"format": "ssm-weights/99", "config": {}, "state_dict": {}}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="this version of ssm reads 'ssm-weights/1'"):
        ssm.SequenceModel.from_checkpoint(tmp_path / "future.pt")


def test_lightning_checkpoint_without_model_config_is_rebuilt_from_the_run_config(tmp_path: Path) -> None:
    """Checkpoints written before ``ssm_model`` existed: d_input, d_output and embedding come from the
    encoder and decoder weights, the rest from the run config's model and layer groups."""
    model = _trained_like(ssm.SequenceModel(17, 8, 4, 2, layer=functools.partial(ssm.S4D, d_state=4),
                                            embedding=True)).eval()
    run = {"name": "x", "seed": 0,
           "model": {"_target_": "ssm.SequenceModel", "d_model": 8, "n_layers": 2, "dropout": 0.0},
           "layer": {"_target_": "ssm.S4D", "_partial_": True, "d_state": 4}}
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "ssm_config": run, "epoch": 3}, tmp_path / "old.ckpt")
    loaded = ssm.SequenceModel.from_checkpoint(tmp_path / "old.ckpt")
    assert (loaded.d_input, loaded.d_output, loaded.embedding) == (17, 4, True)
    x = torch.randint(0, 17, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_loading_needs_neither_lightning_nor_hydra(tmp_path: Path) -> None:
    model = ssm.SequenceModel(1, 4, 2, 1, layer=functools.partial(ssm.S5, d_state=4))
    path = model.save_weights(tmp_path / "w.pt")
    code = (
        "import sys, ssm; "
        f"m = ssm.SequenceModel.from_checkpoint({str(path)!r}); assert not m.training; "
        "heavy = [k for k in sys.modules if k.split('.')[0] in "
        "('lightning', 'pytorch_lightning', 'hydra', 'omegaconf', 'torchmetrics')]; assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_pickled_code_is_not_loaded(tmp_path: Path) -> None:
    """A file holding Python objects beyond tensors and plain values is refused, never unpickled."""
    torch.save({"format": FORMAT, "config": functools.partial(ssm.S4D, d_state=4), "state_dict": {}},
               tmp_path / "code.pt")
    with pytest.raises(CheckpointError, match=r"weights_only=True"):
        ssm.SequenceModel.from_checkpoint(tmp_path / "code.pt")
