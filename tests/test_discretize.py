"""ZOH / bilinear: diagonal path == dense reference (SciPy expm), scalar closed forms, dt handling."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from ssm.discretize import (
    DT_TRANSFORMS,
    bilinear,
    dt_from_param,
    dt_to_param,
    init_log_dt,
    zoh,
)
from ssm.init import MEASURES, hippo, nplr


def dense_zoh_scipy(dt, A, B):
    """Reference: Ad = expm(dt A); Bd from the block exponential (no inverse of A)."""
    N = A.shape[0]
    M = np.zeros((N + 1, N + 1), dtype=np.result_type(A, B))
    M[:N, :N], M[:N, N] = A, B
    E = scipy.linalg.expm(M * dt)
    return E[:N, :N], E[:N, N]


def dense_bilinear_np(dt, A, B):
    I = np.eye(A.shape[0])
    return np.linalg.solve(I - dt / 2 * A, I + dt / 2 * A), np.linalg.solve(I - dt / 2 * A, dt * B)


def random_stable_diag(n, gen):
    re = -torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 0.01
    im = torch.randn(n, generator=gen, dtype=torch.float64) * 10
    B = torch.randn(n, generator=gen, dtype=torch.complex128)
    return torch.complex(re, im), B


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
@pytest.mark.parametrize("dt", [1e-3, 0.05, 1.0])
def test_diagonal_equals_dense_random(method, dt):
    gen = torch.Generator().manual_seed(0)
    for n in (1, 3, 17):
        Lam, B = random_stable_diag(n, gen)
        fn = zoh if method == "zoh" else bilinear
        Ad, Bd = fn(dt, Lam, B)
        A_np, B_np = np.diag(Lam.numpy()), B.numpy()
        ref = dense_zoh_scipy(dt, A_np, B_np) if method == "zoh" else dense_bilinear_np(dt, A_np, B_np)
        np.testing.assert_allclose(np.diag(ref[0]), Ad.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(ref[1], Bd.numpy(), rtol=1e-10, atol=1e-14)
        # and the package's dense path agrees with SciPy
        Ad2, Bd2 = fn(dt, torch.from_numpy(A_np), B)
        np.testing.assert_allclose(Ad2.numpy(), ref[0], rtol=0, atol=1e-13 * np.abs(ref[0]).max())
        np.testing.assert_allclose(Bd2.numpy(), ref[1], rtol=0, atol=1e-12 * np.abs(ref[1]).max())


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_hippo_dense_vs_diagonalized(measure, method):
    """Discretize the normal part S of each HiPPO matrix densely (SciPy) and in its eigenbasis."""
    N, dt = 16, 0.01
    Lambda, P, Bt, V = nplr(measure, N)
    p = 2 * (V @ P.T).real
    A, B = hippo(measure, N)
    S = (A + p @ p.T).numpy()
    fn = zoh if method == "zoh" else bilinear
    Ad_diag, Bd_diag = fn(dt, Lambda, Bt)
    Ad = 2 * (V @ torch.diag(Ad_diag) @ V.conj().T).real
    Bd = 2 * (V @ Bd_diag).real
    ref = dense_zoh_scipy(dt, S, B.numpy()) if method == "zoh" else dense_bilinear_np(dt, S, B.numpy())
    np.testing.assert_allclose(Ad.numpy(), ref[0], rtol=0, atol=1e-11)
    np.testing.assert_allclose(Bd.numpy(), ref[1], rtol=0, atol=1e-11)


@pytest.mark.parametrize("measure", MEASURES)
def test_dense_hippo_matches_scipy(measure):
    """The package's dense ZOH (torch matrix_exp of the block matrix) vs SciPy; FouT's A is singular."""
    N, dt = 32, 0.02
    A, B = hippo(measure, N)
    for fn, reffn in ((zoh, dense_zoh_scipy), (bilinear, dense_bilinear_np)):
        Ad, Bd = fn(dt, A, B)
        ref = reffn(dt, A.numpy(), B.numpy())
        np.testing.assert_allclose(Ad.numpy(), ref[0], rtol=0, atol=1e-12 * np.abs(ref[0]).max())
        np.testing.assert_allclose(Bd.numpy(), ref[1], rtol=0, atol=1e-12 * np.abs(ref[1]).max())
    if measure == "fout":
        assert np.linalg.matrix_rank(A.numpy()) < N


def test_scalar_closed_forms():
    for a in (-2.0, -0.3 + 5j, 0.7):
        for dt in (1e-4, 0.1, 2.0):
            A = torch.tensor([a], dtype=torch.complex128)
            B = torch.tensor([1.5], dtype=torch.complex128)
            Ad, Bd = zoh(dt, A, B)
            assert abs(Ad.item() - np.exp(a * dt)) < 1e-14
            assert abs(Bd.item() - (np.exp(a * dt) - 1) / a * 1.5) < 1e-12 * max(1, abs(Bd.item()))
            Ad, Bd = bilinear(dt, A, B)
            assert abs(Ad.item() - (1 + a * dt / 2) / (1 - a * dt / 2)) < 1e-13
            assert abs(Bd.item() - dt / (1 - a * dt / 2) * 1.5) < 1e-13
    # A = 0 (integrator): ZOH gives Bd = dt * B without a 0/0
    A0 = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    Ad, Bd = zoh(0.25, A0, torch.ones(1, dtype=torch.float64))
    assert Ad.item() == 1.0 and abs(Bd.item() - 0.25) < 1e-15
    (grad,) = torch.autograd.grad(Bd.sum(), A0)  # d/da [(e^{a dt} - 1)/a] at a = 0 is dt^2 / 2
    assert abs(grad.item() - 0.25**2 / 2) < 1e-15


def test_broadcasting_and_gradients():
    gen = torch.Generator().manual_seed(1)
    H, N = 3, 4
    dt = torch.rand(H, 1, generator=gen, dtype=torch.float64) * 0.1 + 0.01
    Lam, B = random_stable_diag(N, gen)
    Lam = Lam.expand(H, N).clone().requires_grad_()
    B = B.expand(H, N).clone()
    dt.requires_grad_()
    for fn in (zoh, bilinear):
        Ad, Bd = fn(dt, Lam, B, diagonal=True)
        assert Ad.shape == (H, N) and Bd.shape == (H, N)
        for h in range(H):
            Ad1, Bd1 = fn(dt[h, 0].item(), Lam[h].detach(), B[h])
            torch.testing.assert_close(Ad[h].detach(), Ad1)
            torch.testing.assert_close(Bd[h].detach(), Bd1)
        assert torch.autograd.gradcheck(
            lambda d, l: torch.view_as_real(fn(d, l, B, diagonal=True)[1]), (dt, Lam)
        )
    # dense path is differentiable too (gradcheck on a small system)
    A = torch.randn(3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    Bv = torch.randn(3, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: torch.cat([t.flatten() for t in zoh(0.3, a, Bv)]), (A,))


def test_batched_dense():
    gen = torch.Generator().manual_seed(2)
    A = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    B = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    dt = torch.tensor([0.1, 0.5], dtype=torch.float64)
    Ad, Bd = zoh(dt, A, B)
    assert Ad.shape == (2, 4, 4) and Bd.shape == (2, 4, 2)
    for i in range(2):
        M = np.zeros((6, 6))
        M[:4, :4], M[:4, 4:] = A.numpy(), B.numpy()
        E = scipy.linalg.expm(M * dt[i].item())
        np.testing.assert_allclose(Ad[i].numpy(), E[:4, :4], atol=1e-12)
        np.testing.assert_allclose(Bd[i].numpy(), E[:4, 4:], atol=1e-12)


def test_invalid_dt_and_shapes_raise():
    A = torch.tensor([-1.0, -2.0])
    B = torch.ones(2)
    for bad in (0.0, -0.1, float("nan"), float("inf")):
        for fn in (zoh, bilinear):
            with pytest.raises(ValueError, match="dt must be finite and > 0"):
                fn(bad, A, B)
    with pytest.raises(ValueError, match="diagonal=True"):
        zoh(0.1, torch.zeros(3, 5), torch.ones(3, 5))
    with pytest.raises(ValueError, match="dt_min must be <= dt_max"):
        init_log_dt(4, dt_min=0.1, dt_max=0.01)
    for kw in ({"dt_min": 0.0}, {"dt_min": -1e-3}, {"dt_max": float("inf")}, {"dt_min": float("nan")}):
        with pytest.raises(ValueError, match="must be a finite number > 0"):
            init_log_dt(4, **kw)
    with pytest.raises(ValueError, match="transform must be one of"):
        dt_from_param(torch.zeros(2), "relu")


def test_init_log_dt_distribution_and_determinism():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    x = init_log_dt((20000,), 1e-3, 1e-1, generator=g1)
    torch.testing.assert_close(x, init_log_dt((20000,), 1e-3, 1e-1, generator=g2), rtol=0, atol=0)
    lo, hi = math.log(1e-3), math.log(1e-1)
    assert x.min() >= lo and x.max() <= hi
    # log-uniform: mean and variance of a uniform on [lo, hi]
    assert abs(x.mean().item() - (lo + hi) / 2) < 0.05
    assert abs(x.var().item() - (hi - lo) ** 2 / 12) < 0.05
    assert init_log_dt(5, 0.01, 0.01).allclose(torch.full((5,), math.log(0.01)))


@pytest.mark.parametrize("name", sorted(DT_TRANSFORMS))
def test_dt_transforms_roundtrip(name):
    dt = torch.logspace(-5, 2, 50, dtype=torch.float64)
    p = dt_to_param(dt, name)
    torch.testing.assert_close(dt_from_param(p, name), dt, rtol=1e-12, atol=0)
    assert (dt_from_param(torch.linspace(-50, 50, 101, dtype=torch.float64), name) > 0).all()


# ---------------------------------------------------------------- ZOH input factor phi1(z) = expm1(z)/z
def phi1_ref(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """phi1 and its derivative phi1'(z) = (z e^z - e^z + 1)/z^2 in complex128: 40 Taylor terms for
    |z| < 2 (terms decrease from the first, no cancellation), the closed forms for |z| >= 2 (there
    the two terms of the derivative's numerator do not cancel to below ~1/6 of their size)."""
    z = z.to(torch.complex128)
    big = z.abs() >= 2
    zs = torch.where(big, torch.zeros_like(z), z)
    val, der = torch.zeros_like(z), torch.zeros_like(z)
    for k in range(40):
        val = val + zs**k / float(math.factorial(k + 1))
        if k:
            der = der + k * zs ** (k - 1) / float(math.factorial(k + 1))
    zb = torch.where(big, z, torch.ones_like(z))
    val = torch.where(big, torch.expm1(zb) / zb, val)
    der = torch.where(big, (zb * torch.exp(zb) - torch.expm1(zb)) / zb**2, der)
    return val, der


# Tiny (z = 0 exactly, subnormal-adjacent, the 1e-7 scale where the closed form's gradient vanished
# in complex64), small, either side of the series radius |z| = 1, moderate and large (S4D-Lin scale).
PHI1_Z = [0, 1e-30, 1e-7 + 1e-7j, -3e-6j, 1e-4, -1e-3 + 2e-3j, 0.05 - 0.02j, 0.3 - 0.4j, 0.999j, -1.0,
          1.001j, -0.7 + 0.72j, 0.9 + 0.1j, 1.5 + 0.5j, -2 + 5j, -0.5 + 40j, -20.0, -60 + 3j]
PHI1_TOL = {torch.complex64: 1e-6, torch.float32: 1e-6, torch.complex128: 1e-14, torch.float64: 1e-14}


def _rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    return float(((got.to(ref.dtype) - ref).abs() / ref.abs().clamp_min(1e-300)).max())


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128, torch.float32, torch.float64])
def test_zoh_Bd_value_and_gradients_match_reference(dtype):
    """Bd = dt phi1(dt A) B: value, dL/dA = conj(c B dt^2 phi1'(z)) and dL/ddt = Re(c B e^z) for
    L = Re(sum c Bd), against phi1_ref, to working precision of the dtype at every |z|."""
    zs = torch.tensor(PHI1_Z, dtype=torch.complex128)
    if not dtype.is_complex:
        zs = zs.real.to(torch.complex128)
    real = torch.float32 if dtype in (torch.complex64, torch.float32) else torch.float64
    n = zs.numel()
    dt = torch.tensor([0.5, 0.25] * (n // 2), dtype=real).requires_grad_(True)  # powers of 2: z exact
    A = zs / dt.detach().to(torch.complex128)
    A = (A if dtype.is_complex else A.real).to(dtype).requires_grad_(True)
    z = dt.detach().to(torch.complex128) * A.detach().to(torch.complex128)  # the z zoh sees, exactly
    gen = torch.Generator().manual_seed(0)
    B = torch.randn(n, generator=gen, dtype=torch.complex128)
    c = torch.randn(n, generator=gen, dtype=torch.complex128)
    if not dtype.is_complex:
        B, c = B.real.to(torch.complex128), c.real.to(torch.complex128)
    Ad, Bd = zoh(dt, A, (B if dtype.is_complex else B.real).to(dtype), check=True)
    assert Bd.dtype == dtype
    (c if dtype.is_complex else c.real).to(dtype).mul(Bd).real.sum().backward()
    val, der = phi1_ref(z)
    dt64 = dt.detach().to(torch.complex128)
    tol = PHI1_TOL[dtype]
    err = _rel_err(Bd.detach(), dt64 * val * B)
    assert err < tol, f"Bd: max relative error {err:.2e} (tol {tol:.0e})"
    err = _rel_err(Ad.detach(), torch.exp(z))
    assert err < tol, f"Ad: max relative error {err:.2e} (tol {tol:.0e})"
    want_A = (c * B * dt64**2 * der).conj()
    err = _rel_err(A.grad, want_A if dtype.is_complex else want_A.real)
    assert err < tol, f"dL/dA: max relative error {err:.2e} (tol {tol:.0e})"
    # dBd/ddt = phi1(z) + z phi1'(z) = e^z: autograd forms that sum, so its error is relative to the
    # size of the two terms (e^z itself is tiny for z = -60).
    want_dt = (c * B * torch.exp(z)).real
    scale = (c * B).abs() * (val.abs() + (z * der).abs())
    err = float(((dt.grad.double() - want_dt).abs() / scale).max())
    assert err < tol, f"dL/ddt: max error relative to its terms {err:.2e} (tol {tol:.0e})"


def test_phi1_gradient_at_tiny_z_complex64():
    """The case that failed with the closed form: at z = 1e-7 + 1e-7j the complex64 gradient of
    phi1 was 0 (true value 1/2 + z/3 ...)."""
    A = torch.tensor([1e-7 + 1e-7j, 0j], dtype=torch.complex64, requires_grad=True)
    _, Bd = zoh(1.0, A, torch.ones(2, dtype=torch.complex64))
    Bd.real.sum().backward()
    torch.testing.assert_close(A.grad, torch.full((2,), 0.5, dtype=torch.complex64), atol=1e-7, rtol=0)
    torch.testing.assert_close(Bd.detach(), torch.ones(2, dtype=torch.complex64), atol=2e-7, rtol=0)


def test_phi1_branches_finite_gradients_for_extreme_z():
    """Entries far outside the series radius (where z^18 overflows) or inside it (where 1/z
    overflows) must not leak inf/nan into each other's gradients through torch.where."""
    A = torch.tensor([-1e30 + 0j, -1e4 + 1e5j, 1e-38j, 0j], dtype=torch.complex64, requires_grad=True)
    _, Bd = zoh(1.0, A, torch.ones(4, dtype=torch.complex64))
    Bd.real.sum().backward()
    assert torch.isfinite(torch.view_as_real(Bd)).all() and torch.isfinite(torch.view_as_real(A.grad)).all()


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_diagonal_real_matches_complex_path(method):
    """diagonal_real == zoh / bilinear (diagonal, B = 1): values and gradients in float64 over
    |dt Lambda| from 1e-9 to 10 (series and closed-form branches of phi1), real modes included;
    float32 by the accuracy rule against the complex path in float32."""
    from ssm.discretize import diagonal_real

    g = torch.Generator().manual_seed(0)
    n = 60
    dt = torch.exp(torch.linspace(-18, 1, n, dtype=torch.float64))
    re = -torch.exp(2 * torch.randn(n, dtype=torch.float64, generator=g))
    im = 20 * torch.randn(n, dtype=torch.float64, generator=g)
    im[::5] = 0
    w = torch.randn(4, n, dtype=torch.float64, generator=g)
    fn = {"zoh": zoh, "bilinear": bilinear}[method]

    def both(dtype):
        args = [t.to(dtype).requires_grad_() for t in (dt, re, im)]
        A = torch.complex(args[1], args[2])
        Ad, f = fn(args[0], A, torch.ones_like(A), check=False, diagonal=True)
        parts = {"real": diagonal_real(method, *args), "complex": (Ad.real, Ad.imag, f.real, f.imag)}
        out = {}
        for k, p in parts.items():
            loss = sum((t * w[i].to(dtype)).sum() for i, t in enumerate(p))
            out[k] = (torch.stack(p), torch.autograd.grad(loss, args))
        return out

    f64, f32 = both(torch.float64), both(torch.float32)
    (v, grads), (v_ref, grads_ref) = f64["real"], f64["complex"]
    torch.testing.assert_close(v, v_ref, rtol=1e-13, atol=1e-15)
    for a, b in zip(grads, grads_ref):
        assert ((a - b).abs().max() / b.abs().max()).item() < 1e-12
    # float32: the accuracy rule against the complex path at working precision
    for got, ref_wp, exact in zip((f32["real"][0], *f32["real"][1]), (f32["complex"][0], *f32["complex"][1]),
                                  (v_ref, *grads_ref)):
        e, e_ref = (got.double() - exact).abs().max().item(), (ref_wp.double() - exact).abs().max().item()
        assert e <= 2 * e_ref + 1e-5 * max(1.0, exact.abs().max().item()), f"float32: {e:.2e} vs {e_ref:.2e}"
    with pytest.raises(ValueError, match="method"):
        diagonal_real("euler", dt, re, im)
