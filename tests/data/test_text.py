"""LRA Text (IMDB at byte level) on a small aclImdb tree in the release layout."""

from __future__ import annotations

import pytest
import torch

from data_fixtures import write_imdb
from ssm.data import DatasetNotFoundError, MalformedFileError, TextDataModule
from ssm.data.lra.text import read_imdb

REVIEWS = {
    "train": {"pos": ["Great film.<br />Loved it", "caf\u00e9 ok", "A" * 50], "neg": ["Bad.", "Worst ever"]},
    "test": {"pos": ["Fine"], "neg": ["Dull", "No"]},
}


def ids(text: str, l_max: int = 4096) -> list[int]:
    return [b + 1 for b in text.encode("utf-8")[:l_max]]


@pytest.fixture
def imdb(tmp_path):
    return write_imdb(tmp_path, REVIEWS)


def test_read_gives_bytes_plus_one_and_labels(imdb):
    seqs, labels = read_imdb(imdb, "train", l_max=16)
    order = [("neg", t) for t in REVIEWS["train"]["neg"]] + [("pos", t) for t in REVIEWS["train"]["pos"]]
    assert labels.tolist() == [0, 0, 1, 1, 1]
    assert [s.tolist() for s in seqs] == [ids(t, 16) for _, t in order]
    assert seqs[3].tolist()[:5] == [ord(c) + 1 for c in "caf"] + [0xC3 + 1, 0xA9 + 1]  # UTF-8 of e-acute


def test_datamodule_pads_and_validates_on_test(imdb):
    dm = TextDataModule(imdb.parent, batch_size=3)
    assert (dm.d_input, dm.d_output, dm.embedding, dm.l_max) == (257, 2, True, 4096)
    dm.setup()
    assert len(dm.train_set) == 5 and dm.val_set is dm.test_set and len(dm.test_set) == 3
    b = next(iter(dm.test_dataloader()))
    assert b["y"].tolist() == [0, 0, 1]
    assert b["lengths"].tolist() == [4, 2, 4]
    assert b["x"].dtype == torch.long and b["x"][1].tolist() == ids("No") + [0, 0]


def test_val_split_is_seeded_partition(imdb):
    a = TextDataModule(imdb, val_split=0.4, seed=3)
    a.setup()
    b = TextDataModule(imdb, val_split=0.4, seed=3)
    b.setup()
    assert len(a.train_set) == 3 and len(a.val_set) == 2
    assert [x.tolist() for x in a.val_set.seqs] == [x.tolist() for x in b.val_set.seqs]


def test_errors(tmp_path, imdb):
    with pytest.raises(DatasetNotFoundError, match="aclImdb"):
        TextDataModule(tmp_path / "none").setup()
    bad = imdb / "train" / "pos" / "notes.txt"
    bad.write_text("x")
    with pytest.raises(MalformedFileError, match="notes.txt"):
        read_imdb(imdb, "train")
    bad.unlink()
    (imdb / "test" / "neg" / "5_1.txt").write_text("  \n")
    with pytest.raises(MalformedFileError, match="5_1.txt, line 1: empty"):
        read_imdb(imdb, "test")
