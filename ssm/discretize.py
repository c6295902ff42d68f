"""Discretization of continuous-time state-space systems and the timestep parameterization.

``x'(t) = A x(t) + B u(t)`` sampled with step ``dt`` becomes ``x_k = Ad x_{k-1} + Bd u_k``.
Zero-order hold (ZOH) and the bilinear (Tustin) transform, as used by S4 (arXiv 2111.00396, Eq. 3),
S4D (arXiv 2206.11893, Section 2 and Table 1) and S5 (arXiv 2208.04933, Section 2):

* diagonal A (1-D, the fast path; complex or real, broadcasting with ``dt`` and ``B``):
  ZOH ``Ad = exp(dt A)``, ``Bd = (Ad - 1)/A * B``; bilinear ``Ad = (1 + dt A/2)/(1 - dt A/2)``,
  ``Bd = dt/(1 - dt A/2) * B``.
* dense A (2-D, the reference path): ZOH from one matrix exponential of the block matrix
  ``[[A, B], [0, 0]] dt`` (its top row is ``[Ad, Bd]``; A is never inverted, so a singular A such as
  HiPPO-FouT's is fine); bilinear ``Ad = (I - dt/2 A)^-1 (I + dt/2 A)``, ``Bd = (I - dt/2 A)^-1 dt B``.

Timesteps are learned through an unconstrained parameter: ``log dt`` initialized log-uniformly
in ``[dt_min, dt_max]`` (S4's default [1e-3, 1e-1]) and mapped to ``dt`` by ``exp`` or ``softplus``.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["zoh", "bilinear", "diagonal_real", "init_log_dt", "DT_TRANSFORMS", "dt_from_param", "dt_to_param"]


def _as_tensor(dt: Tensor | float, like: Tensor) -> Tensor:
    if not torch.is_tensor(dt):
        dt = torch.tensor(dt, dtype=like.real.dtype, device=like.device)
    return dt


def _check_dt(dt: Tensor) -> None:
    if dt.is_complex():
        raise TypeError(f"dt must be a real tensor, got dtype {dt.dtype}")
    bad = ~(torch.isfinite(dt) & (dt > 0))
    if bool(bad.any()):
        raise ValueError(
            f"dt must be finite and > 0 everywhere; got {int(bad.sum())} invalid entries "
            f"(min {dt.min().item():.3e})"
        )


def _is_diagonal(A: Tensor, diagonal: bool | None) -> bool:
    if diagonal is None:
        if A.dim() == 1:
            return True
        if A.shape[-1] != A.shape[-2]:
            raise ValueError(
                f"A of shape {tuple(A.shape)} is neither 1-D (diagonal) nor square (dense); for "
                "per-channel diagonals pass diagonal=True"
            )
        return False
    if not diagonal and (A.dim() < 2 or A.shape[-1] != A.shape[-2]):
        raise ValueError(f"dense A must have shape (..., N, N), got {tuple(A.shape)}")
    return diagonal


# phi1(z) = (exp(z) - 1)/z = sum_k z^k/(k+1)!. The closed form is accurate in value everywhere, but
# its autograd derivative exp(z)/z - expm1(z)/z^2 subtracts two terms of size ~1/|z| whose difference
# is ~1/2: an absolute error ~eps/|z| (in complex64, zero gradient at |z| = 1e-7 instead of 1/2).
# Below |z| = 1 the Taylor polynomial is used instead (Horner; its derivative has no cancellation).
# Degrees: the truncation error of value and derivative on |z| <= 1, (K+1)/(K+2)!, is below the
# dtype's eps (11 -> 1.9e-9 for 32-bit, 18 -> 7.8e-18 for 64-bit); at |z| >= 1 the closed form's
# derivative loses at most a few ulps.
_PHI1_SERIES_RADIUS = 1.0
_PHI1_DEGREE = {32: 11, 64: 18}


def _phi1_series(z: Tensor, degree: int) -> Tensor:
    """``sum_{k=0}^{degree} z^k/(k+1)!`` by Horner's rule."""
    acc = torch.full_like(z, 1 / math.factorial(degree + 1))
    for k in range(degree - 1, -1, -1):
        acc = acc * z + 1 / math.factorial(k + 1)
    return acc


def _phi1(z: Tensor) -> Tensor:
    """``(exp(z) - 1)/z`` with its limit 1 at z = 0 (ZOH's input factor, safe for A = 0 modes), with
    values and gradients accurate to working precision for every z (series branch for |z| < 1)."""
    real = z.real.dtype if z.is_complex() else z.dtype
    degree = _PHI1_DEGREE[64] if torch.finfo(real).eps < 1e-10 else _PHI1_DEGREE[32]
    small = z.abs() < _PHI1_SERIES_RADIUS
    # Each branch only sees inputs it is valid for, so the branch not taken has finite gradients
    # (torch.where's backward multiplies them by zero; an inf or nan there would leak a nan).
    z_big = torch.where(small, torch.ones_like(z), z)
    z_small = torch.where(small, z, torch.zeros_like(z))
    return torch.where(small, _phi1_series(z_small, degree), torch.expm1(z_big) / z_big)


def zoh(
    dt: Tensor | float, A: Tensor, B: Tensor, check: bool = True, diagonal: bool | None = None
) -> tuple[Tensor, Tensor]:
    """Zero-order-hold discretization.

    Args:
        dt: positive timestep(s); a float or a tensor broadcasting with A (diagonal path, e.g. (H, 1)
            against A (H, N)) or a batch shape ``(...)`` for the dense path (one system per entry).
        A: the diagonal of a diagonal system, (N,) real or complex, or a dense (N, N) / (..., N, N)
            matrix (the reference path, via a matrix exponential). By default a 1-D A is diagonal and
            anything else dense; ``diagonal=True`` treats an A of any shape (e.g. per-channel
            (H, N)) as elementwise diagonals, ``diagonal=False`` forces the dense path.
        B: diagonal path: broadcasts with A. Dense path: (N,) or (N, M) (or batched).
        check: validate that dt is finite and positive (a device sync on GPU; pass False when dt
            comes from a positive transform).
        diagonal: see A.

    Returns:
        ``(Ad, Bd)``: diagonal path, both of the broadcast shape; dense path ``Ad`` (..., N, N) and
        ``Bd`` shaped like B (with the batch dims).
    """
    dt = _as_tensor(dt, A)
    if check:
        _check_dt(dt)
    if _is_diagonal(A, diagonal):
        z = dt * A
        Ad = torch.exp(z)
        return Ad, dt * _phi1(z) * B
    return _zoh_dense(dt, A, B)


def _dense_B(A: Tensor, B: Tensor) -> tuple[Tensor, bool]:
    N = A.shape[-1]
    vec = B.dim() == 1 or (B.dim() == A.dim() - 1 and B.shape[-1] == N and B.shape[:-1] == A.shape[:-2])
    Bm = B.unsqueeze(-1) if vec else B
    if Bm.shape[-2] != N:
        raise ValueError(f"B must have N={N} rows to match A {tuple(A.shape)}, got shape {tuple(B.shape)}")
    return Bm, vec


def _zoh_dense(dt: Tensor, A: Tensor, B: Tensor) -> tuple[Tensor, Tensor]:
    N = A.shape[-1]
    Bm, vec = _dense_B(A, B)
    dtype = torch.promote_types(A.dtype, Bm.dtype)
    dtm = dt.to(dtype)[..., None, None]
    # Scale the input block so that its column norm is 1. The top row of the exponential is
    # [Ad, s Bd] for any s (Ad does not see s), but torch.linalg.matrix_exp picks its Taylor degree
    # from the whole norm: for a small dt*A the low degree it picks leaves ~1e-11 relative error
    # (measured against scipy.linalg.expm); a norm >= 1 selects a degree accurate to ~1e-15.
    with torch.no_grad():
        col = (dtm.abs() * Bm.abs()).sum(-2).amax(-1, keepdim=True)[..., None]
        scale = torch.where(col > 0, 1 / col.clamp_min(torch.finfo(col.dtype).tiny), torch.ones_like(col))
    batch = torch.broadcast_shapes(dt.shape, A.shape[:-2], Bm.shape[:-2])
    M = Bm.shape[-1]
    blk = torch.zeros(*batch, N + M, N + M, dtype=dtype, device=A.device)
    blk[..., :N, :N] = A * dtm
    blk[..., :N, N:] = Bm * dtm * scale.to(dtype)
    E = torch.linalg.matrix_exp(blk)
    Ad, Bd = E[..., :N, :N], E[..., :N, N:] / scale.to(dtype)
    return Ad, (Bd.squeeze(-1) if vec else Bd)


def bilinear(
    dt: Tensor | float, A: Tensor, B: Tensor, check: bool = True, diagonal: bool | None = None
) -> tuple[Tensor, Tensor]:
    """Bilinear (Tustin) discretization. Arguments and shapes as for :func:`zoh`."""
    dt = _as_tensor(dt, A)
    if check:
        _check_dt(dt)
    if _is_diagonal(A, diagonal):
        half = dt * A / 2
        inv = 1 / (1 - half)
        return (1 + half) * inv, dt * inv * B
    N = A.shape[-1]
    Bm, vec = _dense_B(A, B)
    dtype = torch.promote_types(A.dtype, Bm.dtype)
    eye = torch.eye(N, dtype=dtype, device=A.device)
    half = (dt.to(dtype)[..., None, None] / 2) * A.to(dtype)
    lhs = eye - half
    Ad = torch.linalg.solve(lhs, eye + half)
    Bd = torch.linalg.solve(lhs, dt.to(dtype)[..., None, None] * Bm.to(dtype))
    return Ad, (Bd.squeeze(-1) if vec else Bd)


def _phi1_real(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """(Re, Im) of ``phi1(x + i y) = expm1(z)/z`` in real arithmetic, accurate as :func:`_phi1`."""
    degree = _PHI1_DEGREE[64] if torch.finfo(x.dtype).eps < 1e-10 else _PHI1_DEGREE[32]
    small = x * x + y * y < _PHI1_SERIES_RADIUS**2
    # each branch sees only inputs it is valid for (finite gradients on the branch not taken)
    xs, ys = torch.where(small, x, torch.zeros_like(x)), torch.where(small, y, torch.zeros_like(y))
    ar = torch.full_like(x, 1 / math.factorial(degree + 1))
    ai = torch.zeros_like(y)
    for k in range(degree - 1, -1, -1):  # Horner: acc <- acc z + 1/(k+1)!
        ar, ai = ar * xs - ai * ys + 1 / math.factorial(k + 1), ar * ys + ai * xs
    xb, yb = torch.where(small, torch.ones_like(x), x), torch.where(small, torch.zeros_like(y), y)
    # expm1(z) = expm1(x) cos y - 2 sin^2(y/2) + i exp(x) sin y: no cancellation at small x or y
    p = torch.expm1(xb) * torch.cos(yb) - 2 * torch.sin(yb / 2) ** 2
    q = torch.exp(xb) * torch.sin(yb)
    inv = 1 / (xb * xb + yb * yb)
    return (torch.where(small, ar, (p * xb + q * yb) * inv),
            torch.where(small, ai, (q * xb - p * yb) * inv))


def diagonal_real(method: str, dt: Tensor, re: Tensor, im: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """ZOH or bilinear discretization of a diagonal complex ``A = re + i im``, in real arithmetic.

    Returns ``(Re Ad, Im Ad, Re f, Im f)`` with ``Bd = f B``: the values of :func:`zoh` /
    :func:`bilinear` with ``diagonal=True`` and ``B = 1``, from real tensor operations only. Under
    ``torch.compile`` (inductor) a chain of complex operations (``exp`` of a complex product, then
    ``.real``/``.imag``) can get wrong gradients; a real formulation compiles like any other.

    Args:
        method: "zoh" or "bilinear".
        dt: positive timesteps; dt, re and im broadcast together (real tensors).
    """
    x, y = dt * re, dt * im
    if method == "zoh":  # Ad = exp(z), f = dt phi1(z)
        mag = torch.exp(x)
        pr, pi = _phi1_real(x, y)
        return mag * torch.cos(y), mag * torch.sin(y), dt * pr, dt * pi
    if method == "bilinear":  # Ad = (1 + z/2)/(1 - z/2), f = dt/(1 - z/2)
        dr, di = 1 - x / 2, -y / 2
        inv = 1 / (dr * dr + di * di)
        ir, ii = dr * inv, -di * inv  # 1/(1 - z/2)
        nr, ni = 1 + x / 2, y / 2
        return nr * ir - ni * ii, nr * ii + ni * ir, dt * ir, dt * ii
    raise ValueError(f"unknown method={method!r}; valid values are 'zoh', 'bilinear'")


def init_log_dt(
    shape: int | Sequence[int],
    dt_min: float = 1e-3,
    dt_max: float = 1e-1,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """``log dt`` drawn log-uniformly in ``[log dt_min, log dt_max]``.

    Args:
        shape: e.g. ``(H,)`` (one dt per channel, S4/S4D/DSS) or ``(N/2,)`` (one per state, S5).
        dt_min, dt_max: bounds with ``0 < dt_min <= dt_max`` (finite); otherwise ValueError.
        generator: optional torch.Generator for reproducibility.
    """
    for name, v in (("dt_min", dt_min), ("dt_max", dt_max)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):  # a string is never converted
            raise TypeError(f"{name} must be a finite number > 0, got {v!r} ({type(v).__name__})")
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    if dt_min > dt_max:
        raise ValueError(f"dt_min must be <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    u = torch.rand(shape, generator=generator, dtype=dtype or torch.get_default_dtype(), device=device)
    return math.log(dt_min) + u * (math.log(dt_max) - math.log(dt_min))


def _inv_softplus(dt: Tensor) -> Tensor:
    # log(exp(dt) - 1) computed without overflow for large dt
    return dt + torch.log(-torch.expm1(-dt))


DT_TRANSFORMS: dict[str, tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    "exp": (torch.exp, torch.log),
    "softplus": (F.softplus, _inv_softplus),
}
"""name -> (param -> dt, dt -> param). Both map the reals onto dt > 0."""


def _transform(transform: str):
    if transform not in DT_TRANSFORMS:
        raise ValueError(f"transform must be one of {list(DT_TRANSFORMS)}, got {transform!r}")
    return DT_TRANSFORMS[transform]


def dt_from_param(param: Tensor, transform: str = "exp") -> Tensor:
    """Positive timestep from its unconstrained parameter (``exp`` or ``softplus``)."""
    return _transform(transform)[0](param)


def dt_to_param(dt: Tensor, transform: str = "exp") -> Tensor:
    """Inverse of :func:`dt_from_param` (e.g. ``dt_to_param(init_log_dt(...).exp(), "softplus")``)."""
    _check_dt(dt)
    return _transform(transform)[1](dt)
