"""ssm.param_groups: SSM parameters get their own lr and no weight decay; every parameter once."""

from __future__ import annotations

import copy
import functools

import pytest
import torch

import ssm
from ssm.layers.base import tag_ssm_param


@pytest.mark.parametrize("family", [ssm.S4, ssm.S4D, ssm.DSS, ssm.S5])
def test_groups_partition_parameters(family):
    model = ssm.SequenceModel(3, 8, 2, 2, layer=functools.partial(family, d_state=8))
    groups = ssm.param_groups(model, lr=1e-2, weight_decay=0.05, ssm_lr=1e-3)
    by_name = {g["name"]: g for g in groups}
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    ssm_g = by_name["ssm"]
    assert ssm_g["lr"] == 1e-3 and ssm_g["weight_decay"] == 0.0
    assert by_name["decay"]["weight_decay"] == 0.05 and by_name["decay"]["lr"] == 1e-2
    assert by_name["no_decay"]["weight_decay"] == 0.0
    names = {n for n, p in model.named_parameters() if any(p is q for q in ssm_g["params"])}
    expected = {n for n, _ in model.named_parameters()
                if n.split(".")[-1] in ("log_dt", "log_A_real", "A_real", "A_imag", "B", "P")
                and ".layer." in n}
    if family is ssm.S5:  # S5 names its own parameters; all of them sit in its layer
        assert names and all(".layer." in n for n in names)
    else:
        assert names == expected
    assert all("proj" not in n and "encoder" not in n for n in names)
    opt = torch.optim.AdamW(groups)
    model(torch.randn(2, 5, 3)).sum().backward()
    opt.step()


def test_defaults_manual_tags_copies_and_frozen():
    model = ssm.SequenceModel(3, 8, 2, 1, layer=functools.partial(ssm.S4D, d_state=8))
    groups = {g["name"]: g for g in ssm.param_groups(model, lr=0.1, weight_decay=0.0)}
    assert groups["ssm"]["lr"] == 0.1  # ssm_lr defaults to lr
    tag_ssm_param(model.encoder.weight)
    clone = copy.deepcopy(model)
    n_ssm = len({g["name"]: g for g in ssm.param_groups(clone, lr=0.1, weight_decay=0.0)}["ssm"]["params"])
    assert n_ssm == len(groups["ssm"]["params"])  # tensor tags are lost by deepcopy, module records not
    n_tagged = len({g["name"]: g for g in ssm.param_groups(model, lr=0.1, weight_decay=0.0)}["ssm"]["params"])
    assert n_tagged == n_ssm + 1
    model.blocks[0].layer.log_dt.requires_grad_(False)
    kept = [p for g in ssm.param_groups(model, lr=0.1, weight_decay=0.0) for p in g["params"]]
    assert all(p is not model.blocks[0].layer.log_dt for p in kept)
    with pytest.raises(ValueError, match="ssm_lr"):
        ssm.param_groups(model, lr=0.1, weight_decay=0.0, ssm_lr=-1)
