"""Optimizer parameter groups: SSM parameters with their own learning rate and no weight decay.

S4 (arXiv 2111.00396, App. D.2) and its successors train the state-space parameters (A/Lambda, B, P
and dt) with a smaller learning rate and no weight decay, everything else with AdamW; S4's released
LRA configs for ListOps, Text and Retrieval train the timestep at the global rate instead, hence the
optional ``dt_lr``. Layers mark those parameters through
:meth:`ssm.layers.base.SSMLayer.register_ssm_param` (recorded by name on the module, which survives
``copy.deepcopy``, ``.to()`` and ``load_state_dict``) or :func:`ssm.layers.base.tag_ssm_param` (an
attribute on the tensor); this module reads both.
Pure torch: no training framework is imported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional

from torch import nn

from ..layers.base import ssm_param_group

__all__ = ["param_groups", "ssm_param_names", "is_dt_param", "DT_PARAM_NAMES", "DT_GROUP"]

DT_PARAM_NAMES: tuple[str, ...] = ("log_dt", "dt", "inv_dt")
"""Leaf names of SSM parameters that parameterize the timestep (every layer registers ``log_dt``)."""

DT_GROUP = "dt"
"""A tag group (``register_ssm_param(name, value, group="dt")``) marking a timestep of any name."""


def is_dt_param(qualified_name: str, group: str) -> bool:
    """Whether the tagged SSM parameter ``qualified_name`` of tag ``group`` is a timestep parameter."""
    return group == DT_GROUP or qualified_name.rsplit(".", 1)[-1] in DT_PARAM_NAMES


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


def _check_rate(name: str, v: Any, optional: bool = False) -> None:
    if v is None and optional:
        return
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0 or v == float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0{' or None' if optional else ''}, got {v!r}")


def _check_names(arg: str, names: Optional[Iterable[str]], tagged: dict[str, str]) -> frozenset[str]:
    if names is None:
        return frozenset()
    listed = None if isinstance(names, str) or not isinstance(names, Iterable) else list(names)
    if listed is None or not all(isinstance(n, str) for n in listed):
        raise ValueError(f"{arg} must be a list of parameter names (e.g. ['B']) or None, got {names!r}")
    names = listed  # once: a one-shot iterable (a generator) is read here only
    leaves = {q.rsplit(".", 1)[-1] for q in tagged}
    unknown = sorted(set(names) - leaves)
    if unknown:
        raise ValueError(f"{arg}: {unknown} name no SSM parameter of the model; its SSM parameters are "
                         f"{sorted(leaves)}")
    return frozenset(names)


def param_groups(model: nn.Module, lr: float, weight_decay: float, ssm_lr: Optional[float] = None,
                 ssm_weight_decay: float = 0.0, dt_lr: Optional[float] = None,
                 regular_ssm_params: Optional[Iterable[str]] = None) -> list[dict[str, Any]]:
    """Parameter groups for ``torch.optim.AdamW`` (or any torch optimizer).

    Args:
        model: any module; its SSM parameters are found through their tags.
        lr, weight_decay: for the other parameters. Parameters with fewer than 2 dims (biases, norm
            scales) get no weight decay.
        ssm_lr: learning rate of the SSM parameters (default: ``lr``).
        ssm_weight_decay: their weight decay (default 0).
        dt_lr: learning rate of the timestep parameters among them (tagged parameters named as in
            :data:`DT_PARAM_NAMES`, or tagged with group :data:`DT_GROUP`); they then form their own
            group "dt" with no weight decay (whatever ``ssm_weight_decay``). Default None: they stay
            in the "ssm" group at ``ssm_lr``. S4's ListOps/Text/Retrieval configs correspond to ``dt_lr=lr``.
        regular_ssm_params: leaf names of tagged SSM parameters (for example ``["B"]``) trained as
            the other parameters are: at ``lr``, with ``weight_decay`` when they have 2 or more dims.
            S5's released sequential-image and ListOps scripts train B so (their optimizer option
            "BfastandCdecay"); the timestep and Lambda stay in the SSM group. Each name must match
            at least one tagged parameter of ``model`` (a ValueError otherwise). It takes precedence
            over ``dt_lr`` for a timestep named in it.
    Returns:
        Up to four groups ``{"params", "lr", "weight_decay", "name"}`` ("decay", "no_decay", "ssm",
        and "dt" when ``dt_lr`` is given), each parameter in exactly one; frozen parameters
        (requires_grad=False) are left out.
    """
    for name, v in (("lr", lr), ("weight_decay", weight_decay), ("ssm_weight_decay", ssm_weight_decay)):
        _check_rate(name, v)
    _check_rate("ssm_lr", ssm_lr, optional=True)
    _check_rate("dt_lr", dt_lr, optional=True)
    tagged = ssm_param_names(model)
    regular = _check_names("regular_ssm_params", regular_ssm_params, tagged)
    decay, no_decay, ssm, dt = [], [], [], []
    for name, p in model.named_parameters():  # shared parameters are listed once
        if not p.requires_grad:
            continue
        if name in tagged and name.rsplit(".", 1)[-1] not in regular:
            (dt if dt_lr is not None and is_dt_param(name, tagged[name]) else ssm).append(p)
        elif p.dim() >= 2:
            decay.append(p)
        else:
            no_decay.append(p)
    ssm_rate = lr if ssm_lr is None else ssm_lr
    groups = [
        {"params": decay, "lr": lr, "weight_decay": weight_decay, "name": "decay"},
        {"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": "no_decay"},
        {"params": ssm, "lr": ssm_rate, "weight_decay": ssm_weight_decay, "name": "ssm"},
        {"params": dt, "lr": dt_lr, "weight_decay": 0.0, "name": "dt"},
    ]
    return [g for g in groups if g["params"]]
