"""docs/robustness.md from the robustness JSONs of ``python -m benchmarks.robustness run``.

The page: the protocol, the transfer-function table (:mod:`ssm.init.transfer_report`), one accuracy
table per task (mean and sample standard deviation over seeds), one PNG per model (accuracy against
amplitude, one line per frequency, min-max over seeds shaded) in ``docs/robustness/``, and the
conclusion by :data:`RULE`, which was fixed before any result existed.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from pathlib import Path
from typing import Any, Optional, Sequence

from ssm.training.report import DISPLAY_ORDER as ORDER, FAMILY_NAMES as NAMES, model_label as _label

RULE_OMEGA, RULE_AMPLITUDE = 325.4, 0.1
PAIRS = (("s4d", "s4-ptd"), ("s5", "s5-ptd"))  # (fragile per the paper, its PTD counterpart)

RULE = f"""For each task with finished S4D-LegS (`s4d`) and S4-PTD (`s4-ptd`) runs, every run's drop is
D = acc(a = 0) - acc(a = {RULE_AMPLITUDE}, omega = {RULE_OMEGA}) on the same test subset (accuracies as
fractions).
With Delta = mean D(s4d) - mean D(s4-ptd) and s = sqrt(sd(s4d)^2 / n(s4d) + sd(s4-ptd)^2 / n(s4-ptd))
(sample standard deviations over seeds; s = 0 when a family has one seed), the PTD paper's finding is

- **reproduced** if Delta >= max(2 s, 0.05) and mean D(s4-ptd) <= mean D(s4d) / 2: S4D-LegS loses at least
  5 percentage points more than S4-PTD, more than twice the standard error of the difference, and
  S4-PTD loses at most half of what S4D-LegS loses;
- **partly reproduced** if Delta >= max(s, 0.01): S4D-LegS loses more, by less than that;
- **not reproduced** otherwise.

A verdict from one seed per family is marked "one seed, no spread". The same rule is applied, as
secondary lines, at omega* and to S5 against S5-PTD where both exist, and to the runs of any variant
(a recipe other than the task's default, named in brackets) that both families share."""


def load_results(folder: Path) -> list[dict[str, Any]]:
    """Every robustness JSON (a dict with ``results``) under ``folder``; none if it does not exist."""
    out = []
    for f in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and isinstance(rec.get("results"), list) and "family" in rec:
            out.append(rec)
    return out


def _acc(rec: dict[str, Any], omega: float, amplitude: float) -> Optional[float]:
    for r in rec["results"]:
        if math.isclose(r["omega"], omega, rel_tol=1e-9) and math.isclose(r["amplitude"], amplitude,
                                                                          abs_tol=1e-12):
            return float(r["acc"])
    return None


def _freqs(recs: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """(label, omega) of a model's frequencies, in the order they were run; omega* labelled as such."""
    out: list[tuple[str, float]] = []
    star = recs[0].get("omega_star", {}).get("omega")
    for r in recs[0]["results"]:
        w = r["omega"]
        if all(not math.isclose(w, o, rel_tol=1e-9) for _, o in out):
            is_star = star is not None and math.isclose(w, star, rel_tol=1e-9)
            out.append((f"omega* = {w:.1f}" if is_star else f"{w:g}", w))
    return out


def _groups(results: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    def key(r: dict[str, Any]) -> tuple:
        fam = ORDER.index(r["family"]) if r["family"] in ORDER else len(ORDER)
        return (r["task"], fam, r["family"], r.get("variant", "default"), r["seed"])

    for r in sorted(results, key=key):
        groups.setdefault((r["task"], r["family"], r.get("variant", "default")), []).append(r)
    return groups


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * sd:.1f}"


def accuracy_tables(groups: dict[tuple[str, str, str], list[dict[str, Any]]]) -> list[str]:
    """One markdown table per task: rows model x frequency, columns amplitudes (test accuracy, %)."""
    lines: list[str] = []
    for task in sorted({k[0] for k in groups}):
        keys = [k for k in groups if k[0] == task]
        amps = sorted({r["amplitude"] for k in keys for r in groups[k][0]["results"]})
        sub = groups[keys[0]][0]["subset"]
        lines += [f"### {task}", "",
                  f"Test accuracy (%), mean ± sample sd over seeds, on {sub['size']} of the "
                  f"{sub['of']} test examples (subset seed {sub['seed']}).", "",
                  "| model | seeds | omega | " + " | ".join(f"a = {a:g}" for a in amps) + " |",
                  "|---|---:|---|" + "---:|" * len(amps)]
        for key in keys:
            recs = groups[key]
            for label, w in _freqs(recs):
                cells = [_mean_sd([v for r in recs if (v := _acc(r, w, a)) is not None]) for a in amps]
                head = f"| {_label(key[1], key[2])} | {len(recs)} | {label} | "
                lines.append(head + " | ".join(cells) + " |")
        lines.append("")
    return lines


def plot_model(recs: list[dict[str, Any]], title: str, path: Path) -> Path:
    """Accuracy against amplitude, one line per frequency (mean over seeds, min-max shaded)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, w in _freqs(recs):
        amps = sorted({r["amplitude"] for r in recs[0]["results"]
                       if math.isclose(r["omega"], w, rel_tol=1e-9)})
        per = [[v for r in recs if (v := _acc(r, w, a)) is not None] for a in amps]
        ax.plot(amps, [statistics.mean(p) for p in per], marker="o", label=f"omega {label}")
        if len(recs) > 1:
            ax.fill_between(amps, [min(p) for p in per], [max(p) for p in per], alpha=0.2)
    ax.set_xlabel("noise amplitude a")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def verdict(base: list[dict[str, Any]], robust: list[dict[str, Any]], omega: Optional[float] = RULE_OMEGA,
            amplitude: float = RULE_AMPLITUDE) -> tuple[str, str]:
    """``(verdict, numbers)`` of :data:`RULE` for the runs of the fragile family and its PTD
    counterpart; ``omega=None`` uses each run's omega*."""
    def drops(recs: list[dict[str, Any]]) -> list[float]:
        out = []
        for r in recs:
            w = r["omega_star"]["omega"] if omega is None else omega
            a0, a1 = _acc(r, w, 0.0), _acc(r, w, amplitude)
            if a0 is not None and a1 is not None:
                out.append(a0 - a1)
        return out

    db, dr = drops(base), drops(robust)
    if not db or not dr:
        return "not judged", "the runs lack amplitude 0 or the rule's amplitude at this frequency"
    mb, mr = statistics.mean(db), statistics.mean(dr)
    sb = statistics.stdev(db) if len(db) > 1 else 0.0
    sr = statistics.stdev(dr) if len(dr) > 1 else 0.0
    s = math.sqrt(sb**2 / len(db) + sr**2 / len(dr))
    delta = mb - mr
    if delta >= max(2 * s, 0.05) and mr <= mb / 2:
        word = "reproduced"
    elif delta >= max(s, 0.01):
        word = "partly reproduced"
    else:
        word = "not reproduced"
    if len(db) == 1 or len(dr) == 1:
        word += " (one seed, no spread)"
    numbers = (f"drop {100 * mb:.1f} ± {100 * sb:.1f} points (n = {len(db)}) against {100 * mr:.1f} ± "
               f"{100 * sr:.1f} (n = {len(dr)}); Delta = {100 * delta:.1f}, s = {100 * s:.1f}")
    return word, numbers


def conclusion(groups: dict[tuple[str, str, str], list[dict[str, Any]]]) -> list[str]:
    lines = ["## Conclusion", "", "Rule (fixed before any result existed):", "", RULE, ""]
    judged = False
    tasks = sorted({k[0] for k in groups})
    variants = sorted({k[2] for k in groups}, key=lambda v: (v != "default", v))
    for task, variant, (base, robust) in itertools.product(tasks, variants, PAIRS):
        b, r = groups.get((task, base, variant)), groups.get((task, robust, variant))
        if not b or not r:
            continue
        judged = True
        tag = "" if variant == "default" else f" [{variant}]"
        for where, w in ((f"omega = {RULE_OMEGA}", RULE_OMEGA), ("omega*", None)):
            word, numbers = verdict(b, r, w)
            primary = base == "s4d" and w is not None and variant == "default"
            lines.append(f"- {task}{tag}, {NAMES[base]} vs {NAMES[robust]}, a = {RULE_AMPLITUDE}, {where}: "
                         + (f"**{word}**" if primary else word) + f": {numbers}.")
    if not judged:
        lines.append("No verdict yet: no task has results for both families of a pair.")
    return lines + [""]


def transfer_section(sizes: Sequence[int], image_dir: Path, page_dir: Path) -> list[str]:
    from ssm.init.transfer_report import compare, markdown_table, plot, stars_for

    rows = [r for N in sizes for r in compare(N, others=False)]
    png = plot(image_dir / "transfer.png", sizes)
    return [
        "## Transfer functions", "",
        "Errors of each init's transfer function against HiPPO-LegS's with matched B and C "
        "(`python -m ssm.init transfer`, which also lists the inits not built from HiPPO-LegS; definitions "
        "in `ssm/init/transfer_report.py`): relative errors on 0.01 <= omega <= 100 and "
        "100 <= omega <= 1000, "
        "and the largest absolute deviation with its frequency. `B clip 2`: S4's released clip of "
        "Im(V^* B) to [-2, 2], applied to S4D-LegS's B before its 1/2; it touches only the modes with the "
        "largest Im(Lambda), so it changes exactly the high-frequency part. The S4D-LegS experiments train "
        "without it (`b_clip: null`, the layer default). omega*: where S4D-LegS deviates most (root mean "
        "square over C ~ N(0, I)), the study's second frequency.", "",
        markdown_table(rows, stars_for(sizes)),
        f"![|G(i omega)| against omega]({png.relative_to(page_dir).as_posix()})", "",
    ]


def write_page(results_dir: Path, page: Path, sizes: Sequence[int] = (16, 32, 64, 128, 256)) -> Path:
    """Write ``page`` (and its images in the folder named like it) from the JSONs under ``results_dir``;
    ``results_dir/discussion.md``, when present, is the page's last section (the written reading of the
    numbers above it: what explains the verdict)."""
    import torch

    torch.set_num_threads(1)
    results = load_results(results_dir)
    image_dir = page.parent / page.stem
    groups = _groups(results)
    lines = [
        "# Robustness to Fourier-mode noise (the PTD study)", "",
        "Generated by `python -m benchmarks.robustness report` from the JSONs under "
        f"`{results_dir.as_posix()}` (written by `python -m benchmarks.robustness run`); do not edit by "
        "hand.", "",
        "## Protocol", "",
        "PTD (Yu, Mahoney, Erichson, arXiv 2310.01698, Sec. 6): at test time only, every SSM layer's input "
        "gets `a * r * cos(omega * t)`, `r ~ U(0, 1)` drawn once per (sequence, channel) and held over the "
        "sequence, `t = k * dt` the layer's own time grid (dt of the channel; S5: the geometric mean of its "
        "per-state dt; DSS with separate real and imaginary dt: their geometric mean). This is `ssm-eval`'s "
        "noise (`ssm/training/noise.py`), added to the input of the SSM layer itself (inside each residual "
        "block, after its normalization). Defaults of `run`: amplitudes a in {0, 0.01, 0.03, 0.1, 0.3}; "
        "frequencies 325.4 (the "
        "paper's: the largest imaginary part of S4D-LegS's eigenvalues at N = 32, 325.43), omega* at the "
        "model's state size (for S5 and S5-PTD the size of one block of their block-diagonal init, "
        "d_state / J: N = 16 in the sFMNIST models, omega* = 80.97), and 5 (a low frequency, where every "
        "init's transfer function is close to HiPPO-LegS's). Each model is evaluated on a fixed test "
        "subset: 2000 examples (the whole split if smaller) drawn by `torch.randperm` with seed 0; noise "
        "seed 0. The amplitude-0 accuracy is checked against the model's clean accuracy on that subset.", "",
    ]
    lines += transfer_section(sizes, image_dir, page.parent)
    lines += ["## Results", ""]
    if not results:
        lines += ["The experiment has not run yet: there are no results under "
                  f"`{results_dir.as_posix()}`.", ""]
    else:
        lines += accuracy_tables(groups)
        for (task, family, variant), recs in groups.items():
            name = f"{task.replace('/', '-')}_{family}" + ("" if variant == "default" else f"_{variant}")
            title = f"{task}: {_label(family, variant)} (n = {len(recs)})"
            png = plot_model(recs, title, image_dir / f"{name}.png")
            lines += [f"![{task} {_label(family, variant)}]({png.relative_to(page.parent).as_posix()})", ""]
    lines += conclusion(groups)
    discussion = results_dir / "discussion.md"
    if discussion.is_file():
        lines += ["## Discussion", "", discussion.read_text().strip(), ""]
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("\n".join(lines))
    return page
