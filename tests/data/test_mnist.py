"""MNIST IDX files: sequential and permuted MNIST on fixtures, and real Fashion-MNIST (Debian package
dataset-fashion-mnist) through the same loaders."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from data_fixtures import write_idx, write_mnist
from ssm.data import DatasetNotFoundError, MalformedFileError, SequentialMNISTDataModule
from ssm.data.mnist import bitreversal_permutation, mnist_permutation, read_idx, read_mnist

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.parametrize("gz", [False, True])
def test_idx_fixture_roundtrip(tmp_path, gz):
    x, y, xt, yt = write_mnist(tmp_path / "MNIST" / "raw", 7, 3, gz=gz)
    suffix = ".gz" if gz else ""
    raw = (tmp_path / "MNIST" / "raw" / f"train-images-idx3-ubyte{suffix}").read_bytes()
    raw = gzip.decompress(raw) if gz else raw
    assert int.from_bytes(raw[:4], "big") == 2051 and int.from_bytes(raw[4:8], "big") == 7
    imgs, labels = read_mnist(tmp_path, "train")
    np.testing.assert_array_equal(imgs, x)
    assert labels.tolist() == y.tolist()
    assert read_mnist(tmp_path, "test")[1].tolist() == yt.tolist()


def test_bitreversal_permutation():
    p = bitreversal_permutation(784)
    assert sorted(p.tolist()) == list(range(784))
    # 10-bit reversal of 0, 1, 2, ...: 0, 512, 256, 768, 128, 640, 384, (896 dropped), 64, ...
    assert p[:10].tolist() == [0, 512, 256, 768, 128, 640, 384, 64, 576, 320]
    assert bitreversal_permutation(8).tolist() == [0, 4, 2, 6, 1, 5, 3, 7]
    for j in range(1, 784):  # order kept: the index of p[j] in the full 1024 reversal order increases
        a, b = (int(format(int(v), "010b")[::-1], 2) for v in (p[j - 1], p[j]))
        assert a < b


def test_random_permutation_is_pinned():
    p = mnist_permutation("random", 784, seed=0)
    assert sorted(p.tolist()) == list(range(784))
    assert p[:8].tolist() == [693, 85, 647, 392, 765, 14, 299, 711]  # numpy RandomState(0): a frozen stream
    assert mnist_permutation(None) is None
    with pytest.raises(ValueError, match="permute"):
        mnist_permutation("reverse")


@pytest.mark.parametrize("permute", [None, "random", "bitreversal"])
def test_datamodule_sequences(tmp_path, permute):
    x, y, xt, yt = write_mnist(tmp_path, 20, 5, gz=True)
    dm = SequentialMNISTDataModule(tmp_path, batch_size=5, permute=permute, val_split=0.25, seed=2)
    assert (dm.d_input, dm.d_output, dm.embedding, dm.l_max) == (1, 10, False, 784)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (15, 5, 5)
    b = next(iter(dm.test_dataloader()))
    assert b["x"].shape == (5, 784, 1) and b["x"].dtype == torch.float32 and b["y"].tolist() == yt.tolist()
    flat = xt.reshape(5, 784) / 255.0
    order = np.arange(784) if permute is None else mnist_permutation(permute)
    for i in range(5):
        for k in (0, 1, 100, 783):
            assert abs(float(b["x"][i, k, 0]) - flat[i, order[k]]) < 1e-6


def test_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte"):
        SequentialMNISTDataModule(tmp_path / "none").setup()
    p = write_idx(tmp_path / "a", np.zeros((2, 3), np.uint8))
    p.write_bytes(p.read_bytes()[:-1])
    with pytest.raises(MalformedFileError, match="IDX body has 5 bytes"):
        read_idx(p)
    p.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(MalformedFileError, match="bad IDX magic"):
        read_idx(p)
    write_mnist(tmp_path / "m", 3, 2)
    write_idx(tmp_path / "m" / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(MalformedFileError, match="4 labels for 3 images"):
        read_mnist(tmp_path / "m", "train")
    write_idx(tmp_path / "m" / "train-images-idx3-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(MalformedFileError, match="magic 2051"):
        read_mnist(tmp_path / "m", "train")


def _fashion_dir() -> Path:
    if (FASHION / "train-images-idx3-ubyte.gz").is_file():
        return FASHION
    if os.environ.get("CI"):
        pytest.fail(f"Fashion-MNIST not found at {FASHION}; CI must install it: "
                    "apt-get install -y dataset-fashion-mnist")
    pytest.skip(f"Fashion-MNIST not installed ({FASHION}); apt-get install -y dataset-fashion-mnist")


def test_real_fashion_mnist_sequential_and_permuted():
    root = _fashion_dir()
    seq = SequentialMNISTDataModule(root, batch_size=256, val_split=0.1, seed=0)
    perm = SequentialMNISTDataModule(root, batch_size=256, val_split=0.1, seed=0, permute="random")
    seq.setup()
    perm.setup()
    assert (len(seq.train_set), len(seq.val_set), len(seq.test_set)) == (54000, 6000, 10000)
    # Fashion-MNIST is balanced: 6000 training and 1000 test images per class
    train_y = np.concatenate([seq.train_set.y.numpy(), seq.val_set.y.numpy()])
    assert np.bincount(train_y).tolist() == [6000] * 10
    assert np.bincount(seq.test_set.y.numpy()).tolist() == [1000] * 10
    bs, bp = next(iter(seq.test_dataloader())), next(iter(perm.test_dataloader()))
    assert bs["x"].shape == (256, 784, 1) and 0 <= float(bs["x"].min()) and float(bs["x"].max()) <= 1
    assert float(bs["x"].max()) == 1.0 and bs["y"].tolist() == bp["y"].tolist()
    p = torch.as_tensor(mnist_permutation("random"))
    torch.testing.assert_close(bp["x"], bs["x"][:, p])
    # images are not blank or noise: the mean image of class 1 (trouser) differs from class 8 (bag)
    m1 = bs["x"][bs["y"] == 1].mean(0)
    m8 = bs["x"][bs["y"] == 8].mean(0)
    assert float((m1 - m8).abs().mean()) > 0.1
