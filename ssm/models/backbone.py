"""``SequenceModel``: encoder, a stack of residual SSM blocks, pooling and a decoder.

The deep SSM architecture of S4 (arXiv 2111.00396, Sec. 3.4 and App. D.2), used as a classifier
(pooling over valid tokens) or as a sequence-to-sequence backbone. ``step`` runs the whole stack one
token at a time (recurrent mode), giving the same outputs as ``forward`` in eval mode.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

from ..layers.base import check_choice, lengths_to_mask
from ..layers.block import Block, _Norm

__all__ = ["SequenceModel", "POOLS"]

POOLS = ("mean", "last", None)


class SequenceModel(nn.Module):
    """Encoder -> n_layers residual SSM blocks -> pooling -> decoder.

    Args:
        d_input: features per step, or the vocabulary size if ``embedding``.
        d_model: H, the width of the blocks.
        d_output: outputs per sequence (pooled) or per step (pool=None); None: no decoder.
        n_layers: number of blocks.
        layer: callable ``d_model -> SSM layer`` (e.g. ``functools.partial(ssm.S4D, d_state=64)``).
        embedding: x is a LongTensor of tokens (B, L) instead of floats (B, L, d_input).
        dropout, tie_dropout, norm ("layer" | "batch"), prenorm, glu, activation: passed to each
            :class:`Block` (the layers' own dropout is set through ``layer``).
        pool: "mean" (over valid tokens) | "last" (last valid token) | None (sequence output).
        padding_idx: token id of padding; with ``lengths=None``, lengths are taken as the position
            after the last non-padding token.
    """

    def __init__(self, d_input: int, d_model: int, d_output: Optional[int], n_layers: int,
                 layer: Callable[[int], nn.Module], *, embedding: bool = False, dropout: float = 0.0,
                 norm: str = "layer", prenorm: bool = False, glu: bool = True, activation: str = "gelu",
                 pool: Optional[str] = "mean", padding_idx: Optional[int] = None,
                 tie_dropout: bool = False) -> None:
        super().__init__()
        for name, v in (("d_input", d_input), ("d_model", d_model), ("n_layers", n_layers)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if d_output is not None and (not isinstance(d_output, int) or d_output < 1):
            raise ValueError(f"d_output must be a positive int or None, got {d_output!r}")
        if not callable(layer):
            raise TypeError(f"layer must be a callable d_model -> layer, got {type(layer).__name__}")
        check_choice("pool", pool, POOLS)
        check_choice("norm", norm, ("layer", "batch"))
        self.d_input, self.d_model, self.d_output = d_input, d_model, d_output
        self.embedding, self.pool, self.padding_idx, self.prenorm = embedding, pool, padding_idx, prenorm
        self.encoder = (nn.Embedding(d_input, d_model, padding_idx=padding_idx) if embedding
                        else nn.Linear(d_input, d_model))
        self.blocks = nn.ModuleList(
            Block(d_model, layer(d_model), activation=activation, dropout=dropout, glu=glu, norm=norm,
                  prenorm=prenorm, tie_dropout=tie_dropout) for _ in range(n_layers))
        self.final_norm = _Norm(norm, d_model) if prenorm else None
        self.decoder = nn.Linear(d_model, d_output) if d_output is not None else None

    # ------------------------------------------------------------------------------------ checks
    def _check_x(self, x: Tensor, step: bool) -> None:
        rank = (1 if step else 2) if self.embedding else (2 if step else 3)
        what = ("(batch,)" if step else "(batch, length)") if self.embedding else \
            (f"(batch, d_input={self.d_input})" if step else f"(batch, length, d_input={self.d_input})")
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != rank:
            raise ValueError(f"x must have shape {what}, got {tuple(x.shape)}")
        if self.embedding:
            if x.dtype not in (torch.int64, torch.int32):
                raise TypeError(f"x must be an integer (token) tensor for embedding=True, got {x.dtype}")
            if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.d_input):
                raise ValueError(f"tokens must lie in [0, d_input={self.d_input}), got range "
                                 f"[{int(x.min())}, {int(x.max())}]")
        else:
            if not x.is_floating_point():
                raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
            if x.shape[-1] != self.d_input:
                raise ValueError(f"x must have shape {what}, got {tuple(x.shape)}")

    def _lengths_from_padding(self, x: Tensor) -> Optional[Tensor]:
        if not (self.embedding and self.padding_idx is not None):
            return None
        nonpad = x != self.padding_idx
        L = x.shape[1]
        last = L - torch.argmax(nonpad.flip(1).to(torch.int8), dim=1)
        return torch.where(nonpad.any(1), last, torch.zeros_like(last))

    # ----------------------------------------------------------------------------------- forward
    def forward(self, x: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """x: (B, L) tokens or (B, L, d_input) -> (B, d_output) pooled, or (B, L, d_output) if pool=None."""
        self._check_x(x, step=False)
        if lengths is None:
            lengths = self._lengths_from_padding(x)
        h = self.encoder(x)
        mask = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=h.device)
            if lengths.shape != (h.shape[0],) or lengths.is_floating_point():
                raise ValueError(f"lengths must be an integer tensor of shape (batch,)=({h.shape[0]},), "
                                 f"got {tuple(lengths.shape)} {lengths.dtype}")
            mask = lengths_to_mask(lengths, h.shape[1])
            h = h * mask.unsqueeze(-1).to(h.dtype)
        for block in self.blocks:
            h = block(h, lengths=lengths)
        if self.final_norm is not None:
            h = self.final_norm(h, mask)
        h = self._pool(h, lengths, mask)
        return self.decoder(h) if self.decoder is not None else h

    def _pool(self, h: Tensor, lengths: Optional[Tensor], mask: Optional[Tensor]) -> Tensor:
        if self.pool is None:
            return h if mask is None else h * mask.unsqueeze(-1).to(h.dtype)
        if self.pool == "mean":
            if mask is None:
                return h.mean(1)
            count = mask.sum(1, keepdim=True).clamp(min=1).to(h.dtype)
            return (h * mask.unsqueeze(-1).to(h.dtype)).sum(1) / count
        if lengths is None:
            return h[:, -1]
        idx = (lengths.long() - 1).clamp(min=0)
        return h[torch.arange(h.shape[0], device=h.device), idx]

    # -------------------------------------------------------------------------------- recurrence
    def default_state(self, batch_size: int, device=None, dtype=None) -> list:
        """One state per block (see each layer's ``default_state``)."""
        return [b.default_state(batch_size, device=device, dtype=dtype) for b in self.blocks]

    def step(self, x_t: Tensor, state: list) -> tuple[Tensor, list]:
        """One token through the whole stack (pool=None models; call ``eval()`` first with batch norm).

        x_t: (B,) tokens or (B, d_input) -> (B, d_output) (or (B, d_model) without decoder), new state.
        """
        if self.pool is not None:
            raise ValueError(f"step() needs a sequence-to-sequence model (pool=None), this one has "
                             f"pool={self.pool!r}")
        self._check_x(x_t, step=True)
        if not isinstance(state, (list, tuple)) or len(state) != len(self.blocks):
            raise ValueError(f"state must be a list of {len(self.blocks)} layer states from default_state()")
        h = self.encoder(x_t)
        new_state = []
        for block, s in zip(self.blocks, state):
            h, s = block.step(h, s)
            new_state.append(s)
        if self.final_norm is not None:
            h = self.final_norm(h.unsqueeze(1)).squeeze(1)
        return (self.decoder(h) if self.decoder is not None else h), new_state
