"""S4 with ``hippo_form="released"`` (the HiPPO matrices of S4's released code): parameters and modes."""

from __future__ import annotations

import pytest
import torch

import ssm
from layer_cases import TOL, perturb_, rel_err, run_steps
from ssm.layers.s4 import S4_INITS
from ssm.layers.s4d import _RE_FLOOR

H, N = 3, 8


@pytest.mark.parametrize("init", S4_INITS)
def test_parameters_are_the_released_nplr(init):
    layer = ssm.S4(H, N, init=init, hippo_form="released").double()
    Lambda, P, B, _ = ssm.init.nplr(init, N, form="released")
    Lam, P_l = layer.state_matrix()
    floored = torch.complex(Lambda.real.clamp(max=-_RE_FLOOR), Lambda.imag)  # Re 0 starts at -1e-4
    torch.testing.assert_close(Lam, floored.expand_as(Lam))
    torch.testing.assert_close(P_l, P.unsqueeze(1).expand_as(P_l))
    torch.testing.assert_close(layer.input_matrix(), B.expand(H, -1))
    assert layer.hippo_form == "released"


@pytest.mark.parametrize("init", S4_INITS)
def test_paper_is_the_default(init):
    torch.manual_seed(0)
    default = ssm.S4(H, N, init=init)
    torch.manual_seed(0)
    paper = ssm.S4(H, N, init=init, hippo_form="paper")
    a, b = default.state_dict(), paper.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("init", S4_INITS)
def test_conv_equals_step_released(init, dtype):
    layer = perturb_(ssm.S4(H, N, init=init, hippo_form="released"), 0.05).to(dtype).eval()
    x = torch.randn(2, 37, H, dtype=dtype)
    with torch.no_grad():
        y_conv, s_conv = layer(x, return_state=True)
        y_step, state = run_steps(layer, x)
    err = rel_err(y_step, y_conv)
    assert err < TOL[dtype], f"{init}: conv vs step rel err {err:.2e}"
    err_s = rel_err(s_conv, state)
    assert err_s < TOL[dtype], f"{init}: final state rel err {err_s:.2e}"


def test_bad_hippo_form_is_refused():
    with pytest.raises(ValueError, match="hippo_form"):
        ssm.S4(H, N, hippo_form="release")
