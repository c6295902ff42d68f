"""LRA Retrieval (Tay et al., arXiv:2011.04006): ACL Anthology Network citation pairs at byte level.

Files: ``lra_release/tsv_data/new_aan_pairs.{train,eval,test}.tsv``, one pair per line with five
tab-separated columns ``label, id1, id2, text1, text2`` (the column names LRA's input pipeline gives
them; a first line starting with the word ``label`` is taken as a header and skipped); the label is 1 when the papers are linked by a citation, else 0 (written ``1``/``0`` or
``1.0``/``0.0``). Fields are taken verbatim (no CSV quoting is interpreted). Each document becomes
byte tokens ``byte + 1`` (padding 0, vocabulary 257), cut to ``l_max`` (4000) bytes, and a batch holds
both documents for a two-tower model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._io import MalformedFileError, find_dir, find_file, undecodable_text
from ..datamodule import PairDataset, SequenceDataModule, collate_pairs
from ..tokenize import BYTE_VOCAB_SIZE

__all__ = ["read_aan_tsv", "find_aan_dir", "RetrievalDataModule", "HOW_TO_GET"]

HOW_TO_GET = ("Get it from the LRA archive (lra_release.gz): the folder lra_release/tsv_data holds "
              "new_aan_pairs.{train,eval,test}.tsv.")
_LABELS = {"0": 0, "1": 1, "0.0": 0, "1.0": 1}


def find_aan_dir(data_dir: str | Path) -> Path:
    """The folder holding ``new_aan_pairs.train.tsv``: ``data_dir``, ``data_dir/tsv_data`` or
    ``data_dir/lra_release/tsv_data``."""
    d = Path(data_dir)
    return find_dir([d, d / "tsv_data", d / "lra_release" / "tsv_data"], "new_aan_pairs.train.tsv",
                    "AAN retrieval data", HOW_TO_GET)


def _bytes(text: str, l_max: int | None) -> np.ndarray:
    raw = text.encode("utf-8")[:l_max]
    return np.frombuffer(raw, dtype=np.uint8).astype(np.int16) + 1


def read_aan_tsv(path: str | Path, l_max: int | None = 4000
                 ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, list[tuple[str, str]]]:
    """Read one AAN pairs file: (tokens1, tokens2, labels (int64), [(id1, id2), ...]).

    Raises MalformedFileError naming the file and line for a row without five fields, a label other
    than 0/1, an empty document, bytes that are not UTF-8 text, or a file without any pair.
    """
    path = Path(path)
    try:
        return _read_aan_tsv(path, l_max)
    except UnicodeDecodeError as e:
        raise undecodable_text(path, e) from None


def _read_aan_tsv(path: Path, l_max: int | None
                  ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, list[tuple[str, str]]]:
    a: list[np.ndarray] = []
    b: list[np.ndarray] = []
    labels: list[int] = []
    ids: list[tuple[str, str]] = []
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split("\t")
            if lineno == 1 and fields[0] == "label":
                continue  # a header row, if the file has one
            if len(fields) != 5:
                raise MalformedFileError(path, lineno, "expected 5 tab-separated fields (label, id1, id2, "
                                         f"text1, text2), got {len(fields)}")
            label, id1, id2, t1, t2 = fields
            if label not in _LABELS:
                raise MalformedFileError(path, lineno, f"label {label[:20]!r} is not 0 or 1")
            if not t1 or not t2:
                raise MalformedFileError(path, lineno, "empty document")
            a.append(_bytes(t1, l_max))
            b.append(_bytes(t2, l_max))
            labels.append(_LABELS[label])
            ids.append((id1, id2))
    if not labels:
        raise MalformedFileError(path, None, "expected rows 'label<TAB>id1<TAB>id2<TAB>text1<TAB>text2', got "
                                 "none (no pairs in file; every split needs at least one)")
    return a, b, np.asarray(labels, dtype=np.int64), ids


class RetrievalDataModule(SequenceDataModule):
    """LRA Retrieval (AAN, byte level, two documents): d_input 257 (embedding), 2 classes, l_max 4000.

    Batches: ``{"x1", "x2", "lengths1", "lengths2", "y"}``. Validation uses the ``eval`` file.
    """

    embedding = True
    d_output = 2
    collate_fn = staticmethod(collate_pairs)

    def __init__(self, data_dir: str | Path, batch_size: int = 32, num_workers: int = 0, seed: int = 0,
                 l_max: int = 4000, pin_memory: bool = False) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed, pin_memory)
        if l_max < 1:
            raise ValueError(f"l_max must be >= 1, got {l_max}")
        self.d_input, self.l_max = BYTE_VOCAB_SIZE, l_max

    def _load(self) -> tuple[PairDataset, PairDataset, PairDataset]:
        d = find_aan_dir(self.data_dir)
        out = []
        for split in ("train", "eval", "test"):
            path = find_file(d, f"new_aan_pairs.{split}.tsv", "AAN retrieval data", HOW_TO_GET)
            x1, x2, y, _ = read_aan_tsv(path, self.l_max)
            out.append(PairDataset(x1, x2, y))
        return out[0], out[1], out[2]
