"""CIFAR-10 from its python-pickle release, and sequential CIFAR (sCIFAR; S4, Gu et al., arXiv:2111.00396).

Layout: ``cifar-10-batches-py/{data_batch_1..5, test_batch}``; each file is a pickled dict with
``b"data"`` (N, 3072) uint8, each row the R, G and B planes of a 32x32 image in row-major order, and
``b"labels"`` (N ints 0-9). Only numpy arrays and builtins are unpickled (a restricted unpickler), so a
tampered file cannot run code. sCIFAR reads pixels in raster order: L 1024, 3 features (R, G, B) per
step, each channel normalized with the CIFAR-10 training mean and standard deviation.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ._io import MalformedFileError, find_dir, find_file
from .datamodule import ArrayDataset, SequenceDataModule, split_indices

__all__ = ["read_cifar10", "find_cifar_dir", "to_grayscale", "SequentialCIFARDataModule", "HOW_TO_GET"]

HOW_TO_GET = ("Download the CIFAR-10 python version (cifar-10-python.tar.gz, "
              "https://www.cs.toronto.edu/~kriz/cifar.html) and extract it so that "
              "cifar-10-batches-py/data_batch_1 exists under data_dir "
              "(torchvision.datasets.CIFAR10(data_dir, download=True) produces the same layout).")
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
# ITU-R 601 luma weights as used by tf.image.rgb_to_grayscale in LRA's image pipeline.
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)
_ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
            # a protocol-2 pickle writes an empty buffer (a batch of 0 images) as a call of bytes()
            ("__builtin__", "bytes"), ("builtins", "bytes")}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: ANN201
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are expected)")


def find_cifar_dir(data_dir: str | Path) -> Path:
    """``data_dir`` if it holds ``data_batch_1``, else ``data_dir/cifar-10-batches-py``."""
    d = Path(data_dir)
    return find_dir([d, d / "cifar-10-batches-py"], "data_batch_1", "CIFAR-10 (python version)", HOW_TO_GET)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    # A corrupt or random file can fail in any step of unpickling (opcodes, lengths, codecs, objects).
    try:
        with open(path, "rb") as f:
            d = _SafeUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, LookupError, IndexError,
            KeyError, OverflowError, MemoryError) as e:
        raise MalformedFileError(path, None, "expected a CIFAR-10 python pickle batch, got an unreadable "
                                 f"file ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise MalformedFileError(path, None, "expected a dict with keys b'data' and b'labels'")
    data, labels = d[b"data"], np.asarray(d[b"labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{getattr(data, 'dtype', type(data))} {getattr(data, 'shape', '')}"
        raise MalformedFileError(path, None, f"b'data' must be a uint8 array (N, 3072), got {got}")
    if len(data) == 0:
        raise MalformedFileError(path, None, "expected at least one image, got a batch of 0")
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
        raise MalformedFileError(path, None,
                                 f"b'labels' must hold {len(data)} integers, got shape {labels.shape}")
    bad = np.flatnonzero((labels < 0) | (labels > 9))
    if bad.size:
        raise MalformedFileError(path, None, f"label {labels[bad[0]]} at record {bad[0]} outside 0-9")
    return data, labels.astype(np.int64)


def read_cifar10(data_dir: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 (rows, columns, RGB) and labels (N,) int64 of ``split``
    ("train": data_batch_1..5 in order, 50000 images; "test": test_batch, 10000)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    d = find_cifar_dir(data_dir)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    parts = [_read_batch(find_file(d, n, "CIFAR-10 batch", HOW_TO_GET)) for n in names]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def to_grayscale(rgb: np.ndarray) -> np.ndarray:
    """uint8 luma ``round(0.2989 R + 0.5870 G + 0.1140 B)`` of (..., 3) uint8 pixels."""
    g = rgb.astype(np.float32) @ np.asarray(GRAY_WEIGHTS, dtype=np.float32)
    return np.clip(np.rint(g), 0, 255).astype(np.uint8)


class _Normalize:
    """uint8 (L, C) -> float32 (L, C): (x / 255 - mean) / std (picklable for DataLoader workers)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.mean, self.std = torch.tensor(mean), torch.tensor(std)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255.0 - self.mean) / self.std


class SequentialCIFARDataModule(SequenceDataModule):
    """sCIFAR: RGB pixels in raster order, (1024, 3) float per image, 10 classes.

    Args:
        data_dir: ``cifar-10-batches-py`` or its parent.
        val_split: fraction of the 50000 training images held out (seeded by ``seed``) for validation.
    """

    embedding = False
    d_input, d_output, l_max = 3, 10, 1024

    def __init__(self, data_dir: str | Path, batch_size: int = 50, num_workers: int = 0, seed: int = 0,
                 val_split: float = 0.1, pin_memory: bool = False) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed, pin_memory)
        if not 0.0 < val_split < 1.0:
            raise ValueError(f"val_split must lie in (0, 1), got {val_split}")
        self.val_split = val_split

    def _load(self) -> tuple[ArrayDataset, ArrayDataset, ArrayDataset]:
        tf = _Normalize(CIFAR_MEAN, CIFAR_STD)
        x, y = read_cifar10(self.data_dir, "train")
        xt, yt = read_cifar10(self.data_dir, "test")
        x, xt = x.reshape(len(x), 1024, 3), xt.reshape(len(xt), 1024, 3)
        val_idx, tr_idx = split_indices(len(y), [self.val_split, 1 - self.val_split], self.seed)
        return (ArrayDataset(x[tr_idx], y[tr_idx], tf), ArrayDataset(x[val_idx], y[val_idx], tf),
                ArrayDataset(xt, yt, tf))
