"""LRA ListOps loader on files in the exact LRA format; the tokenizer's fast path against its reference."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from data_fixtures import write_listops_tsv
from ssm.data import DatasetNotFoundError, ListOpsDataModule, MalformedFileError
from ssm.data.generate.listops import ListOpsConfig, sample_expression
from ssm.data.lra.listops import read_listops_tsv
from ssm.data.tokenize import LISTOPS_VOCAB, decode_listops, encode_listops, encode_listops_fast

ROWS = [
    ("( ( ( [MAX 2 ) 9 ) ] )", 9),
    ("( ( ( ( [SM ( ( ( [MIN 4 ) 7 ) ] ) ) 8 ) 3 ) ] )", 5),
    ("( ( ( ( [MED 1 ) 2 ) 6 ) ] )", 2),
]
# Hand-tokenized (ids: digits d -> d + 2, [MAX 12, [MIN 13, [MED 14, [SM 15, ] 16).
IDS = [[12, 4, 11, 16], [15, 13, 6, 9, 16, 10, 5, 16], [14, 3, 4, 8, 16]]


@pytest.fixture
def listops_dir(tmp_path):
    d = tmp_path / "lra_release" / "listops-1000"
    write_listops_tsv(d / "basic_train.tsv", ROWS)
    write_listops_tsv(d / "basic_val.tsv", ROWS[:2])
    write_listops_tsv(d / "basic_test.tsv", ROWS[2:])
    return d


def test_vocabulary_is_fixed():
    assert len(LISTOPS_VOCAB) == 17 and LISTOPS_VOCAB["<pad>"] == 0
    words = ("0", "9", "[MAX", "[MIN", "[MED", "[SM", "]")
    assert [LISTOPS_VOCAB[w] for w in words] == [2, 11, 12, 13, 14, 15, 16]


def test_read_tsv_gives_hand_tokenized_ids(listops_dir):
    raw = (listops_dir / "basic_train.tsv").read_bytes()
    assert raw.startswith(b"Source\tTarget\r\n")  # the csv-module layout LRA wrote
    seqs, labels = read_listops_tsv(listops_dir / "basic_train.tsv")
    assert [s.tolist() for s in seqs] == IDS
    assert labels.tolist() == [9, 5, 2]
    assert decode_listops(seqs[0]) == "[MAX 2 9 ]"


def test_fast_tokenizer_matches_reference():
    rng = random.Random(3)
    cfg = ListOpsConfig(min_length=20, max_length=300)
    for _ in range(30):
        src = sample_expression(rng, cfg)[0]
        np.testing.assert_array_equal(encode_listops_fast(src), encode_listops(src))
    for bad in ("( [MAX 2 ] ) x", "[MAX 12 ]", "[MAXX 1 ]", "[MAX 1 ]\x01"):
        with pytest.raises(ValueError):
            encode_listops_fast(bad)
        if "\x01" not in bad:
            with pytest.raises(ValueError):
                encode_listops(bad)


def test_datamodule_batches(listops_dir):
    dm = ListOpsDataModule(listops_dir.parent.parent, batch_size=3, seed=0)
    assert (dm.d_input, dm.d_output, dm.embedding, dm.l_max) == (17, 10, True, 2048)
    dm.setup()
    batch = next(iter(dm.val_dataloader()))
    assert batch["x"].dtype == torch.long and batch["x"].shape == (2, 8)
    assert batch["lengths"].tolist() == [4, 8]
    assert batch["x"][0].tolist() == IDS[0] + [0] * 4 and batch["x"][1].tolist() == IDS[1]
    assert batch["y"].tolist() == [9, 5]
    train = next(iter(dm.train_dataloader()))
    assert sorted(train["y"].tolist()) == [2, 5, 9]


def test_l_max_truncates(listops_dir):
    seqs, _ = read_listops_tsv(listops_dir / "basic_train.tsv", l_max=5)
    assert [len(s) for s in seqs] == [4, 5, 5]


@pytest.mark.parametrize(
    "content, line, words",
    [
        ("Source\tLabel\r\n", 1, "header"),
        ("Source\tTarget\r\n( ( [MAX 1 ) ] )\t1\r\n[MIN 1 ]\t1\t3\r\n", 3, "2 tab-separated"),
        ("Source\tTarget\r\n( ( [MAX 1 ) ] )\t12\r\n", 2, "outside 0-9"),
        ("Source\tTarget\r\n( ( [MAX 1 ) ] )\tx\r\n", 2, "not an integer"),
        ("Source\tTarget\r\n( ( [MAX 1 ) [FOO ] )\t1\r\n", 2, "unknown"),
    ],
)
def test_malformed_file_names_file_and_line(tmp_path, content, line, words):
    p = tmp_path / "basic_train.tsv"
    p.write_bytes(content.encode())
    with pytest.raises(MalformedFileError, match=words) as e:
        read_listops_tsv(p)
    assert e.value.line == line and str(p) in str(e.value) and f"line {line}" in str(e.value)


def test_missing_data_names_path_and_generator(tmp_path):
    dm = ListOpsDataModule(tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError) as e:
        dm.setup()
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / "listops-1000" / "basic_train.tsv") in msg
    assert "python -m ssm.data.generate listops" in msg


def test_generate_if_missing(tmp_path):
    dm = ListOpsDataModule(tmp_path / "gen", batch_size=4, generate_if_missing=True,
                           generate_sizes=(12, 4, 4),
                           generate_min_length=10, generate_max_length=60)
    dm.setup()
    assert (tmp_path / "gen" / "basic_train.tsv").is_file()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (12, 4, 4)
    b = next(iter(dm.train_dataloader()))
    assert b["lengths"].min() > 10 and b["lengths"].max() < 60
