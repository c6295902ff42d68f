"""Optimizer parameter groups: SSM parameters with their own learning rate and no weight decay.

S4 (arXiv 2111.00396, App. D.2) and its successors train the state-space parameters (A/Lambda, B, P
and dt) with a smaller learning rate and no weight decay, everything else with AdamW. Layers mark
those parameters through :meth:`ssm.layers.base.SSMLayer.register_ssm_param` (recorded by name on
the module, which survives ``copy.deepcopy``, ``.to()`` and ``load_state_dict``) or
:func:`ssm.layers.base.tag_ssm_param` (an attribute on the tensor); this module reads both.
Pure torch: no training framework is imported here.
"""

from __future__ import annotations

from typing import Any, Optional

from torch import nn

from ..layers.base import ssm_param_group

__all__ = ["param_groups", "ssm_param_names"]


def ssm_param_names(model: nn.Module) -> dict[str, str]:
    """{qualified parameter name: group} of every tagged SSM parameter of ``model``."""
    out: dict[str, str] = {}
    for mod_name, module in model.named_modules():
        for name, group in getattr(module, "_ssm_param_names", {}).items():
            out[f"{mod_name}.{name}" if mod_name else name] = group
    for name, p in model.named_parameters():
        group = ssm_param_group(p)
        if group is not None:
            out.setdefault(name, group)
    return out


def param_groups(model: nn.Module, lr: float, weight_decay: float, ssm_lr: Optional[float] = None,
                 ssm_weight_decay: float = 0.0) -> list[dict[str, Any]]:
    """Parameter groups for ``torch.optim.AdamW`` (or any torch optimizer).

    Args:
        model: any module; its SSM parameters are found through their tags.
        lr, weight_decay: for the other parameters. Parameters with fewer than 2 dims (biases, norm
            scales) get no weight decay.
        ssm_lr: learning rate of the SSM parameters (default: ``lr``).
        ssm_weight_decay: their weight decay (default 0).
    Returns:
        Up to three groups ``{"params", "lr", "weight_decay", "name"}`` ("decay", "no_decay", "ssm"),
        each parameter in exactly one; frozen parameters (requires_grad=False) are left out.
    """
    for name, v in (("lr", lr), ("weight_decay", weight_decay), ("ssm_weight_decay", ssm_weight_decay)):
        if not isinstance(v, (int, float)) or v < 0:
            raise ValueError(f"{name} must be a number >= 0, got {v!r}")
    if ssm_lr is not None and (not isinstance(ssm_lr, (int, float)) or ssm_lr < 0):
        raise ValueError(f"ssm_lr must be a number >= 0 or None, got {ssm_lr!r}")
    tagged = ssm_param_names(model)
    decay, no_decay, ssm = [], [], []
    for name, p in model.named_parameters():  # shared parameters are listed once
        if not p.requires_grad:
            continue
        if name in tagged:
            ssm.append(p)
        elif p.dim() >= 2:
            decay.append(p)
        else:
            no_decay.append(p)
    groups = [
        {"params": decay, "lr": lr, "weight_decay": weight_decay, "name": "decay"},
        {"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": "no_decay"},
        {"params": ssm, "lr": lr if ssm_lr is None else ssm_lr, "weight_decay": ssm_weight_decay,
         "name": "ssm"},
    ]
    return [g for g in groups if g["params"]]
