"""Writers for small files in the official on-disk formats the loaders read.

Each writer reproduces the published layout byte for byte where the format fixes it: LRA ListOps TSVs
(csv module, tab, ``\\r\\n``), aclImdb folders, AAN TSV pairs, CIFAR-10 python pickles (protocol 2,
bytes keys as a Python 2 pickle read with ``encoding="bytes"`` gives), Pathfinder text metadata plus
grayscale PNGs, and MNIST IDX files (big-endian, optionally gzipped).
"""

from __future__ import annotations

import csv
import gzip
import pickle
import struct
from pathlib import Path
from typing import Sequence

import numpy as np


def write_listops_tsv(path: Path, rows: Sequence[tuple[str, int]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["Source", "Target"])
        w.writerows(rows)
    return path


def write_imdb(root: Path, reviews: dict[str, dict[str, list[str]]]) -> Path:
    """``reviews[split][pos|neg]`` -> ``root/aclImdb/<split>/<pos|neg>/<id>_<rating>.txt``."""
    base = root / "aclImdb"
    for split, by_label in reviews.items():
        for label, texts in by_label.items():
            d = base / split / label
            d.mkdir(parents=True, exist_ok=True)
            for i, t in enumerate(texts):
                rating = 8 if label == "pos" else 2
                (d / f"{i}_{rating}.txt").write_bytes(t.encode("utf-8"))
    (base / "train" / "unsup").mkdir(parents=True, exist_ok=True)
    (base / "train" / "unsup" / "0_0.txt").write_text("unlabelled review, must be ignored")
    (base / "imdb.vocab").write_text("the\nand\n")
    return base


def write_aan(path: Path, rows: Sequence[tuple[str, str, str, str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_cifar_batch(path: Path, data: np.ndarray, labels: Sequence[int], name: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    d = {b"batch_label": name.encode(), b"labels": list(map(int, labels)), b"data": data,
         b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)
    return path


def write_cifar(root: Path, per_batch: int, seed: int = 0
                ) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """cifar-10-batches-py with 5 training batches and a test batch of ``per_batch`` random images."""
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    tr_x, tr_y = [], []
    for b in range(1, 6):
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, per_batch)
        write_cifar_batch(d / f"data_batch_{b}", x, y, f"training batch {b} of 5")
        tr_x.append(x)
        tr_y.append(y)
    te_x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
    te_y = rng.integers(0, 10, per_batch)
    write_cifar_batch(d / "test_batch", te_x, te_y, "testing batch 1 of 1")
    (d / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane"]}, protocol=2))
    return d, np.concatenate(tr_x), np.concatenate(tr_y), te_x, te_y


def write_png(path: Path, img: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img.astype(np.uint8), mode="L").save(path)


def write_pathfinder_fixture(root: Path, images: Sequence[np.ndarray], labels: Sequence[int],
                             per_folder: int = 4, resolution: int = 32) -> Path:
    """``root/lra_release/pathfinder<R>/curv_contour_length_14`` with text metadata files."""
    base = root / "lra_release" / f"pathfinder{resolution}" / "curv_contour_length_14"
    lines: dict[int, list[str]] = {}
    for idx, (img, lab) in enumerate(zip(images, labels)):
        k, i = divmod(idx, per_folder)
        write_png(base / "imgs" / str(k) / f"sample_{i}.png", img)
        lines.setdefault(k, []).append(f"imgs/{k} sample_{i}.png {i} {lab} 14 1.5 1")
    (base / "metadata").mkdir(parents=True, exist_ok=True)
    for k, ls in lines.items():
        (base / "metadata" / f"{k}.npy").write_text("\n".join(ls) + "\n")
    return base


def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    """IDX: magic (0, 0, 0x08, ndim), big-endian uint32 dims, uint8 data."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    raw = header + arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)
    return path


def write_mnist(root: Path, n_train: int, n_test: int, gz: bool = False, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n).astype(np.uint8)
        write_idx(root / f"{prefix}-images-idx3-ubyte", x, gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", y, gz)
        out += [x, y]
    return out[0], out[1], out[2], out[3]
