"""FFT convolution of a batch of sequences with per-channel SSM kernels (causal or two-sided).

``y = irfft(rfft(u, n) * rfft(K, n))[:L]`` with ``n >= 2L - 1`` a fast FFT size, so the circular
convolution equals the linear one (S4, arXiv 2111.00396, Sec. 3.3; S4D, arXiv 2206.11893, Sec. 2).
A bidirectional layer adds an anti-causal kernel ``K_rev``: ``y[t] += sum_{s >= t} K_rev[s - t] u[s]``,
placed at the negative lags of the same length-n kernel so both directions cost one FFT pair. Since
padded inputs are zero, the anti-causal part of a padded sequence sees only its own valid positions.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .base import SSMLayer
from .checks import check_int

__all__ = ["ConvSSMLayer", "fast_fft_size", "fft_conv", "fft_conv_ref"]


@lru_cache(maxsize=None)
def fast_fft_size(n: int) -> int:
    """Smallest even integer >= n whose prime factors are 2, 3 and 5 (fast for pocketfft/cuFFT)."""
    if n < 1:
        raise ValueError(f"fast_fft_size: n must be >= 1, got {n}")
    best = 1 << max(1, (n - 1).bit_length())  # a power of two >= n, >= 2
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = 2 * p35  # at least one factor 2: even sizes keep rfft/irfft on the fast path
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _full_kernel(k: Tensor, k_rev: Optional[Tensor], n: int) -> Tensor:
    """Length-n kernel: k at lags 0..L-1 and k_rev[j] at lag -j (index n - j), j = 0..L-1."""
    L = k.shape[-1]
    if k_rev is None:
        return k
    full = torch.nn.functional.pad(k, (0, n - L))
    # lag 0 of the reverse kernel adds to lag 0; lags -1..-(L-1) go to the end of the buffer.
    tail = k_rev[..., 1:].flip(-1)  # k_rev[L-1], ..., k_rev[1] at indices n-L+1 .. n-1
    full = full + torch.nn.functional.pad(tail, (n - L + 1, 0))
    return full + torch.nn.functional.pad(k_rev[..., :1], (0, n - 1))


class _FFTConv(torch.autograd.Function):
    """y = irfft(rfft(u, n) * rfft(k_full, n))[:L] with a hand-written backward.

    Autograd's own backward of rfft/irfft/slicing runs full complex FFTs and materializes
    zero-padded copies; here the backward is two FFTs of the batch (rfft of the output gradient,
    irfft of the input gradient) plus one kernel-sized irfft. Both are circular correlations, exact
    because n >= 2L - 1 and u, g vanish outside [0, L):
    ``grad_u = irfft(G conj(K))[:L]``, ``grad_k_full = irfft(sum_b G conj(U))``.
    """

    @staticmethod
    def forward(ctx, u: Tensor, k_full: Tensor, n: int) -> Tensor:
        L = u.shape[-1]
        u_f = torch.fft.rfft(u, n=n)  # (B, H, F)
        k_f = torch.fft.rfft(k_full, n=n)  # (C, H, F)
        prod = u_f.unsqueeze(1) * k_f if k_f.shape[0] > 1 else (u_f * k_f[0]).unsqueeze(1)
        ctx.save_for_backward(u_f, k_f)
        ctx.n, ctx.L = n, L
        return torch.fft.irfft(prod, n=n)[..., :L]

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        u_f, k_f = ctx.saved_tensors
        n, L = ctx.n, ctx.L
        g_f = torch.fft.rfft(g, n=n)  # (B, C, H, F)
        grad_u = grad_k = None
        if ctx.needs_input_grad[0]:
            gu_f = g_f[:, 0] * k_f[0].conj() if k_f.shape[0] == 1 else (g_f * k_f.conj()).sum(1)
            grad_u = torch.fft.irfft(gu_f, n=n)[..., :L]
        if ctx.needs_input_grad[1]:
            if g_f.is_cuda:  # einsum becomes a batched matmul of H * F (1 x B) @ (B x 1): slow on GPUs
                corr = (g_f * u_f.conj().unsqueeze(1)).sum(0)
            else:  # on the CPU einsum's matmul beats the product and sum (~1.5x at B=8, H=256, L=4096)
                corr = torch.einsum("bchf,bhf->chf", g_f, u_f.conj())
            grad_k = torch.fft.irfft(corr, n=n)
        return grad_u, grad_k, None


def fft_conv(u: Tensor, k: Tensor, k_rev: Optional[Tensor] = None) -> Tensor:
    """Causal (plus optional anti-causal) convolution of u with per-channel kernels.

    Args:
        u: (B, H, L) real input.
        k: (C, H, L) real causal kernel (C output channels per input channel).
        k_rev: optional (C, H, L) anti-causal kernel for bidirectional layers.
    Returns:
        (B, C, H, L): ``y[b,c,h,t] = sum_{s<=t} k[c,h,t-s] u[b,h,s] + sum_{s>=t} k_rev[c,h,s-t] u[b,h,s]``.
    """
    L = u.shape[-1]
    if k.shape[-1] != L or (k_rev is not None and k_rev.shape[-1] != L):
        raise ValueError(f"fft_conv: kernel length {k.shape[-1]} != input length {L}")
    if u.shape[0] == 0:  # an empty batch: FFT libraries (MKL) refuse zero-sized transforms
        return u.unsqueeze(1) * (k if k_rev is None else k + k_rev)  # (0, C, H, L), in the graph
    n = fast_fft_size(2 * L - 1) if L > 1 else 2
    k_full = _full_kernel(k, k_rev, n)
    if k_full.shape[-1] < n:
        k_full = torch.nn.functional.pad(k_full, (0, n - k_full.shape[-1]))
    return _FFTConv.apply(u, k_full, n)


def fft_conv_ref(u: Tensor, k: Tensor, k_rev: Optional[Tensor] = None) -> Tensor:
    """Direct O(L^2) reference of :func:`fft_conv` (same shapes); use float64 in tests."""
    L = u.shape[-1]
    t = torch.arange(L, device=u.device)
    lag = t[:, None] - t[None, :]  # (t, s)
    causal = torch.where(lag >= 0, k[..., lag.clamp(min=0)], torch.zeros((), dtype=k.dtype))  # (C,H,t,s)
    y = torch.einsum("chts,bhs->bcht", causal, u)
    if k_rev is not None:
        anti = torch.where(lag <= 0, k_rev[..., (-lag).clamp(min=0)], torch.zeros((), dtype=k.dtype))
        y = y + torch.einsum("chts,bhs->bcht", anti, u)
    return y


class ConvSSMLayer(SSMLayer):
    """Shared part of the convolution-mode layers (S4, S4D, DSS): dt, C, D, channels, caching.

    Subclasses register their SSM parameters plus ``C`` ((channels * n_dir, H, N/2, 2), the real view
    of the complex output vectors; rows ``channels:`` read backwards when bidirectional) and implement
    ``_kernels(L) -> (k, k_rev or None)``, ``_state_output(state, L) -> (B, channels, H, L)``,
    ``_final_state(u, state, lengths) -> state`` and
    ``_step_core(u_t, state) -> (y (B, channels, H), state)``.

    Kernels and step set-ups go through :meth:`SSMLayer.cached` (recomputed while gradients are
    recorded, cached and never stale otherwise).
    """

    def __init__(self, d_model: int, *, channels: int = 1, transposed: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, tie_dropout: bool = False) -> None:
        super().__init__(d_model, transposed=transposed, dropout=dropout, bidirectional=bidirectional,
                         tie_dropout=tie_dropout)
        self.channels = channels = check_int("channels", channels)
        self.n_dir = 2 if bidirectional else 1
        self.D = nn.Parameter(torch.randn(channels, d_model))
        # channels > 1: outputs (B, channels * H, L) are mixed back to H features.
        self.mix = nn.Linear(channels * d_model, d_model) if channels > 1 else None

    # ------------------------------------------------------------------------------------- kernels
    def conv_kernel(self, L: int) -> Tensor:
        """The convolution kernel of length L: (channels, H, L); bidirectional: (2, channels, H, L)."""
        if not isinstance(L, int) or L < 1:
            raise ValueError(f"L must be a positive int, got {L!r}")
        device = next(self.parameters()).device
        with torch.autocast(device.type, enabled=False):  # kernels are computed in float32 at least
            k, k_rev = self._kernels(L)
        return k if k_rev is None else torch.stack([k, k_rev])

    def _split_dirs(self, k: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        """(channels * n_dir, ...) -> forward rows, backward rows (or None)."""
        c = self.channels
        return (k[:c], k[c:]) if self.bidirectional else (k, None)

    def _mix(self, y: Tensor) -> Tensor:
        """(B, channels, H, *rest) -> (B, H, *rest)."""
        if self.mix is None:
            return y[:, 0]
        B, c, H = y.shape[:3]
        y = y.reshape(B, c * H, *y.shape[3:])
        return torch.einsum("bk...,hk->bh...", y, self.mix.weight.to(y.dtype)) + \
            self.mix.bias.to(y.dtype).view(H, *([1] * (y.dim() - 2)))

    def _forward(self, u: Tensor, state: Optional[Tensor], lengths: Optional[Tensor],
                 return_state: bool) -> tuple[Tensor, Optional[Tensor]]:
        L = u.shape[-1]
        k, k_rev = self.cached("kernel", L, lambda: self._kernels(L))
        # the skip term D u is the lag-0 tap of the causal kernel: one pass over the batch fewer
        k = k + nn.functional.pad(self.D.to(k.dtype).unsqueeze(-1), (0, L - 1))
        y = fft_conv(u, k, k_rev)  # (B, channels, H, L)
        if state is not None:
            y = y + self._state_output(state, L).to(y.dtype)
        next_state = self._final_state(u, state, lengths) if return_state else None
        return self._mix(y), next_state

    def _step(self, u_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        y, state = self._step_core(u_t, state)  # (B, channels, H)
        y = y + self.D.to(u_t.dtype) * u_t.unsqueeze(1)
        return self._mix(y), state

    def _kernels(self, L: int) -> tuple[Tensor, Optional[Tensor]]:
        raise NotImplementedError

    def _state_output(self, state: Tensor, L: int) -> Tensor:
        raise NotImplementedError

    def _final_state(self, u: Tensor, state: Optional[Tensor], lengths: Optional[Tensor]) -> Tensor:
        raise NotImplementedError

    def _step_core(self, u_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError
