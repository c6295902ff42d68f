"""Cauchy kernel ``out[..., l] = sum_n v[..., n] / (z[l] - w[..., n])`` and its backends.

S4 (arXiv 2111.00396, Sec. 3.3 and Lemma C.3) evaluates its DPLR generating function at L points
``z`` as a few such sums over the N/2 stored eigenvalues ``w``. With ``conj=True`` the sum also runs
over the conjugate pairs, ``conj(v[n]) / (z[l] - conj(w[n]))``, so only one half is stored.

Backends (one signature): ``cauchy_ref`` materializes the (..., N, L) tensor (ground truth),
``cauchy_torch`` chunks over L in forward and backward so that only (..., N, chunk) temporaries exist,
``cauchy_keops`` runs fused KeOps reductions (CPU or GPU, following the tensors' device).
For S4's case (conjugate pairs, poles shared by every leading batch of v, points on the imaginary
axis) the torch backend runs :func:`ssm.kernels.cauchy_pairs` instead, and ``auto`` picks it on the CPU.

Gradients (PyTorch's convention: for upstream g, grad_a = sum g * conj(d out / d a)), with
r[n, l] = 1 / (z[l] - w[n]):
    grad_v[n] = sum_l g[l] conj(r[n, l])
    grad_w[n] = conj(v[n]) sum_l g[l] conj(r[n, l])^2
    grad_z[l] = -g[l] conj(sum_n v[n] r[n, l]^2)
The conjugate form is the plain sum over the doubled pole set (w, conj w) with weights (v, conj v);
the fast backends build that set with differentiable ``cat``/``conj``.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ssm.kernels._common import (
    as_pairs,
    batch_shape,
    check_complex,
    check_same_device,
    chunk_length,
    from_pairs,
    keops_sum,
)
from ssm.kernels.backend import CAUCHY_SHARED, Backend, cuda_module, resolve_backend
from ssm.kernels.shared_poles import cauchy_pairs

__all__ = ["cauchy", "cauchy_keops", "cauchy_ref", "cauchy_torch"]


def cauchy_ref(v: Tensor, z: Tensor, w: Tensor, conj: bool = False) -> Tensor:
    """Materializing reference. v, w: (..., N) complex; z: (L,) complex -> (..., L) complex.

    Builds the full (..., N, L) tensor: slow and memory-hungry, obviously correct; the ground truth.
    """
    terms = v.unsqueeze(-1) / (z - w.unsqueeze(-1))
    if conj:
        terms = terms + v.conj().unsqueeze(-1) / (z - w.conj().unsqueeze(-1))
    return terms.sum(dim=-2)


def _pairs(v: Tensor, w: Tensor, conj: bool) -> tuple[Tensor, Tensor]:
    """Pole set of the sum: (v, w), or (v, conj v), (w, conj w) stacked along N for conj=True."""
    if conj:
        return torch.cat([v, v.conj()], dim=-1), torch.cat([w, w.conj()], dim=-1)
    return v, w


# ----------------------------------------------------------------------------------------- torch
def _recip(z: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """(Re, Im) of r[..., n, l] = 1 / (z[l] - w[..., n]) = conj(d) / |d|^2, in real arithmetic
    (complex division is several times slower on CPU, and separate parts keep BLAS paths)."""
    dr = z.real - w.real.unsqueeze(-1)
    di = z.imag - w.imag.unsqueeze(-1)
    inv = torch.reciprocal(dr * dr + di * di)
    return dr * inv, -di * inv


def _rows_vec(ar: Tensor, ai: Tensor, br: Tensor, bi: Tensor) -> tuple[Tensor, Tensor]:
    """(ar + i ai) @ (br + i bi) with real products."""
    return ar @ br - ai @ bi, ar @ bi + ai @ br


class _CauchyTorch(torch.autograd.Function):
    """Chunked over L; backward recomputes the reciprocals per chunk instead of storing them."""

    @staticmethod
    def forward(ctx, v: Tensor, z: Tensor, w: Tensor) -> Tensor:
        ctx.save_for_backward(v, z, w)
        L = z.shape[-1]
        out = torch.empty(*v.shape[:-1], L, 2, dtype=v.real.dtype, device=v.device)
        vr, vi = v.real.unsqueeze(-2).contiguous(), v.imag.unsqueeze(-2).contiguous()  # (..., 1, N)
        step = chunk_length(v[..., 0].numel() * v.shape[-1], L, v.device)
        for s in range(0, L, step):
            rr, ri = _recip(z[s : s + step], w)  # (..., N, chunk)
            re, im = _rows_vec(vr, vi, rr, ri)
            out[..., s : s + step, 0] = re.squeeze(-2)
            out[..., s : s + step, 1] = im.squeeze(-2)
        return torch.view_as_complex(out)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        v, z, w = ctx.saved_tensors
        need_v, need_z, need_w = ctx.needs_input_grad
        L = z.shape[-1]
        acc = torch.zeros(4, *w.shape, dtype=w.real.dtype, device=w.device)  # sum g conj(r), g conj(r)^2
        grad_z = torch.empty_like(g) if need_z else None
        step = chunk_length(v[..., 0].numel() * v.shape[-1], L, v.device)
        for s in range(0, L, step):
            rr, ri = _recip(z[s : s + step], w)
            gc = g[..., s : s + step]
            gr, gi = gc.real.unsqueeze(-1).contiguous(), gc.imag.unsqueeze(-1).contiguous()  # (..., chunk, 1)
            re, im = _rows_vec(rr, -ri, gr, gi)
            acc[0] += re.squeeze(-1)
            acc[1] += im.squeeze(-1)
            r2r, r2i = rr * rr - ri * ri, 2 * rr * ri  # r^2
            if need_w:
                re, im = _rows_vec(r2r, -r2i, gr, gi)
                acc[2] += re.squeeze(-1)
                acc[3] += im.squeeze(-1)
            if need_z:  # -g conj(sum_n v r^2)
                vr, vi = v.real.unsqueeze(-2), v.imag.unsqueeze(-2)
                re, im = _rows_vec(vr, vi, r2r, r2i)
                grad_z[..., s : s + step] = -gc * torch.complex(re, -im).squeeze(-2)
        grad_v = torch.complex(acc[0], acc[1]) if need_v else None
        grad_w = v.conj() * torch.complex(acc[2], acc[3]) if need_w else None
        if grad_z is not None:
            grad_z = grad_z.reshape(-1, L).sum(0)
        return grad_v, grad_z, grad_w


def cauchy_torch(v: Tensor, z: Tensor, w: Tensor, conj: bool = False) -> Tensor:
    """Memory-bounded PyTorch path: never holds the (..., N, L) tensor, forward or backward."""
    v, w = _pairs(v, w, conj)
    shape = torch.broadcast_shapes(v.shape, w.shape)
    return _CauchyTorch.apply(v.expand(shape), z, w.expand(shape))


# ----------------------------------------------------------------------------------------- keops
# Complex numbers travel as (re, im) pairs; KeOps' Complex* operations act on such pairs.
_KEOPS_FORMULAS = {
    # out[l] = sum_n v[n] / (z[l] - w[n])                                         (i = l, j = n)
    "fwd": ("ComplexDivide(v, z - w)", ["z = Vi(2)", "w = Vj(2)", "v = Vj(2)"]),
    # [sum_l g conj(r), sum_l g conj(r)^2], conj(r) = (z - w) / |z - w|^2          (i = n, j = l)
    "bwd": (
        "Concat(ComplexMult(g, (z - w) / ComplexSquareAbs(z - w)),"
        " ComplexMult(g, ComplexMult(z - w, z - w) / Square(ComplexSquareAbs(z - w))))",
        ["w = Vi(2)", "z = Vj(2)", "g = Vj(2)"],
    ),
    # sum_n v[n] r[n, l]^2, only compiled when z requires a gradient              (i = l, j = n)
    "dz": ("ComplexDivide(v, ComplexMult(z - w, z - w))", ["z = Vi(2)", "w = Vj(2)", "v = Vj(2)"]),
}


class _CauchyKeops(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v: Tensor, z: Tensor, w: Tensor) -> Tensor:
        # v, w: (B, N) with one flat batch dim, so each formula compiles once per dtype.
        ctx.save_for_backward(v, z, w)
        zz = as_pairs(z).unsqueeze(0)
        return from_pairs(keops_sum(*_KEOPS_FORMULAS["fwd"], zz, as_pairs(w), as_pairs(v)))

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        v, z, w = ctx.saved_tensors
        need_v, need_z, need_w = ctx.needs_input_grad
        grad_v = grad_z = grad_w = None
        if need_v or need_w:
            acc = keops_sum(*_KEOPS_FORMULAS["bwd"], as_pairs(w), as_pairs(z).unsqueeze(0), as_pairs(g))
            grad_v = from_pairs(acc[..., :2]) if need_v else None
            grad_w = v.conj() * from_pairs(acc[..., 2:]) if need_w else None
        if need_z:
            zz = as_pairs(z).unsqueeze(0)
            s2 = from_pairs(keops_sum(*_KEOPS_FORMULAS["dz"], zz, as_pairs(w), as_pairs(v)))
            grad_z = -(g * s2.conj()).sum(0)
        return grad_v, grad_z, grad_w


def cauchy_keops(v: Tensor, z: Tensor, w: Tensor, conj: bool = False) -> Tensor:
    """Fused KeOps reductions; never materializes (..., N, L). CPU or GPU, following v's device."""
    v, w = _pairs(v, w, conj)
    shape = torch.broadcast_shapes(v.shape, w.shape)
    flat_v = v.expand(shape).reshape(-1, shape[-1])
    flat_w = w.expand(shape).reshape(-1, shape[-1])
    return _CauchyKeops.apply(flat_v, z, flat_w).reshape(*shape[:-1], z.shape[-1])


# -------------------------------------------------------------------------------------- dispatch
def cauchy(v: Tensor, z: Tensor, w: Tensor, conj: bool = False, backend: Backend = "auto") -> Tensor:
    """Cauchy kernel ``sum_n v[..., n] / (z[l] - w[..., n])`` (plus conjugate pairs if ``conj``).

    Args:
        v: (..., N) complex64/complex128 weights.
        z: (L,) evaluation points, same dtype as v.
        w: (..., N) poles, same dtype as v; leading dims broadcast with v's.
        conj: also sum ``conj(v) / (z - conj(w))`` (S4's stored half of conjugate pairs).
        backend: "auto" | "ref" | "torch" | "keops" | "cuda".
    Returns:
        (..., L) complex tensor, differentiable w.r.t. v, w and z.
    """
    op = "cauchy"
    check_complex(op, "v", v)
    check_complex(op, "z", z, v.dtype)
    check_complex(op, "w", w, v.dtype)
    check_same_device(op, v=v, z=z, w=w)
    if not isinstance(conj, bool):  # a string such as "no" would be truthy
        raise TypeError(f"{op}: conj must be a bool (True or False), got {conj!r} ({type(conj).__name__})")
    if z.dim() != 1 or z.shape[0] == 0:
        raise ValueError(f"{op}: z must be 1-D (L,) with L >= 1, got shape {tuple(z.shape)}")
    if v.shape[-1] == 0:
        raise ValueError(f"{op}: v must hold N >= 1 values in its last dim, got shape {tuple(v.shape)}")
    if v.shape[-1] != w.shape[-1]:
        raise ValueError(
            f"{op}: v and w must share the last dim N, got {tuple(v.shape)} and {tuple(w.shape)}"
        )
    batch = batch_shape(op, v=v, w=w)
    n_poles = v.shape[-1] * (2 if conj else 1)
    # (checked on the CPU, or where the torch backend is asked for: on a GPU the check would sync)
    shared = (v.device.type == "cpu" or backend == "torch") and _shared_poles_at_imaginary_points(v, z, w, conj)
    name = resolve_backend(backend, CAUCHY_SHARED if shared else op, v, batch.numel() * n_poles * z.shape[0])
    if name == "torch" and shared:
        return cauchy_pairs(v, z.imag, w)
    return _IMPLS[name](v, z, w, conj)


def _shared_poles_at_imaginary_points(v: Tensor, z: Tensor, w: Tensor, conj: bool) -> bool:
    """S4's case: conjugate pairs, poles w (H, N) shared by every leading batch of v (..., H, N),
    points z = i s on the imaginary axis, no gradient w.r.t. z. The torch backend then runs
    :func:`ssm.kernels.cauchy_pairs` (reciprocals once per (pole, point), real arithmetic)."""
    return (conj and w.dim() == 2 and v.dim() >= 2 and tuple(v.shape[-2:]) == tuple(w.shape)
            and not z.requires_grad and bool((z.real == 0).all()))


_IMPLS = {
    "ref": cauchy_ref,
    "torch": cauchy_torch,
    "keops": cauchy_keops,
    "cuda": lambda *args: cuda_module().cauchy_cuda(*args),  # imported only when chosen
}
