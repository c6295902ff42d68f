"""``SequenceModel``: encoder, a stack of residual SSM blocks, pooling and a decoder.

The deep SSM architecture of S4 (arXiv 2111.00396, Sec. 3.4 and App. D.2), used as a classifier
(pooling over valid tokens) or as a sequence-to-sequence backbone. ``step`` runs the whole stack one
token at a time (recurrent mode), giving the same outputs as ``forward`` in eval mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor, nn

from ..layers.base import check_bool, check_choice, check_int, check_probability, lengths_to_mask
from ..layers.block import Block, _Norm
from . import weights as _weights

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
        d_input, d_model, n_layers = (check_int(name, v) for name, v in
                                      (("d_input", d_input), ("d_model", d_model), ("n_layers", n_layers)))
        if d_output is not None:
            d_output = check_int("d_output", d_output, what="(or None: no decoder)")
        for name, v in (("embedding", embedding), ("prenorm", prenorm), ("glu", glu),
                        ("tie_dropout", tie_dropout)):
            check_bool(name, v)
        check_probability("dropout", dropout)
        if padding_idx is not None:
            if not embedding:
                raise ValueError(f"padding_idx only applies to embedding=True (token inputs), got "
                                 f"padding_idx={padding_idx!r} with embedding=False")
            padding_idx = check_int("padding_idx", padding_idx, minimum=0,
                                    what=f"(a token id < d_input={d_input})")
            if padding_idx >= d_input:
                raise ValueError(f"padding_idx must be a token id in [0, d_input={d_input}), "
                                 f"got {padding_idx}")
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
        # The constructor's arguments as plain values, for config(), save_weights() and from_checkpoint()
        # (ssm/models/weights.py); the layer callable is kept only as its plain spec (None: not writable).
        self._init_config = {"d_input": d_input, "d_model": d_model, "d_output": d_output, "n_layers": n_layers,
                             "embedding": embedding, "dropout": dropout, "norm": norm, "prenorm": prenorm,
                             "glu": glu, "activation": activation, "pool": pool, "padding_idx": padding_idx,
                             "tie_dropout": tie_dropout}
        self._layer_spec = _weights.layer_spec(layer)
        self._layer_name = getattr(layer, "__name__", type(layer).__name__)

    # ------------------------------------------------------------------------------- save / load
    def config(self) -> dict[str, Any]:
        """The constructor's arguments as a plain dict (the ``config`` of a weights file; also a Hydra
        config). Needs ``layer`` to be an ssm layer class or a ``functools.partial`` of one."""
        if self._layer_spec is None:
            raise ValueError(
                f"this model's layer callable ({self._layer_name}) cannot be written down: build the model "
                "with an ssm layer class or a functools.partial of one with plain keyword arguments, e.g. "
                "layer=functools.partial(ssm.S4D, d_state=64), to save or export it")
        if not _weights._is_ssm_class(type(self)):
            raise ValueError(f"{type(self).__qualname__} is not defined in ssm; only ssm's classes are saved")
        return {"_target_": _weights._target_name(type(self)), **self._init_config,
                "layer": dict(self._layer_spec)}

    def save_weights(self, path: Union[str, Path], metadata: Optional[dict[str, Any]] = None) -> Path:
        """Write the weights-only file (format ``ssm-weights/1``; see ssm/models/weights.py)."""
        return _weights.save_weights(self, path, metadata)

    @classmethod
    def from_checkpoint(cls, path: Union[str, Path],
                        map_location: Union[str, torch.device] = "cpu") -> "SequenceModel":
        """The trained model stored in ``path``, in eval mode, on ``map_location`` (default the CPU).

        Args:
            path: an ``ssm-train`` checkpoint (``.ckpt``; for retrieval runs, the shared backbone
                without the pair classifier) or a weights-only file written by :meth:`save_weights`
                or ``ssm.training.export_weights``.
            map_location: device of the returned model (and of the tensors while loading).
        Raises:
            ssm.models.weights.CheckpointError: a truncated or corrupted file (zip CRC check), or one
                that is not an ssm checkpoint; FileNotFoundError: no such file.
        """
        model = _weights.load_model(path, map_location)
        if not isinstance(model, cls):
            raise _weights.CheckpointError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    # ------------------------------------------------------------------------------------ checks
    def _check_x(self, x: Tensor, step: bool) -> None:
        rank = (1 if step else 2) if self.embedding else (2 if step else 3)
        what = ("(batch,)" if step else "(batch, length)") if self.embedding else \
            (f"(batch, d_input={self.d_input})" if step else f"(batch, length, d_input={self.d_input})")
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != rank:
            raise ValueError(f"x must have shape {what}, got {tuple(x.shape)}")
        if not step and x.shape[1] == 0:
            raise ValueError(f"x has length L=0 (shape {tuple(x.shape)}, {what}); the model needs L >= 1")
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
        mask = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device)
            if lengths.shape != (x.shape[0],) or lengths.is_floating_point():
                raise ValueError(f"lengths must be an integer tensor of shape (batch,)=({x.shape[0]},), "
                                 f"got {tuple(lengths.shape)} {lengths.dtype}")
            mask = lengths_to_mask(lengths, x.shape[1])
            if not self.embedding:  # padding may hold NaN/inf: select it away before the encoder
                x = torch.where(mask.unsqueeze(-1), x, x.new_zeros(()))  # (or it reaches the gradients)
        h = self.encoder(x)
        if mask is not None:
            h = torch.where(mask.unsqueeze(-1), h, h.new_zeros(()))
        for block in self.blocks:
            h = block(h, lengths=lengths)
        if self.final_norm is not None:
            h = self.final_norm(h, mask)
        h = self._pool(h, lengths, mask)
        return self.decoder(h) if self.decoder is not None else h

    def _pool(self, h: Tensor, lengths: Optional[Tensor], mask: Optional[Tensor]) -> Tensor:
        if self.pool is None:
            return h if mask is None else torch.where(mask.unsqueeze(-1), h, h.new_zeros(()))
        if self.pool == "mean":
            if mask is None:
                return h.mean(1)
            count = mask.sum(1, keepdim=True).clamp(min=1).to(h.dtype)
            return torch.where(mask.unsqueeze(-1), h, h.new_zeros(())).sum(1) / count
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
