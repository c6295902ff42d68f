"""PTD: perturb-then-diagonalize initialization of HiPPO-LegS.

Yu, Mahoney, Erichson, "Robustifying State-space Models for Long Sequences via Approximate
Diagonalization" (arXiv 2310.01698, Section 4). HiPPO-LegS ``A_H`` is diagonalizable only with an
eigenvector matrix of astronomical condition number (measured: 8e10 at N = 16, 6e18 at N = 32), so
the diagonal system it defines is useless numerically. PTD diagonalizes ``A_H + E`` for a small real
perturbation E chosen so that the eigenvector matrix V is well conditioned; the transfer function of
the result stays uniformly close to HiPPO's (the paper bounds the error by about
``(2 ln N + 4) ||E||``), unlike S4D-LegS's, which drops the whole low-rank term.

Objective. The paper states ``min_E kappa(V) + gamma ||E||``; we use the form of the authors' code,
``kappa(V)^2 + lam ||E||_F``, with the norm made relative so that one weight serves every size::

    minimize_E  kappa(V(A_H + E))^2 + lam * ||E||_F / ||A_H||_F
                + w * sum_i relu(Re(lambda_i) + c + margin)^2 + w * sum_i relu(delta - |Im(lambda_i)|)^2

over a dense real N x N matrix E, by Adam through ``torch.linalg.eig`` in complex128 (one thread,
for bit-reproducible LAPACK results). V has the unit-norm eigenvector columns that ``eig`` returns.
The last two terms keep the constraints: every eigenvalue must have ``Re <= -c`` (c = 0.1,
``MAX_REAL_PART``) and be non-real, so that it pairs with its conjugate and the conjugate half can
be stored. They are enforced, not only encouraged: a step that leaves the feasible set is undone and
the step size halved (it recovers by 5% per accepted step), and the final spectrum is checked again
(``ptd_eig`` raises if a constraint fails).

Parameterization and start, both deterministic (no random numbers): ``E = D X D`` with
``D = diag(p)``, ``p_n = sqrt(n + 1/2)`` (the size profile of A_H's entries, so Adam's per-entry
steps are relative), and ``X_0 = t_0`` everywhere, i.e. ``E_0 = t_0 p p^T``: a fraction t_0 of the
way towards A_H's normal part ``A_H + p p^T``. That already makes every eigenvalue non-real (for
N >= 4 at t_0 = 0.1; a fixed ladder of larger t_0 serves N = 2). The conditioning term keeps
eigenvalues apart (a collision makes kappa infinite), so none turns real during the descent. The
iteration count is fixed (cosine-decayed step size) and the best feasible iterate is kept.

Results: shipped for N = 16, 32, 64, 128, 256 in ``ssm/init/data/ptd_<N>.npz`` (built with
``python -m ssm.init.ptd --build N``); other even sizes up to ``MAX_ON_FIRST_USE`` (64) are computed
on first use (seconds) and cached under ``$SSM_CACHE_DIR`` or ``$XDG_CACHE_HOME/ssm`` (default
``~/.cache/ssm``); larger ones are built offline into that folder (``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .hippo import check_size, hippo, rank_correction

__all__ = ["PTDConfig", "optimize_perturbation", "load_perturbation", "ptd_eig", "ptd_init", "kappa"]

MAX_REAL_PART = -0.1  # every eigenvalue of A_H + E has Re <= MAX_REAL_PART (c = 0.1)
MIN_IMAG_PART = 1e-3  # |Im| of every eigenvalue at least this (no real, unpaired modes)
MAX_ON_FIRST_USE = 64  # larger sizes take minutes: shipped or built offline
DATA_DIR = Path(__file__).parent / "data"
_T_LADDER = (0.15, 0.2, 0.3, 0.5, 0.7, 1.0)


@dataclass(frozen=True)
class PTDConfig:
    """Optimizer settings (part of the cache key)."""

    iters: int = 600
    lr: float = 3e-2
    lam: float = 1000.0
    t0: float = 0.1
    penalty: float = 1e4
    delta: float = 0.2  # |Im| below this is penalized
    margin: float = 0.2  # Re above -(c + margin) is penalized
    c: float = -MAX_REAL_PART


def kappa(V: Tensor) -> Tensor:
    """2-norm condition number ``sigma_max / sigma_min`` of V."""
    s = torch.linalg.svdvals(V)
    return s[..., 0] / s[..., -1]


@contextlib.contextmanager
def _single_thread():
    # LAPACK/BLAS results can differ in the last bits with the thread count; pin it for determinism
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _loss(A: Tensor, E: Tensor, nA: float, cfg: PTDConfig) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    lam_, V = torch.linalg.eig(A + E)
    k = kappa(V)
    ratio = E.norm() / nA
    pen = torch.relu(lam_.real + cfg.c + cfg.margin).square().sum()
    pen = pen + torch.relu(cfg.delta - lam_.imag.abs()).square().sum()
    return k.square() + cfg.lam * ratio + cfg.penalty * pen, k, ratio, lam_


def constraints_ok(lam_: Tensor) -> bool:
    """All eigenvalues non-real (|Im| >= MIN_IMAG_PART) with Re <= MAX_REAL_PART, half with Im > 0."""
    return bool(
        (lam_.real <= MAX_REAL_PART).all()
        and (lam_.imag.abs() >= MIN_IMAG_PART).all()
        and int((lam_.imag > 0).sum()) * 2 == lam_.numel()
    )


def default_config(N: int) -> PTDConfig:
    """Settings used for size N: 600 Adam steps up to N = 64, 3000 above (slower convergence;
    N = 256 reaches kappa 9.85 after 1500 steps, 8.34 after 3000)."""
    return PTDConfig() if N <= 64 else PTDConfig(iters=3000)


def optimize_perturbation(
    N: int,
    cfg: PTDConfig | None = None,
    log_every: int = 0,
    on_best: Callable[[Tensor, int], None] | None = None,
) -> Tensor:
    """Optimize the PTD perturbation E (N, N) float64 for HiPPO-LegS of size N (see module docstring).

    ``cfg`` defaults to :func:`default_config`. ``on_best(E, it)`` is called with each new best
    feasible iterate every ``log_every`` steps (checkpointing long builds). Raises RuntimeError if no
    iterate satisfies the eigenvalue constraints.
    """
    check_size(N, "N", even=True)
    cfg = default_config(N) if cfg is None else cfg
    last_saved = None
    with _single_thread():
        A, _ = hippo("legs", N)
        p = rank_correction("legs", N)[0]
        nA = A.norm().item()
        # E = D X D with D = diag(p): Adam's per-entry steps then follow the size of A_H's entries
        # (|A_H[n, k]| ~ 2 p_n p_k), and the start t0 p p^T is X = t0 (all entries)
        scale = torch.outer(p, p)
        # smallest start on a fixed ladder whose spectrum is feasible (t0 suffices from N = 4 on;
        # N = 2 needs t > 0.134 for its two real eigenvalues to meet)
        for t in [cfg.t0] + [x for x in _T_LADDER if x > cfg.t0]:
            if constraints_ok(torch.linalg.eigvals(A + t * scale)):
                break
        X = torch.full((N, N), t, dtype=torch.float64).requires_grad_()
        opt = torch.optim.Adam([X], lr=cfg.lr)
        best, best_score, X_prev, shrink = None, math.inf, None, 1.0
        for it in range(cfg.iters + 1):
            opt.zero_grad()
            loss, k, ratio, lam_ = _loss(A, scale * X, nA, cfg)
            if not constraints_ok(lam_.detach()):
                if X_prev is None:
                    raise RuntimeError(f"PTD start for N={N} violates the eigenvalue constraints")
                # safeguard: a step left the feasible set (an eigenvalue pair collided on the real
                # axis or crossed Re = -c); go back and continue with half the step size
                with torch.no_grad():
                    X.copy_(X_prev)
                shrink *= 0.5
                continue
            score = k.item() ** 2 + cfg.lam * ratio.item()
            if score < best_score:
                best, best_score = (scale * X).detach().clone(), score
            if log_every and it % log_every == 0:
                if on_best is not None and best is not last_saved:
                    on_best(best, it)
                    last_saved = best
                print(
                    f"N={N} it={it} loss={loss.item():.4g} kappa={k.item():.4g} ratio={ratio.item():.4f} "
                    f"maxRe={lam_.real.max().item():.3f} min|Im|={lam_.imag.abs().min().item():.3g} "
                    f"shrink={shrink:g}",
                    flush=True,
                )
            if it == cfg.iters:
                break
            X_prev = X.detach().clone()
            shrink = min(1.0, shrink * 1.05)
            loss.backward()
            for group in opt.param_groups:  # cosine decay to lr/20, times the safeguard's shrink
                group["lr"] = shrink * cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * it / cfg.iters)))
            opt.step()
    if best is None:
        raise RuntimeError(
            f"PTD optimization for N={N} found no perturbation meeting the eigenvalue constraints"
        )
    return best


CACHE_VERSION = 1


def _cache_dir() -> Path:
    if os.environ.get("SSM_CACHE_DIR"):
        return Path(os.environ["SSM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ssm"


def _cache_name(N: int, cfg: PTDConfig) -> str:
    # The format version is part of the key so that results of an older optimizer are never reused.
    key = f"v{CACHE_VERSION}_" + "_".join(f"{k}={v}" for k, v in asdict(cfg).items())
    return f"ptd_{N}_{hashlib.sha256(key.encode()).hexdigest()[:12]}.npz"


def save_perturbation(path: Path, N: int, E: Tensor, cfg: PTDConfig) -> None:
    """Write E and its settings/metrics to a compressed .npz (atomically)."""
    lam_, V = torch.linalg.eig(hippo("legs", N)[0] + E)
    meta = {k: np.asarray(v) for k, v in asdict(cfg).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    with open(tmp, "wb") as f:
        np.savez_compressed(
            f, E=E.numpy(), N=np.asarray(N), kappa=np.asarray(kappa(V).item()),
            ratio=np.asarray((E.norm() / hippo("legs", N)[0].norm()).item()), **meta,
        )
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; shipped and cached files are plain data
    os.replace(tmp, path)


def load_perturbation(N: int, cfg: PTDConfig | None = None, compute: bool = True) -> Tensor:
    """The PTD perturbation E (N, N) float64.

    With ``cfg=None``: the shipped ``ssm/init/data/ptd_<N>.npz``, else an offline build placed in the
    cache folder (``python -m ssm.init.ptd --build N --out <cache>``), else the user cache of
    default-settings results, computed there on first use for ``N <= MAX_ON_FIRST_USE`` (seconds).
    An explicit ``cfg`` always uses (or fills) the user cache keyed by those settings. Larger sizes
    that are neither shipped nor built raise ValueError with the build command.
    """
    check_size(N, "N", even=True)
    built = [DATA_DIR / f"ptd_{N}.npz", _cache_dir() / f"ptd_{N}.npz"] if cfg is None else []
    found = [c for c in built if c.exists()]
    if found:
        path = found[0]
    else:
        cfg = default_config(N) if cfg is None else cfg
        path = _cache_dir() / _cache_name(N, cfg)
        if not path.exists():
            if not compute or N > MAX_ON_FIRST_USE:
                raise ValueError(
                    f"no PTD perturbation for N={N} is shipped or cached (looked for {path}); sizes "
                    f"above {MAX_ON_FIRST_USE} are built offline (minutes): "
                    f"python -m ssm.init.ptd --build {N} --out {_cache_dir()}"
                )
            save_perturbation(path, N, optimize_perturbation(N, cfg), cfg)
    with np.load(path) as data:
        E = torch.from_numpy(data["E"].astype(np.float64))
    if E.shape != (N, N):
        raise ValueError(f"PTD file {path} holds E of shape {tuple(E.shape)}, expected ({N}, {N})")
    return E


def ptd_eig(N: int, E: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Eigenvalues (N,) and unit-column eigenvectors (N, N) of ``A_H + E``, conjugate half first.

    The first N/2 entries have ``Im > 0`` (descending); the last N/2 are their conjugates, so
    ``V_full = [V, conj(V)]``. Raises ValueError if a constraint on the spectrum fails.
    """
    E = load_perturbation(N) if E is None else E
    with _single_thread():
        lam_, V = torch.linalg.eig(hippo("legs", N)[0] + E)
    if not constraints_ok(lam_):
        raise ValueError(
            f"PTD spectrum for N={N} violates its constraints: max Re {lam_.real.max().item():.3g} "
            f"(need <= {MAX_REAL_PART}), min |Im| {lam_.imag.abs().min().item():.3g} "
            f"(need >= {MIN_IMAG_PART})"
        )
    pos = torch.nonzero(lam_.imag > 0).squeeze(-1)
    pos = pos[torch.argsort(lam_.imag[pos], descending=True)]
    Lh, Vh = lam_[pos], V[:, pos]
    return torch.cat([Lh, Lh.conj()]), torch.cat([Vh, Vh.conj()], dim=1)


def ptd_init(N: int) -> tuple[Tensor, Tensor, Tensor]:
    """PTD diagonal init: ``Lambda`` (N/2,), ``B = (V_full^-1 B_H)[:N/2]`` (N/2,), ``V`` (N, N/2), complex128.

    The system ``(A_H + E, B_H, C)`` equals ``(diag(Lambda), B, C V)`` on the conjugate half with
    outputs ``2 Re(...)`` (for real inputs); V is not unitary, so map C by ``C~ = C V``.
    """
    lam_, Vf = ptd_eig(N)
    B_H = hippo("legs", N)[1].to(torch.complex128)
    Bt = torch.linalg.solve(Vf, B_H)
    h = N // 2
    return lam_[:h].clone(), Bt[:h].clone(), Vf[:, :h].clone()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build and ship PTD perturbations (HiPPO-LegS + E).")
    parser.add_argument("--build", type=int, nargs="+", required=True, help="state sizes N (even)")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder (default: package data)")
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--iters", type=int, default=None, help="override the default iteration count")
    parser.add_argument("--lr", type=float, default=None, help="override the default Adam step size")
    args = parser.parse_args(argv)
    for N in args.build:
        cfg = default_config(N)
        if args.iters is not None:
            cfg = replace(cfg, iters=args.iters)
        if args.lr is not None:
            cfg = replace(cfg, lr=args.lr)
        path = args.out / f"ptd_{N}.npz"
        ckpt = Path(tempfile.gettempdir()) / f"ptd_{N}_best.npz"

        def on_best(E: Tensor, it: int) -> None:
            save_perturbation(ckpt, N, E, cfg)

        E = optimize_perturbation(N, cfg, log_every=args.log_every, on_best=on_best)
        save_perturbation(path, N, E, cfg)
        lam_, V = ptd_eig(N, E)
        ratio = (E.norm() / hippo("legs", N)[0].norm()).item()
        print(
            f"N={N}: kappa(V)={kappa(V).item():.3f} ||E||/||A_H||={ratio:.4f} "
            f"max Re={lam_.real.max():.3f} -> {path}"
        )


if __name__ == "__main__":
    main()
