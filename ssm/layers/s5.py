"""S5: one MIMO diagonal state-space system per layer, evaluated with a parallel scan.

Smith, Warrington and Linderman, "Simplified State Space Layers for Sequence Modeling",
arXiv 2208.04933 (Sections 3-4, Appendix B-D); S5-PTD from Yu et al., arXiv 2310.01698.

The layer holds a single continuous-time system of real state size ``P = d_state`` shared by all
``H = d_model`` inputs, stored in its eigenbasis with conjugate symmetry: ``P/2`` complex modes
``Lambda``, ``B~ = V^-1 B`` (P/2, H) and ``C~ = C V`` (H, P/2). With one timestep per mode,
``x_k = Lambda_bar x_{k-1} + B_bar u_k`` and ``y_k = 2 Re(C~ x_k) + D u_k`` (ZOH by default, bilinear
optional); the states of a whole sequence come from :func:`ssm.kernels.scan.scan`.

Initialization (paper Sec. 4.1, App. B): ``Lambda`` and ``V`` from ``ssm.init.diag_init(init, P,
blocks=J)`` (J HiPPO-N blocks for ``init="legs"``; ``init="ptd"`` gives S5-PTD, whose ``V`` is not
unitary, so ``V^-1`` is the true inverse of the full eigenvector matrix ``[V, conj(V)]``); B is
lecun-normal (P, H); C per ``c_init``; D standard normal; ``log dt`` log-uniform in
``[dt_min, dt_max]``, one per mode. Inits without an eigenbasis (``V`` None: inv, lin, real) draw
``B~`` and ``C~`` directly as complex Gaussians of the same variance.

Stability by construction: ``Re(Lambda) = -max(exp(Lambda_log_neg_re), 1e-4)`` is at most ``-1e-4``
for every value of the parameter (the exp keeps the sign; the floor, S5's clip value, keeps it away
from 0 where ``exp`` would underflow), so no optimizer step can make the recurrence unstable.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ssm.discretize import bilinear, diagonal_real, init_log_dt, zoh
from ssm.init.diag import DIAG_INITS, diag_init
from ssm.kernels.scan import scan
from ssm.layers.base import SSMLayer, check_choice, check_int, reverse_within_lengths

__all__ = ["S5", "C_INITS", "to_eigenbasis"]

C_INITS: tuple[str, ...] = ("trunc_normal", "lecun", "complex_normal")
_DISCRETIZATIONS = {"zoh": zoh, "bilinear": bilinear}
RE_FLOOR = 1e-4  # Re(Lambda) <= -RE_FLOOR always (S5 clips at the same value)
_TRUNC_STD = 0.87962566103423978  # std of a standard normal truncated to [-2, 2]


def _lecun(shape: tuple[int, ...], fan_in: int) -> Tensor:
    """Truncated normal (+-2 std) with variance 1/fan_in, float64."""
    t = torch.empty(shape, dtype=torch.float64)
    torch.nn.init.trunc_normal_(t, 0.0, 1.0, -2.0, 2.0)
    return t * (1.0 / (math.sqrt(fan_in) * _TRUNC_STD))


def _complex_gauss(shape: tuple[int, ...], std: float) -> Tensor:
    """Complex normal with E|z|^2 = std^2 (real and imaginary parts each std/sqrt 2), complex128."""
    re_im = torch.randn(shape + (2,), dtype=torch.float64) * (std / math.sqrt(2.0))
    return torch.view_as_complex(re_im)


def to_eigenbasis(V: Tensor, B: Tensor) -> Tensor:
    """``B~ = (V_full^-1 B)`` on the kept modes, with ``V_full = [V, conj(V)]`` (P, P).

    Args:
        V: (P, P/2) complex eigenvector half (unitary or not, e.g. PTD's).
        B: (P, H) real input matrix in the original basis.
    Returns:
        (P/2, H) complex; ``2 Re(V B~) = B`` recovers the input.
    """
    V_full = torch.cat([V, V.conj()], dim=1)
    return torch.linalg.solve(V_full, B.to(V.dtype))[: V.shape[1]]


class _ProjectIn(torch.autograd.Function):
    """``(u (R, H), W (P, H), D (H,)) -> (W u^T (P, R), u * D (R, H))`` with one fused backward.

    Autograd would compute the two gradients of ``u`` separately and add them (an extra pass over
    the largest tensor of the layer); here one ``addmm`` writes ``g_bu^T W + g_uD * D`` directly.
    """

    @staticmethod
    def forward(ctx, u: Tensor, W: Tensor, D: Tensor) -> tuple[Tensor, Tensor]:
        ctx.save_for_backward(u, W, D)
        return W @ u.T, u * D

    @staticmethod
    @once_differentiable
    def backward(ctx, g_bu: Tensor, g_ud: Tensor) -> tuple[Optional[Tensor], ...]:
        u, W, D = ctx.saved_tensors
        grad_u = grad_W = grad_D = None
        if ctx.needs_input_grad[0]:
            grad_u = (g_bu.T @ W).addcmul_(g_ud, D)
        if ctx.needs_input_grad[1]:
            grad_W = g_bu @ u
        if ctx.needs_input_grad[2]:
            grad_D = (g_ud * u).sum(0)
        return grad_u, grad_W, grad_D


class S5(SSMLayer):
    """S5 layer (MIMO diagonal SSM with a parallel scan); S5-PTD with ``init="ptd"``.

    Args:
        d_model: H, input and output features.
        d_state: P, size of the real state (P/2 complex modes stored); even, divisible by 2*blocks.
        blocks: J, number of diagonal init blocks (each of size P/J).
        init: one of ``ssm.init.diag.DIAG_INITS`` ("legs" = HiPPO-N blocks, "ptd" = S5-PTD, ...).
        c_init: "trunc_normal" (complex C, parts truncated-normal with variance 1/P, C~ = C V),
            "lecun" (real C, variance 1/P, C~ = C V) or "complex_normal" (C~ drawn directly,
            E|C~|^2 = 1).
        discretization: "zoh" or "bilinear".
        dt_min, dt_max: range of the log-uniform initial timesteps (one per mode).
        bidirectional: add a backward scan with its own C (outputs summed, paper App. D).
        dropout, tie_dropout, transposed: see :class:`ssm.layers.base.SSMLayer`.
        chunk_size: chunk length of the scan (speed only).

    Online inference (one token at a time, or chunk by chunk; unidirectional layers)::

        layer.eval()
        state = layer.default_state(batch_size)           # (B, P/2) complex zeros
        with torch.no_grad():
            for x_t in stream:                            # x_t: (B, H)
                y_t, state = layer.step(x_t, state)
            y, state = layer(chunk, state=state, return_state=True)   # or a whole chunk at once

    The step set-up (discretized system) is cached under ``no_grad`` and rebuilt whenever a
    parameter changes.
    """

    core_layout = "BLH"

    def __init__(self, d_model: int, d_state: int = 64, *, blocks: int = 1, init: str = "legs",
                 c_init: str = "trunc_normal", discretization: str = "zoh", dt_min: float = 1e-3,
                 dt_max: float = 1e-1, bidirectional: bool = False, dropout: float = 0.0,
                 transposed: bool = False, chunk_size: int = 32, tie_dropout: bool = False) -> None:
        super().__init__(d_model, transposed=transposed, dropout=dropout, bidirectional=bidirectional,
                         tie_dropout=tie_dropout)
        check_choice("init", init, DIAG_INITS)
        check_choice("c_init", c_init, C_INITS)
        check_choice("discretization", discretization, tuple(_DISCRETIZATIONS))
        d_state = check_int("d_state", d_state, 2, "(even, divisible by 2 * blocks)")
        blocks = check_int("blocks", blocks)
        if d_state % (2 * blocks):
            raise ValueError(f"d_state must be even and divisible by 2 * blocks (each of the {blocks} init "
                             f"blocks holds conjugate pairs), got d_state={d_state}, blocks={blocks}")
        chunk_size = check_int("chunk_size", chunk_size)
        self.d_state, self.blocks, self.init = d_state, blocks, init
        self.c_init, self.discretization, self.chunk_size = c_init, discretization, chunk_size
        H, P = d_model, d_state
        Lambda, _, V = diag_init(init, P, blocks=blocks)  # validates P and blocks
        if not bool((Lambda.real <= -RE_FLOOR).all()):
            raise ValueError(f"init {init!r} gave eigenvalues with Re > -{RE_FLOOR}; S5 needs Re(Lambda) < 0")
        n_dir = 2 if bidirectional else 1
        if V is None:
            B_t = _complex_gauss((P // 2, H), 1.0 / math.sqrt(H))
            C_t = _complex_gauss((n_dir, H, P // 2), 1.0 / math.sqrt(P // 2))
            if c_init == "complex_normal":
                C_t = _complex_gauss((n_dir, H, P // 2), 1.0)
        else:
            B_t = to_eigenbasis(V, _lecun((P, H), H))
            if c_init == "trunc_normal":
                C = torch.complex(_lecun((n_dir, H, P), P), _lecun((n_dir, H, P), P))
                C_t = C @ V
            elif c_init == "lecun":
                C_t = _lecun((n_dir, H, P), P).to(torch.complex128) @ V
            else:
                C_t = _complex_gauss((n_dir, H, P // 2), 1.0)
        dtype = torch.get_default_dtype()
        self.register_ssm_param("Lambda_log_neg_re", torch.log(-Lambda.real).to(dtype))
        self.register_ssm_param("Lambda_im", Lambda.imag.to(dtype))
        self.register_ssm_param("B", torch.view_as_real(B_t).to(dtype))  # (P/2, H, 2)
        self.register_ssm_param("log_dt", init_log_dt((P // 2,), dt_min, dt_max, dtype=dtype))
        self.C = torch.nn.Parameter(torch.view_as_real(C_t).to(dtype))  # (n_dir, H, P/2, 2)
        self.D = torch.nn.Parameter(torch.randn(H, dtype=torch.float64).to(dtype))

    # ------------------------------------------------------------------------------- parameters
    @property
    def Lambda(self) -> Tensor:
        """(P/2,) complex continuous-time eigenvalues; ``Re <= -RE_FLOOR`` by construction."""
        return torch.complex(-torch.exp(self.Lambda_log_neg_re).clamp(min=RE_FLOOR), self.Lambda_im)

    @property
    def B_tilde(self) -> Tensor:
        """(P/2, H) complex input matrix in the eigenbasis."""
        return torch.view_as_complex(self.B)

    @property
    def C_tilde(self) -> Tensor:
        """(n_dir, H, P/2) complex output matrices (index 1: the backward scan)."""
        return torch.view_as_complex(self.C)

    def timestep(self) -> Tensor:
        """(P/2,) positive timestep of each stored mode."""
        return torch.exp(self.log_dt)

    def discrete(self) -> tuple[Tensor, Tensor]:
        """``(Lambda_bar (P/2,), B_bar (P/2, H))`` for the current parameters (never cached)."""
        lam_re, lam_im, W_in = self._discrete_real()
        N2 = self.d_state // 2
        return torch.complex(lam_re, lam_im), torch.complex(W_in[:N2], W_in[N2:])

    def _discrete_real(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(Re Lambda_bar, Im Lambda_bar, W_in)`` with ``W_in = [Re B_bar; Im B_bar]`` (P, H).

        Real arithmetic only (:func:`ssm.discretize.diagonal_real`): under ``torch.compile`` inductor
        gave gradients w.r.t. ``log_dt`` and Lambda off by 10% to 3x when ``B_bar`` came from the
        complex chain ``exp(dt Lambda)``, ``(e^z - 1)/Lambda``, ``* B~``, ``.real``/``.imag``."""
        re = -torch.exp(self.Lambda_log_neg_re).clamp(min=RE_FLOOR)
        ar, ai, fr, fi = diagonal_real(self.discretization, self.timestep(), re, self.Lambda_im)
        br, bi = self.B[..., 0], self.B[..., 1]  # B~ (P/2, H): B_bar = f B~ row by row
        fr, fi = fr.unsqueeze(-1), fi.unsqueeze(-1)
        return ar, ai, torch.cat([fr * br - fi * bi, fr * bi + fi * br], dim=0)

    def _out_weight(self) -> Tensor:
        """(n_dir * P, H) real W with ``y = [Re x; Im x]^T W = 2 Re(C~ x)`` per direction."""
        C = self.C_tilde.transpose(-1, -2)  # (n_dir, P/2, H)
        return torch.cat([2 * C.real, -2 * C.imag], dim=1).reshape(-1, self.d_model)

    # --------------------------------------------------------------------------------- hooks
    def _state_shape(self, batch_size: int) -> tuple[int, ...]:
        return (batch_size, self.d_state // 2)

    def _forward(self, u: Tensor, state: Optional[Tensor], lengths: Optional[Tensor],
                 return_state: bool) -> tuple[Tensor, Optional[Tensor]]:
        Bsz, L, H = u.shape
        N2 = self.d_state // 2
        if Bsz == 0:  # an empty batch (view_as_real's backward refuses the strides of empty gradients)
            empty_state = u.new_zeros(self._state_shape(0), dtype=self._state_dtype(u.dtype))
            return u * self.D, (empty_state if state is None else state) if return_state else None
        lam_re, lam_im, W_in = self._discrete_real()  # W_in = [Re B_bar; Im B_bar] (P, H)
        Lambda_bar = torch.complex(lam_re, lam_im)
        # B_bar u for every step as one real matmul, in the scan's layout (N2, B, L)
        bu, uD = _ProjectIn.apply(u.reshape(Bsz * L, H), W_in, self.D)  # (P, B L), (B L, H)
        bu = bu.view(2, N2, Bsz, L)
        bu = torch.complex(*bu.unbind(0))  # (N2, B, L)
        if self.bidirectional:
            # the backward scan reads each sequence from its own last valid token
            rev = reverse_within_lengths(bu.transpose(0, 1), lengths, dim=2).transpose(0, 1)
            bu = torch.cat([bu, rev], dim=1)  # (N2, 2B, L)
        x0 = None if state is None else state.transpose(0, 1)
        x = scan(Lambda_bar.unsqueeze(-1), bu, x0, chunk_size=self.chunk_size)  # (N2, n_dir B, L)
        xr = torch.view_as_real(x)  # (N2, n_dir B, L, 2)
        if self.bidirectional:
            fwd, bwd = xr.view(N2, 2, Bsz, L, 2).unbind(1)
            bwd = reverse_within_lengths(bwd.transpose(0, 1), lengths, dim=2).transpose(0, 1)
            X = torch.stack([fwd, bwd], dim=0).permute(0, 4, 1, 2, 3)  # (dir, re/im, N2, B, L)
        else:
            X = xr.permute(3, 0, 1, 2)  # (re/im, N2, B, L)
        X = X.reshape(X.shape[:-2].numel(), Bsz * L)  # (n_dir P, B L), rows ordered as _out_weight's
        y = torch.addmm(uD, X.T, self._out_weight()).view(Bsz, L, H)  # 2 Re(C~ x) + D u
        next_state = None
        if return_state:
            next_state = self._final_state(x[:, :Bsz], lengths, state)
        return y, next_state

    @staticmethod
    def _final_state(x: Tensor, lengths: Optional[Tensor], state: Optional[Tensor]) -> Tensor:
        """(B, P/2) state after each sequence's last valid token (the input state if length 0)."""
        if lengths is None:
            return x[..., -1].transpose(0, 1).contiguous()
        idx = (lengths - 1).clamp(min=0).to(x.device)
        last = x[:, torch.arange(x.shape[1], device=x.device), idx].transpose(0, 1)  # (B, N2)
        start = torch.zeros_like(last) if state is None else state
        return torch.where((lengths > 0).unsqueeze(-1), last, start).contiguous()

    def _step_setup(self) -> tuple[Tensor, Tensor, Tensor]:
        """(Lambda_bar, W_in (P, H), W_out (P, H)) for step mode, through :meth:`SSMLayer.cached`."""
        return self.cached("step", 0, self._build_step)

    def _build_step(self) -> tuple[Tensor, Tensor, Tensor]:
        lam_re, lam_im, W_in = self._discrete_real()
        return torch.complex(lam_re, lam_im), W_in, self._out_weight()[: self.d_state]

    def _step(self, u_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        N2 = self.d_state // 2
        Lambda_bar, W_in, W_out = self._step_setup()
        bu = u_t @ W_in.T  # (B, P): [Re, Im] of B_bar u_t
        state = Lambda_bar * state + torch.complex(bu[:, :N2], bu[:, N2:])
        y = torch.cat([state.real, state.imag], dim=-1) @ W_out + self.D * u_t
        return y, state

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, d_state={self.d_state}, blocks={self.blocks}, init={self.init!r}, "
                f"c_init={self.c_init!r}, discretization={self.discretization!r}, "
                f"bidirectional={self.bidirectional}")
