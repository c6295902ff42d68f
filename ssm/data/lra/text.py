"""LRA Text (Tay et al., arXiv:2011.04006): IMDB sentiment (Maas et al., 2011) at byte level, L 4096.

Reads the standard IMDB release layout ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` (the
``train/unsup`` folder is ignored). Label 1 = pos, 0 = neg. Each review's raw UTF-8 bytes (HTML such as
``<br />`` kept, as LRA does) become tokens ``byte + 1`` (padding 0, vocabulary 257), cut to ``l_max``.
Files are read in a fixed order (neg then pos, by numeric id) so the order never depends on the disk.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .._io import DatasetNotFoundError, MalformedFileError, find_dir
from ..datamodule import SequenceDataModule, TokenDataset, split_indices
from ..tokenize import BYTE_VOCAB_SIZE

__all__ = ["read_imdb", "find_imdb_dir", "TextDataModule", "HOW_TO_GET"]

HOW_TO_GET = ("Download the Large Movie Review Dataset (aclImdb_v1.tar.gz, "
              "https://ai.stanford.edu/~amaas/data/sentiment/) and extract it so that "
              "aclImdb/train/pos exists under data_dir.")
_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")


def find_imdb_dir(data_dir: str | Path) -> Path:
    """``data_dir`` if it holds ``train/pos`` (the aclImdb folder itself), else ``data_dir/aclImdb``."""
    d = Path(data_dir)
    return find_dir([d, d / "aclImdb"], "train/pos", "IMDB (aclImdb)", HOW_TO_GET)


def read_imdb(root: str | Path, split: str, l_max: int | None = 4096) -> tuple[list[np.ndarray], np.ndarray]:
    """Byte tokens (int16, (L_i,)) and labels (int64) of ``root/<split>/{neg,pos}/*.txt``.

    Raises MalformedFileError for a review file whose name is not ``<id>_<rating>.txt``, which is
    empty, or a split folder with no reviews.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    seqs: list[np.ndarray] = []
    labels: list[int] = []
    for label, sub in ((0, "neg"), (1, "pos")):
        folder = Path(root) / split / sub
        if not folder.is_dir():
            raise DatasetNotFoundError(f"IMDB folder {folder} not found. {HOW_TO_GET}")
        files = list(folder.glob("*.txt"))
        if not files:
            raise MalformedFileError(folder, None, "no review files (*.txt)")
        for f in files:
            if not _NAME.match(f.name):
                raise MalformedFileError(f, None, "review file names must look like <id>_<rating>.txt")
        for f in sorted(files, key=lambda p: tuple(int(g) for g in _NAME.match(p.name).groups())):
            raw = f.read_bytes()
            if not raw.strip():
                raise MalformedFileError(f, 1, "empty review")
            if l_max is not None:
                raw = raw[:l_max]
            seqs.append(np.frombuffer(raw, dtype=np.uint8).astype(np.int16) + 1)
            labels.append(label)
    return seqs, np.asarray(labels, dtype=np.int64)


class TextDataModule(SequenceDataModule):
    """LRA Text (IMDB, byte level): d_input 257 (embedding), 2 classes, l_max 4096.

    Args:
        data_dir: the aclImdb folder or its parent.
        l_max: bytes kept per review (LRA: 4096).
        val_split: fraction of the training reviews held out (seeded) for validation; 0 (the default,
            as in LRA) validates on the test set.
    """

    embedding = True
    d_output = 2

    def __init__(self, data_dir: str | Path, batch_size: int = 32, num_workers: int = 0, seed: int = 0,
                 l_max: int = 4096, val_split: float = 0.0, pin_memory: bool = False) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed, pin_memory)
        if l_max < 1:
            raise ValueError(f"l_max must be >= 1, got {l_max}")
        if not 0.0 <= val_split < 1.0:
            raise ValueError(f"val_split must lie in [0, 1), got {val_split}")
        self.d_input, self.l_max, self.val_split = BYTE_VOCAB_SIZE, l_max, val_split

    def _load(self) -> tuple[TokenDataset, TokenDataset, TokenDataset]:
        root = find_imdb_dir(self.data_dir)
        train_x, train_y = read_imdb(root, "train", self.l_max)
        test = TokenDataset(*read_imdb(root, "test", self.l_max))
        if self.val_split == 0.0:
            return TokenDataset(train_x, train_y), test, test
        val_idx, tr_idx = split_indices(len(train_y), [self.val_split, 1 - self.val_split], self.seed)
        train = TokenDataset([train_x[i] for i in tr_idx], train_y[tr_idx])
        val = TokenDataset([train_x[i] for i in val_idx], train_y[val_idx])
        return train, val, test
