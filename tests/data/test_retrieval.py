"""LRA Retrieval (AAN pairs at byte level) on TSVs in the release layout."""

from __future__ import annotations

import pytest

from data_fixtures import write_aan
from ssm.data import DatasetNotFoundError, MalformedFileError, RetrievalDataModule
from ssm.data.lra.retrieval import read_aan_tsv

ROWS = [("1", "P01-1001", "W02-0101", "we cite", "the cited paper text"),
        ("0", "P01-1002", "W02-0102", "unrelated", "x"),
        ("1.0", "A", "B", "caf\u00e9", "ab")]


@pytest.fixture
def aan(tmp_path):
    d = tmp_path / "lra_release" / "tsv_data"
    for split in ("train", "eval", "test"):
        write_aan(d / f"new_aan_pairs.{split}.tsv", ROWS)
    return d


def test_read_pairs(aan):
    a, b, y, ids = read_aan_tsv(aan / "new_aan_pairs.train.tsv", l_max=6)
    assert y.tolist() == [1, 0, 1] and ids[0] == ("P01-1001", "W02-0101")
    assert a[0].tolist() == [c + 1 for c in b"we cit"] and b[1].tolist() == [ord("x") + 1]
    assert a[2].tolist() == [c + 1 for c in "caf\u00e9".encode()]


def test_datamodule_two_tower_batches(aan):
    dm = RetrievalDataModule(aan.parent.parent, batch_size=3)
    assert (dm.d_input, dm.d_output, dm.embedding, dm.l_max) == (257, 2, True, 4000)
    dm.setup()
    b = next(iter(dm.val_dataloader()))
    assert set(b) == {"x1", "x2", "lengths1", "lengths2", "y"}
    assert b["lengths1"].tolist() == [7, 9, 5] and b["lengths2"].tolist() == [20, 1, 2]
    assert b["x1"].shape == (3, 9) and b["x2"].shape == (3, 20)
    assert b["x2"][1].tolist() == [ord("x") + 1] + [0] * 19 and b["y"].tolist() == [1, 0, 1]


def test_errors(tmp_path, aan):
    with pytest.raises(DatasetNotFoundError, match="new_aan_pairs.train.tsv"):
        RetrievalDataModule(tmp_path / "none").setup()
    p = aan / "bad.tsv"
    p.write_text("1\ta\tb\ttext1\ttext2\n0\ta\tb\tonly four\n")
    with pytest.raises(MalformedFileError, match="bad.tsv, line 2: expected 5"):
        read_aan_tsv(p)
    p.write_text("label\tid1\tid2\ttext1\ttext2\n1\ta\tb\tab\tc\n")
    assert read_aan_tsv(p)[2].tolist() == [1]  # a header row is skipped
    p.write_text("2\ta\tb\ttext1\ttext2\n")
    with pytest.raises(MalformedFileError, match="line 1: label '2'"):
        read_aan_tsv(p)
