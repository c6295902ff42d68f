"""Diagonal state-matrix initializations: S4D-LegS/Inv/Lin/Real, DSS, S5 blocks and PTD.

References: S4D (Gu et al., "On the Parameterization and Initialization of Diagonal State Space
Models", arXiv 2206.11893, Section 4 and Theorem 3), DSS (Gupta et al., arXiv 2203.14343, Section
3.3), S5 (Smith et al., arXiv 2208.04933, Section 4.1 and Appendix B), PTD (Yu et al., arXiv
2310.01698). N is the size of the real state; every init stores the conjugate-symmetric half, N/2
complex modes ``Lambda`` (n = 0 .. N/2-1), and a model computes outputs as ``2 Re(...)``.

* ``legs``: S4D-LegS = the Lambda of the NPLR form of HiPPO-LegS (``Re = -1/2``) with
  ``B = V^* B_legs / 2``. The 1/2 is the convention of S4D's Theorem 3 (the diagonal system
  ``(Lambda, V^* B/2)`` is the one whose kernel converges to HiPPO-LegS's as N grows); the original
  S4 code drops it, which only rescales C. ``V`` is returned (C~ = C V). ``b_clip=c`` applies S4's
  released B clip first, ``B = clip(V^* B_legs, c) / 2`` (:func:`ssm.init.dplr.clip_imag`), so the
  same modes are clipped as in that code, whose B lacks the 1/2; only ``legs`` accepts ``b_clip``.
* ``inv``: ``Lambda_n = -1/2 + i (N/pi) (N/(2n+1) - 1)``, ``B = 1``, ``V = None``.
* ``lin``: ``Lambda_n = -1/2 + i pi n``, ``B = 1``, ``V = None``.
* ``real``: ``Lambda_n = -(n+1)`` (imaginary part 0), ``B = 1``, ``V = None``.
* ``dss``: eigenvalues of the skew part ``(A - A^T)/2`` of HiPPO-LegS of size N with positive
  imaginary part, minus 1/2 (equal to S4D-LegS's Lambda). DSS folds B into C, so ``B = 1``;
  ``V`` (the unitary eigenbasis of the skew part) is returned for mapping a C if wanted.
* ``ptd``: eigen-half of ``A_H + E`` for the optimized perturbation E of :mod:`ssm.init.ptd`;
  ``V`` is the (non-unitary) eigenvector half and ``B = (V^-1 B_legs)`` restricted to that half.

``blocks=J`` (S5): J independent copies of the size-N/J init tiled block-diagonally; Lambda and B
are concatenated and V (when not None) is block-diagonal of shape (N, N/2). N must be divisible by
2J. S5 itself draws its own B and maps it with ``B~ = V^-1 B`` (``V^*`` for unitary V).

Results are memoized per ``(name, N, blocks)`` (an eigendecomposition per layer otherwise dominates
building a deep model); every call returns fresh copies, so callers may modify them in place.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from .dplr import check_b_clip, clip_imag, nplr, normal_eig
from .hippo import check_size, hippo

__all__ = ["DIAG_INITS", "diag_init"]

DIAG_INITS: tuple[str, ...] = ("legs", "inv", "lin", "real", "dss", "ptd")


def _one_block(name: str, N: int) -> tuple[Tensor, Tensor, Tensor | None]:
    n = torch.arange(N // 2, dtype=torch.float64)
    ones = torch.ones(N // 2, dtype=torch.complex128)
    if name == "legs":
        Lambda, _, B, V = nplr("legs", N)
        return Lambda, B / 2, V
    if name == "inv":
        return torch.complex(torch.full_like(n, -0.5), N / math.pi * (N / (2 * n + 1) - 1)), ones, None
    if name == "lin":
        return torch.complex(torch.full_like(n, -0.5), math.pi * n), ones, None
    if name == "real":
        return torch.complex(-(n + 1), torch.zeros_like(n)), ones, None
    if name == "dss":
        A, _ = hippo("legs", N)
        skew = (A - A.T) / 2
        eig_skew, V = normal_eig(skew)  # purely imaginary
        return torch.complex(torch.full_like(n, -0.5), eig_skew.imag), ones, V
    from .ptd import ptd_init  # local import: ptd pulls in the optimizer and file loading

    return ptd_init(N)


def diag_init(
    name: str, N: int, blocks: int = 1, b_clip: float | None = None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Diagonal init in the conjugate-half convention.

    Args:
        name: ``"legs" | "inv" | "lin" | "real" | "dss" | "ptd"`` (see the module docstring).
        N: size of the real state (even; divisible by ``2 * blocks``).
        blocks: number J of diagonal blocks (S5); each block is the init of size N/J.
        b_clip: ``legs`` only: S4's released clip of ``Im(V^* B)`` to ``[-b_clip, b_clip]`` before
            the 1/2 (None: no clip).

    Returns:
        ``Lambda`` (N/2,) complex128 (every real part < 0), ``B`` (N/2,) complex128, and ``V``
        (N, N/2) complex128 or None (inv, lin, real).
    """
    if name not in DIAG_INITS:
        raise ValueError(f"name must be one of {list(DIAG_INITS)}, got {name!r}")
    check_size(N, "N", even=True)
    if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
        raise ValueError(f"blocks must be a positive int, got {blocks!r}")
    if N % (2 * blocks):
        raise ValueError(
            f"N must be divisible by 2*blocks (each of the {blocks} blocks needs an even size), "
            f"got N={N}, blocks={blocks}"
        )
    b_clip = check_b_clip(b_clip)
    if b_clip is not None and name != "legs":
        raise ValueError(f"b_clip applies to init 'legs' only (S4's released B clip), got init {name!r}")
    Lambda, B, V = _diag_init_cached(name, N, blocks)
    # B of legs is V^* B_legs / 2: clip the unhalved value, as the released code does
    B = clip_imag(2 * B, b_clip) / 2 if b_clip is not None else B.clone()
    return Lambda.clone(), B, None if V is None else V.clone()


@functools.lru_cache(maxsize=64)
def _diag_init_cached(name: str, N: int, blocks: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """The init for validated arguments; shared results, never handed out without a copy."""
    size = N // blocks
    Lambda, B, V = _one_block(name, size)
    if blocks == 1:
        return Lambda, B, V
    Lambda, B = Lambda.repeat(blocks), B.repeat(blocks)
    if V is not None:
        V = torch.block_diag(*([V] * blocks))
    return Lambda, B, V
