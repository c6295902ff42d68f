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

Released forms (``form="released"``). S4's released code (``transition`` and ``rank_correction``
in its ``src/models/hippo/hippo.py``) builds three of these differently; ``form="paper"`` (default)
gives the forms above, ``form="released"`` the released ones (docs/layers.md has the table):

* LegT: ``A / 2``, ``B / 2`` and ``P / sqrt2`` (the normal part halves): at the same dt the window is
  twice as long (``dt`` acts as ``dt / 2`` of the paper form).
* LagT: ``A + I / 2`` (``A[n,n] = -1/2``), same ``B`` and ``P``: the normal part is skew
  (``Re Lambda = 0``, not -1/2).
* FouT: frequencies ``pi j`` (not ``2 pi j``), and index 1 is a dead state (zero row, column and B).
  Index 0 is the constant, ``2j`` the cosine and ``2j+1`` the sine of frequency ``j >= 1``, with
  ``A[2j, 2j+1] = -pi j = -A[2j+1, 2j]`` (the opposite sign of ours: the sines are negated, which
  changes no eigenvalue and no kernel since B vanishes on them); ``e = (1, 0, sqrt2, 0, sqrt2, ...)``,
  ``A = Omega - e e^T``, ``B = P = e``. Where ours ends on an extra cosine (even N) the released form
  has the dead state. For odd N (the released code handles even N only) the last cosine is unpaired.
* LegS is the same in both.

Every matrix is built in float64 (the later eigendecompositions need it).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["MEASURES", "FORMS", "hippo", "rank_correction"]

MEASURES: tuple[str, ...] = ("legs", "legt", "lagt", "fout")
FORMS: tuple[str, ...] = ("paper", "released")


def check_measure(measure: str) -> str:
    """Return ``measure`` if it is a known HiPPO measure, else raise a ValueError listing them."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {list(MEASURES)}, got {measure!r}")
    return measure


def check_form(form: str) -> str:
    """Return ``form`` if it is ``"paper"`` or ``"released"``, else raise a ValueError listing them."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {list(FORMS)}, got {form!r}")
    return form


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


def _legt_released(N: int) -> tuple[Tensor, Tensor]:
    A, B = _legt(N)
    return A / 2, B / 2  # exact: a power of two


def _lagt_released(N: int) -> tuple[Tensor, Tensor]:
    A, B = _lagt(N)
    return A + torch.eye(N, dtype=torch.float64) / 2, B


def _fout_released_e(N: int) -> Tensor:
    e = torch.zeros(N, dtype=torch.float64)
    e[0::2] = math.sqrt(2.0)  # cosines at even indices; index 1 (dead) and the sines stay 0
    e[0] = 1.0
    return e


def _fout_released(N: int) -> tuple[Tensor, Tensor]:
    omega = torch.zeros(N, N, dtype=torch.float64)
    for j in range(1, N // 2):  # pairs (2j, 2j+1), 2j+1 < N
        c, s = 2 * j, 2 * j + 1
        omega[c, s] = -math.pi * j
        omega[s, c] = math.pi * j
    e = _fout_released_e(N)
    return omega - e[:, None] * e[None, :], e.clone()


_BUILDERS = {"legs": _legs, "legt": _legt, "lagt": _lagt, "fout": _fout}
_RELEASED_BUILDERS = {"legs": _legs, "legt": _legt_released, "lagt": _lagt_released, "fout": _fout_released}


def hippo(measure: str, N: int, form: str = "paper") -> tuple[Tensor, Tensor]:
    """HiPPO transition matrices for ``c' = A c + B f``.

    Args:
        measure: ``"legs" | "legt" | "lagt" | "fout"`` (see the module docstring for the forms).
        N: state size (any positive int).
        form: ``"paper"`` (default) or ``"released"``: the conventions of S4's released code
            (LegT halved, LagT ``+ I/2``, FouT at frequencies ``pi j`` with a dead state; LegS equal).

    Returns:
        ``A`` (N, N) and ``B`` (N,), float64.
    """
    check_measure(measure)
    check_size(N)
    builders = _RELEASED_BUILDERS if check_form(form) == "released" else _BUILDERS
    return builders[measure](N)


def rank_correction(measure: str, N: int, form: str = "paper") -> Tensor:
    """Low-rank term ``P`` (rank, N), float64, such that ``S = A + P^T P`` is normal.

    ``S - mean(diag(S)) I`` is skew-symmetric: LegS ``p = sqrt(n + 1/2)`` (S = -I/2 + skew);
    LegT rank 2, ``p_0 / p_1 = sqrt(2n+1)`` on even / odd n (zero elsewhere) (S skew); LagT ``p = 1/sqrt2``
    (S = -I/2 + skew); FouT ``p = e`` (S = Omega, skew).
    ``form="released"`` (for :func:`hippo`'s released A): LegT ``P / sqrt2`` (S halved; the released
    code lists the odd-n row first, which changes no ``P^T P``); LagT the same p (S skew); FouT
    ``p = (1, 0, sqrt2, 0, sqrt2, ...)`` (S = Omega, skew); LegS the same.
    """
    check_measure(measure)
    check_size(N)
    if check_form(form) == "released":
        if measure == "legt":
            return rank_correction("legt", N) * 2**-0.5
        if measure == "fout":
            return _fout_released_e(N)[None, :]
    if measure == "legs":
        return torch.sqrt(torch.arange(N, dtype=torch.float64) + 0.5)[None, :]
    if measure == "legt":
        r = torch.sqrt(2 * torch.arange(N, dtype=torch.float64) + 1)
        even = torch.arange(N) % 2 == 0
        return torch.stack([torch.where(even, r, 0.0), torch.where(even, 0.0, r)])
    if measure == "lagt":
        return torch.full((1, N), 1 / math.sqrt(2.0), dtype=torch.float64)
    return _fout_e(N)[None, :]
