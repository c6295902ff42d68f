"""How far back an S5 layer's initial kernel reaches, for each init and timestep range.

An S5 layer at initialization is the linear time-invariant map ``y_k = sum_l K_l u_{k-l}`` (plus
``D u_k``) with the (H, H) kernel ``K_l = 2 Re(C~ diag(Lambda_bar^l) B_bar~)``. This script measures
the kernel's energy ``e_l = ||K_l||_F^2`` over the lags ``l < L`` and reports where it lies: the lags
within which half and 90 % of it sit, and the fractions beyond lag 100 and 400. Averaged over a few
seeds (the random B, C and timesteps). Float64 throughout; no data and no training.

Why: S5 (HiPPO-N blocks, every eigenvalue with real part -1/2) and S5-PTD (blocks of the perturbed
HiPPO-LegS, real parts from about -0.65 to -51 at a block of 16) share the timestep range of S5's
paper, 0.001 to 0.1; the PTD spectrum decays much faster, so the same range gives S5-PTD a shorter
memory at initialization. Scaling the timestep range scales ``Lambda dt`` and so the memory.

    python -m benchmarks.init_memory                       # the default table
    python -m benchmarks.init_memory --ranges 0.001:0.1 0.0005:0.05
"""

from __future__ import annotations

import argparse

import torch

from ssm.layers.s5 import S5


def kernel_energy(init: str, dt_min: float, dt_max: float, *, d_model: int, d_state: int, blocks: int,
                  length: int, seed: int) -> torch.Tensor:
    """``e_l = ||K_l||_F^2`` for l < length (float64) of a freshly initialized S5 layer."""
    torch.manual_seed(seed)
    layer = S5(d_model, d_state=d_state, blocks=blocks, init=init, dt_min=dt_min, dt_max=dt_max).double()
    with torch.no_grad():
        lam_bar, B_bar = layer.discrete()  # (P/2,), (P/2, H)
        C = layer.C_tilde[0]  # (H, P/2)
        powers = lam_bar.unsqueeze(0) ** torch.arange(length, dtype=torch.float64).unsqueeze(1)  # (L, P/2)
        K = 2 * torch.einsum("hp,lp,pk->lhk", C, powers, B_bar).real
    return K.square().sum((1, 2))


def summary(e: torch.Tensor) -> dict[str, float]:
    c = e.cumsum(0) / e.sum()
    return {
        "energy": float(e.sum()),
        "lag_50": int((c < 0.5).sum()),
        "lag_90": int((c < 0.9).sum()),
        "beyond_100": float(e[100:].sum() / e.sum()),
        "beyond_400": float(e[400:].sum() / e.sum()),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ranges", nargs="+", default=["0.001:0.1", "0.0005:0.05", "0.001:0.01", "0.0001:0.01"],
                   help="S5-PTD timestep ranges dt_min:dt_max (S5 always uses 0.001:0.1)")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--d-state", type=int, default=128)
    p.add_argument("--blocks", type=int, default=8)
    p.add_argument("--length", type=int, default=784)
    p.add_argument("--seeds", type=int, default=3)
    a = p.parse_args(argv)
    kw = dict(d_model=a.d_model, d_state=a.d_state, blocks=a.blocks, length=a.length)

    def avg(init: str, lo: float, hi: float) -> torch.Tensor:
        return sum(kernel_energy(init, lo, hi, seed=s, **kw) for s in range(a.seeds)) / a.seeds

    rows = [("S5 (legs)", "0.001:0.1", avg("legs", 1e-3, 1e-1))]
    for r in a.ranges:
        lo, hi = (float(x) for x in r.split(":"))
        rows.append(("S5-PTD", r, avg("ptd", lo, hi)))
    print(f"H {a.d_model}, P {a.d_state} in {a.blocks} blocks, L {a.length}, mean over {a.seeds} seeds")
    print("| init | dt range | kernel energy | half within lag | 90 % within lag | beyond 100 | beyond 400 |")
    print("|---|---|---|---|---|---|---|")
    for name, r, e in rows:
        s = summary(e)
        print(f"| {name} | {r} | {s['energy']:.3f} | {s['lag_50']} | {s['lag_90']} | "
              f"{s['beyond_100']:.3f} | {s['beyond_400']:.4f} |")


if __name__ == "__main__":
    main()
