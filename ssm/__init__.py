"""Structured state-space sequence models: S4, DSS, S4D, S5 and PTD on one shared core.

Importing this package needs only torch and einops: it compiles nothing, starts no KeOps JIT and
queries no GPU. Optional parts (KeOps, the CUDA extension, training) load on first use.
"""

__version__ = "0.1.0"
