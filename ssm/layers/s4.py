"""S4: the DPLR state-space layer with a Cauchy kernel (Gu, Goel & Re, arXiv 2111.00396).

State matrix ``A = Lambda - P P^*`` in the eigenbasis of the normal part of a HiPPO matrix
(:func:`ssm.init.nplr`), N/2 stored conjugate-symmetric modes, bilinear discretization (Eq. 3).
The length-L kernel ``K[l] = C Ad^l Bd`` comes from its truncated generating function at the roots
of unity ``omega_k = exp(-2 pi i k / L)`` (Sec. 3.3, Lemma C.3):

    sum_{l<L} K[l] omega^l = C~ (I - omega Ad)^{-1} Bd = 2/(1+omega) * C~ (z - A)^{-1} B,
    z = (2/dt) (1 - omega)/(1 + omega),   C~ = C (I - Ad^L),

with ``(z - A)^{-1}`` expanded by the Woodbury identity into four Cauchy sums over the same
poles and points, evaluated together by :func:`ssm.kernels.cauchy` (on the CPU its torch backend's
pairs path: each conjugate pair is one real-coefficient fraction, so the (H, N/2, L/2) reciprocal grid
is formed once for all sums; on a GPU the compiled kernels). ``C`` (the parameter) is the true output vector, and ``C~`` is built for
the requested L on every call (``Ad^L`` by repeated squaring of the dense bilinear ``Ad``), so
``conv_kernel(L)`` is exactly the length-L kernel for any L and the state_dict does not depend on L.
At ``omega = -1`` (even L) z is infinite; there the singularity-free form
``2/(1+omega) (z - Lambda)^{-1} = 2 dt / (2 (1 - omega) - dt Lambda (1 + omega)) = dt/2`` gives
``K_hat(-1) = dt Re(sum_n C~_n B_n)`` (the Woodbury term vanishes there). At ``omega = 1`` (z = 0)
``K_hat(1) = sum_l K[l] = C S_L Bd`` with ``S_L = sum_{l<L} Ad^l``, formed with ``Ad^L - I`` in
difference form (:func:`_power_and_sum`), which keeps ``C~`` accurate as dt -> 0.

Numerics: the Woodbury combination cancels near a resonance (a point z within ``|Re Lambda_n|`` of
a pole, as for LegT/FouT modes at ``Re = -1e-4``) by up to ``|P_n|^2 / |Re Lambda_n|``, so the
generating function is evaluated in float64 for every parameter dtype (:meth:`S4._woodbury_khat`);
in float32 it had no correct digit at an exact resonance.

Recurrent mode works in real coordinates ``[Re x; Im x]`` of the stored half (N real numbers, a
well-conditioned basis), where ``A_r = blockdiag(Lambda) - 2 sum_r p_r p_r^T`` with
``p_r = [Re P_r; Im P_r]``; ``Ad, Bd`` are the bilinear discretization of ``(A_r, B_r)``, with the
inverse of ``I - dt A_r / 2`` from the Woodbury identity (equal to ``ssm.discretize.bilinear``).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from .. import discretize, kernels
from ..init import FORMS, nplr
from .base import check_choice, check_int, check_n_ssm, repeat_copies, reverse_within_lengths
from .fftconv import ConvSSMLayer
from .s4d import _RE_FLOOR

__all__ = ["S4", "S4_INITS"]

S4_INITS = ("legs", "legt", "lagt", "fout")


def _rows_krylov(c: Tensor, A: Tensor, T: int) -> Tensor:
    """Rows c A^i for i < T: c (..., H, N), A (H, N, N) -> (..., H, T, N), by doubling."""
    R, P = c.unsqueeze(-2), A
    while R.shape[-2] < T:
        R = torch.cat([R, torch.einsum("...hin,hnm->...him", R, P)], dim=-2)
        P = P @ P
    return R[..., :T, :]


def _cmul_real(c: Tensor, x: Tensor) -> Tensor:
    """Complex ``c`` (..., M) times ``x`` (..., 2M) given in real coordinates [Re; Im]."""
    M = c.shape[-1]
    xr, xi = x[..., :M], x[..., M:]
    return torch.cat([c.real * xr - c.imag * xi, c.imag * xr + c.real * xi], -1)


def _cols_krylov(b: Tensor, A: Tensor, T: int) -> Tensor:
    """Columns A^i b for i < T: b (H, N), A (H, N, N) -> (H, T, N), by doubling."""
    K, P = b.unsqueeze(-2), A
    while K.shape[-2] < T:
        K = torch.cat([K, torch.einsum("hnm,him->hin", P, K)], dim=-2)
        P = P @ P
    return K[..., :T, :]


def _cauchy_sums(v: Tensor, s: Tensor, w: Tensor) -> Tensor:
    """S4's Cauchy sums at ``z = i s`` (conjugate pairs included): (..., H, M) -> (..., H, F).

    Through :func:`ssm.kernels.cauchy` with ``backend="auto"``: poles shared by all the sums at
    imaginary points, so on the CPU the torch backend's pairs path (:func:`ssm.kernels.cauchy_pairs`),
    on a GPU the compiled CUDA kernels (or KeOps, or torch)."""
    return kernels.cauchy(v, torch.complex(torch.zeros_like(s), s), w, conj=True)


def _power_and_sum(E: Tensor, c: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """``(Ad^n - I, c sum_{l<n} Ad^l)`` for ``Ad = I + E``: E (H, N, N), c (..., H, N), n >= 1.

    Left-to-right binary powering in difference form, with ``X_a = Ad^a - I`` and ``r_a = c S_a``
    (``S_a = sum_{l<a} Ad^l``): ``a -> 2a`` is ``X <- 2 X + X X``, ``r <- 2 r + r X``, and ``a -> a + 1``
    is ``X <- X + E + X E``, ``r <- c + r + r E``: the matrix products of ``matrix_power`` plus
    row-vector products. For a small timestep ``Ad`` is within O(dt) of I: forming ``Ad^n`` and then
    subtracting I would cancel to a relative accuracy of about eps / (n dt |A|) (every digit in
    float32 at dt ~ 1e-7), and ``S_n`` needs no inverse of ``E`` (which is O(dt), or singular)."""
    X, r = E, c
    for bit in bin(n)[3:]:
        r = 2 * r + torch.einsum("...hn,hnm->...hm", r, X)
        X = 2 * X + X @ X
        if bit == "1":
            r = c + r + torch.einsum("...hn,hnm->...hm", r, E)
            X = X + E + X @ E
    return X, r


def _apply_power(A: Tensor, x: Tensor, n: Tensor) -> Tensor:
    """A^{n_b} x_b for a per-sequence exponent: A (H, N, N), x (B, H, N), n (B,) -> (B, H, N)."""
    out, P, bit = x, A, 0
    n_max = int(n.max()) if n.numel() else 0  # (an empty batch has no exponents)
    while (1 << bit) <= n_max:
        sel = ((n >> bit) & 1).bool().view(-1, 1, 1)
        out = torch.where(sel, torch.einsum("hnm,bhm->bhn", P, out), out)
        P, bit = P @ P, bit + 1
    return out


class S4(ConvSSMLayer):
    """S4 layer (diagonal plus low rank state matrix, Cauchy kernel, bilinear discretization).

    Args:
        d_model: H channels.
        d_state: N real state size (N/2 complex modes stored). Must be even.
        init: HiPPO measure "legs" | "legt" | "lagt" | "fout" (:func:`ssm.init.nplr`; rank 2 for legt).
        discretization: "bilinear" (the only one S4's generating-function kernel is exact for).
        n_ssm: number k of distinct (Lambda, P, B) copies shared by the H channels (channel h uses copy
            h % k; k must divide H); None: H, every channel its own. dt, C and D stay per channel.
        dt_min, dt_max, channels, bidirectional, dropout, tie_dropout, transposed: as for :class:`ssm.S4D`.
        b_clip: clamp Im(B~) at init to [-b_clip, b_clip], as S4's released code does (2.0 there);
            None (default): the exact B~ (:func:`ssm.init.nplr`).
        hippo_form: "paper" (default) or "released": the HiPPO matrices of S4's released code
            (``ssm.init.nplr(..., form=...)``: LegT halved, LagT + I/2, FouT at frequencies pi j with
            a dead state; LegS the same; docs/layers.md).

    Parameters: ``log_dt`` (H,), ``log_A_real``/``A_imag`` (k, N/2) with
    ``Lambda = -exp(log_A_real) + i A_imag`` (Re < 0 always; init modes with Re(Lambda) >= -1e-4, as
    in LegT/FouT, start at -1e-4), ``P`` (rank, k, N/2, 2), ``B`` (k, N/2, 2), ``C``
    (channels * n_dir, H, N/2, 2) (complex as real views), ``D`` (channels, H); k = n_ssm (H by
    default). :meth:`state_matrix` and :meth:`input_matrix` give Lambda, P and B expanded to H.
    The recurrent state is real, (B, H, N).
    """

    def __init__(self, d_model: int, d_state: int = 64, *, init: str = "legs",
                 discretization: str = "bilinear", dt_min: float = 1e-3, dt_max: float = 1e-1,
                 channels: int = 1, bidirectional: bool = False, n_ssm: Optional[int] = None,
                 dropout: float = 0.0, transposed: bool = False, tie_dropout: bool = False,
                 b_clip: Optional[float] = None, hippo_form: str = "paper") -> None:
        super().__init__(d_model, channels=channels, transposed=transposed, dropout=dropout,
                         bidirectional=bidirectional, tie_dropout=tie_dropout)
        d_state = check_int("d_state", d_state, 2, "(even: N/2 complex modes)")
        if d_state % 2:
            raise ValueError(f"d_state must be an even int >= 2 (N/2 complex modes), got {d_state!r}")
        self.init = check_choice("init", init, S4_INITS)
        self.discretization = check_choice("discretization", discretization, ("bilinear",))
        self.d_state = d_state
        self.n_ssm = check_n_ssm(n_ssm, d_model)
        dtype = torch.get_default_dtype()
        self.hippo_form = check_choice("hippo_form", hippo_form, FORMS)
        Lambda, P, B, _ = nplr(init, d_state, b_clip=b_clip, form=hippo_form)
        self.b_clip = b_clip
        H, k = d_model, self.n_ssm
        self.register_ssm_param("log_dt", discretize.init_log_dt((H,), dt_min, dt_max).to(dtype))
        re = (-Lambda.real).clamp(min=_RE_FLOOR)
        self.register_ssm_param("log_A_real", torch.log(re).to(dtype).repeat(k, 1))
        self.register_ssm_param("A_imag", Lambda.imag.to(dtype).repeat(k, 1))
        self.register_ssm_param("P", torch.view_as_real(P).to(dtype).unsqueeze(1).repeat(1, k, 1, 1))
        self.register_ssm_param("B", torch.view_as_real(B).to(dtype).repeat(k, 1, 1).contiguous())
        C = torch.randn(channels * self.n_dir, H, d_state // 2, dtype=torch.complex128)
        self.C = torch.nn.Parameter(torch.view_as_real(C).to(dtype))

    def timestep(self) -> Tensor:
        """The current positive timestep, (H,)."""
        return discretize.dt_from_param(self.log_dt)

    def state_matrix(self) -> tuple[Tensor, Tensor]:
        """(Lambda (H, N/2), P (rank, H, N/2)), complex: A = diag(Lambda) - P P^* on the full basis.

        The n_ssm shared copies are expanded to the H channels (channel h uses copy h % n_ssm)."""
        Lambda = torch.complex(-torch.exp(self.log_A_real), self.A_imag)
        P = repeat_copies(torch.view_as_complex(self.P), self.d_model, dim=1)
        return repeat_copies(Lambda, self.d_model), P

    def input_matrix(self) -> Tensor:
        """B, (H, N/2) complex (the n_ssm copies expanded to H)."""
        return repeat_copies(torch.view_as_complex(self.B), self.d_model)

    # ---------------------------------------------------------------------------- real coordinates
    def _dense(self) -> tuple[Tensor, Tensor, Tensor]:
        """(Ad (H, N, N), Bd (H, N), C_r (channels * n_dir, H, N)) in coordinates [Re x; Im x].

        Bilinear ``Ad = (I - dt A/2)^{-1} (I + dt A/2) = 2 M^{-1} - I``, ``Bd = dt M^{-1} B`` with
        ``M = I - dt A/2 = D + dt U U^T``, ``D`` the diagonal part (complex ``1 - dt Lambda/2``) and
        ``U = p^T``; ``M^{-1}`` by the Woodbury identity (an r x r capacitance per channel), which
        equals ``ssm.discretize.bilinear`` on the dense A (tested) without a batched LU solve.
        """
        E, Bd, C_r = self._dense_delta()
        return E + torch.eye(E.shape[-1], dtype=E.dtype, device=E.device), Bd, C_r

    def _dense_delta(self) -> tuple[Tensor, Tensor, Tensor]:
        """(E = Ad - I, Bd, C_r) as :meth:`_dense`, with E formed without cancellation.

        ``E = 2 (M^{-1} - I) = 2 (D^{-1} - I) - 2 D^{-1} U cinv U^T D^{-1}`` where
        ``D^{-1} - I = (dt Lambda/2) / (1 - dt Lambda/2)`` entrywise: both terms are O(dt) and keep full
        relative precision as dt -> 0, where ``2 M^{-1} - I - I`` would not."""
        q, DU, cinv, UtD = self._woodbury()
        Lam, _ = self.state_matrix()
        qm1 = q * ((self.timestep() / 2).unsqueeze(-1) * Lam)  # D^{-1} - I
        re, im = torch.diag_embed(qm1.real), torch.diag_embed(qm1.imag)
        low_rank = torch.einsum("ihn,hij,jhm->hnm", DU, cinv, UtD)
        Em = torch.cat([torch.cat([re, -im], -1), torch.cat([im, re], -1)], -2) - low_rank  # M^{-1} - I
        dtB = self._dt_B()
        Bd = torch.einsum("hnm,hm->hn", Em, dtB) + dtB  # M^{-1} dt B
        C = torch.view_as_complex(self.C)
        return 2 * Em, Bd, 2 * torch.cat([C.real, -C.imag], -1)  # y = 2 Re(C x) = C_r . x_r

    def _dt_B(self) -> Tensor:
        """dt B in real coordinates [Re; Im], (H, N)."""
        B = self.input_matrix()
        return self.timestep().unsqueeze(-1) * torch.cat([B.real, B.imag], -1)

    def _woodbury(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``M^{-1} = D^{-1} - D^{-1} U cinv U^T D^{-1}`` for ``M = I - dt A/2 = D + dt U U^T``:
        (q (H, M) complex with D^{-1} x = q x, DU = D^{-1} U and UtD = (U^T D^{-1})^T (rank, H, N) real,
        cinv (H, r, r) the inverse capacitance ``(U^T D^{-1} U + I/dt)^{-1}``)."""
        Lam, P = self.state_matrix()
        dt = self.timestep()
        q = 1 / (1 - (dt / 2).unsqueeze(-1) * Lam)  # D^{-1} as complex multiplication, (H, M)
        p = torch.cat([P.real, P.imag], -1)  # (rank, H, N): P's term is 2 Re(P^H x) = 2 p . x_r
        DU, UtD = _cmul_real(q, p), _cmul_real(q.conj(), p)  # D^{-1} U and (U^T D^{-1})^T: (rank, H, N)
        rank = p.shape[0]
        cap = torch.einsum("ihn,jhn->hij", p, DU)  # U^T D^{-1} U: (H, r, r)
        cap = cap + torch.diag_embed((1 / dt).unsqueeze(-1).expand(-1, rank))
        if rank == 1:
            cinv = 1 / cap
        elif rank == 2:
            a, b, c, d = cap[:, 0, 0], cap[:, 0, 1], cap[:, 1, 0], cap[:, 1, 1]
            cinv = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2)
            cinv = cinv / (a * d - b * c).view(-1, 1, 1)
        else:
            cinv = torch.linalg.inv(cap)
        return q, DU, cinv, UtD

    def _state_shape(self, batch_size: int) -> tuple[int, ...]:
        return (batch_size, self.d_model, self.d_state)

    def _state_dtype(self, dtype: torch.dtype) -> torch.dtype:
        return dtype

    # ------------------------------------------------------------------------------------- kernel
    def _kernels(self, L: int) -> tuple[Tensor, Optional[Tensor]]:
        B, M = self.input_matrix(), self.d_state // 2
        E, Bd, C_r = self._dense_delta()
        # C~ = C (I - Ad^L) for exactly this L, then back to the complex half: y = 2 Re(C~ x).
        X, CS = _power_and_sum(E, C_r, L)  # Ad^L - I and C sum_{l<L} Ad^l, without cancellation
        Ct_r = -torch.einsum("chn,hnm->chm", C_r, X)
        Ct = torch.complex(Ct_r[..., :M], -Ct_r[..., M:]) / 2
        dt = self.timestep().unsqueeze(-1)  # (H, 1)
        cdtype = Ct.dtype
        # omega = 1 (k = 0): K_hat(1) = sum_l K[l] = C S_L Bd directly. The Woodbury form at z = 0
        # amplifies rounding by |(z - Lambda)^{-1}| / |(z - A)^{-1}|, 1e4 for FouT's mode at -1e-4.
        parts = [(CS * Bd).sum(-1).to(cdtype).unsqueeze(-1)]  # (c, H, 1)
        n_pts = L // 2 + 1
        finite = n_pts - 1 if L % 2 == 0 else n_pts  # omega = -1 (k = L/2) handled in closed form
        if finite > 1:
            k = torch.arange(1, finite, dtype=torch.float64, device=Ct.device)
            g = torch.tan(math.pi * k / L)  # (1-w)/(1+w) = i g
            omega = torch.polar(torch.ones_like(k), -2 * math.pi * k / L)
            parts.append((self._woodbury_khat(Ct, g, dt) * (2 / (1 + omega))).to(cdtype))
        if finite < n_pts:
            k_nyq = dt.squeeze(-1) * (Ct * B).sum(-1).real  # (c, H)
            parts.append(k_nyq.to(cdtype).unsqueeze(-1))
        return self._split_dirs(torch.fft.irfft(torch.cat(parts, -1), n=L))

    def _woodbury_khat(self, Ct: Tensor, g: Tensor, dt: Tensor) -> Tensor:
        """``C~ (z - A)^{-1} B`` at ``z = (2/dt) i g``, (c, H, F) complex128, by the Woodbury identity
        over four Cauchy sums; ``1/(z - Lambda) = (dt/2) / (i g - dt Lambda / 2)``: one grid for all
        channels. g: (F,) float64.

        Evaluated in float64 whatever the parameters' dtype. Near a resonance, a point ``z`` within
        ``|Re Lambda_n|`` of a pole (modes at Re = -1e-4: LegT, FouT, or any trained layer), the
        Cauchy sums are dominated by ``1/(z - Lambda_n)`` while ``(z - A)^{-1}`` is not: the Woodbury
        combination cancels by up to ``|P_n|^2 / |Re Lambda_n|``, which in float32 left no correct
        digit (LegT, N = 64). The inputs may carry float32 rounding: every sum sees the same poles
        and points, so that only moves A and z slightly, and the resolvent of A is well-conditioned."""
        cdtype = torch.complex128
        Lam, P = self.state_matrix()
        Lam, P, B = Lam.to(cdtype), P.to(cdtype), self.input_matrix().to(cdtype)
        Ct, dt = Ct.to(cdtype), dt.to(torch.float64)
        left = torch.cat([Ct, P.conj()], 0)  # (c + r, H, M)
        right = torch.cat([B.unsqueeze(0), P], 0)  # (1 + r, H, M)
        v = left.unsqueeze(1) * right.unsqueeze(0) * (dt / 2)  # (c + r, 1 + r, H, M)
        r = _cauchy_sums(v, g, dt * Lam / 2)  # (c + r, 1 + r, H, F)
        c = Ct.shape[0]
        # split, not slicing: its backward concatenates instead of zero-filling r-sized gradients
        top, bottom = r.split([c, r.shape[0] - c])
        k00, k01 = top.split([1, top.shape[1] - 1], 1)
        k10, k11 = bottom.split([1, bottom.shape[1] - 1], 1)
        k00, k10 = k00.squeeze(1), k10.squeeze(1)
        rank = P.shape[0]
        if rank == 1:
            return k00 - k01[:, 0] * k10[0] / (1 + k11[0, 0])
        if rank == 2:  # (I + k11)^{-1} k10 by the explicit 2 x 2 inverse
            a, b, c_, d = 1 + k11[0, 0], k11[0, 1], k11[1, 0], 1 + k11[1, 1]
            det = a * d - b * c_
            sol0, sol1 = (d * k10[0] - b * k10[1]) / det, (a * k10[1] - c_ * k10[0]) / det
            return k00 - k01[:, 0] * sol0 - k01[:, 1] * sol1
        # (I + k11)^{-1} k10 for each (h, frequency)
        eye = torch.eye(rank, dtype=cdtype, device=Ct.device)
        sol = torch.linalg.solve(eye + k11.permute(2, 3, 0, 1), k10.permute(1, 2, 0).unsqueeze(-1))
        return k00 - torch.einsum("crhf,hfr->chf", k01, sol.squeeze(-1))

    # ------------------------------------------------------------------------- state and step
    def _step_setup(self) -> tuple[Tensor, Tensor, Tensor]:
        Ad, Bd, C_r = self._dense()
        return Ad, Bd, C_r[: self.channels]

    # Above this state size the CPU step uses the DPLR form (O(H N rank) per token) instead of the
    # dense real A_bar (O(H N^2)): measured on a 2-core CPU at B=8, H=256, the two tie at N=64 and the
    # DPLR step is 9x faster at N=256 (0.74 vs 6.9 ms) and 2x slower at N=16 (more, smaller ops).
    # On a GPU a step is bound by kernel launches, so the dense product (fewer kernels) is kept.
    DPLR_STEP_MIN_STATE = 65

    def _step_core(self, u_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        if state.device.type == "cuda" or self.d_state < self.DPLR_STEP_MIN_STATE:
            Ad, Bd, C_r = self.cached("step", 0, self._step_setup)
            state = torch.einsum("hnm,bhm->bhn", Ad, state) + Bd * u_t.unsqueeze(-1)
        else:  # DPLR step: x' = M^{-1} (2 x + dt B u) - x, with M^{-1} by the Woodbury identity
            q_same, q_swap, DU, cinv, UtD, dtB, C_r = self.cached("step_dplr", 0, self._dplr_step_setup)
            M = self.d_state // 2
            b = torch.addcmul(2 * state, dtB, u_t.unsqueeze(-1))  # (B, H, N)
            t = torch.einsum("hij,jbh->ibh", cinv, (UtD.unsqueeze(1) * b).sum(-1))  # (rank, B, H)
            Dinv_b = torch.addcmul(b * q_same, torch.cat([b[..., M:], b[..., :M]], -1), q_swap)
            state = Dinv_b - (DU.unsqueeze(1) * t.unsqueeze(-1)).sum(0) - state
        return (C_r.unsqueeze(0) * state.unsqueeze(1)).sum(-1), state

    def _dplr_step_setup(self) -> tuple[Tensor, ...]:
        """D^{-1} as two real vectors (x -> q_same x + q_swap [Im x; Re x]), the Woodbury factors, dt B, C_r."""
        q, DU, cinv, UtD = self._woodbury()
        q_same = torch.cat([q.real, q.real], -1)
        q_swap = torch.cat([-q.imag, q.imag], -1)
        C = torch.view_as_complex(self.C)[: self.channels]
        return q_same, q_swap, DU, cinv, UtD, self._dt_B(), 2 * torch.cat([C.real, -C.imag], -1)

    def _state_output(self, state: Tensor, L: int) -> Tensor:
        """Contribution of the initial state: y[k] += C_r Ad^{k+1} x0, in chunks of T = ceil(sqrt(L))."""
        Ad, _, C_r = self._step_setup()
        T = math.isqrt(L - 1) + 1
        Q = -(-L // T)
        R = _rows_krylov(C_r, Ad, T)  # (c, H, T, N): C_r Ad^i
        AdT = torch.linalg.matrix_power(Ad, T)
        s = [torch.einsum("hnm,bhm->bhn", Ad, state)]  # Ad^{qT + 1} x0
        for _ in range(Q - 1):
            s.append(torch.einsum("hnm,bhm->bhn", AdT, s[-1]))
        y = torch.einsum("chin,bhqn->bchqi", R, torch.stack(s, 2))
        return y.reshape(*y.shape[:3], Q * T)[..., :L]

    def _final_state(self, u: Tensor, state: Optional[Tensor], lengths: Optional[Tensor]) -> Tensor:
        """x_len = Ad^len x0 + sum_j Ad^j Bd u_rev[j] with u reversed within each length."""
        Ad, Bd, _ = self._step_setup()
        Bsz, H, L = u.shape
        T = math.isqrt(L - 1) + 1
        Q = -(-L // T)
        u_rev = reverse_within_lengths(u, lengths, -1)
        u_rev = torch.nn.functional.pad(u_rev, (0, Q * T - L)).view(Bsz, H, Q, T)
        z = torch.einsum("hin,bhqi->bhqn", _cols_krylov(Bd, Ad, T), u_rev)  # chunk q, scaled by Ad^{qT}
        AdT = torch.linalg.matrix_power(Ad, T)
        acc = z[:, :, Q - 1]
        for q in range(Q - 2, -1, -1):
            acc = torch.einsum("hnm,bhm->bhn", AdT, acc) + z[:, :, q]
        if state is not None:
            n = torch.full((Bsz,), L, device=u.device) if lengths is None else lengths
            acc = acc + _apply_power(Ad, state, n.long())
        return acc

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, d_state={self.d_state}, init={self.init!r}, "
                f"rank={self.P.shape[0]}, channels={self.channels}, n_ssm={self.n_ssm}, "
                f"bidirectional={self.bidirectional}")
