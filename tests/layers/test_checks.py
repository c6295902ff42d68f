"""Constructor arguments: every public constructor refuses a wrong type (TypeError) or a value out of
range (ValueError) with a message naming the argument; strings are never coerced."""

from __future__ import annotations

import functools
import math
import re

import numpy as np
import pytest

import ssm
from ssm.layers.block import Block
from ssm.layers.checks import check_bool, check_int, check_probability

H = 4


def re_repr(value) -> str:
    return re.escape(repr(value))


def _block(**kw):
    return Block(**{"d_model": H, "layer": ssm.S4D(H, 4), **kw})


def _model(**kw):
    args = {"d_input": 3, "d_model": H, "d_output": 2, "n_layers": 1,
            "layer": functools.partial(ssm.S4D, d_state=4), **kw}
    return ssm.SequenceModel(**args)


CONSTRUCTORS = {
    "S4": lambda **kw: ssm.S4(**{"d_model": H, "d_state": 4, **kw}),
    "S4D": lambda **kw: ssm.S4D(**{"d_model": H, "d_state": 4, **kw}),
    "DSS": lambda **kw: ssm.DSS(**{"d_model": H, "d_state": 4, **kw}),
    "DSS-softmax": lambda **kw: ssm.DSS(**{"d_model": H, "d_state": 4, "variant": "softmax", "l_max": 8,
                                            **kw}),
    "S5": lambda **kw: ssm.S5(**{"d_model": H, "d_state": 4, **kw}),
    "Block": _block,
    "SequenceModel": _model,
}
_LAYER_BOOLS = ("bidirectional", "transposed", "tie_dropout")
BOOL_OPTIONS = {
    "S4": _LAYER_BOOLS, "S4D": _LAYER_BOOLS, "DSS": _LAYER_BOOLS + ("sep_dt_re_im",),
    "DSS-softmax": _LAYER_BOOLS, "S5": _LAYER_BOOLS,
    "Block": ("glu", "prenorm", "tie_dropout"),
    "SequenceModel": ("embedding", "prenorm", "glu", "tie_dropout"),
}
BOOL_CASES = [(c, opt) for c, opts in BOOL_OPTIONS.items() for opt in opts]


@pytest.mark.parametrize("ctor,option", BOOL_CASES, ids=[f"{c}-{o}" for c, o in BOOL_CASES])
@pytest.mark.parametrize("bad", ["no", "False", 0, 1, None, 1.0, np.bool_(True)])
def test_boolean_options_refuse_non_bools(ctor, option, bad):
    with pytest.raises(TypeError, match=rf"{option} must be a bool \(True or False\), got {re_repr(bad)}"):
        CONSTRUCTORS[ctor](**{option: bad})


@pytest.mark.parametrize("ctor,option", BOOL_CASES, ids=[f"{c}-{o}" for c, o in BOOL_CASES])
def test_boolean_options_take_bools(ctor, option):
    for value in (True, False):
        obj = CONSTRUCTORS[ctor](**{option: value})
        holder = obj.blocks[0] if ctor == "SequenceModel" and option != "embedding" else obj
        assert getattr(holder, option) is value


# (constructor, argument, bad value, error, text the message must contain)
BAD_ARGS = [
    ("S4D", "d_model", True, TypeError, "d_model must be an int >= 1, got True (bool)"),
    ("S4D", "d_model", 4.0, TypeError, "d_model must be an int >= 1, got 4.0 (float)"),
    ("S4D", "d_model", "4", TypeError, "d_model must be an int >= 1, got '4' (str)"),
    ("S4D", "d_model", 0, ValueError, "d_model must be an int >= 1, got 0"),
    ("S4", "d_state", True, TypeError, "d_state must be an int >= 2"),
    ("S4", "d_state", 5, ValueError, "d_state must be an even int >= 2"),
    ("DSS", "d_state", 8.0, TypeError, "d_state must be an int >= 2"),
    ("S5", "d_state", "8", TypeError, "d_state must be an int >= 2"),
    ("S5", "d_state", 5, ValueError, "d_state must be even and divisible by 2 * blocks"),
    ("S5", "blocks", True, TypeError, "blocks must be an int >= 1"),
    ("S5", "blocks", 2.0, TypeError, "blocks must be an int >= 1"),
    ("S5", "chunk_size", 0, ValueError, "chunk_size must be an int >= 1, got 0"),
    ("S4D", "channels", True, TypeError, "channels must be an int >= 1, got True (bool)"),
    ("S4", "channels", 0, ValueError, "channels must be an int >= 1, got 0"),
    ("S4D", "n_ssm", 1.0, TypeError, "n_ssm must be None or a positive int dividing d_model=4"),
    ("S4D", "n_ssm", 3, ValueError, "n_ssm must be None or a positive int dividing d_model=4"),
    ("DSS-softmax", "l_max", True, TypeError, "l_max must be an int >= 1, got True (bool)"),
    ("DSS-softmax", "l_max", 0, ValueError, "l_max must be an int >= 1, got 0"),
    ("DSS-softmax", "l_max", None, ValueError, "l_max must be given for variant='softmax'"),
    ("S4D", "dropout", "0.1", TypeError, "dropout must be a number in [0, 1), got '0.1' (str)"),
    ("S4", "dropout", True, TypeError, "dropout must be a number in [0, 1), got True (bool)"),
    ("S5", "dropout", 1.0, ValueError, "dropout must be in [0, 1), got 1.0"),
    ("DSS", "dropout", math.nan, ValueError, "dropout must be in [0, 1), got nan"),
    ("Block", "dropout", "0.1", TypeError, "dropout must be a number in [0, 1)"),
    ("SequenceModel", "dropout", -0.1, ValueError, "dropout must be in [0, 1), got -0.1"),
    ("S4D", "dt_min", "1e-3", TypeError, "dt_min must be a finite number > 0, got '1e-3' (str)"),
    ("S5", "dt_max", None, TypeError, "dt_max must be a finite number > 0, got None"),
    ("S4", "dt_min", 0.0, ValueError, "dt_min must be a finite number > 0, got 0.0"),
    ("DSS", "dt_max", math.inf, ValueError, "dt_max must be a finite number > 0, got inf"),
    ("S4D", "init", "LEGS", ValueError, "unknown init='LEGS'; valid values are"),
    ("S4D", "discretization", 1, ValueError, "unknown discretization=1; valid values are"),
    ("DSS", "variant", None, ValueError, "unknown variant=None; valid values are"),
    ("Block", "d_model", 4.0, TypeError, "d_model must be an int >= 1, got 4.0 (float)"),
    ("Block", "norm", "rms", ValueError, "unknown norm='rms'"),
    ("SequenceModel", "d_input", True, TypeError, "d_input must be an int >= 1, got True (bool)"),
    ("SequenceModel", "n_layers", 0, ValueError, "n_layers must be an int >= 1, got 0"),
    ("SequenceModel", "d_output", 2.0, TypeError, "d_output must be an int >= 1"),
    ("SequenceModel", "padding_idx", 0, ValueError, "padding_idx only applies to embedding=True"),
]


@pytest.mark.parametrize("ctor,arg,bad,error,text", BAD_ARGS,
                         ids=[f"{c}-{a}-{b!r}" for c, a, b, _, _ in BAD_ARGS])
def test_bad_arguments_name_the_argument(ctor, arg, bad, error, text):
    with pytest.raises(error) as info:
        CONSTRUCTORS[ctor](**{arg: bad})
    assert text in str(info.value)


def test_reported_cases():
    """The messages users got before were torch internals ("rand() received an invalid combination of
    arguments", "'<' not supported") or nothing at all (a non-causal layer from bidirectional="no")."""
    with pytest.raises(TypeError, match="bidirectional must be a bool"):
        ssm.S4D(4, 8, bidirectional="no")
    with pytest.raises(TypeError, match="transposed must be a bool"):
        ssm.S4D(4, 8, transposed="no")
    with pytest.raises(TypeError, match="d_model must be an int"):
        ssm.S4D(True, 8)
    with pytest.raises(TypeError, match="dropout must be a number in"):
        ssm.S4D(8, 8, dropout="0.1")


def test_padding_idx_and_layer_checks():
    with pytest.raises(ValueError, match=r"padding_idx must be a token id in \[0, d_input=3\), got 3"):
        _model(embedding=True, padding_idx=3)
    with pytest.raises(TypeError, match="padding_idx must be an int >= 0"):
        _model(embedding=True, padding_idx=1.0)
    _model(embedding=True, padding_idx=np.int64(0))
    with pytest.raises(TypeError, match="layer must be an nn.Module"):
        Block(H, lambda x: x)


def test_numpy_numbers_are_numbers():
    layer = ssm.S4D(np.int64(4), np.int64(8), dt_min=np.float32(1e-3), dropout=np.float64(0.1))
    assert layer.d_model == 4 and type(layer.d_model) is int and layer.d_state == 8


def test_helpers():
    assert check_bool("flag", False) is False
    assert check_int("n", np.int32(3)) == 3 and check_int("n", 0, minimum=0) == 0
    assert check_probability("p", 0) == 0.0
    for bad in ("1", b"1", [1], None):
        with pytest.raises(TypeError, match="n must be an int"):
            check_int("n", bad)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got inf"):
        check_probability("p", math.inf)
