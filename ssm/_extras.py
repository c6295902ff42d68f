"""The one-line message a command prints when a package of an optional extra is not installed.

``import ssm`` needs only torch, numpy and einops; the training commands (``ssm-train``, ``ssm-eval``)
need the ``[train]`` extra (lightning, hydra-core, torchmetrics, ...), and the Pathfinder generator
needs Pillow (also in ``[train]``). Installing the extra also installs the core dependencies.
"""

from __future__ import annotations

__all__ = ["TRAIN_EXTRA", "missing_dependency"]

TRAIN_EXTRA = 'pip install "structured-ssm[train]" (from a clone: pip install -e ".[train]")'


def missing_dependency(prog: str, err: ModuleNotFoundError) -> str:
    """``"<prog>: needs the [train] extra (module '<name>' is not installed); install it with ..."``."""
    name = err.name or str(err)
    return (f"{prog}: needs the [train] extra (module '{name}' is not installed); "
            f"install it with {TRAIN_EXTRA}")
