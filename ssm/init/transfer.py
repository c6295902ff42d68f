"""Transfer functions ``G(i omega) = C (i omega I - A)^{-1} B`` of every init, and HiPPO-LegS's for reference.

PTD (Yu, Mahoney, Erichson, arXiv 2310.01698, Sections 3-4) compares initializations through the
transfer function of the continuous-time single-input single-output system they define. A diagonal
system ``(Lambda, V^{-1} B, C V)`` has the same G as ``(A, B, C)`` exactly when V diagonalizes A, so

* S4 (DPLR, arXiv 2111.00396) reproduces its HiPPO measure exactly (up to ``b_clip``);
* S4-PTD and S5-PTD diagonalize ``A_H + E`` (:mod:`ssm.init.ptd`): G stays uniformly close to
  HiPPO-LegS's (the paper bounds the error by about ``(2 ln N + 4) ||E||``);
* S4D-LegS (arXiv 2206.11893) diagonalizes only the normal part ``S = A_H + p p^T`` with
  ``B~ = V^* B_H / 2``: its G agrees with HiPPO-LegS's at low frequency (that is what the 1/2 is
  for), tends to half of it as omega -> infinity, and has resonance spikes near the imaginary parts
  of its eigenvalues (``max Im Lambda = 325.43`` at N = 32, the study's noise frequency).

Conventions. Every system is stored in the conjugate-half form of the layers (N/2 modes, outputs
``2 Re``); for a real input its transfer function is::

    G(s) = sum_n C~_n B~_n / (s - Lambda_n) + conj(C~_n B~_n) / (s - conj(Lambda_n))

and S4's DPLR systems add the rank-r term ``- P P^*`` (both halves), evaluated by the Woodbury identity.
Evaluation is in float64/complex128 at ``s = i omega``.

C and B, drawn from ``torch.Generator().manual_seed(seed)`` in this order (B first where drawn),
with the distribution of the layer that uses the init (same law, not the same numbers: the layers draw
from the global generator):

* S4 (all measures), S4D-LegS, S4-PTD: ``C`` real standard normal (N,) in the original basis,
  ``C~ = C V``. This is the S4D layer's draw; S4's layer draws ``C~`` complex normal with
  ``E|C~_n|^2 = 1`` directly, which has the same law because its V is unitary (``C = 2 Re(C~ V^*)``
  is then N(0, I)). The HiPPO reference (:func:`hippo_transfer_function`) uses the same real C, so
  each diagonal system and the dense one it stands for are compared with matched output vectors (the
  PTD paper's comparison). B as the init sets it: ``V^* B_H`` (S4, optionally clipped), ``V^* B_H / 2``
  (S4D-LegS, clipped before the 1/2), ``(V_full^{-1} B_H)[:N/2]`` (PTD).
* S4D-Inv/Lin/Real: ``B~ = 1``, ``C~`` complex normal with ``E|C~_n|^2 = 1`` (the S4D layer's draw).
* S5 (``family="s5"``, ``blocks=J``, one input and one output channel, i.e. H = 1): B real truncated
  normal (+-2 sd) with variance 1/H = 1, ``B~ = (V_full^{-1} B)[:N/2]``; C complex with real and
  imaginary parts truncated normal of variance 1/N (``c_init="trunc_normal"``, S5's default),
  ``C~ = C V``. Inits without a basis (inv, lin, real) draw ``B~`` complex normal with variance 1 and
  ``C~`` with variance 2/N, as the S5 layer does.

Inits whose diagonal system has a basis V also carry the real ``B_in`` (N,) and ``C_out`` (N,) of the
dense system ``(A, B_in, C_out)`` they stand for (``B_in = 2 Re(V B~)``, ``C_out = 2 Re(C~ W)`` with
``W`` the first N/2 rows of ``V_full^{-1}``), where A is the HiPPO matrix (S4), the normal part S (S4D
and S5 LegS, blockwise), or ``A_H + E`` (PTD). The layers floor ``Re Lambda`` at -1e-4 for LegT and
FouT (whose normal part has ``Re Lambda = 0``); these functions use the init exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from .diag import DIAG_INITS, diag_init
from .dplr import check_b_clip, nplr
from .hippo import MEASURES, check_measure, check_size, hippo

__all__ = [
    "FAMILIES",
    "SISOSystem",
    "siso_system",
    "transfer_function",
    "dense_transfer_function",
    "hippo_transfer_function",
    "reference_C",
    "deviation",
    "omega_star",
    "frequency_grid",
]

# The inits a user can pick for each layer family (S4-PTD is S4D with init "ptd", S5-PTD S5 with "ptd").
FAMILIES: dict[str, tuple[str, ...]] = {
    "s4": MEASURES,
    "s4d": ("legs", "inv", "lin", "real", "ptd"),
    "s5": DIAG_INITS,
}
_TRUNC_STD = 0.87962566103423978  # std of a standard normal truncated to [-2, 2]


@dataclass(frozen=True)
class SISOSystem:
    """A single-input single-output system in the conjugate-half form (complex128 throughout).

    ``Lambda``, ``B``, ``C`` (M,) with M = N/2; ``P`` (rank, M) for S4's DPLR systems (else None);
    ``V`` (N, M) the eigenvector half where the init has one, and then the real ``B_in``, ``C_out`` (N,)
    of the dense system the diagonal one stands for (see the module docstring).
    """

    Lambda: Tensor
    B: Tensor
    C: Tensor
    P: Optional[Tensor] = None
    V: Optional[Tensor] = None
    B_in: Optional[Tensor] = None
    C_out: Optional[Tensor] = None

    def __call__(self, omega: Tensor) -> Tensor:
        """``G(i omega)``, (F,) complex128, for real frequencies ``omega`` (F,)."""
        s = 1j * torch.as_tensor(omega, dtype=torch.float64).reshape(-1, 1)
        R, Rc = 1 / (s - self.Lambda), 1 / (s - self.Lambda.conj())  # (F, M) each half's resolvent

        def pair(u: Tensor, v: Tensor) -> Tensor:  # sum over both halves of u v / (s - lambda)
            uv = u * v
            return R @ uv + Rc @ uv.conj()

        G = pair(self.C, self.B)
        if self.P is None:
            return G
        # Woodbury: C (R^-1 + P P^*)^-1 B = C R B - (C R P) (I + P^* R P)^-1 (P^* R B), full basis
        P = self.P
        rank = P.shape[0]
        k01 = torch.stack([pair(self.C, P[r]) for r in range(rank)], -1)  # (F, r)
        k10 = torch.stack([pair(P[r].conj(), self.B) for r in range(rank)], -1)  # (F, r)
        k11 = torch.stack(
            [torch.stack([pair(P[r].conj(), P[q]) for q in range(rank)], -1) for r in range(rank)], -2
        )  # (F, r, r)
        eye = torch.eye(rank, dtype=k11.dtype)
        sol = torch.linalg.solve(eye + k11, k10.unsqueeze(-1)).squeeze(-1)
        return G - (k01 * sol).sum(-1)


def reference_C(N: int, seed: int = 0) -> Tensor:
    """The real output vector (N,) float64 shared by HiPPO's reference and the inits mapped by V:
    ``torch.randn(N, generator=torch.Generator().manual_seed(seed))`` (standard normal)."""
    return torch.randn(N, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _trunc_normal(shape: tuple[int, ...], var: float, gen: torch.Generator) -> Tensor:
    """Normal truncated to +-2 sd, rescaled to variance ``var`` (the S5 layer's lecun draw), float64."""
    lo = 0.5 * (1 + math.erf(-2 / math.sqrt(2)))
    u = lo + (1 - 2 * lo) * torch.rand(shape, generator=gen, dtype=torch.float64)
    return torch.special.ndtri(u) * (math.sqrt(var) / _TRUNC_STD)


def _complex_normal(shape: tuple[int, ...], var: float, gen: torch.Generator) -> Tensor:
    """Complex normal with ``E|z|^2 = var`` (real and imaginary parts each var/2), complex128."""
    return torch.complex(*torch.randn((2,) + shape, generator=gen, dtype=torch.float64)) * math.sqrt(var / 2)


def _with_basis(Lambda: Tensor, Bt: Tensor, Ct: Tensor, V: Tensor, P: Optional[Tensor] = None) -> SISOSystem:
    V_full = torch.cat([V, V.conj()], dim=1)
    W = torch.linalg.inv(V_full)[: V.shape[1]]
    return SISOSystem(Lambda, Bt, Ct, P, V, B_in=2 * (V @ Bt).real, C_out=2 * (Ct @ W).real)


def siso_system(
    init: str, N: int, *, family: str = "s4d", b_clip: Optional[float] = None, seed: int = 0, blocks: int = 1
) -> SISOSystem:
    """The single-input single-output system an init gives a layer of ``family``.

    Args:
        init: an init of ``FAMILIES[family]`` (S4: the HiPPO measure).
        N: real state size (even; S5: divisible by ``2 * blocks``).
        family: ``"s4"`` (DPLR), ``"s4d"`` (diagonal; ``init="ptd"`` is S4-PTD) or ``"s5"``
            (``init="ptd"`` is S5-PTD).
        b_clip: S4's released clip of ``Im(V^* B)`` (S4: any measure; S4D: legs only); None: no clip.
        seed: seed of the drawn C (and S5's B); see the module docstring for each law.
        blocks: S5 only, the number J of diagonal blocks.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    if init not in FAMILIES[family]:
        raise ValueError(f"init must be one of {list(FAMILIES[family])} for family {family!r}, got {init!r}")
    check_size(N, "N", even=True)
    b_clip = check_b_clip(b_clip)
    if blocks != 1 and family != "s5":
        raise ValueError(f"blocks applies to family 's5' only, got blocks={blocks} for {family!r}")
    gen = torch.Generator().manual_seed(seed)
    if family == "s4":
        Lambda, P, Bt, V = nplr(init, N, b_clip=b_clip)
        C = torch.randn(N, generator=gen, dtype=torch.float64).to(torch.complex128)
        return _with_basis(Lambda, Bt, C @ V, V, P)
    if family == "s4d":
        Lambda, Bt, V = diag_init(init, N, b_clip=b_clip)
        if V is None:
            return SISOSystem(Lambda, Bt, _complex_normal((N // 2,), 1.0, gen))
        C = torch.randn(N, generator=gen, dtype=torch.float64).to(torch.complex128)
        return _with_basis(Lambda, Bt, C @ V, V)
    if b_clip is not None:
        raise ValueError("b_clip applies to families 's4' and 's4d' (the S5 layer has no B clip)")
    Lambda, _, V = diag_init(init, N, blocks=blocks)
    if V is None:
        Bt = _complex_normal((N // 2,), 1.0, gen)
        return SISOSystem(Lambda, Bt, _complex_normal((N // 2,), 2.0 / N, gen))
    B = _trunc_normal((N,), 1.0, gen).to(torch.complex128)
    Bt = torch.linalg.solve(torch.cat([V, V.conj()], dim=1), B)[: N // 2]
    C = torch.complex(_trunc_normal((N,), 1.0 / N, gen), _trunc_normal((N,), 1.0 / N, gen))
    return _with_basis(Lambda, Bt, C @ V, V)


def transfer_function(
    init: str,
    N: int,
    omega: Tensor,
    *,
    family: str = "s4d",
    b_clip: Optional[float] = None,
    seed: int = 0,
    blocks: int = 1,
) -> Tensor:
    """``G(i omega)`` (F,) complex128 of the system an init gives a layer (arguments as
    :func:`siso_system`; ``omega`` (F,) real angular frequencies)."""
    return siso_system(init, N, family=family, b_clip=b_clip, seed=seed, blocks=blocks)(omega)


def _resolvent_B(A: Tensor, B: Tensor, omega: Tensor) -> Tensor:
    """``(i omega I - A)^{-1} B``, (F, N) complex128, by a dense solve at every frequency.

    Lower-triangular A (HiPPO-LegS, LagT) by forward substitution over the rows, all frequencies at
    once: O(F N^2) without forming the F matrices (the batched LAPACK solve spends its time writing
    them); otherwise batched ``torch.linalg.solve`` in chunks of at most ~64 MB."""
    N = A.shape[0]
    A = A.to(torch.complex128)
    B = B.to(torch.complex128)
    s = 1j * torch.as_tensor(omega, dtype=torch.float64).reshape(-1)
    if bool(torch.equal(A, A.tril())):
        d = s[None, :] - torch.diagonal(A)[:, None]  # (N, F) diagonal of s I - A
        x = torch.empty(N, len(s), dtype=torch.complex128)
        for n in range(N):
            x[n] = (B[n] + A[n, :n] @ x[:n]) / d[n]
        return x.T
    eye = torch.eye(N, dtype=torch.complex128)
    out = []
    for sc in s.split(max(1, 2**22 // (N * N))):
        x = torch.linalg.solve(sc[:, None, None] * eye - A, B.expand(len(sc), N).unsqueeze(-1))
        out.append(x.squeeze(-1))
    return torch.cat(out)


def dense_transfer_function(A: Tensor, B: Tensor, C: Tensor, omega: Tensor) -> Tensor:
    """``C (i omega I - A)^{-1} B``, (F,) complex128, by a dense solve at every frequency.

    Args:
        A: (N, N) real. B, C: (N,) real or complex. omega: (F,) real.
    """
    return _resolvent_B(A, B, omega) @ C.to(torch.complex128)


def hippo_transfer_function(N: int, omega: Tensor, *, measure: str = "legs", seed: int = 0) -> Tensor:
    """The reference ``C (i omega I - A) ^{-1} B`` (F,) complex128 of the dense HiPPO system
    ``A, B = hippo(measure, N)`` with ``C = reference_C(N, seed)`` (the C of every init mapped by V)."""
    check_measure(measure)
    A, B = hippo(measure, N)
    return dense_transfer_function(A, B, reference_C(N, seed), omega)


def frequency_grid(N: int, lo: float = 1e-2, hi: Optional[float] = None, points: int = 2000) -> Tensor:
    """Sorted (F,) float64 grid: log-spaced on ``[lo, hi]`` plus every resonance of S4D-LegS and PTD
    at size N in range (their spikes are about 1 wide; a log grid alone can step over them).

    ``hi`` defaults to ``max(1e4, 2 * max Im Lambda)`` of S4D-LegS (which grows like N^2/3)."""
    from .ptd import load_perturbation, ptd_eig  # local import, as in diag.py: file loading

    peaks = [nplr("legs", N)[0].imag]
    try:  # PTD's resonances where its perturbation is shipped or cached (never optimized here)
        peaks.append(ptd_eig(N, load_perturbation(N, compute=False))[0].imag)
    except ValueError:
        pass
    peaks_t = torch.cat(peaks)
    hi = max(1e4, 2 * float(peaks_t.max())) if hi is None else hi
    grid = torch.logspace(math.log10(lo), math.log10(hi), points, dtype=torch.float64)
    peaks_t = peaks_t[(peaks_t >= lo) & (peaks_t <= hi)]
    return torch.unique(torch.cat([grid, peaks_t]))  # sorted


def deviation(
    init: str,
    N: int,
    omega: Tensor,
    *,
    family: str = "s4d",
    b_clip: Optional[float] = None,
    seed: Optional[int] = 0,
) -> Tensor:
    """``|G_init(i omega) - G_H(i omega)|`` (F,) float64 against HiPPO-LegS with matched C.

    The init must be one mapped by V from HiPPO-LegS (S4 legs, S4D legs, S4D ptd): the reference is
    ``(A_H, B_H, C)`` with the same real C. ``seed=None`` gives the root mean square over
    ``C ~ N(0, I)`` instead, ``|| x_init - x_H ||_2`` with ``x = (i omega - A)^{-1} B`` in the
    original basis: the deviation a layer with many channels (each its own C) sees, free of one draw.
    """
    if (family, init) not in (("s4", "legs"), ("s4d", "legs"), ("s4d", "ptd")):
        raise ValueError(f"deviation compares inits built from HiPPO-LegS's B; got {family}/{init}")
    sys_ = siso_system(init, N, family=family, b_clip=b_clip, seed=0 if seed is None else seed)
    A_H, B_H = hippo("legs", N)
    if seed is not None:
        G_H = dense_transfer_function(A_H, B_H, sys_.C_out, omega)
        return (sys_(omega) - G_H).abs()
    assert sys_.V is not None
    # the init's state response in the original basis, both halves: V R B~ + conj(V) R' conj(B~) with
    # R' = (s - conj Lambda)^-1 (not conj(R): s = i omega is not real)
    s = 1j * torch.as_tensor(omega, dtype=torch.float64).reshape(-1, 1)
    if sys_.P is None:
        x = (sys_.B / (s - sys_.Lambda)) @ sys_.V.T
        x = x + (sys_.B.conj() / (s - sys_.Lambda.conj())) @ sys_.V.conj().T
    else:  # S4: the dense system it stands for, in the original basis
        p = 2 * (sys_.V @ sys_.P.T).real  # (N, rank)
        S = 2 * (sys_.V @ torch.diag(sys_.Lambda) @ sys_.V.conj().T).real
        x = _resolvent_B(S - p @ p.T, sys_.B_in, omega)
    return (x - _resolvent_B(A_H, B_H, omega)).norm(dim=-1)


def omega_star(
    N: int, *, b_clip: Optional[float] = None, seed: Optional[int] = None, lo: float = 1.0, refine: int = 2
) -> tuple[float, float]:
    """Frequency where S4D-LegS's transfer function deviates most from HiPPO-LegS's, and that deviation.

    Searched on ``[lo, hi]`` of :func:`frequency_grid` (every resonance included), then refined
    ``refine`` times on a fine grid between the neighbours of the best point. ``seed=None`` (default)
    uses the C-free root-mean-square deviation of :func:`deviation`; an int uses that seeded C.

    Returns:
        ``(omega_star, deviation at omega_star)``.
    """
    grid = frequency_grid(N, lo=lo)
    dev = deviation("legs", N, grid, b_clip=b_clip, seed=seed)
    for _ in range(refine):
        k = int(dev.argmax())
        a, b = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
        grid = torch.linspace(float(a), float(b), 401, dtype=torch.float64)
        dev = deviation("legs", N, grid, b_clip=b_clip, seed=seed)
    k = int(dev.argmax())
    return float(grid[k]), float(dev[k])
