"""Properties of ``SequenceModel`` over generated layers, widths, depths and inputs: step mode equals
forward, pooling over a padded batch equals each sequence alone, and bad inputs raise a ValueError or
TypeError naming the argument."""

from __future__ import annotations

import functools

import pytest

pytest.importorskip("hypothesis", reason="the property tests need the [dev] extra (hypothesis)")

import torch  # noqa: E402
from hypothesis import given  # noqa: E402
from property_cases import CTORS, assert_close, layer_configs, max_len, raises_naming, st  # noqa: E402

import ssm  # noqa: E402

seeds = st.integers(0, 2**16)


@st.composite
def models(draw, pool):
    """(model in eval mode, float64, with `pool`, d_input, embedding, the longest input it takes)."""
    family, kw = draw(layer_configs(bidirectional=False))
    H = kw.pop("d_model")
    kw["transposed"] = False  # a Block takes (B, L, H)
    embedding = draw(st.booleans())
    d_input = draw(st.integers(1, 5))
    seed = draw(seeds)
    torch.manual_seed(seed)
    model = ssm.SequenceModel(
        d_input, H, draw(st.sampled_from([None, 1, 3])), draw(st.integers(1, 2)),
        layer=functools.partial(CTORS[family], **kw), embedding=embedding, pool=pool,
        prenorm=draw(st.booleans()), glu=draw(st.booleans()), norm=draw(st.sampled_from(["layer", "batch"])),
        activation=draw(st.sampled_from(["gelu", "tanh"])))
    return model.double().eval(), d_input, embedding, max_len(family, kw), seed


def _inputs(B, L, d_input, embedding, seed):
    g = torch.Generator().manual_seed(seed)
    if embedding:
        return torch.randint(0, d_input, (B, L), generator=g)
    return torch.randn(B, L, d_input, generator=g, dtype=torch.float64)


@given(case=models(pool=None), data=st.data())
def test_step_equals_forward(case, data):
    model, d_input, embedding, l_max, seed = case
    B, L = data.draw(st.integers(0, 3), "B"), data.draw(st.integers(1, min(24, l_max)), "L")
    x = _inputs(B, L, d_input, embedding, seed)
    with torch.no_grad():
        y = model(x)
        state, ys = model.default_state(B), []
        for t in range(L):
            y_t, state = model.step(x[:, t], state)
            ys.append(y_t)
    assert_close(torch.stack(ys, 1), y, 1e-6, "step vs forward")


@given(case=models(pool="mean"), data=st.data(),
       pool=st.sampled_from(["mean", "last"]))
def test_pooled_padded_batch_equals_each_sequence_alone(case, data, pool):
    model, d_input, embedding, l_max, seed = case
    model.pool = pool
    B, L = data.draw(st.integers(1, 3), "B"), data.draw(st.integers(1, min(24, l_max)), "L")
    lengths = torch.tensor(data.draw(st.lists(st.integers(1, L), min_size=B, max_size=B), "lengths"))
    x = _inputs(B, L, d_input, embedding, seed)
    with torch.no_grad():
        y = model(x, lengths=lengths)
        for b in range(B):
            alone = model(x[b : b + 1, : int(lengths[b])])
            assert_close(y[b : b + 1], alone, 1e-9, f"sequence {b} of length {int(lengths[b])}")


BAD_MODEL_INPUTS = [
    ("x rank", ValueError, "x must have shape"), ("x list", TypeError, "x must be a torch.Tensor"),
    ("x length 0", ValueError, "x has length L=0"), ("x dtype", TypeError, "x must be"),
    ("tokens range", ValueError, "tokens must lie in"), ("x features", ValueError, "x must have shape"),
    ("lengths shape", ValueError, "lengths must"), ("step pooled", ValueError, "pool"),
    ("step state", ValueError, "state must be a list"), ("step x_t", ValueError, "x must have shape"),
]


@given(case=models(pool=None), kind=st.sampled_from(BAD_MODEL_INPUTS), data=st.data())
def test_bad_model_inputs_raise_naming_the_argument(case, kind, data):
    model, d_input, embedding, l_max, seed = case
    name, error, text = kind
    B, L = data.draw(st.integers(1, 3), "B"), data.draw(st.integers(1, min(8, l_max)), "L")
    x = _inputs(B, L, d_input, embedding, seed)
    if name == "tokens range" and not embedding:
        name, error, text = "x features", ValueError, "x must have shape"
    if name == "x features" and embedding:
        name, error, text = "tokens range", ValueError, "tokens must lie in"
    calls = {
        "x rank": lambda: model(x[0]), "x list": lambda: model(x.tolist()),
        "x length 0": lambda: model(x[:, :0]),
        "x dtype": lambda: model(x.double() if embedding else x.long()),
        "tokens range": lambda: model(x + d_input), "x features": lambda: model(torch.cat([x, x], -1)),
        "lengths shape": lambda: model(x, lengths=torch.ones(B + 1, dtype=torch.long)),
        "step pooled": lambda: setattr(model, "pool", "mean") or model.step(x[:, 0], model.default_state(B)),
        "step state": lambda: model.step(x[:, 0], model.default_state(B)[:-1]),
        "step x_t": lambda: model.step(x, model.default_state(B)),
    }
    with raises_naming(error, text):
        calls[name]()
