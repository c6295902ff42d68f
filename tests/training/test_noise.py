"""The PTD study's Fourier-mode noise: its formula, its injection into every SSM layer, and ssm-eval."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from train_helpers import TINY, compose_cfg

import ssm
from ssm.training.evaluate import evaluate_checkpoint
from ssm.training.evaluate import main as eval_main
from ssm.training.noise import FourierNoise, fourier_noise, layer_time_unit
from ssm.training.train import run


def test_fourier_noise_matches_the_formula_elementwise() -> None:
    B, L, H = 2, 5, 3
    dt = torch.tensor([0.01, 0.1, 0.003], dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    noise = fourier_noise((B, L, H), dt, amplitude=0.3, omega=325.4, generator=g, dtype=torch.float64)
    r = torch.rand((B, 1, H), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    for b in range(B):
        for k in range(L):
            for h in range(H):
                expected = 0.3 * r[b, 0, h].item() * math.cos(325.4 * k * dt[h].item())
                assert noise[b, k, h].item() == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ssm.S4D(d_model=4, d_state=8),
        lambda: ssm.S4(d_model=4, d_state=8),
        lambda: ssm.S4D(d_model=4, d_state=8, transposed=True),
        lambda: ssm.S5(d_model=4, d_state=8, blocks=2),
    ],
)
def test_noise_is_added_to_each_layer_input(make) -> None:
    torch.manual_seed(0)
    layer = make()
    model = torch.nn.Sequential(layer)
    x = torch.randn(3, 6, 4)
    if layer.transposed:
        x = x.transpose(1, 2)
    seen = {}
    clean = layer(x)
    with FourierNoise(model, amplitude=0.2, omega=50.0, seed=9):
        # registered after the noise hook, so it sees the input the layer computes with
        handle = layer.register_forward_pre_hook(lambda mod, args: seen.__setitem__("x", args[0]))
        noisy = layer(x)
        handle.remove()
    dt = layer_time_unit(layer)
    expected = fourier_noise((3, 6, 4), dt, 0.2, 50.0, generator=torch.Generator().manual_seed(9))
    if layer.transposed:
        expected = expected.transpose(1, 2)
    torch.testing.assert_close(seen["x"], x + expected)
    assert not torch.allclose(noisy, clean)
    torch.testing.assert_close(layer(x), clean)  # the hooks are gone after the block
    if isinstance(layer, ssm.S5):  # one dt per state: the layer's geometric-mean dt on every channel
        torch.testing.assert_close(dt, torch.exp(torch.log(layer.timestep()).mean()).expand(4))
    elif isinstance(layer, ssm.DSS) and layer.sep_dt_re_im:  # geometric mean of the two per channel
        torch.testing.assert_close(dt, torch.sqrt(layer.timestep()[:, 0] * layer.timestep()[:, 1]))
    else:
        torch.testing.assert_close(dt, layer.timestep())


def test_zero_amplitude_changes_nothing() -> None:
    layer = ssm.S4D(d_model=4, d_state=8)
    x = torch.randn(2, 7, 4)
    with FourierNoise(torch.nn.Sequential(layer), amplitude=0.0, omega=325.4):
        torch.testing.assert_close(layer(x), layer(x))
    with pytest.raises(ValueError, match="no SSM layer"):
        FourierNoise(torch.nn.Linear(2, 2), 0.1, 1.0)


def test_ssm_eval_writes_table_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = compose_cfg(
        [
            f"paths.output_dir={out}",
            *TINY,
            "layer.d_state=4",
            "data.batch_size=64",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=3",
        ]
    )
    result = run(cfg)
    ckpt = out / "checkpoints" / "last.ckpt"
    rows = evaluate_checkpoint(ckpt, [0.0, 5.0], omega=325.4, accelerator="cpu")
    assert rows[0]["test_acc"] == pytest.approx(result["test"]["test/acc"])  # no noise: the clean accuracy
    assert rows[1]["test_loss"] != rows[0]["test_loss"]
    eval_main([str(ckpt), "--amplitudes", "0", "0.5", "--out", str(tmp_path / "rob"), "--accelerator", "cpu"])
    with open(tmp_path / "rob" / "robustness.csv") as f:
        table = list(csv.DictReader(f))
    assert [float(r["amplitude"]) for r in table] == [0.0, 0.5]
    assert (tmp_path / "rob" / "robustness.png").stat().st_size > 1000
    assert "| 0.5 | 325.4 |" in (tmp_path / "rob" / "robustness.md").read_text()
