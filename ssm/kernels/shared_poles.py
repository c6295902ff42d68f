"""Cauchy sums with poles shared across a batch of weights, at purely imaginary points, in real
arithmetic: the CPU path of S4's four Woodbury sums (S4, arXiv 2111.00396, section 3.3).

``cauchy_pairs(v, s, w) == ssm.kernels.cauchy(v, 1j * s, w, conj=True)`` for poles w (H, M) shared
by every leading batch of v. Specializing to shared poles lets the reciprocals of each (pole, point)
pair be formed once, over the M stored modes (each conjugate pair is one real-coefficient fraction),
and every weight vector then costs two real batched matrix products. The reciprocal grid is built
block by block over channels, in forward and again in backward, so the (H, M, L) tensor never
exists whole. Tested against ``cauchy_ref`` (tests/kernels/test_shared_poles.py).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["cauchy_pairs"]


def _pair_recip(wr: Tensor, wi: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    """(Re, Im) of ``1 / ((i s - w)(i s - conj w))``: wr, wi (h, M), s (F,) -> two (h, M, F)."""
    wr, wi = wr.unsqueeze(-1), wi.unsqueeze(-1)
    den_re = torch.addcmul(wr * wr, wi - s, wi + s)  # factored: accurate at s ~ Im w
    neg_im = wr * (2 * s)  # -Im(den)
    inv = torch.reciprocal(torch.addcmul(den_re * den_re, neg_im, neg_im))
    return den_re.mul_(inv), neg_im.mul_(inv)


# channels per block of the (H, M, F) reciprocal grid: ~1 MiB temporaries stay in cache
_BLOCK_ELEMS = 1 << 18


class _PairProducts(torch.autograd.Function):
    """(a @ rr, a @ ri, b @ rr, b @ ri) with ``rr + i ri = 1 / ((i s - w)(i s - conj w))`` for
    (H, M) poles w, (F,) real s and (H, nb, M) real a, b. The reciprocals are formed block by block
    over channels, in forward and again in backward (never the whole (H, M, F) grid). Backward,
    with ``G = dL/drr + i dL/dri`` and ``den`` the denominator: ``dL/dden = -conj(r^2) G``, and
    ``den = Re w^2 + Im w^2 - s^2 - 2 i Re(w) s``."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, wr: Tensor, wi: Tensor, s: Tensor):
        ctx.save_for_backward(a, b, wr, wi, s)
        H, M = wr.shape
        ab = torch.cat([a, b], 1)
        XY = ab.new_empty(H, 2, ab.shape[1], s.shape[0])  # [ab @ rr, ab @ ri]
        step = max(1, _BLOCK_ELEMS // (M * s.shape[0]))
        for h in range(0, H, step):
            rr, ri = _pair_recip(wr[h : h + step], wi[h : h + step], s)
            torch.matmul(ab[h : h + step], rr, out=XY[h : h + step, 0])
            torch.matmul(ab[h : h + step], ri, out=XY[h : h + step, 1])
        nb = a.shape[1]
        return XY[:, 0, :nb], XY[:, 1, :nb], XY[:, 0, nb:], XY[:, 1, nb:]

    @staticmethod
    @once_differentiable
    def backward(ctx, gXa: Tensor, gYa: Tensor, gXb: Tensor, gYb: Tensor):
        a, b, wr, wi, s = ctx.saved_tensors
        H, M = wr.shape
        ab = torch.cat([a, b], 1)
        gX, gY = torch.cat([gXa, gXb], 1), torch.cat([gYa, gYb], 1)
        grad_ab = torch.empty_like(ab)
        sum_re, sum_im = torch.empty_like(wr), torch.empty_like(wr)
        step = max(1, _BLOCK_ELEMS // (M * s.shape[0]))
        for h in range(0, H, step):
            sl = slice(h, h + step)
            rr, ri = _pair_recip(wr[sl], wi[sl], s)
            gx, gy = gX[sl], gY[sl]
            torch.matmul(gx, rr.transpose(-1, -2), out=grad_ab[sl])
            grad_ab[sl].baddbmm_(gy, ri.transpose(-1, -2))
            abT = ab[sl].transpose(-1, -2)
            g_re, g_im = abT @ gx, abT @ gy  # dL/drr, dL/dri: (h, M, F)
            c_re = rr * rr - ri * ri  # conj(r)^2 = c_re - 2 i rr ri
            c_im = rr.mul_(ri).mul_(-2)
            d_re = torch.addcmul(g_re * c_re, g_im, c_im, value=-1)  # -dL/dden, real part
            d_im = torch.addcmul(g_re.mul_(c_im), g_im, c_re)  # -dL/dden, imaginary part
            sum_re[sl] = d_re.sum(-1)
            sum_im[sl] = d_im @ s
        grad_wr = -2 * (wr * sum_re - sum_im)
        grad_wi = -2 * wi * sum_re
        nb = a.shape[1]
        return grad_ab[:, :nb], grad_ab[:, nb:], grad_wr, grad_wi, None


def cauchy_pairs(v: Tensor, s: Tensor, w: Tensor) -> Tensor:
    """``sum_n v_n / (i s_l - w_n) + conj(v_n) / (i s_l - conj(w_n))`` at purely imaginary points.

    v: (..., H, M) complex weights, s: (F,) real, w: (H, M) complex poles shared by every leading
    batch of v -> (..., H, F) complex. Each conjugate pair is one real-coefficient fraction
    ``(a z + b) / ((z - w)(z - conj w))`` with ``a = 2 Re v``, ``b = -2 Re(v conj w)``, and at
    ``z = i s`` the denominator is ``Re w^2 + (Im w - s)(Im w + s) - 2 i Re(w) s`` (the factored form
    stays accurate at resonance, s ~ Im w). So the reciprocals are formed once per (pole, point),
    in real arithmetic over the M stored modes, and every v costs two real batched products.
    Equals ``ssm.kernels.cauchy(v, 1j * s, w, conj=True)`` (tested against ``cauchy_ref``).
    """
    batch = v.shape[:-2]
    H, M = w.shape
    # The reciprocal squares |den| ~ |z - w|^2, so |den|^2 spans the fourth power of the problem's
    # range: at s = 0 a pole with |w| < 1e-9.5 underflows it in float32 (S4 at dt < 3e-6), and large s
    # overflow it. The sum is homogeneous, sum v/(is - w) = c sum v/(i cs - cw): a power of two c
    # (exact) centres the range of |den| on 1. c is a constant of the graph (its derivative is zero).
    c = _balancing_scale(w.detach(), s.detach()) if w.numel() and s.numel() else None
    if c is not None:
        s, w = s * c, w * c
    vm = v.reshape(batch.numel(), H, M).transpose(0, 1)  # (H, nb, M); nb may be 0
    a = 2 * vm.real
    b = -2 * (vm.real * w.real.unsqueeze(1) + vm.imag * w.imag.unsqueeze(1))
    Xa, Ya, Xb, Yb = _PairProducts.apply(a, b, w.real.contiguous(), w.imag.contiguous(), s)
    out = torch.complex(Xb - s * Ya, Yb + s * Xa)  # (b + i a s)(rr + i ri)
    if c is not None:
        out = out * c  # back to the unscaled sum
    return out.transpose(0, 1).reshape(*batch, H, s.shape[0])


def _balancing_scale(w: Tensor, s: Tensor) -> Tensor:
    """A power of two c (0-dim, s's dtype) with ``c^2 sqrt(lo hi) ~ 1`` for the bounds
    ``lo = min |Re w| |w| <= |den| <= hi = (max |s| + max |w|)^2`` of the pair denominators
    ``den = (i s - w)(i s - conj w)``, limited so that ``(c^2 hi)^2`` stays below the overflow
    threshold; formed from logarithms, so it never under- or overflows itself."""
    info = torch.finfo(s.dtype)
    log_lo = (torch.log2(w.real.abs().clamp(min=info.tiny)) + torch.log2(w.abs().clamp(min=info.tiny))).min()
    log_hi = 2 * torch.log2((s.abs().max() + w.abs().max()).clamp(min=info.tiny))
    e = torch.round(-(log_lo + log_hi) / 4)
    e = torch.minimum(e, torch.floor((math.log2(info.max) / 2 - 4 - log_hi) / 2))
    return torch.exp2(e)
