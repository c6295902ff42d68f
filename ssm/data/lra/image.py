"""LRA Image (Tay et al., arXiv:2011.04006): CIFAR-10 in grayscale as a sequence of 1024 pixels.

Grayscale is ``round(0.2989 R + 0.5870 G + 0.1140 B)`` (the weights of ``tf.image.rgb_to_grayscale``
used by LRA). Two input conventions:
- ``tokens=False`` (default, as S4 trains it): float pixels ``(g / 255 - 122.6/255) / (61.0/255)``,
  shape (1024, 1), ``d_input`` 1, ``embedding`` False;
- ``tokens=True`` (LRA's original convention): integer pixel values 0-255 as tokens, shape (1024,),
  ``d_input`` 256, ``embedding`` True.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..cifar import _Normalize, read_cifar10, to_grayscale
from ..datamodule import ArrayDataset, SequenceDataModule, split_indices

__all__ = ["ImageDataModule", "GRAY_MEAN", "GRAY_STD"]

GRAY_MEAN, GRAY_STD = 122.6 / 255.0, 61.0 / 255.0


def _to_long(x: torch.Tensor) -> torch.Tensor:
    return x.long()


class ImageDataModule(SequenceDataModule):
    """LRA Image: grayscale CIFAR-10, L 1024, 10 classes.

    Args:
        data_dir: ``cifar-10-batches-py`` or its parent.
        tokens: pixel values as tokens (LRA) instead of normalized floats (S4).
        val_split: fraction of the training images held out (seeded) for validation; 0 validates on
            the test set (LRA's protocol).
    """

    d_output, l_max = 10, 1024

    def __init__(self, data_dir: str | Path, batch_size: int = 50, num_workers: int = 0, seed: int = 0,
                 tokens: bool = False, val_split: float = 0.1, pin_memory: bool = False) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed, pin_memory)
        if not 0.0 <= val_split < 1.0:
            raise ValueError(f"val_split must lie in [0, 1), got {val_split}")
        self.tokens, self.val_split = tokens, val_split
        self.embedding = tokens
        self.d_input = 256 if tokens else 1

    def _load(self) -> tuple[ArrayDataset, ArrayDataset, ArrayDataset]:
        def prep(rgb: np.ndarray) -> np.ndarray:
            g = to_grayscale(rgb).reshape(len(rgb), 1024)
            return g if self.tokens else g[:, :, None]  # uint8 in memory; the transform widens it

        tf = _to_long if self.tokens else _Normalize((GRAY_MEAN,), (GRAY_STD,))
        x, y = read_cifar10(self.data_dir, "train")
        xt, yt = read_cifar10(self.data_dir, "test")
        x, xt = prep(x), prep(xt)
        test = ArrayDataset(xt, yt, tf)
        if self.val_split == 0.0:
            return ArrayDataset(x, y, tf), test, test
        val_idx, tr_idx = split_indices(len(y), [self.val_split, 1 - self.val_split], self.seed)
        return ArrayDataset(x[tr_idx], y[tr_idx], tf), ArrayDataset(x[val_idx], y[val_idx], tf), test
