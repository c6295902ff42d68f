"""The PTD robustness study (Yu, Mahoney, Erichson, arXiv 2310.01698, Sec. 6) on trained models.

At test time only, every SSM layer's input gets the Fourier-mode noise of ``ssm-eval``
(:mod:`ssm.training.noise`): ``a * r * cos(omega * k * dt)`` with ``r ~ U(0, 1)`` drawn once per
(sequence, channel) and ``t = k dt`` the layer's own time grid. The paper found S4D-LegS collapsing
at ``a = 0.1, omega = 325.4`` (the largest imaginary part of S4D-LegS's eigenvalues at N = 32, where
its transfer function spikes) while S4-PTD held.

Two commands (run from the repository root)::

    python -m benchmarks.robustness run [PATHS ...]    # default PATHS: benchmarks/results
    python -m benchmarks.robustness report             # docs/robustness.md and docs/robustness/*.png

``run`` evaluates every trained run found under PATHS: a result JSON (keys ``task, family, seed``, and
``variant, test_acc, checkpoint`` where known, as ``ssm-report --out DIR --weights`` writes them) with
its weights beside it (``checkpoint``, else ``<stem>.ckpt`` / ``<stem>.pt``, else the best checkpoint
of its ``run_dir``). An ``ssm-train`` checkpoint is loaded the way ``ssm-eval`` loads it (its stored
config rebuilds the data module); a weights-only file through ``ssm.SequenceModel.from_checkpoint``,
with the data module of the experiment ``<task>-<family>``. Each model is evaluated on a fixed test
subset (default 2000 examples drawn without replacement by ``torch.randperm`` seeded with 0; the whole
test split when it is smaller) at every amplitude x frequency (defaults below; ``star`` is omega*, where
S4D-LegS's transfer function deviates most from HiPPO-LegS's at the model's state size,
:func:`ssm.init.omega_star`). One JSON per (model, seed) goes to ``benchmarks/robustness/<task>/``.
The clean accuracy (no noise machinery) must equal the amplitude-0 accuracy (within ``AGREE_TOL``).

``report`` regenerates docs/robustness.md from those JSONs (:mod:`benchmarks._robustness_page`): the
protocol, the transfer-function table for N = 16 .. 256, one accuracy table per task, one plot per
model, the conclusion by the rule fixed there before any result existed, and the written discussion
``benchmarks/robustness/discussion.md`` when present. With no results it still writes the transfer
table and says that the experiment has not run yet.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

AMPLITUDES = (0.0, 0.01, 0.03, 0.1, 0.3)
OMEGAS = ("325.4", "star", "5.0")  # "star": omega* at the model's state size
SUBSET = 2000
SUBSET_SEED = 0
AGREE_TOL = 1e-3  # |acc(a = 0) - clean acc|: exact on the CPU; 2 of 2000 examples elsewhere
RESULTS = Path("benchmarks/results")
OUT = Path("benchmarks/robustness")
PAGE = Path("docs/robustness.md")


# --------------------------------------------------------------------------------------- finding runs
def find_runs(paths: Sequence[str | Path]) -> list[tuple[dict[str, Any], Path]]:
    """``(record, json_path)`` of every result JSON under ``paths`` (files or folders, recursively)."""
    found = []
    for root in map(Path, paths):
        if not root.exists():
            raise FileNotFoundError(f"robustness: {root} does not exist")
        for f in [root] if root.is_file() else sorted(root.rglob("*.json")):
            try:
                rec = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(rec, dict) and {"task", "family", "seed"} <= rec.keys() and "results" not in rec:
                found.append((rec, f))
    return found


def checkpoint_of(rec: dict[str, Any], json_path: Path) -> Optional[Path]:
    """The weights of a result: its ``checkpoint`` entry, a file named like the JSON, or the best
    (else last) checkpoint of its ``run_dir``; None if there is none."""
    if rec.get("checkpoint"):
        path = Path(rec["checkpoint"])
        return path if path.is_absolute() else json_path.parent / path
    for suffix in (".ckpt", ".pt"):
        if json_path.with_suffix(suffix).is_file():
            return json_path.with_suffix(suffix)
    run_dir = Path(rec["run_dir"]) if rec.get("run_dir") else None
    if run_dir is not None and (run_dir / "checkpoints").is_dir():
        best = sorted((run_dir / "checkpoints").glob("best-*.ckpt"))
        last = run_dir / "checkpoints" / "last.ckpt"
        return best[-1] if best else (last if last.is_file() else None)
    return None


# ------------------------------------------------------------------------------------------- loading
def _compose(experiment: str, overrides: Sequence[str]) -> Any:
    from hydra import compose, initialize_config_dir, initialize_config_module

    from ssm.training.train import config_path

    path = config_path()
    init = (initialize_config_module(path[len("pkg://"):], version_base="1.3") if path.startswith("pkg://")
            else initialize_config_dir(config_dir=str(Path(path).resolve()), version_base="1.3"))
    with init:
        return compose("train", overrides=[f"experiment={experiment}", *overrides])


def load_run(ckpt: Path, rec: dict[str, Any], overrides: Sequence[str] = ()) -> tuple[
        Callable[[dict[str, torch.Tensor]], torch.Tensor], nn.Module, Any]:
    """``(logits_fn, network, datamodule)``; ``network`` holds the SSM layers the noise goes into."""
    obj = torch.load(ckpt, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "ssm_config" in obj:  # ssm-train checkpoint: ssm-eval's path
        from ssm.training.evaluate import load_checkpoint

        module, dm, _ = load_checkpoint(ckpt, overrides)
        return module, module.model, dm
    import ssm

    if not hasattr(ssm.SequenceModel, "from_checkpoint"):
        raise RuntimeError(f"{ckpt} is not an ssm-train checkpoint and this ssm has no "
                           "SequenceModel.from_checkpoint to read a weights-only file")
    from ssm.training.train import build_datamodule

    net = ssm.SequenceModel.from_checkpoint(ckpt)
    # the run's seed: data modules split train/val (and digits its test part) by it
    experiment = rec.get("experiment") or f"{rec['task']}-{rec['family']}"
    cfg = _compose(experiment, [f"seed={rec['seed']}", *overrides])
    if cfg.task != "classification":
        raise RuntimeError(f"{ckpt}: a weights-only file holds no pair classifier (task {cfg.task})")
    return (lambda batch: net(batch["x"], lengths=batch.get("lengths"))), net, build_datamodule(cfg)


def state_size(net: nn.Module) -> int:
    """The HiPPO size behind the model's SSM layers: ``d_state``, per block for S5 (``d_state / J``)."""
    from ssm.layers.base import SSMLayer

    sizes = {m.d_state // getattr(m, "blocks", 1) for m in net.modules() if isinstance(m, SSMLayer)}
    if len(sizes) != 1:
        raise ValueError(f"expected one state size across the SSM layers, got {sorted(sizes)}")
    return sizes.pop()


def subset_indices(n: int, size: int, seed: int) -> torch.Tensor:
    """Sorted indices of a fixed subset: the first ``size`` of ``randperm(n)`` seeded with ``seed``; all
    indices if ``n <= size``."""
    if n <= size:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size].sort().values


@torch.no_grad()
def accuracy(logits_fn: Callable, loader: DataLoader, device: torch.device) -> float:
    correct = total = 0
    for batch in loader:
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        pred = logits_fn(batch).argmax(-1)
        correct += int((pred == batch["y"]).sum())
        total += int(batch["y"].numel())
    return correct / total


# ----------------------------------------------------------------------------------------------- run
def evaluate_run(rec: dict[str, Any], ckpt: Path, *, amplitudes: Sequence[float] = AMPLITUDES,
                 omegas: Sequence[str] = OMEGAS, subset: int = SUBSET, subset_seed: int = SUBSET_SEED,
                 noise_seed: int = 0, device: str = "cpu", batch_size: Optional[int] = None,
                 overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The robustness record of one trained model (see the module docstring)."""
    from ssm.init import omega_star
    from ssm.training.noise import FourierNoise

    logits_fn, net, dm = load_run(ckpt, rec, overrides)
    dev = torch.device(device)
    if isinstance(logits_fn, nn.Module):
        logits_fn.to(dev).eval()
    net.to(dev).eval()
    dm.prepare_data()  # as Lightning's test loop (ssm-eval) does before setup
    dm.setup("test")
    test = dm.test_dataloader()  # its dataset and collate function, unshuffled
    idx = subset_indices(len(test.dataset), subset, subset_seed)
    loader = DataLoader(Subset(test.dataset, idx.tolist()), batch_size=batch_size or test.batch_size,
                        shuffle=False, collate_fn=test.collate_fn)
    N = state_size(net)
    w_star, dev_star = omega_star(N)
    freqs = [w_star if w == "star" else float(w) for w in omegas]
    clean = accuracy(logits_fn, loader, dev)
    results = []
    for w in freqs:
        for a in amplitudes:
            with FourierNoise(net, a, w, seed=noise_seed):
                acc = accuracy(logits_fn, loader, dev)
            results.append({"amplitude": float(a), "omega": float(w), "acc": acc})
    for r in results:
        if r["amplitude"] == 0.0 and abs(r["acc"] - clean) > AGREE_TOL:
            raise AssertionError(f"{ckpt}: accuracy at amplitude 0 ({r['acc']:.4f}, omega {r['omega']:g}) "
                                 f"differs from the clean accuracy {clean:.4f} on the same subset")
    ref = rec.get("test_acc")
    if len(idx) == len(test.dataset) and isinstance(ref, float) and abs(ref - clean) > 0.005:
        print(f"robustness: note: {ckpt}: clean accuracy {clean:.4f} on the whole test split, the result "
              f"records test_acc {ref:.4f}", file=sys.stderr)
    return {
        "task": rec["task"], "family": rec["family"], "variant": rec.get("variant", "default"),
        "seed": rec["seed"], "checkpoint": str(ckpt),
        "subset": {"split": "test", "size": len(idx), "of": len(test.dataset), "seed": subset_seed},
        "noise_seed": noise_seed, "state_size": N,
        "omega_star": {"omega": w_star, "N": N, "rms_deviation": dev_star,
                       "definition": "argmax over omega of the root-mean-square (over C ~ N(0, I)) "
                                     "|G_S4D-LegS - G_HiPPO-LegS|, B clip off"},
        "clean_acc": clean, "record_test_acc": ref, "results": results,
        "device": str(dev), "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def out_path(out: Path, r: dict[str, Any]) -> Path:
    variant = "" if r.get("variant", "default") == "default" else f"_{r['variant']}"
    return out / str(r["task"]) / f"{r['family']}{variant}_seed{r['seed']}.json"


def cmd_run(args: argparse.Namespace) -> int:
    runs = find_runs(args.paths)
    if not runs:
        print(f"robustness: no result JSONs (task, family, seed) under {', '.join(map(str, args.paths))}",
              file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    done = 0
    for rec, path in runs:
        if rec.get("status", "finished") != "finished":
            print(f"robustness: skip {path} (status {rec.get('status')})")
            continue
        ckpt = checkpoint_of(rec, path)
        if ckpt is None or not ckpt.is_file():
            print(f"robustness: skip {path} (no weights found beside it)")
            continue
        res = evaluate_run(rec, ckpt, amplitudes=args.amplitudes, omegas=args.omegas, subset=args.subset,
                           subset_seed=args.subset_seed, noise_seed=args.noise_seed, device=args.device,
                           batch_size=args.batch_size, overrides=args.override)
        target = out_path(args.out, res)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(res, indent=1) + "\n")
        print(f"robustness: {res['task']} {res['family']} seed {res['seed']}: clean {res['clean_acc']:.4f}, "
              f"omega* {res['omega_star']['omega']:.2f} (N = {res['state_size']}) -> {target}")
        done += 1
    return 0 if done else 1


def cmd_report(args: argparse.Namespace) -> int:
    from benchmarks._robustness_page import write_page

    path = write_page(args.results, args.page, sizes=args.sizes)
    print(f"robustness: wrote {path}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.robustness",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="evaluate trained models under Fourier-mode noise")
    run.add_argument("paths", nargs="*", default=[RESULTS], type=Path, help="result JSONs or folders")
    run.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT})")
    run.add_argument("--amplitudes", type=float, nargs="+", default=list(AMPLITUDES))
    run.add_argument("--omegas", nargs="+", default=list(OMEGAS), help="frequencies; 'star' = omega*")
    run.add_argument("--subset", type=int, default=SUBSET, help=f"test examples (default {SUBSET})")
    run.add_argument("--subset-seed", type=int, default=SUBSET_SEED)
    run.add_argument("--noise-seed", type=int, default=0, help="seed of the U(0, 1) amplitudes")
    run.add_argument("--device", default="cpu")
    run.add_argument("--batch-size", type=int, default=None, help="default: the data module's")
    run.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    run.add_argument("--override", nargs="*", default=[], help="key=value changes to the stored config")
    rep = sub.add_parser("report", help="regenerate docs/robustness.md")
    rep.add_argument("--results", type=Path, default=OUT, help=f"robustness JSONs (default {OUT})")
    rep.add_argument("--page", type=Path, default=PAGE, help=f"page to write (default {PAGE})")
    rep.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128, 256],
                     help="state sizes of the transfer-function table")
    args = parser.parse_args(argv)
    if args.command == "run":
        for w in args.omegas:  # a typo fails here, before any model is loaded
            try:
                w == "star" or float(w)
            except ValueError:
                parser.error(f"--omegas takes numbers or 'star', got {w!r}")
        return cmd_run(args)
    return cmd_report(args)


if __name__ == "__main__":
    sys.exit(main())
