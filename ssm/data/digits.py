"""Sequential digits: scikit-learn's bundled 8x8 handwritten digits (UCI optdigits test set, 1797
images) read as a sequence of 64 pixels, a small sequential-MNIST-like task that needs no download.

Pixels (0-16) are scaled to [0, 1] and read in raster order: shape (64, 1), 10 classes. The split is a
seeded random partition (default 70/10/20 train/val/test). A quick check that a model learns, in the
spirit of sMNIST (S4: Gu et al., arXiv:2111.00396); it is not a benchmark.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .datamodule import ArrayDataset, SequenceDataModule, split_indices

__all__ = ["DigitsDataModule", "load_digits_sequences"]


def load_digits_sequences() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 64, 1) float32 in [0, 1] and (1797,) int64 labels, from ``sklearn.datasets.load_digits``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError("DigitsDataModule needs scikit-learn (pip install scikit-learn, or the [dev] extra "
                          "of structured-ssm)") from e
    d = load_digits()
    x = (d.images.reshape(len(d.images), 64, 1) / 16.0).astype(np.float32)
    return x, d.target.astype(np.int64)


class DigitsDataModule(SequenceDataModule):
    """Sequential 8x8 digits: (64, 1) floats, 10 classes, no files needed.

    Args:
        data_dir: unused (kept so every DataModule takes the same first argument); may be None.
        val_fraction, test_fraction: sizes of the seeded validation and test parts.
    """

    embedding = False
    d_input, d_output, l_max = 1, 10, 64

    def __init__(self, data_dir: str | Path | None = None, batch_size: int = 32, num_workers: int = 0,
                 seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2,
                 pin_memory: bool = False) -> None:
        super().__init__(data_dir if data_dir is not None else ".", batch_size, num_workers, seed, pin_memory)
        if val_fraction <= 0 or test_fraction <= 0 or val_fraction + test_fraction >= 1:
            raise ValueError(f"need val_fraction > 0, test_fraction > 0 and a sum below 1, got "
                             f"{val_fraction}, {test_fraction}")
        self.val_fraction, self.test_fraction = val_fraction, test_fraction

    def _load(self) -> tuple[ArrayDataset, ArrayDataset, ArrayDataset]:
        x, y = load_digits_sequences()
        fr = [self.val_fraction, self.test_fraction, 1 - self.val_fraction - self.test_fraction]
        val, test, train = split_indices(len(y), fr, self.seed)
        return (ArrayDataset(x[train], y[train], None), ArrayDataset(x[val], y[val], None),
                ArrayDataset(x[test], y[test], None))
