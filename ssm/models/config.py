"""Model-level settings as one dataclass (the plain-keyword API of :class:`SequenceModel`, serializable).

Layer families: S4 (arXiv 2111.00396), DSS (2203.14343), S4D (2206.11893), S5 (2208.04933).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from ..layers.base import check_choice

__all__ = ["ModelConfig", "LAYERS"]

LAYERS = ("s4", "s4d", "dss", "s5")


@dataclass
class ModelConfig:
    """Everything needed to build a :class:`ssm.SequenceModel`.

    ``layer`` names the family ("s4" | "s4d" | "dss" | "s5"); ``d_state`` and ``layer_kwargs`` (e.g.
    ``{"init": "inv", "bidirectional": True}``) go to its constructor.
    """

    d_input: int
    d_output: Optional[int]
    d_model: int = 256
    n_layers: int = 4
    layer: str = "s4d"
    d_state: int = 64
    layer_kwargs: dict[str, Any] = field(default_factory=dict)
    embedding: bool = False
    dropout: float = 0.0
    tie_dropout: bool = False
    norm: str = "layer"
    prenorm: bool = False
    glu: bool = True
    activation: str = "gelu"
    pool: Optional[str] = "mean"
    padding_idx: Optional[int] = None

    def build(self):
        """The configured :class:`ssm.SequenceModel`."""
        from .. import DSS, S4, S4D, S5
        from .backbone import SequenceModel

        check_choice("layer", self.layer, LAYERS)
        cls = {"s4": S4, "s4d": S4D, "dss": DSS, "s5": S5}[self.layer]
        factory = functools.partial(cls, d_state=self.d_state, **self.layer_kwargs)
        return SequenceModel(self.d_input, self.d_model, self.d_output, self.n_layers, factory,
                             embedding=self.embedding, dropout=self.dropout, norm=self.norm,
                             prenorm=self.prenorm, glu=self.glu, activation=self.activation,
                             pool=self.pool, padding_idx=self.padding_idx, tie_dropout=self.tie_dropout)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
