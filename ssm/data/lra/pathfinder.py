"""LRA Pathfinder and Path-X (Tay et al., arXiv:2011.04006; task: Linsley et al., arXiv:1805.08315).

Layout: ``lra_release/pathfinder{32,64,128}/curv_contour_length_14/`` with ``metadata/<k>.npy`` and
``imgs/<k>/sample_<i>.png`` (grayscale, R x R). Despite the suffix, the metadata files of the LRA
release are plain text: one line per image, space-separated fields, of which field 0 is the image
folder relative to the difficulty folder (``imgs/<k>``), field 1 the file name (``sample_<i>.png``) and
field 3 the label (1: the two markers are connected). Other fields are ignored. A metadata file in
binary ``.npy`` format (a 2-D array of strings with the same columns) is read as well.

Only ``curv_contour_length_14`` (the hardest difficulty) is used, all metadata files pooled in the
order of ``k`` then line, and split 80/10/10 at random with a fixed seed. Path-X is resolution 128
(L 16384). Inputs as for LRA Image: ``tokens=False`` gives floats ``(p / 255 - 0.5) / 0.5`` of shape
(L, 1); ``tokens=True`` gives pixel values 0-255 as tokens (vocabulary 256).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from .._io import DatasetNotFoundError, MalformedFileError, find_dir
from ..datamodule import SequenceDataModule, split_indices

__all__ = ["read_pathfinder_metadata", "find_pathfinder_dir", "PathfinderDataset", "PathfinderDataModule",
           "HOW_TO_GET", "DIFFICULTY"]

DIFFICULTY = "curv_contour_length_14"
HOW_TO_GET = ("Get it from the LRA archive (lra_release.gz: lra_release/pathfinder{R}/" + DIFFICULTY + ") "
              "or generate it:\n"
              "  python -m ssm.data.generate pathfinder --out DIR --resolution R --n 200000\n"
              "(DIR then holds pathfinder{R}/" + DIFFICULTY + ").")
_NPY_MAGIC = b"\x93NUMPY"


def find_pathfinder_dir(data_dir: str | Path, resolution: int) -> Path:
    """The ``curv_contour_length_14`` folder under ``data_dir`` (itself, or below ``pathfinder<R>``,
    or below ``lra_release/pathfinder<R>``)."""
    d, pf = Path(data_dir), f"pathfinder{resolution}"
    cands = [d, d / DIFFICULTY, d / pf / DIFFICULTY, d / "lra_release" / pf / DIFFICULTY]
    return find_dir(cands, "metadata", f"Pathfinder {resolution}x{resolution} ({DIFFICULTY})", HOW_TO_GET)


def _rows(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    if raw.startswith(_NPY_MAGIC):
        import io

        try:
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
        except ValueError as e:
            raise MalformedFileError(path, None, f"unreadable .npy metadata ({e})") from None
        if arr.ndim != 2:
            raise MalformedFileError(path, None, f"expected a 2-D array of strings, got shape {arr.shape}")
        return [[str(v) for v in row] for row in arr]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedFileError(path, None, f"metadata is neither text nor .npy ({e})") from None
    return [line.split() for line in text.splitlines()]


def read_pathfinder_metadata(root: str | Path) -> tuple[list[str], np.ndarray, list[str]]:
    """Read every ``root/metadata/<k>.npy``: (image paths relative to root, labels (N,) int64,
    origins ``"<metadata file>, line <n>"`` for error messages)."""
    root = Path(root)
    files = list((root / "metadata").glob("*.npy"))
    if not files:
        raise DatasetNotFoundError(f"no metadata/*.npy files in {root}. {HOW_TO_GET}")
    for f in files:
        if not f.stem.isdigit():
            raise MalformedFileError(f, None, "metadata files must be named <integer>.npy")
    paths: list[str] = []
    labels: list[int] = []
    origins: list[str] = []
    for f in sorted(files, key=lambda p: int(p.stem)):
        for lineno, row in enumerate(_rows(f), start=1):
            if not row:
                continue
            if len(row) < 4:
                raise MalformedFileError(f, lineno,
                                         f"expected at least 4 fields (folder, file, _, label), got {row}")
            if row[3] not in ("0", "1"):
                raise MalformedFileError(f, lineno, f"label (field 3) must be 0 or 1, got {row[3]!r}")
            paths.append(f"{row[0]}/{row[1]}")
            labels.append(int(row[3]))
            origins.append(f"{f}, line {lineno}")
    if not labels:
        raise MalformedFileError(root / "metadata", None, "expected lines 'imgs/<k> sample_<i>.png <i> "
                                 "<label> ...' in the metadata files, got none (no images listed)")
    return paths, np.asarray(labels, dtype=np.int64), origins


def load_png(path: Path, resolution: int, origin: str = "") -> np.ndarray:
    """A grayscale R x R PNG as uint8 (R, R); RGB(A) images are converted to luma by Pillow."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DatasetNotFoundError(f"image {path} (listed in {origin}) not found. {HOW_TO_GET}")
    try:
        with Image.open(path) as im:
            arr = np.asarray(im if im.mode == "L" else im.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise MalformedFileError(path, None, f"unreadable image ({e})") from None
    if arr.shape != (resolution, resolution):
        raise MalformedFileError(path, None, f"expected a {resolution}x{resolution} image, got {arr.shape}")
    return arr


class PathfinderDataset(Dataset):
    """All images of one ``curv_contour_length_14`` folder, decoded on access."""

    def __init__(self, root: str | Path, resolution: int, tokens: bool = False) -> None:
        self.root, self.resolution, self.tokens = Path(root), resolution, tokens
        self.paths, self.labels, self.origins = read_pathfinder_metadata(self.root)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        img = torch.from_numpy(load_png(self.root / self.paths[i], self.resolution, self.origins[i]).copy())
        x = img.reshape(-1)
        x = x.long() if self.tokens else ((x.float() / 255.0 - 0.5) / 0.5).unsqueeze(-1)
        return x, int(self.labels[i])


class PathfinderDataModule(SequenceDataModule):
    """Pathfinder (resolution 32, 64) and Path-X (128): 2 classes, L = resolution^2.

    Args:
        data_dir: a folder holding ``pathfinder<R>/curv_contour_length_14`` (or that folder itself).
        resolution: 32, 64 or 128 (Path-X).
        tokens: pixel values as tokens (LRA) instead of normalized floats (S4).
        split_seed: seed of the 80/10/10 train/val/test split (kept apart from the shuffle ``seed``).
        generate_if_missing: when no data are found, generate ``generate_n`` images into ``data_dir``
            with :func:`ssm.data.generate.pathfinder.write_pathfinder` (seeded by ``generate_seed``).
    """

    d_output = 2

    def __init__(self, data_dir: str | Path, batch_size: int = 64, num_workers: int = 0, seed: int = 0,
                 resolution: int = 32, tokens: bool = False, split_seed: int = 42,
                 pin_memory: bool = False, generate_if_missing: bool = False, generate_n: int = 200000,
                 generate_seed: int = 0) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed, pin_memory)
        if resolution not in (32, 64, 128):
            raise ValueError(f"resolution must be 32, 64 or 128, got {resolution}")
        if isinstance(generate_n, bool) or not isinstance(generate_n, int) or generate_n < 2:
            raise ValueError(f"generate_n must be an int >= 2, got {generate_n!r}")
        self.generate_if_missing, self.generate_n, self.generate_seed = generate_if_missing, generate_n, generate_seed
        self.resolution, self.tokens, self.split_seed = resolution, tokens, split_seed
        self.embedding = tokens
        self.d_input = 256 if tokens else 1
        self.l_max = resolution * resolution

    def prepare_data(self) -> None:
        if not self.generate_if_missing:
            return
        try:
            find_pathfinder_dir(self.data_dir, self.resolution)
        except FileNotFoundError:
            from ..generate.pathfinder import PathfinderConfig, write_pathfinder

            write_pathfinder(self.data_dir, self.generate_n, PathfinderConfig(resolution=self.resolution),
                             seed=self.generate_seed)

    def _load(self) -> tuple[Subset, Subset, Subset]:
        self.prepare_data()  # a no-op unless generating; makes setup() alone enough outside a Trainer
        root = find_pathfinder_dir(self.data_dir, self.resolution)
        ds = PathfinderDataset(root, self.resolution, self.tokens)
        train, val, test = split_indices(len(ds), [0.8, 0.1, 0.1], self.split_seed)
        return Subset(ds, train.tolist()), Subset(ds, val.tolist()), Subset(ds, test.tolist())
