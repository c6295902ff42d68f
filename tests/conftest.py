"""Shared test configuration: the per-dtype tolerance table and fixtures used across tests/.

Accuracy rule: against a complex128 (or float64) reference,
    err(fast at working precision) <= 2 * err(ref at working precision) + TOL[dtype] * scale,
with errors as max-abs differences and ``scale = max(1, max |reference|)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import torch

try:  # hypothesis is a [dev] extra: without it the property tests (tests/properties/) skip
    from hypothesis import HealthCheck, settings
except ImportError:
    settings = None

if settings is not None:
    # "ci" (the default): derandomized and bounded, so that a run is reproducible and tests/properties
    # takes about a minute on a 2-core CPU. "thorough" (HYPOTHESIS_PROFILE=thorough): fresh random
    # examples, 10x more of them, failures kept in the example database (.hypothesis/).
    _SLOW_DRAWS = [HealthCheck.too_slow, HealthCheck.data_too_large]
    settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True, database=None,
                              print_blob=True, suppress_health_check=_SLOW_DRAWS)
    settings.register_profile("thorough", max_examples=2000, deadline=None, print_blob=True,
                              suppress_health_check=_SLOW_DRAWS)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Absolute floor of the accuracy rule, relative to max(1, max |reference|).
TOL: dict[torch.dtype, float] = {
    torch.complex64: 1e-5,
    torch.float32: 1e-5,
    torch.complex128: 1e-12,
    torch.float64: 1e-12,
}


@pytest.fixture
def tol() -> dict[torch.dtype, float]:
    """The per-dtype tolerance table (absolute floor of the accuracy rule)."""
    return TOL


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.to(b.dtype) - b).abs().max().item() if a.numel() else 0.0


@pytest.fixture
def check_accuracy() -> Callable[..., None]:
    """``check(fast, ref_wp, exact, dtype, what)``: assert the accuracy rule, errors in the message."""

    def check(fast: torch.Tensor, ref_wp: torch.Tensor, exact: torch.Tensor, dtype: torch.dtype,
              what: str = "") -> None:
        assert fast.shape == exact.shape, f"{what}: shape {tuple(fast.shape)} != {tuple(exact.shape)}"
        e_fast, e_ref = max_err(fast, exact), max_err(ref_wp, exact)
        scale = max(1.0, exact.abs().max().item()) if exact.numel() else 1.0
        bound = 2 * e_ref + TOL[dtype] * scale
        assert e_fast <= bound, f"{what}: err={e_fast:.3e} > 2*err_ref({e_ref:.3e}) + floor => {bound:.3e}"

    return check


@pytest.fixture
def gen() -> torch.Generator:
    """A seeded CPU generator: tests draw their random inputs from it."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def keops_required() -> None:
    """Skip, with the reason and the install command, where the KeOps backend cannot run."""
    from ssm.kernels.backend import unavailable_reason

    reason = unavailable_reason("keops")
    if reason is not None:
        pytest.skip(f"KeOps backend unavailable: {reason}")


@pytest.fixture
def gpu_backend() -> Callable[[str], None]:
    """``gpu_backend(name)``: skip, with the reason, unless a CUDA GPU is present and the kernel
    backend ``name`` can run on CUDA tensors there (the extension built, KeOps with GPU support)."""

    def require(name: str) -> None:
        if not torch.cuda.is_available():
            pytest.skip(f"no CUDA GPU: torch {torch.__version__} (CUDA {torch.version.cuda}) sees none")
        from ssm.kernels import backend as B

        reason = B.unavailable_reason(name)
        if reason is None and name == "keops":
            reason = B._keops_gpu_reason()
        if reason is not None:
            pytest.skip(f"backend {name!r} unavailable on the GPU: {reason}")

    return require


@pytest.fixture
def one_thread_seed0():
    """One torch thread (tiny tensors: no thread start-up cost on a busy machine) and seed 0."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
