"""LRA ListOps (Tay et al., arXiv:2011.04006): ``lra_release/listops-1000/basic_{train,val,test}.tsv``.

Each file starts with the header ``Source<TAB>Target``; every row holds an expression such as
``( ( ( [MAX 2 ) 9 ) ] )`` and its value 0-9. Tokens follow :mod:`ssm.data.tokenize` (parentheses
dropped, as LRA's pipeline does; vocabulary of 17 with padding 0). Sequences longer than ``l_max`` are
cut to ``l_max`` as LRA does (the LRA files and the generator stay below 2000 tokens).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._io import MalformedFileError, find_dir, find_file, undecodable_text
from ..datamodule import SequenceDataModule, TokenDataset
from ..tokenize import LISTOPS_VOCAB_SIZE, encode_listops_fast

__all__ = ["read_listops_tsv", "find_listops_dir", "ListOpsDataModule", "HOW_TO_GET"]

HOW_TO_GET = ("Get it from the LRA archive (lra_release.gz, folder lra_release/listops-1000) "
              "or generate it:\n"
              "  python -m ssm.data.generate listops --out DIR --n 96000\n"
              "or pass generate_if_missing=True to ListOpsDataModule.")


def find_listops_dir(data_dir: str | Path) -> Path:
    """The folder holding ``basic_train.tsv``: ``data_dir`` itself, ``data_dir/listops-1000`` or
    ``data_dir/lra_release/listops-1000``."""
    d = Path(data_dir)
    return find_dir([d, d / "listops-1000", d / "lra_release" / "listops-1000"], "basic_train.tsv",
                    "ListOps data", HOW_TO_GET)


def read_listops_tsv(path: str | Path, l_max: int | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Read one ListOps TSV into token arrays (uint8, (L_i,)) and labels (int64, (N,)).

    Raises MalformedFileError naming the file and line for a wrong header, a row without exactly two
    tab-separated fields, an unknown token, a target outside 0-9, bytes that are not UTF-8 text, or a
    file without any example.
    """
    path = Path(path)
    try:
        return _read_listops_tsv(path, l_max)
    except UnicodeDecodeError as e:
        raise undecodable_text(path, e) from None


def _read_listops_tsv(path: Path, l_max: int | None) -> tuple[list[np.ndarray], np.ndarray]:
    seqs: list[np.ndarray] = []
    labels: list[int] = []
    lineno = 0
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if lineno == 1:
                if line.split("\t") != ["Source", "Target"]:
                    raise MalformedFileError(path, 1,
                                             f"expected the header 'Source<TAB>Target', got {line[:60]!r}")
                continue
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise MalformedFileError(path, lineno, f"expected 2 tab-separated fields, got {len(fields)}")
            src, tgt = fields
            try:
                y = int(tgt)
            except ValueError:
                raise MalformedFileError(path, lineno, f"target {tgt!r} is not an integer") from None
            if not 0 <= y <= 9:
                raise MalformedFileError(path, lineno, f"target {y} outside 0-9")
            try:
                ids = encode_listops_fast(src)
            except ValueError as e:
                raise MalformedFileError(path, lineno, str(e)) from None
            if len(ids) == 0:
                raise MalformedFileError(path, lineno, "empty expression")
            seqs.append(ids[:l_max] if l_max is not None else ids)
            labels.append(y)
    if lineno == 0:
        raise MalformedFileError(path, None, "file is empty (expected the header 'Source<TAB>Target')")
    if not labels:
        raise MalformedFileError(path, None, "expected rows '<expression><TAB><value 0-9>' after the header, "
                                 "got none (every split needs at least one example)")
    return seqs, np.asarray(labels, dtype=np.int64)


class ListOpsDataModule(SequenceDataModule):
    """LRA ListOps: tokens (d_input 17, embedding), 10 classes, l_max 2048 by default.

    Args:
        data_dir: folder with ``basic_*.tsv`` (or a parent holding ``listops-1000``).
        l_max: longest sequence kept (LRA: 2000; the S4 configs use 2048).
        generate_if_missing: when no data are found, generate them into ``data_dir`` with
            :func:`ssm.data.generate.listops.write_listops` (seeded by ``generate_seed``).
        generate_sizes: (train, val, test) sizes for generation; LRA: (96000, 2000, 2000).
        generate_min_length, generate_max_length: token-count bounds for generation (LRA: 500, 2000);
            smaller values give a quick task.
    """

    embedding = True
    d_output = 10

    def __init__(self, data_dir: str | Path, batch_size: int = 32, num_workers: int = 0, seed: int = 0,
                 l_max: int = 2048, generate_if_missing: bool = False,
                 generate_sizes: tuple[int, int, int] = (96000, 2000, 2000), generate_seed: int = 0,
                 generate_min_length: int = 500, generate_max_length: int = 2000,
                 pin_memory: bool = False) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed, pin_memory)
        if l_max < 1:
            raise ValueError(f"l_max must be >= 1, got {l_max}")
        self.d_input, self.l_max = LISTOPS_VOCAB_SIZE, l_max
        self.generate_if_missing, self.generate_sizes = generate_if_missing, tuple(generate_sizes)
        self.generate_seed = generate_seed
        self.generate_lengths = (generate_min_length, generate_max_length)

    def prepare_data(self) -> None:
        if not self.generate_if_missing:
            return
        try:
            find_listops_dir(self.data_dir)
        except FileNotFoundError:
            from ..generate.listops import ListOpsConfig, write_listops

            n_train, n_val, n_test = self.generate_sizes
            cfg = ListOpsConfig(min_length=self.generate_lengths[0], max_length=self.generate_lengths[1])
            write_listops(self.data_dir, n_train, n_val, n_test, seed=self.generate_seed, cfg=cfg)

    def _load(self) -> tuple[TokenDataset, TokenDataset, TokenDataset]:
        self.prepare_data()  # a no-op unless generating; makes setup() alone enough outside a Trainer
        d = find_listops_dir(self.data_dir)
        out = []
        for split in ("train", "val", "test"):
            path = find_file(d, f"basic_{split}.tsv", "ListOps data", HOW_TO_GET)
            out.append(TokenDataset(*read_listops_tsv(path, self.l_max)))
        return out[0], out[1], out[2]
