"""Backend discovery and dispatch for the Cauchy and Vandermonde kernels.

Every public kernel (``cauchy``, ``vandermonde``, ``vandermonde_transpose``) takes
``backend="auto" | "ref" | "torch" | "keops" | "cuda"``. This module answers two questions without
compiling anything: which backends can run here (``available_backends``), and which one a call
should use (``resolve_backend``). ``"auto"`` picks the fastest available path for the tensors'
device, dtype and size and logs that choice once; a backend named explicitly that cannot run raises
``BackendUnavailableError`` with the command that installs it. Nothing falls back silently.

Kernels from S4 (arXiv 2111.00396, Sec. 3.3: Cauchy kernel) and S4D (arXiv 2206.11893, Sec. 3:
Vandermonde kernel).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import sys
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendUnavailableError",
    "KEOPS_MIN_WORK",
    "available_backends",
    "resolve_backend",
    "unavailable_reason",
]

Backend = Literal["auto", "ref", "torch", "keops", "cuda"]
BACKENDS: tuple[str, ...] = ("ref", "torch", "keops", "cuda")

# CPU rule of "auto", from measurements on a 2-core x86-64 CPU (benchmarks/README.md, "Kernels"):
# - cauchy: KeOps' fused loop beats the chunked torch path from about 2**15 (pole, position) pairs
#   (fwd+bwd, one thread: 2**16 pairs 1.5 ms vs 3.2 ms; 2**22 pairs 19 ms vs 96 ms); below that its
#   fixed per-call cost (~1.3 ms) wins, and tiny calls also skip the one-off ~10 s formula compile.
# - vandermonde, vandermonde_transpose: the torch path's blocked form (exp(x l) = exp(x qT) exp(x r),
#   BLAS products) evaluates N (L/T + T) exponentials instead of N L and is 10-50x faster than the
#   KeOps formula, which evaluates exp, cos and sin for every (mode, position) pair.
# - cauchy with poles shared by every weight vector at imaginary points (S4's four Woodbury sums):
#   the torch backend's pairs path (one reciprocal per (pole, point) for all sums, real BLAS products)
#   is ~10x faster than KeOps for S4's shapes.
KEOPS_MIN_WORK = 1 << 16
_KEOPS_CPU_OPS = ("cauchy",)
CAUCHY_SHARED = "cauchy (shared poles, imaginary points)"

# structured-ssm is not on the package index yet: name what works today (README, "Install").
KEOPS_INSTALL = ('pip install "pykeops>=2.2" (the [keops] extra of structured-ssm; '
                 'in a clone: pip install -e ".[keops]")')
CUDA_INSTALL = "SSM_BUILD_EXT=1 pip install -e . --no-build-isolation"

logger = logging.getLogger("ssm.kernels")
_LOGGED: set[tuple[str, str, str, str]] = set()


class BackendUnavailableError(RuntimeError):
    """A kernel backend was requested by name but cannot run here; the message says how to get it."""


@functools.lru_cache(maxsize=None)  # asked on every kernel call: look once per process
def _keops_reason() -> str | None:
    if importlib.util.find_spec("pykeops") is None:
        return f"pykeops is not installed; install it with: {KEOPS_INSTALL}"
    # pykeops compiles with $CXX when that names a program on PATH, else with g++ (clang++ on macOS)
    candidates = [os.environ.get("CXX", ""), "g++"] + (["clang++"] if sys.platform == "darwin" else [])
    if not any(c and shutil.which(c) for c in candidates):
        return (
            f"pykeops is installed but no C++ compiler was found (looked for $CXX, "
            f"{', '.join(candidates[1:])}); "
            "install g++ (e.g. `apt-get install g++`) or point the CXX environment variable at one"
        )
    return None


def _cuda_module():
    """Import ``ssm.kernels.cuda`` on demand; returns (module or None, reason if unusable)."""
    try:
        module = importlib.import_module("ssm.kernels.cuda")
    except ModuleNotFoundError as err:
        if err.name == "ssm.kernels.cuda":
            return None, "this installation has no ssm.kernels.cuda module (CUDA kernels not shipped)"
        return None, f"importing ssm.kernels.cuda failed: {err}"
    except ImportError as err:
        return None, f"importing ssm.kernels.cuda failed: {err}"
    return module, None


def _cuda_reason() -> str | None:
    module, reason = _cuda_module()
    if module is None:
        return f"{reason}; build the extension with: {CUDA_INSTALL}"
    if not module.is_available():
        return module.unavailable_reason()
    return None


def unavailable_reason(backend: str) -> str | None:
    """Why ``backend`` cannot run here (with the install command), or None if it can."""
    if backend in ("ref", "torch"):
        return None
    if backend == "keops":
        return _keops_reason()
    if backend == "cuda":
        return _cuda_reason()
    raise ValueError(f"backend must be one of {('auto',) + BACKENDS}, got {backend!r}")


def available_backends() -> dict[str, bool]:
    """Which backends are importable and usable here. Nothing is compiled and no GPU is queried
    to find out (``cuda`` asks ``ssm.kernels.cuda.is_available()``, which is cheap by contract)."""
    return {name: unavailable_reason(name) is None for name in BACKENDS}


# One small KeOps reduction on the GPU, checked against torch, run in a child process: a broken GPU
# set-up of KeOps can kill the process instead of raising (pykeops 2.3 with CUDA 13.0, driver 580 on
# an H100 died with a segmentation fault in KeOps' nvrtc binder on its first GPU formula).
KEOPS_GPU_PROBE = """
import torch
from pykeops.torch import Genred
x = torch.randn(7, 2, device="cuda", dtype=torch.float64)
y = torch.randn(9, 2, device="cuda", dtype=torch.float64)
red = Genred("SqDist(x, y)", ["x = Vi(2)", "y = Vj(2)"], reduction_op="Sum", axis=1)
out = red(x, y, backend="GPU")
want = ((x[:, None] - y[None]) ** 2).sum(-1).sum(1, keepdim=True)
assert torch.allclose(out, want, rtol=1e-9, atol=1e-9), (out, want)
"""
KEOPS_GPU_PROBE_TIMEOUT_S = 600  # a first run compiles KeOps' GPU engine and the formula


@functools.lru_cache(maxsize=None)  # once per process, and only when CUDA tensors meet KeOps
def _keops_gpu_reason() -> str | None:
    """Why KeOps cannot run on the GPU here (None if it can): pykeops must have found CUDA at import,
    and the self-check ``KEOPS_GPU_PROBE`` must pass in a child process. ``SSM_KEOPS_GPU_CHECK=0``
    skips the self-check (then a broken set-up fails, or crashes, at the first real call)."""
    import pykeops  # only reached for CUDA tensors: CPU users never import pykeops here

    if not pykeops.config.gpu_available:
        return ("this pykeops cannot use the GPU (it found no CUDA toolkit/nvrtc at import); install the "
                f"CUDA toolkit, then reinstall with: {KEOPS_INSTALL}")
    if os.environ.get("SSM_KEOPS_GPU_CHECK", "1") == "0":
        return None
    try:
        proc = subprocess.run([sys.executable, "-c", KEOPS_GPU_PROBE], capture_output=True, text=True,
                              timeout=KEOPS_GPU_PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"KeOps' GPU self-check (one small reduction in a child process) ran over {KEOPS_GPU_PROBE_TIMEOUT_S} s"
    if proc.returncode == 0:
        return None
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        how = f"was killed by {name}"
    else:
        how = f"exited with status {proc.returncode}"
    tail = " | ".join(line for line in proc.stderr.strip().splitlines()[-3:] if line.strip())
    return (f"KeOps' GPU self-check (one small reduction in a child process) {how}"
            f"{': ' + tail[-400:] if tail else ''}; on this GPU use backend='cuda' (build the extension) "
            "or backend='torch'")


def _keops_has_gpu() -> bool:
    return _keops_gpu_reason() is None


def _log_once(op: str, device: torch.device, dtype: torch.dtype, choice: str, why: str) -> None:
    key = (op, device.type, str(dtype), choice)
    if key not in _LOGGED:
        _LOGGED.add(key)
        logger.info("%s on %s %s: backend=auto chose %r (%s)", op, device.type, dtype, choice, why)


def _auto(op: str, device: torch.device, dtype: torch.dtype, work: int) -> tuple[str, str]:
    keops_ok = _keops_reason() is None
    if device.type == "cuda":
        if _cuda_reason() is None:
            return "cuda", "compiled CUDA kernels"
        if keops_ok and _keops_has_gpu():
            return "keops", "CUDA extension unavailable; KeOps on the GPU"
        why = _keops_reason() if not keops_ok else _keops_gpu_reason()
        return "torch", f"neither the CUDA extension nor GPU KeOps is usable (KeOps: {why})"
    if device.type != "cpu":
        return "torch", f"only the torch backend supports device type {device.type!r}"
    if op == CAUCHY_SHARED:
        return "torch", "poles shared across the batch at imaginary points: the real-arithmetic pairs path"
    if op not in _KEOPS_CPU_OPS:
        return "torch", "blocked torch path is the fastest CPU path for this op"
    if not keops_ok:
        return "torch", "pykeops unavailable"
    if work < KEOPS_MIN_WORK:
        return "torch", f"small problem ({work} < KEOPS_MIN_WORK={KEOPS_MIN_WORK} pole-position pairs)"
    return "keops", f"{work} pole-position pairs >= KEOPS_MIN_WORK={KEOPS_MIN_WORK}"


def resolve_backend(backend: str, op: str, ref_tensor: Tensor, work: int) -> str:
    """Return the concrete backend to run ``op`` with.

    Args:
        backend: "auto" or one of ``BACKENDS``.
        op: kernel name, for messages and the one-time log line.
        ref_tensor: a (validated) input; its device and dtype steer the choice.
        work: number of (pole, position) pairs the call evaluates (batch * N * L).
    """
    if backend == "auto":
        choice, why = _auto(op, ref_tensor.device, ref_tensor.dtype, work)
        _log_once(op, ref_tensor.device, ref_tensor.dtype, choice, why)
        return choice
    if backend not in BACKENDS:
        raise ValueError(f"{op}: backend must be one of {('auto',) + BACKENDS}, got {backend!r}")
    reason = unavailable_reason(backend)
    if reason is not None:
        raise BackendUnavailableError(f"{op}: backend {backend!r} is not available: {reason}")
    if backend == "cuda" and ref_tensor.device.type != "cuda":
        raise ValueError(
            f"{op}: backend 'cuda' needs CUDA tensors, got tensors on {ref_tensor.device}; "
            "move them with .cuda() or use backend='auto'"
        )
    if backend == "keops":
        if ref_tensor.device.type not in ("cpu", "cuda"):
            raise ValueError(f"{op}: backend 'keops' runs on cpu or cuda tensors, got {ref_tensor.device}")
        if ref_tensor.device.type == "cuda":
            reason = _keops_gpu_reason()
            if reason is not None:
                raise BackendUnavailableError(f"{op}: backend 'keops' got CUDA tensors, but {reason}")
    return backend


def cuda_module():
    """The ``ssm.kernels.cuda`` module (call only after ``resolve_backend`` returned "cuda")."""
    module, reason = _cuda_module()
    if module is None:
        raise BackendUnavailableError(f"backend 'cuda' is not available: {reason}")
    return module


# Input checks and helpers shared by the backends live in _common.py (cuda.py uses them too, so they
# cannot live here: this module imports cuda.py on demand). Re-exported for existing imports.
from ssm.kernels._common import (  # noqa: E402,F401
    CHUNK_ELEMENTS,
    as_pairs,
    batch_shape,
    check_complex,
    check_length,
    check_same_device,
    chunk_length,
    from_pairs,
    keops_sum,
    real_dtype,
)
