"""HiPPO transition matrices ``(A, B)`` for the LegS, LegT, LagT and FouT measures.

The HiPPO framework (Gu et al., "HiPPO: Recurrent Memory with Optimal Polynomial Projections",
arXiv 2008.07669, Theorem 1 and Appendix D) gives, for each measure, the ODE
``c'(t) = A c(t) + B f(t)`` whose state ``c`` holds the coefficients of the projection of the input
history onto an orthonormal basis. The forms below are the normalized ones used by S4
(arXiv 2111.00396, Appendix C) and S4D (arXiv 2206.11893), written with the sign folded into ``A``:

* LegS (scaled Legendre):   ``A[n,k] = -sqrt(2n+1) sqrt(2k+1)`` (n > k), ``-(n+1)`` (n = k), 0 (n < k);
  ``B[n] = sqrt(2n+1)``.
* LegT (translated Legendre, window length 1):
  ``A[n,k] = -sqrt(2n+1) sqrt(2k+1) * (1 if n >= k else (-1)^(n-k))``; ``B[n] = sqrt(2n+1)``.
* LagT (translated Laguerre, HiPPO's form): ``A[n,k] = -1`` (n >= k), 0 (n < k); ``B[n] = 1``.
* FouT (translated Fourier, window length 1). Basis on the window ``x in [0, 1]``:
  ``1, sqrt2 cos(2 pi x), sqrt2 sin(2 pi x), sqrt2 cos(4 pi x), ...`` (index 0 the constant,
  index 2j-1 the cosine and 2j the sine of frequency j). Differentiating the windowed projection
  gives ``A = Omega - e e^T``, ``B = e`` with ``e = (1, sqrt2, 0, sqrt2, 0, ...)`` (the basis at the
  window's end points) and ``Omega[2j-1, 2j] = 2 pi j = -Omega[2j, 2j-1]``. For even N the last
  cosine has no sine partner and its rotation is truncated. ``A`` is singular for N >= 2.

Every matrix is built in float64 (the later eigendecompositions need it).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["MEASURES", "hippo", "rank_correction"]

MEASURES: tuple[str, ...] = ("legs", "legt", "lagt", "fout")


def check_measure(measure: str) -> str:
    """Return ``measure`` if it is a known HiPPO measure, else raise a ValueError listing them."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {list(MEASURES)}, got {measure!r}")
    return measure


def check_size(N: int, name: str = "N", even: bool = False) -> int:
    """Validate a state size: a positive int (and even where a conjugate half is formed)."""
    if isinstance(N, bool) or not isinstance(N, int):
        raise TypeError(f"{name} must be an int, got {type(N).__name__}")
    if N < 1:
        raise ValueError(f"{name} must be >= 1, got {N}")
    if even and N % 2:
        raise ValueError(
            f"{name} must be even (the conjugate-symmetric half keeps N/2 modes; an odd real matrix "
            f"always has an unpaired real eigenvalue), got {name}={N}"
        )
    return N


def _legs(N: int) -> tuple[Tensor, Tensor]:
    r = torch.sqrt(2 * torch.arange(N, dtype=torch.float64) + 1)
    A = -torch.tril(r[:, None] * r[None, :], diagonal=-1)
    A = A - torch.diag(torch.arange(1, N + 1, dtype=torch.float64))
    return A, r.clone()


def _legt(N: int) -> tuple[Tensor, Tensor]:
    r = torch.sqrt(2 * torch.arange(N, dtype=torch.float64) + 1)
    n = torch.arange(N)
    diff = n[:, None] - n[None, :]
    # (-1)^(n-k) above the diagonal, 1 on and below it
    sign = torch.where(diff >= 0, 1.0, 1.0 - 2.0 * (diff.abs() % 2)).to(torch.float64)
    return -(r[:, None] * r[None, :]) * sign, r.clone()


def _lagt(N: int) -> tuple[Tensor, Tensor]:
    A = -torch.tril(torch.ones(N, N, dtype=torch.float64))
    return A, torch.ones(N, dtype=torch.float64)


def _fout_e(N: int) -> Tensor:
    e = torch.zeros(N, dtype=torch.float64)
    e[0] = 1.0
    e[1::2] = math.sqrt(2.0)  # cosines; sines vanish at the window ends
    return e


def _fout(N: int) -> tuple[Tensor, Tensor]:
    omega = torch.zeros(N, N, dtype=torch.float64)
    for j in range(1, N // 2 + 1):
        c, s = 2 * j - 1, 2 * j
        if s < N:
            omega[c, s] = 2 * math.pi * j
            omega[s, c] = -2 * math.pi * j
    e = _fout_e(N)
    return omega - e[:, None] * e[None, :], e.clone()


_BUILDERS = {"legs": _legs, "legt": _legt, "lagt": _lagt, "fout": _fout}


def hippo(measure: str, N: int) -> tuple[Tensor, Tensor]:
    """HiPPO transition matrices for ``c' = A c + B f``.

    Args:
        measure: ``"legs" | "legt" | "lagt" | "fout"`` (see the module docstring for the forms).
        N: state size (any positive int).

    Returns:
        ``A`` (N, N) and ``B`` (N,), float64.
    """
    check_measure(measure)
    check_size(N)
    return _BUILDERS[measure](N)


def rank_correction(measure: str, N: int) -> Tensor:
    """Low-rank term ``P`` (rank, N), float64, such that ``S = A + P^T P`` is normal.

    ``S - mean(diag(S)) I`` is skew-symmetric: LegS ``p = sqrt(n + 1/2)`` (S = -I/2 + skew);
    LegT rank 2, ``p_0 / p_1 = sqrt(2n+1)`` on even / odd n (zero elsewhere) (S skew); LagT ``p = 1/sqrt2``
    (S = -I/2 + skew); FouT ``p = e`` (S = Omega, skew).
    """
    check_measure(measure)
    check_size(N)
    if measure == "legs":
        return torch.sqrt(torch.arange(N, dtype=torch.float64) + 0.5)[None, :]
    if measure == "legt":
        r = torch.sqrt(2 * torch.arange(N, dtype=torch.float64) + 1)
        even = torch.arange(N) % 2 == 0
        return torch.stack([torch.where(even, r, 0.0), torch.where(even, 0.0, r)])
    if measure == "lagt":
        return torch.full((1, N), 1 / math.sqrt(2.0), dtype=torch.float64)
    return _fout_e(N)[None, :]
