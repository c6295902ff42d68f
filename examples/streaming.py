"""Streaming inference: chunk by chunk and token by token, checked against one full convolution.

An SSM layer is a linear recurrence, so a long or endless input can be processed in pieces: pass the
state returned by one call into the next. Two ways, which can be mixed freely (they share the state):

- chunks: ``y, state = layer(chunk, state=state, return_state=True)``, any chunk lengths;
- tokens: ``y_t, state = layer.step(x_t, state)``, O(H N) per token, independent of the position.

Both must give what one ``layer(x)`` over the whole sequence gives; this script checks that for each
layer family and for a whole ``SequenceModel`` (``model.step``), and exits with status 1 if not.

    python examples/streaming.py
    python examples/streaming.py --tiny       # small sizes (the smoke test CI runs)
"""

from __future__ import annotations

import argparse
import functools
import sys

import torch

import ssm

# float64 makes the comparison exact up to rounding; float32 agrees to about 1e-5 relative.
DTYPE = torch.float64
TOL = 1e-8


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-30)).item()


def stream_layer(layer: torch.nn.Module, x: torch.Tensor, chunk_lengths: list[int]) -> dict[str, float]:
    """Errors of chunked and token-by-token runs against the full convolution ``layer(x)``."""
    batch, length, _ = x.shape
    with torch.no_grad():
        full = layer(x)

        # Chunk by chunk (chunks of different lengths).
        state, outputs, start = layer.default_state(batch), [], 0
        for n in chunk_lengths:
            y, state = layer(x[:, start:start + n], state=state, return_state=True)
            outputs.append(y)
            start += n
        chunked = torch.cat(outputs, dim=1)

        # Token by token.
        state, outputs = layer.default_state(batch), []
        for t in range(length):
            y_t, state = layer.step(x[:, t], state)  # (batch, d_model) -> (batch, d_model)
            outputs.append(y_t)
        stepped = torch.stack(outputs, dim=1)
    return {"chunks": rel_err(chunked, full), "steps": rel_err(stepped, full)}


def stream_model(model: ssm.SequenceModel, x: torch.Tensor) -> float:
    """Error of a whole model run token by token (``model.step``) against ``model(x)``."""
    with torch.no_grad():
        full = model(x)
        state, outputs = model.default_state(x.shape[0]), []
        for t in range(x.shape[1]):
            y_t, state = model.step(x[:, t], state)
            outputs.append(y_t)
    return rel_err(torch.stack(outputs, dim=1), full)


def chunk_plan(length: int) -> list[int]:
    """Uneven chunk lengths that add up to ``length`` (1, 2, 3, ... and the rest)."""
    plan, n = [], 1
    while sum(plan) + n < length:
        plan.append(n)
        n += 1
    return plan + [length - sum(plan)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="small sizes (a smoke test)")
    args = p.parse_args(argv)
    batch, length, d_model, d_state = (2, 24, 4, 8) if args.tiny else (4, 512, 64, 64)
    torch.manual_seed(0)
    x = torch.randn(batch, length, d_model, dtype=DTYPE)
    layers = {
        "S4": ssm.S4(d_model, d_state),
        "S4D": ssm.S4D(d_model, d_state, init="inv"),
        "S4D-PTD": ssm.S4D(d_model, d_state, init="ptd"),
        "DSS": ssm.DSS(d_model, d_state, variant="exp"),
        "S5": ssm.S5(d_model, d_state, blocks=2),
    }
    failed = False
    plan = chunk_plan(length)
    print(f"batch {batch}, length {length}, d_model {d_model}, d_state {d_state}; chunks {plan}")
    for name, layer in layers.items():
        layer = layer.to(DTYPE).eval()  # eval: no dropout
        errs = stream_layer(layer, x, plan)
        ok = all(e < TOL for e in errs.values())
        failed |= not ok
        print(f"  {name:8} chunks vs full {errs['chunks']:.1e}   steps vs full {errs['steps']:.1e}   "
              f"{'ok' if ok else 'MISMATCH'}")

    # A whole stack: step() needs a sequence-to-sequence model (pool=None) in eval mode.
    model = ssm.SequenceModel(3, d_model, 2, 2, layer=functools.partial(ssm.S4D, d_state=d_state),
                              pool=None).to(DTYPE).eval()
    err = stream_model(model, torch.randn(batch, length, 3, dtype=DTYPE))
    failed |= not err < TOL
    print(f"  SequenceModel (2 blocks) steps vs full {err:.1e}   {'ok' if err < TOL else 'MISMATCH'}")
    print("all agree" if not failed else "some streaming outputs differ from the full convolution")
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
