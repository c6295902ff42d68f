"""The residual block around an SSM layer: norm, SSM, activation, dropout, output projection (GLU).

The layout of the block used by S4 (arXiv 2111.00396, Sec. 4 / App. D.2) and its successors:
``z = proj(dropout(act(ssm(norm(x)))))``, ``x = x + dropout(z)``, with the norm applied before the
SSM (``prenorm=True``) or after the residual sum (``prenorm=False``). ``proj`` is ``Linear(H, 2H)``
followed by a GLU when ``glu=True`` (else ``Linear(H, H)``). With ``lengths``, padded positions are
zeroed on the way out (the mask between blocks) and batch norm statistics use valid tokens only.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .base import check_bool, check_choice, check_int, lengths_to_mask, make_dropout

__all__ = ["Block", "ACTIVATIONS", "NORMS"]

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh, "identity": nn.Identity}
NORMS = ("layer", "batch", "none")


class _Norm(nn.Module):
    """LayerNorm or BatchNorm over the features of (B, L, H) inputs; batch stats over valid tokens."""

    def __init__(self, kind: str, d_model: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "layer":
            self.norm = nn.LayerNorm(d_model)
        elif kind == "batch":
            self.norm = nn.BatchNorm1d(d_model)
        else:
            self.norm = nn.Identity()

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        if self.kind != "batch":
            return self.norm(x)
        if mask is None:
            return self.norm(x.reshape(-1, x.shape[-1])).view_as(x)
        out = torch.zeros_like(x)
        out[mask] = self.norm(x[mask]).to(out.dtype)  # statistics over valid tokens only
        return out


class Block(nn.Module):
    """Residual block around an SSM layer.

    Args:
        d_model: H.
        layer: an SSM layer (``transposed=False``) mapping (B, L, H) -> (B, L, H).
        activation: "gelu" | "relu" | "silu" | "tanh" | "identity".
        dropout: dropout after the activation and on the residual branch.
        tie_dropout: one dropout mask per (batch, channel) shared along the sequence
            (:class:`ssm.layers.base.TiedDropout`); in ``step`` one mask per (batch, channel) per call.
        glu: output projection Linear(H, 2H) + GLU (else Linear(H, H)).
        norm: "layer" | "batch" | "none".
        prenorm: normalize the branch input (True) or the residual sum (False).
    """

    def __init__(self, d_model: int, layer: nn.Module, *, activation: str = "gelu", dropout: float = 0.0,
                 glu: bool = True, norm: str = "layer", prenorm: bool = False,
                 tie_dropout: bool = False) -> None:
        super().__init__()
        d_model = check_int("d_model", d_model)
        if not isinstance(layer, nn.Module):
            raise TypeError(f"layer must be an nn.Module (an SSM layer), got {type(layer).__name__}")
        if getattr(layer, "transposed", False):
            raise ValueError("Block expects a layer with transposed=False ((B, L, H) inputs)")
        if getattr(layer, "d_model", d_model) != d_model:
            raise ValueError(f"layer has d_model={layer.d_model} but the block has d_model={d_model}")
        check_choice("activation", activation, tuple(ACTIVATIONS))
        check_choice("norm", norm, NORMS)
        self.d_model = d_model
        self.layer = layer
        self.activation = ACTIVATIONS[activation]()
        self.tie_dropout = check_bool("tie_dropout", tie_dropout)
        self.drop = make_dropout(dropout, self.tie_dropout, seq_dim=1)  # (B, L, H): length at dim 1
        self.glu = check_bool("glu", glu)
        self.proj = nn.Linear(d_model, 2 * d_model if glu else d_model)
        self.norm = _Norm(norm, d_model)
        self.prenorm = check_bool("prenorm", prenorm)

    def _branch_out(self, z: Tensor) -> Tensor:
        z = self.proj(self.drop(self.activation(z)))
        if self.glu:
            z = nn.functional.glu(z, dim=-1)
        return self.drop(z)

    def forward(self, x: Tensor, lengths: Optional[Tensor] = None, state: Optional[Tensor] = None,
                return_state: bool = False):
        """x (B, L, H) -> (B, L, H) (and the layer's state if ``return_state``)."""
        mask = lengths_to_mask(lengths, x.shape[1]) if lengths is not None else None
        z = self.norm(x, mask) if self.prenorm else x
        out = self.layer(z, state=state, return_state=return_state, lengths=lengths)
        z, next_state = out if return_state else (out, None)
        x = x + self._branch_out(z)
        if not self.prenorm:
            x = self.norm(x, mask)
        if mask is not None:  # a select: NaN/inf padding times 0 would stay NaN
            x = torch.where(mask.unsqueeze(-1), x, x.new_zeros(()))
        return (x, next_state) if return_state else x

    def default_state(self, batch_size: int, device=None, dtype=None):
        return self.layer.default_state(batch_size, device=device, dtype=dtype)

    def step(self, x_t: Tensor, state) -> tuple[Tensor, Tensor]:
        """One token: x_t (B, H) -> (B, H). Batch norm must be in eval mode (running statistics).

        In training mode dropout draws a new mask per (batch, channel) on every call (with
        ``tie_dropout`` too: one token has no length to share a mask over)."""
        if self.norm.kind == "batch" and self.norm.training:
            raise RuntimeError("step() with batch norm needs eval mode (call model.eval()): a single "
                               "token has no batch statistics over the sequence")
        z = self.norm(x_t.unsqueeze(1)).squeeze(1) if self.prenorm else x_t
        z, state = self.layer.step(z, state)
        x_t = x_t + self._branch_out(z)
        if not self.prenorm:
            x_t = self.norm(x_t.unsqueeze(1)).squeeze(1)
        return x_t, state
