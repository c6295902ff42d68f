"""Input checks and helpers shared by the kernel backends (``cauchy.py``, ``vandermonde.py``, ``cuda.py``).

Torch-only and free of backend discovery, so that ``cuda.py`` can use the same checks without
importing the dispatcher (``backend.py`` imports ``cuda.py`` on demand, never the reverse).
Kernels from S4 (arXiv 2111.00396, Sec. 3.3) and S4D (arXiv 2206.11893, Sec. 3).
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor

__all__ = [
    "CHUNK_ELEMENTS",
    "as_pairs",
    "batch_shape",
    "check_complex",
    "check_length",
    "check_same_device",
    "chunk_length",
    "from_pairs",
    "keops_sum",
    "real_dtype",
]


_REAL_OF = {torch.complex64: torch.float32, torch.complex128: torch.float64}


def check_complex(op: str, name: str, t: object, dtype: torch.dtype | None = None) -> Tensor:
    """``t`` must be a complex64/complex128 tensor (of ``dtype`` when given)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in _REAL_OF:
        raise TypeError(f"{op}: {name} must be complex64 or complex128, got {t.dtype}")
    if dtype is not None and t.dtype != dtype:
        raise TypeError(f"{op}: {name} must have the same dtype as v ({dtype}), got {t.dtype}")
    if t.dim() == 0:
        raise ValueError(f"{op}: {name} must have at least one dimension, got a scalar")
    return t


def check_length(op: str, L: object) -> int:
    """``L`` must be a Python (or numpy) integer >= 1."""
    if isinstance(L, bool) or not isinstance(L, numbers.Integral):
        raise TypeError(f"{op}: L must be an int >= 1, got {type(L).__name__} ({L!r})")
    if L < 1:
        raise ValueError(f"{op}: L must be >= 1, got {L}")
    return int(L)


def check_same_device(op: str, **tensors: Tensor) -> None:
    devices = {name: t.device for name, t in tensors.items()}
    if len(set(devices.values())) > 1:
        raise ValueError(f"{op}: all inputs must be on one device, got {devices}")


def batch_shape(op: str, **tensors: Tensor) -> torch.Size:
    """Broadcast of the leading (all but last) dims of the given tensors, with a clear error."""
    try:
        return torch.broadcast_shapes(*(t.shape[:-1] for t in tensors.values()))
    except RuntimeError:
        shapes = {name: tuple(t.shape) for name, t in tensors.items()}
        raise ValueError(f"{op}: leading (batch) dims of {shapes} do not broadcast") from None


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    return _REAL_OF[dtype]


# Elements per (rows, chunk) temporary of the chunked torch paths: small enough to stay in a CPU's
# caches; on a GPU 16x more, so that a call is a few large launches rather than hundreds of small
# ones (still a fixed bound, 32 MB per complex64 temporary, whatever H, N and L are).
CHUNK_ELEMENTS = {"cpu": 1 << 18, "cuda": 1 << 22}


def chunk_length(rows: int, L: int, device: torch.device | None = None) -> int:
    """Positions per chunk so that a (rows, chunk) temporary holds about ``CHUNK_ELEMENTS`` elements."""
    budget = CHUNK_ELEMENTS.get(device.type if device is not None else "cpu", CHUNK_ELEMENTS["cpu"])
    return max(1, min(L, budget // max(rows, 1)))


_GENRED_CACHE: dict[tuple[str, tuple[str, ...]], object] = {}


def keops_sum(formula: str, aliases: list[str], *args: Tensor) -> Tensor:
    """Run the KeOps reduction ``sum_j formula(i, j)`` (axis=1) on (B, rows, dim) real tensors.

    The backend follows the tensors' device: "CPU" for CPU tensors, "GPU" for CUDA ones (never the
    GPU backend for CPU tensors). Callers flatten batch dims to exactly one, so each formula is
    compiled once per dtype; pykeops caches the build on disk across processes.
    """
    from pykeops.torch import Genred  # lazy: importing ssm.kernels must not import pykeops

    key = (formula, tuple(aliases))
    if key not in _GENRED_CACHE:
        _GENRED_CACHE[key] = Genred(formula, aliases, reduction_op="Sum", axis=1)
    device = args[0].device
    if device.type == "cuda":
        return _GENRED_CACHE[key](*args, backend="GPU", device_id=device.index or 0)
    return _GENRED_CACHE[key](*args, backend="CPU")


def as_pairs(t: Tensor) -> Tensor:
    """Complex (...,) -> contiguous real (..., 2) (re, im) pairs, the layout KeOps' Complex ops use."""
    return torch.view_as_real(t.resolve_conj().contiguous())


def from_pairs(t: Tensor) -> Tensor:
    return torch.view_as_complex(t.contiguous())
