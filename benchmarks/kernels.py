"""Benchmark of the Cauchy / Vandermonde kernel backends (S4 arXiv 2111.00396, S4D arXiv 2206.11893).

For each op (``cauchy`` conj form, ``vandermonde`` conj form, ``vandermonde_transpose``) and each
backend (ref, torch, keops, cuda, and what ``auto`` picks) it reports forward and forward+backward
median time, the extra peak memory of one forward+backward, achieved GFLOP/s (explicit flop model
below) and the relative error against the complex128 reference (checked once on a small slice).

Shapes: ``N`` is the real state size; the conj forms store N/2 complex modes (N=64 -> 32 stored
pairs), as S4/S4D do. cauchy: v, w (H, N/2), z (L,); vandermonde: v, x (H, N/2); transpose: u real
(batch, H, L), v, x (H, N/2).

    python -m benchmarks.kernels                  # from the repo root: H=256, N=64, L in 1024, 4096, 16384
    python -m benchmarks.kernels --L 256 --H 16 --json out.json --csv out.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import traceback
from dataclasses import asdict, dataclass

import torch

from benchmarks._timing import median_seconds, peak_memory_bytes, pin_malloc_to_mmap
from ssm.kernels import available_backends, cauchy, vandermonde, vandermonde_transpose
from ssm.kernels.backend import resolve_backend

OPS = ("cauchy", "vandermonde", "vandermonde_transpose")
BACKENDS = ("ref", "torch", "keops", "cuda", "auto")
DTYPES = {"complex64": torch.complex64, "complex128": torch.complex128}

# Real flops per (stored mode, position) pair; exp, cos, sin and a division count 1 each.
#   cauchy fwd, per conjugate PAIR (two poles): per pole d = z - w (2), |d|^2 (3), v conj(d) (6),
#     scale (3), accumulate (2) = 16          -> 32;  bwd: g conj(r) and g conj(r)^2 (+ r) -> 2 x 32
#   vandermonde conj fwd: a l, b l (2), exp/cos/sin (3), e cos, e sin (2), Re(v e) (3), acc (1) = 11
#     bwd (analysis s, t): powers (7) + two complex MACs with a real g (2 x 4) + l g (1)         = 16
#   transpose fwd (analysis s with a real u): powers (7) + one complex MAC with a real u (4)       = 11
#     bwd: analysis s, t for grad v, x (16, as above) + real synthesis for grad u (11)           = 27
# Gradients are taken w.r.t. every input the layers train or feed (cauchy: v and w, not the fixed
# points z; vandermonde: v, x; transpose: u, v, x), and the flop counts above cover exactly those.
FLOPS = {"cauchy": (32, 64), "vandermonde": (11, 16), "vandermonde_transpose": (11, 27)}


@dataclass(frozen=True)
class Config:
    op: str
    batch: int
    H: int
    N: int
    L: int
    dtype: str


@dataclass
class Result:
    op: str
    backend: str
    L: int
    chosen: str  # the concrete backend ("auto" resolves to one)
    fwd_ms: float | None
    fwdbwd_ms: float | None
    peak_mb: float | None
    gflops: float | None
    rel_err: float | None
    peak_frac: float | None = None  # GFLOP/s as a fraction of the device's FP32 peak (CUDA only)
    note: str = ""


def get_configs(args: argparse.Namespace) -> list[Config]:
    return [Config(op, args.batch, args.H, args.N, L, args.dtype) for op in args.ops for L in args.L]


def make_inputs(cfg: Config, dtype: torch.dtype, device: torch.device, H: int | None = None):
    """Realistic S4/S4D-like inputs: poles dt * Lambda with S4D-Lin Lambda, log-uniform dt."""
    gen = torch.Generator().manual_seed(0)
    H = cfg.H if H is None else H
    n = cfg.N // 2
    rdt = torch.float64
    lam = torch.complex(torch.full((n,), -0.5, dtype=rdt), math.pi * torch.arange(n, dtype=rdt))
    dt = torch.exp(torch.empty(H, 1, dtype=rdt).uniform_(math.log(1e-3), math.log(1e-1), generator=gen))
    poles = (dt * lam).to(dtype)
    v = torch.randn(H, n, dtype=dtype, generator=gen)
    if cfg.op == "cauchy":
        omega = torch.exp(-2j * math.pi * (torch.arange(cfg.L, dtype=rdt) + 0.5) / cfg.L)
        z = (2 * (1 - omega) / (1 + omega)).to(dtype)
        args = [v, z, poles]
    elif cfg.op == "vandermonde":
        args = [v, poles]
    else:
        u = torch.randn(cfg.batch, H, cfg.L, dtype=poles.real.dtype, generator=gen)
        args = [u, v, poles]
    return [a.to(device) for a in args]


def call(op: str, args, L: int, backend: str):
    if op == "cauchy":
        return cauchy(args[0], args[1], args[2], conj=True, backend=backend)
    if op == "vandermonde":
        return vandermonde(args[0], args[1], L, conj=True, backend=backend)
    return vandermonde_transpose(args[0], args[1], args[2], L, backend=backend)


def _rel_err(cfg: Config, backend: str, device: torch.device) -> float:
    """Relative max error vs the complex128 reference, on an 8-channel slice of the problem."""
    small_args = make_inputs(cfg, DTYPES[cfg.dtype], device, H=8)
    exact = call(cfg.op, [a.cpu().to(torch.complex128 if a.is_complex() else torch.float64)
                          for a in small_args], cfg.L, "ref")
    got = call(cfg.op, small_args, cfg.L, backend).cpu().to(exact.dtype)
    return ((got - exact).abs().max() / exact.abs().max()).item()


def run(cfg: Config, backend: str, device: torch.device, ref_max_gb: float, min_time: float) -> Result:
    dtype = DTYPES[cfg.dtype]
    res = Result(cfg.op, backend, cfg.L, backend, None, None, None, None, None)
    if backend != "auto" and not available_backends()[backend]:
        res.note = "n/a (unavailable)"
        return res
    args = make_inputs(cfg, dtype, device)
    work = cfg.batch * cfg.H * cfg.N // 2 * cfg.L  # (stored mode, position) pairs
    poles_work = work * 2 if cfg.op == "cauchy" else work  # what the dispatcher counts (conj: 2 poles)
    res.chosen = resolve_backend(backend, cfg.op, args[-1], poles_work) if backend == "auto" else backend
    itemsize = torch.empty((), dtype=dtype).element_size()
    ref_bytes = 6 * work * itemsize * (2 if cfg.op == "cauchy" else 1)  # ~6 live (H, N, L) temporaries
    if res.chosen == "ref" and ref_bytes > ref_max_gb * 2**30:
        res.note = f"skipped: ref would need ~{ref_bytes / 2**30:.0f} GB (--ref-max-gb {ref_max_gb})"
        return res
    res.rel_err = _rel_err(cfg, backend, device)
    inputs = [a if (cfg.op == "cauchy" and i == 1) else a.requires_grad_() for i, a in enumerate(args)]
    wrt = [a for a in inputs if a.requires_grad]
    grad_out = torch.randn_like(call(cfg.op, inputs, cfg.L, backend))

    def fwd():
        with torch.no_grad():
            return call(cfg.op, inputs, cfg.L, backend)

    def fwdbwd():
        out = call(cfg.op, inputs, cfg.L, backend)
        return torch.autograd.grad(out, wrt, grad_out)

    fwd_s, both_s = median_seconds(fwd, min_time), median_seconds(fwdbwd, min_time)
    res.fwd_ms, res.fwdbwd_ms = 1e3 * fwd_s, 1e3 * both_s
    peak = peak_memory_bytes(fwdbwd, device)
    res.peak_mb = None if peak is None else peak / 2**20
    f_fwd, f_bwd = FLOPS[cfg.op]
    res.gflops = work * (f_fwd + f_bwd) / both_s / 1e9
    return res


# FP32 lanes per multiprocessor (non-tensor-core FMA units) by compute capability major.minor.
_FP32_LANES = {(7, 0): 64, (7, 5): 64, (8, 0): 64, (8, 6): 128, (8, 7): 128, (8, 9): 128, (9, 0): 128,
               (10, 0): 128, (12, 0): 128}


def fp32_peak_gflops(device: torch.device) -> tuple[float | None, str]:
    """The device's FP32 (non-tensor) peak, 2 flops per FMA: SMs x lanes x 2 x max SM clock."""
    if device.type != "cuda":
        return None, "no FP32 peak on the CPU"
    prop = torch.cuda.get_device_properties(device)
    lanes = _FP32_LANES.get((prop.major, prop.minor))
    if lanes is None:
        return None, f"unknown FP32 lanes per SM for compute capability {prop.major}.{prop.minor}"
    try:
        idx = device.index if device.index is not None else torch.cuda.current_device()
        out = subprocess.run(["nvidia-smi", "-i", str(idx), "--query-gpu=clocks.max.sm",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, check=True)
        mhz = float(out.stdout.strip().splitlines()[0])
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError) as err:
        return None, f"max SM clock unknown (nvidia-smi: {err})"
    peak = prop.multi_processor_count * lanes * 2 * mhz / 1e3
    return peak, (f"{prop.name}: {prop.multi_processor_count} SMs x {lanes} FP32 lanes x 2 x {mhz:.0f} MHz "
                  f"= {peak / 1e3:.1f} TFLOP/s")


def _fmt(x: float | None, spec: str) -> str:
    return format("n/a", ">" + spec.split(".")[0]) if x is None else format(x, spec)


def print_table(results: list[Result]) -> None:
    ref_time = {(r.op, r.L): r.fwdbwd_ms for r in results if r.backend == "ref"}
    head = f"{'op':22} {'L':>6} {'backend':12} {'fwd ms':>9} {'fwd+bwd ms':>11} {'speedup':>8} "
    print(head + f"{'peak MB':>9} {'GFLOP/s':>8} {'% FP32':>7} {'rel err':>9}  note")
    for r in results:
        base = ref_time.get((r.op, r.L))
        speed = None if base is None or r.fwdbwd_ms is None else base / r.fwdbwd_ms
        name = r.backend if r.backend != "auto" else f"auto={r.chosen}"
        print(f"{r.op:22} {r.L:>6} {name:12} {_fmt(r.fwd_ms, '9.1f')} {_fmt(r.fwdbwd_ms, '11.1f')} "
              f"{_fmt(speed, '8.1f')} {_fmt(r.peak_mb, '9.1f')} {_fmt(r.gflops, '8.2f')} "
              f"{_fmt(None if r.peak_frac is None else 100 * r.peak_frac, '7.1f')} "
              f"{_fmt(r.rel_err, '9.1e')}  {r.note}")


def main(argv: list[str] | None = None) -> list[Result]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="complex64")
    p.add_argument("--ops", nargs="+", choices=OPS, default=list(OPS))
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    p.add_argument("--H", type=int, default=256)
    p.add_argument("--N", type=int, default=64, help="real state size; conj forms store N/2 modes")
    p.add_argument("--L", type=int, nargs="+", default=[1024, 4096, 16384])
    p.add_argument("--batch", type=int, default=1, help="batch of u for vandermonde_transpose")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--ref-max-gb", type=float, default=4.0, help="skip ref above this estimated memory")
    p.add_argument("--min-time", type=float, default=1.0, help="seconds of timing per measurement")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--csv", help="write the results to this CSV file")
    p.add_argument("--json", help="write the results to this JSON file")
    args = p.parse_args(argv)
    pin_malloc_to_mmap()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    peak, peak_note = fp32_peak_gflops(device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, device {device} ({where}), threads {torch.get_num_threads()}, "
          f"dtype {args.dtype}, backends here: {available_backends()}")
    if device.type == "cuda":
        print(f"FP32 peak: {peak_note}")
    results = []
    for cfg in get_configs(args):
        for b in args.backends:
            try:
                res = run(cfg, b, device, args.ref_max_gb, args.min_time)
            except Exception as err:  # reported in the table and on stderr; the other backends still run
                traceback.print_exc()
                res = Result(cfg.op, b, cfg.L, b, None, None, None, None, None,
                             note=f"error: {type(err).__name__}: {str(err).splitlines()[0][:120]}")
            if peak is not None and res.gflops is not None:
                res.peak_frac = res.gflops / peak
            results.append(res)
            print(f"# done {cfg.op} L={cfg.L} {b}", file=sys.stderr, flush=True)
    print_table(results)
    rows = [asdict(r) for r in results]
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "device": str(device), "device_name": where,
                       "fp32_peak_gflops": peak, "fp32_peak_note": peak_note, "results": rows}, f, indent=1)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return results


if __name__ == "__main__":
    main()
