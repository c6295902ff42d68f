"""Shared timing and memory helpers for the benchmarks (not installed with the package).

Time: median of ``torch.utils.benchmark.Timer.blocked_autorange`` (it warms up, synchronises CUDA
and repeats until ``min_run_time`` is spent). Memory: on CUDA, ``torch.cuda.max_memory_allocated``
growth; on the CPU, the growth of the process' peak resident set (``VmHWM`` in /proc/self/status,
reset through /proc/self/clear_refs) over its size before the call. tracemalloc cannot see torch's
allocations, so RSS is the honest CPU measure; to make freed tensors leave the RSS (instead of
being kept by glibc's heap) ``pin_malloc_to_mmap()`` sets glibc's mmap threshold to 64 KiB.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Callable

import torch

# One timer for the package's `python -m ssm.kernels` and the benchmarks.
from ssm._timing import median_seconds  # noqa: F401  (re-exported for benchmarks/*.py)


def pin_malloc_to_mmap() -> bool:
    """Serve allocations >= 64 KiB with mmap so that freeing them lowers the RSS (glibc only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_mmap_threshold = -3
    return bool(libc.mallopt(m_mmap_threshold, 1 << 16))


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def peak_memory_bytes(fn: Callable[[], object], device: torch.device) -> int | None:
    """Extra memory at the peak of one ``fn()`` call, in bytes (None where it cannot be measured)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # reset VmHWM to the current RSS
        before = _rss_kib("VmRSS")
    except OSError:
        return None
    fn()
    return max(0, _rss_kib("VmHWM") - before) * 1024
