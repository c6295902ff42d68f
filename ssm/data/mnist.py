"""MNIST-format IDX files, sequential MNIST (sMNIST, L 784) and permuted MNIST (psMNIST).

IDX (LeCun et al.): big-endian; a 4-byte magic ``0, 0, type, ndim`` (type 0x08 = uint8), then ``ndim``
big-endian uint32 sizes, then the data. Images are ``train-images-idx3-ubyte`` (magic 2051, N x 28 x 28),
labels ``train-labels-idx1-ubyte`` (magic 2049, N); tests are ``t10k-...``; each may be gzipped (``.gz``).
Fashion-MNIST ships in the same format and loads through the same code.

Pixels are read in raster order and scaled to [0, 1]: one feature per step, L 784. psMNIST reorders
every image with one fixed permutation ``x_perm[i] = x[perm[i]]``:
- ``"random"``: ``numpy.random.RandomState(permute_seed).permutation(784)`` (legacy stream, frozen
  across numpy versions; default seed 0);
- ``"bitreversal"``: the 10-bit bit-reversal order of 0..1023 with the indices >= 784 removed (order
  kept), the permutation the S4 code base used (Gu et al., arXiv:2111.00396).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ._io import MalformedFileError, find_dir, find_file, read_maybe_gz
from .datamodule import ArrayDataset, SequenceDataModule, split_indices

__all__ = ["read_idx", "read_mnist", "find_mnist_dir", "bitreversal_permutation", "mnist_permutation",
           "SequentialMNISTDataModule", "HOW_TO_GET"]

HOW_TO_GET = ("Put the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
              "t10k-images-idx3-ubyte, "
              "t10k-labels-idx1-ubyte, optionally .gz) in data_dir: from http://yann.lecun.com/exdb/mnist/, "
              "torchvision.datasets.MNIST(data_dir, download=True) (data_dir/MNIST/raw), or for "
              "Fashion-MNIST the Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).")
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into an array of its declared type and shape."""
    path = Path(path)
    raw = read_maybe_gz(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise MalformedFileError(path, None, f"bad IDX magic {raw[:4].hex()} (expected 0000 <type> <ndim>)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise MalformedFileError(path, None, "IDX header truncated")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[raw[2]])
    need = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != need:
        raise MalformedFileError(path, None,
                                 f"IDX body has {len(raw) - header} bytes, dims {dims} need {need}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def find_mnist_dir(data_dir: str | Path) -> Path:
    """Where ``train-images-idx3-ubyte[.gz]`` is: ``data_dir``, ``data_dir/raw``, ``data_dir/MNIST/raw``
    or ``data_dir/FashionMNIST/raw`` (torchvision's layouts)."""
    d = Path(data_dir)
    cands = [d, d / "raw", d / "MNIST" / "raw", d / "FashionMNIST" / "raw"]
    for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"):
        for c in cands:
            if (c / name).is_file():
                return c
    return find_dir(cands, "train-images-idx3-ubyte", "MNIST-format IDX files", HOW_TO_GET)


def read_mnist(data_dir: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of ``split`` ("train" or "test")."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    d = find_mnist_dir(data_dir)
    prefix = "train" if split == "train" else "t10k"
    ip = find_file(d, f"{prefix}-images-idx3-ubyte", "MNIST images", HOW_TO_GET, allow_gz=True)
    lp = find_file(d, f"{prefix}-labels-idx1-ubyte", "MNIST labels", HOW_TO_GET, allow_gz=True)
    images, labels = read_idx(ip), read_idx(lp)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise MalformedFileError(ip, None, f"expected uint8 images (N, rows, cols) (magic 2051), got "
                                 f"{images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise MalformedFileError(lp, None, f"expected uint8 labels (N,) (magic 2049), got {labels.dtype} "
                                 f"{labels.shape}")
    if len(images) != len(labels):
        raise MalformedFileError(lp, None, f"{len(labels)} labels for {len(images)} images in {ip.name}")
    if len(images) == 0:
        raise MalformedFileError(ip, None, "expected at least one image, got an IDX file of 0 images")
    if labels.size and labels.max() > 9:
        raise MalformedFileError(lp, None, f"label {labels.max()} outside 0-9")
    return images, labels.astype(np.int64)


def bitreversal_permutation(n: int) -> np.ndarray:
    """Bit-reversal order over the next power of two ``2^m >= n``, restricted to indices < n (order kept)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    m = max(1, (n - 1).bit_length())
    rev = np.array([int(format(i, f"0{m}b")[::-1], 2) for i in range(1 << m)], dtype=np.int64)
    return rev[rev < n]


def mnist_permutation(kind: str | None, n: int = 784, seed: int = 0) -> np.ndarray | None:
    """The pixel permutation for psMNIST: None (identity), "random" (seeded) or "bitreversal"."""
    if kind is None:
        return None
    if kind == "random":
        return np.random.RandomState(seed).permutation(n)
    if kind == "bitreversal":
        return bitreversal_permutation(n)
    raise ValueError(f"permute must be None, 'random' or 'bitreversal', got {kind!r}")


def _scale(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255.0)


class SequentialMNISTDataModule(SequenceDataModule):
    """sMNIST / psMNIST: (784, 1) floats in [0, 1] per image, 10 classes.

    Args:
        data_dir: folder with the IDX files (see :func:`find_mnist_dir`).
        permute: None (sMNIST), "random" or "bitreversal" (psMNIST).
        permute_seed: seed of the "random" permutation.
        val_split: fraction of the training images held out (seeded by ``seed``) for validation.
    """

    embedding = False
    d_input, d_output, l_max = 1, 10, 784

    def __init__(self, data_dir: str | Path, batch_size: int = 50, num_workers: int = 0, seed: int = 0,
                 permute: str | None = None, permute_seed: int = 0, val_split: float = 0.1,
                 pin_memory: bool = False) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed, pin_memory)
        if not 0.0 < val_split < 1.0:
            raise ValueError(f"val_split must lie in (0, 1), got {val_split}")
        self.perm = mnist_permutation(permute, 784, permute_seed)
        self.permute, self.permute_seed, self.val_split = permute, permute_seed, val_split

    def _prep(self, images: np.ndarray) -> np.ndarray:
        x = images.reshape(len(images), -1)
        if x.shape[1] != 784:
            raise ValueError(f"expected 28x28 images (784 pixels), got {images.shape[1:]}")
        if self.perm is not None:
            x = x[:, self.perm]
        return x[:, :, None]

    def _load(self) -> tuple[ArrayDataset, ArrayDataset, ArrayDataset]:
        x, y = read_mnist(self.data_dir, "train")
        xt, yt = read_mnist(self.data_dir, "test")
        x, xt = self._prep(x), self._prep(xt)
        val_idx, tr_idx = split_indices(len(y), [self.val_split, 1 - self.val_split], self.seed)
        return (ArrayDataset(x[tr_idx], y[tr_idx], _scale), ArrayDataset(x[val_idx], y[val_idx], _scale),
                ArrayDataset(xt, yt, _scale))
