"""ssm.param_groups: SSM parameters get their own lr and no weight decay; every parameter once."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import pytest
import torch

import ssm
from ssm.layers.base import tag_ssm_param
from ssm.training.optim import ssm_param_names


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


def _names_in(model, group):
    return {n for n, p in model.named_parameters() if any(p is q for q in group["params"])}


@pytest.mark.parametrize("family", [ssm.S4, ssm.S4D, ssm.DSS, ssm.S5])
def test_dt_lr_gives_timesteps_their_own_group(family):
    model = ssm.SequenceModel(3, 8, 2, 2, layer=functools.partial(family, d_state=8))
    groups = ssm.param_groups(model, lr=1e-2, weight_decay=0.05, ssm_lr=1e-3, ssm_weight_decay=0.1,
                              dt_lr=1e-2)
    by_name = {g["name"]: g for g in groups}
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    dt_names = _names_in(model, by_name["dt"])
    assert dt_names == {f"blocks.{i}.layer.log_dt" for i in range(2)}
    assert by_name["dt"]["lr"] == 1e-2 and by_name["dt"]["weight_decay"] == 0.0
    assert by_name["ssm"]["lr"] == 1e-3 and by_name["ssm"]["weight_decay"] == 0.1
    assert not any(n.endswith("log_dt") for n in _names_in(model, by_name["ssm"]))
    # without dt_lr the timesteps stay in the ssm group (the earlier behaviour)
    old = {g["name"]: g for g in ssm.param_groups(model, lr=1e-2, weight_decay=0.05, ssm_lr=1e-3)}
    assert "dt" not in old and dt_names <= _names_in(model, old["ssm"])


def test_dt_lr_is_applied_by_the_optimizer():
    """One AdamW step with dt_lr = 0 leaves log_dt unchanged while the other SSM parameters move."""
    torch.manual_seed(0)
    model = ssm.SequenceModel(3, 8, 2, 1, layer=functools.partial(ssm.S4D, d_state=8))
    layer = model.blocks[0].layer
    before_dt, before_A = layer.log_dt.detach().clone(), layer.A_imag.detach().clone()
    opt = torch.optim.AdamW(ssm.param_groups(model, lr=1e-2, weight_decay=0.0, ssm_lr=1e-2, dt_lr=0.0))
    model(torch.randn(2, 5, 3)).square().sum().backward()
    assert layer.log_dt.grad.abs().max() > 0
    opt.step()
    torch.testing.assert_close(layer.log_dt.detach(), before_dt, atol=0, rtol=0)
    assert (layer.A_imag.detach() - before_A).abs().max() > 1e-4


def test_dt_group_tag_copies_and_bad_dt_lr():
    model = ssm.SequenceModel(3, 8, 2, 1, layer=functools.partial(ssm.S4D, d_state=8))
    layer = model.blocks[0].layer
    layer.register_ssm_param("step_size", torch.zeros(8), group="dt")  # a timestep of another name
    clone = copy.deepcopy(model)  # the tensor tag is dropped; the module's record is kept
    for m in (model, clone):
        by_name = {g["name"]: g for g in ssm.param_groups(m, lr=0.1, weight_decay=0.0, dt_lr=0.5)}
        assert _names_in(m, by_name["dt"]) == {"blocks.0.layer.log_dt", "blocks.0.layer.step_size"}
    for bad in (-1.0, float("nan"), float("inf"), "0.1", True):
        with pytest.raises(ValueError, match="dt_lr"):
            ssm.param_groups(model, lr=0.1, weight_decay=0.0, dt_lr=bad)


def _compose(name, *overrides):
    """The training config of experiment ``name`` as ``ssm-train`` composes it."""
    from hydra import compose, initialize_config_dir

    config_dir = str(Path(__file__).resolve().parents[2] / "configs")
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        return compose("train", overrides=[f"experiment={name}", "paths.output_dir=.", *overrides])


def _optimizer_groups(cfg, family):
    """(module, {group name: group}) of the AdamW that the Lightning module builds from ``cfg``
    for a one-block model of ``family``."""
    from hydra.utils import instantiate

    from ssm.training.lit_module import SequenceLightningModule

    model = ssm.SequenceModel(3, 8, 2, 1, layer=functools.partial(family, d_state=8))
    module = SequenceLightningModule(model, 2, instantiate(cfg.optimizer), None, ssm_lr=cfg.ssm_lr,
                                     ssm_weight_decay=cfg.ssm_weight_decay)
    opt = module.configure_optimizers()
    assert isinstance(opt, torch.optim.AdamW)
    return module, {g["name"]: g for g in opt.param_groups}


@pytest.mark.parametrize("name,dt_at_global_lr", [
    ("lra/listops-s4", True), ("lra/text-s4d", True), ("lra/retrieval-dss", True),
    ("lra/listops-s4-ptd", True), ("lra/image-s4", False), ("lra/listops-s5", False),
])
def test_configs_wire_dt_lr_into_the_optimizer_groups(name, dt_at_global_lr):
    """S4's ListOps/Text/Retrieval configs train dt at the global lr: the composed config sets
    optimizer.dt_lr to optimizer.lr, and the Lightning module's optimizer gets that group."""
    from ssm.training.train import validate_config

    cfg = _compose(name)
    validate_config(cfg)
    assert (cfg.optimizer.dt_lr == cfg.optimizer.lr) if dt_at_global_lr else cfg.optimizer.dt_lr is None
    module, by_name = _optimizer_groups(cfg, ssm.S4D)
    assert by_name["ssm"]["lr"] == cfg.ssm_lr
    if dt_at_global_lr:
        assert by_name["dt"]["lr"] == cfg.optimizer.lr != cfg.ssm_lr
        assert by_name["dt"]["weight_decay"] == 0.0
        assert {n for n, p in module.named_parameters() if any(p is q for q in by_name["dt"]["params"])} \
            == {"model.blocks.0.layer.log_dt"}
    else:
        assert "dt" not in by_name


@pytest.mark.parametrize("family", [ssm.S4, ssm.S4D, ssm.S5])
def test_regular_ssm_params_train_as_the_other_parameters(family):
    """regular_ssm_params=["B"] puts every B (>= 2 dims) in the decay group at lr; the rest stay."""
    model = ssm.SequenceModel(3, 8, 2, 2, layer=functools.partial(family, d_state=8))
    groups = ssm.param_groups(model, lr=1e-2, weight_decay=0.05, ssm_lr=1e-3, regular_ssm_params=["B"])
    by_name = {g["name"]: g for g in groups}
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    b_names = {f"blocks.{i}.layer.B" for i in range(2)}
    assert b_names <= _names_in(model, by_name["decay"])
    assert by_name["decay"]["lr"] == 1e-2 and by_name["decay"]["weight_decay"] == 0.05
    ssm_names = _names_in(model, by_name["ssm"])
    assert not ssm_names & b_names
    default = _names_in(model, {g["name"]: g for g in ssm.param_groups(model, lr=1e-2, weight_decay=0.05,
                                                                         ssm_lr=1e-3)}["ssm"])
    assert ssm_names == default - b_names and b_names <= default


def test_regular_ssm_params_are_applied_by_the_optimizer():
    """With ssm_lr = 0, one AdamW step moves S5's B (now at lr) and leaves Lambda and dt unchanged."""
    torch.manual_seed(0)
    model = ssm.SequenceModel(3, 8, 2, 1, layer=functools.partial(ssm.S5, d_state=8))
    layer = model.blocks[0].layer
    before = {n: p.detach().clone() for n, p in layer.named_parameters(recurse=False)}
    opt = torch.optim.AdamW(ssm.param_groups(model, lr=1e-2, weight_decay=0.0, ssm_lr=0.0,
                                             regular_ssm_params=["B"]))
    model(torch.randn(2, 5, 3)).square().sum().backward()
    opt.step()
    moved = {n for n, p in layer.named_parameters(recurse=False) if not torch.equal(p.detach(), before[n])}
    tagged = set(ssm_param_names(layer))
    assert "B" in moved and not (moved & tagged) - {"B"}


def test_bad_regular_ssm_params():
    model = ssm.SequenceModel(3, 8, 2, 1, layer=functools.partial(ssm.S4D, d_state=8))
    for bad, match in (("B", "list of parameter names"), ([1], "list of parameter names"),
                       (["B", "Lambda"], r"\['Lambda'\] name no SSM parameter"),
                       (["encoder.weight"], "name no SSM parameter")):
        with pytest.raises(ValueError, match=r"regular_ssm_params.*" + match):
            ssm.param_groups(model, lr=0.1, weight_decay=0.0, regular_ssm_params=bad)
    with pytest.raises(ValueError, match="regular_ssm_params must be a list"):
        ssm.param_groups(model, lr=0.1, weight_decay=0.0, regular_ssm_params=3)
    assert ssm.param_groups(model, lr=0.1, weight_decay=0.0, regular_ssm_params=[]) == \
        ssm.param_groups(model, lr=0.1, weight_decay=0.0)
    as_list = ssm.param_groups(model, lr=0.1, weight_decay=0.0, regular_ssm_params=["B"])
    once = ssm.param_groups(model, lr=0.1, weight_decay=0.0, regular_ssm_params=(n for n in ["B"]))
    assert [[id(p) for p in g["params"]] for g in once] == [[id(p) for p in g["params"]] for g in as_list]
    assert "blocks.0.layer.B" in _names_in(model, {g["name"]: g for g in once}["decay"])


@pytest.mark.parametrize("name,regular", [
    ("lra/listops-s5", ["B"]), ("lra/image-s5-ptd", ["B"]), ("lra/pathfinder-s5", None),
    ("sfmnist-s5", None),
])
def test_configs_wire_regular_ssm_params(name, regular):
    """S5's released ListOps and image scripts train B at the global lr (opt_config=BfastandCdecay):
    the composed config names it and the Lightning module's optimizer puts it in the decay group."""
    from ssm.training.config import ConfigError, validate_config

    cfg = _compose(name)
    validate_config(cfg)
    with pytest.raises(ConfigError, match="optimizer.regular_ssm_params must be a list"):
        validate_config(_compose(name, "optimizer.regular_ssm_params=B"))
    got = cfg.optimizer.regular_ssm_params
    assert (None if got is None else list(got)) == regular
    module, by_name = _optimizer_groups(cfg, ssm.S5)
    in_decay = {n for n, p in module.named_parameters() if any(p is q for q in by_name["decay"]["params"])}
    assert ("model.blocks.0.layer.B" in in_decay) == (regular == ["B"])
