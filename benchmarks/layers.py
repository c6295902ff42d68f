"""Benchmark of the SSM layers as users insert them (S4 arXiv 2111.00396, DSS 2203.14343,
S4D 2206.11893, S5 2208.04933).

For each family at batch B, d_model H, state N (S5: state N too) and length L it reports the median
forward+backward time and the extra peak memory of one forward+backward of
``GLU(Linear(H, 2H)(GELU(SSM(x))))``, the same for the GELU + Linear + GLU part alone (the floor no
SSM can beat), and the step-mode generation speed-up: the time per token of ``layer.step`` against
recomputing the convolution over the whole prefix at the largest L (what generation costs
without a recurrent mode). Correctness (conv == step) is checked once per family before timing.

    PYTHONPATH=. python benchmarks/layers.py                         # B=8 H=256 N=64, L 1024 4096 16384
    PYTHONPATH=. python benchmarks/layers.py --L 1024 --families s4d s5 --csv out.csv
"""

from __future__ import annotations

import argparse
import csv
import functools
import multiprocessing
import platform
from dataclasses import asdict, dataclass

import torch
from torch import nn

import ssm
from benchmarks._timing import median_seconds, peak_memory_bytes, pin_malloc_to_mmap

FAMILIES = {
    "s4": lambda H, N: ssm.S4(H, N, init="legs"),
    "s4d": lambda H, N: ssm.S4D(H, N, init="inv"),
    "dss": lambda H, N: ssm.DSS(H, N, variant="exp"),
    "s5": lambda H, N: ssm.S5(H, N, blocks=8),
}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class Config:
    family: str
    batch: int
    H: int
    N: int
    L: int
    dtype: str
    device: str = "cpu"


@dataclass
class Result:
    family: str
    L: int
    fwdbwd_ms: float
    floor_ms: float
    peak_mb: float | None
    step_us_per_token: float | None = None
    recompute_ms: float | None = None
    speedup: float | None = None


class Inserted(nn.Module):
    """SSM + GELU + Linear(H, 2H) + GLU: the layer as a block uses it (norm and residual aside)."""

    def __init__(self, layer: nn.Module, H: int) -> None:
        super().__init__()
        self.layer, self.proj = layer, nn.Linear(H, 2 * H)

    def forward(self, x: torch.Tensor, ssm_on: bool = True) -> torch.Tensor:
        z = self.layer(x) if ssm_on else x
        return nn.functional.glu(self.proj(nn.functional.gelu(z)), dim=-1)


def get_configs(args) -> list[Config]:
    return [Config(f, args.batch, args.H, args.N, L, args.dtype, args.device)
            for f in args.families for L in args.L]


def check_once(family: str, dtype: torch.dtype, device: str = "cpu") -> float:
    """Relative difference of conv mode and step mode on a small problem."""
    layer = FAMILIES[family](4, 16).to(device, dtype).eval()
    x = torch.randn(2, 33, 4, dtype=dtype, device=device)
    with torch.no_grad():
        y = layer(x)
        s, ys = layer.default_state(2), []
        for t in range(33):
            y_t, s = layer.step(x[:, t], s)
            ys.append(y_t)
    return ((torch.stack(ys, 1) - y).abs().max() / y.abs().max()).item()


def _setup(cfg: Config):
    dtype = DTYPES[cfg.dtype]
    torch.manual_seed(0)
    model = Inserted(FAMILIES[cfg.family](cfg.H, cfg.N), cfg.H).to(cfg.device, dtype)
    x = torch.randn(cfg.batch, cfg.L, cfg.H, dtype=dtype, device=cfg.device, requires_grad=True)

    def fwdbwd(ssm_on: bool = True) -> None:
        model(x, ssm_on).sum().backward()
        x.grad = None
        model.zero_grad(set_to_none=True)

    return model, x, fwdbwd


def run(cfg: Config, min_run_time: float, with_step: bool) -> Result:
    """Times (the allocator left at its defaults: see ``peak_memory``)."""
    dtype = DTYPES[cfg.dtype]
    model, x, fwdbwd = _setup(cfg)
    t = median_seconds(fwdbwd, min_run_time)
    floor = median_seconds(functools.partial(fwdbwd, False), min_run_time)
    res = Result(cfg.family, cfg.L, 1e3 * t, 1e3 * floor, None)
    if with_step:
        layer = model.layer.eval()
        x_t = torch.randn(cfg.batch, cfg.H, dtype=dtype, device=cfg.device)
        with torch.no_grad():
            state = layer.default_state(cfg.batch)
            layer.step(x_t, state)  # fills the step cache

            def steps() -> None:
                s = state
                for _ in range(32):
                    _, s = layer.step(x_t, s)

            step_s = median_seconds(steps, min_run_time) / 32
            prefix = x.detach()
            recompute_s = median_seconds(lambda: layer(prefix), min_run_time)
        res.step_us_per_token, res.recompute_ms = 1e6 * step_s, 1e3 * recompute_s
        res.speedup = recompute_s / step_s
    return res


def _measure_peak_mb(cfg: Config) -> float | None:
    _, x, fwdbwd = _setup(cfg)
    fwdbwd()
    peak = peak_memory_bytes(fwdbwd, x.device)
    return None if peak is None else peak / 2**20


def _memory_worker(cfg: Config) -> float | None:
    pin_malloc_to_mmap()
    torch.set_num_threads(1)
    return _measure_peak_mb(cfg)


def peak_memory(cfg: Config) -> float | None:
    """Extra peak RSS (MB) of one forward+backward, measured in a fresh process: the RSS method needs
    ``pin_malloc_to_mmap()`` before the heap grows, and pinning makes every allocation >= 64 KiB an
    mmap, which would slow the timed small-tensor code (``step``) about 3x in this process. On CUDA
    the allocator's own peak counter is exact, so it is read in this process."""
    if cfg.device != "cpu":
        return _measure_peak_mb(cfg)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_memory_worker, (cfg,))


def profile(cfg: Config, rows: int = 15) -> None:
    """Print the ops that take the most time in one forward+backward (after a warm-up call)."""
    _, _, fwdbwd = _setup(cfg)
    fwdbwd()
    acts = [torch.profiler.ProfilerActivity.CPU]
    if cfg.device != "cpu":
        acts.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=acts) as prof:
        fwdbwd()
        if cfg.device != "cpu":
            torch.cuda.synchronize()
    key = "self_cuda_time_total" if cfg.device != "cpu" else "self_cpu_time_total"
    print(f"## {cfg.family} L={cfg.L} B={cfg.batch} H={cfg.H} N={cfg.N} on {cfg.device}")
    print(prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60))


def print_table(results: list[Result], header: str) -> None:
    print(header)
    print("| family | L | fwd+bwd ms | floor ms (GELU+Linear+GLU) | peak MB | step us/token | "
          "recompute ms | step speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    for r in results:
        print(f"| {r.family} | {r.L} | {r.fwdbwd_ms:.0f} | {r.floor_ms:.0f} | {fmt(r.peak_mb, '.0f')} | "
              f"{fmt(r.step_us_per_token, '.0f')} | {fmt(r.recompute_ms, '.0f')} | {fmt(r.speedup, '.0f')} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--L", nargs="+", type=int, default=[1024, 4096, 16384])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--H", type=int, default=256)
    p.add_argument("--N", type=int, default=64)
    p.add_argument("--dtype", default="float32", choices=list(DTYPES))
    p.add_argument("--step-L", type=int, default=4096, help="L at which step mode is compared")
    p.add_argument("--min-run-time", type=float, default=1.0)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--profile", action="store_true",
                   help="print torch.profiler's top ops of one forward+backward per family at the first L, then stop")
    p.add_argument("--csv", default=None)
    args = p.parse_args()
    for f in args.families:
        err = check_once(f, DTYPES[args.dtype], args.device)
        print(f"check {f}: conv vs step rel err {err:.1e}")
        if err > (1e-4 if args.dtype == "float32" else 1e-8):
            raise SystemExit(f"{f}: conv and step modes disagree ({err:.1e}); not timing a wrong layer")
    configs = get_configs(args)
    if args.profile:
        for c in configs[:: len(args.L)]:
            profile(c)
        return
    results = [run(c, args.min_run_time, c.L == args.step_L) for c in configs]
    for c, r in zip(configs, results):
        r.peak_mb = peak_memory(c)
    where = (torch.cuda.get_device_name(args.device) if args.device.startswith("cuda")
             else f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    header = (f"B={args.batch} H={args.H} N={args.N} {args.dtype}; torch {torch.__version__}, {where}; "
              f"kernel backends available: {ssm.kernels.available_backends()}")
    print_table(results, header)
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(asdict(results[0])))
            w.writeheader()
            w.writerows(asdict(r) for r in results)


if __name__ == "__main__":
    main()
