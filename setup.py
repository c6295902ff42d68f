"""Build script for the optional CUDA extension ``ssm._C`` (everything else is in pyproject.toml).

The extension is built only when asked:  ``SSM_BUILD_EXT=1 pip install -e . --no-build-isolation``
(needs nvcc and a CUDA build of torch in the environment; see csrc/README.md).  Without
SSM_BUILD_EXT=1 this script builds no extension, does not import torch, and says so.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
FLAG = os.environ.get("SSM_BUILD_EXT", "")


def _cuda_extension() -> tuple[list, dict]:
    try:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CUDAExtension
    except ImportError as exc:
        raise SystemExit(
            f"SSM_BUILD_EXT=1: building ssm._C needs torch in this environment ({exc}). Install torch "
            "first, then run: SSM_BUILD_EXT=1 pip install -e . --no-build-isolation"
        ) from exc
    if torch.version.cuda is None:
        raise SystemExit(
            f"SSM_BUILD_EXT=1: torch {torch.__version__} is a CPU-only build; "
            "ssm._C needs a CUDA build of torch."
        )
    if CUDA_HOME is None:
        raise SystemExit("SSM_BUILD_EXT=1: no CUDA toolkit found: put nvcc on PATH or set CUDA_HOME.")
    found = (ROOT / "csrc").rglob("*")
    sources = sorted(str(p.relative_to(ROOT)) for p in found if p.suffix in {".cpp", ".cu"})
    ext = CUDAExtension(
        name="ssm._C",
        sources=sources,
        include_dirs=[str(ROOT / "csrc")],
        extra_compile_args={
            "cxx": ["-O3"],
            # No -std: torch picks the C++ standard its headers need (C++17 up to 2.x, C++20 later).
            # No --use_fast_math: the kernels pick their fast intrinsics explicitly (see csrc/README.md).
            "nvcc": ["-O3", "-lineinfo"],
        },
    )
    return [ext], {"build_ext": BuildExtension}


if FLAG == "1":
    ext_modules, cmdclass = _cuda_extension()
elif FLAG in ("", "0"):
    print(
        "setup.py: SSM_BUILD_EXT is not 1, so the CUDA extension ssm._C is not built "
        "(pure-Python install; build it with SSM_BUILD_EXT=1 pip install -e . --no-build-isolation).",
        file=sys.stderr,
    )
    ext_modules, cmdclass = [], {}
else:
    raise SystemExit(f"SSM_BUILD_EXT must be 1 (build ssm._C) or 0/unset (do not), got {FLAG!r}.")

setup(ext_modules=ext_modules, cmdclass=cmdclass)
