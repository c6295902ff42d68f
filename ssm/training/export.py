"""Export the model of an ``ssm-train`` checkpoint as a weights-only file (format ``ssm-weights/1``).

The weights file holds the model's plain config and its ``state_dict`` (no optimizer, no Lightning
state), reads back with ``ssm.SequenceModel.from_checkpoint(path)`` and needs only torch, einops and
numpy to load. Format: ssm/models/weights.py. Torch-only: no Lightning or Hydra import.

    python -m ssm.training.export runs/<name>/<time>/checkpoints/best-*.ckpt model.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from ssm.models.weights import CheckpointError, build_from_config, read_model_file, save_weights

__all__ = ["export_weights", "main"]


def export_weights(checkpoint: Union[str, Path], out: Union[str, Path],
                   metadata: Optional[dict[str, Any]] = None) -> Path:
    """Write the model of ``checkpoint`` (an ``ssm-train`` ``.ckpt``) to the weights-only file ``out``.

    Args:
        checkpoint: a checkpoint written by ``ssm-train`` (integrity-checked before it is read).
        out: the weights file to write (its folder is created).
        metadata: plain values stored with the weights (merged over the checkpoint's experiment, seed,
            epoch and step).
    Returns:
        ``out`` as a Path.
    """
    config, state, meta = read_model_file(checkpoint)
    model = build_from_config(config)
    model.load_state_dict(state)  # proves that config and weights fit before anything is written
    return save_weights(model, out, {**meta, **(metadata or {})})


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m ssm.training.export CKPT OUT``."""
    parser = argparse.ArgumentParser(prog="python -m ssm.training.export",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="checkpoint written by ssm-train (.ckpt)")
    parser.add_argument("out", help="weights file to write (e.g. model.pt)")
    args = parser.parse_args(argv)
    try:
        path = export_weights(args.checkpoint, args.out)
    except (CheckpointError, FileNotFoundError) as err:
        print(f"export: error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"export: wrote {path} (load with ssm.SequenceModel.from_checkpoint)")


if __name__ == "__main__":
    main()
