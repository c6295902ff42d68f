"""Wall-time measurement shared by ``python -m ssm.kernels`` and the benchmarks (benchmarks/_timing.py).

The median of ``torch.utils.benchmark.Timer.blocked_autorange``: it synchronises CUDA, sizes its
blocks so that one block is long against the timer's resolution, and repeats blocks until
``min_run_time`` seconds are spent. One warm-up call first keeps one-off work (a KeOps compile, the
first CUDA launch, caches) out of the measurement. Torch-only; not imported by ``import ssm``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
import torch.utils.benchmark as tbench

__all__ = ["load_average", "measure", "median_seconds"]


def measure(fn: Callable[[], object], min_run_time: float = 1.0) -> tbench.Measurement:
    """Time ``fn()`` after one warm-up call; ``.median`` is in seconds, ``.times`` one entry per block."""
    fn()  # warm-up (also triggers any one-off compilation outside the timed region)
    # Timer runs with one thread unless told otherwise: time with the threads the caller set.
    timer = tbench.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time)


def median_seconds(fn: Callable[[], object], min_run_time: float = 1.0) -> float:
    """Median wall time of ``fn()`` in seconds (warm-up and CUDA synchronisation included)."""
    return measure(fn, min_run_time).median


def load_average() -> tuple[float, float, float] | None:
    """The system's 1, 5 and 15 minute load averages (None where the OS does not report them)."""
    try:
        return os.getloadavg()
    except (AttributeError, OSError):  # not on Windows; OSError where it is unobtainable
        return None
