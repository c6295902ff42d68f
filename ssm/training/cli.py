"""Console entry points ``ssm-train`` and ``ssm-eval``.

They import the command's module only when called, so that without the ``[train]`` extra a command
prints one line naming the extra to install (exit status 1) instead of a ``ModuleNotFoundError``
traceback. A module of this package that fails to import is a bug and is raised as is.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from ssm._extras import missing_dependency

__all__ = ["train", "evaluate"]


def _call(prog: str, module: str, func: str) -> Any:
    try:
        command = getattr(importlib.import_module(module), func)
    except ModuleNotFoundError as err:
        if err.name is None or err.name.split(".")[0] == "ssm":
            raise
        print(missing_dependency(prog, err), file=sys.stderr)
        sys.exit(1)
    return command()


def train() -> Any:
    """``ssm-train``: :func:`ssm.training.train.main`."""
    return _call("ssm-train", "ssm.training.train", "main")


def evaluate() -> Any:
    """``ssm-eval``: :func:`ssm.training.evaluate.main`."""
    return _call("ssm-eval", "ssm.training.evaluate", "main")
