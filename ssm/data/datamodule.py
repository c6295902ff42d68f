"""Base Lightning DataModule, in-memory datasets and padding collate functions shared by all tasks.

Batches are dicts: ``{"x": (B, L) long or (B, L, d_input) float, "y": (B,) long, "lengths": (B,) long}``
(retrieval: ``x1, x2, lengths1, lengths2, y``). Token sequences are right-padded with 0 to the longest
sequence in the batch. Long Range Arena: Tay et al., arXiv:2011.04006.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

from ._io import MalformedFileError
from .tokenize import PAD

__all__ = ["SequenceDataModule", "TokenDataset", "ArrayDataset", "PairDataset", "collate_sequences",
           "collate_pairs", "split_indices"]


class TokenDataset(Dataset):
    """Variable-length token sequences (compact integer arrays, returned as int64) with labels."""

    def __init__(self, seqs: Sequence[np.ndarray], labels: np.ndarray) -> None:
        if len(seqs) != len(labels):
            raise ValueError(f"seqs and labels differ in length: {len(seqs)} vs {len(labels)}")
        self.seqs, self.labels = list(seqs), np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.seqs)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return torch.as_tensor(self.seqs[i]).long(), int(self.labels[i])


class ArrayDataset(Dataset):
    """Fixed-length sequences stored as one array ``x`` (N, L) or (N, L, d) with labels (N,)."""

    def __init__(self, x: np.ndarray | Tensor, y: np.ndarray | Tensor, transform: Any = None) -> None:
        if len(x) != len(y):
            raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
        self.x, self.y, self.transform = x, torch.as_tensor(np.asarray(y), dtype=torch.long), transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        x = torch.as_tensor(self.x[i])
        return (self.transform(x) if self.transform is not None else x), int(self.y[i])


class PairDataset(Dataset):
    """Pairs of token sequences with a label (two-tower retrieval)."""

    def __init__(self, a: Sequence[np.ndarray], b: Sequence[np.ndarray], labels: np.ndarray) -> None:
        if not len(a) == len(b) == len(labels):
            raise ValueError(f"pair lists differ in length: {len(a)}, {len(b)}, {len(labels)}")
        self.a, self.b, self.labels = list(a), list(b), np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, int]:
        return torch.as_tensor(self.a[i]).long(), torch.as_tensor(self.b[i]).long(), int(self.labels[i])


def _pad(seqs: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Right-pad to the longest sequence with ``PAD`` (torch's ``pad_sequence``); also the lengths."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    return pad_sequence(list(seqs), batch_first=True, padding_value=PAD), lengths


def collate_sequences(batch: Sequence[tuple[Tensor, int]]) -> dict[str, Tensor]:
    """Pad (x, y) items to the longest sequence: ``{"x", "y", "lengths"}``."""
    x, lengths = _pad([b[0] for b in batch])
    return {"x": x, "y": torch.tensor([b[1] for b in batch], dtype=torch.long), "lengths": lengths}


def collate_pairs(batch: Sequence[tuple[Tensor, Tensor, int]]) -> dict[str, Tensor]:
    """Pad (x1, x2, y) items: ``{"x1", "x2", "lengths1", "lengths2", "y"}``."""
    x1, l1 = _pad([b[0] for b in batch])
    x2, l2 = _pad([b[1] for b in batch])
    return {"x1": x1, "x2": x2, "lengths1": l1, "lengths2": l2,
            "y": torch.tensor([b[2] for b in batch], dtype=torch.long)}


def split_indices(n: int, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Seeded random partition of ``range(n)`` into consecutive parts of the given fractions.

    The last part takes the remainder. Uses numpy's legacy ``RandomState`` (a frozen stream), so a
    given seed gives the same split on every numpy version.
    """
    if any(f < 0 for f in fractions) or sum(fractions) > 1 + 1e-9:
        raise ValueError(f"fractions must be >= 0 and sum to at most 1, got {list(fractions)}")
    perm = np.random.RandomState(seed).permutation(n)
    sizes = [int(round(f * n)) for f in fractions[:-1]]
    bounds = np.cumsum([0] + sizes + [n - sum(sizes)])
    return [np.sort(perm[bounds[i]: bounds[i + 1]]) for i in range(len(fractions))]


class SequenceDataModule(L.LightningDataModule):
    """Common loaders; subclasses set ``d_input, d_output, embedding, l_max`` and implement ``_load``.

    Args:
        data_dir: where the data set lives (see docs/data.md for each task's layout).
        batch_size: batch size of every loader.
        num_workers: DataLoader worker processes.
        seed: seeds the train-loader shuffle and any train/val split.
        pin_memory: passed to the DataLoaders.
    """

    d_input: int
    d_output: int
    embedding: bool
    l_max: int
    collate_fn = staticmethod(collate_sequences)

    def __init__(self, data_dir: str | Path, batch_size: int = 32, num_workers: int = 0, seed: int = 0,
                 pin_memory: bool = False) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.data_dir = Path(data_dir).expanduser()
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.pin_memory = pin_memory
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    def _load(self) -> tuple[Dataset, Dataset, Dataset]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Load all three splits (once); an empty split raises MalformedFileError naming ``data_dir``."""
        if self.train_set is None:
            splits = self._load()
            sizes = dict(zip(("train", "validation", "test"), (len(s) for s in splits)))
            empty = [name for name, n in sizes.items() if n == 0]
            if empty:
                # Lightning would fail later without naming the data (a sampler error, or no validation).
                counts = ", ".join(f"{name} {n}" for name, n in sizes.items())
                raise MalformedFileError(self.data_dir, None, f"{type(self).__name__}: expected examples in "
                                         f"every split, got an empty {empty[0]} split ({counts}); the data "
                                         "set is too small for its split fractions")
            self.train_set, self.val_set, self.test_set = splits

    def _loader(self, ds: Dataset | None, shuffle: bool) -> DataLoader:
        if ds is None:
            raise RuntimeError(f"{type(self).__name__}: call setup() before asking for a DataLoader")
        gen = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(ds, batch_size=self.batch_size, shuffle=shuffle, generator=gen,
                          num_workers=self.num_workers, collate_fn=self.collate_fn,
                          pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)
