"""Shared cases of the layer tests: the family/init matrix and the per-dtype tolerances."""

from __future__ import annotations

import functools

import torch

import ssm

# conv mode vs step mode (and other algebraically equal paths): relative to max |y|
TOL = {torch.float64: 1e-6, torch.float32: 1e-4}

# every family and init; DSS softmax is normalized over l_max = 64 (tests use L <= 64)
FAMILIES = {
    "s4-legs": functools.partial(ssm.S4, init="legs"),
    "s4-legt": functools.partial(ssm.S4, init="legt"),
    "s4-lagt": functools.partial(ssm.S4, init="lagt"),
    "s4-fout": functools.partial(ssm.S4, init="fout"),
    "s4d-legs": functools.partial(ssm.S4D, init="legs"),
    "s4d-inv": functools.partial(ssm.S4D, init="inv"),
    "s4d-lin": functools.partial(ssm.S4D, init="lin"),
    "s4d-real": functools.partial(ssm.S4D, init="real"),
    "s4d-ptd": functools.partial(ssm.S4D, init="ptd"),
    "s4d-legs-bilinear": functools.partial(ssm.S4D, init="legs", discretization="bilinear"),
    "s4d-inv-channels2": functools.partial(ssm.S4D, init="inv", channels=2),
    "dss-exp": functools.partial(ssm.DSS, variant="exp"),
    "dss-softmax": functools.partial(ssm.DSS, variant="softmax", l_max=64),
    "s4-channels2": functools.partial(ssm.S4, channels=2),
    "s4-nssm1": functools.partial(ssm.S4, n_ssm=1),  # one (Lambda, P, B) shared by every channel
    "s4d-nssm1": functools.partial(ssm.S4D, init="inv", n_ssm=1),
    "s5": functools.partial(ssm.S5, blocks=2),
    "s5-ptd": functools.partial(ssm.S5, blocks=1, init="ptd"),
}
CONV_FAMILIES = {k: v for k, v in FAMILIES.items() if not k.startswith("s5")}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-30)).item()


def run_steps(layer: torch.nn.Module, x: torch.Tensor, state=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The outputs (B, L, H) of stepping ``layer`` through ``x`` token by token, and the final state."""
    state = layer.default_state(x.shape[0]) if state is None else state
    ys = []
    for t in range(x.shape[1]):
        y, state = layer.step(x[:, t], state)
        ys.append(y)
    return torch.stack(ys, 1), state


def perturb_(layer: torch.nn.Module, scale: float = 0.1, seed: int = 0) -> torch.nn.Module:
    """Move every parameter off its structured init (as training would)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return layer
