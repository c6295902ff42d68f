"""A missing or malformed data set stops ``ssm-train`` before the model and the Trainer are built, with
the one-line config error (exit status 2) that names the paths tried or the file, and how to get the data."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_fixtures import write_listops_fixture
from train_helpers import run_ssm_train

PREFIX = "ssm-train: config error: cannot load the data (group data, "


def _one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX), proc.stderr[-3000:]
    # Nothing was built: Lightning's Trainer announces the devices as soon as it exists.
    assert "GPU available" not in proc.stdout + proc.stderr
    return lines[0]


def test_missing_mnist_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no-mnist"
    run_dir = tmp_path / "run"
    proc = run_ssm_train(["experiment=smnist-s4d", f"paths.data_dir={missing}", f"hydra.run.dir={run_dir}"],
                         tmp_path)
    line = _one_error_line(proc)
    assert "ssm.data.mnist.SequentialMNISTDataModule" in line
    for folder in (missing, missing / "raw", missing / "MNIST" / "raw", missing / "FashionMNIST" / "raw"):
        assert str(folder / "train-images-idx3-ubyte") in line
    assert "torchvision.datasets.MNIST(data_dir, download=True)" in line
    assert not (run_dir / "checkpoints").exists()


@pytest.mark.parametrize("problem", ["header-only val file", "random bytes"])
def test_malformed_listops_file(problem: str, tmp_path: Path) -> None:
    write_listops_fixture(tmp_path)
    folder = tmp_path / "lra_release" / "listops-1000"
    if problem == "random bytes":
        bad = folder / "basic_train.tsv"
        bad.write_bytes(bad.read_bytes()[:200] + bytes(range(128, 256)))
        expected = "expected utf-8 text, got the byte 0x80"
    else:
        bad = folder / "basic_val.tsv"
        bad.write_bytes(b"Source\tTarget\r\n")
        expected = "expected rows '<expression><TAB><value 0-9>' after the header, got none"
    run_dir = tmp_path / "run"
    args = ["experiment=lra/listops-s4", f"paths.data_dir={tmp_path}", f"hydra.run.dir={run_dir}"]
    proc = run_ssm_train(args, tmp_path)
    line = _one_error_line(proc)
    assert str(bad) in line and expected in line
    assert not (run_dir / "checkpoints").exists()
