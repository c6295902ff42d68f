"""Parameter counts of the S4 LRA experiments, computed from the released S4 architecture.

:func:`released_s4_parameter_count` counts, layer by layer, the model of S4's released LRA configs
(state-spaces/s4 ``configs/experiment/lra/s4-*.yaml`` at commit 62a14bb: S4 layers with ``n_ssm``
shared (A, P, B) copies, bidirectional, a GLU output ``Linear(H, 2H)``, batch norm) with this package's
encoder and decoder around it. The tests check that every S4 LRA experiment builds exactly that
many parameters, with the numbers stated in docs/training.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytest
from train_helpers import compose_cfg

from ssm.training.train import build_datamodule, build_module

# n_ssm and tie_dropout of S4's released LRA configs (null n_ssm: one copy per channel)
RELEASED = {
    "lra/listops-s4": {"n_ssm": 1, "tie_dropout": False},
    "lra/text-s4": {"n_ssm": 1, "tie_dropout": False},
    "lra/retrieval-s4": {"n_ssm": 1, "tie_dropout": False},
    "lra/image-s4": {"n_ssm": 1, "tie_dropout": True},
    "lra/pathfinder-s4": {"n_ssm": None, "tie_dropout": False},
    "lra/pathx-s4": {"n_ssm": None, "tie_dropout": False},
}

# the totals stated in docs/training.md ("Parameter counts")
STATED = {
    "lra/listops-s4": 814_930,
    "lra/text-s4": 874_826,
    "lra/retrieval-s4": 1_137_226,
    "lra/image-s4": 3_564_682,
    "lra/pathfinder-s4": 1_288_706,
    "lra/pathx-s4": 1_288_706,
}


def s4_layer_parameter_count(H: int, N: int, n_ssm: Optional[int], rank: int = 1, channels: int = 1,
                             bidirectional: bool = True) -> int:
    """Scalar parameters of one S4 layer of width H and state size N (N/2 complex modes)."""
    k = H if n_ssm is None else n_ssm
    M = N // 2
    count = H  # log_dt
    count += 2 * k * M  # A: log_A_real and A_imag
    count += k * M * 2  # B (complex, stored as real pairs)
    count += rank * k * M * 2  # P, the low-rank term
    count += channels * (2 if bidirectional else 1) * H * M * 2  # C, one per direction
    count += channels * H  # D
    if channels > 1:
        count += channels * H * H + H  # Linear(channels * H, H)
    return count


def released_s4_parameter_count(*, d_input: int, embedding: bool, d_model: int, n_layers: int, d_state: int,
                                n_ssm: Optional[int], prenorm: bool, num_classes: int, retrieval: bool,
                                retrieval_hidden: Optional[int] = None, rank: int = 1,
                                bidirectional: bool = True) -> int:
    """Parameters of the released S4 LRA architecture with this package's encoder and decoder.

    Per block: the S4 layer, the GLU output projection ``Linear(H, 2H)`` with bias and the norm's
    affine scale and shift (2H; batch-norm running statistics are buffers). Around the blocks:
    the encoder (``Embedding(d_input, H)`` for tokens, ``Linear(d_input, H)`` otherwise), a final
    norm with prenorm, and the decoder: ``Linear(H, classes)`` after pooling, or for retrieval the
    MLP ``Linear(4H, hidden) -> GELU -> Linear(hidden, classes)`` on ``[u, v, u*v, u-v]``.
    """
    H = d_model
    layer = s4_layer_parameter_count(H, d_state, n_ssm, rank=rank, bidirectional=bidirectional)
    block = layer + (H * 2 * H + 2 * H) + 2 * H
    encoder = d_input * H if embedding else d_input * H + H
    final_norm = 2 * H if prenorm else 0
    if retrieval:
        hidden = retrieval_hidden or H
        decoder = (4 * H * hidden + hidden) + (hidden * num_classes + num_classes)
    else:
        decoder = H * num_classes + num_classes
    return encoder + n_layers * block + final_norm + decoder


@pytest.mark.parametrize("name", list(RELEASED))
def test_s4_lra_experiment_has_the_released_architecture_count(name: str, data_root: Path,
                                                               tmp_path: Path) -> None:
    cfg = compose_cfg([f"experiment={name}", f"paths.data_dir={data_root}", f"paths.output_dir={tmp_path}"])
    assert cfg.layer._target_ == "ssm.S4"
    assert cfg.layer.n_ssm == RELEASED[name]["n_ssm"], f"{name}: n_ssm differs from S4's released config"
    assert cfg.model.tie_dropout is RELEASED[name]["tie_dropout"]
    assert cfg.layer.tie_dropout is RELEASED[name]["tie_dropout"]  # follows model.tie_dropout
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm)  # the full model: every block, as trained
    retrieval = cfg.task == "retrieval"
    expected = released_s4_parameter_count(
        d_input=int(dm.d_input), embedding=bool(dm.embedding), d_model=cfg.model.d_model,
        n_layers=cfg.model.n_layers, d_state=cfg.layer.d_state, n_ssm=cfg.layer.n_ssm,
        prenorm=cfg.model.prenorm, num_classes=int(dm.d_output), retrieval=retrieval,
        retrieval_hidden=cfg.retrieval_hidden, bidirectional=cfg.layer.bidirectional)
    got = sum(p.numel() for p in module.parameters())
    assert got == expected, f"{name}: built {got} parameters, the released architecture has {expected}"
    assert got == STATED[name], f"{name}: {got} parameters, docs/training.md states {STATED[name]}"
    H, M, k = cfg.model.d_model, cfg.layer.d_state // 2, cfg.layer.n_ssm or cfg.model.d_model
    ssm_count = cfg.model.n_layers * (H + 2 * k * M + 2 * k * M + 2 * k * M)  # log_dt; A; B; P
    assert module.ssm_parameter_count() == ssm_count
    blocks = module.model.blocks
    assert all(b.layer.n_ssm == k and b.layer.B.shape[0] == k for b in blocks)
    assert all(b.tie_dropout is b.layer.tie_dropout is RELEASED[name]["tie_dropout"] for b in blocks)


def test_count_formula_against_a_hand_count() -> None:
    """ListOps: H 256, N 4, n_ssm 1, 6 blocks, vocabulary 17, 10 classes, post-norm."""
    layer = 256 + 2 + 2 + 4 + 4 + 2 * 256 * 2 * 2 + 256  # log_dt, A (2 parts), B, P, C (2 directions), D
    block = layer + (256 * 512 + 512) + 512
    assert released_s4_parameter_count(
        d_input=17, embedding=True, d_model=256, n_layers=6, d_state=4, n_ssm=1, prenorm=False,
        num_classes=10, retrieval=False) == 17 * 256 + 6 * block + (256 * 10 + 10) == STATED["lra/listops-s4"]
