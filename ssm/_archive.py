"""Integrity check of ``torch.save`` files before they are unpickled (torch-only, no Lightning).

``torch.save`` writes a zip archive whose members carry CRC-32 checksums. Reading every member and
comparing its checksum finds a truncated or corrupted checkpoint up front, with a message naming the
file and the member, instead of a confusing unpickling error (or silently wrong weights) later.
Used by ``SequenceModel.from_checkpoint`` (ssm/models/weights.py); usable by any loader.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Union

__all__ = ["CheckpointError", "verify_archive"]


class CheckpointError(ValueError):
    """A file that is not a readable ssm checkpoint or weights file; the message says why."""


def verify_archive(path: Union[str, Path]) -> None:
    """Check a ``torch.save`` file's zip structure and every member's CRC-32.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a zip archive (truncated, or not written by ``torch.save``), or a member
            whose data does not match its CRC-32.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except zipfile.BadZipFile as err:
        raise CheckpointError(
            f"{path} is not a readable torch.save archive ({err}): truncated or corrupted?"
        ) from err
    except (OSError, EOFError, zipfile.LargeZipFile) as err:
        raise CheckpointError(f"{path} cannot be read as an archive: {err}") from err
    if bad is not None:
        raise CheckpointError(f"{path} is corrupted: the CRC-32 of its member {bad!r} does not match")
