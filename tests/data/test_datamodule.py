"""Shared pieces: padding collate, seeded splits, attributes before setup, workers, import isolation,
and the download-free sequential-digits task."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ssm.data as data
from ssm.data.datamodule import collate_pairs, collate_sequences, split_indices


def test_collate_pads_with_zero_and_reports_lengths():
    batch = [(torch.tensor([3, 4, 5]), 1), (torch.tensor([7]), 0)]
    out = collate_sequences(batch)
    assert out["x"].tolist() == [[3, 4, 5], [7, 0, 0]] and out["lengths"].tolist() == [3, 1]
    assert out["y"].tolist() == [1, 0] and out["y"].dtype == torch.long
    fl = collate_sequences([(torch.ones(2, 3), 2), (torch.ones(4, 3), 3)])
    assert fl["x"].shape == (2, 4, 3) and fl["x"][0, 2:].abs().sum() == 0
    pr = collate_pairs([(torch.tensor([1]), torch.tensor([2, 2]), 1)])
    assert pr["x1"].tolist() == [[1]] and pr["lengths2"].tolist() == [2]


def test_split_indices_partition_and_seed():
    parts = split_indices(101, [0.8, 0.1, 0.1], seed=3)
    assert [len(p) for p in parts] == [81, 10, 10]
    assert sorted(np.concatenate(parts).tolist()) == list(range(101))
    again = split_indices(101, [0.8, 0.1, 0.1], seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    assert not np.array_equal(parts[1], split_indices(101, [0.8, 0.1, 0.1], seed=4)[1])
    with pytest.raises(ValueError, match="fractions"):
        split_indices(10, [0.8, 0.5], seed=0)


@pytest.mark.parametrize(
    "cls, kwargs, expect",
    [
        (data.ListOpsDataModule, {}, (17, 10, True, 2048)),
        (data.TextDataModule, {}, (257, 2, True, 4096)),
        (data.RetrievalDataModule, {}, (257, 2, True, 4000)),
        (data.ImageDataModule, {}, (1, 10, False, 1024)),
        (data.ImageDataModule, {"tokens": True}, (256, 10, True, 1024)),
        (data.PathfinderDataModule, {"resolution": 128}, (1, 2, False, 16384)),
        (data.SequentialCIFARDataModule, {}, (3, 10, False, 1024)),
        (data.SequentialMNISTDataModule, {"permute": "bitreversal"}, (1, 10, False, 784)),
        (data.DigitsDataModule, {}, (1, 10, False, 64)),
    ],
)
def test_attributes_before_setup(tmp_path, cls, kwargs, expect):
    dm = cls(tmp_path / "absent", **kwargs)
    assert (dm.d_input, dm.d_output, dm.embedding, dm.l_max) == expect
    if cls is not data.DigitsDataModule:
        with pytest.raises(data.DatasetNotFoundError, match=str(tmp_path / "absent")):
            dm.setup()


def test_bad_arguments_name_themselves(tmp_path):
    with pytest.raises(ValueError, match="batch_size"):
        data.ListOpsDataModule(tmp_path, batch_size=0)
    with pytest.raises(ValueError, match="val_split"):
        data.SequentialMNISTDataModule(tmp_path, val_split=1.5)
    with pytest.raises(ValueError, match="permute"):
        data.SequentialMNISTDataModule(tmp_path, permute="shuffle")


def test_digits_split_and_learnable_with_workers():
    dm = data.DigitsDataModule(batch_size=64, num_workers=1, seed=0)
    dm.setup()
    sizes = (len(dm.train_set), len(dm.val_set), len(dm.test_set))
    assert sum(sizes) == 1797 and sizes == (1258, 180, 359)
    xs, ys = zip(*[(b["x"], b["y"]) for b in dm.train_dataloader()])
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (1258, 64, 1) and 0 <= float(x.min()) and float(x.max()) == 1.0
    # inputs and labels stay aligned through the split: nearest class mean is far above chance
    means = torch.stack([x[y == c].mean(0) for c in range(10)])
    val = next(iter(dm.val_dataloader()))
    pred = ((val["x"][:, None] - means[None]) ** 2).sum((2, 3)).argmin(1)
    assert float((pred == val["y"]).float().mean()) > 0.8


def test_import_ssm_does_not_import_data():
    code = "import sys, ssm; assert 'ssm.data' not in sys.modules and 'lightning' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).parents[2]))
