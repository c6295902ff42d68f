"""Normal-plus-low-rank (NPLR) form of the HiPPO matrices and its diagonal-plus-low-rank basis.

S4 (Gu et al., arXiv 2111.00396, Section 3.1, Theorem 1 and Appendix C.1) writes every HiPPO matrix
as ``A = S - P^T P`` with ``S`` normal. Here ``S - c I`` (``c = mean(diag S)``) is real
skew-symmetric, so ``-1j (S - c I)`` is Hermitian: ``torch.linalg.eigh`` diagonalizes it stably
with a unitary eigenbasis, where the general ``eig`` of the non-normal ``A`` is hopeless (its
eigenvector matrix has condition number growing exponentially in N).

Conjugate symmetry. The eigenvalues ``c + i mu`` come in pairs ``mu, -mu`` with conjugate
eigenvectors. We keep the half with ``mu > 0`` (N/2 values, V of shape (N, N/2)); then with
``p_r = 2 Re(V P~_r)``::

    A = 2 Re(V diag(Lambda) V^*) - sum_r p_r p_r^T,    B = 2 Re(V B~),

where ``B~ = V^* B`` and ``P~ = V^* p``. Eigenvalues ``mu = 0`` (FouT has them) come in an even
number for even N; their eigenspace is spanned by a real orthonormal basis ``q_1, q_2, ...`` that we
pair as ``(q_1 + i q_2)/sqrt2`` so that the identity above still holds. Odd N is rejected: a real
skew matrix of odd size has an unpaired zero eigenvalue and no conjugate half exists.

Phases. An eigenvector is defined up to a factor ``e^{i theta}``, which rotates ``B~`` and ``P~`` (and
the ``C~ = C V`` a model would map) without changing the real system. We fix it as LAPACK's Hermitian
solver (``zheevd``, behind ``torch.linalg.eigh``) returns it, and enforce it explicitly: the first
component of every eigenvector is real (its sign as the solver gives it). S4's released code
diagonalizes the same Hermitian matrix with the same solver and keeps the conjugate half
(``Im Lambda < 0``); with the first component real in both, its eigenvectors are ours conjugated up
to a sign, so ``|Im B~|`` agrees mode by mode and the clip below touches the same modes by the same
amount. FouT is the exception: its constant is decoupled in ``S``, so every eigenvector with ``mu != 0``
vanishes at index 0 and keeps the solver's phase; there ``B~`` agrees with the released one up to a
phase per mode, and ``|B~| <= sqrt(3/2)`` (1 in the released form) stays below the released clip 2.0.

B clip (S4's released code, ``nplr(..., B_clip=2.0)``, on by default there): the imaginary part of
``B~ = V^* B`` is clamped to ``[-c, c]``. This is not in the paper; it changes about a third of the
modes at N = 64 for LegS (those with |Im B~| > 2, the high-frequency ones). ``b_clip=None`` (our
default) keeps the exact ``B~``.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from .hippo import check_form, check_measure, check_size, hippo, rank_correction

__all__ = ["nplr", "normal_eig", "clip_imag", "check_b_clip"]

# |mu| below this (relative to the spectral norm of the skew part) is treated as an exact zero.
_ZERO_TOL = 1e-10


def normal_eig(S: Tensor) -> tuple[Tensor, Tensor]:
    """Conjugate half of the eigendecomposition of a real ``S`` with ``S - c I`` skew-symmetric.

    Args:
        S: (N, N) real float64, N even.

    Returns:
        ``Lambda`` (N/2,) complex128 with ``Im >= 0`` (descending), ``V`` (N, N/2) complex128 with
        orthonormal columns, such that ``S = 2 Re(V diag(Lambda) V^*)``.
    """
    N = S.shape[-1]
    check_size(N, "N", even=True)
    S = S.to(torch.float64)
    c = torch.diagonal(S).mean()
    K = S - c * torch.eye(N, dtype=torch.float64)
    asym = (K + K.T).abs().max().item()
    scale = max(K.abs().max().item(), 1.0)
    if asym > 1e-12 * scale:
        raise ValueError(
            f"S - mean(diag(S)) I must be skew-symmetric; its symmetric part has max entry {asym:.3e}"
        )
    mu, U = torch.linalg.eigh(-1j * K.to(torch.complex128))  # ascending, real
    mu = mu.to(torch.float64)
    tol = _ZERO_TOL * max(mu.abs().max().item(), 1.0)
    zero = mu.abs() <= tol
    pos = mu > tol
    V_pos, mu_pos = U[:, pos], mu[pos]
    n_zero = int(zero.sum())
    if n_zero:
        # real orthonormal basis of the null space of K, paired into complex vectors
        Z = U[:, zero]
        # span{Re Z, Im Z} equals the null space (dimension n_zero); keep its first n_zero directions
        Ufull, sv, _ = torch.linalg.svd(torch.cat([Z.real, Z.imag], dim=1), full_matrices=False)
        Q = Ufull[:, :n_zero]
        if sv[n_zero - 1] <= 1e-8 * sv[0]:
            raise RuntimeError("null space of the skew part could not be resolved")
        pairs = (Q[:, 0::2] + 1j * Q[:, 1::2]) / 2**0.5
        V_pos = torch.cat([V_pos, pairs.to(torch.complex128)], dim=1)
        mu_pos = torch.cat([mu_pos, torch.zeros(n_zero // 2, dtype=torch.float64)])
    order = torch.argsort(mu_pos, descending=True)
    Lambda = torch.complex(torch.full_like(mu_pos, c.item()), mu_pos)[order]
    return Lambda, _real_first_component(V_pos[:, order])


def _real_first_component(V: Tensor) -> Tensor:
    """Rotate each column so that its first entry is real, keeping the sign of its real part.

    LAPACK's ``zheevd`` already returns such vectors (then nothing changes); this makes the phase
    convention explicit and independent of the LAPACK build. Columns whose first entry is zero (FouT's
    paired null space) are left as they are.
    """
    v0 = V[0]
    mag = v0.abs()
    ok = mag > 1e-12
    phase = torch.where(ok, v0 / torch.where(ok, mag, torch.ones_like(mag)), torch.ones_like(v0))
    phase = torch.where(phase.real < 0, -phase, phase)
    return V * phase.conj()


def check_b_clip(b_clip: object) -> float | None:
    """``b_clip`` must be None or a positive finite number; returns it as a float."""
    if b_clip is None:
        return None
    if isinstance(b_clip, bool) or not isinstance(b_clip, (int, float)) or not 0 < float(b_clip) < float("inf"):
        raise ValueError(f"b_clip must be None or a positive finite number, got {b_clip!r}")
    return float(b_clip)


def clip_imag(B: Tensor, b_clip: float | None) -> Tensor:
    """``Re B + i clamp(Im B, -b_clip, b_clip)`` (S4's released B clip); ``None`` returns B unchanged."""
    if b_clip is None:
        return B
    return torch.complex(B.real, B.imag.clamp(-b_clip, b_clip))


def nplr(
    measure: str, N: int, b_clip: float | None = None, form: str = "paper"
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """NPLR/DPLR form of a HiPPO matrix in its (unitary) normal eigenbasis.

    Args:
        measure: ``"legs" | "legt" | "lagt" | "fout"``.
        N: state size, even (odd N raises ValueError: no conjugate half exists).
        b_clip: clamp ``Im B~`` to ``[-b_clip, b_clip]`` as S4's released code does (2.0 there);
            None (default): no clip, the exact ``B~ = V^* B``.
        form: ``"paper"`` (default) or ``"released"``: the HiPPO matrices of S4's released code
            (:func:`ssm.init.hippo`; LegT ``Lambda / 2``, ``B / 2``, ``P / sqrt2`` with the same V;
            LagT ``Lambda + 1/2``; FouT imaginary parts ``pi j`` and one zero mode).

    Returns:
        ``Lambda`` (N/2,), ``P`` (rank, N/2), ``B`` (N/2,), ``V`` (N, N/2), all complex128, with
        ``A = 2 Re(V diag(Lambda) V^*) - sum_r p_r p_r^T``, ``p_r = 2 Re(V P_r)``, ``B_orig = 2 Re(V B)``.
        Rank is 2 for LegT and 1 otherwise; ``Re(Lambda) = -1/2`` for LegS and LagT, 0 for LegT, FouT
        (and for the released LagT).
    """
    check_measure(measure)
    check_size(N, "N", even=True)
    b_clip = check_b_clip(b_clip)
    check_form(form)
    Lambda, P, B, V = (t.clone() for t in _nplr_cached(measure, N, form))
    return Lambda, P, clip_imag(B, b_clip), V


@functools.lru_cache(maxsize=32)
def _nplr_cached(measure: str, N: int, form: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The NPLR form for validated arguments; shared results, never handed out without a copy."""
    A, B = hippo(measure, N, form)
    P = rank_correction(measure, N, form)
    S = A + P.T @ P
    Lambda, V = normal_eig(S)
    Vh = V.conj().T
    return Lambda, (Vh @ P.T.to(torch.complex128)).T.contiguous(), Vh @ B.to(torch.complex128), V
