"""The Lightning module: the retrieval head's features, optimizer groups and the schedule wiring."""

from __future__ import annotations

import functools

import pytest
import torch

import ssm
from ssm.training.lit_module import RetrievalHead, SequenceLightningModule
from ssm.training.schedule import CosineWarmupLR


def test_retrieval_head_uses_the_lra_pair_features() -> None:
    torch.manual_seed(0)
    head = RetrievalHead(d_model=3, d_hidden=5, num_classes=2)
    u, v = torch.randn(4, 3), torch.randn(4, 3)
    lin1, act, lin2 = head.mlp
    by_hand = lin2(
        act(
            u @ lin1.weight[:, :3].T
            + v @ lin1.weight[:, 3:6].T
            + (u * v) @ lin1.weight[:, 6:9].T
            + (u - v) @ lin1.weight[:, 9:].T
            + lin1.bias
        )
    )
    torch.testing.assert_close(head(u, v), by_hand)


def _module(task: str = "classification") -> SequenceLightningModule:
    layer = functools.partial(ssm.S4D, d_state=4)
    model = ssm.SequenceModel(5, 8, None if task == "retrieval" else 3, 1, layer=layer, embedding=True)
    opt = functools.partial(torch.optim.AdamW, lr=0.01, weight_decay=0.05)
    sched = functools.partial(CosineWarmupLR, warmup_steps=2, total_steps=10)
    return SequenceLightningModule(model, 3, opt, sched, task=task, ssm_lr=0.001, d_model=8)


def test_ssm_parameters_get_their_own_lr_and_no_weight_decay() -> None:
    module = _module()
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert isinstance(opt, torch.optim.AdamW) and isinstance(sched, CosineWarmupLR)
    assert conf["lr_scheduler"]["interval"] == "step"
    ssm_ids = {
        id(getattr(m, n))
        for m in module.modules()
        if hasattr(m, "ssm_parameters")
        for n in m.ssm_parameters()
    }
    assert ssm_ids
    seen = set()
    for group in opt.param_groups:
        for p in group["params"]:
            seen.add(id(p))
            if id(p) in ssm_ids:  # base lr before the warm-up factor
                assert group["initial_lr"] == 0.001 and group["weight_decay"] == 0.0
            else:
                assert group["initial_lr"] == 0.01
    assert seen == {id(p) for p in module.parameters()}
    assert module.ssm_parameter_count() == sum(p.numel() for p in module.parameters() if id(p) in ssm_ids)


def test_retrieval_forward_and_bad_arguments() -> None:
    module = _module("retrieval")
    batch = {
        "x1": torch.randint(0, 5, (2, 7)),
        "x2": torch.randint(0, 5, (2, 9)),
        "lengths1": torch.tensor([7, 4]),
        "lengths2": torch.tensor([9, 9]),
        "y": torch.tensor([0, 1]),
    }
    assert module(batch).shape == (2, 3)
    with pytest.raises(ValueError, match="task must be one of"):
        SequenceLightningModule(
            torch.nn.Linear(1, 1), 2, functools.partial(torch.optim.AdamW, lr=1.0), task="seg"
        )
    with pytest.raises(ValueError, match="optimizer must be a partial optimizer"):
        SequenceLightningModule(torch.nn.Linear(1, 1), 2, torch.optim.AdamW)
