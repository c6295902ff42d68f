"""``ssm-report relabel``: give a committed result another variant when a recipe default changes.

When a probe's setting becomes an experiment's default, two kinds of result change their label but
not their numbers: the runs made with the old default become a named variant (their command gains the
override that reproduces them under the new default), and the probe runs become the ``default``
variant (their command keeps the override, which reproduces them before and after the change, and
loses ``variant=...``). :func:`relabel` does one such change on one result JSON: it sets ``variant``,
rewrites ``command``, records why in ``recipe_note``, and renames the JSON and its weights file to
the name :mod:`ssm.training.report` gives that variant. The numbers, the curve and the provenance
(``git_commit``, ``date``, ``run_dir``) are left as they are.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Iterable, Optional

from ssm.training.report import _file_stem, _is_result, _read_json, dump_result

__all__ = ["relabel", "rewrite_command", "parser", "main"]

_VARIANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_OVERRIDE = re.compile(r"^[+~]{0,2}[A-Za-z_][\w./@-]*=")


def _key(token: str) -> Optional[str]:
    """The config key a Hydra override token sets (``+a.b=1`` -> ``a.b``), or None for other tokens."""
    if not _OVERRIDE.match(token):
        return None
    return token.split("=", 1)[0].lstrip("+~")


def _check_overrides(overrides: Iterable[str]) -> list[str]:
    out = []
    for o in overrides:
        if not isinstance(o, str) or not _OVERRIDE.match(o) or _key(o) in ("variant", "experiment"):
            raise ValueError(f"overrides: expected Hydra overrides KEY=VALUE (not variant= or experiment=), "
                             f"got {o!r}")
        out.append(o)
    return out


def rewrite_command(command: str, variant: str, overrides: Iterable[str] = ()) -> str:
    """``command`` with ``overrides`` (and ``variant=NAME`` unless ``default``) right after ``experiment=``.

    Tokens setting the same keys, and any earlier ``variant=`` token, are removed first, so the result
    reproduces the run with exactly these values. Without an ``experiment=`` token the new tokens follow
    the program name.
    """
    overrides = _check_overrides(overrides)
    tokens = shlex.split(command)
    if not tokens:
        raise ValueError("command: expected the run's ssm-train command line, got an empty string")
    drop = {_key(o) for o in overrides} | {"variant"}
    kept = [t for i, t in enumerate(tokens) if i == 0 or _key(t) not in drop]
    new = overrides + ([] if variant == "default" else [f"variant={variant}"])
    at = next((i + 1 for i, t in enumerate(kept) if _key(t) == "experiment"), 1)
    return shlex.join(kept[:at] + new + kept[at:])


def relabel(path: str | Path, variant: str, overrides: Iterable[str] = (), note: Optional[str] = None) -> Path:
    """Relabel the result JSON at ``path`` as ``variant``; returns the JSON's new path.

    Args:
        path: a result JSON written by ``ssm-report --out``.
        variant: the new variant, ``default`` or a name (letters, digits, ``.``, ``_``, ``-``).
        overrides: Hydra overrides that reproduce the run under the current defaults (``ssm_lr=0.001``).
        note: the reason, stored as ``recipe_note``; appended to an existing note after "; later "
            so the history of relabels stays readable (the note is left as it is when None).

    The weights named by ``checkpoint`` are renamed with the JSON. Nothing is changed when a check
    fails: a missing file, a file that is not a result, a bad name, or a target that already exists.
    """
    path = Path(path)
    if not isinstance(variant, str) or not _VARIANT.match(variant):
        raise ValueError(f"variant: expected 'default' or a name of letters, digits, '.', '_' or '-', got {variant!r}")
    if not path.is_file():
        raise FileNotFoundError(f"relabel: no result file at {path}")
    data = _read_json(path)
    if data is None or not _is_result(data) or not isinstance(data.get("command"), str):
        raise ValueError(f"relabel: {path} is not a result JSON with a command (written by ssm-report --out)")
    res = dict(data, variant=variant, command=rewrite_command(data["command"], variant, overrides))
    if note is not None:
        res["recipe_note"] = f"{data['recipe_note']}; later {note}" if data.get("recipe_note") else note
    stem = _file_stem(res)
    target = path.with_name(f"{stem}.json")
    moves = []
    if data.get("checkpoint"):
        old_w, new_w = path.with_name(data["checkpoint"]), path.with_name(f"{stem}.pt")
        if not old_w.is_file():
            raise FileNotFoundError(f"relabel: {path} names weights {data['checkpoint']!r}, not found beside it")
        res["checkpoint"] = new_w.name
        moves.append((old_w, new_w))
    for old, new in [(path, target)] + moves:
        if new != old and new.exists():
            raise FileExistsError(f"relabel: {new} already exists; relabelling {path} would overwrite it")
    for old, new in moves:
        old.rename(new)
    target.write_text(dump_result(res))
    if target != path:
        path.unlink()
    return target


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``ssm-report relabel``."""
    p = argparse.ArgumentParser(
        prog="ssm-report relabel",
        description="Give result JSONs another variant (and the command overrides that reproduce them), "
        "renaming each JSON and its weights to match.",
    )
    p.add_argument("files", nargs="+", type=Path, help="result JSONs written by ssm-report --out")
    p.add_argument("--variant", required=True, help="the new variant: 'default' or a name")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="an override placed in the command after experiment= (repeatable)")
    p.add_argument("--note", help="why, stored as recipe_note (appended to an existing one)")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    """``ssm-report relabel JSON... --variant NAME [--set KEY=VALUE ...] [--note TEXT]``."""
    p = parser()
    a = p.parse_args(argv)
    try:
        _check_overrides(a.overrides)
        for f in a.files:
            print(relabel(f, a.variant, a.overrides, a.note))
    except (OSError, ValueError) as err:
        p.exit(2, f"{err}\n")
    return 0
