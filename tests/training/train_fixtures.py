"""Tiny data sets in the official on-disk layouts, for the training pipeline tests.

Each writer puts a handful of examples under ``root`` exactly where the task's data module looks
(``paths.data_dir`` = ``root``): the lra_release ListOps TSVs and AAN pairs, the aclImdb folders, the
CIFAR-10 python pickles, the MNIST IDX files and a Pathfinder metadata folder with PNGs.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

from ssm.data.generate.listops import ListOpsConfig, write_listops


def write_listops_fixture(root: Path, n: int = 12) -> None:
    cfg = ListOpsConfig(max_depth=3, max_args=4, min_length=5, max_length=40)
    write_listops(root / "lra_release" / "listops-1000", n, n // 2, n // 2, seed=0, cfg=cfg)


def write_imdb_fixture(root: Path, n: int = 6) -> None:
    rng = np.random.RandomState(0)
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            d = root / "aclImdb" / split / label
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                words = " ".join(
                    rng.choice(["good", "bad", "film", "plot", "great"], size=rng.randint(5, 30))
                )
                (d / f"{i}_{rng.randint(1, 11)}.txt").write_text(words)


def write_aan_fixture(root: Path, n: int = 12) -> None:
    d = root / "lra_release" / "tsv_data"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(1)
    for split in ("train", "eval", "test"):
        rows = []
        for i in range(n):
            t1 = " ".join(rng.choice(["graph", "model", "parse", "corpus"], size=rng.randint(3, 20)))
            t2 = " ".join(rng.choice(["graph", "model", "parse", "corpus"], size=rng.randint(3, 20)))
            rows.append(f"{i % 2}\tP{i}a\tP{i}b\t{t1}\t{t2}")
        (d / f"new_aan_pairs.{split}.tsv").write_text("\n".join(rows) + "\n")


def write_cifar_fixture(root: Path, per_batch: int = 4) -> None:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(2)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.randint(0, 256, size=(per_batch, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.randint(0, 10, size=per_batch)],
        }
        with open(d / name, "wb") as f:
            pickle.dump(batch, f)


def _idx(path: Path, arr: np.ndarray) -> None:
    magic = 2051 if arr.ndim == 3 else 2049
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in arr.shape))
        f.write(arr.astype(np.uint8).tobytes())


def write_mnist_fixture(root: Path, n: int = 20) -> None:
    d = root / "MNIST" / "raw"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(3)
    for prefix, m in (("train", n), ("t10k", n // 2)):
        _idx(d / f"{prefix}-images-idx3-ubyte", rng.randint(0, 256, size=(m, 28, 28)))
        _idx(d / f"{prefix}-labels-idx1-ubyte", rng.randint(0, 10, size=(m,)))


def write_pathfinder_fixture(root: Path, resolution: int, n: int = 20) -> None:
    from PIL import Image

    d = root / "lra_release" / f"pathfinder{resolution}" / "curv_contour_length_14"
    (d / "metadata").mkdir(parents=True, exist_ok=True)
    (d / "imgs" / "0").mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(4)
    rows = []
    for i in range(n):
        Image.fromarray(rng.randint(0, 256, size=(resolution, resolution), dtype=np.uint8), mode="L").save(
            d / "imgs" / "0" / f"sample_{i}.png"
        )
        rows.append(f"imgs/0 sample_{i}.png 0 {i % 2} 1 1")
    (d / "metadata" / "0.npy").write_text("\n".join(rows) + "\n")


def write_all(root: Path) -> Path:
    """Every task's fixture under ``root`` (returns ``root``)."""
    write_listops_fixture(root)
    write_imdb_fixture(root)
    write_aan_fixture(root)
    write_cifar_fixture(root)
    write_mnist_fixture(root)
    write_pathfinder_fixture(root, 32)
    write_pathfinder_fixture(root, 128, n=10)
    return root
