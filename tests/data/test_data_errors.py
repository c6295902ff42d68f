"""Every loader names the file, what it expected and what came, for the failure modes seen in practice:
a split without examples, bytes that are not text, a truncated gzip stream and corrupt pickles."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from data_fixtures import (
    write_aan,
    write_cifar,
    write_cifar_batch,
    write_idx,
    write_imdb,
    write_listops_tsv,
    write_mnist,
    write_pathfinder_fixture,
)
from ssm.data import (
    ImageDataModule,
    ListOpsDataModule,
    MalformedFileError,
    PathfinderDataModule,
    RetrievalDataModule,
    SequentialCIFARDataModule,
    SequentialMNISTDataModule,
    TextDataModule,
)
from ssm.data.cifar import read_cifar10
from ssm.data.lra.listops import read_listops_tsv
from ssm.data.lra.retrieval import read_aan_tsv
from ssm.data.lra.text import read_imdb
from ssm.data.mnist import read_idx, read_mnist

ROWS = [("( ( ( [MAX 2 ) 9 ) ] )", 9), ("( ( ( [MIN 4 ) 7 ) ] )", 4)]
AAN_ROWS = [("1", "P1", "P2", "graph model", "parse corpus"), ("0", "P3", "P4", "corpus", "model")]
# Not UTF-8: 0xff and 0xfe never occur in UTF-8 text.
BINARY = bytes(np.random.default_rng(0).integers(0, 256, 200, dtype=np.uint8)) + b"\xff\xfe"


def _listops(tmp_path, val_rows=ROWS):
    d = tmp_path / "lra_release" / "listops-1000"
    write_listops_tsv(d / "basic_train.tsv", ROWS)
    write_listops_tsv(d / "basic_val.tsv", val_rows)
    write_listops_tsv(d / "basic_test.tsv", ROWS)
    return d


# ------------------------------------------------------------------------------------------- ListOps
def test_listops_header_only_train_file_is_named(tmp_path):
    d = _listops(tmp_path)
    write_listops_tsv(d / "basic_train.tsv", [])
    with pytest.raises(MalformedFileError) as e:
        ListOpsDataModule(tmp_path).setup()
    assert e.value.path == str(d / "basic_train.tsv")
    assert "expected rows '<expression><TAB><value 0-9>' after the header, got none" in str(e.value)


def test_listops_header_only_val_file_is_named_before_training(tmp_path):
    # Lightning would otherwise train without validation (no best checkpoint) and exit 0.
    d = _listops(tmp_path, val_rows=[])
    with pytest.raises(MalformedFileError, match="basic_val.tsv: expected rows") as e:
        ListOpsDataModule(tmp_path).setup()
    assert e.value.path == str(d / "basic_val.tsv")


def test_listops_random_bytes_name_file_line_and_byte(tmp_path):
    d = _listops(tmp_path)
    (d / "basic_train.tsv").write_bytes(b"Source\tTarget\r\n( [MAX 1 ] )\t1\r\n" + BINARY)
    with pytest.raises(MalformedFileError) as e:
        read_listops_tsv(d / "basic_train.tsv")
    assert e.value.path == str(d / "basic_train.tsv") and e.value.line is not None and e.value.line >= 3
    assert "expected utf-8 text, got the byte 0x" in str(e.value)
    assert not isinstance(e.value, UnicodeDecodeError)


# ------------------------------------------------------------------------------------------ Retrieval
def test_retrieval_empty_split_and_random_bytes_are_named(tmp_path):
    d = tmp_path / "tsv_data"
    for split in ("train", "eval", "test"):
        write_aan(d / f"new_aan_pairs.{split}.tsv", AAN_ROWS)
    RetrievalDataModule(tmp_path).setup()
    write_aan(d / "new_aan_pairs.eval.tsv", [("label", "id1", "id2", "text1", "text2")])  # header only
    with pytest.raises(MalformedFileError, match=r"new_aan_pairs\.eval\.tsv: expected rows .* got none"):
        RetrievalDataModule(tmp_path).setup()
    (d / "new_aan_pairs.test.tsv").write_bytes(BINARY)
    with pytest.raises(MalformedFileError, match=r"new_aan_pairs\.test\.tsv, line \d+: expected utf-8 text"):
        read_aan_tsv(d / "new_aan_pairs.test.tsv")


# ------------------------------------------------------------------------------------------- Text
def test_text_reads_any_bytes_and_names_an_empty_split(tmp_path):
    reviews = {s: {"pos": ["good film"], "neg": ["bad plot"]} for s in ("train", "test")}
    base = write_imdb(tmp_path, reviews)
    # Byte-level: bytes that are not UTF-8 are still valid tokens, not an error.
    (base / "train" / "pos" / "0_8.txt").write_bytes(BINARY)
    seqs, _ = read_imdb(base, "train")
    assert any(len(s) == len(BINARY) for s in seqs)
    for f in (base / "test" / "neg").glob("*.txt"):
        f.unlink()
    with pytest.raises(MalformedFileError, match=r"test/neg: no review files"):
        TextDataModule(tmp_path).setup()


# ---------------------------------------------------------------------------------------- MNIST (IDX)
def test_truncated_gzip_idx_is_named(tmp_path):
    write_mnist(tmp_path, 6, 4, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(MalformedFileError) as e:
        read_idx(path)
    assert e.value.path == str(path) and "expected a complete gzip stream, got a truncated" in str(e.value)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(MalformedFileError, match="train-images-idx3-ubyte.gz: expected a complete gzip"):
        SequentialMNISTDataModule(tmp_path).setup()


def test_mnist_without_images_or_validation_examples_is_named(tmp_path):
    write_mnist(tmp_path, 6, 4)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((0, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(0, np.uint8))
    with pytest.raises(MalformedFileError, match="t10k-images-idx3-ubyte: expected at least one image"):
        read_mnist(tmp_path, "test")
    write_mnist(tmp_path, 3, 2)  # 10% of 3 training images rounds to an empty validation split
    with pytest.raises(MalformedFileError) as e:
        SequentialMNISTDataModule(tmp_path, val_split=0.1).setup()
    assert e.value.path == str(tmp_path)
    assert "got an empty validation split (train 3, validation 0, test 2)" in str(e.value)


# ------------------------------------------------------------------------------------------- CIFAR-10
def test_cifar_random_bytes_truncation_and_empty_batch_are_named(tmp_path):
    d = write_cifar(tmp_path, per_batch=4)[0]
    good = (d / "data_batch_2").read_bytes()
    rng = np.random.default_rng(1)
    corrupt = [BINARY, good[: len(good) // 2], b""]
    for _ in range(40):  # random single-byte corruptions of a valid batch's first 200 bytes
        raw = bytearray(good[:200])
        raw[int(rng.integers(0, 200))] = int(rng.integers(0, 256))
        corrupt.append(bytes(raw))
    for raw in corrupt:
        (d / "data_batch_2").write_bytes(raw)
        with pytest.raises(MalformedFileError, match="data_batch_2"):
            read_cifar10(d, "train")
    write_cifar_batch(d / "data_batch_2", np.zeros((0, 3072), np.uint8), [], "empty")
    with pytest.raises(MalformedFileError, match="data_batch_2: expected at least one image, got a batch"):
        SequentialCIFARDataModule(tmp_path).setup()


def test_image_empty_validation_split_is_named(tmp_path):
    write_cifar(tmp_path, per_batch=1)  # 5 training images: 5% of them round to none
    with pytest.raises(MalformedFileError, match="ImageDataModule: expected examples in every split, got an "
                                                 "empty validation split"):
        ImageDataModule(tmp_path, val_split=0.05).setup()


# ----------------------------------------------------------------------------------------- Pathfinder
def test_pathfinder_empty_metadata_and_tiny_split_are_named(tmp_path):
    imgs = [np.zeros((32, 32), np.uint8)] * 4
    base = write_pathfinder_fixture(tmp_path, imgs, [0, 1, 0, 1])
    with pytest.raises(MalformedFileError, match="empty validation split"):  # 10% of 4 images
        PathfinderDataModule(tmp_path, resolution=32).setup()
    (base / "metadata" / "0.npy").write_text("")
    with pytest.raises(MalformedFileError) as e:
        PathfinderDataModule(tmp_path, resolution=32).setup()
    assert e.value.path == str(base / "metadata") and "got none (no images listed)" in str(e.value)


def test_gzip_helper_reads_complete_streams(tmp_path):
    # The guard above must not reject good files: a complete stream round-trips.
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\x00\x00\x08\x01\x00\x00\x00\x02ab")
    assert read_idx(path).tolist() == [97, 98]
