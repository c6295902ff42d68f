"""DSS (arXiv 2203.14343): exp and softmax kernels against their formulas, softmax stability."""

from __future__ import annotations

import pytest
import torch

import ssm
from layer_cases import perturb_, rel_err


def formula_kernel(layer: ssm.DSS, L: int) -> torch.Tensor:
    """Paper formulas evaluated directly in float64 (no shift): exp and softmax."""
    dt = layer.timestep().double()
    Lam = layer.state_matrix().to(torch.complex128)
    W = torch.view_as_complex(layer.W.double())
    if layer.sep_dt_re_im:  # dt (H, 2): real and imaginary parts scaled separately
        x = dt[:, :1] * Lam.real + 1j * dt[:, 1:] * Lam.imag  # (H, M)
    else:
        x = dt.unsqueeze(-1) * Lam
    if layer.variant == "exp":
        coef = W * (torch.exp(x) - 1) / Lam
        pos = torch.arange(L, dtype=torch.float64)
    else:
        pos = torch.arange(layer.l_max, dtype=torch.float64)
        coef = W / Lam / torch.exp(x.unsqueeze(-1) * pos).sum(-1)
        pos = pos[:L]
    return (coef.unsqueeze(-1) * torch.exp(x.unsqueeze(-1) * pos)).sum(-2).real


@pytest.mark.parametrize("sep", [True, False], ids=["sep-dt", "one-dt"])
@pytest.mark.parametrize("variant", ["exp", "softmax"])
@pytest.mark.parametrize("L", [1, 17, 64])
def test_kernel_equals_formula(variant, L, sep):
    kw = {"l_max": 64} if variant == "softmax" else {}
    layer = perturb_(ssm.DSS(3, 8, variant=variant, channels=2, sep_dt_re_im=sep, **kw).double(), 0.05)
    if sep:
        assert (layer.log_dt[:, 0] - layer.log_dt[:, 1]).abs().min() > 0  # the two parts differ
    assert rel_err(layer.conv_kernel(L), formula_kernel(layer, L)) < 1e-10


@pytest.mark.parametrize("variant", ["exp", "softmax"])
def test_separate_timesteps_start_equal_and_reduce_to_one(variant):
    """sep_dt_re_im (the default): log_dt (H, 2), one draw for both parts at init; with equal parts
    the layer is the one-dt layer."""
    kw = {"l_max": 32} if variant == "softmax" else {}
    sep = ssm.DSS(3, 8, variant=variant, **kw).double()
    one = ssm.DSS(3, 8, variant=variant, sep_dt_re_im=False, **kw).double()
    assert sep.sep_dt_re_im and sep.log_dt.shape == (3, 2) and one.log_dt.shape == (3,)
    assert torch.equal(sep.log_dt[:, 0], sep.log_dt[:, 1])
    one.load_state_dict({**sep.state_dict(), "log_dt": sep.log_dt[:, 0].clone()})
    assert rel_err(one.conv_kernel(32), sep.conv_kernel(32)) < 1e-12
    with pytest.raises(TypeError, match="sep_dt_re_im must be a bool"):
        ssm.DSS(3, 8, sep_dt_re_im=1)


def test_softmax_positive_real_part_is_stable_in_float32():
    """Re(dt Lambda) (l_max - 1) ~ 200: exp overflows float32 unless the softmax is max-shifted."""
    layer = ssm.DSS(2, 8, variant="softmax", l_max=400).double()
    with torch.no_grad():
        layer.log_dt.fill_(0.0)  # dt = 1
        layer.A_real.copy_(torch.tensor([0.5, -0.5, 0.3, 1e-3], dtype=torch.float64))
    K_ref = formula_kernel(layer, 400)  # float64 reaches e^200 without overflow
    K32 = layer.float().conv_kernel(400)
    assert torch.isfinite(K32).all()
    assert rel_err(K32.double(), K_ref) < 1e-4
    # step mode keeps its set-up in float64 and stays finite up to l_max
    x = torch.randn(1, 400, 2)
    layer.eval()
    y = layer(x)
    s, ys = layer.default_state(1), []
    assert s.dtype == torch.complex128
    for t in range(400):
        yt, s = layer.step(x[:, t], s)
        ys.append(yt)
    assert rel_err(torch.stack(ys, 1), y) < 1e-4


def test_softmax_length_limit_and_errors():
    layer = ssm.DSS(2, 8, variant="softmax", l_max=16)
    with pytest.raises(ValueError, match="l_max=16"):
        layer(torch.randn(1, 17, 2))
    with pytest.raises(ValueError, match="l_max"):
        ssm.DSS(2, 8, variant="softmax")
    with pytest.raises(ValueError, match="'softmax'"):
        ssm.DSS(2, 8, variant="bad")
    assert (ssm.DSS(2, 8).state_matrix().real < 0).all()


def test_softmax_gradient_is_accurate_for_tiny_exponents():
    """dt Lambda ~ 1e-6: the float32 gradients of the softmax kernel match float64 (A, W to ~1e-7;
    log_dt, whose gradient is ~1e-11 here, to a few 1e-3). Through the plain
    expm1(n x)/expm1(x) ratio the log_dt gradient was off by a factor ~100 (cancellation)."""
    layer = ssm.DSS(2, 8, variant="softmax", l_max=64, dt_min=1e-6, dt_max=2e-6).double()
    grads = {}
    for dtype in (torch.float64, torch.float32):
        lay = layer.to(dtype)
        lay.zero_grad(set_to_none=True)
        lay.conv_kernel(64).pow(2).sum().backward()
        grads[dtype] = {n: p.grad.double().clone() for n, p in lay.named_parameters() if p.grad is not None}
    for name, g64 in grads[torch.float64].items():
        assert rel_err(grads[torch.float32][name], g64) < (5e-2 if name == "log_dt" else 1e-5), name



def test_state_dict_from_before_sep_dt_re_im_names_the_option():
    """A state_dict with one timestep per channel (log_dt (H,)) loads into DSS(sep_dt_re_im=False), and
    loading it elsewhere says so (before: a bare size mismatch)."""
    old = ssm.DSS(4, 8, sep_dt_re_im=False).state_dict()
    hint = r"log_dt has shape \(4,\) .* DSS\(\.\.\., sep_dt_re_im=False\) to load it"
    with pytest.raises(RuntimeError, match=hint):
        ssm.DSS(4, 8).load_state_dict(old)
    ssm.DSS(4, 8, sep_dt_re_im=False).load_state_dict(old)
    new = ssm.DSS(4, 8).state_dict()
    with pytest.raises(RuntimeError, match=r"blocks\.0\.layer\.log_dt .* sep_dt_re_im=True\) to load it"):
        model = ssm.SequenceModel(3, 4, 2, 1, layer=lambda d: ssm.DSS(d, 8, sep_dt_re_im=False))
        model.load_state_dict({f"blocks.0.layer.{k}": v for k, v in new.items()}, strict=False)
