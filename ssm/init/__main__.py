"""``python -m ssm.init``: build every init and print its spectrum and eigenvector conditioning.

For each HiPPO measure (arXiv 2008.07669) the NPLR form (arXiv 2111.00396) and its reconstruction
error; for each diagonal init (S4D arXiv 2206.11893, DSS 2203.14343, S5 2208.04933, PTD 2310.01698)
the range of its eigenvalues and the condition number of the basis C is mapped through.
``python -m ssm.init transfer`` compares transfer functions instead (:mod:`ssm.init.transfer_report`).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from .diag import DIAG_INITS, diag_init
from .dplr import nplr
from .hippo import MEASURES, hippo
from .ptd import kappa


def _cond(V: torch.Tensor | None) -> str:
    if V is None:
        return "1 (V = I)"
    # the full basis is [V, conj(V)] (per block for S5); its condition number is what matters
    return f"{kappa(torch.cat([V, V.conj()], dim=1)).item():.3g}"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["transfer"]:  # subcommand: transfer functions against HiPPO-LegS
        from .transfer_report import main as transfer_main

        return transfer_main(argv[1:])
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="python -m ssm.init transfer --help: transfer functions of every init against HiPPO-LegS",
    )
    parser.add_argument("-N", type=int, nargs="+", default=[16, 64], help="state sizes (even)")
    parser.add_argument("--blocks", type=int, default=4, help="S5 blocks shown for each init")
    args = parser.parse_args(argv)
    for N in args.N:
        print(f"== N = {N}")
        A, _ = hippo("legs", N)
        _, V = torch.linalg.eig(A)
        print(f"HiPPO-LegS diagonalized directly: kappa(V) = {kappa(V).item():.3e}")
        print(f"{'measure':8s} {'rank':>4s} {'Re(Lambda)':>22s} {'Im(Lambda)':>22s} {'rel. err A':>10s}")
        for m in MEASURES:
            Lam, P, B, V = nplr(m, N)
            p = 2 * (V @ P.T).real
            A_rec = 2 * (V @ torch.diag(Lam) @ V.conj().T).real - p @ p.T
            A_ref = hippo(m, N)[0]
            err = ((A_rec - A_ref).norm() / A_ref.norm()).item()
            print(
                f"{m:8s} {P.shape[0]:4d} [{Lam.real.min():9.3g}, {Lam.real.max():9.3g}] "
                f"[{Lam.imag.min():9.3g}, {Lam.imag.max():9.3g}] {err:10.2e}"
            )
        print(f"{'init':10s} {'Re(Lambda)':>22s} {'Im(Lambda)':>22s} {'kappa(V)':>12s} {'time':>7s}")
        for name in DIAG_INITS:
            for blocks in (1, args.blocks):
                if blocks > 1 and N % (2 * blocks):
                    continue
                t = time.perf_counter()
                Lam, B, V = diag_init(name, N, blocks=blocks)
                dt = time.perf_counter() - t
                label = name if blocks == 1 else f"{name}/J={blocks}"
                print(
                    f"{label:10s} [{Lam.real.min():9.3g}, {Lam.real.max():9.3g}] "
                    f"[{Lam.imag.min():9.3g}, {Lam.imag.max():9.3g}] {_cond(V):>12s} {dt:6.2f}s"
                )


if __name__ == "__main__":
    main()
