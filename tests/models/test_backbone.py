"""SequenceModel (4 blocks): recurrent step == forward for every family, pooling over valid tokens."""

from __future__ import annotations

import functools

import pytest
import torch

import ssm
from ssm.models import ModelConfig

TOL = {torch.float64: 1e-6, torch.float32: 1e-4}
LAYERS = {
    "s4": functools.partial(ssm.S4, d_state=8),
    "s4d-inv": functools.partial(ssm.S4D, d_state=8, init="inv"),
    "s4d-ptd": functools.partial(ssm.S4D, d_state=8, init="ptd"),
    "dss-exp": functools.partial(ssm.DSS, d_state=8),
    "dss-softmax": functools.partial(ssm.DSS, d_state=8, variant="softmax", l_max=32),
    "s5": functools.partial(ssm.S5, d_state=8, blocks=2),
}


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("norm", ["layer", "batch"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_four_layer_step_equals_forward(name, norm, dtype):
    model = ssm.SequenceModel(3, 8, 5, 4, layer=LAYERS[name], norm=norm, prenorm=norm == "layer",
                              pool=None).to(dtype)
    x = torch.randn(2, 32, 3, dtype=dtype)
    model(x)  # running statistics for batch norm
    model.eval()
    with torch.no_grad():
        y = model(x)
        state, ys = model.default_state(2), []
        for t in range(32):
            y_t, state = model.step(x[:, t], state)
            ys.append(y_t)
    err = rel_err(torch.stack(ys, 1), y)
    assert err < TOL[dtype], f"{name}/{norm}: step vs forward rel err {err:.2e}"


@pytest.mark.parametrize("pool", ["mean", "last", None])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_batch_equals_each_alone(pool, bidirectional):
    layer = functools.partial(ssm.S4D, d_state=8, bidirectional=bidirectional)
    model = ssm.SequenceModel(10, 8, 3, 2, layer=layer, embedding=True, pool=pool, norm="batch").double()
    model.eval()
    lengths = torch.tensor([12, 5, 1])
    x = torch.randint(1, 10, (3, 12))
    out = model(x, lengths=lengths)
    assert torch.equal(model(x, lengths=lengths.tolist()), out)
    with pytest.raises(ValueError, match="lengths"):
        model(x, lengths=torch.tensor([1.0, 2.0, 3.0]))
    for b, n in enumerate(lengths.tolist()):
        alone = model(x[b:b + 1, :n])
        got = out[b:b + 1, :n] if pool is None else out[b:b + 1]
        assert rel_err(got, alone) < 1e-10


def test_padding_idx_gives_lengths():
    model = ssm.SequenceModel(10, 8, 3, 2, layer=LAYERS["s4d-inv"], embedding=True, padding_idx=0).double()
    x = torch.randint(1, 10, (2, 9))
    x[1, 6:] = 0
    out = model(x)
    assert rel_err(out[1:], model(x[1:, :6])) < 1e-10


def test_no_decoder_and_errors():
    model = ssm.SequenceModel(3, 8, None, 1, layer=LAYERS["s4d-inv"], pool="mean")
    assert model(torch.randn(2, 5, 3)).shape == (2, 8)
    with pytest.raises(ValueError, match="d_input=3"):
        model(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="pool=None"):
        model.step(torch.randn(2, 3), model.default_state(2))
    tok = ssm.SequenceModel(5, 8, 2, 1, layer=LAYERS["s4d-inv"], embedding=True)
    with pytest.raises(ValueError, match="d_input=5"):
        tok(torch.tensor([[1, 7]]))
    with pytest.raises(TypeError, match="integer"):
        tok(torch.randn(1, 3))
    with pytest.raises(ValueError, match="pool"):
        ssm.SequenceModel(3, 8, 2, 1, layer=LAYERS["s4d-inv"], pool="max")


@pytest.mark.parametrize("layer", ["s4", "s4d", "dss", "s5"])
def test_config_builds_model(layer):
    cfg = ModelConfig(d_input=3, d_output=2, d_model=8, n_layers=2, layer=layer, d_state=8)
    model = cfg.build()
    assert isinstance(model, ssm.SequenceModel)
    assert model(torch.randn(2, 6, 3)).shape == (2, 2)
    assert cfg.to_dict()["layer"] == layer
    with pytest.raises(ValueError, match="'s4d'"):
        ModelConfig(d_input=3, d_output=2, layer="rnn").build()


@pytest.mark.parametrize("name", ["s4", "s5"])
def test_empty_batch_and_zero_length(name):
    model = ssm.SequenceModel(3, 4, 2, 2, layer=LAYERS[name], norm="batch")
    x = torch.randn(0, 6, 3)
    y = model(x)
    assert y.shape == (0, 2)
    y.sum().backward()
    assert all(b.norm.norm.running_mean.isfinite().all() for b in model.blocks)
    with pytest.raises(ValueError, match=r"x has length L=0 .* the model needs L >= 1"):
        model(torch.randn(2, 0, 3))
    seq = ssm.SequenceModel(3, 4, 2, 2, layer=LAYERS[name], pool=None).eval()
    y_t, state = seq.step(x[:, 0], seq.default_state(0))
    assert y_t.shape == (0, 2) and len(state) == 2


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
@pytest.mark.parametrize("name", ["s4", "s4d-inv", "dss-exp", "s5"])
def test_nonfinite_padding_never_reaches_valid_positions(name, bad):
    """NaN/inf padding of a float input: outputs and gradients (valid inputs, every parameter) stay
    finite, and the padded sequence's outputs equal those of its valid part alone."""
    model = ssm.SequenceModel(3, 8, None, 2, LAYERS[name], pool=None, norm="batch").double().eval()
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    x_bad = x.clone()
    x_bad[1, 7:] = bad
    x_bad.requires_grad_()
    y = model(x_bad, lengths=torch.tensor([12, 7]))
    assert torch.isfinite(y).all() and torch.all(y[1, 7:] == 0)
    assert rel_err(y[1:, :7], model(x[1:, :7])) < 1e-9
    y.pow(2).sum().backward()
    assert torch.isfinite(x_bad.grad[1, :7]).all()
    for pname, p in model.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), f"{name}: non-finite gradient of {pname}"
    pooled = ssm.SequenceModel(3, 8, 2, 2, LAYERS[name], pool="mean").double()
    assert torch.isfinite(pooled(x_bad, lengths=torch.tensor([12, 7]))).all()
