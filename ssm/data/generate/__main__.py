"""Command line: ``python -m ssm.data.generate {listops,pathfinder} --out DIR [options]``.

Both generators are deterministic in ``--seed`` and give the same files for any ``--workers``. They
need numpy, and Pillow for Pathfinder's PNGs; tqdm draws a progress bar when installed. Lightning is
not needed. Long Range Arena: Tay et al., arXiv:2011.04006.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import types

from ssm._extras import missing_dependency

from .listops import ListOpsConfig, write_listops
from .pathfinder import PathfinderConfig, write_pathfinder

PROG = "python -m ssm.data.generate"


def _bar(total: int, desc: str):  # noqa: ANN202
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is optional: generate without one
        return contextlib.nullcontext(types.SimpleNamespace(update=lambda n=1: None))
    return tqdm(total=total, desc=desc, unit="ex", dynamic_ncols=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__)
    sub = p.add_subparsers(dest="task", required=True)
    lo = sub.add_parser("listops", help="write basic_{train,val,test}.tsv (LRA listops-1000 layout)")
    lo.add_argument("--out", required=True, help="output folder (gets basic_*.tsv)")
    lo.add_argument("--n", type=int, default=96000, help="training examples (LRA: 96000)")
    lo.add_argument("--n-val", type=int, default=2000)
    lo.add_argument("--n-test", type=int, default=2000)
    lo.add_argument("--min-length", type=int, default=500)
    lo.add_argument("--max-length", type=int, default=2000)
    lo.add_argument("--max-depth", type=int, default=10)
    lo.add_argument("--max-args", type=int, default=10)
    pf = sub.add_parser("pathfinder", help="write pathfinder<R>/curv_contour_length_14 (LRA layout)")
    pf.add_argument("--out", required=True, help="output folder (gets pathfinder<R>/...)")
    pf.add_argument("--n", type=int, default=200000, help="images (LRA: 200000 per resolution)")
    pf.add_argument("--resolution", type=int, default=32, choices=(32, 64, 128))
    pf.add_argument("--distractors", type=int, default=4)
    for q in (lo, pf):
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                       help="processes (default: all CPUs)")
    a = p.parse_args(argv)
    if a.task == "listops":
        cfg = ListOpsConfig(max_depth=a.max_depth, max_args=a.max_args, min_length=a.min_length,
                            max_length=a.max_length)
        with _bar(a.n + a.n_val + a.n_test, "listops") as bar:
            paths = write_listops(a.out, a.n, a.n_val, a.n_test, seed=a.seed, cfg=cfg, workers=a.workers,
                                  progress=bar.update)
        print("\n".join(str(v) for v in paths.values()))
    else:
        try:
            import PIL.Image  # noqa: F401  (writes the PNGs; checked before any folder is made)
        except ModuleNotFoundError as err:
            print(missing_dependency(PROG + " pathfinder", err), file=sys.stderr)
            return 1
        cfg = PathfinderConfig(resolution=a.resolution, n_distractors=a.distractors)
        with _bar(a.n, f"pathfinder{a.resolution}") as bar:
            root = write_pathfinder(a.out, a.n, cfg, seed=a.seed, workers=a.workers, progress=bar.update)
        print(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
