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
