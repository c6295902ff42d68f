"""Models built from SSM blocks: the residual backbone with encoder, pooling and decoder."""

from .backbone import SequenceModel
from .config import ModelConfig

__all__ = ["SequenceModel", "ModelConfig"]
