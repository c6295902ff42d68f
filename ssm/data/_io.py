"""Shared error types and file helpers for the data loaders.

Every loader reports a missing data set with the path it looked for and how to obtain the data, and a
malformed file (also an empty one, undecodable text or a truncated gzip stream) with the file name and
the (1-based) line or record where the problem is.
Long Range Arena: Tay et al., arXiv:2011.04006.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import IO, Sequence

__all__ = ["DatasetNotFoundError", "MalformedFileError", "find_dir", "find_file", "open_maybe_gz",
           "read_maybe_gz", "undecodable_text"]


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


def read_maybe_gz(path: Path) -> bytes:
    """The whole file, decompressed when its name ends in ``.gz``.

    Raises MalformedFileError naming the file when the gzip stream is truncated or corrupt (gzip itself
    raises EOFError or BadGzipFile without the file name).
    """
    path = Path(path)
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise MalformedFileError(path, None, f"expected a complete gzip stream, got a truncated or corrupt "
                                 f"one ({e}); download the file again") from None


def undecodable_text(path: Path, err: UnicodeDecodeError, encoding: str = "utf-8") -> MalformedFileError:
    """The error for a text file that ``encoding`` cannot decode, naming its first bad line and byte.

    Python's UnicodeDecodeError names neither the file nor the line (its offset counts from the start
    of a read buffer), so the file is scanned again line by line.
    """
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as e:
                byte = f"0x{raw[e.start]:02x} at column {e.start + 1}"
                return MalformedFileError(path, lineno, f"expected {encoding} text, got the byte {byte}; "
                                          "is this a binary file?")
    return MalformedFileError(path, None, f"expected {encoding} text: {err}")
