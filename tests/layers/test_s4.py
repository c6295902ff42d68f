"""S4 (DPLR, arXiv 2111.00396): the Cauchy/Woodbury kernel against the dense power kernel."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import ssm
import ssm.layers.s4 as s4_module
from layer_cases import perturb_, rel_err


def naive_kernel(layer: ssm.S4, L: int) -> torch.Tensor:
    """K[l] = C Ad^l Bd with the dense full-basis A = diag(Lambda, conj Lambda) - P_f P_f^*."""
    Lam, P = layer.state_matrix()  # (H, M), (r, H, M)
    B = torch.view_as_complex(layer.B)
    C = torch.view_as_complex(layer.C)  # (c, H, M)
    H = Lam.shape[0]
    Lam_f = torch.cat([Lam, Lam.conj()], -1)
    P_f = torch.cat([P, P.conj()], -1)  # (r, H, N)
    A = torch.diag_embed(Lam_f) - torch.einsum("rhn,rhm->hnm", P_f, P_f.conj())
    Ad, Bd = ssm.discretize.bilinear(layer.timestep().to(A.dtype).real, A, torch.cat([B, B.conj()], -1),
                                     diagonal=False)
    C_f = torch.cat([C, C.conj()], -1)
    out, v = [], Bd  # (H, N)
    for _ in range(L):
        out.append(torch.einsum("chn,hn->ch", C_f, v))
        v = torch.einsum("hnm,hm->hn", Ad, v)
    K = torch.stack(out, -1)
    assert K.imag.abs().max() < 1e-10 * K.abs().max()
    return K.real.reshape(-1, H, L)


@pytest.mark.parametrize("init", ["legs", "legt", "fout"])
@pytest.mark.parametrize("L", [1, 2, 3, 16, 17, 100])
def test_kernel_equals_dense_power_kernel(init, L):
    layer = perturb_(ssm.S4(3, 8, init=init, channels=2).double(), 0.1)
    K = layer.conv_kernel(L)
    K_ref = naive_kernel(layer, L)
    err = rel_err(K, K_ref)
    assert err < 1e-9, f"init={init} L={L}: rel err {err:.2e}"


def test_kernel_length_is_exact_for_every_L():
    """Each L gives its own truncated kernel (no reuse of another length's C~)."""
    layer = perturb_(ssm.S4(2, 8).double(), 0.1)
    K64 = layer.conv_kernel(64)
    for L in (5, 31, 64, 65, 128):
        K = layer.conv_kernel(L)
        assert K.shape[-1] == L
        n = min(L, 64)
        assert rel_err(K[..., :n], K64[..., :n]) < 1e-9, f"L={L}: prefix differs from L=64's"


def test_kernel_float32_matches_float64():
    layer = perturb_(ssm.S4(4, 16).double(), 0.1)
    K64 = layer.conv_kernel(1000)
    K32 = layer.float().conv_kernel(1000)
    assert K32.dtype == torch.float32
    err = rel_err(K32.double(), K64)
    assert err < 1e-4, f"float32 kernel rel err {err:.2e}"


def test_zero_low_rank_equals_s4d_bilinear():
    s4 = perturb_(ssm.S4(3, 8).double(), 0.1)
    with torch.no_grad():
        s4.P.zero_()
    s4d = ssm.S4D(3, 8, init="legs", discretization="bilinear").double()
    s4d.load_state_dict({k: v for k, v in s4.state_dict().items() if k != "P"})
    for L in (1, 16, 37):
        assert rel_err(s4.conv_kernel(L), s4d.conv_kernel(L)) < 1e-10
    x = torch.randn(2, 37, 3, dtype=torch.float64)
    assert rel_err(s4(x), s4d(x)) < 1e-10


def test_gradients_match_dense_reference():
    layer = perturb_(ssm.S4(2, 6).double(), 0.1)
    L = 20
    g = torch.randn(1, 2, L, dtype=torch.float64)
    grads = []
    for fn in (layer.conv_kernel, lambda n: naive_kernel(layer, n)):
        layer.zero_grad()
        (fn(L) * g).sum().backward()
        grads.append({n: p.grad.clone() for n, p in layer.named_parameters() if p.grad is not None})
    for name in ("log_dt", "log_A_real", "A_imag", "P", "B", "C"):
        assert rel_err(grads[0][name], grads[1][name]) < 1e-8, name


def test_options_and_errors():
    with pytest.raises(ValueError, match="legs"):
        ssm.S4(4, 8, init="nope")
    with pytest.raises(ValueError, match="bilinear"):
        ssm.S4(4, 8, discretization="zoh")
    with pytest.raises(ValueError, match="even"):
        ssm.S4(4, 7)
    layer = ssm.S4(4, 8, init="legt")
    assert layer.P.shape[0] == 2  # rank-2 correction
    assert (layer.state_matrix()[0].real < 0).all()


# ------------------------------------------------------------------ fast pieces against references
@pytest.mark.parametrize("init", ["legs", "legt"])  # rank 1 and rank 2
def test_woodbury_bilinear_matches_dense_solve(init):
    layer = perturb_(ssm.S4(3, 10, init=init).double(), 0.1)
    Ad, Bd, _ = layer._dense()
    Lam, P = layer.state_matrix()
    re, im = torch.diag_embed(Lam.real), torch.diag_embed(Lam.imag)
    A = torch.cat([torch.cat([re, -im], -1), torch.cat([im, re], -1)], -2)
    p = torch.cat([P.real, P.imag], -1)
    A = A - 2 * torch.einsum("rhn,rhm->hnm", p, p)
    B = torch.view_as_complex(layer.B)
    Ad_ref, Bd_ref = ssm.discretize.bilinear(layer.timestep(), A, torch.cat([B.real, B.imag], -1),
                                             diagonal=False)
    assert rel_err(Ad, Ad_ref) < 1e-13
    assert rel_err(Bd, Bd_ref) < 1e-13


def test_generic_cauchy_path_gives_the_same_kernel(monkeypatch):
    """The non-CPU branch (ssm.kernels.cauchy) and the CPU branch give the same kernel."""
    layer = perturb_(ssm.S4(3, 8, init="legt", channels=2).double(), 0.1)
    K = layer.conv_kernel(37)

    def generic(v, s, w):
        return ssm.kernels.cauchy(v, torch.complex(torch.zeros_like(s), s), w, conj=True, backend="torch")

    monkeypatch.setattr(s4_module, "_cauchy_sums", generic)
    assert rel_err(layer.conv_kernel(37), K) < 1e-12


@pytest.mark.parametrize("rank", [2, 3])  # explicit 2 x 2 inverse and the general solve
def test_kernel_with_higher_rank_correction(rank):
    layer = perturb_(ssm.S4(2, 8).double(), 0.1)
    g = torch.Generator().manual_seed(rank)
    layer.P = torch.nn.Parameter(0.5 * torch.randn(rank, 2, 4, 2, dtype=torch.float64, generator=g))
    for L in (7, 16):
        assert rel_err(layer.conv_kernel(L), naive_kernel(layer, L)) < 1e-9


@pytest.mark.parametrize("init", ["legs", "legt"])
def test_dplr_step_equals_dense_step_and_conv(init):
    """Above DPLR_STEP_MIN_STATE the CPU step runs in DPLR form (O(N rank)); it equals the dense A_bar
    step and the convolution (rank 1 for LegS, 2 for LegT; two shared SSM copies)."""
    N = ssm.S4.DPLR_STEP_MIN_STATE + 1 if ssm.S4.DPLR_STEP_MIN_STATE % 2 else ssm.S4.DPLR_STEP_MIN_STATE
    layer = perturb_(ssm.S4(4, N, init=init, n_ssm=2).double(), 0.05).eval()
    x = torch.randn(2, 23, 4, dtype=torch.float64)
    dense = copy.deepcopy(layer)
    dense.DPLR_STEP_MIN_STATE = N + 1  # instance override: the dense step
    with torch.no_grad():
        y_conv = layer(x)
        s_dplr, s_dense, ys = layer.default_state(2), dense.default_state(2), []
        for t in range(x.shape[1]):
            y_t, s_dplr = layer.step(x[:, t], s_dplr)
            y_d, s_dense = dense.step(x[:, t], s_dense)
            assert rel_err(y_t, y_d) < 1e-10 and rel_err(s_dplr, s_dense) < 1e-10
            ys.append(y_t)
    assert "step_dplr" in layer._cache and "step_dplr" not in dense._cache
    assert rel_err(torch.stack(ys, 1), y_conv) < 1e-9


def _float32_and_float64(init: str, d_state: int, **kw) -> tuple[ssm.S4, ssm.S4]:
    layer = perturb_(ssm.S4(2, d_state, init=init, channels=2, **kw), 0.05)
    ref = ssm.S4(2, d_state, init=init, channels=2, **kw).double()
    ref.load_state_dict(layer.state_dict())
    return layer, ref


@pytest.mark.parametrize("dt", [1e-6, 1e-7])
@pytest.mark.parametrize("init", ["legs", "legt", "lagt", "fout"])
def test_float32_kernel_at_tiny_dt(init, dt, tol):
    """dt <= 3e-6 gave NaN (FouT: the Cauchy sums' |den|^2 underflowed at z = 0) or lost every digit
    (C~ = C (I - Ad^L) cancels when Ad ~ I). Now kernel, outputs and gradients in float32 agree with
    the float64 layer (itself checked against the dense power kernel) to float32 accuracy."""
    layer, ref = _float32_and_float64(init, 8, dt_min=dt, dt_max=dt)
    L = 100
    K64 = ref.conv_kernel(L)
    assert rel_err(K64, naive_kernel(ref, L)) < 1e-9
    err = rel_err(layer.conv_kernel(L).double(), K64)
    assert err < tol[torch.float32], f"{init} dt={dt}: float32 kernel rel err {err:.2e}"
    x = torch.randn(2, L, 2)
    g = torch.randn(2, L, 2, dtype=torch.float64)
    y, y64 = layer(x), ref(x.double())
    assert rel_err(y.double(), y64) < tol[torch.float32]
    (y * g.float()).sum().backward()
    (y64 * g).sum().backward()
    for (name, p), p64 in zip(layer.named_parameters(), ref.parameters()):
        assert torch.isfinite(p.grad).all(), f"{init} dt={dt}: non-finite gradient of {name}"
        err = rel_err(p.grad.double(), p64.grad)
        assert err < tol[torch.float32], f"{init} dt={dt}: gradient of {name} rel err {err:.2e}"


def test_float32_kernel_at_a_resonance():
    """A point of the frequency grid on Im(Lambda_n) of a mode with Re(Lambda_n) = -1e-4 (LegT): the
    Woodbury combination cancels by ~|P_n|^2 / |Re Lambda_n| there, which in float32 left no correct
    digit; the generating function is evaluated in float64 whatever the parameters' dtype."""
    layer = ssm.S4(1, 64, init="legt")
    L, k, n = 256, 32, 5
    Lam = layer.state_matrix()[0][0]
    dt = 2 * math.tan(math.pi * k / L) / Lam.imag[n].item()  # z_k = (2/dt) i tan(pi k/L) = i Im(Lambda_n)
    with torch.no_grad():
        layer.log_dt.fill_(math.log(dt))
    ref = ssm.S4(1, 64, init="legt").double()
    ref.load_state_dict(layer.state_dict())
    with torch.no_grad():
        K64 = ref.conv_kernel(L)
        assert rel_err(K64, naive_kernel(ref, L)) < 1e-9
        err = rel_err(layer.conv_kernel(L).double(), K64)
    assert err < 1e-5, f"float32 kernel at a resonance: rel err {err:.2e}"


@pytest.mark.parametrize("init", ["legs", "legt", "lagt", "fout"])
def test_float32_conv_equals_step_at_2048(init):
    """The agreement docs/layers.md states for float32 (1e-4 relative to max |y|) at L = 2048, d_state 64:
    LegT was at 2.1e-4 (near-resonant points of the frequency grid)."""
    layer = ssm.S4(2, 64, init=init).eval()
    L = 2048
    x = torch.randn(1, L, 2)
    with torch.no_grad():
        y = layer(x)
        state, ys = layer.default_state(1), []
        for t in range(L):
            y_t, state = layer.step(x[:, t], state)
            ys.append(y_t)
    err = rel_err(torch.stack(ys, 1), y)
    assert err < 1e-4, f"{init}: float32 conv vs step rel err {err:.2e} at L={L}"
