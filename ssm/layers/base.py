"""Shared machinery of the SSM layers: validation, layouts, padding masks, state checks and tags.

Every layer (S4 arXiv 2111.00396, DSS 2203.14343, S4D 2206.11893, S5 2208.04933) derives from
:class:`SSMLayer`, which implements the public surface once::

    forward(x, state=None, return_state=False, lengths=None)   # x (B, L, H), or (B, H, L) if transposed
    default_state(batch_size, device=None, dtype=None)
    step(x_t, state) -> (y_t, state)                            # x_t (B, H)

and leaves the mathematics to a few hooks that subclasses implement (see :class:`SSMLayer`).
SSM parameters (Lambda/A, B, P, dt) are registered through :meth:`SSMLayer.register_ssm_param`
(or tagged with :func:`tag_ssm_param`) so that ``ssm.param_groups`` gives them their own learning rate
and no weight decay.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .checks import check_bool, check_choice, check_int, check_n_ssm, check_probability

__all__ = [
    "SSMLayer",
    "TiedDropout",
    "make_dropout",
    "tag_ssm_param",
    "ssm_param_group",
    "lengths_to_mask",
    "reverse_within_lengths",
    "check_choice",
    "check_bool",
    "check_int",
    "check_probability",
    "check_n_ssm",
    "repeat_copies",
]

_TAG_ATTR = "_ssm_group"


def tag_ssm_param(param: nn.Parameter, group: str = "ssm") -> nn.Parameter:
    """Mark ``param`` as an SSM parameter of optimizer group ``group`` (own lr, no weight decay).

    The tag is an attribute on the tensor; ``copy.deepcopy`` drops tensor attributes, so layers also
    record their SSM parameters by name (:meth:`SSMLayer.register_ssm_param`), which survives copies,
    ``.to()`` and ``load_state_dict``. ``ssm.param_groups`` reads both.
    """
    if not isinstance(param, torch.Tensor):
        raise TypeError(f"tag_ssm_param: param must be a tensor/Parameter, got {type(param).__name__}")
    setattr(param, _TAG_ATTR, group)
    return param


def ssm_param_group(param: Tensor) -> Optional[str]:
    """The group a tensor was tagged with by :func:`tag_ssm_param`, or None."""
    return getattr(param, _TAG_ATTR, None)


def repeat_copies(t: Tensor, d_model: int, dim: int = 0) -> Tensor:
    """Expand k shared copies along ``dim`` to ``d_model`` channels: channel h gets copy ``h % k``.

    The copies are tiled (``t.repeat``), so the gradient of each copy is the sum of the gradients of
    the channels that use it. With ``k == d_model`` ``t`` itself is returned.
    """
    k = t.shape[dim]
    if k == d_model:
        return t
    reps = [1] * t.dim()
    reps[dim] = d_model // k
    return t.repeat(*reps)


class TiedDropout(nn.Module):
    """Dropout whose mask is shared along the sequence axis: one mask per (batch, channel).

    A sequence input ``x`` (3 dims, the length at ``seq_dim``: 1 for (B, L, H), 2 for (B, H, L)) is
    multiplied by a mask of shape (B, 1, H) or (B, H, 1) whose entries are 0 with probability ``p``
    and ``1/(1-p)`` otherwise, drawn on every call: each channel of each sequence is kept or dropped
    as a whole (S4's ``DropoutNd(tie=True)``). A one-token input (B, H) (step mode) gets one entry
    per (batch, channel), drawn on every call, so successive steps do not share a mask: dropout in
    step mode is only meaningful in training. The identity in eval mode.
    """

    def __init__(self, p: float, seq_dim: int) -> None:
        super().__init__()
        p = check_probability("dropout", p)
        if seq_dim not in (1, 2):
            raise ValueError(f"seq_dim must be 1 ((B, L, H) inputs) or 2 ((B, H, L) inputs), got {seq_dim!r}")
        self.p, self.seq_dim = float(p), seq_dim

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        shape = list(x.shape)
        if x.dim() == 3:
            shape[self.seq_dim] = 1
        elif x.dim() != 2:
            raise ValueError(f"TiedDropout expects (B, L, H) / (B, H, L) or one-token (B, H) inputs, "
                             f"got shape {tuple(x.shape)}")
        mask = nn.functional.dropout(x.new_ones(shape), self.p, training=True)  # 0 or 1/(1-p)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}, seq_dim={self.seq_dim}"


def make_dropout(p: float, tie: bool, seq_dim: int) -> nn.Module:
    """Identity for p = 0, else :class:`TiedDropout` if ``tie`` (length axis ``seq_dim``) or nn.Dropout."""
    p = check_probability("dropout", p)
    if p == 0:
        return nn.Identity()
    return TiedDropout(p, seq_dim) if tie else nn.Dropout(p)


def lengths_to_mask(lengths: Tensor, L: int) -> Tensor:
    """(B,) integer lengths -> (B, L) bool mask, True on valid positions ``t < lengths[b]``."""
    return torch.arange(L, device=lengths.device) < lengths.unsqueeze(-1)


def reverse_within_lengths(x: Tensor, lengths: Optional[Tensor], dim: int) -> Tensor:
    """Reverse each sequence of ``x`` along ``dim`` within its own length; padded positions stay put.

    x: (B, ...) with the time axis at ``dim``; lengths: (B,) or None (plain flip). Position t < len
    receives x[len - 1 - t]; positions t >= len are unchanged. Applying it twice is the identity.
    """
    if lengths is None:
        return x.flip(dim)
    dim = dim % x.dim()
    L = x.shape[dim]
    t = torch.arange(L, device=x.device)
    idx = torch.where(t < lengths.unsqueeze(-1), lengths.unsqueeze(-1) - 1 - t, t)  # (B, L)
    shape = [1] * x.dim()
    shape[0], shape[dim] = x.shape[0], L
    return torch.gather(x, dim, idx.view(shape).expand_as(x))


class SSMLayer(nn.Module):
    """Base class of the SSM layers: validates inputs, handles layout, padding and state plumbing.

    Args:
        d_model: H, the number of input/output features.
        transposed: inputs/outputs are (B, H, L) instead of (B, L, H).
        dropout: dropout probability on the layer output (training only).
        tie_dropout: one dropout mask per (batch, channel), shared along the sequence
            (:class:`TiedDropout`); in step mode one mask per (batch, channel) per call.
        bidirectional: the layer also reads the sequence backwards (no recurrent mode then).

    Hooks a subclass implements:

    - ``_forward(u, state, lengths, return_state) -> (y, next_state or None)``. ``u`` is the validated
      input in the layout named by the class attribute ``core_layout`` ("BHL": (B, H, L), the default,
      convenient for FFT convolutions; "BLH": (B, L, H), convenient for scans), converted to the
      layer's compute dtype (float32 under autocast), with padded positions (``t >= lengths[b]``)
      already set to zero. ``state`` is None or a tensor already checked against
      ``_state_shape(B)``. With ``lengths`` given and ``return_state``, the returned state must be the
      state after each sequence's own last valid token. ``y`` is in the same layout as ``u``;
      the base class applies dropout, casts back to the input dtype and zeroes padded positions.
    - ``_step(u_t, state) -> (y_t, next_state)``: one step, u_t (B, H) in the compute dtype.
    - ``_state_shape(batch_size) -> tuple`` and ``_state_dtype(dtype) -> torch.dtype`` (the state
      dtype for a compute dtype, e.g. the matching complex dtype).

    Subclasses register SSM parameters with :meth:`register_ssm_param`.
    """

    core_layout: str = "BHL"

    def __init__(self, d_model: int, *, transposed: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, tie_dropout: bool = False) -> None:
        super().__init__()
        self.d_model = check_int("d_model", d_model)
        check_probability("dropout", dropout)
        self.transposed = check_bool("transposed", transposed)
        self.bidirectional = check_bool("bidirectional", bidirectional)
        self.tie_dropout = check_bool("tie_dropout", tie_dropout)
        # applied to the core's output, whose length axis is 1 ("BLH") or 2 ("BHL")
        self.dropout = make_dropout(dropout, self.tie_dropout, 1 if self.core_layout == "BLH" else 2)
        self._ssm_param_names: dict[str, str] = {}
        self._cache: dict = {}

    # -------------------------------------------------------------------------------------- caching
    def cached(self, name: str, L: int, fn):
        """fn() or its cached value; recomputed whenever gradients are recorded or parameters changed.

        While gradients are recorded (training) ``fn`` runs on every call. Otherwise the value is
        cached under ``name``, keyed on ``L``, on every parameter's dtype, device and shape, and on
        the parameters' values: a copy of them is kept and compared on every lookup. Version counters
        or storage pointers would not do: a write through ``p.data`` (``p.data.fill_``,
        ``p.data.copy_``, some optimizers and weight-clipping code) changes neither. So any change of
        a value (an optimizer step, ``load_state_dict``, ``copy_``, ``.data`` writes, ``.to()``)
        invalidates the entry. The comparison is one pass over the layer's own parameters (small next
        to a step or a convolution); on a GPU it synchronizes once per lookup. The cache is a plain
        attribute, never part of the state_dict.
        """
        params = list(self.parameters(recurse=False))
        if torch.is_grad_enabled() and any(p.requires_grad for p in params):
            self._cache.clear()
            return fn()
        meta = (L, tuple((p.dtype, p.device, p.shape) for p in params))
        values = torch.cat([p.detach().reshape(-1) for p in params])  # a copy: the snapshot if stored
        hit = self._cache.get(name)
        if hit is not None and hit[0] == meta and torch.equal(hit[1], values):
            return hit[2]
        value = fn()
        self._cache[name] = (meta, values, value)
        return value

    def _load_from_state_dict(self, *args, **kwargs):
        self._cache.clear()
        super()._load_from_state_dict(*args, **kwargs)

    # ----------------------------------------------------------------------------------- parameters
    def register_ssm_param(self, name: str, value: Tensor, group: str = "ssm") -> nn.Parameter:
        """Register ``value`` as parameter ``name`` and tag it as an SSM parameter of ``group``."""
        param = value if isinstance(value, nn.Parameter) else nn.Parameter(value)
        self.register_parameter(name, param)
        self._ssm_param_names[name] = group
        return tag_ssm_param(param, group)

    def ssm_parameters(self) -> dict[str, str]:
        """{parameter name: group} of this layer's own SSM parameters (not its children's)."""
        return dict(self._ssm_param_names)

    def compute_dtype(self) -> torch.dtype:
        """The real dtype the SSM runs in: the parameters' dtype, float32 at least (autocast policy)."""
        p = next(self.parameters())
        dtype = p.dtype if p.dtype in (torch.float32, torch.float64) else torch.float32
        return dtype

    # ------------------------------------------------------------------------------------ validation
    def _check_input(self, x: Tensor, name: str = "x") -> Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        layout = "(batch, d_model, length)" if self.transposed else "(batch, length, d_model)"
        if x.dim() != 3:
            raise ValueError(f"{name} must have 3 dims {layout}, got shape {tuple(x.shape)}")
        feat = x.shape[1] if self.transposed else x.shape[2]
        if feat != self.d_model:
            raise ValueError(f"{name} must have d_model={self.d_model} features {layout}, "
                             f"got shape {tuple(x.shape)}")
        self._check_dtype(x, name)
        return x

    def _check_dtype(self, x: Tensor, name: str) -> None:
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        p = next(self.parameters())
        if p.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"the layer's parameters are {p.dtype}; SSM layers keep float32 or float64 "
                            "parameters (for bf16/fp16 compute, run the model under torch.autocast)")
        if x.device != p.device:
            raise ValueError(f"{name} is on {x.device} but the layer's parameters are on {p.device}")
        # (checked after the device: autocast has no state for the meta device)
        autocast = x.device.type != "meta" and torch.is_autocast_enabled(x.device.type)
        if x.dtype != p.dtype and not autocast:
            raise TypeError(f"{name} has dtype {x.dtype} but the layer's parameters are {p.dtype}; "
                            "convert one of them (or run under torch.autocast)")

    def _check_lengths(self, lengths: Optional[Tensor], B: int, L: int) -> Optional[Tensor]:
        if lengths is None:
            return None
        if not isinstance(lengths, torch.Tensor):
            lengths = torch.as_tensor(lengths)
        if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
            raise TypeError(f"lengths must be an integer tensor, got dtype {lengths.dtype}")
        if lengths.shape != (B,):
            raise ValueError(f"lengths must have shape (batch,)=({B},), got {tuple(lengths.shape)}")
        if lengths.device.type != "meta" and (bool((lengths < 0).any()) or bool((lengths > L).any())):
            raise ValueError(f"lengths must lie in [0, L={L}], got min {int(lengths.min())}, "
                             f"max {int(lengths.max())}")
        return lengths

    def _check_state(self, state: Tensor, B: int, dtype: torch.dtype) -> Tensor:
        if self.bidirectional:
            raise ValueError("a bidirectional layer has no recurrent state (it reads the sequence "
                             "backwards); use bidirectional=False for step/streaming use")
        if not isinstance(state, torch.Tensor):
            raise TypeError(f"state must be a tensor from default_state(), got {type(state).__name__}")
        expected = tuple(self._state_shape(B))
        if tuple(state.shape) != expected:
            if state.dim() == len(expected) and tuple(state.shape[1:]) == expected[1:]:
                raise ValueError(f"state has batch size {state.shape[0]} but the input has batch size {B}")
            raise ValueError(f"state must have shape {expected}, got {tuple(state.shape)}")
        want = self._state_dtype(dtype)
        if state.dtype != want:
            raise TypeError(f"state must have dtype {want}, got {state.dtype}")
        p = next(self.parameters())
        if state.device != p.device:
            raise ValueError(f"state is on {state.device} but the layer's parameters are on {p.device}")
        return state

    @staticmethod
    def _check_not_traced() -> None:
        if torch.jit.is_tracing():
            raise RuntimeError(
                "torch.jit.trace is not supported by SSM layers: FFT sizes, chunking and the kernel "
                "length are Python integers computed from the input's length, which a trace would "
                "freeze (or fail on). Use torch.compile(layer) instead: it captures the same graph and "
                "recompiles when the length changes.")

    # ---------------------------------------------------------------------------------- public API
    def forward(self, x: Tensor, state: Optional[Tensor] = None, return_state: bool = False,
                lengths: Optional[Tensor] = None):
        """Apply the layer to a whole sequence (or a chunk of one, continuing from ``state``).

        Args:
            x: (B, L, H), or (B, H, L) if ``transposed``.
            state: None (zero state) or the state returned by a previous call / ``default_state``.
            return_state: also return the state after the last (valid) token.
            lengths: (B,) valid lengths of a padded batch; padded outputs are zero.
        Returns:
            y with the shape of x, or (y, state) if ``return_state``.
        """
        self._check_not_traced()
        self._check_input(x)
        B = x.shape[0]
        L = x.shape[2] if self.transposed else x.shape[1]
        if L == 0:
            layout = "(batch, d_model, length)" if self.transposed else "(batch, length, d_model)"
            raise ValueError(f"x has length L=0 (shape {tuple(x.shape)}, layout {layout}); "
                             "SSM layers need an input length L >= 1")
        lengths = self._check_lengths(lengths, B, L)
        check_bool("return_state", return_state)
        cdtype = self.compute_dtype()
        if return_state and self.bidirectional:
            raise ValueError("return_state=True is not available for a bidirectional layer")
        if state is not None:
            self._check_state(state, B, cdtype)
        if x.device.type == "meta":  # shapes only: y has x's shape, the state default_state's
            y = torch.empty_like(x)
            if not return_state:
                return y
            return y, torch.empty(self._state_shape(B), dtype=self._state_dtype(cdtype), device=x.device)
        u = x.to(cdtype)
        want_blh = self.core_layout == "BLH"
        if self.transposed == want_blh:  # layout differs from the core's
            u = u.transpose(1, 2)
        mask = None
        if lengths is not None:
            mask = lengths_to_mask(lengths, L)  # (B, L)
            m = mask.unsqueeze(-1) if want_blh else mask.unsqueeze(1)
            # a select, not a product: padding may hold NaN or inf, and NaN * 0 = NaN would reach
            # every valid position through the convolution / scan
            u = torch.where(m, u, u.new_zeros(()))
        with torch.autocast(x.device.type, enabled=False):
            y, next_state = self._forward(u, state, lengths, return_state)
        y = self.dropout(y)
        if mask is not None:
            y = torch.where(mask.unsqueeze(-1) if want_blh else mask.unsqueeze(1), y, y.new_zeros(()))
        if self.transposed == want_blh:
            y = y.transpose(1, 2)
        y = y.to(x.dtype)
        return (y, next_state) if return_state else y

    def default_state(self, batch_size: int, device: Optional[torch.device] = None,
                      dtype: Optional[torch.dtype] = None) -> Tensor:
        """The zero state for ``batch_size`` sequences; ``dtype`` is the real compute dtype."""
        if self.bidirectional:
            raise ValueError("a bidirectional layer has no recurrent state; use bidirectional=False")
        batch_size = check_int("batch_size", batch_size, minimum=0)
        if dtype is not None and dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be None, torch.float32 or torch.float64 (the real compute dtype; "
                            f"the state's own dtype follows from it), got {dtype!r}")
        p = next(self.parameters())
        dtype = self.compute_dtype() if dtype is None else dtype
        return torch.zeros(self._state_shape(batch_size), dtype=self._state_dtype(dtype),
                           device=p.device if device is None else device)

    def step(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One step of the recurrence. x_t: (B, H); state from ``default_state`` -> (y_t (B, H), state).

        Output dropout (training mode only) draws a fresh mask per (batch, channel) on every call, also
        with ``tie_dropout``: a step sees one token, so nothing is shared across steps.
        """
        self._check_not_traced()
        if not isinstance(x_t, torch.Tensor):
            raise TypeError(f"x_t must be a torch.Tensor, got {type(x_t).__name__}")
        if x_t.dim() != 2 or x_t.shape[1] != self.d_model:
            raise ValueError(f"x_t must have shape (batch, d_model={self.d_model}), got {tuple(x_t.shape)}")
        self._check_dtype(x_t, "x_t")
        cdtype = self.compute_dtype()
        self._check_state(state, x_t.shape[0], cdtype)
        if x_t.device.type == "meta":  # shapes only
            return torch.empty_like(x_t), torch.empty_like(state)
        with torch.autocast(x_t.device.type, enabled=False):
            y, state = self._step(x_t.to(cdtype), state)
        return self.dropout(y).to(x_t.dtype), state

    # ---------------------------------------------------------------------------------------- hooks
    def _forward(self, u: Tensor, state: Optional[Tensor], lengths: Optional[Tensor],
                 return_state: bool) -> tuple[Tensor, Optional[Tensor]]:
        raise NotImplementedError

    def _step(self, u_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _state_shape(self, batch_size: int) -> tuple[int, ...]:
        raise NotImplementedError

    def _state_dtype(self, dtype: torch.dtype) -> torch.dtype:
        return torch.complex128 if dtype == torch.float64 else torch.complex64
