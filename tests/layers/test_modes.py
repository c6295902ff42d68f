"""Convolution mode == recurrent mode == chunked mode, and padding, for every family and init."""

from __future__ import annotations

import pytest
import torch

from layer_cases import FAMILIES, TOL, perturb_, rel_err, run_steps

H, N = 3, 8


def _make(name: str, dtype: torch.dtype, **kw):
    layer = FAMILIES[name](H, N, **kw)
    return perturb_(layer, 0.05).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(FAMILIES))
def test_conv_equals_step(name, dtype):
    layer = _make(name, dtype).eval()
    L = 64 if name == "dss-softmax" else 37
    x = torch.randn(2, L, H, dtype=dtype)
    with torch.no_grad():
        y_conv, s_conv = layer(x, return_state=True)
        y_step, s_step = run_steps(layer, x)
    err = rel_err(y_step, y_conv)
    assert err < TOL[dtype], f"{name}: conv vs step rel err {err:.2e}"
    err_s = rel_err(s_conv, s_step)
    assert err_s < TOL[dtype], f"{name}: final state rel err {err_s:.2e}"


@pytest.mark.parametrize("name", list(FAMILIES))
def test_chunked_equals_full(name):
    layer = _make(name, torch.float64)
    x = torch.randn(2, 41, H, dtype=torch.float64)
    y_full, s_full = layer(x, return_state=True)
    state, ys = layer.default_state(2), []
    for a, b in ((0, 1), (1, 17), (17, 30), (30, 41)):
        y, state = layer(x[:, a:b], state=state, return_state=True)
        ys.append(y)
    err = rel_err(torch.cat(ys, 1), y_full)
    assert err < 1e-9, f"{name}: chunked vs full rel err {err:.2e}"
    assert rel_err(state, s_full) < 1e-9


@pytest.mark.parametrize("name,bidirectional", [(n, False) for n in FAMILIES] + [(n, True) for n in FAMILIES],
                         ids=[f"{n}-uni" for n in FAMILIES] + [f"{n}-bi" for n in FAMILIES])
def test_padded_batch_equals_each_alone(name, bidirectional):
    layer = _make(name, torch.float64, bidirectional=bidirectional)
    lengths = torch.tensor([29, 11, 1])
    x = torch.randn(3, 29, H, dtype=torch.float64)
    x_pad = x.clone()
    for b, n in enumerate(lengths.tolist()):
        x_pad[b, n:] = 1e3 * torch.randn(29 - n, H, dtype=torch.float64)  # garbage in the padding
    out = layer(x_pad, lengths=lengths, return_state=not bidirectional)
    y = out[0] if not bidirectional else out
    for b, n in enumerate(lengths.tolist()):
        alone = layer(x[b:b + 1, :n], return_state=not bidirectional)
        y_alone = alone[0] if not bidirectional else alone
        err = rel_err(y[b:b + 1, :n], y_alone)
        assert err < 1e-9, f"{name} seq {b}: padded vs alone rel err {err:.2e}"
        assert torch.all(y[b, n:] == 0), "padded outputs must be zero"
        if not bidirectional:
            assert rel_err(out[1][b:b + 1], alone[1]) < 1e-9, "state after the last valid token"


@pytest.mark.parametrize("name", ["s4-legs", "s4d-inv", "dss-exp", "s5"])
def test_padded_with_initial_state(name):
    layer = _make(name, torch.float64)
    x0 = torch.randn(2, 9, H, dtype=torch.float64)
    _, s0 = layer(x0, return_state=True)
    lengths = torch.tensor([13, 5])
    x = torch.randn(2, 13, H, dtype=torch.float64)
    y, s = layer(x, state=s0, lengths=lengths, return_state=True)
    for b, n in enumerate(lengths.tolist()):
        y_b, s_b = layer(x[b:b + 1, :n], state=s0[b:b + 1], return_state=True)
        assert rel_err(y[b:b + 1, :n], y_b) < 1e-9
        assert rel_err(s[b:b + 1], s_b) < 1e-9


@pytest.mark.parametrize("name", list(FAMILIES))
def test_transposed_layout(name):
    layer = _make(name, torch.float64)
    layer_t = _make(name, torch.float64, transposed=True)
    layer_t.load_state_dict(layer.state_dict())
    x = torch.randn(2, 16, H, dtype=torch.float64)
    assert rel_err(layer_t(x.transpose(1, 2)).transpose(1, 2), layer(x)) < 1e-12


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
@pytest.mark.parametrize("name", ["s4-legs", "s4d-inv", "dss-exp", "s5"])
def test_nonfinite_padding_never_reaches_valid_positions(name, bad):
    """NaN/inf in the padding (NaN * 0 = NaN) must not reach valid outputs or the gradients w.r.t.
    valid inputs and parameters: both layouts, unidirectional and bidirectional, against the valid
    part run alone."""
    lengths = torch.tensor([16, 10])
    x = torch.randn(2, 16, H, dtype=torch.float64)
    for bidirectional in (False, True):
        layer = _make(name, torch.float64, bidirectional=bidirectional)
        for transposed in (False, True):
            core = _make(name, torch.float64, bidirectional=bidirectional, transposed=transposed)
            core.load_state_dict(layer.state_dict())
            x_bad = x.clone()
            x_bad[1, 10:] = bad
            x_bad.requires_grad_()
            y = core(x_bad.transpose(1, 2) if transposed else x_bad, lengths=lengths)
            y = y.transpose(1, 2) if transposed else y
            assert torch.isfinite(y).all(), f"{name} bi={bidirectional} t={transposed}: non-finite output"
            assert torch.all(y[1, 10:] == 0), "padded outputs must be zero"
            err = rel_err(y[1:, :10], layer(x[1:, :10]))
            assert err < 1e-9, f"{name} bi={bidirectional} t={transposed}: padded vs alone rel err {err:.2e}"
            y.pow(2).sum().backward()
            assert torch.isfinite(x_bad.grad[1, :10]).all() and torch.all(x_bad.grad[1, 10:] == 0)
            for pname, p in core.named_parameters():
                assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient of {pname}"
