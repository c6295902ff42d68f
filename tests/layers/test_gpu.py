"""Every layer family on a CUDA GPU: float32 output and gradients against the same layer in float64
on the CPU, convolution mode against step mode on the GPU, and the kernel backend ``auto`` uses there.

Skipped with the reason where no GPU is present. With the extension built, the layers' kernels run
through the compiled CUDA backend (``auto``'s first choice on CUDA tensors); without it, through
KeOps or the torch path, whichever ``auto`` picks; the test names the backend in its messages.
"""

from __future__ import annotations

import copy

import pytest
import torch

from ssm.kernels.backend import resolve_backend

from layer_cases import FAMILIES, TOL, perturb_, rel_err

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason=f"no CUDA GPU: torch {torch.__version__} (CUDA {torch.version.cuda}) sees none"),
]

H, N = 4, 16


def _length(name: str) -> int:
    return 64 if name == "dss-softmax" else 300  # DSS softmax normalizes over l_max = 64


def _auto_choice() -> str:
    return resolve_backend("auto", "cauchy", torch.ones(1, 1, dtype=torch.complex64, device="cuda"), 1)


def _output_and_grads(layer, x, g):
    layer.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    y = layer(x)
    y.backward(g)
    grads = {n: p.grad.detach().cpu().double() for n, p in layer.named_parameters()}
    grads["input"] = x.grad.detach().cpu().double()
    return y.detach().cpu().double(), grads


@pytest.mark.parametrize("name", list(FAMILIES))
def test_gpu_float32_matches_cpu_float64(name):
    """The accuracy rule of the kernel tests, for whole layers: against float64 on the CPU, the GPU's
    float32 error is at most twice the CPU's float32 error plus a floor of 1e-4 (relative to max |.|:
    FFTs and sums over L run in another order on the GPU).
    Some inits are ill-conditioned in float32 whatever the device (S4-FouT's and LegT's modes sit at
    Re(Lambda) = -1e-4: their A gradients carry percent-level float32 error on the CPU too)."""
    layer64 = perturb_(FAMILIES[name](H, N), 0.05).double()
    layer32 = copy.deepcopy(layer64).float()
    x = torch.randn(2, _length(name), H, dtype=torch.float64)
    g = torch.randn(x.shape, dtype=torch.float64)
    exact, exact_g = _output_and_grads(layer64, x, g)
    cpu, cpu_g = _output_and_grads(layer32, x.float(), g.float())
    gpu, gpu_g = _output_and_grads(layer32.cuda(), x.float().cuda(), g.float().cuda())
    backend = _auto_choice()
    for what, got, base, want in [("output", gpu, cpu, exact)] + [
            (f"grad of {n}", gpu_g[n], cpu_g[n], exact_g[n]) for n in exact_g]:
        e_gpu, e_cpu = rel_err(got, want), rel_err(base, want)
        assert e_gpu <= 2 * e_cpu + TOL[torch.float32], (
            f"{name} (kernels: {backend}): {what} GPU float32 rel err {e_gpu:.2e} > 2 x CPU float32 "
            f"{e_cpu:.2e} + {TOL[torch.float32]:.0e}")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_gpu_conv_equals_step(name):
    layer = perturb_(FAMILIES[name](H, N), 0.05).cuda().eval()
    L = 64 if name == "dss-softmax" else 97
    x = torch.randn(2, L, H, device="cuda")
    with torch.no_grad():
        y_conv, s_conv = layer(x, return_state=True)
        state, ys = layer.default_state(2, device=x.device), []
        for t in range(L):
            y, state = layer.step(x[:, t], state)
            ys.append(y)
    err = rel_err(torch.stack(ys, 1), y_conv)
    assert err < TOL[torch.float32], f"{name}: conv vs step on the GPU rel err {err:.2e}"
    assert rel_err(state, s_conv) < TOL[torch.float32], f"{name}: final state"


def test_auto_uses_the_best_gpu_backend():
    from ssm.kernels import available_backends
    from ssm.kernels.backend import _keops_has_gpu

    avail = available_backends()
    want = "cuda" if avail["cuda"] else ("keops" if avail["keops"] and _keops_has_gpu() else "torch")
    assert _auto_choice() == want
