"""The residual block: layout, GLU, norms (batch statistics over valid tokens), masking, step."""

from __future__ import annotations

import pytest
import torch

import ssm
from layer_cases import rel_err
from ssm.layers.block import Block


def _block(**kw):
    return Block(4, ssm.S4D(4, 8, init="inv"), **kw).double()


def test_block_matches_its_definition():
    blk = _block(glu=True, norm="layer", prenorm=False).eval()
    x = torch.randn(2, 11, 4, dtype=torch.float64)
    z = torch.nn.functional.glu(blk.proj(torch.nn.functional.gelu(blk.layer(x))), dim=-1)
    assert rel_err(blk(x), blk.norm.norm(x + z)) < 1e-12
    pre = _block(glu=False, norm="layer", prenorm=True).eval()
    z = pre.proj(torch.nn.functional.gelu(pre.layer(pre.norm.norm(x))))
    assert rel_err(pre(x), x + z) < 1e-12


def test_batch_norm_uses_valid_tokens_only():
    blk = _block(norm="batch", prenorm=True)
    x = torch.randn(2, 9, 4, dtype=torch.float64)
    lengths = torch.tensor([9, 4])
    mask = torch.arange(9) < lengths[:, None]
    blk(x, lengths=lengths)
    valid = x[mask]
    assert rel_err(blk.norm.norm.running_mean, 0.1 * valid.mean(0)) < 1e-10


@pytest.mark.parametrize("norm", ["layer", "batch"])
@pytest.mark.parametrize("prenorm", [False, True])
def test_block_step_equals_forward(norm, prenorm):
    blk = _block(norm=norm, prenorm=prenorm)
    blk(torch.randn(4, 9, 4, dtype=torch.float64))  # batch-norm running statistics
    blk.eval()
    x = torch.randn(2, 13, 4, dtype=torch.float64)
    s, ys = blk.default_state(2), []
    for t in range(13):
        y, s = blk.step(x[:, t], s)
        ys.append(y)
    assert rel_err(torch.stack(ys, 1), blk(x)) < 1e-10


def test_padded_positions_are_zero_and_errors():
    blk = _block()
    x = torch.randn(2, 7, 4, dtype=torch.float64)
    y = blk(x, lengths=torch.tensor([7, 3]))
    assert torch.all(y[1, 3:] == 0)
    with pytest.raises(ValueError, match="activation"):
        Block(4, ssm.S4D(4, 8), activation="swish2")
    with pytest.raises(ValueError, match="transposed"):
        Block(4, ssm.S4D(4, 8, transposed=True))
    bn = Block(4, ssm.S4D(4, 8), norm="batch")
    with pytest.raises(RuntimeError, match="eval"):
        bn.step(torch.randn(2, 4), bn.default_state(2))
