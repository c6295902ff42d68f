"""``tie_dropout``: one dropout mask per (batch, channel), shared along the sequence."""

from __future__ import annotations

import functools

import pytest
import torch

import ssm
from layer_cases import rel_err
from ssm.layers import Block
from ssm.layers.base import TiedDropout
from ssm.models import ModelConfig

P_DROP = 0.5
B, L, H = 4, 24, 8
LAYERS = {
    "s4": functools.partial(ssm.S4, d_state=8),
    "s4d": functools.partial(ssm.S4D, d_state=8, n_ssm=2),
    "dss": functools.partial(ssm.DSS, d_state=8),
    "s5": functools.partial(ssm.S5, d_state=8, blocks=2),  # core layout (B, L, H)
}


def _zeros(y: torch.Tensor, seq_dim: int) -> torch.Tensor:
    """(B, H, L) bool: where y is exactly zero, with the length last."""
    z = y == 0
    return z if seq_dim == 2 else z.transpose(1, 2)


def _tied(z: torch.Tensor) -> bool:
    """Every (b, h) row of z (B, H, L) is all True or all False."""
    return bool((z.all(-1) | (~z).all(-1)).all())


@pytest.mark.parametrize("transposed", [False, True], ids=["BLH", "BHL"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_mask_is_constant_along_the_sequence(name, transposed):
    torch.manual_seed(0)
    layer = LAYERS[name](H, dropout=P_DROP, tie_dropout=True, transposed=transposed)
    plain = LAYERS[name](H, transposed=transposed)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(B, H, L) if transposed else torch.randn(B, L, H)
    seq_dim = 2 if transposed else 1
    layer.train()
    y = layer(x)
    ref = plain(x)  # the same layer without dropout
    assert (ref != 0).all()
    z = _zeros(y, seq_dim)
    assert _tied(z), f"{name}: the zero pattern varies along L"
    dropped = z.all(-1)
    assert 0 < int(dropped.sum()) < B * H, "expected some dropped and some kept (batch, channel) pairs"
    kept = y != 0
    scale = y[kept] / ref[kept]
    assert torch.allclose(scale, torch.full_like(scale, 1 / (1 - P_DROP)), rtol=1e-5), "scaled by 1/(1-p)"
    layer.eval()
    assert torch.equal(layer(x), plain.eval()(x)), "eval mode: dropout is the identity"


@pytest.mark.parametrize("name", list(LAYERS))
def test_untied_layer_dropout_varies_along_the_sequence(name):
    torch.manual_seed(0)
    layer = LAYERS[name](H, dropout=P_DROP).train()
    assert not layer.tie_dropout and isinstance(layer.dropout, torch.nn.Dropout)
    z = _zeros(layer(torch.randn(B, L, H)), 1)
    assert not _tied(z)


@pytest.mark.parametrize("name", ["s4", "s4d", "dss", "s5"])
def test_step_mode_draws_a_mask_per_batch_and_channel_on_every_call(name):
    torch.manual_seed(0)
    layer = LAYERS[name](H, dropout=P_DROP, tie_dropout=True)
    plain = LAYERS[name](H)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(B, L, H)
    s, s_ref, masks = layer.default_state(B), plain.default_state(B), []
    layer.train()
    for t in range(6):
        y, s = layer.step(x[:, t], s)
        y_ref, s_ref = plain.step(x[:, t], s_ref)
        assert y.shape == (B, H)
        kept = y != 0
        assert torch.allclose(y[kept], y_ref[kept] / (1 - P_DROP), rtol=1e-5)
        masks.append(kept)
    assert any(not torch.equal(masks[0], m) for m in masks[1:]), "each step draws its own mask"
    assert rel_err(s, s_ref) < 1e-6, "dropout acts on the output, never on the state"
    layer.eval()
    assert torch.equal(layer.step(x[:, 0], layer.default_state(B))[0],
                       plain.eval().step(x[:, 0], plain.default_state(B))[0])


def test_tied_dropout_module():
    torch.manual_seed(0)
    drop = TiedDropout(0.25, seq_dim=1)
    x = torch.ones(64, 50, 32, dtype=torch.float64)
    y = drop(x)
    assert set(y.unique().tolist()) == {0.0, 1 / 0.75}  # kept entries scaled by 1/(1-p)
    assert _tied(_zeros(y, 1))
    assert abs(y.mean().item() - 1.0) < 0.05  # E[mask] = 1
    y2 = TiedDropout(0.25, seq_dim=2)(x)
    assert _tied(_zeros(y2, 2)) and not _tied(_zeros(y2, 1))
    one = drop(torch.ones(64, 32, dtype=torch.float64))  # one token: one entry per (batch, channel)
    assert one.shape == (64, 32) and set(one.unique().tolist()) == {0.0, 1 / 0.75}
    drop.eval()
    assert torch.equal(drop(x), x)
    with pytest.raises(ValueError, match="dropout must be in"):
        TiedDropout(1.0, seq_dim=1)
    with pytest.raises(ValueError, match="seq_dim must be 1"):
        TiedDropout(0.1, seq_dim=0)
    with pytest.raises(ValueError, match="got shape"):
        TiedDropout(0.1, seq_dim=1).train()(torch.ones(2, 3, 4, 5))


def _capture(module: torch.nn.Module) -> list:
    outs: list = []
    module.register_forward_hook(lambda m, i, o: outs.append(o.detach()))
    return outs


def test_block_and_model_tie_their_dropout():
    torch.manual_seed(0)
    block = Block(H, ssm.S4D(H, 8), dropout=P_DROP, tie_dropout=True).train()
    assert isinstance(block.drop, TiedDropout)
    outs = _capture(block.drop)
    block(torch.randn(B, L, H))
    assert len(outs) == 2  # after the activation and on the residual branch
    for y in outs:
        assert _tied(_zeros(y, 1)) and (y == 0).any()
    untied = Block(H, ssm.S4D(H, 8), dropout=P_DROP).train()
    outs = _capture(untied.drop)
    untied(torch.randn(B, L, H))
    assert not _tied(_zeros(outs[-1], 1))
    # step mode (training): one token, a mask per (batch, channel)
    outs = _capture(block.drop)
    y_t, _ = block.step(torch.randn(B, H), block.default_state(B))
    assert y_t.shape == (B, H) and outs[-1].shape == (B, H)

    model = ssm.SequenceModel(3, H, 2, 2, layer=functools.partial(ssm.S4D, d_state=8), dropout=0.2,
                              tie_dropout=True)
    assert all(b.tie_dropout and isinstance(b.drop, TiedDropout) for b in model.blocks)
    cfg_model = ModelConfig(d_input=3, d_output=2, d_model=H, n_layers=1, dropout=0.2,
                            tie_dropout=True).build()
    assert isinstance(cfg_model.blocks[0].drop, TiedDropout)
    model.eval()
    x = torch.randn(2, 10, 3)
    no_drop = ssm.SequenceModel(3, H, 2, 2, layer=functools.partial(ssm.S4D, d_state=8)).eval()
    no_drop.load_state_dict(model.state_dict())
    assert torch.equal(model(x), no_drop(x)), "eval mode: dropout is the identity"


def test_bad_tie_dropout_raises_clear_errors():
    for bad in ("yes", 1, None):
        with pytest.raises(TypeError, match=r"tie_dropout must be a bool \(True or False\), got"):
            ssm.S4(H, 8, tie_dropout=bad)
        with pytest.raises(TypeError, match="tie_dropout must be a bool"):
            ssm.S5(H, 8, tie_dropout=bad)
        with pytest.raises(TypeError, match="tie_dropout must be a bool"):
            Block(H, ssm.S4D(H, 8), tie_dropout=bad)
        with pytest.raises(TypeError, match="tie_dropout must be a bool"):
            ssm.SequenceModel(3, H, 2, 1, layer=ssm.S4D, tie_dropout=bad)
