"""DSS: diagonal state spaces (Gupta, Gu & Berant, arXiv 2203.14343), variants exp and softmax.

Lambda (N/2 complex modes, shared by the H channels), per-channel timesteps and a complex output W
per channel (B is folded into W). With ``x = dt Lambda`` the kernel is (Sec. 3, Prop. 1)

* ``exp``:     ``K[k] = Re(sum_i W_i f_i exp(x_i k))``, ``f_i = (exp(x_i) - 1)/Lambda_i`` (the ZOH input
  factor with B = 1, :func:`ssm.discretize.zoh`); Re(Lambda) = -exp(.) < 0.
* ``softmax``: ``K[k] = Re(sum_i W_i / Lambda_i * exp(x_i k) / sum_{j < l_max} exp(x_i j))``: a
  complex softmax over the positions 0..l_max-1. Re(Lambda) is unconstrained (the normalization
  keeps the kernel bounded); for modes with Re(x) > 0 it is evaluated max-shifted, i.e. as
  ``exp(-x (l_max-1-k)) / sum_m exp(-x m)``, so nothing overflows. The kernel is defined for
  L <= l_max; longer sequences raise. Its recurrent form multiplies the state by exp(x) with
  |exp(x)| > 1 for such modes, so its state and step set-up are kept in float64/complex128.

Timesteps: by default (``sep_dt_re_im=True``, as in the DSS authors' code) each channel has two, one
scaling the real and one the imaginary part of Lambda: ``x = dt_re Re(Lambda) + i dt_im Im(Lambda)``
(both start at the same log-uniform draw); the formulas above keep ``Lambda`` itself in ``f_i`` and
in the softmax's ``1/Lambda_i``. ``sep_dt_re_im=False``: one dt, ``x = dt Lambda``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .. import discretize, kernels
from ..init import diag_init
from .base import check_bool, check_choice, check_int
from .s4d import _RE_FLOOR, DiagSSMLayer, _init_C

__all__ = ["DSS", "DSS_INITS", "DSS_VARIANTS"]

DSS_VARIANTS = ("exp", "softmax")


def _softmax_sum(x: Tensor, n: int) -> Tensor:
    """``sum_{m < n} exp(x m) = expm1(n x) / expm1(x)``, written as ``n phi1(n x) / phi1(x)`` with
    ``phi1(z) = expm1(z)/z``: the same value, but its gradient keeps full precision as x -> 0, where
    autograd through the plain ratio cancels (float32 relative error ~1e-3 at |x| = 1e-6)."""
    return n * discretize._phi1(x * n) / discretize._phi1(x)
DSS_INITS = ("dss", "legs", "inv", "lin", "real")


class DSS(DiagSSMLayer):
    """Diagonal state space layer (DSS-exp / DSS-softmax).

    Args:
        d_model: H channels.
        d_state: N real state size (N/2 complex modes stored; the paper's "N = 64" is d_state=128).
        variant: "exp" | "softmax".
        l_max: softmax only: the length the kernel is normalized over (required for "softmax").
        init: "dss" (skew part of HiPPO-LegS, minus 1/2) | "legs" | "inv" | "lin" | "real".
        sep_dt_re_im: two timesteps per channel, for the real and the imaginary part of Lambda
            (default, as in the DSS code); False: one.
        dt_min, dt_max, channels, bidirectional, dropout, tie_dropout, transposed: as for :class:`ssm.S4D`.

    Parameters: ``log_dt`` (H, 2) (columns: real, imaginary part; (H,) if not ``sep_dt_re_im``), ``A_real`` (N/2,) (exp: Re(Lambda) = -exp(A_real); softmax:
    Re(Lambda) = A_real), ``A_imag`` (N/2,), ``W`` (channels * n_dir, H, N/2, 2), ``D`` (channels, H).
    """

    def __init__(self, d_model: int, d_state: int = 64, *, variant: str = "exp", l_max: Optional[int] = None,
                 init: str = "dss", dt_min: float = 1e-3, dt_max: float = 1e-1, channels: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, transposed: bool = False,
                 tie_dropout: bool = False, sep_dt_re_im: bool = True) -> None:
        super().__init__(d_model, channels=channels, transposed=transposed, dropout=dropout,
                         bidirectional=bidirectional, tie_dropout=tie_dropout)
        d_state = check_int("d_state", d_state, 2, "(even: N/2 complex modes)")
        if d_state % 2:
            raise ValueError(f"d_state must be an even int >= 2 (N/2 complex modes), got {d_state!r}")
        self.variant = check_choice("variant", variant, DSS_VARIANTS)
        self.init = check_choice("init", init, DSS_INITS)
        if variant == "softmax":
            if l_max is None:
                raise ValueError("l_max must be given for variant='softmax' (a positive int: the length "
                                 "the kernel is normalized over), got None")
            l_max = check_int("l_max", l_max)
        elif l_max is not None:
            raise ValueError("l_max only applies to variant='softmax'")
        self.l_max = l_max
        self.d_state = d_state
        dtype = torch.get_default_dtype()
        Lambda, _, _ = diag_init(init, d_state)
        re = -Lambda.real
        a_real = torch.log(re.clamp(min=_RE_FLOOR)) if variant == "exp" else -re
        self.sep_dt_re_im = check_bool("sep_dt_re_im", sep_dt_re_im)
        log_dt = discretize.init_log_dt((d_model,), dt_min, dt_max).to(dtype)
        if self.sep_dt_re_im:
            log_dt = log_dt.unsqueeze(-1).repeat(1, 2)  # the same draw for both parts
        self.register_ssm_param("log_dt", log_dt)
        self.register_ssm_param("A_real", a_real.to(dtype))
        self.register_ssm_param("A_imag", Lambda.imag.to(dtype))
        self.W = torch.nn.Parameter(_init_C(channels * self.n_dir, d_model, None, d_state, dtype))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # state_dicts saved before sep_dt_re_im existed have log_dt (H,): say which layer loads them
        saved = state_dict.get(prefix + "log_dt")
        if isinstance(saved, Tensor) and saved.dim() in (1, 2) and saved.dim() != self.log_dt.dim():
            fits = saved.dim() == 2  # (H, 2): two timesteps per channel
            error_msgs.append(
                f"{prefix}log_dt has shape {tuple(saved.shape)} in the state_dict but "
                f"{tuple(self.log_dt.shape)} in this DSS(sep_dt_re_im={self.sep_dt_re_im}): the state_dict "
                f"was saved with {'two timesteps' if fits else 'one timestep'} per channel"
                f"{'' if fits else ' (sep_dt_re_im=False, or a version before sep_dt_re_im existed)'}; "
                f"build the layer with DSS(..., sep_dt_re_im={fits}) to load it")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def timestep(self) -> Tensor:
        """The current positive timesteps: (H, 2) (real, imaginary part) if ``sep_dt_re_im``, else (H,)."""
        return discretize.dt_from_param(self.log_dt)

    def _exponent(self, Lam: Tensor, dtype: Optional[torch.dtype] = None) -> Tensor:
        """``x`` (H, N/2): ``dt Lambda``, or ``dt_re Re(Lambda) + i dt_im Im(Lambda)``."""
        dt = self.timestep() if dtype is None else self.timestep().to(dtype)
        if not self.sep_dt_re_im:
            return dt.unsqueeze(-1) * Lam
        return torch.complex(dt[:, :1] * Lam.real, dt[:, 1:] * Lam.imag)

    def state_matrix(self) -> Tensor:
        """Lambda, (N/2,) complex."""
        re = -torch.exp(self.A_real) if self.variant == "exp" else self.A_real
        return torch.complex(re, self.A_imag)

    def _state_dtype(self, dtype: torch.dtype) -> torch.dtype:
        return torch.complex128 if self.variant == "softmax" else super()._state_dtype(dtype)

    def _check_length(self, L: int) -> None:
        if self.variant == "softmax" and L > self.l_max:
            raise ValueError(f"DSS softmax is normalized over l_max={self.l_max} positions and is defined "
                             f"for sequences up to that length; got L={L}")

    def _diag_system(self) -> tuple[Tensor, Tensor, Tensor]:
        Lam = self.state_matrix()
        W = torch.view_as_complex(self.W)
        if self.variant == "exp":
            x = self._exponent(Lam)
            # f = (exp(x) - 1)/Lambda = (x/Lambda) phi1(x): the series branch of phi1 keeps small |x|
            # accurate (with one dt, x/Lambda = dt and f is ZOH's input factor for B = 1)
            f = (x / Lam) * discretize._phi1(x)
            return x, f, W / 2  # y = Re(W . x) = 2 Re(W/2 . x)
        # softmax: recurrent form in float64 (|exp(x)| may exceed 1); C = W / (Lambda S), S = sum_j e^{xj}
        Lam, W = Lam.to(torch.complex128), W.to(torch.complex128)
        x = self._exponent(Lam, torch.float64)
        S = _softmax_sum(x, self.l_max)
        return x, torch.ones_like(x), W / (2 * Lam * S)

    def _kernels(self, L: int) -> tuple[Tensor, Optional[Tensor]]:
        self._check_length(L)
        if self.variant == "exp":
            return super()._kernels(L)
        Lam = self.state_matrix()
        x = self._exponent(Lam)  # (H, N/2)
        flip = x.real > 0
        xs = torch.where(flip, -x, x)  # Re(xs) <= 0: exp(xs m) never overflows
        S = _softmax_sum(xs, self.l_max)  # sum_{m < l_max} exp(xs m)
        c = torch.view_as_complex(self.W) / (2 * Lam * S)  # (channels * n_dir, H, N/2)
        zero = torch.zeros((), dtype=c.dtype)
        Lk = self.l_max
        k = kernels.vandermonde(torch.where(flip, zero, c), xs, Lk, conj=True)
        k = k + kernels.vandermonde(torch.where(flip, c, zero), xs, Lk, conj=True).flip(-1)
        return self._split_dirs(k[..., :L])

    def _forward(self, u, state, lengths, return_state):
        self._check_length(u.shape[-1])
        return super()._forward(u, state, lengths, return_state)

    def extra_repr(self) -> str:
        extra = f", l_max={self.l_max}" if self.variant == "softmax" else ""
        return (f"d_model={self.d_model}, d_state={self.d_state}, variant={self.variant!r}{extra}, "
                f"init={self.init!r}, sep_dt_re_im={self.sep_dt_re_im}, channels={self.channels}, "
                f"bidirectional={self.bidirectional}")
