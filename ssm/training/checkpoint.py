"""Checkpoint files: verified loading and atomic saving, with torch and the standard library only.

``torch.save`` writes a zip archive whose members carry a CRC-32, but ``torch.load`` does not check
them: a checkpoint whose bytes changed after saving (a bad sector, an interrupted copy) loads with
wrong weights and no error. :func:`load_checkpoint` first says plainly what a file is when it is not
a zip archive (a directory, empty, text, other bytes, truncated), reads every member through
:mod:`zipfile`, which checks each CRC-32 (:func:`ssm._archive.verify_archive`), then loads with
``weights_only=True`` (ssm-train checkpoints hold tensors and plain values only).
:func:`atomic_save` writes into a temporary file next to the target, fsyncs it, renames it over the
target and fsyncs the folder, so a kill at any moment leaves the previous file or the new one, never a
truncated mix. Errors are :class:`CheckpointError` (that of ``ssm._archive``, shared with
``SequenceModel.from_checkpoint``) and name the file, what was expected and what came. The Lightning
side (``ssm-train``'s ``CheckpointIO``) is :mod:`ssm.training.checkpoint_io`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import secrets
import zipfile
from pathlib import Path
from typing import Any, Union

import torch

from ssm._archive import CheckpointError, verify_archive

__all__ = [
    "CheckpointError",
    "verify_checkpoint",
    "load_checkpoint",
    "atomic_save",
    "remove_stale_temporaries",
]

PathLike = Union[str, "os.PathLike[str]"]

# Keys of every checkpoint Lightning writes (the trainer's dump_checkpoint).
LIGHTNING_KEYS = ("state_dict", "pytorch-lightning_version")

# Temporary files of atomic_save: ".<target name>.<pid>.<8 hex digits>.tmp" next to the target.
_TEMPORARY = re.compile(r"^\..+\.\d+\.[0-9a-f]{8}\.tmp$")


def _describe_start(head: bytes, size: int) -> str:
    text = head.decode("utf-8", errors="replace").rstrip("\ufffd")  # a cut multi-byte character at the end
    if text and all(c.isprintable() or c.isspace() for c in text):
        return f"a text file starting {text[:32]!r}"
    return f"{size} bytes starting {head[:8].hex(' ')} (not a zip archive)"


def verify_checkpoint(path: PathLike) -> Path:
    """Check that ``path`` is a complete torch zip archive whose members all match their CRC-32.

    Reads the whole file once. Raises :class:`CheckpointError` naming the file and what is wrong
    (missing, a directory, empty, not a zip archive, truncated, or a member failing its CRC-32).
    Returns the path.
    """
    p = Path(path)
    if p.is_dir():
        hint = next((c for c in (p / "checkpoints" / "last.ckpt", p / "last.ckpt") if c.is_file()), None)
        raise CheckpointError(
            f"checkpoint {p}: expected a checkpoint file, got a directory"
            + (f" (did you mean {hint}?)" if hint else "")
        )
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist")
    size = p.stat().st_size
    if size == 0:
        raise CheckpointError(
            f"checkpoint {p}: expected a zip archive written by torch.save, got an empty file (0 bytes)"
        )
    if not zipfile.is_zipfile(p):
        with open(p, "rb") as f:
            head = f.read(64)
        came = (
            f"{size} bytes that start like a zip archive but have no end record (truncated?)"
            if head.startswith(b"PK\x03\x04")
            else _describe_start(head, size)
        )
        raise CheckpointError(f"checkpoint {p}: expected a zip archive written by torch.save, got {came}")
    verify_archive(p)  # every member's CRC-32
    return p


def load_checkpoint(path: PathLike, map_location: Any = "cpu", *, lightning: bool = True) -> Any:
    """Verify ``path`` (:func:`verify_checkpoint`) and load it with ``torch.load(weights_only=True)``.

    Args:
        path: the checkpoint file.
        map_location: passed to ``torch.load`` (default: every tensor on the CPU).
        lightning: also require a Lightning checkpoint (a dict with ``state_dict`` and
            ``pytorch-lightning_version``, as ``ssm-train`` writes); False accepts any weights-only
            content, e.g. a bare ``state_dict``.
    Returns:
        The loaded object (for ``lightning=True`` the checkpoint dict).
    """
    p = verify_checkpoint(path)
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"WeightsUnpickler error:\s*(\S.*)", str(err))  # torch's reason, without its advice
        first = found.group(1).strip() if found else type(err).__name__
        raise CheckpointError(
            f"checkpoint {p}: expected tensors and plain values only (a weights-only load), got pickled "
            f"Python objects that such a load refuses ({first})"
        ) from err
    except (RuntimeError, EOFError, OSError, KeyError, ValueError) as err:
        raise CheckpointError(
            f"checkpoint {p}: torch.load cannot read it ({type(err).__name__}: {err})"
        ) from err
    if lightning:
        if not isinstance(ckpt, dict):
            raise CheckpointError(
                f"checkpoint {p}: expected a Lightning checkpoint (a dict with "
                f"{', '.join(map(repr, LIGHTNING_KEYS))}), got a {type(ckpt).__name__}"
            )
        missing = [k for k in LIGHTNING_KEYS if k not in ckpt]
        if missing:
            keys = list(ckpt)
            tensors = bool(keys) and all(isinstance(v, torch.Tensor) for v in ckpt.values())
            came = f"a bare state_dict of {len(keys)} tensors" if tensors else f"a dict with {len(keys)} keys"
            raise CheckpointError(
                f"checkpoint {p}: expected a Lightning checkpoint written by ssm-train (keys "
                f"{', '.join(map(repr, LIGHTNING_KEYS))}, ...), got {came} "
                f"({', '.join(map(repr, keys[:3]))}{', ...' if len(keys) > 3 else ''})"
            )
    return ckpt


def remove_stale_temporaries(directory: PathLike) -> list[Path]:
    """Delete the temporary files that an interrupted :func:`atomic_save` left in ``directory``.

    A checkpoint folder has one writer (one run, global rank 0), so any temporary file found there
    before a save belongs to a save that was killed. Returns the removed paths.
    """
    d = Path(directory)
    removed = []
    if not d.is_dir():
        return removed
    for child in d.iterdir():
        if _TEMPORARY.match(child.name) and child.is_file():
            with contextlib.suppress(FileNotFoundError):
                child.unlink()
                removed.append(child)
    return removed


def _fsync_directory(directory: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_save(obj: Any, path: PathLike) -> None:
    """``torch.save(obj, path)`` such that a kill at any moment leaves the old file or the new one.

    The temporary file lives in the target's folder (a rename is atomic only within one file system),
    is fsynced before it is renamed over the target with ``os.replace``, and the folder is fsynced after
    the rename so the new entry survives a power loss. Temporaries of earlier killed saves in the folder
    are removed first.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target.parent)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open with 0o666 keeps the usual umask-derived permissions (mkstemp would give 0o600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_directory(target.parent)
