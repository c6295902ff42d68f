"""Vandermonde kernel and its transpose: every backend against the complex128 reference (values
and gradients), awkward sizes, both dtypes, batch dims 0/1/2, gradcheck, and the algebra linking them."""

from __future__ import annotations

import math

import pytest
import torch

from ssm.kernels import vandermonde, vandermonde_ref, vandermonde_transpose, vandermonde_transpose_ref

from kernel_sizes import BATCHES, DTYPES, KEOPS_CASES, L_SIZES, N_SIZES, SWEEP, gpu_backend_sweep


def make_inputs(batch: tuple[int, ...], N: int, L: int, gen: torch.Generator):
    """complex128 S4D-like inputs: x = dt * Lambda with Lambda = -a + i pi n (S4D-Lin-like),
    dt log-uniform in [1e-3, 1e-1] per batch entry (so phases reach ~1e5 rad at L = 4097)."""
    f64 = torch.float64
    v = torch.randn(*batch, N, dtype=torch.complex128, generator=gen)
    dt = torch.exp(torch.empty(*batch, 1, dtype=f64).uniform_(math.log(1e-3), math.log(1e-1), generator=gen))
    lam = torch.complex(-torch.empty(*batch, N, dtype=f64).uniform_(0.1, 1.0, generator=gen),
                        math.pi * torch.arange(N, dtype=f64).expand(*batch, N))
    return v, dt * lam


def op_and_inputs(variant: str, batch, N: int, L: int, gen: torch.Generator):
    """The function under test (backend, *inputs) and its complex128 inputs."""
    v, x = make_inputs(batch, N, L, gen)
    if variant in ("plain", "conj"):
        conj = variant == "conj"
        return (lambda b, v_, x_: vandermonde(v_, x_, L, conj=conj, backend=b)), [v, x]
    # u carries an extra leading batch dim that broadcasts against v and x (u (B, ..., L), v (..., N))
    u = torch.randn(2, *batch, L, dtype=torch.float64, generator=gen)
    if variant == "transpose_complex_u":
        u = torch.complex(u, torch.randn(u.shape, dtype=torch.float64, generator=gen))
    return (lambda b, u_, v_, x_: vandermonde_transpose(u_, v_, x_, L, backend=b)), [u, v, x]


def cast(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if t.is_complex():
        return t.to(dtype)
    return t.to(torch.float32 if dtype == torch.complex64 else torch.float64)


def compare(backend, variant, L, N, nb, dtype, gen, check, device="cpu"):
    fn, inputs = op_and_inputs(variant, BATCHES[nb], N, L, gen)
    grad_out = None

    def run(b, dt):
        nonlocal grad_out
        ins = [cast(t, dt).to(device).requires_grad_() for t in inputs]
        out = fn(b, *ins)
        if grad_out is None:
            grad_out = torch.randn(out.shape, dtype=torch.complex128 if out.is_complex() else torch.float64,
                                   generator=gen).to(device)
        grads = torch.autograd.grad(out, ins, grad_out.to(out.dtype))
        return out.detach(), grads

    exact, exact_g = run("ref", torch.complex128)
    ref_wp, ref_g = run("ref", dtype)
    fast, fast_g = run(backend, dtype)
    tag = f"{backend} {variant} L={L} N={N} batch={BATCHES[nb]} {dtype} {device}"
    check(fast, ref_wp, exact, dtype, f"value {tag}")
    for i, (ge, gr, gf) in enumerate(zip(exact_g, ref_g, fast_g)):
        check(gf, gr, ge, dtype, f"grad[{i}] {tag}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("L,N,nb", SWEEP)
@pytest.mark.parametrize("variant", ["conj", "transpose_real_u"])
def test_torch_matches_reference(variant, L, N, nb, dtype, gen, check_accuracy):
    """The forms the layers use, over the full size grid."""
    compare("torch", variant, L, N, nb, dtype, gen, check_accuracy)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("L,N,nb", KEOPS_CASES)
@pytest.mark.parametrize("variant", ["plain", "transpose_complex_u"])
def test_torch_other_forms_match_reference(variant, L, N, nb, dtype, gen, check_accuracy):
    compare("torch", variant, L, N, nb, dtype, gen, check_accuracy)


@pytest.mark.keops
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("L,N,nb", KEOPS_CASES)
@pytest.mark.parametrize("variant", ["conj", "transpose_real_u"])
def test_keops_matches_reference(variant, L, N, nb, dtype, gen, check_accuracy, keops_required):
    """The forms the layers use: S4D/DSS's conj kernel and the transpose with a real input."""
    compare("keops", variant, L, N, nb, dtype, gen, check_accuracy)


@gpu_backend_sweep
def test_backends_on_gpu_match_reference(backend, L, N, nb, dtype, gen, check_accuracy, gpu_backend):
    """Every backend on CUDA tensors, every form (values and gradients), against complex128."""
    gpu_backend(backend)
    for variant in ("plain", "conj", "transpose_real_u", "transpose_complex_u"):
        compare(backend, variant, L, N, nb, dtype, gen, check_accuracy, device="cuda")


@pytest.mark.keops
@pytest.mark.parametrize("variant", ["plain", "transpose_complex_u"])
def test_keops_other_forms(variant, gen, check_accuracy, keops_required):
    compare("keops", variant, 17, 64, 1, torch.complex128, gen, check_accuracy)


def test_reference_is_the_explicit_sum(gen):
    v, x = make_inputs((), 3, 4, gen)
    loop = torch.stack([sum(v[n] * torch.exp(x[n] * l) for n in range(3)) for l in range(4)])
    torch.testing.assert_close(vandermonde_ref(v, x, 4), loop, rtol=1e-14, atol=0)
    torch.testing.assert_close(vandermonde_ref(v, x, 4, conj=True), 2 * loop.real, rtol=1e-14, atol=0)
    u = torch.randn(4, dtype=torch.float64, generator=gen)
    loop_t = v * torch.stack([sum(u[l] * torch.exp(x[n] * l) for l in range(4)) for n in range(3)])
    torch.testing.assert_close(vandermonde_transpose_ref(u, v, x, 4), loop_t, rtol=1e-14, atol=0)


@pytest.mark.parametrize("backend", ["ref", "torch"])
def test_transpose_is_the_adjoint(backend, gen):
    """sum_l u_l vandermonde(v, x)_l = sum_n vandermonde_transpose(u, v, x)_n: the two ops are
    transposes of each other (bilinear form, no conjugation)."""
    v, x = make_inputs((3,), 8, 50, gen)
    u = torch.randn(3, 50, dtype=torch.complex128, generator=gen)
    lhs = (u * vandermonde(v, x, 50, backend=backend)).sum(-1)
    rhs = vandermonde_transpose(u, v, x, 50, backend=backend).sum(-1)
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-12)


def test_conj_form_matches_explicit_pairs(gen):
    """conj=True is the plain sum over (v, x) and (conj v, conj x), which is real."""
    v, x = make_inputs((2,), 8, 33, gen)
    pairs = vandermonde(torch.cat([v, v.conj()], -1), torch.cat([x, x.conj()], -1), 33, backend="torch")
    assert pairs.imag.abs().max() < 1e-12 * pairs.abs().max()
    torch.testing.assert_close(vandermonde(v, x, 33, conj=True, backend="torch"), pairs.real)


def test_kernel_is_the_diagonal_ssm_impulse_response(gen):
    """K[l] = 2 Re(C diag(exp(x))^l B): the step-by-step power of a diagonal state matrix."""
    v, x = make_inputs((), 6, 20, gen)
    state, powers = torch.ones(6, dtype=torch.complex128), []
    for _ in range(20):
        powers.append(2 * (v * state).sum().real)
        state = state * torch.exp(x)
    torch.testing.assert_close(vandermonde(v, x, 20, conj=True, backend="torch"), torch.stack(powers))


def test_gradcheck_reference(gen):
    v, x = (t.requires_grad_() for t in make_inputs((2,), 3, 5, gen))
    u = torch.randn(2, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    for conj in (False, True):
        assert torch.autograd.gradcheck(lambda a, b: vandermonde_ref(a, b, 5, conj), (v, x))
    assert torch.autograd.gradcheck(lambda a, b, c: vandermonde_transpose_ref(a, b, c, 5), (u, v, x))


@pytest.mark.parametrize("backend", ["torch", pytest.param("keops", marks=pytest.mark.keops)])
def test_gradcheck_fast_backends(backend, gen, request):
    if backend == "keops":
        request.getfixturevalue("keops_required")
    v, x = (t.requires_grad_() for t in make_inputs((2,), 3, 7, gen))
    u = torch.randn(2, 7, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: vandermonde(a, b, 7, True, backend), (v, x))
    assert torch.autograd.gradcheck(lambda a, b, c: vandermonde_transpose(a, b, c, 7, backend), (u, v, x))


def test_conj_must_be_a_bool():
    v = torch.randn(3, 4, dtype=torch.complex64)
    with pytest.raises(TypeError, match=r"vandermonde: conj must be a bool \(True or False\), got 1"):
        vandermonde(v, v, 5, conj=1)
