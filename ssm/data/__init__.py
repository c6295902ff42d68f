"""Data for the S4-family experiments: Long Range Arena (Tay et al., arXiv:2011.04006), sequential
CIFAR-10 and sequential / permuted MNIST (S4: Gu et al., arXiv:2111.00396), and a download-free
sequential-digits task.

Every task is a Lightning DataModule taking plain keyword arguments; ``d_input, d_output, embedding,
l_max`` are set at construction. Batches are dicts ``{"x", "y", "lengths"}`` (retrieval:
``{"x1", "x2", "lengths1", "lengths2", "y"}``). See docs/data.md for where each data set goes.
This subpackage needs lightning (the ``[train]`` extra); ``import ssm`` does not import it.
"""

from ._io import DatasetNotFoundError, MalformedFileError
from .cifar import SequentialCIFARDataModule
from .datamodule import SequenceDataModule, collate_pairs, collate_sequences
from .digits import DigitsDataModule
from .lra import ImageDataModule, ListOpsDataModule, PathfinderDataModule, RetrievalDataModule, TextDataModule
from .mnist import SequentialMNISTDataModule

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
