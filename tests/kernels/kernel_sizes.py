"""The size sweep shared by the Cauchy and Vandermonde backend tests."""

import itertools

import pytest
import torch

L_SIZES = (1, 3, 17, 1000, 4097)
N_SIZES = (2, 64, 256)
BATCHES = {0: (), 1: (3,), 2: (2, 2)}
DTYPES = (torch.complex64, torch.complex128)
# Full L x N grid; the number of batch dims cycles so that each count meets every L and every N.
SWEEP = [(L, N, (i + j) % 3) for (i, L), (j, N) in itertools.product(enumerate(L_SIZES), enumerate(N_SIZES))]
# KeOps: a covering subset (every L, N and batch count once); each formula compiles once per dtype.
KEOPS_CASES = [(1, 2, 0), (3, 256, 1), (17, 64, 2), (1000, 2, 1), (4097, 256, 2)]


def gpu_backend_sweep(test):
    """Run ``test(backend, L, N, nb, dtype, ...)`` for every backend on CUDA tensors (KeOps and the
    compiled kernels carry their markers) over the KeOps covering sizes, in both dtypes."""
    backends = ["ref", "torch", pytest.param("keops", marks=pytest.mark.keops),
                pytest.param("cuda", marks=pytest.mark.ext)]
    for mark in (pytest.mark.parametrize("backend", backends), pytest.mark.parametrize("L,N,nb", KEOPS_CASES),
                 pytest.mark.parametrize("dtype", DTYPES, ids=str), pytest.mark.cuda):
        test = mark(test)
    return test
