"""``ssm-eval``: test accuracy of a trained checkpoint under Fourier-mode input noise.

The robustness study of PTD (arXiv 2310.01698, Sec. 6): at test time, every SSM layer's input gets
``a * U(0,1) * cos(omega * k * dt)`` (:mod:`ssm.training.noise`); accuracy is measured for a list of
amplitudes ``a`` and written as a CSV file, a markdown table and a PNG plot of accuracy against ``a``.

Usage::

    ssm-eval runs/scifar-s4d/<time>/checkpoints/last.ckpt --amplitudes 0 0.05 0.1 0.2 --omega 325.4
    ssm-eval CKPT data.data_dir=/data trainer.accelerator=cpu     # override the stored config
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import lightning.pytorch as pl
from omegaconf import OmegaConf

from ssm.training.checkpoint import load_checkpoint as verified_load
from ssm.training.noise import FourierNoise
from ssm.training.train import ConfigError, build_datamodule, build_module

__all__ = ["load_checkpoint", "evaluate_checkpoint", "write_results", "main"]


def _load(path: Path, overrides: Sequence[str]) -> tuple[Any, dict[str, Any]]:
    # CRC-checked and weights-only (checkpoints hold no pickled objects); a bad file raises CheckpointError
    ckpt = verified_load(path)
    if "ssm_config" not in ckpt:
        raise ConfigError(f"{path} has no 'ssm_config' entry: it was not written by ssm-train")
    cfg = OmegaConf.create(ckpt["ssm_config"])
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"overrides must look like key=value, got {bad}")
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    return cfg, ckpt


def load_checkpoint(
    checkpoint: str | Path, overrides: Sequence[str] = ()
) -> tuple[Any, pl.LightningDataModule, Any]:
    """``(module, datamodule, cfg)`` of an ``ssm-train`` checkpoint: the run's config (with
    ``overrides``) rebuilds the data module and the Lightning module, which gets the stored weights.
    The path :func:`evaluate_checkpoint` evaluates through (and the robustness benchmark)."""
    cfg, ckpt = _load(Path(checkpoint), overrides)
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm)
    module.load_state_dict(ckpt["state_dict"])
    return module, dm, cfg


def evaluate_checkpoint(
    checkpoint: str | Path,
    amplitudes: Sequence[float],
    omega: float = 325.4,
    seed: int = 0,
    overrides: Sequence[str] = (),
    accelerator: str = "auto",
    limit_batches: Optional[int] = None,
) -> list[dict[str, float]]:
    """Test accuracy and loss of ``checkpoint`` for each noise amplitude.

    Args:
        checkpoint: a checkpoint written by ``ssm-train`` (carries the run's config).
        amplitudes: values of ``a`` (each >= 0; 0 is the clean accuracy).
        omega: angular frequency of the noise in the layers' continuous time.
        seed: seed of the U(0, 1) noise amplitudes.
        overrides: ``key=value`` changes to the stored config (e.g. ``data.data_dir=...``).
        accelerator: Lightning accelerator for the evaluation.
        limit_batches: evaluate only this many test batches (None: all).
    Returns:
        One row per amplitude: ``{"experiment", "amplitude", "omega", "test_acc", "test_loss"}``.
    """
    if not amplitudes:
        raise ValueError("amplitudes must hold at least one value")
    if any(a < 0 for a in amplitudes):
        raise ValueError(f"amplitudes must be >= 0, got {list(amplitudes)}")
    module, dm, cfg = load_checkpoint(checkpoint, overrides)
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_test_batches=limit_batches if limit_batches is not None else 1.0,
    )
    rows = []
    for a in amplitudes:
        with FourierNoise(module.model, a, omega, seed=seed):
            (metrics,) = trainer.test(module, datamodule=dm, verbose=False)
        rows.append(
            {
                "experiment": str(cfg.get("name", "")),
                "amplitude": float(a),
                "omega": float(omega),
                "test_acc": float(metrics["test/acc"]),
                "test_loss": float(metrics["test/loss"]),
            }
        )
    return rows


def write_results(rows: Sequence[dict[str, float]], out_dir: str | Path, title: str = "") -> dict[str, Path]:
    """Write ``robustness.csv``, ``robustness.md`` and ``robustness.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "robustness.csv", "md": out / "robustness.md", "png": out / "robustness.png"}
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["experiment", "amplitude", "omega", "test_acc", "test_loss"])
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"# Accuracy under Fourier-mode noise{': ' + title if title else ''}",
        "",
        "| amplitude a | omega | test accuracy | test loss |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['amplitude']:g} | {r['omega']:g} | {r['test_acc']:.4f} | {r['test_loss']:.4f} |" for r in rows
    ]
    paths["md"].write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r["amplitude"] for r in rows], [r["test_acc"] for r in rows], marker="o")
    ax.set_xlabel("noise amplitude a")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{title} (omega = {rows[0]['omega']:g})" if title else f"omega = {rows[0]['omega']:g}")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(paths["png"], dpi=120)
    plt.close(fig)
    return paths


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console entry point ``ssm-eval``."""
    parser = argparse.ArgumentParser(
        prog="ssm-eval",
        description="Test accuracy of an ssm-train checkpoint under the PTD study's "
        "Fourier-mode noise a * U(0,1) * cos(omega * k * dt) added to every SSM layer's input.",
    )
    parser.add_argument("checkpoint", help="checkpoint written by ssm-train (e.g. .../checkpoints/last.ckpt)")
    parser.add_argument("overrides", nargs="*", help="key=value changes to the stored config")
    parser.add_argument(
        "--amplitudes",
        type=float,
        nargs="+",
        default=[0.0, 0.025, 0.05, 0.1, 0.2],
        help="noise amplitudes a (default: 0 0.025 0.05 0.1 0.2)",
    )
    parser.add_argument("--omega", type=float, default=325.4, help="angular frequency (default 325.4)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    parser.add_argument("--out", default=None, help="output folder (default: <checkpoint folder>/robustness)")
    parser.add_argument("--accelerator", default="auto", help="cpu, gpu or auto (default)")
    parser.add_argument("--limit-batches", type=int, default=None, help="test on this many batches only")
    args = parser.parse_args(argv)
    try:
        rows = evaluate_checkpoint(
            args.checkpoint,
            args.amplitudes,
            args.omega,
            args.seed,
            args.overrides,
            args.accelerator,
            args.limit_batches,
        )
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"ssm-eval: error: {err}", file=sys.stderr)
        sys.exit(2)
    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parent / "robustness"
    paths = write_results(rows, out, title=rows[0]["experiment"])
    print(paths["md"].read_text())
    print(f"ssm-eval: wrote {paths['csv']}, {paths['md']} and {paths['png']}")


if __name__ == "__main__":
    main()
