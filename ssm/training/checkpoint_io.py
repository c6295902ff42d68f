"""The Lightning ``CheckpointIO`` of ``ssm-train``: atomic local saves and CRC-verified loads.

Lightning's ``TorchCheckpointIO`` writes through an fsspec transaction whose temporary file lives in the
system's temporary folder; when that is another file system, committing is a copy onto the target, and
a kill during the copy truncates the previous good checkpoint (and leaves the temporary file behind).
:class:`AtomicCheckpointIO` writes local files with :func:`ssm.training.checkpoint.atomic_save`
(temporary file in the target's folder, fsync, ``os.replace``, fsync of the folder) and checks every
zip member's CRC-32 before a local load (:func:`ssm.training.checkpoint.verify_checkpoint`). Remote
paths (``s3://`` and the like) keep Lightning's behaviour.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ssm.training.checkpoint import atomic_save, verify_checkpoint

__all__ = ["AtomicCheckpointIO"]


def _is_local(path: _PATH) -> bool:
    return isinstance(get_filesystem(path), LocalFileSystem)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local saves are atomic and whose local loads verify the file first.

    Use as ``pl.Trainer(plugins=[AtomicCheckpointIO()])`` (``ssm-train`` always does).
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Optional[Any] = None
    ) -> None:
        if storage_options is not None or not _is_local(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_save(checkpoint, path)

    def load_checkpoint(
        self,
        path: _PATH,
        map_location: Optional[Callable] = lambda storage, loc: storage,
        weights_only: Optional[bool] = None,
    ) -> dict[str, Any]:
        if _is_local(path) and os.path.exists(path):  # a missing file: Lightning's FileNotFoundError
            verify_checkpoint(path)
        return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
