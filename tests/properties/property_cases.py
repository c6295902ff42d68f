"""Strategies and helpers shared by the property tests: layer configurations, inputs, error checks.

Every generated case either returns the right answer (against a reference path: float64 ``ref``
kernels, the sequential scan, step mode, the whole sequence) or raises ValueError / TypeError whose
message names the offending argument.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis", reason="the property tests need the [dev] extra (hypothesis)")
st = hypothesis.strategies

import ssm  # noqa: E402
from ssm.init.diag import DIAG_INITS  # noqa: E402
from tests.layers.layer_cases import run_steps  # noqa: E402,F401  (step mode over (B, L, H); re-exported)

FAMILIES = ("s4", "s4d", "dss-exp", "dss-softmax", "s5")
L_MAX = 40  # generated lengths are 0..L_MAX


def divisors(n: int) -> list[int]:
    return [k for k in range(1, n + 1) if n % k == 0]


@st.composite
def layer_configs(draw, bidirectional=None) -> tuple[str, dict]:
    """(family, constructor kwargs) of a valid layer with small H and N (N/2 odd or even)."""
    family = draw(st.sampled_from(FAMILIES))
    H = draw(st.integers(1, 4))
    bidi = draw(st.booleans()) if bidirectional is None else bidirectional
    kw = {"d_model": H, "transposed": draw(st.booleans()), "bidirectional": bidi,
          "dt_min": 1e-3, "dt_max": draw(st.sampled_from([1e-3, 1e-1, 1.0]))}
    if family == "s5":
        blocks = draw(st.sampled_from([1, 2]))
        kw.update(d_state=2 * blocks * draw(st.integers(1, 4 // blocks)), blocks=blocks,
                  init=draw(st.sampled_from(DIAG_INITS)), chunk_size=draw(st.integers(1, 9)),
                  discretization=draw(st.sampled_from(["zoh", "bilinear"])),
                  c_init=draw(st.sampled_from(["trunc_normal", "lecun", "complex_normal"])))
        return family, kw
    kw.update(d_state=2 * draw(st.integers(1, 4)), channels=draw(st.integers(1, 2)))
    if family == "s4":
        kw.update(init=draw(st.sampled_from(["legs", "legt", "lagt", "fout"])),
                  n_ssm=draw(st.sampled_from([None] + divisors(H))))
    elif family == "s4d":
        kw.update(init=draw(st.sampled_from(["legs", "inv", "lin", "real", "ptd"])),
                  discretization=draw(st.sampled_from(["zoh", "bilinear"])),
                  n_ssm=draw(st.sampled_from([None] + divisors(H))))
    else:
        kw.update(init=draw(st.sampled_from(["dss", "legs", "inv", "lin", "real"])),
                  sep_dt_re_im=draw(st.booleans()))
        if family == "dss-softmax":
            kw.update(variant="softmax", l_max=draw(st.integers(1, L_MAX + 8)))
    return family, kw


CTORS = {"s4": ssm.S4, "s4d": ssm.S4D, "dss-exp": ssm.DSS, "dss-softmax": ssm.DSS, "s5": ssm.S5}


def build(family: str, kw: dict, seed: int, dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    """The layer, its parameters moved off the structured init (as training would), in eval mode."""
    torch.manual_seed(seed)
    layer = CTORS[family](**kw)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return layer.to(dtype).eval()


def max_len(family: str, kw: dict) -> int:
    """The longest input the layer takes (DSS softmax: l_max)."""
    return kw["l_max"] if family == "dss-softmax" else 10**9


def randn(*shape: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def to_layout(layer, x_blh: torch.Tensor) -> torch.Tensor:
    """(B, L, H) -> the layer's layout (B, H, L) if transposed."""
    return x_blh.transpose(1, 2) if layer.transposed else x_blh


def from_layout(layer, y: torch.Tensor) -> torch.Tensor:
    return y.transpose(1, 2) if layer.transposed else y


def assert_close(got: torch.Tensor, want: torch.Tensor, rel: float, what: str) -> None:
    """max |got - want| <= rel * max(1, max |want|), shapes equal, non-finite entries in the same places."""
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    if got.numel() == 0:
        return
    fin = torch.isfinite(want)
    assert torch.equal(torch.isfinite(got), fin), f"{what}: non-finite entries differ"
    if not fin.any():
        return
    err = (got - want)[fin].abs().max().item()
    scale = max(1.0, want[fin].abs().max().item())
    assert err <= rel * scale, f"{what}: max err {err:.3e} > {rel:.0e} * {scale:.3e}"


@contextlib.contextmanager
def raises_naming(error: type, name: str):
    """The block must raise ``error`` (a ValueError or TypeError) whose message names ``name``."""
    assert error in (ValueError, TypeError)
    with pytest.raises((ValueError, TypeError)) as info:
        yield info
    got = type(info.value).__name__
    assert isinstance(info.value, error), f"expected {error.__name__}, got {got}: {info.value}"
    assert name in str(info.value), f"the message does not name {name!r}: {info.value}"
