"""Vandermonde kernels ``sum_n v[..., n] exp(x[..., n] l)`` and their transpose, with backends.

S4D (arXiv 2206.11893, Sec. 3.2, eq. (5)) computes its convolution kernel as a Vandermonde product
``K[l] = 2 Re(sum_n (C B_bar)[n] exp(dt Lambda[n] l))`` over the N/2 stored modes (``conj=True``);
DSS (arXiv 2203.14343) uses the same product. The transpose
``out[..., n] = v[..., n] sum_l u[..., l] exp(x[..., n] l)`` maps inputs to states.

Backends (one signature): ``*_ref`` materializes the (..., N, L) tensor (ground truth); ``*_torch``
works on blocks of L (exp(x l) = exp(x qT) exp(x r), so the sums become BLAS products over small
tables computed in real arithmetic ``exp(a l) (cos(b l), sin(b l))``; complex exp is several times
slower on CPU) and recomputes them in backward, never holding (..., N, L); ``*_keops`` runs fused
KeOps reductions.

With E[n, l] = exp(x[n] l), a synthesis ``y[l] = sum_n c[n] E[n, l]`` and an analysis
``s[n] = sum_l u[l] E[n, l], t[n] = sum_l l u[l] E[n, l]``, the gradients (PyTorch's convention
grad_a = sum g conj(d out / d a)) are
    vandermonde:  grad_v = conj(s), grad_x = conj(v t) with u = conj(g)   (x2, u = g for conj=True)
    transpose:    grad_v = g conj(s), grad_x = g conj(v t), grad_u = conj(synthesis(c = conj(g) v))
so each op's backward is the other op's forward, and both fast backends reuse two primitives.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ssm.kernels._common import (
    as_pairs,
    batch_shape,
    check_complex,
    check_length,
    check_same_device,
    from_pairs,
    keops_sum,
    real_dtype,
)
from ssm.kernels.backend import Backend, cuda_module, resolve_backend

__all__ = [
    "vandermonde",
    "vandermonde_keops",
    "vandermonde_ref",
    "vandermonde_torch",
    "vandermonde_transpose",
    "vandermonde_transpose_keops",
    "vandermonde_transpose_ref",
    "vandermonde_transpose_torch",
]


# ------------------------------------------------------------------------------------------- ref
def _positions(L: int, x: Tensor) -> Tensor:
    return torch.arange(L, device=x.device, dtype=real_dtype(x.dtype))


def vandermonde_ref(v: Tensor, x: Tensor, L: int, conj: bool = False) -> Tensor:
    """Materializing reference. v, x: (..., N) complex -> (..., L) complex, or real if ``conj``
    (then ``2 Re(sum_n v exp(x l))``). Builds (..., N, L) with complex ``exp``: ground truth."""
    out = (v.unsqueeze(-1) * torch.exp(x.unsqueeze(-1) * _positions(L, x))).sum(dim=-2)
    return 2 * out.real if conj else out


def vandermonde_transpose_ref(u: Tensor, v: Tensor, x: Tensor, L: int) -> Tensor:
    """Materializing reference. u: (..., L) real or complex; v, x: (..., N) -> (..., N) complex."""
    powers = torch.exp(x.unsqueeze(-1) * _positions(L, x))  # (..., N, L)
    return v * (u.unsqueeze(-2) * powers).sum(dim=-1)


# ----------------------------------------------------------------------------------------- torch
# Blocked evaluation: with l = q T + r (0 <= r < T), exp(x l) = exp(x q T) exp(x r). Per channel the
# synthesis is then a matrix product  Y[q, r] = sum_n (c[n] exp(x[n] q T)) exp(x[n] r)  and the
# analysis  s[n] = sum_q exp(x[n] q T) sum_r u[q T + r] exp(x[n] r)  one as well: N (L/T + T)
# exponentials instead of N L, and BLAS does the N L multiply-adds. T >= N keeps the (L/T, N)
# tables no larger than L; blocks of q are processed in chunks, so no (..., N, L) tensor ever exists.
_CHUNK_ELEMS = 1 << 21


def _cexp(x: Tensor, pos: Tensor, wide: bool = False) -> tuple[Tensor, Tensor]:
    """(Re, Im) of exp(x * pos) in real arithmetic, exp(a p) (cos(b p), sin(b p)): complex exp is
    several times slower on CPU, and separate contiguous parts keep the products on BLAS paths.
    ``wide``: evaluate in float64 and round once. Used for the (L/T, N) table exp(x q T), whose
    phases b q T reach b L: in float32 they would carry an error ~ |b L| eps growing with L."""
    rdt = real_dtype(x.dtype)
    if wide:
        x, pos = x.to(torch.complex128), pos.to(torch.float64)
    mag = torch.exp(x.real * pos)
    phase = x.imag * pos
    return (mag * torch.cos(phase)).to(rdt), (mag * torch.sin(phase)).to(rdt)


def _block(L: int, N: int) -> int:
    return min(L, max(N, math.isqrt(L)))


def _q_chunk(rows: int, N: int, T: int) -> int:
    return max(1, _CHUNK_ELEMS // max(1, rows * max(N, T)))


def _synthesis(c: Tensor, x: Tensor, L: int, real_only: bool) -> Tensor:
    """y[..., l] = sum_n c[..., n] exp(x[..., n] l) (its real part if ``real_only``); c, x broadcast."""
    N, T = x.shape[-1], _block(L, x.shape[-1])
    nq = -(-L // T)
    rdt = real_dtype(x.dtype)
    batch = torch.broadcast_shapes(c.shape[:-1], x.shape[:-1])
    out = torch.empty(*batch, nq, T, 1 if real_only else 2, dtype=rdt, device=x.device)
    pr, pi = _cexp(x.unsqueeze(-1), torch.arange(T, dtype=rdt, device=x.device))  # (..., N, T)
    cr, ci = c.real.unsqueeze(-2), c.imag.unsqueeze(-2)
    step = _q_chunk(batch.numel(), N, T)
    for q0 in range(0, nq, step):
        q = torch.arange(q0, min(nq, q0 + step), dtype=rdt, device=x.device).unsqueeze(-1) * T
        er, ei = _cexp(x.unsqueeze(-2), q, wide=True)  # (..., Qc, N)
        kr, ki = cr * er - ci * ei, cr * ei + ci * er  # coefficients c exp(x q T)
        out[..., q0 : q0 + step, :, 0] = kr @ pr - ki @ pi
        if not real_only:
            out[..., q0 : q0 + step, :, 1] = kr @ pi + ki @ pr
    out = out.flatten(-3, -2)[..., :L, :]
    return out[..., 0] if real_only else torch.view_as_complex(out)


def _analysis(u: Tensor, x: Tensor, L: int, with_t: bool) -> tuple[Tensor, Tensor | None]:
    """s[..., n] = sum_l u[..., l] exp(x[..., n] l); t the same with weights l (if ``with_t``)."""
    N, T = x.shape[-1], _block(L, x.shape[-1])
    nq = -(-L // T)
    rdt = real_dtype(x.dtype)
    pad = nq * T - L
    parts = (u.real, u.imag) if u.is_complex() else (u,)
    blocks = [torch.nn.functional.pad(p, (0, pad)).unflatten(-1, (nq, T)) for p in parts]  # (..., nq, T)
    r = torch.arange(T, dtype=rdt, device=x.device)
    pr, pi = _cexp(x.unsqueeze(-2), r.unsqueeze(-1))  # (..., T, N)
    batch = torch.broadcast_shapes(u.shape[:-1], x.shape[:-1])
    acc = torch.zeros(4 if with_t else 2, *batch, N, dtype=rdt, device=x.device)

    def mm(b: list[Tensor]) -> tuple[Tensor, Tensor]:  # (b_re + i b_im) @ (pr + i pi), real products
        if len(b) == 1:
            return b[0] @ pr, b[0] @ pi
        return b[0] @ pr - b[1] @ pi, b[0] @ pi + b[1] @ pr

    def accumulate(k: int, mr: Tensor, mi: Tensor, er: Tensor, ei: Tensor) -> None:
        acc[k] += (mr * er - mi * ei).sum(-2)
        acc[k + 1] += (mr * ei + mi * er).sum(-2)

    step = _q_chunk(batch.numel(), N, T)
    for q0 in range(0, nq, step):
        ub = [b[..., q0 : q0 + step, :] for b in blocks]
        q = torch.arange(q0, q0 + ub[0].shape[-2], dtype=rdt, device=x.device).unsqueeze(-1) * T
        er, ei = _cexp(x.unsqueeze(-2), q, wide=True)  # (..., Qc, N)
        mr, mi = mm(ub)
        accumulate(0, mr, mi, er, ei)
        if with_t:  # sum_l l u_l E_l = sum_q E_qT (q T M_q + sum_r r u_{qT+r} E_r)
            wr, wi = mm([b * r for b in ub])
            accumulate(2, mr * q + wr, mi * q + wi, er, ei)
    s = torch.complex(acc[0], acc[1])
    return s, (torch.complex(acc[2], acc[3]) if with_t else None)


class _VandermondeTorch(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v: Tensor, x: Tensor, L: int, conj: bool) -> Tensor:
        ctx.save_for_backward(v, x)
        ctx.L, ctx.conj = L, conj
        return 2 * _synthesis(v, x, L, real_only=True) if conj else _synthesis(v, x, L, real_only=False)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        v, x = ctx.saved_tensors
        s, t = _analysis(g if ctx.conj else g.conj(), x, ctx.L, with_t=ctx.needs_input_grad[1])
        scale = 2 if ctx.conj else 1
        # Gradients of broadcast inputs are summed back to the inputs' shapes (Tensor.sum_to_size).
        grad_v = (scale * s.conj()).sum_to_size(v.shape) if ctx.needs_input_grad[0] else None
        grad_x = (scale * (v * t).conj()).sum_to_size(x.shape) if t is not None else None
        return grad_v, grad_x, None, None


class _VandermondeTransposeTorch(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: Tensor, v: Tensor, x: Tensor, L: int) -> Tensor:
        s, t = _analysis(u, x, L, with_t=ctx.needs_input_grad[2])
        ctx.save_for_backward(u, v, x, s, t)
        ctx.L = L
        return v * s

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        u, v, x, s, t = ctx.saved_tensors
        need_u, need_v, need_x = ctx.needs_input_grad[:3]
        grad_u = None
        if need_u:  # grad_u = conj(synthesis(conj(g) v)); for a real u only its real part
            grad_u = _synthesis(g.conj() * v, x, ctx.L, real_only=not u.is_complex())
            grad_u = (grad_u.conj() if u.is_complex() else grad_u).sum_to_size(u.shape)
        grad_v = (g * s.conj()).sum_to_size(v.shape) if need_v else None
        grad_x = (g * (v * t).conj()).sum_to_size(x.shape) if need_x else None
        return grad_u, grad_v, grad_x, None


def vandermonde_torch(v: Tensor, x: Tensor, L: int, conj: bool = False) -> Tensor:
    """Memory-lean PyTorch path: blocked over L (tables of size (..., N, T) and (..., L/T, N) with
    T ~ max(N, sqrt L)), real-arithmetic exponentials, backward recomputed from the same blocks."""
    return _VandermondeTorch.apply(v, x, L, conj)


def vandermonde_transpose_torch(u: Tensor, v: Tensor, x: Tensor, L: int) -> Tensor:
    """Memory-lean PyTorch path for the transpose (blocked like ``vandermonde_torch``)."""
    return _VandermondeTransposeTorch.apply(u, v, x, L)


# ----------------------------------------------------------------------------------------- keops
_EXP = "ComplexExp(ComplexRealScal(l, x))"  # exp(x l) as an (re, im) pair
_KEOPS_FORMULAS = {
    # y[l] = sum_n c[n] exp(x[n] l)                                             (i = l, j = n)
    "synthesis": (f"ComplexMult(c, {_EXP})", ["l = Vi(1)", "c = Vj(2)", "x = Vj(2)"]),
    # Re(y[l]), in real arithmetic: exp(a l) (Re c cos(b l) - Im c sin(b l))
    "synthesis_re": (
        "Exp(Elem(x, 0) * l) * (Elem(c, 0) * Cos(Elem(x, 1) * l) - Elem(c, 1) * Sin(Elem(x, 1) * l))",
        ["l = Vi(1)", "c = Vj(2)", "x = Vj(2)"],
    ),
    # [s[n], t[n]] = sum_l (1, l) (x) u[l] exp(x[n] l)                          (i = n, j = l)
    "analysis": (
        f"TensorProd(Concat(IntCst(1), l), ComplexMult(u, {_EXP}))",
        ["x = Vi(2)", "u = Vj(2)", "l = Vj(1)"],
    ),
}


def _keops_positions(L: int, x: Tensor) -> Tensor:
    return _positions(L, x).reshape(1, L, 1)


def _keops_synthesis(c: Tensor, x: Tensor, L: int, real_only: bool) -> Tensor:
    """(B, N) c, x -> (B, L): complex synthesis, or its real part."""
    name = "synthesis_re" if real_only else "synthesis"
    out = keops_sum(*_KEOPS_FORMULAS[name], _keops_positions(L, x), as_pairs(c), as_pairs(x))
    return out[..., 0] if real_only else from_pairs(out)


def _keops_analysis(u: Tensor, x: Tensor, L: int) -> tuple[Tensor, Tensor]:
    """(B, L) u (real or complex), (B, N) x -> s, t of shape (B, N)."""
    uc = u if u.is_complex() else torch.complex(u, torch.zeros_like(u))
    acc = keops_sum(*_KEOPS_FORMULAS["analysis"], as_pairs(x), as_pairs(uc), _keops_positions(L, x))
    return from_pairs(acc[..., :2]), from_pairs(acc[..., 2:])


class _VandermondeKeops(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v: Tensor, x: Tensor, L: int, conj: bool) -> Tensor:
        ctx.save_for_backward(v, x)
        ctx.L, ctx.conj = L, conj
        return 2 * _keops_synthesis(v, x, L, real_only=True) if conj else _keops_synthesis(v, x, L, False)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        v, x = ctx.saved_tensors
        s, t = _keops_analysis(g if ctx.conj else g.conj(), x, ctx.L)
        scale = 2 if ctx.conj else 1
        grad_v = scale * s.conj() if ctx.needs_input_grad[0] else None
        grad_x = scale * (v * t).conj() if ctx.needs_input_grad[1] else None
        return grad_v, grad_x, None, None


class _VandermondeTransposeKeops(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: Tensor, v: Tensor, x: Tensor, L: int) -> Tensor:
        s, t = _keops_analysis(u, x, L)
        ctx.save_for_backward(v, x, s, t)
        ctx.L, ctx.u_complex = L, u.is_complex()
        return v * s

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        v, x, s, t = ctx.saved_tensors
        need_u, need_v, need_x = ctx.needs_input_grad[:3]
        grad_u = None
        if need_u:
            grad_u = _keops_synthesis(g.conj() * v, x, ctx.L, real_only=not ctx.u_complex)
            grad_u = grad_u.conj() if ctx.u_complex else grad_u
        grad_v = g * s.conj() if need_v else None
        grad_x = g * (v * t).conj() if need_x else None
        return grad_u, grad_v, grad_x, None


def vandermonde_keops(v: Tensor, x: Tensor, L: int, conj: bool = False) -> Tensor:
    """Fused KeOps reductions (CPU or GPU, following the tensors' device)."""
    shape = torch.broadcast_shapes(v.shape, x.shape)
    flat_v, flat_x = v.expand(shape).reshape(-1, shape[-1]), x.expand(shape).reshape(-1, shape[-1])
    return _VandermondeKeops.apply(flat_v, flat_x, L, conj).reshape(*shape[:-1], L)


def vandermonde_transpose_keops(u: Tensor, v: Tensor, x: Tensor, L: int) -> Tensor:
    """Fused KeOps reductions for the transpose (CPU or GPU, following the tensors' device)."""
    batch = torch.broadcast_shapes(u.shape[:-1], v.shape[:-1], x.shape[:-1])
    N = v.shape[-1]
    flat_u = u.expand(*batch, L).reshape(-1, L)
    flat_v, flat_x = v.expand(*batch, N).reshape(-1, N), x.expand(*batch, N).reshape(-1, N)
    return _VandermondeTransposeKeops.apply(flat_u, flat_v, flat_x, L).reshape(*batch, N)


# -------------------------------------------------------------------------------------- dispatch
def _check_vx(op: str, v: Tensor, x: Tensor) -> None:
    check_complex(op, "v", v)
    check_complex(op, "x", x, v.dtype)
    if v.shape[-1] == 0:
        raise ValueError(f"{op}: v must hold N >= 1 values in its last dim, got shape {tuple(v.shape)}")
    if v.shape[-1] != x.shape[-1]:
        raise ValueError(
            f"{op}: v and x must share the last dim N, got {tuple(v.shape)} and {tuple(x.shape)}"
        )


def vandermonde(v: Tensor, x: Tensor, L: int, conj: bool = False, backend: Backend = "auto") -> Tensor:
    """Vandermonde product ``sum_n v[..., n] exp(x[..., n] l)`` for l = 0..L-1.

    Args:
        v: (..., N) complex64/complex128 weights.
        x: (..., N) exponents (e.g. dt * Lambda), same dtype; leading dims broadcast with v's.
        L: number of positions, int >= 1.
        conj: return the REAL tensor ``2 Re(sum_n v exp(x l))`` (the sum over conjugate pairs).
        backend: "auto" | "ref" | "torch" | "keops" | "cuda".
    Returns:
        (..., L): complex, or real of the matching precision if ``conj``; differentiable in v, x.
    """
    op = "vandermonde"
    _check_vx(op, v, x)
    L = check_length(op, L)
    check_same_device(op, v=v, x=x)
    if not isinstance(conj, bool):  # a string such as "no" would be truthy
        raise TypeError(f"{op}: conj must be a bool (True or False), got {conj!r} ({type(conj).__name__})")
    batch = batch_shape(op, v=v, x=x)
    name = resolve_backend(backend, op, v, batch.numel() * v.shape[-1] * L)
    return _IMPLS[name](v, x, L, conj)


def vandermonde_transpose(u: Tensor, v: Tensor, x: Tensor, L: int, backend: Backend = "auto") -> Tensor:
    """Transposed product ``out[..., n] = v[..., n] sum_{l<L} u[..., l] exp(x[..., n] l)``.

    Args:
        u: (..., L) real or complex input of v's precision (float32 with complex64, float64 with
            complex128); its leading dims broadcast against v's and x's (u (B, H, L), v (H, N)).
        v: (..., N) complex weights.  x: (..., N) complex exponents, same dtype as v.
        L: int >= 1, must equal u.shape[-1].
        backend: "auto" | "ref" | "torch" | "keops" | "cuda".
    Returns:
        (..., N) complex, differentiable w.r.t. u, v and x.
    """
    op = "vandermonde_transpose"
    _check_vx(op, v, x)
    L = check_length(op, L)
    if not isinstance(u, Tensor):
        raise TypeError(f"{op}: u must be a torch.Tensor, got {type(u).__name__}")
    allowed = (real_dtype(v.dtype), v.dtype)
    if u.dtype not in allowed:
        raise TypeError(f"{op}: u must be {allowed[0]} or {allowed[1]} to match v ({v.dtype}), got {u.dtype}")
    if u.dim() == 0 or u.shape[-1] != L:
        raise ValueError(f"{op}: u must have shape (..., L) with L={L}, got {tuple(u.shape)}")
    check_same_device(op, u=u, v=v, x=x)
    batch = batch_shape(op, u=u, v=v, x=x)
    name = resolve_backend(backend, op, v, batch.numel() * v.shape[-1] * L)
    return _TRANSPOSE_IMPLS[name](u, v, x, L)


_IMPLS = {
    "ref": vandermonde_ref,
    "torch": vandermonde_torch,
    "keops": vandermonde_keops,
    "cuda": lambda *args: cuda_module().vandermonde_cuda(*args),  # imported only when chosen
}
_TRANSPOSE_IMPLS = {
    "ref": vandermonde_transpose_ref,
    "torch": vandermonde_transpose_torch,
    "keops": vandermonde_transpose_keops,
    "cuda": lambda *args: cuda_module().vandermonde_transpose_cuda(*args),
}
