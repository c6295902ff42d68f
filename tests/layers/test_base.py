"""Shared layer behaviour: input validation, caching, state_dict, gradients, mixed precision, tags."""

from __future__ import annotations

import copy

import pytest
import torch

import ssm
from layer_cases import CONV_FAMILIES, FAMILIES, perturb_, rel_err
from ssm.layers.base import lengths_to_mask, reverse_within_lengths


def test_reverse_within_lengths():
    x = torch.arange(12.0).view(2, 6)
    out = reverse_within_lengths(x, torch.tensor([4, 6]), 1)
    assert out.tolist() == [[3, 2, 1, 0, 4, 5], [11, 10, 9, 8, 7, 6]]
    assert torch.equal(reverse_within_lengths(out, torch.tensor([4, 6]), 1), x)
    assert torch.equal(reverse_within_lengths(x, None, 1), x.flip(1))
    assert lengths_to_mask(torch.tensor([0, 2]), 3).tolist() == [[False] * 3, [True, True, False]]


@pytest.mark.parametrize("name", ["s4-legs", "s4d-inv", "dss-exp", "dss-softmax", "s5"])
def test_bad_input_raises_clear_errors(name):
    layer = FAMILIES[name](4, 8)
    with pytest.raises(ValueError, match="3 dims"):
        layer(torch.randn(2, 4))
    with pytest.raises(ValueError, match="d_model=4"):
        layer(torch.randn(2, 10, 5))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(2, 10, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="float64"):
        layer(torch.randn(2, 10, 4, dtype=torch.float64))
    state = layer.default_state(3)
    with pytest.raises(ValueError, match="batch size 3"):
        layer(torch.randn(2, 10, 4), state=state)
    with pytest.raises(ValueError, match="batch size 3"):
        layer.step(torch.randn(2, 4), state)
    with pytest.raises(ValueError, match="x_t must have shape"):
        layer.step(torch.randn(2, 1, 4), layer.default_state(2))
    with pytest.raises(ValueError, match="lengths"):
        layer(torch.randn(2, 10, 4), lengths=torch.tensor([11, 3]))
    with pytest.raises(TypeError, match="integer"):
        layer(torch.randn(2, 10, 4), lengths=torch.tensor([1.0, 3.0]))
    with pytest.raises(TypeError, match="autocast"):
        copy.deepcopy(layer).bfloat16()(torch.randn(2, 10, 4).bfloat16())
    bi = FAMILIES[name](4, 8, bidirectional=True)
    with pytest.raises(ValueError, match="bidirectional"):
        bi.default_state(2)


@pytest.mark.parametrize("name", list(CONV_FAMILIES))
def test_cache_is_never_stale(name):
    layer = perturb_(FAMILIES[name](3, 8), 0.05).double()
    x = torch.randn(2, 30, 3, dtype=torch.float64)
    layer.eval()
    with torch.no_grad():
        y_before = layer(x)
        layer.step(x[:, 0], layer.default_state(2))  # fills the step cache too
    opt = torch.optim.SGD(layer.parameters(), lr=0.05)
    layer.train()
    layer(x).pow(2).sum().backward()
    opt.step()
    layer.eval()
    fresh = copy.deepcopy(layer)
    fresh._cache.clear()
    with torch.no_grad():
        y_after, y_fresh = layer(x), fresh(x)
        s_after = layer.step(x[:, 0], layer.default_state(2))[0]
        s_fresh = fresh.step(x[:, 0], fresh.default_state(2))[0]
    assert rel_err(y_after, y_before) > 1e-6, "the optimizer step should change the output"
    assert rel_err(y_after, y_fresh) < 1e-12 and rel_err(s_after, s_fresh) < 1e-12
    # load_state_dict with other parameters: results follow
    other = perturb_(FAMILIES[name](3, 8), 0.05, seed=7).double().eval()
    layer.load_state_dict(other.state_dict())
    with torch.no_grad():
        assert rel_err(layer(x), other(x)) < 1e-12
        assert rel_err(layer.step(x[:, 0], layer.default_state(2))[0],
                       other.step(x[:, 0], other.default_state(2))[0]) < 1e-12


@pytest.mark.parametrize("name", list(CONV_FAMILIES))
def test_state_dict_does_not_depend_on_length(name):
    layer = FAMILIES[name](3, 8).eval()
    before = {k: v.shape for k, v in layer.state_dict().items()}
    with torch.no_grad():
        layer(torch.randn(1, 10, 3))
        layer(torch.randn(1, 50 if name != "dss-softmax" else 64, 3))
    assert {k: v.shape for k, v in layer.state_dict().items()} == before


@pytest.mark.slow
@pytest.mark.parametrize("name", ["s4-legs", "s4d-legs", "s4d-inv", "s4d-ptd", "dss-exp", "s5"])
def test_gradients_finite_at_16k_with_small_dt(name):
    L = 16384
    layer = FAMILIES[name](2, 8, dt_min=1e-4, dt_max=1e-1)
    x = torch.randn(1, L, 2)
    layer(x).pow(2).mean().backward()
    for pname, p in layer.named_parameters():
        assert p.grad is not None, f"no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient in {pname}"
        assert p.grad.abs().sum() > 0, f"zero gradient in {pname}"


@pytest.mark.slow
def test_gradients_finite_at_16k_dss_softmax():
    L = 16384
    layer = ssm.DSS(2, 8, variant="softmax", l_max=L, dt_min=1e-4)
    layer(torch.randn(1, L, 2)).pow(2).mean().backward()
    for pname, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", ["s4-legs", "s4d-inv", "dss-exp", "dss-softmax", "s5"])
def test_bf16_autocast_trains(name):
    """Under CPU bf16 autocast the SSM runs in float32; a few steps give a finite, falling loss."""
    torch.manual_seed(1)
    model = ssm.SequenceModel(3, 16, 2, 2, layer=lambda d: FAMILIES[name](d, 8), pool="mean")
    x = torch.randn(8, 32, 3)
    y = (x[:, :, 0].mean(1) > 0).long()
    opt = torch.optim.AdamW(ssm.param_groups(model, lr=1e-2, weight_decay=0.0, ssm_lr=1e-3))
    losses = []
    for _ in range(8):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(map(lambda v: v == v and abs(v) < 1e6, losses)), losses
    assert losses[-1] < losses[0], losses
    layer = model.blocks[0].layer
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(torch.randn(1, 8, 16).bfloat16()).dtype == torch.bfloat16


@pytest.mark.parametrize("name", list(CONV_FAMILIES))
def test_kernel_in_float32_under_autocast(name):
    layer = FAMILIES[name](4, 8)
    K = layer.conv_kernel(16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        K_ac = layer.conv_kernel(16)
    assert K_ac.dtype == torch.float32 and rel_err(K_ac, K) < 1e-6
    layer = ssm.S4D(4, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = torch.randn(2, 16, 4).bfloat16()
        y = layer(x)
    assert y.dtype == torch.bfloat16
    assert rel_err(y.double(), layer(x.float()).double()) < 1e-2  # only the bf16 rounding of y


def test_tags_survive_copies():
    layer = ssm.S4(4, 8)
    assert set(layer.ssm_parameters()) == {"log_dt", "log_A_real", "A_imag", "P", "B"}
    clone = copy.deepcopy(layer).double()
    assert set(clone.ssm_parameters()) == {"log_dt", "log_A_real", "A_imag", "P", "B"}


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("name", ["s4-legs", "s4d-inv", "dss-exp", "dss-softmax", "s5"])
def test_zero_length_names_the_input_length(name, transposed):
    # before: "cauchy: z must be 1-D", "vandermonde: L must be >= 1", "scan: b must have a length L >= 1"
    layer = FAMILIES[name](4, 8, transposed=transposed)
    x = torch.randn(2, 4, 0) if transposed else torch.randn(2, 0, 4)
    with pytest.raises(ValueError, match=r"x has length L=0 .*need an input length L >= 1"):
        layer(x)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("name", ["s4-legs", "s4d-inv", "s4-channels2", "dss-exp", "dss-softmax", "s5"])
def test_empty_batch_gives_empty_outputs(name, bidirectional):
    # before: an MKL FFT error (S4, S4D, DSS) or a reshape error (S5); now empty outputs, as torch's layers
    layer = FAMILIES[name](4, 8, bidirectional=bidirectional)
    x = torch.randn(0, 6, 4, requires_grad=True)
    y = layer(x)
    assert y.shape == (0, 6, 4)
    y.sum().backward()  # in the graph: the parameters get (zero) gradients
    assert x.grad.shape == x.shape
    assert all(p.grad is None or not p.grad.any() for p in layer.parameters())
    assert layer(x, lengths=torch.zeros(0, dtype=torch.long)).shape == (0, 6, 4)
    if bidirectional:
        return
    state = layer.default_state(0)
    y, state = layer(x, state=state, return_state=True)  # chunked (state passing)
    assert y.shape == (0, 6, 4) and state.shape == layer.default_state(0).shape
    y_t, state = layer.step(x[:, 0], state)
    assert y_t.shape == (0, 4) and state.shape[0] == 0


@pytest.mark.parametrize("name", ["s4-legs", "s4d-inv", "dss-exp", "s5"])
def test_meta_inputs(name):
    # before: "unknown device type for autocast"
    layer = FAMILIES[name](4, 8)
    with pytest.raises(ValueError, match="x is on meta but the layer's parameters are on cpu"):
        layer(torch.randn(2, 5, 4, device="meta"))
    with pytest.raises(ValueError, match="state is on meta but the layer's parameters are on cpu"):
        layer(torch.randn(2, 5, 4), state=layer.default_state(2, device="meta"))
    real_state = layer.default_state(2)
    meta = copy.deepcopy(layer).to("meta")  # shape inference: outputs with the right shapes and dtypes
    x = torch.randn(2, 5, 4, device="meta")
    y, state = meta(x, return_state=True, lengths=torch.tensor([3, 5], device="meta"))
    assert y.device.type == "meta" and y.shape == x.shape and y.dtype == x.dtype
    assert state.device.type == "meta" and state.shape == real_state.shape and state.dtype == real_state.dtype
    y_t, state = meta.step(x[:, 0], meta.default_state(2))
    assert y_t.shape == (2, 4) and state.shape == real_state.shape and y_t.device.type == "meta"


@pytest.mark.filterwarnings("ignore:`torch.jit.trace")
@pytest.mark.parametrize("name", ["s4-legs", "s4d-inv", "dss-exp", "s5"])
def test_jit_trace_is_refused_with_the_alternative(name):
    # before (S4, S4D, DSS): "'Tensor' object has no attribute 'bit_length'"; S5 traced with its
    # length frozen
    layer = FAMILIES[name](4, 8)
    with pytest.raises(RuntimeError, match=r"torch.jit.trace is not supported .* Use torch.compile\(layer\)"):
        torch.jit.trace(layer, torch.randn(2, 5, 4))


@pytest.mark.parametrize("name", ["s4-legs", "s4d-inv", "s5"])
def test_bad_state_and_flags(name):
    layer = FAMILIES[name](4, 8)
    x = torch.randn(2, 5, 4)
    with pytest.raises(TypeError, match="return_state must be a bool"):
        layer(x, return_state="yes")
    with pytest.raises(TypeError, match=r"batch_size must be an int >= 0, got True \(bool\)"):
        layer.default_state(True)
    with pytest.raises(TypeError, match="batch_size must be an int >= 0"):
        layer.default_state(2.0)
    with pytest.raises(ValueError, match="batch_size must be an int >= 0, got -1"):
        layer.default_state(-1)
    for dtype in (torch.int64, torch.float16, torch.complex64):
        with pytest.raises(TypeError, match="dtype must be None, torch.float32 or torch.float64"):
            layer.default_state(2, dtype=dtype)
    state = layer.default_state(2)
    with pytest.raises(TypeError, match="state must have dtype"):
        layer.step(x[:, 0], state.to(torch.complex128 if state.is_complex() else torch.float64))
    with pytest.raises(ValueError, match="state must have shape"):
        layer.step(x[:, 0], state[..., :1])
    with pytest.raises(TypeError, match="x_t must be a floating-point tensor"):
        layer.step(x[:, 0].long(), state)
    with pytest.raises(TypeError, match="x_t must be a torch.Tensor"):
        layer.step(x[:, 0].tolist(), state)


def _mutate_data(layer, other):  # writes through .data bump no version counter
    for p, q in zip(layer.parameters(), other.parameters()):
        p.data.copy_(q.data)


def _mutate_copy(layer, other):
    with torch.no_grad():
        for p, q in zip(layer.parameters(), other.parameters()):
            p.copy_(q)


def _mutate_load(layer, other):
    layer.load_state_dict(other.state_dict())


def _mutate_optimizer(layer, other):  # an SGD step landing exactly on other's values
    with torch.no_grad():
        for p, q in zip(layer.parameters(), other.parameters()):
            p.grad = p - q
    torch.optim.SGD(layer.parameters(), lr=1.0).step()


@pytest.mark.parametrize("route", ["data", "copy", "load_state_dict", "optimizer"])
@pytest.mark.parametrize("name", ["s4-legs", "s4d-inv", "dss-exp", "s5"])
def test_cache_follows_every_parameter_write(name, route):
    """Under no_grad in eval mode, conv and step outputs follow any in-place change of the
    parameters, and equal those of a layer built with the new values."""
    mutate = {"data": _mutate_data, "copy": _mutate_copy, "load_state_dict": _mutate_load,
              "optimizer": _mutate_optimizer}[route]
    layer = perturb_(FAMILIES[name](3, 8), 0.05).double().eval()
    other = perturb_(FAMILIES[name](3, 8), 0.05, seed=7).double().eval()
    x = torch.randn(2, 12, 3, dtype=torch.float64)

    def outputs(m):
        with torch.no_grad():
            return m(x), m.step(x[:, 0], m.default_state(2))[0]

    y0, s0 = outputs(layer)  # fills the kernel and step caches
    mutate(layer, other)
    (y1, s1), (y_want, s_want) = outputs(layer), outputs(other)
    assert rel_err(y_want, y0) > 1e-3 and rel_err(s_want, s0) > 1e-3, "the change should matter"
    assert rel_err(y1, y_want) < 1e-12, f"{name}/{route}: stale convolution output"
    assert rel_err(s1, s_want) < 1e-12, f"{name}/{route}: stale step output"


@pytest.mark.parametrize("name", ["s4-legs", "s4d-inv", "dss-exp", "s5"])
def test_cache_follows_a_data_write_to_each_parameter(name):
    """A .data write to any single parameter (log_dt in particular) invalidates the caches."""
    layer = perturb_(FAMILIES[name](3, 8), 0.05).double().eval()
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    for pname, p in layer.named_parameters():
        with torch.no_grad():
            layer(x), layer.step(x[:, 0], layer.default_state(2))  # fill the caches
            p.data.mul_(0.5).add_(0.1)
            y, s = layer(x), layer.step(x[:, 0], layer.default_state(2))[0]
            fresh = copy.deepcopy(layer)
            fresh._cache.clear()
            assert rel_err(y, fresh(x)) < 1e-12, f"{name}: stale output after a .data write to {pname}"
            assert rel_err(s, fresh.step(x[:, 0], fresh.default_state(2))[0]) < 1e-12, pname
