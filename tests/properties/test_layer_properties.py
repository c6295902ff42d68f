"""Properties of the layers (S4, S4D, DSS, S5) over generated shapes, dtypes, flags and values: forward
equals step mode and chunked use, a bidirectional layer equals its direct definition, float32 follows
float64, padding and non-finite values stay where they are, and every bad input raises a ValueError
or TypeError naming the argument."""

from __future__ import annotations

import copy

import pytest

pytest.importorskip("hypothesis", reason="the property tests need the [dev] extra (hypothesis)")

import torch  # noqa: E402
from hypothesis import given  # noqa: E402
from property_cases import (  # noqa: E402
    L_MAX,
    assert_close,
    build,
    from_layout,
    layer_configs,
    max_len,
    raises_naming,
    randn,
    run_steps,
    st,
    to_layout,
)

from ssm.kernels.scan import scan_ref  # noqa: E402
from ssm.layers.fftconv import fft_conv_ref  # noqa: E402

F64_REL = 1e-6  # conv vs step, both float64 (layer_cases.TOL)
F32_REL = 1e-4  # float32 vs float64, relative to max(1, max |y|)
seeds = st.integers(0, 2**16)


def _length(draw, family, kw, low=1):
    return draw(st.integers(low, min(L_MAX, max_len(family, kw))))


@given(cfg=layer_configs(bidirectional=False), data=st.data(), seed=seeds)
def test_forward_equals_step_and_chunks(cfg, data, seed):
    family, kw = cfg
    layer = build(family, kw, seed)
    B, L = data.draw(st.integers(0, 3), "B"), _length(data.draw, family, kw)
    k = data.draw(st.integers(0, L), "split")
    x = randn(B, L, kw["d_model"], seed=seed)
    with torch.no_grad():
        y, state = layer(to_layout(layer, x), return_state=True)
        y_step, s_step = run_steps(layer, x)
        assert_close(from_layout(layer, y), y_step, F64_REL, "forward vs step")
        assert_close(state, s_step, F64_REL, "final state: forward vs step")
        if 0 < k < L:  # chunked: two calls passing the state == one call
            y1, s1 = layer(to_layout(layer, x[:, :k]), return_state=True)
            y2, s2 = layer(to_layout(layer, x[:, k:]), state=s1, return_state=True)
            assert_close(from_layout(layer, torch.cat([y1, y2], 2 if layer.transposed else 1)),
                         from_layout(layer, y), 1e-8, "chunked vs whole")
            assert_close(s2, state, 1e-8, "chunked vs whole: state")
        f32 = copy.deepcopy(layer).float()
        y32, s32 = f32(to_layout(f32, x.float()), return_state=True)
        assert_close(y32.double(), y, F32_REL, "float32 vs float64")
        assert s32.dtype == f32.default_state(1).dtype
        _check_layouts_grad_and_autocast(layer, x, y)


def _check_layouts_grad_and_autocast(layer, x: torch.Tensor, y: torch.Tensor) -> None:
    """A non-contiguous input, recording gradients (no caches) and bf16 autocast give the same outputs."""
    xl = to_layout(layer, x)
    x_nc = xl.transpose(0, 2).contiguous().transpose(0, 2)  # same values, other strides
    with torch.no_grad():
        assert_close(layer(x_nc), y, 1e-12, "non-contiguous input")
    with torch.enable_grad():
        y_grad = layer(xl.clone().requires_grad_(True))
        assert y_grad.requires_grad or y_grad.numel() == 0
        assert_close(y_grad.detach(), y, 1e-12, "with gradients recorded")
    f32 = copy.deepcopy(layer).float()
    xb = xl.to(torch.bfloat16)
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y_ac = f32(xb)
        assert y_ac.dtype == torch.bfloat16, "autocast output dtype"
        want = f32(xb.float())  # the same rounded input; only the output is rounded to bf16
    assert_close(y_ac.float(), want, 1e-2, "bf16 autocast vs float32")


def _bidirectional_reference(layer, x: torch.Tensor) -> torch.Tensor:
    """(B, L, H) float64: the definition of the bidirectional layer, without the FFT or the scan."""
    u = x.transpose(1, 2)  # (B, H, L)
    L = x.shape[1]
    if hasattr(layer, "conv_kernel"):  # y = sum_s K[t-s] u[s] + sum_{s>=t} K_rev[s-t] u[s] + D u, mixed
        kf, kb = layer.conv_kernel(L)  # (channels, H, L) each
        kf = kf + torch.nn.functional.pad(layer.D.unsqueeze(-1), (0, L - 1))
        y = fft_conv_ref(u, kf, kb)  # (B, channels, H, L)
        if layer.mix is not None:
            y = torch.einsum("bkl,hk->bhl", y.flatten(1, 2), layer.mix.weight) + layer.mix.bias[:, None]
        else:
            y = y[:, 0]
        return y.transpose(1, 2)
    Lambda_bar, B_bar = layer.discrete()  # S5: forward and backward scans with their own C
    bu = torch.einsum("nh,blh->nbl", B_bar, x.to(B_bar.dtype))
    fwd = scan_ref(Lambda_bar[:, None, None], bu)
    bwd = scan_ref(Lambda_bar[:, None, None], bu.flip(-1)).flip(-1)
    C = layer.C_tilde  # (2, H, N/2)
    return (2 * torch.einsum("hn,nbl->blh", C[0], fwd).real + 2 * torch.einsum("hn,nbl->blh", C[1], bwd).real
            + layer.D * x)


@given(cfg=layer_configs(bidirectional=True), data=st.data(), seed=seeds)
def test_bidirectional_equals_its_definition(cfg, data, seed):
    family, kw = cfg
    layer = build(family, kw, seed)
    B, L = data.draw(st.integers(0, 3), "B"), _length(data.draw, family, kw)
    x = randn(B, L, kw["d_model"], seed=seed)
    with torch.no_grad():
        y = from_layout(layer, layer(to_layout(layer, x)))
        assert_close(y, _bidirectional_reference(layer, x), F64_REL, "bidirectional vs definition")
        f32 = copy.deepcopy(layer).float()
        y32 = from_layout(f32, f32(to_layout(f32, x.float())))
        assert_close(y32.double(), y, F32_REL, "float32 vs float64")
    _check_layouts_grad_and_autocast(layer, x, to_layout(layer, y))
    with raises_naming(ValueError, "bidirectional"):
        layer.default_state(max(B, 1))


PAD_VALUES = st.sampled_from([0.0, 1e30, float("nan"), float("inf"), -float("inf"), "random"])


@given(cfg=layer_configs(), data=st.data(), seed=seeds, pad=PAD_VALUES, with_state=st.booleans())
def test_padded_batch_equals_each_sequence_alone(cfg, data, seed, pad, with_state):
    family, kw = cfg
    layer = build(family, kw, seed)
    B, L = data.draw(st.integers(1, 3), "B"), _length(data.draw, family, kw)
    lengths = torch.tensor(data.draw(st.lists(st.integers(0, L), min_size=B, max_size=B), "lengths"))
    x = randn(B, L, kw["d_model"], seed=seed)
    valid = torch.arange(L) < lengths[:, None]  # (B, L)
    fill = randn(B, L, kw["d_model"], seed=seed + 1) * 1e3 if pad == "random" else torch.full_like(x, pad)
    x_pad = torch.where(valid[..., None], x, fill)
    uni = not layer.bidirectional
    state0 = None
    with torch.no_grad():
        if uni and with_state:  # continue from the state after a prefix
            prefix = randn(B, min(3, max_len(family, kw)), kw["d_model"], seed=seed + 2)
            state0 = layer(to_layout(layer, prefix), return_state=True)[1]
        out = layer(to_layout(layer, x_pad), lengths=lengths, state=state0, return_state=uni)
        y, state = out if uni else (out, None)
        y = from_layout(layer, y)
        assert torch.equal(y[~valid], torch.zeros_like(y[~valid])), "padded outputs must be exactly zero"
        for b in range(B):
            n = int(lengths[b])
            s0 = None if state0 is None else state0[b : b + 1]
            if n == 0:
                if uni:
                    want = layer.default_state(1) if s0 is None else s0
                    assert_close(state[b : b + 1], want, 0.0, f"sequence {b} (length 0): state")
                continue
            alone = layer(to_layout(layer, x[b : b + 1, :n]), state=s0, return_state=uni)
            y_b, s_b = alone if uni else (alone, None)
            assert_close(y[b : b + 1, :n], from_layout(layer, y_b), 1e-9, f"sequence {b} of length {n}")
            if uni:
                assert_close(state[b : b + 1], s_b, 1e-9, f"sequence {b} of length {n}: state")


@given(cfg=layer_configs(), data=st.data(), seed=seeds,
       value=st.sampled_from([float("nan"), float("inf"), -float("inf")]))
def test_a_non_finite_input_stays_in_its_sequence(cfg, data, seed, value):
    """A NaN/inf token poisons its own sequence (never silently vanishes), no other sequence of the batch,
    and in step mode no earlier output (the FFT and the chunked scan spread it within the sequence)."""
    family, kw = cfg
    layer = build(family, kw, seed)
    B, L = data.draw(st.integers(2, 3), "B"), _length(data.draw, family, kw)
    t0 = data.draw(st.integers(0, L - 1), "t0")
    x = randn(B, L, kw["d_model"], seed=seed)
    bad = x.clone()
    bad[0, t0, data.draw(st.integers(0, kw["d_model"] - 1), "channel")] = value
    with torch.no_grad():
        y_clean = from_layout(layer, layer(to_layout(layer, x)))
        y = from_layout(layer, layer(to_layout(layer, bad)))
        assert_close(y[1:], y_clean[1:], 1e-9, "the other sequences")
        assert not torch.isfinite(y[0, t0]).all(), "the non-finite input vanished from the output"
        if not layer.bidirectional:
            y_step, _ = run_steps(layer, bad[:1])
            assert_close(y_step[:, :t0], y_clean[:1, :t0], F64_REL, "step outputs before the bad token")
            assert not torch.isfinite(y_step[0, t0]).all()


_OTHER_STATE_DTYPE = {torch.float32: torch.float64, torch.float64: torch.float32,
                      torch.complex64: torch.complex128, torch.complex128: torch.complex64}

# (kind, error, the name the message must contain): one bad argument per case
BAD_INPUTS = [
    ("x rank 2", ValueError, "x must have 3 dims"), ("x rank 4", ValueError, "x must have 3 dims"),
    ("x features", ValueError, "x must have d_model="), ("x int", TypeError, "x must be a floating-point"),
    ("x bool", TypeError, "x must be a floating-point"),
    ("x complex", TypeError, "x must be a floating-point"),
    ("x other float", TypeError, "x has dtype"), ("x float16", TypeError, "x has dtype"),
    ("x list", TypeError, "x must be a torch.Tensor"), ("x length 0", ValueError, "x has length L=0"),
    ("x meta", ValueError, "x is on meta"),
    ("lengths float", TypeError, "lengths must be an integer"),
    ("lengths shape", ValueError, "lengths must have"),
    ("lengths > L", ValueError, "lengths must lie in"), ("lengths < 0", ValueError, "lengths must lie in"),
    ("state batch", ValueError, "state has batch size"), ("state dtype", TypeError, "state must have dtype"),
    ("state shape", ValueError, "state must have shape"), ("state list", TypeError, "state must be a tensor"),
    ("return_state str", TypeError, "return_state must be a bool"),
    ("x_t rank 3", ValueError, "x_t must have shape"), ("x_t features", ValueError, "x_t must have shape"),
    ("x_t int", TypeError, "x_t must be a floating-point"), ("x_t other float", TypeError, "x_t has dtype"),
    ("step state batch", ValueError, "state has batch size"),
    ("step state None", TypeError, "state must be a"),
    ("batch_size bool", TypeError, "batch_size must be an int"),
    ("batch_size float", TypeError, "batch_size"),
    ("batch_size -1", ValueError, "batch_size must be an int >= 0"),
    ("default dtype", TypeError, "dtype must be None, torch.float32 or torch.float64"),
    ("length > l_max", ValueError, "l_max="),
]


@given(cfg=layer_configs(), data=st.data(), seed=seeds, case=st.sampled_from(BAD_INPUTS),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_bad_inputs_raise_naming_the_argument(cfg, data, seed, case, dtype):
    family, kw = cfg
    kind, error, name = case
    layer = build(family, kw, seed, dtype)
    H = kw["d_model"]
    B, L = data.draw(st.integers(1, 3), "B"), _length(data.draw, family, kw)
    x = to_layout(layer, randn(B, L, H, seed=seed, dtype=dtype))
    other = torch.float64 if dtype == torch.float32 else torch.float32
    uni = not layer.bidirectional
    state = layer.default_state(B) if uni else None
    needs_state = kind.startswith(("state", "step", "batch_size", "default"))
    if needs_state and not uni:  # a bidirectional layer has no state: that is the error then
        error, name = ValueError, "bidirectional"
    if kind == "length > l_max":
        if family != "dss-softmax" or kw["l_max"] >= L_MAX:
            return
        x = to_layout(layer, randn(B, kw["l_max"] + 1, H, seed=seed, dtype=dtype))
    t_len = x.shape[-1] if layer.transposed else x.shape[1]
    calls = {
        "x rank 2": lambda: layer(x[0]), "x rank 4": lambda: layer(x[None]),
        "x features": lambda: layer(torch.cat([x, x], 1 if layer.transposed else 2)),
        "x int": lambda: layer(x.long()), "x bool": lambda: layer(x > 0),
        "x complex": lambda: layer(x.to(torch.complex128)),
        "x other float": lambda: layer(x.to(other)), "x float16": lambda: layer(x.half()),
        "x list": lambda: layer(x.tolist()),
        "x length 0": lambda: layer(x[..., :0] if layer.transposed else x[:, :0]),
        "x meta": lambda: layer(x.to("meta")),
        "lengths float": lambda: layer(x, lengths=torch.ones(B)),
        "lengths shape": lambda: layer(x, lengths=torch.ones(B + 1, dtype=torch.long)),
        "lengths > L": lambda: layer(x, lengths=torch.full((B,), t_len + 1)),
        "lengths < 0": lambda: layer(x, lengths=torch.full((B,), -1)),
        "state batch": lambda: layer(x, state=layer.default_state(B + 1)),
        "state dtype": lambda: layer(x, state=state.to(_OTHER_STATE_DTYPE[state.dtype])),
        "state shape": lambda: layer(x, state=layer.default_state(B)[..., :0]),
        "state list": lambda: layer(x, state=[0.0]),
        "return_state str": lambda: layer(x, return_state="no"),
        "x_t rank 3": lambda: layer.step(x[:, :1], state),
        "x_t features": lambda: layer.step(torch.ones(B, H + 1, dtype=dtype), state),
        "x_t int": lambda: layer.step(torch.ones(B, H, dtype=torch.long), state),
        "x_t other float": lambda: layer.step(torch.ones(B, H, dtype=other), state),
        "step state batch": lambda: layer.step(torch.ones(B, H, dtype=dtype), layer.default_state(B + 1)),
        "step state None": lambda: layer.step(torch.ones(B, H, dtype=dtype), None),
        "batch_size bool": lambda: layer.default_state(True),
        "batch_size float": lambda: layer.default_state(2.0),
        "batch_size -1": lambda: layer.default_state(-1),
        "default dtype": lambda: layer.default_state(B, dtype=data.draw(
            st.sampled_from([torch.float16, torch.bfloat16, torch.int64, torch.complex64]))),
        "length > l_max": lambda: layer(x),
    }
    if kind in ("state batch", "state shape", "state dtype", "state list") and not uni:
        calls[kind] = lambda: layer(x, state=torch.zeros(1))
    with raises_naming(error, name):
        calls[kind]()


@given(cfg=layer_configs(bidirectional=False), seed=seeds,
       batch_size=st.one_of(st.integers(-2, 3), st.booleans(), st.floats(0, 3), st.just("2")),
       dtype=st.sampled_from([None, torch.float32, torch.float64, torch.float16, torch.int64,
                              torch.complex64]))
def test_default_state(cfg, seed, batch_size, dtype):
    family, kw = cfg
    layer = build(family, kw, seed)  # float64 parameters
    valid_batch = isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 0
    if not valid_batch:
        with raises_naming(TypeError if not isinstance(batch_size, int) or isinstance(batch_size, bool)
                           else ValueError, "batch_size"):
            layer.default_state(batch_size, dtype=dtype)
        return
    if dtype not in (None, torch.float32, torch.float64):
        with raises_naming(TypeError, "dtype"):
            layer.default_state(batch_size, dtype=dtype)
        return
    state = layer.default_state(batch_size, dtype=dtype)
    assert state.shape[0] == batch_size and not state.any()
    x_t = randn(batch_size, kw["d_model"], seed=seed)
    if state.dtype != layer.default_state(batch_size).dtype:  # e.g. float32's state on this float64 layer
        with raises_naming(TypeError, "state must have dtype"):
            layer.step(x_t, state)
        return
    y_t, state2 = layer.step(x_t, state)
    assert y_t.shape == x_t.shape and state2.shape == state.shape and state2.dtype == state.dtype
