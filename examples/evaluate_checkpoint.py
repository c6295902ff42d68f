"""Load a trained model and evaluate it: an ``ssm-train`` checkpoint or a weights-only file.

``ssm.SequenceModel.from_checkpoint(path)`` returns the model ready for inference (eval mode, on the
CPU unless ``map_location`` says otherwise) and needs neither Lightning nor Hydra. This script

1. trains a model with ``ssm-train`` first if no checkpoint is given (the default experiment: S4D on
   scikit-learn's 8x8 digits; ``--tiny``: one short epoch of a tiny model);
2. loads it with ``from_checkpoint`` and measures test accuracy with a plain PyTorch loop, on the
   test split of the data set stored in the checkpoint's run config;
3. compares with the test accuracy ``ssm-train`` recorded for that checkpoint (``summary.json``);
4. exports the weights-only file (``ssm.training.export_weights``: config + state_dict, no optimizer)
   and checks that it gives the same predictions.

    python examples/evaluate_checkpoint.py                         # trains the default experiment first
    python examples/evaluate_checkpoint.py --checkpoint runs/digits-s4d/<time>/checkpoints/best-*.ckpt
    python examples/evaluate_checkpoint.py --tiny                  # seconds (the smoke test CI runs)

Steps 1 and 2 need the ``[train]`` extra (ssm-train, and the data modules use Lightning's loaders).
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

import ssm
from ssm.training import export_weights

TINY = ["model.d_model=16", "model.n_layers=1", "layer.d_state=8", "trainer.max_epochs=1",
        "+trainer.limit_train_batches=3", "~logger", "callbacks.lr_monitor=null",
        "callbacks.progress_bar=null", "trainer.enable_progress_bar=false"]


def train(out: Path, tiny: bool) -> Path:
    """Run ``ssm-train`` (the default experiment) into ``out``; return its best checkpoint."""
    cmd = [sys.executable, "-m", "ssm.training.train", f"hydra.run.dir={out}", *(TINY if tiny else [])]
    print("training:", " ".join(cmd[2:]))
    subprocess.run(cmd, check=True)
    return next((out / "checkpoints").glob("best-*.ckpt"))


def data_module(checkpoint: Path, data_dir: str | None):
    """The test data of the run that wrote ``checkpoint`` (its stored ``data`` config); for a weights
    file, which stores no data config, the default experiment's digits."""
    stored = torch.load(checkpoint, map_location="cpu", weights_only=True)
    default = {"_target_": "ssm.data.digits.DigitsDataModule"}
    node = dict((stored.get("ssm_config") or {}).get("data") or default)
    target = node.pop("_target_")
    if not target.startswith("ssm.data."):
        raise SystemExit(f"unexpected data module {target!r} in {checkpoint}")
    if data_dir is not None:
        node["data_dir"] = data_dir
    module_name, _, name = target.rpartition(".")
    dm = getattr(importlib.import_module(module_name), name)(**node)
    dm.setup("test")
    return dm


@torch.no_grad()
def evaluate(model: ssm.SequenceModel, loader) -> tuple[float, torch.Tensor]:
    """Test accuracy and the predicted classes, batch by batch (batches: {"x", "y", "lengths"})."""
    correct, total, preds = 0, 0, []
    for batch in loader:
        logits = model(batch["x"], lengths=batch.get("lengths"))
        pred = logits.argmax(-1)
        correct += int((pred == batch["y"]).sum())
        total += len(pred)
        preds.append(pred)
    return correct / total, torch.cat(preds)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None,
                   help="an ssm-train .ckpt or a weights file (default: train one first)")
    p.add_argument("--data-dir", default=None, help="override the data folder stored in the checkpoint")
    p.add_argument("--tiny", action="store_true",
                   help="train a tiny model for one short epoch (a smoke test)")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="ssm-example-"))
    ckpt = Path(args.checkpoint) if args.checkpoint else train(workdir / "run", args.tiny)

    model = ssm.SequenceModel.from_checkpoint(ckpt)  # eval mode, on the CPU
    print(f"loaded {ckpt}: {type(model.blocks[0].layer).__name__} x {len(model.blocks)} blocks, "
          f"d_model {model.d_model}, {sum(p.numel() for p in model.parameters())} parameters")
    loader = data_module(ckpt, args.data_dir).test_dataloader()
    acc, preds = evaluate(model, loader)
    print(f"test accuracy {acc:.4f} ({len(preds)} examples)")

    summary = ckpt.resolve().parents[1] / "summary.json"  # <run>/checkpoints/<ckpt> -> <run>/summary.json
    status = 0
    if ckpt.name.startswith("best-") and summary.is_file():  # ssm-train tests its best checkpoint
        recorded = json.loads(summary.read_text()).get("test", {}).get("test/acc")
        if recorded is not None:
            same = abs(recorded - acc) < 1e-6
            status |= not same
            print(f"ssm-train recorded test accuracy {recorded:.4f} for this checkpoint "
                  f"({'same' if same else 'DIFFERENT'})")

    if ckpt.suffix == ".ckpt":
        weights = export_weights(ckpt, workdir / "model.pt")
        reloaded = ssm.SequenceModel.from_checkpoint(weights)
        acc2, preds2 = evaluate(reloaded, loader)
        same = torch.equal(preds, preds2)
        status |= not same
        print(f"exported {weights} ({weights.stat().st_size // 1024} KiB, checkpoint "
              f"{ckpt.stat().st_size // 1024} KiB): test accuracy {acc2:.4f}, "
              f"{'same predictions' if same else 'DIFFERENT predictions'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
