"""Long Range Arena tasks (Tay et al., arXiv:2011.04006) read from the ``lra_release`` layout."""

from .image import ImageDataModule
from .listops import ListOpsDataModule
from .pathfinder import PathfinderDataModule
from .retrieval import RetrievalDataModule
from .text import TextDataModule

__all__ = ["ListOpsDataModule", "TextDataModule", "RetrievalDataModule", "ImageDataModule",
           "PathfinderDataModule"]
