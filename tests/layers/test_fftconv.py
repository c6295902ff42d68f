"""FFT convolution (causal and two-sided) against the direct O(L^2) sum."""

from __future__ import annotations

import pytest
import torch

from layer_cases import rel_err
from ssm.layers.fftconv import fast_fft_size, fft_conv, fft_conv_ref


@pytest.mark.parametrize("n", [1, 2, 3, 7, 31, 1000, 4097, 8191, 8192, 32767])
def test_fast_fft_size(n):
    m = fast_fft_size(n)
    assert m >= n and m % 2 == 0
    r = m
    for p in (2, 3, 5):
        while r % p == 0:
            r //= p
    assert r == 1, f"{m} has a prime factor > 5"
    # no smaller even 5-smooth number in [n, m)
    for k in range(n + (n % 2), m, 2):
        q = k
        for p in (2, 3, 5):
            while q % p == 0:
                q //= p
        assert q != 1, f"{k} < {m} is also 5-smooth"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("L", [1, 3, 17, 1000])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("two_sided", [False, True])
def test_fft_conv_equals_direct(dtype, L, channels, two_sided):
    B, H = 2, 3
    u = torch.randn(B, H, L, dtype=torch.float64)
    k = torch.randn(channels, H, L, dtype=torch.float64) / L ** 0.5
    k_rev = torch.randn(channels, H, L, dtype=torch.float64) / L ** 0.5 if two_sided else None
    ref = fft_conv_ref(u, k, k_rev)
    out = fft_conv(u.to(dtype), k.to(dtype), None if k_rev is None else k_rev.to(dtype))
    assert out.dtype == dtype and out.shape == (B, channels, H, L)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert rel_err(out.double(), ref) < tol


def test_fft_conv_gradients_match_direct():
    u = torch.randn(2, 3, 9, dtype=torch.float64, requires_grad=True)
    k = torch.randn(1, 3, 9, dtype=torch.float64, requires_grad=True)
    kr = torch.randn(1, 3, 9, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 1, 3, 9, dtype=torch.float64)
    ga = torch.autograd.grad((fft_conv(u, k, kr) * g).sum(), (u, k, kr))
    gb = torch.autograd.grad((fft_conv_ref(u, k, kr) * g).sum(), (u, k, kr))
    for a, b in zip(ga, gb):
        assert rel_err(a, b) < 1e-12


def test_anticausal_part_reads_forward_in_time():
    """y[t] = sum_{s >= t} k_rev[s - t] u[s]: an impulse at s reaches t <= s only."""
    L = 8
    u = torch.zeros(1, 1, L, dtype=torch.float64)
    u[..., 5] = 1.0
    k = torch.zeros(1, 1, L, dtype=torch.float64)
    k_rev = torch.arange(1, L + 1, dtype=torch.float64).view(1, 1, L)
    y = fft_conv(u, k, k_rev)[0, 0, 0]
    expected = torch.tensor([6, 5, 4, 3, 2, 1, 0, 0], dtype=torch.float64)
    assert torch.allclose(y, expected, atol=1e-12)


@pytest.mark.parametrize("two_sided", [False, True])
def test_empty_batch(two_sided):
    k = torch.randn(2, 3, 9, dtype=torch.float64, requires_grad=True)
    u = torch.randn(0, 3, 9, dtype=torch.float64, requires_grad=True)
    y = fft_conv(u, k, k if two_sided else None)  # before: an MKL FFT error
    assert y.shape == (0, 2, 3, 9) == fft_conv_ref(u, k, k if two_sided else None).shape
    y.sum().backward()
    assert u.grad.shape == u.shape and k.grad.shape == k.shape and not k.grad.any()
