"""S4D (arXiv 2206.11893) and S4-PTD (arXiv 2310.01698): the Vandermonde kernel against its sum."""

from __future__ import annotations

import pytest
import torch

import ssm
from layer_cases import perturb_, rel_err


def naive_kernel(layer: ssm.S4D, L: int) -> torch.Tensor:
    """K[l] = 2 Re(sum_n C_n Ad_n^l Bd_n), discretized by ssm.discretize, powers one by one."""
    dt = layer.timestep().unsqueeze(-1)
    Lam = layer.state_matrix()
    B = torch.view_as_complex(layer.B)
    disc = ssm.discretize.zoh if layer.discretization == "zoh" else ssm.discretize.bilinear
    Ad, Bd = disc(dt, Lam, B, diagonal=True)
    C = torch.view_as_complex(layer.C)
    out, v = [], Bd
    for _ in range(L):
        out.append(2 * (C * v).sum(-1).real)
        v = v * Ad
    return torch.stack(out, -1)


@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
@pytest.mark.parametrize("init", ["legs", "inv", "lin", "real", "ptd"])
@pytest.mark.parametrize("L", [1, 3, 17, 256])
def test_kernel_equals_power_sum(init, disc, L):
    layer = perturb_(ssm.S4D(3, 8, init=init, discretization=disc, channels=2).double(), 0.05)
    err = rel_err(layer.conv_kernel(L), naive_kernel(layer, L))
    assert err < 1e-10, f"{init}/{disc} L={L}: rel err {err:.2e}"


def test_float32_kernel_close_to_float64():
    layer = perturb_(ssm.S4D(4, 64, init="inv").double(), 0.05)
    K64 = layer.conv_kernel(4097)
    K32 = layer.float().conv_kernel(4097)
    assert rel_err(K32.double(), K64) < 1e-4


def test_stability_by_construction():
    layer = ssm.S4D(2, 8)
    with torch.no_grad():
        layer.log_A_real.fill_(-50.0)  # any value of the parameter keeps Re(Lambda) < 0
    assert (layer.state_matrix().real < 0).all()
    with torch.no_grad():
        layer.log_A_real.fill_(3.0)
    x = torch.randn(1, 200, 2)
    assert torch.isfinite(layer(x)).all()


def test_ptd_maps_C_through_V():
    """With a basis V (legs, ptd) C is drawn real in the original basis and stored as C~ = C V."""
    from ssm.layers.s4d import _init_C

    _, _, V = ssm.init.diag_init("ptd", 8)
    torch.manual_seed(3)
    C_t = torch.view_as_complex(_init_C(2, 1, V, 8, torch.float64))
    torch.manual_seed(3)
    C = torch.randn(2, 1, 8, dtype=torch.float64).to(torch.complex128)
    assert rel_err(C_t, C @ V) < 1e-12


def test_timestep_and_errors():
    layer = ssm.S4D(5, 8, dt_min=1e-3, dt_max=1e-2)
    dt = layer.timestep()
    assert dt.shape == (5,) and (dt >= 1e-3 * 0.999).all() and (dt <= 1e-2 * 1.001).all()
    with pytest.raises(ValueError, match="'inv'"):
        ssm.S4D(4, 8, init="hippo")
    with pytest.raises(ValueError, match="'zoh'"):
        ssm.S4D(4, 8, discretization="euler")
    with pytest.raises(ValueError, match="dt_min"):
        ssm.S4D(4, 8, dt_min=0.0)
