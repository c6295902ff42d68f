"""``n_ssm``: k copies of (Lambda, P, B) shared by the H channels of S4 and S4D (channel h: copy h % k)."""

from __future__ import annotations

import functools

import pytest
import torch

import ssm
from layer_cases import TOL, perturb_, rel_err, run_steps

H, N = 6, 8
M = N // 2
# name: (factory, {shared parameter: the dim that holds its k copies}); s4-ptd is S4D with the PTD init
CASES = {
    "s4": (functools.partial(ssm.S4, init="legs"), {"log_A_real": 0, "A_imag": 0, "B": 0, "P": 1}),
    "s4-legt": (functools.partial(ssm.S4, init="legt"), {"log_A_real": 0, "A_imag": 0, "B": 0, "P": 1}),
    "s4d": (functools.partial(ssm.S4D, init="legs"), {"log_A_real": 0, "A_imag": 0, "B": 0}),
    "s4-ptd": (functools.partial(ssm.S4D, init="ptd"), {"log_A_real": 0, "A_imag": 0, "B": 0}),
}
KS = [1, 2, 3]  # divisors of H below H


def _make(name: str, k, dtype=torch.float64, seed: int = 0, **kw):
    torch.manual_seed(seed)
    return perturb_(CASES[name][0](H, N, n_ssm=k, **kw), 0.05, seed=seed).to(dtype)


def _copy_of(h: int, k: int) -> int:
    return h % k


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("name", ["s4", "s4d"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_conv_equals_step(name, k, dtype):
    layer = _make(name, k, dtype).eval()
    x = torch.randn(2, 29, H, dtype=dtype)
    with torch.no_grad():
        y_conv, s_conv = layer(x, return_state=True)
        y_step, state = run_steps(layer, x)
    err = rel_err(y_step, y_conv)
    assert err < TOL[dtype], f"{name} n_ssm={k}: conv vs step rel err {err:.2e}"
    assert rel_err(state, s_conv) < TOL[dtype]


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("name", ["s4", "s4d"])
def test_chunked_padded_and_bidirectional(name, k):
    layer = _make(name, k, channels=2)
    x = torch.randn(2, 31, H, dtype=torch.float64)
    y_full, s_full = layer(x, return_state=True)
    y1, s = layer(x[:, :12], state=layer.default_state(2), return_state=True)
    y2, s = layer(x[:, 12:], state=s, return_state=True)
    assert rel_err(torch.cat([y1, y2], 1), y_full) < 1e-9 and rel_err(s, s_full) < 1e-9
    bi = _make(name, k, bidirectional=True, transposed=True)
    lengths = torch.tensor([31, 9])
    y = bi(x.transpose(1, 2), lengths=lengths).transpose(1, 2)
    alone = bi(x[1:, :9].transpose(1, 2)).transpose(1, 2)
    assert rel_err(y[1:, :9], alone) < 1e-9 and torch.all(y[1, 9:] == 0)


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("name", list(CASES))
def test_parameters_are_stored_once_and_expanded_by_repetition(name, k):
    layer = _make(name, k)
    for pname, dim in CASES[name][1].items():
        assert getattr(layer, pname).shape[dim] == k, f"{pname} must hold {k} copies"
    assert layer.log_dt.shape == (H,) and layer.C.shape[1] == H and layer.D.shape == (1, H)
    Lam_k = torch.complex(-torch.exp(layer.log_A_real), layer.A_imag)  # (k, M)
    B_k = torch.view_as_complex(layer.B)
    Lam, B = layer.state_matrix(), layer.input_matrix()
    if isinstance(layer, ssm.S4):
        Lam, P = Lam
        P_k = torch.view_as_complex(layer.P)  # (rank, k, M)
        assert P.shape == (P_k.shape[0], H, M)
        assert torch.equal(P, P_k.repeat(1, H // k, 1))
        for h in range(H):
            assert torch.equal(P[:, h], P_k[:, _copy_of(h, k)])
    assert Lam.shape == B.shape == (H, M)
    assert torch.equal(Lam, Lam_k.repeat(H // k, 1)) and torch.equal(B, B_k.repeat(H // k, 1))
    for h in range(H):
        assert torch.equal(Lam[h], Lam_k[_copy_of(h, k)]) and torch.equal(B[h], B_k[_copy_of(h, k)])


def _expected_count(name: str, k: int, channels: int, bidirectional: bool) -> int:
    rank = {"s4": 1, "s4-legt": 2, "s4d": 0, "s4-ptd": 0}[name]  # rows of P (S4's low-rank term)
    n_dir = 2 if bidirectional else 1
    count = H  # log_dt
    count += 2 * k * M  # log_A_real, A_imag
    count += k * M * 2  # B (complex as real pairs)
    count += rank * k * M * 2  # P
    count += channels * n_dir * H * M * 2  # C
    count += channels * H  # D
    if channels > 1:
        count += channels * H * H + H  # Linear(channels * H, H) mixing the channels back
    return count


@pytest.mark.parametrize("k", [None] + KS)
@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("channels,bidirectional", [(1, False), (2, True)], ids=["c1", "c2-bi"])
def test_parameter_count(name, k, channels, bidirectional):
    layer = CASES[name][0](H, N, n_ssm=k, channels=channels, bidirectional=bidirectional)
    got = sum(p.numel() for p in layer.parameters())
    assert got == _expected_count(name, H if k is None else k, channels, bidirectional)
    assert layer.n_ssm == (H if k is None else k)


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("name", list(CASES))
def test_gradient_of_a_shared_parameter_is_the_sum_over_its_channels(name, k):
    """Against an unshared layer (n_ssm=None) holding the repeated values: same output, and each
    shared copy's gradient equals the sum of the gradients of the channels using it."""
    shared = _make(name, k, channels=2)
    full = _make(name, None, channels=2, seed=5)
    dims = CASES[name][1]
    with torch.no_grad():
        for pname, p in full.named_parameters():
            src = shared.get_parameter(pname)
            if pname in dims:
                reps = [1] * src.dim()
                reps[dims[pname]] = H // k
                src = src.repeat(*reps)
            p.copy_(src)
    x = torch.randn(2, 23, H, dtype=torch.float64)
    w = torch.randn(2, 23, H, dtype=torch.float64)
    y_shared, y_full = shared(x), full(x)
    assert rel_err(y_shared, y_full) < 1e-12
    (y_shared * w).sum().backward()
    (y_full * w).sum().backward()
    for pname, p in shared.named_parameters():
        g_full = full.get_parameter(pname).grad
        if pname in dims:
            d = dims[pname]
            g_full = g_full.unflatten(d, (H // k, k)).sum(d)  # channel h = v * k + copy
        err = rel_err(p.grad, g_full)
        assert err < 1e-10, f"{name} n_ssm={k}: gradient of {pname} differs by {err:.2e}"
        assert p.grad.abs().sum() > 0, f"no gradient reaches {pname}"


@pytest.mark.parametrize("name", list(CASES))
def test_default_is_one_copy_per_channel_and_sharing_starts_from_the_same_function(name):
    factory = CASES[name][0]
    torch.manual_seed(3)
    default = factory(H, N)
    torch.manual_seed(3)
    explicit = factory(H, N, n_ssm=H)
    assert default.n_ssm == H
    for (n1, p1), (n2, p2) in zip(default.named_parameters(), explicit.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)
    # the init gives every channel the same (Lambda, P, B), so one shared copy is the same layer at init
    torch.manual_seed(3)
    one = factory(H, N, n_ssm=1)
    x = torch.randn(1, 20, H)
    assert torch.equal(one.log_dt, default.log_dt) and torch.equal(one.C, default.C)
    assert rel_err(one(x), default(x)) < 1e-6


@pytest.mark.parametrize("cls", [ssm.S4, ssm.S4D], ids=["s4", "s4d"])
def test_invalid_n_ssm_raises_clear_errors(cls):
    with pytest.raises(ValueError, match=r"n_ssm must be None or a positive int dividing d_model=6, got 0"):
        cls(H, N, n_ssm=0)
    with pytest.raises(ValueError, match=r"n_ssm must be .* dividing d_model=6, got -2"):
        cls(H, N, n_ssm=-2)
    with pytest.raises(ValueError, match=r"n_ssm must be .* dividing d_model=6, got 4"):
        cls(H, N, n_ssm=4)
    for bad in (2.0, "2", True):
        with pytest.raises(TypeError, match=r"n_ssm must be None or a positive int .* got"):
            cls(H, N, n_ssm=bad)


def test_state_dict_round_trip_keeps_the_shared_shapes():
    layer = _make("s4", 2)
    clone = ssm.S4(H, N, n_ssm=2).double()
    clone.load_state_dict(layer.state_dict())
    x = torch.randn(1, 12, H, dtype=torch.float64)
    assert rel_err(clone(x), layer(x)) < 1e-14
    with pytest.raises(RuntimeError, match="size mismatch"):
        ssm.S4(H, N, n_ssm=3).double().load_state_dict(layer.state_dict())
