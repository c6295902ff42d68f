"""CIFAR-10 python pickles: sequential CIFAR (RGB, 1024 x 3) and LRA Image (grayscale, 1024)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from data_fixtures import write_cifar, write_cifar_batch
from ssm.data import DatasetNotFoundError, ImageDataModule, MalformedFileError, SequentialCIFARDataModule
from ssm.data.cifar import read_cifar10

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


@pytest.fixture
def cifar(tmp_path):
    return write_cifar(tmp_path, per_batch=6)


def test_read_orders_batches_and_pixels(cifar):
    d, x, y, xt, yt = cifar
    imgs, labels = read_cifar10(d.parent, "train")
    assert imgs.shape == (30, 32, 32, 3) and labels.tolist() == y.tolist()
    # row layout: R plane, G plane, B plane, each 32x32 row-major
    for i, r, c, ch in [(0, 0, 0, 0), (7, 3, 31, 1), (29, 31, 5, 2)]:
        assert imgs[i, r, c, ch] == x[i, ch * 1024 + r * 32 + c]
    assert read_cifar10(d, "test")[1].tolist() == yt.tolist()


def test_sequential_cifar_values(cifar):
    d, x, y, xt, yt = cifar
    dm = SequentialCIFARDataModule(d.parent, batch_size=4, val_split=0.2, seed=1)
    assert (dm.d_input, dm.d_output, dm.embedding, dm.l_max) == (3, 10, False, 1024)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (24, 6, 6)
    b = next(iter(dm.test_dataloader()))
    assert b["x"].shape == (4, 1024, 3) and b["x"].dtype == torch.float32
    assert b["lengths"].tolist() == [1024] * 4 and b["y"].tolist() == yt[:4].tolist()
    for i in range(4):
        for k in (0, 33, 1023):  # pixel k of image i: (x / 255 - mean) / std per channel
            want = [(xt[i, ch * 1024 + k] / 255.0 - MEAN[ch]) / STD[ch] for ch in range(3)]
            np.testing.assert_allclose(b["x"][i, k].numpy(), want, rtol=1e-5, atol=1e-6)
    seen = [int(v) for b in dm.train_dataloader() for v in b["y"]] + [int(v) for v in dm.val_set.y]
    assert sorted(seen) == sorted(y.tolist())


@pytest.mark.parametrize("tokens", [False, True])
def test_lra_image_grayscale(cifar, tokens):
    d, x, y, xt, yt = cifar
    dm = ImageDataModule(d, batch_size=6, tokens=tokens, val_split=0.0)
    want = ((256, True) if tokens else (1, False)) + (1024, 10)
    assert (dm.d_input, dm.embedding, dm.l_max, dm.d_output) == want
    dm.setup()
    b = next(iter(dm.test_dataloader()))
    for i, k in [(0, 0), (2, 517), (5, 1023)]:
        r, g, bl = (float(xt[i, ch * 1024 + k]) for ch in range(3))
        gray = int(np.floor(0.2989 * r + 0.5870 * g + 0.1140 * bl + 0.5))
        if tokens:
            assert b["x"].dtype == torch.long and int(b["x"][i, k]) == gray
        else:
            assert b["x"].shape == (6, 1024, 1)
            assert abs(float(b["x"][i, k, 0]) - (gray / 255 - 122.6 / 255) / (61.0 / 255)) < 1e-5


def test_errors(tmp_path, cifar):
    d = cifar[0]
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        SequentialCIFARDataModule(tmp_path / "none").setup()
    write_cifar_batch(d / "data_batch_3", np.zeros((2, 100), np.uint8), [0, 1], "bad")
    with pytest.raises(MalformedFileError, match=r"data_batch_3: b'data' must be a uint8 array \(N, 3072\)"):
        read_cifar10(d, "train")
    with open(d / "data_batch_3", "wb") as f:
        evil = {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": pytest.fail}
        pickle.dump(evil, f, protocol=2)
    with pytest.raises(MalformedFileError, match="refusing to load"):
        read_cifar10(d, "train")
    write_cifar_batch(d / "data_batch_3", np.zeros((2, 3072), np.uint8), [0, 1], "fixed")
    read_cifar10(d, "train")
    (d / "data_batch_5").unlink()
    with pytest.raises(DatasetNotFoundError, match="data_batch_5"):
        read_cifar10(d, "train")


def test_pickle_with_numpy_1_module_names(tmp_path):
    # The released batches were pickled under numpy 1.x: their arrays name numpy.core.multiarray.
    x = (np.arange(2 * 3072) % 251).astype(np.uint8).reshape(2, 3072)
    raw = pickle.dumps({b"data": x, b"labels": [3, 4], b"batch_label": b"b"}, protocol=2)
    raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    (d / "test_batch").write_bytes(raw)
    (d / "data_batch_1").write_bytes(raw)
    imgs, labels = read_cifar10(tmp_path, "test")
    assert labels.tolist() == [3, 4] and int(imgs[1, 0, 0, 0]) == x[1, 0] and int(imgs[0, 31, 31, 2]) == x[0, 3071]
