"""SSM layers: S4 (arXiv 2111.00396), DSS (2203.14343), S4D (2206.11893), S5 (2208.04933), and the
residual block. Every layer shares the interface of :class:`ssm.layers.base.SSMLayer`."""

from .base import SSMLayer, tag_ssm_param
from .block import Block
from .dss import DSS
from .s4 import S4
from .s4d import S4D
from .s5 import S5

__all__ = ["SSMLayer", "tag_ssm_param", "Block", "S4", "S4D", "DSS", "S5"]
