"""``ssm-report``: turn run folders, finished or partial, into result JSONs, a table and learning curves.

Every ``ssm-train`` run folder holds ``summary.json`` (written by :class:`ssm.training.callbacks.RunSummary`
from the start of fitting on: provenance, parameter count, the validation curve, the best validation
and test metrics, and a status). This module reads any folder tree of such runs (Hydra single runs and
multirun sweeps alike) and/or result JSONs written by an earlier call, and writes:

- ``--out DIR``: one JSON per run, ``DIR/<task>/<family>[_<variant>]_seed<seed>_<run>.json``, in the
  results schema below (with ``--weights``, each finished run's best weights beside it, weights only);
- ``--markdown FILE``: a page with the grid (task x model: test accuracy, mean and spread over seeds,
  the published number beside ours where the task is a paper-size one), every run listed with its
  status, command, commit, machine and date, and PNG learning curves (validation accuracy against
  optimizer step and against wall time; one panel per task, one line per model, mean and min-max over
  seeds) in the folder ``FILE`` without its suffix.

Results schema (one object per run): ``task, family, variant, tier, seed, status`` (``finished``,
``failed`` or ``stopped``), ``reason`` (when not finished), ``test_acc`` (fraction, full test split),
``best_val_acc``, ``steps, epochs, train_seconds`` (wall), ``train_cpu_seconds`` (CPU time of the training
process), ``torch_threads, params, command, git_commit, date,
device, baseline_acc`` (majority-class accuracy on the test split), ``curve`` (one entry per
validation: step, seconds, val/acc, val/loss) and ``run_dir``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any, Iterable, Optional

__all__ = ["FAMILIES", "FAMILY_NAMES", "DISPLAY_ORDER", "PUBLISHED", "model_label", "split_name", "collect", "result_from_run", "write_results", "dump_result", "write_page",
           "main"]

# Longest suffix first: "s4-ptd" must not be read as task "...-s4" + "-ptd".
FAMILIES: tuple[str, ...] = ("s4-ptd", "s5-ptd", "s4d", "dss", "s4", "s5")
DISPLAY_ORDER: tuple[str, ...] = ("s4", "s4d", "dss", "s5", "s4-ptd", "s5-ptd")
FAMILY_NAMES = {"s4": "S4", "s4d": "S4D-LegS", "dss": "DSS", "s5": "S5", "s4-ptd": "S4-PTD", "s5-ptd": "S5-PTD"}
TASK_ORDER = ("sfmnist", "psfmnist", "listops-cpu", "pathfinder-cpu", "smnist", "psmnist", "scifar",
              "lra/listops", "lra/text", "lra/retrieval", "lra/image", "lra/pathfinder", "lra/pathx", "digits")

# Published test accuracies (%) for the paper-size tasks (S4 arXiv 2111.00396, S4D 2206.11893,
# DSS 2203.14343, S5 2208.04933, PTD 2310.01698; the table of the project's references).
PUBLISHED: dict[tuple[str, str], float] = {
    ("lra/listops", "s4"): 59.60, ("lra/text", "s4"): 86.82, ("lra/retrieval", "s4"): 90.90,
    ("lra/image", "s4"): 88.65, ("lra/pathfinder", "s4"): 94.20, ("lra/pathx", "s4"): 96.35,
    ("lra/listops", "s4d"): 60.47, ("lra/text", "s4d"): 86.18, ("lra/retrieval", "s4d"): 89.46,
    ("lra/image", "s4d"): 88.19, ("lra/pathfinder", "s4d"): 93.06, ("lra/pathx", "s4d"): 91.95,
    ("lra/listops", "dss"): 60.6, ("lra/text", "dss"): 84.8, ("lra/retrieval", "dss"): 87.8,
    ("lra/image", "dss"): 85.7, ("lra/pathfinder", "dss"): 84.6, ("lra/pathx", "dss"): 87.8,
    ("lra/listops", "s5"): 62.15, ("lra/text", "s5"): 89.31, ("lra/retrieval", "s5"): 91.40,
    ("lra/image", "s5"): 88.00, ("lra/pathfinder", "s5"): 95.33, ("lra/pathx", "s5"): 98.58,
    ("lra/pathx", "s4-ptd"): 96.39,
    ("smnist", "s4"): 99.63, ("psmnist", "s4"): 98.70, ("scifar", "s4"): 91.13,
    ("smnist", "s5"): 99.65, ("scifar", "s5"): 90.10,
}


def split_name(name: str) -> tuple[str, str]:
    """(task, family) of an experiment name such as ``sfmnist-s4-ptd`` or ``lra/listops-s4``."""
    for family in FAMILIES:
        if name.endswith("-" + family):
            return name[: -len(family) - 1], family
    return name, "unknown"


def _read_json(path: Path) -> Optional[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _best_checkpoint(run_dir: Path) -> Optional[Path]:
    found = sorted((run_dir / "checkpoints").glob("best-*.ckpt"))
    return found[-1] if found else None


def result_from_run(run_dir: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """The results-schema object of one run folder, from its ``summary.json``."""
    task, family = split_name(str(summary.get("name", run_dir.name)))
    status = summary.get("status", "stopped")
    reason = summary.get("reason")
    test = summary.get("test") or {}
    if status == "running":
        # Nothing ended the run: the process was killed (or is still going; rerun the report later).
        status, reason = "stopped", "no end recorded: the process was killed or is still running"
    elif status == "finished" and "test/acc" not in test and summary.get("test") is not None:
        reason = "no test result (test=false, or the process stopped during testing)"
        status = "stopped"
    curve = [
        {k: c[k] for k in ("step", "epoch", "seconds", "val/acc", "val/loss") if k in c}
        for c in summary.get("curve") or []
    ]
    accs = [c["val/acc"] for c in curve if isinstance(c.get("val/acc"), (int, float))]
    out: dict[str, Any] = {
        "task": task,
        "family": family,
        "variant": summary.get("variant", "default"),
        "tier": summary.get("tier", "cpu"),
        "seed": summary.get("seed"),
        "status": status,
        "test_acc": test.get("test/acc"),
        "test_loss": test.get("test/loss"),
        "best_val_acc": max(accs) if accs else None,
        "best_val_loss": (summary.get("best") or {}).get("val/loss"),
        "steps": summary.get("steps"),
        "epochs": summary.get("epochs"),
        "train_seconds": summary.get("fit_seconds"),
        "train_cpu_seconds": summary.get("fit_cpu_seconds"),
        "torch_threads": summary.get("torch_threads"),
        "params": summary.get("parameters"),
        "command": summary.get("command"),
        "git_commit": summary.get("git_commit"),
        "git_dirty": summary.get("git_dirty"),
        "date": summary.get("date"),
        "device": summary.get("device"),
        "baseline_acc": test.get("baseline_acc"),
        "curve": curve,
        "run_dir": str(run_dir),
    }
    if reason:
        out["reason"] = reason
    return out


def _is_result(data: dict[str, Any]) -> bool:
    return {"task", "family", "status", "seed"} <= data.keys()


def collect(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Results of every run folder (a folder with ``summary.json``) and result JSON under ``paths``."""
    results: dict[str, dict[str, Any]] = {}
    for root in map(Path, paths):
        if not root.exists():
            raise FileNotFoundError(f"ssm-report: {root} does not exist")
        files = [root] if root.is_file() else sorted(root.rglob("*.json"))
        for f in files:
            data = _read_json(f)
            if data is None:
                continue
            if f.name == "summary.json" and "name" in data:
                res = result_from_run(f.parent, data)
                key = str(f.parent.resolve())
            elif _is_result(data):
                res = dict(data)
                key = str(res.get("run_dir") or f.resolve())
            else:
                continue
            results.setdefault(key, res)
    return sorted(results.values(), key=_sort_key)


def _sort_key(r: dict[str, Any]) -> tuple:
    task = r.get("task", "")
    order = TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER)
    fam = DISPLAY_ORDER.index(r["family"]) if r.get("family") in DISPLAY_ORDER else len(DISPLAY_ORDER)
    variant = r.get("variant", "default")
    return (order, task, fam, variant != "default", variant, r.get("tier", ""), r.get("seed") or 0,
            r.get("date") or "")


def _file_stem(r: dict[str, Any]) -> str:
    variant = "" if r.get("variant", "default") == "default" else f"_{r['variant']}"
    run = Path(r.get("run_dir") or "run").name
    return f"{r['family']}{variant}_seed{r.get('seed')}_{run}"


def dump_result(res: dict[str, Any]) -> str:
    """The text of one result JSON on disk (the one format every writer of result files uses)."""
    return json.dumps(res, indent=1) + "\n"


def write_results(results: list[dict[str, Any]], out: Path, weights: bool = False) -> list[Path]:
    """One JSON per run under ``out/<task>/``; with ``weights``, best weights of finished runs beside it."""
    written = []
    for r in results:
        folder = out / r["task"]
        folder.mkdir(parents=True, exist_ok=True)
        stem = _file_stem(r)
        res = dict(r)
        if weights and r["status"] == "finished" and r.get("run_dir"):
            ckpt = _best_checkpoint(Path(r["run_dir"]))
            if ckpt is not None:
                target = folder / f"{stem}.pt"
                _export_weights(ckpt, target)
                res["checkpoint"] = target.name
        path = folder / f"{stem}.json"
        path.write_text(dump_result(res))
        written.append(path)
    return written


def _export_weights(ckpt: Path, target: Path) -> None:
    from ssm.training.export import export_weights

    export_weights(ckpt, target)


# ------------------------------------------------------------------------------------------------ page
def model_label(family: str, variant: str = "default") -> str:
    """Display name of a model: the family's name, with the variant in brackets unless default."""
    name = FAMILY_NAMES.get(family, family)
    return name if variant == "default" else f"{name} ({variant})"


def _fmt_acc(values: list[float]) -> str:
    if not values:
        return "—"
    pct = [100 * v for v in values]
    if len(pct) == 1:
        return f"{pct[0]:.1f}"
    return f"{statistics.mean(pct):.1f} ± {statistics.stdev(pct):.1f}"


def _groups(results: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for r in results:
        key = (r["task"], r["family"], r.get("variant", "default"), r.get("tier", "cpu"))
        groups.setdefault(key, []).append(r)
    return groups


def grid_table(results: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: one row per (task, model, variant, tier), test accuracy over finished seeds."""
    lines = [
        "| task | model | tier | test acc % (mean ± sd) | seeds finished / started | best val acc % "
        "| majority baseline % | published % | steps | train time (min) | train CPU time (min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (task, family, variant, tier), runs in _groups(results).items():
        done = [r for r in runs if r["status"] == "finished" and r.get("test_acc") is not None]
        base = [r["baseline_acc"] for r in done if r.get("baseline_acc") is not None]
        published = PUBLISHED.get((task, family)) if variant == "default" else None
        minutes = [r["train_seconds"] / 60 for r in done if r.get("train_seconds")]
        cpu_minutes = [r["train_cpu_seconds"] / 60 for r in done if r.get("train_cpu_seconds")]
        steps = sorted({r.get("steps") for r in done if r.get("steps")})
        lines.append(
            f"| {task} | {model_label(family, variant)} | {tier} | {_fmt_acc([r['test_acc'] for r in done])} "
            f"| {len(done)} / {len(runs)} | {_fmt_acc([r['best_val_acc'] for r in done if r.get('best_val_acc')])} "
            f"| {_fmt_acc(base[:1])} | {published if published is not None else '—'} "
            f"| {', '.join(map(str, steps)) or '—'} "
            f"| {(f'{statistics.median(minutes):.0f}' if minutes else '—')} "
            f"| {(f'{statistics.median(cpu_minutes):.0f}' if cpu_minutes else '—')} |"
        )
    return lines


def runs_table(results: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: every run started, its status (with the reason) and how to reproduce it."""
    lines = ["| task | model | seed | status | test acc % | command | commit | device | date |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        status = r["status"] + (f": {r['reason']}" if r.get("reason") else "")
        acc = f"{100 * r['test_acc']:.2f}" if r.get("test_acc") is not None else "—"
        commit = (r.get("git_commit") or "?")[:10] + (" (dirty)" if r.get("git_dirty") else "")
        lines.append(
            f"| {r['task']} | {model_label(r['family'], r.get('variant', 'default'))} | {r.get('seed')} "
            f"| {status} | {acc} | `{r.get('command')}` | {commit} | {r.get('device')} | {r.get('date')} |"
        )
    return lines


def _aligned(runs: list[dict[str, Any]], key: str) -> tuple[list[float], list[float], list[float], list[float]]:
    """x (mean over seeds), y mean, y min, y max at each validation index shared by all seeds."""
    curves = [[c for c in r.get("curve", []) if "val/acc" in c] for r in runs]
    curves = [c for c in curves if c]
    if not curves:
        return [], [], [], []
    n = min(len(c) for c in curves)
    xs, mean, lo, hi = [], [], [], []
    for i in range(n):
        x = [c[i][key] for c in curves]
        y = [100 * c[i]["val/acc"] for c in curves]
        xs.append(statistics.mean(x) / (60 if key == "seconds" else 1))
        mean.append(statistics.mean(y))
        lo.append(min(y))
        hi.append(max(y))
    return xs, mean, lo, hi


def plot_curves(results: list[dict[str, Any]], folder: Path) -> list[Path]:
    """One PNG per (task, tier): validation accuracy against step and against wall time."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise SystemExit(f"ssm-report: plotting needs matplotlib (pip install matplotlib): {err}") from None
    folder.mkdir(parents=True, exist_ok=True)
    by_task: dict[tuple[str, str], dict[tuple[str, str], list[dict[str, Any]]]] = {}
    for (task, family, variant, tier), runs in _groups(results).items():
        by_task.setdefault((task, tier), {})[(family, variant)] = runs
    written = []
    for (task, tier), models in by_task.items():
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
        for (family, variant), runs in models.items():
            label = f"{model_label(family, variant)} (n={len(runs)})"
            for ax, key in zip(axes, ("step", "seconds")):
                xs, mean, lo, hi = _aligned(runs, key)
                if not xs:
                    continue
                (line,) = ax.plot(xs, mean, marker="o", ms=3, label=label)
                if len(runs) > 1:
                    ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2)
        axes[0].set_xlabel("optimizer step")
        axes[1].set_xlabel("wall time (min)")
        axes[0].set_ylabel("validation accuracy (%)")
        for ax in axes:
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7, loc="lower right")
        fig.suptitle(f"{task} ({tier} tier): mean over seeds, band = min-max")
        fig.tight_layout()
        path = folder / f"{task.replace('/', '-')}-{tier}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write_page(results: list[dict[str, Any]], path: Path, title: str = "Results",
               intro: str = "", plots: bool = True) -> Path:
    """The markdown page (grid, curves, every run) at ``path``; PNGs in ``path`` without its suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", ""]
    if intro:
        lines += [intro.strip(), ""]
    lines += ["## The grid", "", *grid_table(results), ""]
    if plots and results:
        folder = path.with_suffix("")
        lines += ["## Learning curves", ""]
        for png in plot_curves(results, folder):
            lines += [f"![{png.stem}]({folder.name}/{png.name})", ""]
    lines += ["## Every run", "", *runs_table(results), ""]
    path.write_text("\n".join(lines))
    return path


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``ssm-report`` (without its ``relabel`` subcommand)."""
    p = argparse.ArgumentParser(
        prog="ssm-report",
        description="Turn ssm-train run folders (finished or partial) and result JSONs into one JSON per "
        "run, a markdown table and learning curves. 'ssm-report relabel --help': give results another variant.",
    )
    p.add_argument("paths", nargs="+", help="run folders, folders of runs, or result JSONs")
    p.add_argument("--out", type=Path, help="write one JSON per run under OUT/<task>/")
    p.add_argument("--weights", action="store_true", help="with --out: best weights of finished runs beside them")
    p.add_argument("--markdown", type=Path, help="write the results page here (curves in its folder)")
    p.add_argument("--title", default="Results", help="title of the page")
    p.add_argument("--intro", type=Path, help="a markdown file placed under the title")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    """Console entry point ``ssm-report`` (``ssm-report relabel ...``: :mod:`ssm.training.relabel`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["relabel"]:  # a folder named relabel is reported as ./relabel
        from ssm.training.relabel import main as relabel_main

        return relabel_main(argv[1:])
    p = parser()
    a = p.parse_args(argv)
    if a.weights and a.out is None:
        p.error("--weights needs --out")
    try:
        results = collect(a.paths)
    except FileNotFoundError as err:
        print(err, file=sys.stderr)
        return 2
    if not results:
        print(f"ssm-report: no runs (summary.json) or result JSONs under {', '.join(a.paths)}", file=sys.stderr)
        return 2
    if a.out is not None:
        for f in write_results(results, a.out, a.weights):
            print(f)
    if a.markdown is not None:
        intro = a.intro.read_text() if a.intro is not None else ""
        print(write_page(results, a.markdown, a.title, intro))
    if a.out is None and a.markdown is None:
        print("\n".join(grid_table(results)))
    done = sum(r["status"] == "finished" for r in results)
    print(f"ssm-report: {len(results)} runs ({done} finished)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
