"""Cauchy kernel: every backend against the complex128 reference (values and gradients), awkward
sizes, both dtypes, batch dims 0/1/2, gradcheck, and the conjugate-pair identity."""

from __future__ import annotations

import math

import pytest
import torch

from ssm.kernels import cauchy, cauchy_ref

from kernel_sizes import BATCHES, DTYPES, KEOPS_CASES, L_SIZES, N_SIZES, SWEEP, gpu_backend_sweep


def make_inputs(batch: tuple[int, ...], N: int, L: int, gen: torch.Generator):
    """complex128 S4-like inputs: poles in the left half-plane, z on the bilinear image of the
    (half-shifted) roots of unity, so every denominator is bounded away from zero."""
    v = torch.randn(*batch, N, dtype=torch.complex128, generator=gen)
    w = torch.complex(-torch.empty(*batch, N, dtype=torch.float64).uniform_(0.05, 1.0, generator=gen),
                      N / 2 * torch.randn(*batch, N, dtype=torch.float64, generator=gen))
    omega = torch.exp(-2j * math.pi * (torch.arange(L, dtype=torch.float64) + 0.5) / L)
    z = 2 * (1 - omega) / (1 + omega)
    return v, z, w


def value_and_grads(fn, inputs, grad_out, wrt):
    inputs = [t.detach().clone().requires_grad_(i in wrt) for i, t in enumerate(inputs)]
    out = fn(*inputs)
    grads = torch.autograd.grad(out, [inputs[i] for i in wrt], grad_out.to(out.dtype))
    return out.detach(), grads


def compare(backend, conj, L, N, nb, dtype, gen, check, wrt=(0, 2), device="cpu"):
    v, z, w = make_inputs(BATCHES[nb], N, L, gen)
    grad_out = torch.randn(*BATCHES[nb], L, dtype=torch.complex128, generator=gen).to(device)

    def run(b, dt):
        return value_and_grads(lambda v_, z_, w_: cauchy(v_, z_, w_, conj=conj, backend=b),
                               [t.to(device, dt) for t in (v, z, w)], grad_out, wrt)

    exact, exact_g = run("ref", torch.complex128)
    ref_wp, ref_g = run("ref", dtype)
    fast, fast_g = run(backend, dtype)
    tag = f"{backend} conj={conj} L={L} N={N} batch={BATCHES[nb]} {dtype} {device}"
    check(fast, ref_wp, exact, dtype, f"value {tag}")
    for i, ge, gr, gf in zip(wrt, exact_g, ref_g, fast_g):
        check(gf, gr, ge, dtype, f"grad[{'vzw'[i]}] {tag}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("L,N,nb", SWEEP)
def test_torch_matches_reference(L, N, nb, dtype, gen, check_accuracy):
    """The conjugate form S4 uses, over the full size grid."""
    compare("torch", True, L, N, nb, dtype, gen, check_accuracy)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("L,N,nb", KEOPS_CASES)
def test_torch_plain_form_matches_reference(L, N, nb, dtype, gen, check_accuracy):
    compare("torch", False, L, N, nb, dtype, gen, check_accuracy)


@pytest.mark.keops
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("L,N,nb", KEOPS_CASES)
@pytest.mark.parametrize("conj", [False, True])
def test_keops_matches_reference(conj, L, N, nb, dtype, gen, check_accuracy, keops_required):
    compare("keops", conj, L, N, nb, dtype, gen, check_accuracy)


@gpu_backend_sweep
def test_backends_on_gpu_match_reference(backend, L, N, nb, dtype, gen, check_accuracy, gpu_backend):
    """Every backend on CUDA tensors (both forms, gradients w.r.t. v, z and w) against complex128."""
    gpu_backend(backend)
    for conj in (False, True):
        compare(backend, conj, L, N, nb, dtype, gen, check_accuracy, wrt=(0, 1, 2), device="cuda")


@pytest.mark.parametrize(
    "backend", ["torch", pytest.param("keops", marks=pytest.mark.keops)]
)
def test_gradient_wrt_z(backend, gen, check_accuracy, request):
    if backend == "keops":
        request.getfixturevalue("keops_required")
    for conj in (False, True):
        compare(backend, conj, 17, 8, 1, torch.complex128, gen, check_accuracy, wrt=(0, 1, 2))


def test_reference_is_the_explicit_sum(gen):
    """cauchy_ref equals the scalar double loop, and conj=True adds exactly the conjugate pairs."""
    v, z, w = make_inputs((), 3, 4, gen)
    loop = torch.tensor([sum(v[n] / (z[l] - w[n]) for n in range(3)) for l in range(4)])
    torch.testing.assert_close(cauchy_ref(v, z, w), loop, rtol=1e-14, atol=0)
    pairs = torch.cat([v, v.conj()]), torch.cat([w, w.conj()])
    torch.testing.assert_close(cauchy_ref(v, z, w, conj=True), cauchy_ref(pairs[0], z, pairs[1]))


def test_conj_form_is_real_on_conjugate_symmetric_points(gen):
    """For real z the conjugate-pair sum is real: the imaginary parts cancel pairwise."""
    v, _, w = make_inputs((2,), 16, 5, gen)
    z = torch.linspace(-3, 3, 5, dtype=torch.float64).to(torch.complex128)
    for backend in ("ref", "torch"):
        out = cauchy(v, z, w, conj=True, backend=backend)
        assert out.imag.abs().max() < 1e-12 * out.abs().max(), backend


def test_gradcheck_reference(gen):
    v, z, w = (t.requires_grad_() for t in make_inputs((2,), 3, 4, gen))
    for conj in (False, True):
        assert torch.autograd.gradcheck(lambda a, b, c: cauchy_ref(a, b, c, conj), (v, z, w))


@pytest.mark.parametrize("backend", ["torch", pytest.param("keops", marks=pytest.mark.keops)])
def test_gradcheck_fast_backends(backend, gen, request):
    if backend == "keops":
        request.getfixturevalue("keops_required")
    v, z, w = (t.requires_grad_() for t in make_inputs((2,), 3, 5, gen))
    assert torch.autograd.gradcheck(lambda a, b, c: cauchy(a, b, c, True, backend), (v, z, w))


def test_broadcasting_and_shapes(gen):
    """v (H, N) with shared poles w (N,): out (H, L); gradients keep each input's shape."""
    v, z, w = make_inputs((4,), 6, 9, gen)
    w = w[0].clone()
    for backend in ("ref", "torch"):
        vv, ww = v.clone().requires_grad_(), w.clone().requires_grad_()
        out = cauchy(vv, z, ww, conj=True, backend=backend)
        assert out.shape == (4, 9)
        out.abs().sum().backward()
        assert vv.grad.shape == vv.shape and ww.grad.shape == ww.shape
    torch.testing.assert_close(cauchy(v, z, w, backend="torch"), cauchy_ref(v, z, w))


def test_conj_must_be_a_bool():
    v = torch.randn(3, 4, dtype=torch.complex64)
    with pytest.raises(TypeError, match=r"cauchy: conj must be a bool \(True or False\), got 'no'"):
        cauchy(v, torch.randn(5, dtype=torch.complex64), v, conj="no")  # "no" would be truthy
