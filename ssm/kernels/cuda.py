"""CUDA backend of the Cauchy (S4, arXiv 2111.00396 Sec. 3.3) and Vandermonde (S4D, arXiv
2206.11893 Sec. 3) products: the kernels of ``ssm._C`` (csrc/) registered as ``torch.library`` ops
with fake (meta) implementations and autograd formulas, so they work under autograd and
``torch.compile``.

Public ops (flattened batch, shapes checked in the wrappers below and again in csrc/):
``ssm::cauchy(v (B, N), z (L,), w (B, N), conj)``, ``ssm::vandermonde(v (B, N), x (B, N), L, conj)``
and ``ssm::vandermonde_transpose(u (B, L), v (B, N), x (B, N), L)``. Their backward passes use two
more primitives: ``ssm::cauchy_sums(p, q, a, conj, want_s2) -> (S1, S2)`` with
``S_k[b, i] = sum_j a[b, j] / (p[b, i] - q[b, j])^k`` (plus conjugate pairs) and
``ssm::vandermonde_t_sums(u, x, L, weighted) -> (T0, T1)`` with
``T_k[b, n] = sum_l l^k u[b, l] exp(x[b, n] l)``.

Gradients (PyTorch's convention: grad_in = g conj(d out/d in) + conj(g) d out/d conj(in)):
  cauchy:    grad_v = -S1(conj w; conj z, g),  grad_w = conj(v) S2(conj w; conj z, g),
             grad_z = -sum_b g conj(S2(z; w, v))    (the same pairing holds for conj=True);
  vandermonde:  grad_v = c T0(g, conj x),  grad_x = c conj(v) T1(g, conj x),  c = 2 if conj else 1;
  vandermonde_transpose (out = v T0(u, x)):  grad_v = g conj(T0),  grad_x = g conj(v T1),
             grad_u = vandermonde(g conj(v), conj x) (its real part for real u).
"""

from typing import Any

import torch
from torch import Tensor

from ssm.kernels import _ext
from ssm.kernels._common import batch_shape, check_length  # not backend.py: it imports this module

__all__ = [
    "cauchy_cuda",
    "is_available",
    "unavailable_reason",
    "vandermonde_cuda",
    "vandermonde_transpose_cuda",
]

# Device type -> object providing cauchy_sums / vandermonde / vandermonde_t_sums with the
# semantics of csrc/ops.h. "cuda" resolves to the compiled extension on first use; the table lets
# a reference implementation of the same primitives (e.g. on the CPU, in the tests) exercise the
# ops' autograd and fake-tensor plumbing without a GPU. Only explicitly registered entries run.
_PRIMITIVES: dict[str, Any] = {}


def _primitives(t: Tensor) -> Any:
    impl = _PRIMITIVES.get(t.device.type)
    if impl is not None:
        return impl
    if t.device.type == "cuda":
        return _ext.extension()
    raise ValueError(f"the ssm CUDA kernels run on CUDA tensors, got a tensor on {t.device}")


def is_available() -> bool:
    """Whether the CUDA backend can run here: ``ssm._C`` imports and torch sees a CUDA device."""
    return _ext.is_loaded() and torch.cuda.is_available()


def unavailable_reason() -> str:
    """Why the CUDA backend cannot run here, with the command that builds it ("" if it can)."""
    err = _ext.load_error()
    if err is not None:
        return err
    if not torch.cuda.is_available():
        return (
            f"ssm._C is built, but torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device "
            "(torch.cuda.is_available() is False)"
        )
    return ""


# ------------------------------------------------------------------------------------ primitives
@torch.library.custom_op("ssm::cauchy_sums", mutates_args=())
def _cauchy_sums(p: Tensor, q: Tensor, a: Tensor, conj: bool, want_s2: bool) -> tuple[Tensor, Tensor]:
    s1, s2 = _primitives(a).cauchy_sums(p, q, a, conj, want_s2)
    return s1, s2


@_cauchy_sums.register_fake
def _(p: Tensor, q: Tensor, a: Tensor, conj: bool, want_s2: bool) -> tuple[Tensor, Tensor]:
    shape = (a.shape[0], p.shape[1])
    return a.new_empty(shape), a.new_empty(shape if want_s2 else (0,))


@torch.library.custom_op("ssm::vandermonde_t_sums", mutates_args=())
def _vandermonde_t_sums(u: Tensor, x: Tensor, L: int, weighted: bool) -> tuple[Tensor, Tensor]:
    s0, s1 = _primitives(x).vandermonde_t_sums(u, x, L, weighted)
    return s0, s1


@_vandermonde_t_sums.register_fake
def _(u: Tensor, x: Tensor, L: int, weighted: bool) -> tuple[Tensor, Tensor]:
    return x.new_empty(x.shape), x.new_empty(x.shape if weighted else (0,))


# ------------------------------------------------------------------------------------ cauchy
@torch.library.custom_op("ssm::cauchy", mutates_args=())
def _cauchy(v: Tensor, z: Tensor, w: Tensor, conj: bool) -> Tensor:
    return _primitives(v).cauchy_sums(z.unsqueeze(0), w, v, conj, False)[0]


@_cauchy.register_fake
def _(v: Tensor, z: Tensor, w: Tensor, conj: bool) -> Tensor:
    return v.new_empty((v.shape[0], z.shape[0]))


def _cauchy_setup(ctx: Any, inputs: tuple, output: Tensor) -> None:
    v, z, w, conj = inputs
    ctx.save_for_backward(v, z, w)
    ctx.conj = conj


def _cauchy_backward(ctx: Any, g: Tensor) -> tuple:
    v, z, w = ctx.saved_tensors
    need_v, need_z, need_w = ctx.needs_input_grad[:3]
    gv = gz = gw = None
    if need_v or need_w:
        p, q = w.conj_physical(), z.conj_physical().unsqueeze(0)
        s1, s2 = torch.ops.ssm.cauchy_sums(p, q, g, ctx.conj, need_w)
        gv = -s1 if need_v else None
        gw = v.conj() * s2 if need_w else None
    if need_z:
        s2z = torch.ops.ssm.cauchy_sums(z.unsqueeze(0), w, v, ctx.conj, True)[1]
        gz = -(g * s2z.conj()).sum(0)
    return gv, gz, gw, None


_cauchy.register_autograd(_cauchy_backward, setup_context=_cauchy_setup)


# ------------------------------------------------------------------------------------ vandermonde
@torch.library.custom_op("ssm::vandermonde", mutates_args=())
def _vandermonde(v: Tensor, x: Tensor, L: int, conj: bool) -> Tensor:
    return _primitives(x).vandermonde(v, x, L, conj)


@_vandermonde.register_fake
def _(v: Tensor, x: Tensor, L: int, conj: bool) -> Tensor:
    dtype = v.real.dtype if conj else v.dtype
    return v.new_empty((v.shape[0], L), dtype=dtype)


def _vandermonde_setup(ctx: Any, inputs: tuple, output: Tensor) -> None:
    v, x, L, conj = inputs
    ctx.save_for_backward(v, x)
    ctx.L, ctx.conj = L, conj


def _vandermonde_backward(ctx: Any, g: Tensor) -> tuple:
    v, x = ctx.saved_tensors
    need_v, need_x = ctx.needs_input_grad[:2]
    if not (need_v or need_x):
        return None, None, None, None
    s0, s1 = torch.ops.ssm.vandermonde_t_sums(g, x.conj_physical(), ctx.L, need_x)
    scale = 2.0 if ctx.conj else 1.0  # conj=True: the conjugate pair contributes the same again
    gv = scale * s0 if need_v else None
    gx = scale * v.conj() * s1 if need_x else None
    return gv, gx, None, None


_vandermonde.register_autograd(_vandermonde_backward, setup_context=_vandermonde_setup)


@torch.library.custom_op("ssm::vandermonde_transpose", mutates_args=())
def _vandermonde_transpose(u: Tensor, v: Tensor, x: Tensor, L: int) -> Tensor:
    return v * _primitives(x).vandermonde_t_sums(u, x, L, False)[0]


@_vandermonde_transpose.register_fake
def _(u: Tensor, v: Tensor, x: Tensor, L: int) -> Tensor:
    return v.new_empty(v.shape)


def _vandermonde_transpose_setup(ctx: Any, inputs: tuple, output: Tensor) -> None:
    u, v, x, L = inputs
    ctx.save_for_backward(u, v, x)
    ctx.L = L


def _vandermonde_transpose_backward(ctx: Any, g: Tensor) -> tuple:
    u, v, x = ctx.saved_tensors
    need_u, need_v, need_x = ctx.needs_input_grad[:3]
    gu = gv = gx = None
    if need_v or need_x:  # recompute T0 (and T1) rather than keep them from the forward pass
        s0, s1 = torch.ops.ssm.vandermonde_t_sums(u, x, ctx.L, need_x)
        gv = g * s0.conj() if need_v else None
        gx = g * (v * s1).conj() if need_x else None
    if need_u:
        gu = torch.ops.ssm.vandermonde(g * v.conj(), x.conj_physical(), ctx.L, False)
        gu = gu if u.is_complex() else gu.real.contiguous()
    return gu, gv, gx, None


_vandermonde_transpose.register_autograd(
    _vandermonde_transpose_backward, setup_context=_vandermonde_transpose_setup
)


# ------------------------------------------------------------------------------------ wrappers
def _check(op: str, tensors: dict[str, Tensor], dtype: torch.dtype) -> None:
    for name, t in tensors.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() == 0:
            raise ValueError(f"{op}: {name} must have at least one dimension, got a scalar")
    if dtype not in (torch.complex64, torch.complex128):
        raise TypeError(f"{op}: v must be complex64 or complex128, got {dtype}")
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        named = {n: str(t.device) for n, t in tensors.items()}
        raise ValueError(f"{op}: all inputs must be on one device, got {named}")
    device = devices.pop()
    if device.type != "cuda" and device.type not in _PRIMITIVES:
        raise ValueError(f"{op}: needs CUDA tensors, got tensors on {device}; move them with .cuda()")


def _flat(t: Tensor, batch: torch.Size) -> Tensor:
    return t.expand(*batch, t.shape[-1]).reshape(-1, t.shape[-1])


def cauchy_cuda(v: Tensor, z: Tensor, w: Tensor, conj: bool = False) -> Tensor:
    """``sum_n v[..., n] / (z[l] - w[..., n])`` (+ ``conj(v) / (z - conj(w))`` if ``conj``).

    Args:
        v, w: (..., N) complex64/complex128 on one CUDA device; leading dims broadcast.
        z: (L,) points, same dtype.
    Returns:
        (..., L) complex; differentiable w.r.t. v, z and w.
    """
    op = "cauchy_cuda"
    _check(op, {"v": v, "z": z, "w": w}, v.dtype if isinstance(v, Tensor) else None)
    for name, t in (("z", z), ("w", w)):
        if t.dtype != v.dtype:
            raise TypeError(f"{op}: {name} must have v's dtype {v.dtype}, got {t.dtype}")
    if z.dim() != 1:
        raise ValueError(f"{op}: z must be 1-D (L,), got shape {tuple(z.shape)}")
    if v.shape[-1] != w.shape[-1]:
        raise ValueError(f"{op}: v and w must share the last dim N, got {tuple(v.shape)}, {tuple(w.shape)}")
    batch = batch_shape(op, v=v, w=w)
    out = torch.ops.ssm.cauchy(_flat(v, batch), z, _flat(w, batch), bool(conj))
    return out.reshape(*batch, z.shape[0])


def vandermonde_cuda(v: Tensor, x: Tensor, L: int, conj: bool = False) -> Tensor:
    """``sum_n v[..., n] exp(x[..., n] l)`` for l < L; ``conj``: the real ``2 Re(...)``.

    Args:
        v, x: (..., N) complex64/complex128 on one CUDA device; leading dims broadcast.
        L: int >= 1 (at most 2^24 in complex64).
    Returns:
        (..., L), complex (real if ``conj``); differentiable w.r.t. v and x.
    """
    op = "vandermonde_cuda"
    _check(op, {"v": v, "x": x}, v.dtype if isinstance(v, Tensor) else None)
    L = check_length(op, L)
    if x.dtype != v.dtype:
        raise TypeError(f"{op}: x must have v's dtype {v.dtype}, got {x.dtype}")
    if v.shape[-1] != x.shape[-1]:
        raise ValueError(f"{op}: v and x must share the last dim N, got {tuple(v.shape)}, {tuple(x.shape)}")
    batch = batch_shape(op, v=v, x=x)
    return torch.ops.ssm.vandermonde(_flat(v, batch), _flat(x, batch), L, bool(conj)).reshape(*batch, L)


def vandermonde_transpose_cuda(u: Tensor, v: Tensor, x: Tensor, L: int) -> Tensor:
    """``out[..., n] = v[..., n] sum_{l<L} u[..., l] exp(x[..., n] l)``.

    Args:
        u: (..., L) complex of v's dtype, or real of its precision; leading dims broadcast with v's, x's.
        v, x: (..., N) complex64/complex128 on one CUDA device.
        L: int >= 1, equal to u.shape[-1].
    Returns:
        (..., N) complex; differentiable w.r.t. u, v and x.
    """
    op = "vandermonde_transpose_cuda"
    _check(op, {"u": u, "v": v, "x": x}, v.dtype if isinstance(v, Tensor) else None)
    L = check_length(op, L)
    if x.dtype != v.dtype:
        raise TypeError(f"{op}: x must have v's dtype {v.dtype}, got {x.dtype}")
    if u.dtype not in (v.dtype, v.real.dtype):
        raise TypeError(f"{op}: u must be {v.real.dtype} or {v.dtype} to match v, got {u.dtype}")
    if u.shape[-1] != L:
        raise ValueError(f"{op}: u must have shape (..., L) with L={L}, got {tuple(u.shape)}")
    if v.shape[-1] != x.shape[-1]:
        raise ValueError(f"{op}: v and x must share the last dim N, got {tuple(v.shape)}, {tuple(x.shape)}")
    batch = batch_shape(op, u=u, v=v, x=x)
    out = torch.ops.ssm.vandermonde_transpose(_flat(u, batch), _flat(v, batch), _flat(x, batch), L)
    return out.reshape(*batch, v.shape[-1])
