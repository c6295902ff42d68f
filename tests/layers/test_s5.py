"""S5 and S5-PTD (arXiv 2208.04933, 2310.01698): scan mode == step mode == dense real system."""

import copy
import math

import pytest
import torch

import ssm
from ssm.init import diag_init, hippo
from ssm.kernels.scan import scan_ref
from ssm.layers.base import ssm_param_group
from ssm.layers.s5 import S5, to_eigenbasis

from layer_cases import rel_err, run_steps

RTOL = {torch.float64: 1e-6, torch.float32: 1e-4}


def _layer(dtype=torch.float64, seed=0, **kw):
    torch.manual_seed(seed)
    kw = {"d_model": 5, "d_state": 16, "blocks": 2, **kw}
    return S5(**kw).to(dtype)


def _x(B, L, H, dtype=torch.float64, seed=1):
    return torch.randn(B, L, H, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def _complex_ref_autograd(layer, x):
    """y = 2 Re(C~ x) + D u from the formulas with the sequential loop (differentiable, complex128)."""
    p = dict(layer.named_parameters())
    Lam = torch.complex(-p["Lambda_log_neg_re"].exp(), p["Lambda_im"])
    dt = p["log_dt"].exp()
    Bt, Ct = torch.view_as_complex(p["B"]), torch.view_as_complex(p["C"])
    if layer.discretization == "zoh":
        Lb = torch.exp(dt * Lam)
        Bb = ((Lb - 1) / Lam).unsqueeze(-1) * Bt
    else:
        Lb = (1 + dt * Lam / 2) / (1 - dt * Lam / 2)
        Bb = (dt / (1 - dt * Lam / 2)).unsqueeze(-1) * Bt

    def run(u, C):
        bu = torch.einsum("nh,blh->nbl", Bb, u.to(torch.complex128))
        xs = scan_ref(Lb[:, None, None], bu)  # (N2, B, L)
        return 2 * torch.einsum("hn,nbl->blh", C, xs).real

    y = run(x, Ct[0]) + p["D"] * x
    if layer.bidirectional:
        y = y + run(x.flip(1), Ct[1]).flip(1)
    return y


def _complex_ref(layer, x):
    with torch.no_grad():
        return _complex_ref_autograd(layer.double(), x.double())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("init,disc", [("legs", "zoh"), ("ptd", "zoh"), ("legs", "bilinear"),
                                       ("inv", "zoh"), ("ptd", "bilinear")])
def test_scan_mode_equals_step_mode(init, disc, dtype):
    layer = _layer(dtype, init=init, discretization=disc, dt_min=1e-2, dt_max=0.5)
    x = _x(3, 77, 5, dtype)
    y, state = layer(x, return_state=True)
    ys, state_s = run_steps(layer, x)
    assert rel_err(y, ys) < RTOL[dtype], rel_err(y, ys)
    assert rel_err(state, state_s) < RTOL[dtype]


@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_matches_complex_reference(disc, bidirectional):
    layer = _layer(discretization=disc, bidirectional=bidirectional, c_init="complex_normal", dt_max=0.5)
    x = _x(2, 150, 5)
    assert rel_err(layer(x), _complex_ref(layer, x)) < 1e-10


@pytest.mark.parametrize("init", ["legs", "ptd"])
@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
def test_equals_dense_real_system(init, disc):
    """With a real C and one dt, S5 is the real P-state system (A, B, C, D) its init diagonalizes."""
    torch.set_default_dtype(torch.float64)
    try:
        layer = _layer(init=init, discretization=disc, c_init="lecun", blocks=2, d_state=16)
    finally:
        torch.set_default_dtype(torch.float32)
    dt = 0.07
    with torch.no_grad():
        layer.log_dt.fill_(math.log(dt))
    Lam, _, V = diag_init(init, 16, blocks=2)
    V_full = torch.cat([V, V.conj()], 1)
    A_H = torch.block_diag(*[hippo("legs", 8)[0]] * 2)
    if init == "legs":  # HiPPO-N: the normal part A + p p^T of LegS, p = sqrt(n + 1/2)
        p = torch.sqrt(torch.arange(8, dtype=torch.float64) + 0.5)
        A = torch.block_diag(*[hippo("legs", 8)[0] + torch.outer(p, p)] * 2)
    else:  # PTD: A_H + E, rebuilt from its eigen-decomposition (must be real and near A_H)
        A = V_full @ torch.diag(torch.cat([Lam, Lam.conj()])) @ torch.linalg.inv(V_full)
        assert A.imag.abs().max() < 1e-8
        A = A.real
        assert (A - A_H).norm() / A_H.norm() < 0.2
    torch.testing.assert_close(layer.Lambda.detach(), Lam, rtol=1e-12, atol=1e-12)
    Bt, Ct = layer.B_tilde.detach(), layer.C_tilde.detach()[0]
    B_real = 2 * (V @ Bt).real
    C_cplx = torch.cat([Ct, Ct.conj()], 1) @ torch.linalg.inv(V_full)
    assert C_cplx.imag.abs().max() < 1e-10  # C~ = C V for a real C
    eye = torch.eye(16, dtype=torch.float64)
    if disc == "zoh":  # dense closed forms (A is invertible here)
        Ad = torch.linalg.matrix_exp(dt * A)
        Bd = torch.linalg.solve(A, (Ad - eye) @ B_real)
    else:
        Ad = torch.linalg.solve(eye - dt / 2 * A, eye + dt / 2 * A)
        Bd = torch.linalg.solve(eye - dt / 2 * A, dt * B_real)
    x = _x(2, 60, 5)
    s = torch.zeros(2, 16, dtype=torch.float64)
    ys = []
    for t in range(x.shape[1]):
        s = s @ Ad.T + x[:, t] @ Bd.T
        ys.append(s @ C_cplx.real.T + layer.D.detach() * x[:, t])
    assert rel_err(layer(x), torch.stack(ys, 1)) < 1e-9


def test_to_eigenbasis_inverts_nonunitary_V():
    _, _, V = diag_init("ptd", 16, blocks=2)
    B = torch.randn(16, 3, dtype=torch.float64)
    torch.testing.assert_close(2 * (V @ to_eigenbasis(V, B)).real, B, rtol=1e-10, atol=1e-10)
    naive = 2 * (V @ (V.conj().T @ B.to(V.dtype))).real  # V^* is not V^-1 for PTD
    assert (naive - B).abs().max() > 1e-3


@pytest.mark.parametrize("splits", [(40,), (1, 16, 23), (13, 27)])
def test_chunked_equals_full(splits):
    layer = _layer(init="ptd", blocks=4)
    x = _x(2, 40, 5)
    y_full, s_full = layer(x, return_state=True)
    state, ys, t = None, [], 0
    for n in splits:
        y, state = layer(x[:, t:t + n], state=state, return_state=True)
        ys.append(y)
        t += n
    assert rel_err(torch.cat(ys, 1), y_full) < 1e-12
    assert rel_err(state, s_full) < 1e-12


@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
def test_equals_s4d_with_one_channel(disc):
    """S5 with d_model=1 and equal dt == S4D (d_model=1) with the same Lambda, B, C, D and dt."""
    s5 = _layer(d_model=1, d_state=16, blocks=2, discretization=disc)
    torch.manual_seed(3)
    s4d = ssm.S4D(1, 16, discretization=disc).double()
    with torch.no_grad():
        s5.log_dt.fill_(math.log(0.04))
        s4d.log_dt.fill_(math.log(0.04))
        s4d.log_A_real[0] = s5.Lambda_log_neg_re
        s4d.A_imag[0] = s5.Lambda_im
        s4d.B[0] = s5.B[:, 0]
        s4d.C[0, 0] = s5.C[0, 0]
        s4d.D.fill_(s5.D.item())
    x = _x(2, 300, 1)
    assert rel_err(s5(x), s4d(x)) < 1e-9


@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_batch_equals_each_alone(bidirectional):
    layer = _layer(bidirectional=bidirectional)
    lengths = torch.tensor([30, 17, 1])
    x = _x(3, 30, 5)
    x_pad = x.clone()
    for b, n in enumerate(lengths):
        x_pad[b, n:] = 1e3  # garbage in the padding must not leak
    if bidirectional:
        y = layer(x_pad, lengths=lengths)
    else:
        y, state = layer(x_pad, lengths=lengths, return_state=True)
    for b, n in enumerate(lengths.tolist()):
        if bidirectional:
            alone = layer(x[b:b + 1, :n])
        else:
            alone, s_alone = layer(x[b:b + 1, :n], return_state=True)
            assert rel_err(state[b:b + 1], s_alone) < 1e-12
        assert rel_err(y[b:b + 1, :n], alone) < 1e-12
        assert (y[b, n:] == 0).all()


def test_transposed_layout():
    layer = _layer()
    layer_t = _layer(transposed=True)
    x = _x(2, 33, 5)
    torch.testing.assert_close(layer_t(x.transpose(1, 2)).transpose(1, 2), layer(x))


def _push_mode_to(layer, z_re):
    """Mode 0 gets ``dt Re(Lambda) = z_re`` (dt = 0.1), e.g. a subnormal ``|Lambda_bar|``."""
    with torch.no_grad():
        layer.log_dt[0] = math.log(0.1)
        layer.Lambda_log_neg_re[0] = math.log(-z_re / 0.1)


@pytest.mark.parametrize("init", ["legs", "ptd"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradients_finite_long_sequence(init, bidirectional):
    """L = 16384, dt_min = 1e-4 (Path-X), plus one mode with a subnormal ``|Lambda_bar|`` in float32
    (``dt Re(Lambda) = -95``; the powers inside the scan once took NaN gradients there): gradients are
    finite, reach every parameter and match the same layer in float64."""
    for seed in range(3):
        layer = _layer(torch.float32, seed=seed, d_model=8, d_state=16, blocks=1, init=init,
                       c_init="complex_normal", dt_min=1e-4, bidirectional=bidirectional)
        _push_mode_to(layer, -95.0)
        assert 0 < layer.discrete()[0].abs()[0] < torch.finfo(torch.float32).tiny
        layer64 = copy.deepcopy(layer).double()
        x = _x(2, 16384, 8, seed=seed)
        layer(x.float()).square().mean().backward()
        layer64(x).square().mean().backward()
        for (name, p), p64 in zip(layer.named_parameters(), layer64.parameters()):
            assert p.grad is not None and torch.isfinite(p.grad).all(), (seed, name, p.grad)
            assert p.grad.abs().max() > 0, f"{name} gets no gradient"
            assert rel_err(p.grad.double(), p64.grad) < 1e-3, (seed, name, rel_err(p.grad.double(), p64.grad))


@pytest.mark.parametrize("init", ["legs", "ptd"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradients_match_reference_subnormal_decay_float64(init, bidirectional):
    """The float64 twin: ``dt Re(Lambda) = -725`` gives a subnormal double ``|Lambda_bar|``."""
    layer = _layer(init=init, blocks=1, bidirectional=bidirectional)
    _push_mode_to(layer, -725.0)
    assert 0 < layer.discrete()[0].abs()[0] < torch.finfo(torch.float64).tiny
    x, g = _x(2, 70, 5), _x(2, 70, 5, seed=4)
    fast = torch.autograd.grad(layer(x), list(layer.parameters()), g)
    ref = torch.autograd.grad(_complex_ref_autograd(layer, x), list(layer.parameters()), g)
    for (name, _), f, r in zip(layer.named_parameters(), fast, ref):
        assert torch.isfinite(f).all(), (name, f)
        assert rel_err(f, r) < 1e-10, (name, rel_err(f, r))


def test_stable_by_construction():
    layer = _layer(torch.float32)
    x = _x(2, 64, 5, torch.float32)
    with torch.no_grad():  # any parameter value gives Re(Lambda) <= -1e-4
        layer.Lambda_log_neg_re.copy_(torch.linspace(-1e3, 50, 8))
    assert (layer.Lambda.real <= -1e-4).all() and torch.isfinite(layer(x)).all()
    layer = _layer(torch.float32)
    opt = torch.optim.SGD(layer.parameters(), lr=10.0)
    for _ in range(3):
        opt.zero_grad()
        (-layer(x).square().mean()).backward()  # push towards growth
        opt.step()
    assert torch.isfinite(layer.Lambda_log_neg_re).all()
    assert (layer.Lambda.real < 0).all() and torch.isfinite(layer(x)).all()


def test_ssm_parameter_tags_and_groups():
    layer = _layer()
    tagged = {"Lambda_log_neg_re", "Lambda_im", "B", "log_dt"}
    assert set(layer.ssm_parameters()) == tagged
    for name, p in layer.named_parameters():
        assert (ssm_param_group(p) == "ssm") == (name in tagged), name
    groups = {g["name"]: g for g in ssm.param_groups(layer, lr=1e-2, weight_decay=0.1, ssm_lr=1e-3)}
    assert {id(p) for p in groups["ssm"]["params"]} == {id(getattr(layer, n)) for n in tagged}
    assert groups["ssm"]["lr"] == 1e-3 and groups["ssm"]["weight_decay"] == 0.0


def test_init_values():
    torch.set_default_dtype(torch.float64)
    try:
        layer = S5(6, 32, blocks=4, dt_min=1e-3, dt_max=1e-1)
    finally:
        torch.set_default_dtype(torch.float32)
    Lam, _, _ = diag_init("legs", 32, blocks=4)
    torch.testing.assert_close(layer.Lambda.detach(), Lam)
    dt = layer.timestep()
    assert dt.shape == (16,) and (dt >= 1e-3 - 1e-12).all() and (dt <= 1e-1 + 1e-12).all()
    assert layer.B_tilde.shape == (16, 6) and layer.C_tilde.shape == (1, 6, 16)


def test_trains_under_autocast_bf16():
    layer = _layer(torch.float32)
    x, target = _x(2, 50, 5, torch.float32), _x(2, 50, 5, torch.float32, seed=9)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(x.bfloat16())
        loss = (y.float() - target).square().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.9 * losses[0], losses


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="'legs'"):
        S5(4, 8, init="hippo")
    with pytest.raises(ValueError, match="c_init"):
        S5(4, 8, c_init="zeros")
    with pytest.raises(ValueError, match="discretization"):
        S5(4, 8, discretization="euler")
    with pytest.raises(ValueError, match="d_state must be even"):  # the argument's name, not diag_init's N
        S5(4, 7)
    with pytest.raises(ValueError, match="blocks"):
        S5(4, 8, blocks=3)
    layer = S5(4, 8)
    with pytest.raises(ValueError, match="3 dims"):
        layer(torch.randn(4, 10))
    with pytest.raises(ValueError, match="d_model=4"):
        layer(torch.randn(2, 10, 5))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(2, 10, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="batch size 3"):
        layer(torch.randn(2, 10, 4), state=layer.default_state(3))
    bi = S5(4, 8, bidirectional=True)
    with pytest.raises(ValueError, match="bidirectional"):
        bi.default_state(2)
    with pytest.raises(ValueError, match="bidirectional"):
        bi(torch.randn(2, 10, 4), return_state=True)


def test_step_setup_never_stale():
    layer = _layer()
    x = _x(2, 12, 5)
    with torch.no_grad():
        y0, _ = run_steps(layer, x)
        layer.log_dt.add_(1.0)  # in-place change, as an optimizer step makes
        y1, _ = run_steps(layer, x)
        assert rel_err(y1, layer(x)) < 1e-10 and rel_err(y1, y0) > 1e-3
        other = _layer(seed=5)
        layer.load_state_dict(other.state_dict())
        assert rel_err(run_steps(layer, x)[0], other(x)) < 1e-10


def test_zero_length_keeps_state():
    layer = _layer()
    x = _x(2, 10, 5)
    _, s0 = layer(_x(2, 4, 5, seed=3), return_state=True)
    y, s = layer(x, state=s0, lengths=torch.tensor([0, 6]), return_state=True)
    assert torch.equal(s[0], s0[0]) and (y[0] == 0).all()
    _, s_alone = layer(x[1:, :6], state=s0[1:], return_state=True)
    assert rel_err(s[1:], s_alone) < 1e-12


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradients_match_reference(bidirectional):
    """Backward of the fast path == backward of the complex128 loop reference (shared upstream)."""
    layer = _layer(bidirectional=bidirectional, dt_max=0.5)
    x = _x(2, 45, 5).requires_grad_()
    g = _x(2, 45, 5, seed=4)
    fast = torch.autograd.grad(layer(x), [x, *layer.parameters()], g)
    ref = torch.autograd.grad(_complex_ref_autograd(layer, x), [x, *layer.parameters()], g)
    names = ["x"] + [n for n, _ in layer.named_parameters()]
    for name, f, r in zip(names, fast, ref):
        assert rel_err(f, r) < 1e-10, (name, rel_err(f, r))

