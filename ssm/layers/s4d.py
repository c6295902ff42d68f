"""S4D: the diagonal state-space layer with a Vandermonde kernel (Gu et al., arXiv 2206.11893).

Per channel h: ``x_k = Ad x_{k-1} + Bd u_k``, ``y_k = 2 Re(C x_k) + D u_k`` with ``Ad = diag(exp(x))``
over N/2 stored complex modes (their conjugates are implied, so ``d_state = N`` real states).
The kernel ``K[l] = 2 Re(sum_n C_n Bd_n exp(x_n l))`` (Sec. 3, Eq. 5) is a Vandermonde product
(:func:`ssm.kernels.vandermonde`); ``x = dt Lambda`` for ZOH or ``log Ad`` for bilinear
(:mod:`ssm.discretize`). ``init="ptd"`` gives S4-PTD (Yu et al., arXiv 2310.01698).
:class:`DiagSSMLayer` holds the diagonal machinery shared with DSS (state passing, step mode).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .. import discretize, kernels
from ..init import diag_init
from .base import check_choice, check_int, check_n_ssm, repeat_copies, reverse_within_lengths
from .fftconv import ConvSSMLayer

__all__ = ["DiagSSMLayer", "S4D", "S4D_INITS"]

S4D_INITS = ("legs", "inv", "lin", "real", "ptd")
_RE_FLOOR = 1e-4  # init modes with Re(Lambda) > -1e-4 start at -1e-4 (log of the negated real part)


def _init_C(channels: int, H: int, V: Optional[Tensor], N: int, dtype: torch.dtype) -> Tensor:
    """Random output vectors as complex (channels, H, N/2): complex normal, or C V for a real C."""
    if V is None:
        C = torch.randn(channels, H, N // 2, dtype=torch.complex128)  # E|C|^2 = 1
    else:
        C = torch.randn(channels, H, N, dtype=torch.float64).to(torch.complex128) @ V
    return torch.view_as_real(C).to(dtype)


class DiagSSMLayer(ConvSSMLayer):
    """A convolution layer whose state matrix is diagonal (S4D, DSS): kernel, state passing, step.

    Subclasses implement ``_diag_system() -> (x, Bd, C)``: ``x`` (H, N/2) complex with ``Ad = exp(x)``,
    ``Bd`` (H, N/2) complex, ``C`` (channels * n_dir, H, N/2) complex, such that
    ``x_k = exp(x) x_{k-1} + Bd u_k`` and ``y_k = 2 Re(sum_n C_n x_k[n]) + D u_k``. The state is
    (B, H, N/2) complex.
    """

    d_state: int

    def _diag_system(self) -> tuple[Tensor, Tensor, Tensor]:
        raise NotImplementedError

    def _state_shape(self, batch_size: int) -> tuple[int, ...]:
        return (batch_size, self.d_model, self.d_state // 2)

    def _kernels(self, L: int) -> tuple[Tensor, Optional[Tensor]]:
        x, Bd, C = self._diag_system()
        v = C * Bd
        k = kernels.vandermonde(v, x, L, conj=True)  # (channels * n_dir, H, L) real
        return self._split_dirs(k)

    def _state_output(self, state: Tensor, L: int) -> Tensor:
        x, _, C = self._diag_system()
        C = C[: self.channels]
        v = C.unsqueeze(0) * (torch.exp(x) * state).unsqueeze(1)  # (B, channels, H, N/2): C Ad x0
        return kernels.vandermonde(v, x, L, conj=True).to(state.real.dtype)

    def _final_state(self, u: Tensor, state: Optional[Tensor], lengths: Optional[Tensor]) -> Tensor:
        x, Bd, _ = self._diag_system()
        L = u.shape[-1]
        u_rev = reverse_within_lengths(u, lengths, -1)  # u_rev[j] = u[len - 1 - j]
        out = kernels.vandermonde_transpose(u_rev.to(x.real.dtype), Bd, x, L)  # sum_j Ad^j Bd u_rev[j]
        if state is not None:
            n = torch.full((u.shape[0],), L, device=u.device) if lengths is None else lengths
            out = out + torch.exp(x * n.to(x.real.dtype).view(-1, 1, 1)) * state
        return out

    def _step_setup(self) -> tuple[Tensor, Tensor, Tensor]:
        x, Bd, C = self._diag_system()
        return torch.exp(x), Bd, C[: self.channels]

    def _step_core(self, u_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        Ad, Bd, C = self.cached("step", 0, self._step_setup)
        state = Ad * state + Bd * u_t.unsqueeze(-1)
        if C.shape[0] == 1:  # y = 2 Re(C x), without einsum's permutes (the per-token cost is overhead)
            y = 2 * (C[0] * state).real.sum(-1).unsqueeze(1)
        else:
            y = 2 * torch.einsum("chn,bhn->bch", C, state).real
        return y.to(u_t.dtype), state


class S4D(DiagSSMLayer):
    """Diagonal SSM layer (S4D / S4-PTD).

    Args:
        d_model: H channels.
        d_state: N, the real state size (N/2 complex modes stored). Must be even.
        init: "legs" | "inv" | "lin" | "real" | "ptd" (:func:`ssm.init.diag_init`).
        discretization: "zoh" | "bilinear".
        dt_min, dt_max: range of the log-uniform initial timestep (one dt per channel).
        channels: output channels per input channel (mixed back to H by a linear map).
        bidirectional: add a second output vector C read backwards (non-causal layer).
        n_ssm: number k of distinct (Lambda, B) copies shared by the H channels (channel h uses copy
            h % k; k must divide H); None: H, every channel its own. dt, C and D stay per channel.
        dropout: dropout on the output. tie_dropout: one dropout mask per (batch, channel), shared
            along the sequence. transposed: (B, H, L) layout.
        b_clip: init "legs" only: clamp Im(V^* B) at init to [-b_clip, b_clip] before the 1/2, as S4's
            released code does (2.0 there); None (default): no clip (:func:`ssm.init.diag_init`).

    Parameters: ``log_dt`` (H,), ``log_A_real`` and ``A_imag`` (k, N/2) with
    ``Lambda = -exp(log_A_real) + i A_imag`` (so Re(Lambda) < 0 always), ``B`` (k, N/2, 2) and ``C``
    (channels * n_dir, H, N/2, 2) as real views of complex tensors, ``D`` (channels, H); k = n_ssm
    (H by default). :meth:`state_matrix` and :meth:`input_matrix` give Lambda and B expanded to H.
    """

    def __init__(self, d_model: int, d_state: int = 64, *, init: str = "legs", discretization: str = "zoh",
                 dt_min: float = 1e-3, dt_max: float = 1e-1, channels: int = 1, bidirectional: bool = False,
                 n_ssm: Optional[int] = None, dropout: float = 0.0, transposed: bool = False,
                 tie_dropout: bool = False, b_clip: Optional[float] = None) -> None:
        super().__init__(d_model, channels=channels, transposed=transposed, dropout=dropout,
                         bidirectional=bidirectional, tie_dropout=tie_dropout)
        d_state = check_int("d_state", d_state, 2, "(even: N/2 complex modes)")
        if d_state % 2:
            raise ValueError(f"d_state must be an even int >= 2 (N/2 complex modes), got {d_state!r}")
        self.d_state = d_state
        self.init = check_choice("init", init, S4D_INITS)
        self.discretization = check_choice("discretization", discretization, ("zoh", "bilinear"))
        dtype = torch.get_default_dtype()
        self.n_ssm = check_n_ssm(n_ssm, d_model)
        Lambda, B, V = diag_init(init, d_state, b_clip=b_clip)
        self.b_clip = b_clip
        H, k = d_model, self.n_ssm
        self.register_ssm_param("log_dt", discretize.init_log_dt((H,), dt_min, dt_max).to(dtype))
        re = (-Lambda.real).clamp(min=_RE_FLOOR)
        self.register_ssm_param("log_A_real", torch.log(re).to(dtype).repeat(k, 1))
        self.register_ssm_param("A_imag", Lambda.imag.to(dtype).repeat(k, 1))
        self.register_ssm_param("B", torch.view_as_real(B).to(dtype).repeat(k, 1, 1).contiguous())
        self.C = torch.nn.Parameter(_init_C(channels * self.n_dir, H, V, d_state, dtype))

    def timestep(self) -> Tensor:
        """The current positive timestep, (H,)."""
        return discretize.dt_from_param(self.log_dt)

    def state_matrix(self) -> Tensor:
        """Lambda, (H, N/2) complex, Re < 0 by construction (the n_ssm copies expanded to H)."""
        Lambda = torch.complex(-torch.exp(self.log_A_real), self.A_imag)
        return repeat_copies(Lambda, self.d_model)

    def input_matrix(self) -> Tensor:
        """B, (H, N/2) complex (the n_ssm copies expanded to H)."""
        return repeat_copies(torch.view_as_complex(self.B), self.d_model)

    def _diag_system(self) -> tuple[Tensor, Tensor, Tensor]:
        dt = self.timestep().unsqueeze(-1)  # (H, 1)
        Lambda = self.state_matrix()
        B = self.input_matrix()
        if self.discretization == "zoh":
            _, Bd = discretize.zoh(dt, Lambda, B, check=False, diagonal=True)
            x = dt * Lambda  # log(Ad) exactly
        else:
            Ad, Bd = discretize.bilinear(dt, Lambda, B, check=False, diagonal=True)
            x = torch.log(Ad)  # |Ad| < 1; any branch gives Ad^l for integer l
        return x, Bd, torch.view_as_complex(self.C)

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, d_state={self.d_state}, init={self.init!r}, "
                f"discretization={self.discretization!r}, channels={self.channels}, n_ssm={self.n_ssm}, "
                f"bidirectional={self.bidirectional}")

