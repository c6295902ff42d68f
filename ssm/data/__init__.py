"""Data for the S4-family experiments: Long Range Arena (Tay et al., arXiv:2011.04006), sequential
CIFAR-10 and sequential / permuted MNIST (S4: Gu et al., arXiv:2111.00396), and a download-free
sequential-digits task.

Every task is a Lightning DataModule taking plain keyword arguments; ``d_input, d_output, embedding,
l_max`` are set at construction. Batches are dicts ``{"x", "y", "lengths"}`` (retrieval:
``{"x1", "x2", "lengths1", "lengths2", "y"}``). See docs/data.md for where each data set goes.
The data modules need lightning (the ``[train]`` extra) and load it on first use: ``import ssm`` does
not import this subpackage, and ``import ssm.data`` and the generators (``ssm.data.generate``) need
only numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._io import DatasetNotFoundError, MalformedFileError

# name -> submodule; imported when first asked for (module __getattr__, PEP 562).
_LAZY = {
    "SequentialCIFARDataModule": ".cifar",
    "SequenceDataModule": ".datamodule",
    "collate_pairs": ".datamodule",
    "collate_sequences": ".datamodule",
    "DigitsDataModule": ".digits",
    "ImageDataModule": ".lra",
    "ListOpsDataModule": ".lra",
    "PathfinderDataModule": ".lra",
    "RetrievalDataModule": ".lra",
    "TextDataModule": ".lra",
    "SequentialMNISTDataModule": ".mnist",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ListOpsDataModule",
    "TextDataModule",
    "RetrievalDataModule",
    "ImageDataModule",
    "PathfinderDataModule",
    "SequentialCIFARDataModule",
    "SequentialMNISTDataModule",
    "DigitsDataModule",
    "SequenceDataModule",
    "collate_sequences",
    "collate_pairs",
    "DatasetNotFoundError",
    "MalformedFileError",
]
