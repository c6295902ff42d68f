"""Properties of the public constructors (S4, S4D, DSS, S5, Block, SequenceModel): generated keyword
arguments, some of them wrong in type or range. With no wrong argument the object builds, keeps its
flags and runs; otherwise a TypeError (wrong type: strings are never coerced, bools are not ints) or
ValueError (out of range) is raised whose message starts with the name of a wrong argument."""

from __future__ import annotations

import functools
import math

import pytest

pytest.importorskip("hypothesis", reason="the property tests need the [dev] extra (hypothesis)")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from property_cases import st  # noqa: E402

import ssm  # noqa: E402
from ssm.layers.block import Block  # noqa: E402

# values of the wrong type (TypeError) and out of range (ValueError) for each kind of argument
NOT_BOOL = ["no", "False", "true", 0, 1, None, 1.0, np.bool_(True)]
NOT_INT = [True, False, 4.0, "4", None, np.float64(2.0)]
NOT_INT_OR_NONE = [v for v in NOT_INT if v is not None]
NOT_NUMBER = ["0.1", "1e-3", None, True, [0.1]]
T, V = TypeError, ValueError


def _bad(error: type, values) -> st.SearchStrategy:
    """(error, value) pairs: ``values`` with the error each should raise."""
    return st.sampled_from(values).map(lambda v: (error, v))


def _bool():
    return st.booleans(), _bad(T, NOT_BOOL)


def _int(valid, low):
    return valid, st.one_of(_bad(T, NOT_INT), _bad(V, list(range(low - 3, low))))


def _prob():
    valid = st.sampled_from([0, 0.0, 0.1, np.float32(0.25), 0.5])
    return valid, st.one_of(_bad(T, NOT_NUMBER), _bad(V, [1.0, 1.5, -0.1, math.nan, math.inf]))


def _dt(valid_values):
    bad = st.one_of(_bad(T, NOT_NUMBER), _bad(V, [0, 0.0, -1e-3, math.inf, math.nan]))
    return st.sampled_from(valid_values), bad


def _choice(valid, bad=("", "LEGS", "Zoh", None, 3)):
    return st.sampled_from(valid), _bad(V, list(bad))


_LAYER_COMMON = {
    "d_model": _int(st.sampled_from([1, 2, 4, np.int64(4)]), 1),
    "dropout": _prob(), "transposed": _bool(), "bidirectional": _bool(), "tie_dropout": _bool(),
    "dt_min": _dt([1e-4, 1e-3, np.float32(1e-3)]), "dt_max": _dt([0.1, 1.0]),
}
_CONV = {**_LAYER_COMMON, "channels": _int(st.integers(1, 2), 1)}
_BAD_STATE = st.one_of(_int(None, 2)[1], _bad(V, [3, 5]))  # d_state: an even int >= 2
_EVEN_STATE = (st.sampled_from([2, 4, 8]), _BAD_STATE)
_S4_INITS, _S4D_INITS = ["legs", "legt", "lagt", "fout"], ["legs", "inv", "lin", "real", "ptd"]
SPECS = {
    "S4": (ssm.S4, {**_CONV, "d_state": _EVEN_STATE, "init": _choice(_S4_INITS),
                    "discretization": _choice(["bilinear"]), "n_ssm": (st.just(None), st.just((V, 3)))}),
    "S4D": (ssm.S4D, {**_CONV, "d_state": _EVEN_STATE, "init": _choice(_S4D_INITS),
                      "discretization": _choice(["zoh", "bilinear"]),
                      "n_ssm": (st.sampled_from([None, 1]),
                                st.one_of(_bad(V, [3, 0]), _bad(T, [1.0, True])))}),
    "DSS": (ssm.DSS, {**_CONV, "d_state": _EVEN_STATE, "init": _choice(["dss", "legs", "inv"]),
                      "variant": _choice(["exp"]), "sep_dt_re_im": _bool()}),
    "DSS-softmax": (functools.partial(ssm.DSS, variant="softmax"),
                    {**_CONV, "d_state": _EVEN_STATE, "sep_dt_re_im": _bool(),
                     # a missing l_max (None) is a ValueError
                     "l_max": (st.integers(3, 9),
                               st.one_of(_bad(T, NOT_INT_OR_NONE), _bad(V, [None, 0, -1])))}),
    "S5": (ssm.S5, {**_LAYER_COMMON, "d_state": (st.sampled_from([4, 8]), _BAD_STATE),
                    "blocks": _int(st.sampled_from([1, 2]), 1), "chunk_size": _int(st.integers(1, 5), 1),
                    "init": _choice(["legs", "inv", "lin", "ptd"]),
                    "c_init": _choice(["lecun", "complex_normal"]),
                    "discretization": _choice(["zoh", "bilinear"])}),
    "Block": (lambda d_model=4, **kw: Block(d_model, ssm.S4D(4, 4), **kw),
              {"d_model": _int(st.just(4), 1), "dropout": _prob(), "glu": _bool(), "prenorm": _bool(),
               "tie_dropout": _bool(), "norm": _choice(["layer", "batch", "none"]),
               "activation": _choice(["gelu", "relu", "identity"])}),
    "SequenceModel": (
        lambda d_input=3, d_model=4, d_output=2, n_layers=1, **kw: ssm.SequenceModel(
            d_input, d_model, d_output, n_layers, functools.partial(ssm.S4D, d_state=4), **kw),
        {"d_input": _int(st.integers(2, 5), 1), "d_model": _int(st.integers(1, 4), 1),
         "d_output": (st.sampled_from([None, 1, 3]), _bad(T, NOT_INT_OR_NONE)),
         "n_layers": _int(st.integers(1, 2), 1), "embedding": _bool(), "dropout": _prob(), "prenorm": _bool(),
         "glu": _bool(), "tie_dropout": _bool(), "norm": _choice(["layer", "batch"]),
         "pool": _choice(["mean", "last", None], bad=("", "max", 3))}),
}


REQUIRED = {"S4": ["d_model"], "S4D": ["d_model"], "DSS": ["d_model"], "DSS-softmax": ["d_model", "l_max"],
            "S5": ["d_model"]}


@st.composite
def constructor_calls(draw):
    """(name, kwargs, {wrong argument: expected error})."""
    name = draw(st.sampled_from(sorted(SPECS)))
    _, spec = SPECS[name]
    args = sorted(spec)
    given_args = draw(st.lists(st.sampled_from(args), unique=True, max_size=len(args)))
    given_args = set(given_args) | set(REQUIRED.get(name, []))
    wrong = draw(st.lists(st.sampled_from(args), unique=True, max_size=2)) if draw(st.booleans()) else []
    kw, errors = {}, {}
    for arg in sorted(given_args | set(wrong)):
        valid, bad = spec[arg]
        if arg in wrong:
            errors[arg], kw[arg] = draw(bad)
        else:
            kw[arg] = draw(valid)
    return name, kw, errors


def _names_an_argument(message: str, names) -> bool:
    return any(message.startswith((f"{n} ", f"unknown {n}=")) for n in names)


@settings(max_examples=5 * settings().max_examples)  # cheap examples, a large space of combinations
@given(call=constructor_calls())
def test_constructors_build_or_name_the_wrong_argument(call):
    name, kw, errors = call
    ctor, _ = SPECS[name]
    torch.manual_seed(0)
    if not errors:
        obj = ctor(**kw)
        for flag in ("transposed", "bidirectional", "tie_dropout", "sep_dt_re_im", "glu", "prenorm"):
            if flag in kw and hasattr(obj, flag):
                assert getattr(obj, flag) is kw[flag]
        if name == "SequenceModel":
            d_in, emb = kw.get("d_input", 3), kw.get("embedding", False)
            x = torch.randint(0, d_in, (2, 3)) if emb else torch.randn(2, 3, d_in)
            assert obj.eval()(x).shape[0] == 2
        else:
            H = int(kw.get("d_model", 4))
            x = torch.randn(2, H, 3) if kw.get("transposed", False) else torch.randn(2, 3, H)
            assert obj.eval()(x).shape == x.shape
        return
    with pytest.raises((TypeError, ValueError)) as info:
        ctor(**kw)
    message = str(info.value)
    named = [n for n in errors if _names_an_argument(message, [n])]
    assert named, f"the message names none of the wrong arguments {sorted(errors)}: {message}"
    arg, got = named[0], type(info.value).__name__
    assert isinstance(info.value, errors[arg]), \
        f"{arg}={kw[arg]!r}: expected {errors[arg].__name__}, got {got}: {message}"
