"""``python -m ssm.kernels``: the kernel backends available here, a self-test of each against the
complex128 reference, and forward+backward timings (S4 arXiv 2111.00396, S4D arXiv 2206.11893).

    python -m ssm.kernels                     # all backends; timings at H=64, N=64, L=1024
    python -m ssm.kernels --backends torch keops --H 256 --L 4096
    python -m ssm.kernels --no-timing         # self-test only
    python -m ssm.kernels --threads 1 --min-run-time 2    # one torch thread, 2 s of timing per entry

Timings are the median of torch.utils.benchmark's blocked_autorange (after a warm-up call); the
table header gives the torch thread count and the load average, since a busy CPU slows every entry.
The exit status is 1 if any self-test fails.
"""

from __future__ import annotations

import argparse
import math
import os

import torch

from ssm._timing import load_average, measure
from ssm.kernels.backend import BACKENDS, available_backends, resolve_backend, unavailable_reason
from ssm.kernels.cauchy import cauchy
from ssm.kernels.vandermonde import vandermonde, vandermonde_transpose

OPS = ("cauchy", "vandermonde", "vandermonde_transpose")
FLOOR = {torch.complex64: 1e-5, torch.complex128: 1e-12}


def _inputs(op: str, H: int, n: int, L: int, dtype: torch.dtype, device: torch.device) -> list[torch.Tensor]:
    """S4/S4D-like inputs in ``dtype``: n stored modes dt * (-1/2 + i pi k), log-uniform dt."""
    gen = torch.Generator().manual_seed(0)
    f64 = torch.float64
    dt = torch.exp(torch.empty(H, 1, dtype=f64).uniform_(math.log(1e-3), math.log(1e-1), generator=gen))
    poles = dt * torch.complex(torch.full((n,), -0.5, dtype=f64), math.pi * torch.arange(n, dtype=f64))
    v = torch.randn(H, n, dtype=torch.complex128, generator=gen)
    if op == "cauchy":
        omega = torch.exp(-2j * math.pi * (torch.arange(L, dtype=f64) + 0.5) / L)
        args = [v, 2 * (1 - omega) / (1 + omega), poles]
    elif op == "vandermonde":
        args = [v, poles]
    else:
        args = [torch.randn(H, L, dtype=f64, generator=gen), v, poles]
    real = torch.float32 if dtype == torch.complex64 else f64
    return [(a.to(dtype) if a.is_complex() else a.to(real)).to(device) for a in args]


def _call(op: str, args: list[torch.Tensor], L: int, backend: str) -> torch.Tensor:
    if op == "cauchy":
        return cauchy(*args, conj=True, backend=backend)
    if op == "vandermonde":
        return vandermonde(*args, L, conj=True, backend=backend)
    return vandermonde_transpose(*args, L, backend=backend)


def _value_and_grads(op, args, L, backend, grad_out):
    args = [a.detach().requires_grad_() for a in args]
    out = _call(op, args, L, backend)
    g = grad_out.to(device=out.device, dtype=out.dtype)
    return [out.detach()] + list(torch.autograd.grad(out, args, g))


def self_test(op: str, backend: str, dtype: torch.dtype, device: torch.device) -> tuple[bool, str]:
    """Values and gradients vs complex128 ref: err <= 2 * err(ref at dtype) + floor * scale."""
    H, n, L = 3, 16, 100
    exact_in = _inputs(op, H, n, L, torch.complex128, torch.device("cpu"))
    out_shape = (H, L) if op != "vandermonde_transpose" else (H, n)
    grad_out = torch.randn(out_shape, dtype=torch.complex128, generator=torch.Generator().manual_seed(1))
    if op == "vandermonde":
        grad_out = grad_out.real
    exact = _value_and_grads(op, exact_in, L, "ref", grad_out)
    ref_wp = _value_and_grads(op, _inputs(op, H, n, L, dtype, torch.device("cpu")), L, "ref", grad_out)
    fast = _value_and_grads(op, _inputs(op, H, n, L, dtype, device), L, backend, grad_out)
    worst = 0.0
    for e, r, f in zip(exact, ref_wp, fast):
        scale = max(1.0, e.abs().max().item())
        err_f = (f.cpu().to(e.dtype) - e).abs().max().item()
        err_r = (r.to(e.dtype) - e).abs().max().item()
        worst = max(worst, err_f / scale)
        if err_f > 2 * err_r + FLOOR[dtype] * scale:
            return False, f"FAIL (err {err_f:.2e} > 2 * ref err {err_r:.2e} + floor)"
    return True, f"ok (max rel err {worst:.1e})"


def _load() -> str:
    avg = load_average()
    return "n/a" if avg is None else " ".join(f"{a:.2f}" for a in avg) + " (1, 5, 15 min)"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ssm.kernels", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    p.add_argument("--no-timing", action="store_true", help="run the self-test only")
    p.add_argument("--H", type=int, default=64)
    p.add_argument("--N", type=int, default=64, help="real state size (N/2 stored conjugate pairs)")
    p.add_argument("--L", type=int, default=1024)
    p.add_argument("--dtype", choices=["complex64", "complex128"], default="complex64")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="torch CPU threads for the run (default: torch's choice, one per core)")
    p.add_argument("--min-run-time", type=_positive_float, default=1.0,
                   help="seconds of repeated calls behind each timing (default 1.0)")
    args = p.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    avail = available_backends()
    cuda_device = torch.device("cuda") if torch.cuda.is_available() else None
    gpu = torch.cuda.get_device_name() if cuda_device else "none"
    print(f"torch {torch.__version__}; CUDA device: {gpu}")
    print("backends:")
    for name in BACKENDS:
        print(f"  {name:6} {'available' if avail[name] else 'unavailable: ' + unavailable_reason(name)}")
    chosen = [b for b in args.backends if avail[b]]
    device_of = {b: (cuda_device if b == "cuda" else torch.device("cpu")) for b in chosen}

    print("self-test vs complex128 reference (values and gradients; conj forms, real u):")
    failed = False
    for op in OPS:
        for b in chosen:
            for dtype in (torch.complex64, torch.complex128):
                ok, msg = self_test(op, b, dtype, device_of[b])
                failed |= not ok
                print(f"  {op:22} {b:6} {str(dtype).replace('torch.', ''):10} {msg}")
    if args.no_timing:
        return int(failed)

    dtype = getattr(torch, args.dtype)
    n = args.N // 2
    print(f"fwd+bwd median time, H={args.H}, N={args.N} ({n} stored pairs), L={args.L}, {args.dtype}:")
    print(f"  torch threads {torch.get_num_threads()} ({os.cpu_count()} logical cores); "
          f"load average {_load()}")
    print(f"  {'op':22} {'backend':12} {'median':>10}    {'runs':>9}")
    for op in OPS:
        ref_ms = None
        for b in chosen + ["auto"]:
            device = device_of.get(b, cuda_device or torch.device("cpu"))
            inputs = [a.requires_grad_() for a in _inputs(op, args.H, n, args.L, dtype, device)]
            work = args.H * n * args.L * (2 if op == "cauchy" else 1)  # as the dispatcher counts
            name = b if b != "auto" else "auto=" + resolve_backend("auto", op, inputs[-1], work)
            grad = torch.randn_like(_call(op, inputs, args.L, b))
            m = measure(lambda: torch.autograd.grad(_call(op, inputs, args.L, b), inputs, grad),
                        args.min_run_time)
            ms = 1e3 * m.median
            ref_ms = ms if b == "ref" else ref_ms
            speed = f"  ({ref_ms / ms:.1f}x ref)" if ref_ms and b != "ref" else ""
            runs = f"{len(m.times)}x{m.number_per_run}"
            print(f"  {op:22} {name:12} {ms:10.3f} ms {runs:>9}{speed}")
    print(f"  (runs: blocks x calls per block; load average after timing {_load()})")
    return int(failed)


if __name__ == "__main__":
    raise SystemExit(main())
