"""Loader of the compiled CUDA extension ``ssm._C`` (Cauchy and Vandermonde kernels; S4 arXiv
2111.00396 Sec. 3.3, S4D arXiv 2206.11893 Sec. 3).

The import is attempted once, on first use (never when ``ssm`` is imported), and its outcome is
recorded: the module, or the exact reason it cannot be used together with the command that builds
it. Nothing here compiles code or queries a GPU.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

import torch

__all__ = ["BUILD_COMMAND", "ExtensionUnavailableError", "extension", "is_loaded", "load_error"]

BUILD_COMMAND = "SSM_BUILD_EXT=1 pip install -e . --no-build-isolation"


class ExtensionUnavailableError(RuntimeError):
    """The compiled extension ssm._C cannot be imported; the message says why and how to build it."""


@functools.lru_cache(maxsize=None)
def _load() -> tuple[ModuleType | None, str | None]:
    try:
        module = importlib.import_module("ssm._C")
    except ImportError as err:  # ModuleNotFoundError when never built; undefined symbols on an ABI mismatch
        if torch.version.cuda is None:
            why = (
                f"torch {torch.__version__} is a CPU-only build, and ssm._C needs a CUDA build of torch "
                f"({type(err).__name__}: {err})"
            )
        else:
            why = f"the compiled extension ssm._C could not be imported ({type(err).__name__}: {err})"
        return None, (
            f"{why}. Build it (needs nvcc and a CUDA build of torch) with: {BUILD_COMMAND}; "
            "see csrc/README.md"
        )
    return module, None


def is_loaded() -> bool:
    """Whether ``ssm._C`` imports (says nothing about a GPU being present)."""
    return _load()[0] is not None


def load_error() -> str | None:
    """Why ``ssm._C`` cannot be imported, with the build command; None once it imports."""
    return _load()[1]


def extension() -> ModuleType:
    """The ``ssm._C`` module; raises ExtensionUnavailableError (with the reason) if it is missing."""
    module, why = _load()
    if module is None:
        raise ExtensionUnavailableError(why)
    return module
