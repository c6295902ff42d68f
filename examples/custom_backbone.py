"""A custom backbone built from the layers: mixed families, a gated block of your own, a recurrent step.

``ssm.SequenceModel`` covers the S4 architecture; anything else is a few lines of PyTorch around the
layers, which are ordinary ``nn.Module``s mapping (B, L, H) -> (B, L, H) with a ``step`` for
recurrent use. This script builds

    Embedding -> Block(S4D) -> GatedSSM(S5) -> Block(S4) -> LayerNorm -> Linear  (per-token outputs)

where ``ssm.layers.Block`` is the package's residual block (norm, SSM, GELU, GLU projection) and
``GatedSSM`` is written here (a multiplicative gate around the SSM, as in H3/Mamba-style blocks). It
trains the model on a task that needs memory (at every step, predict the token seen ``lag`` steps
earlier), with ``ssm.param_groups`` for the optimizer, then checks that running it token by token
(``step``) gives the same outputs as the whole-sequence forward pass.

    python examples/custom_backbone.py
    python examples/custom_backbone.py --tiny      # a few seconds (the smoke test CI runs)
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch import nn

import ssm
from ssm.layers import Block


class GatedSSM(nn.Module):
    """x + out(SSM(norm(x)) * sigmoid(gate(norm(x)))): a gated residual block of our own."""

    def __init__(self, d_model: int, layer: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.layer = layer
        self.gate = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.norm(x)
        return x + self.out(self.layer(z) * torch.sigmoid(self.gate(z)))

    def default_state(self, batch_size: int):
        return self.layer.default_state(batch_size)

    def step(self, x_t: torch.Tensor, state):
        z = self.norm(x_t)
        y, state = self.layer.step(z, state)  # (B, H) -> (B, H): one step of the recurrence
        return x_t + self.out(y * torch.sigmoid(self.gate(z))), state


class CustomBackbone(nn.Module):
    def __init__(self, vocab: int, d_model: int, d_state: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.blocks = nn.ModuleList([
            Block(d_model, ssm.S4D(d_model, d_state, init="legs"), prenorm=True),
            GatedSSM(d_model, ssm.S5(d_model, d_state, blocks=2)),
            Block(d_model, ssm.S4(d_model, d_state), prenorm=True),
        ])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens -> (B, L, vocab) logits."""
        h = self.embed(tokens)
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h))

    def default_state(self, batch_size: int) -> list:
        return [block.default_state(batch_size) for block in self.blocks]

    def step(self, token: torch.Tensor, state: list) -> tuple[torch.Tensor, list]:
        """(B,) tokens -> (B, vocab) logits for this position, and the next state."""
        h, new_state = self.embed(token), []
        for block, s in zip(self.blocks, state):
            h, s = block.step(h, s)
            new_state.append(s)
        return self.head(self.norm(h)), new_state


def batch(size: int, length: int, vocab: int, lag: int, gen: torch.Generator):
    x = torch.randint(0, vocab, (size, length), generator=gen)
    y = torch.full_like(x, -100)  # -100: no target (ignored by cross_entropy) before step `lag`
    y[:, lag:] = x[:, :-lag]
    return x, y


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="tiny sizes and few steps (a smoke test)")
    args = p.parse_args(argv)
    sizes = (4, 8, 8, 16, 3, 10) if args.tiny else (8, 64, 64, 128, 16, 300)
    vocab, d_model, d_state, length, lag, steps = sizes

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = CustomBackbone(vocab, d_model, d_state)
    print(f"{sum(p.numel() for p in model.parameters())} parameters")
    optimizer = torch.optim.AdamW(ssm.param_groups(model, lr=3e-3, weight_decay=0.05, ssm_lr=1e-3))
    x_val, y_val = batch(64, length, vocab, lag, torch.Generator().manual_seed(1))
    for step in range(1, steps + 1):
        model.train()
        x, y = batch(16, length, vocab, lag, gen)
        loss = nn.functional.cross_entropy(model(x).transpose(1, 2), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % max(1, steps // 5) == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                pred = model(x_val).argmax(-1)
            acc = (pred == y_val)[y_val >= 0].float().mean().item()
            print(f"step {step:4d}  loss {loss.item():.3f}  val accuracy {acc:.3f}  (chance {1 / vocab:.3f})")

    # Recurrent mode: the same logits, one token at a time (eval mode: no dropout).
    model.eval()
    with torch.no_grad():
        full = model(x_val[:2])
        state, outs = model.default_state(2), []
        for t in range(length):
            logits, state = model.step(x_val[:2, t], state)
            outs.append(logits)
    err = (torch.stack(outs, 1) - full).abs().max().item() / full.abs().max().item()
    ok = err < 1e-4  # float32
    print(f"token-by-token vs full forward: max relative difference {err:.1e} ({'ok' if ok else 'MISMATCH'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
