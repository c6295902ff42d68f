"""Compute primitives of the SSM convolution kernels: Cauchy (S4, arXiv 2111.00396) and
Vandermonde (S4D, arXiv 2206.11893) products, each with ``ref``, ``torch``, ``keops`` and ``cuda``
backends behind one dispatcher (``backend="auto"`` picks the fastest available path).

Importing this package compiles nothing, imports no pykeops and queries no GPU.
"""

from ssm.kernels.backend import BACKENDS, Backend, BackendUnavailableError, available_backends
from ssm.kernels.cauchy import cauchy, cauchy_keops, cauchy_ref, cauchy_torch
from ssm.kernels.shared_poles import cauchy_pairs
from ssm.kernels.vandermonde import (
    vandermonde,
    vandermonde_keops,
    vandermonde_ref,
    vandermonde_torch,
    vandermonde_transpose,
    vandermonde_transpose_keops,
    vandermonde_transpose_ref,
    vandermonde_transpose_torch,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendUnavailableError",
    "available_backends",
    "cauchy",
    "cauchy_keops",
    "cauchy_pairs",
    "cauchy_ref",
    "cauchy_torch",
    "vandermonde",
    "vandermonde_keops",
    "vandermonde_ref",
    "vandermonde_torch",
    "vandermonde_transpose",
    "vandermonde_transpose_keops",
    "vandermonde_transpose_ref",
    "vandermonde_transpose_torch",
]
