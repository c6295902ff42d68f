"""``python -m ssm.init transfer``: how far each init's transfer function is from HiPPO-LegS's.

PTD (arXiv 2310.01698, Sec. 4, Fig. 2) explains S4D-LegS's fragility by its transfer function: close to
HiPPO-LegS's at low frequency, with spikes at high frequency, where PTD's stays uniformly close. This
command measures that for N = 16 .. 256 with S4's released B clip off and on (:mod:`ssm.init.transfer`
gives the systems and the choice of B and C). For each init and N, on the grid of
:func:`ssm.init.transfer.frequency_grid` (log-spaced from 1e-2 to ``max(1e4, 2 max Im Lambda)`` plus
every resonance), with ``G_H`` the HiPPO-LegS reference with matched B and C:

* ``rel. err, omega 0.01-100``: ``max |G - G_H| / max |G_H|`` over ``omega in [1e-2, 100]``;
* ``rel. err, omega 100-1000``: the same over ``[100, 1000]`` (where the PTD paper finds S4D-LegS's
  spike at N = 32);
* ``max dev`` and ``at omega``: the largest ``|G - G_H|`` over the whole grid and where it is.

It also reports ``omega*`` (:func:`ssm.init.transfer.omega_star`): where S4D-LegS deviates most, by the
C-free root-mean-square deviation, the frequency the robustness study adds noise at.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import Tensor

from .hippo import hippo
from .transfer import _resolvent_B, frequency_grid, omega_star, siso_system

__all__ = ["Row", "APPROXIMATIONS", "OTHERS", "compare", "markdown_table", "plot", "main"]

SIZES = (16, 32, 64, 128, 256)
CLIP = 2.0  # S4's released value
LOW, MID = (1e-2, 100.0), (100.0, 1000.0)

# (label, family, init, takes b_clip, B of the reference): the inits built to approximate HiPPO-LegS.
# S5 draws its own B, so its reference uses that B (the others use B_H, as their inits do).
APPROXIMATIONS = (
    ("S4 (DPLR, legs)", "s4", "legs", True, "B_H"),
    ("S4D-LegS", "s4d", "legs", True, "B_H"),
    ("S4-PTD", "s4d", "ptd", False, "B_H"),
    ("S5-PTD (J=1)", "s5", "ptd", False, "own"),
    ("S5 HiPPO-N (J=1)", "s5", "legs", False, "own"),
)
# Inits that are not built from HiPPO-LegS: compared with it for scale only.
OTHERS = (
    ("S4 (DPLR, legt)", "s4", "legt"),
    ("S4 (DPLR, lagt)", "s4", "lagt"),
    ("S4 (DPLR, fout)", "s4", "fout"),
    ("S4D-Inv", "s4d", "inv"),
    ("S4D-Lin", "s4d", "lin"),
    ("S4D-Real", "s4d", "real"),
    ("S5 (J=1, dss)", "s5", "dss"),
)


@dataclass(frozen=True)
class Row:
    """One line of the comparison (errors relative to the reference's maximum on the same band)."""

    label: str
    family: str
    init: str
    N: int
    clip: Optional[float]  # None: no clip; nan: the init takes none
    approximates: bool
    err_low: float
    err_mid: float
    max_dev: float
    omega_max: float


def _band(omega: Tensor, band: tuple[float, float]) -> Tensor:
    return (omega >= band[0]) & (omega <= band[1])


def _row(label: str, family: str, init: str, N: int, clip: Optional[float], approximates: bool,
         omega: Tensor, G: Tensor, G_ref: Tensor) -> Row:
    dev = (G - G_ref).abs()
    errs = []
    for band in (LOW, MID):
        m = _band(omega, band)
        errs.append(float(dev[m].max() / G_ref[m].abs().max()))
    k = int(dev.argmax())
    return Row(label, family, init, N, clip, approximates, errs[0], errs[1], float(dev[k]), float(omega[k]))


def compare(N: int, *, seed: int = 0, clip: float = CLIP, others: bool = True) -> list[Row]:
    """Rows for size N: every approximation of HiPPO-LegS with the clip off (and on, where it applies),
    then (``others``) the remaining inits against HiPPO-LegS for scale."""
    omega = frequency_grid(N)
    A_H, B_H = hippo("legs", N)
    x_H = _resolvent_B(A_H, B_H, omega)  # shared by every reference that uses B_H
    rows = []
    for label, family, init, takes_clip, ref_B in APPROXIMATIONS:
        for c in (None, clip) if takes_clip else (None,):
            sys_ = siso_system(init, N, family=family, b_clip=c, seed=seed)
            assert sys_.C_out is not None and sys_.B_in is not None
            x = x_H if ref_B == "B_H" else _resolvent_B(A_H, sys_.B_in, omega)
            G_ref = x @ sys_.C_out.to(torch.complex128)
            rows.append(_row(label, family, init, N, c if takes_clip else float("nan"), True,
                             omega, sys_(omega), G_ref))
    if others:
        G_ref = x_H @ siso_system("legs", N, family="s4d", seed=seed).C_out.to(torch.complex128)
        for label, family, init in OTHERS:
            G = siso_system(init, N, family=family, seed=seed)(omega)
            rows.append(_row(label, family, init, N, float("nan"), False, omega, G, G_ref))
    return rows


def _clip_str(c: Optional[float]) -> str:
    if c is None:
        return "off"
    return "n/a" if c != c else f"{c:g}"


def markdown_table(rows: Sequence[Row], stars: Optional[dict[int, tuple[float, float, float]]] = None) -> str:
    """The comparison as markdown: approximations, then (if any) the other inits, then omega*."""
    head = ["| init | N | B clip | rel. err, omega 0.01-100 | rel. err, omega 100-1000 | max abs dev "
            "| at omega |",
            "|---|---:|---|---:|---:|---:|---:|"]

    def line(r: Row) -> str:
        return (f"| {r.label} | {r.N} | {_clip_str(r.clip)} | {r.err_low:.3g} | {r.err_mid:.3g} | "
                f"{r.max_dev:.3g} | {r.omega_max:.4g} |")

    approx = [r for r in rows if r.approximates]
    other = [r for r in rows if not r.approximates]
    out = head + [line(r) for r in sorted(approx, key=lambda r: (r.label, r.N))]
    if other:
        out += ["", "Inits not built from HiPPO-LegS, against HiPPO-LegS (different systems; for scale "
                "only):",
                ""] + head + [line(r) for r in sorted(other, key=lambda r: (r.label, r.N))]
    if stars:
        out += ["", "| N | omega* (S4D-LegS, B clip off) | RMS deviation there | omega* (B clip 2) |",
                "|---:|---:|---:|---:|"]
        out += [f"| {N} | {s[0]:.2f} | {s[1]:.3g} | {s[2]:.2f} |" for N, s in sorted(stars.items())]
    return "\n".join(out) + "\n"


def stars_for(sizes: Sequence[int], clip: float = CLIP) -> dict[int, tuple[float, float, float]]:
    """``{N: (omega*, deviation, omega* with the clip)}`` (C-free definition of :func:`omega_star`)."""
    out = {}
    for N in sizes:
        w, d = omega_star(N)
        out[N] = (w, d, omega_star(N, b_clip=clip)[0])
    return out


def plot(path: str | Path, sizes: Sequence[int] = SIZES, seed: int = 0, clip: float = CLIP) -> Path:
    """|G(i omega)| of HiPPO-LegS, S4D-LegS (clip off/on), S4-PTD and S4, one panel per N (PNG)."""
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError("the plot needs matplotlib: pip install matplotlib "
                          "(or the [train] extra of structured-ssm)") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sizes), figsize=(4 * len(sizes), 3.4), squeeze=False)
    for ax, N in zip(axes[0], sizes):
        omega = frequency_grid(N)
        A_H, B_H = hippo("legs", N)
        C = siso_system("legs", N, family="s4d", seed=seed).C_out.to(torch.complex128)
        ax.loglog(omega, (_resolvent_B(A_H, B_H, omega) @ C).abs(), "k", lw=2, label="HiPPO-LegS")
        for label, family, init, c, style in (("S4D-LegS", "s4d", "legs", None, "C3"),
                                              (f"S4D-LegS, clip {clip:g}", "s4d", "legs", clip, "C1"),
                                              ("S4-PTD", "s4d", "ptd", None, "C0"),
                                              ("S4 (DPLR)", "s4", "legs", None, "C2--")):
            G = siso_system(init, N, family=family, b_clip=c, seed=seed)(omega)
            ax.loglog(omega, G.abs(), style, lw=1, label=label)
        ax.set_title(f"N = {N}")
        ax.set_xlabel("omega")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("|G(i omega)|")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ssm.init transfer", description=__doc__.splitlines()[0])
    parser.add_argument("-N", "--sizes", type=int, nargs="+", default=list(SIZES), help="state sizes (even)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn C (and S5's B)")
    parser.add_argument("--clip", type=float, default=CLIP, help="B clip of the 'on' rows (default 2)")
    parser.add_argument("--no-others", action="store_true", help="only the approximations of HiPPO-LegS")
    parser.add_argument("--markdown", type=Path, default=None, help="write the tables to this file")
    parser.add_argument("--plot", type=Path, default=None, help="write |G| against omega to this PNG")
    parser.add_argument("--omega-star", type=int, default=None, metavar="N",
                        help="only print omega* (where S4D-LegS deviates most) for state size N")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # small dense algebra: one thread is fastest and reproducible
    if args.omega_star is not None:
        w, d = omega_star(args.omega_star)
        print(f"omega* = {w:.4f} (N = {args.omega_star}, S4D-LegS, B clip off; RMS deviation {d:.4g})")
        return
    rows = [r for N in args.sizes
            for r in compare(N, seed=args.seed, clip=args.clip, others=not args.no_others)]
    text = markdown_table(rows, stars_for(args.sizes, args.clip))
    print(text)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
        print(f"wrote {args.markdown}")
    if args.plot is not None:
        print(f"wrote {plot(args.plot, args.sizes, args.seed, args.clip)}")
