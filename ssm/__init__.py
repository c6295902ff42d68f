"""Structured state-space sequence models: S4, DSS, S4D, S5 and PTD on one shared core.

S4 (arXiv 2111.00396), DSS (2203.14343), S4D (2206.11893), S5 (2208.04933), PTD (2310.01698).
Importing this package needs only torch and einops: it compiles nothing, starts no KeOps JIT and
queries no GPU. Optional parts (KeOps, the CUDA extension, training) load on first use.
"""

__version__ = "0.1.0"

from . import discretize, init, kernels
from .layers.dss import DSS
from .layers.s4 import S4
from .layers.s4d import S4D
from .layers.s5 import S5
from .models.backbone import SequenceModel
from .training.optim import param_groups

__all__ = ["S4", "S4D", "DSS", "S5", "SequenceModel", "param_groups", "init", "discretize", "kernels",
           "__version__"]
