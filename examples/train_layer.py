"""One SSM layer in a plain PyTorch training loop (no Lightning, no Hydra).

The task needs memory over a long range: the target at step t is the input from ``delay`` steps
earlier, y[t] = u[t - delay] (zero before the start). A pointwise model cannot do better than
predicting 0 (loss = the input's variance, 1.0); an S4D layer learns the delay as part of its
convolution kernel. The model is Linear -> S4D -> GELU -> Linear, trained with AdamW on the two
parameter groups of ``ssm.param_groups`` (the SSM parameters get their own learning rate and no
weight decay, as in S4), then saved as a plain state_dict.

    python examples/train_layer.py            # a few minutes on a CPU
    python examples/train_layer.py --tiny     # a few seconds: the smoke test CI runs
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch import nn

import ssm


class DelayModel(nn.Module):
    """(B, L, 1) -> (B, L, 1): an encoder, one S4D layer with a pointwise nonlinearity, a decoder."""

    def __init__(self, d_model: int, d_state: int) -> None:
        super().__init__()
        self.encoder = nn.Linear(1, d_model)
        self.ssm = ssm.S4D(d_model=d_model, d_state=d_state, init="legs")  # (B, L, H) -> (B, L, H)
        self.decoder = nn.Linear(d_model, 1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.decoder(nn.functional.gelu(self.ssm(self.encoder(u))))


def batch(size: int, length: int, delay: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    u = torch.randn(size, length, 1, generator=gen)
    y = torch.zeros_like(u)
    y[:, delay:] = u[:, :-delay]
    return u, y


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="tiny sizes and few steps (a smoke test)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--out", default=None, help="where to save the state_dict (default: a temporary folder)")
    args = p.parse_args(argv)
    d_model, d_state, length, delay, steps = (8, 8, 32, 4, 30) if args.tiny else (32, 64, 256, 32, 400)
    steps = args.steps or steps

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = DelayModel(d_model, d_state)
    groups = ssm.param_groups(model, lr=3e-3, weight_decay=0.01, ssm_lr=1e-3)
    optimizer = torch.optim.AdamW(groups)
    u_val, y_val = batch(64, length, delay, torch.Generator().manual_seed(1))

    for step in range(1, steps + 1):
        model.train()
        u, y = batch(16, length, delay, gen)
        loss = nn.functional.mse_loss(model(u), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % max(1, steps // 5) == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                val = nn.functional.mse_loss(model(u_val), y_val).item()
            print(f"step {step:4d}  train mse {loss.item():.4f}  val mse {val:.4f}  (predicting 0: 1.0)")

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp()) / "delay_model.pt"
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out)
    restored = DelayModel(d_model, d_state).eval()
    restored.load_state_dict(torch.load(out, weights_only=True))
    with torch.no_grad():
        assert torch.equal(restored(u_val), model.eval()(u_val)), "the saved state_dict did not restore"
    print(f"saved the state_dict to {out}; final val mse {val:.4f}")
    return val


if __name__ == "__main__":
    main()
