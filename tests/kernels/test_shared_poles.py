"""The shared-pole Cauchy sums at imaginary points (S4's CPU path) against the complex128
reference: values and gradients at awkward sizes, a point at resonance, several channel blocks,
gradcheck and complex64."""

import pytest
import torch

from ssm.kernels import shared_poles as cp
from ssm.kernels import cauchy_ref


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


def _pair_case(batch, H, M, F, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    v = torch.randn(*batch, H, M, dtype=cdtype, generator=g)
    w = torch.complex(-torch.rand(H, M, dtype=dtype, generator=g) - 1e-3,
                      5 * torch.randn(H, M, dtype=dtype, generator=g)).to(cdtype)
    s = torch.tan(torch.pi * torch.arange(F, dtype=torch.float64) / (2 * F + 1)).to(dtype)
    s[-1] = w[0, 0].imag.item()  # a point on a pole's imaginary part (resonance)
    return v.requires_grad_(), s, w.requires_grad_()


@pytest.mark.parametrize("batch,H,M,F", [((), 1, 1, 1), ((2, 2), 3, 5, 7), ((3,), 9, 4, 70)])
def test_cauchy_pairs_matches_reference(batch, H, M, F, monkeypatch):
    """Values and gradients (v and w) against the materializing cauchy_ref in float64; small
    blocks so that several channel blocks are exercised."""
    monkeypatch.setattr(cp, "_BLOCK_ELEMS", 2 * M * F)
    v, s, w = _pair_case(batch, H, M, F, torch.float64)
    out = cp.cauchy_pairs(v, s, w)
    ref = cauchy_ref(v, torch.complex(torch.zeros_like(s), s), w, conj=True)
    assert out.shape == ref.shape == (*batch, H, F)
    assert rel_err(out, ref) < 1e-12
    g = torch.randn_like(ref)
    got = torch.autograd.grad((out * g.conj()).real.sum(), (v, w))
    want = torch.autograd.grad((ref * g.conj()).real.sum(), (v, w))
    for name, a, b in zip("vw", got, want):
        assert rel_err(a, b) < 1e-11, name


def test_cauchy_pairs_float32_and_gradcheck():
    v, s, w = _pair_case((2,), 5, 6, 33, torch.float64, seed=1)
    assert torch.autograd.gradcheck(lambda v, w: cp.cauchy_pairs(v, s, w), (v, w))
    ref = cauchy_ref(v, torch.complex(torch.zeros_like(s), s), w, conj=True)
    out32 = cp.cauchy_pairs(v.detach().to(torch.complex64), s.float(), w.detach().to(torch.complex64))
    assert out32.dtype == torch.complex64
    assert rel_err(out32.to(ref.dtype), ref) < 1e-5


def test_dispatcher_routes_shared_poles_at_imaginary_points(monkeypatch):
    """cauchy(v, i s, w, conj=True) with poles (H, M) shared by v (..., H, M): auto picks torch on the
    CPU and the torch backend runs cauchy_pairs; other calls keep the general paths."""
    import importlib

    from ssm.kernels import backend as B
    from ssm.kernels import cauchy_ref

    C = importlib.import_module("ssm.kernels.cauchy")  # the module (the package exports a function of that name)

    gen = torch.Generator().manual_seed(3)
    v = torch.randn(2, 3, 4, 5, dtype=torch.complex128, generator=gen)
    w = torch.complex(-torch.rand(4, 5, dtype=torch.float64, generator=gen) - 0.1,
                      torch.randn(4, 5, dtype=torch.float64, generator=gen))
    s = torch.linspace(-3, 3, 7, dtype=torch.float64)
    z = torch.complex(torch.zeros_like(s), s)
    calls = []
    real_pairs = C.cauchy_pairs
    monkeypatch.setattr(C, "cauchy_pairs", lambda *a: calls.append(1) or real_pairs(*a))
    assert B.resolve_backend("auto", C.CAUCHY_SHARED, v, 1 << 30) == "torch"
    vv, ww = v.clone().requires_grad_(), w.clone().requires_grad_()
    out = C.cauchy(vv, z, ww, conj=True)
    assert calls, "the shared-pole case must take the pairs path"
    torch.testing.assert_close(out, cauchy_ref(v, z, w, conj=True), rtol=1e-12, atol=1e-12)
    g = torch.randn(out.shape, dtype=out.dtype, generator=gen)
    got = torch.autograd.grad(out, (vv, ww), g)
    vr, wr = v.clone().requires_grad_(), w.clone().requires_grad_()
    want = torch.autograd.grad(cauchy_ref(vr, z, wr, conj=True), (vr, wr), g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    calls.clear()
    C.cauchy(v, z + 0.5, w, conj=True, backend="torch")  # points off the imaginary axis
    C.cauchy(v, z, w, conj=False, backend="torch")  # no conjugate pairs
    C.cauchy(v, z.clone().requires_grad_(), w, conj=True, backend="torch")  # gradient w.r.t. z wanted
    C.cauchy(v, z, w.expand(2, 3, 4, 5), conj=True, backend="torch")  # poles not shared
    assert not calls


def test_empty_batch_of_weights():
    v, s, w = _pair_case((2,), 3, 4, 5, torch.float64)
    v = v.detach()[:0].requires_grad_(True)
    out = cp.cauchy_pairs(v, s, w)  # before: a reshape error ("can be any value and is ambiguous")
    assert out.shape == (0, 3, 5)
    out.abs().sum().backward()
    assert v.grad.shape == v.shape and not w.grad.any()
    assert out.shape == cauchy_ref(v, torch.complex(torch.zeros_like(s), s), w, conj=True).shape


@pytest.mark.parametrize("scale", [1e-3, 1e-6, 1e-8, 1e-10])
def test_cauchy_pairs_float32_tiny_poles_and_zero_point(scale):
    """Poles of size ~scale (S4's dt Lambda / 2 at a tiny dt, one at Re = -1e-4 scale, Im = 0) and the
    point s = 0: |den|^2 ~ |w|^4 underflowed in float32 below |w| ~ 1e-9.5 (NaN values and
    gradients). Values and gradients against the complex128 reference, to float32 accuracy."""
    g = torch.Generator().manual_seed(5)
    lam = torch.complex(torch.tensor([[-1e-4, -1e-4, -0.5, -1e-4]], dtype=torch.float64),
                        torch.tensor([[0.0, 6.28, 3.0, 18.8]], dtype=torch.float64))
    w = scale * lam / 2
    v = torch.randn(2, 1, 4, dtype=torch.complex128, generator=g)
    s = torch.tan(torch.pi * torch.arange(32, dtype=torch.float64) / 64)  # s[0] = 0
    gr = torch.randn(2, 1, 32, dtype=torch.complex128, generator=g)
    vr, wr = v.clone().requires_grad_(), w.clone().requires_grad_()
    ref = cauchy_ref(vr, torch.complex(torch.zeros_like(s), s), wr, conj=True)
    want = torch.autograd.grad((ref * gr.conj()).real.sum(), (vr, wr))
    v32, w32 = v.to(torch.complex64).requires_grad_(), w.to(torch.complex64).requires_grad_()
    out = cp.cauchy_pairs(v32, s.float(), w32)
    got = torch.autograd.grad((out * gr.to(out.dtype).conj()).real.sum(), (v32, w32))
    assert torch.isfinite(torch.view_as_real(out)).all()
    err = ((out.to(ref.dtype) - ref).abs() / ref.abs()).max().item()  # every point, relative
    assert err < 1e-5, f"scale={scale}: float32 rel err {err:.2e}"
    for name, a, b in zip("vw", got, want):
        assert torch.isfinite(torch.view_as_real(a)).all(), name
        assert rel_err(a.to(b.dtype), b) < 1e-5, name
