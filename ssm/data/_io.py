"""Shared error types and file helpers for the data loaders.

Every loader reports a missing data set with the path it looked for and how to obtain the data, and a
malformed file with the file name and the (1-based) line or record where the problem is.
Long Range Arena: Tay et al., arXiv:2011.04006.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import IO, Sequence

__all__ = ["DatasetNotFoundError", "MalformedFileError", "find_dir", "find_file", "open_maybe_gz"]


class DatasetNotFoundError(FileNotFoundError):
    """A data set is not where the loader looked; the message names the paths and how to get it."""


class MalformedFileError(ValueError):
    """A data file does not have the expected format; the message names the file and line."""

    def __init__(self, path: str | os.PathLike, line: int | None, problem: str) -> None:
        where = f"{path}" if line is None else f"{path}, line {line}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line


def _missing(what: str, tried: Sequence[Path], how: str) -> DatasetNotFoundError:
    paths = "\n  ".join(str(p) for p in tried)
    return DatasetNotFoundError(f"{what} not found. Looked for:\n  {paths}\n{how}")


def find_dir(candidates: Sequence[Path], marker: str, what: str, how: str) -> Path:
    """Return the first candidate directory that contains ``marker`` (a file or folder name).

    Raises DatasetNotFoundError naming every path tried and ``how`` (instructions to get the data).
    """
    for c in candidates:
        if (Path(c) / marker).exists():
            return Path(c)
    raise _missing(what, [Path(c) / marker for c in candidates], how)


def find_file(directory: Path, name: str, what: str, how: str, allow_gz: bool = False) -> Path:
    """Return ``directory/name`` (or ``name.gz`` when ``allow_gz``), else raise DatasetNotFoundError."""
    p = Path(directory) / name
    if p.is_file():
        return p
    tried = [p]
    if allow_gz:
        gz = p.with_name(p.name + ".gz")
        if gz.is_file():
            return gz
        tried.append(gz)
    raise _missing(what, tried, how)


def open_maybe_gz(path: Path) -> IO[bytes]:
    """Open a file for binary reading, transparently decompressing a ``.gz`` suffix."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")
