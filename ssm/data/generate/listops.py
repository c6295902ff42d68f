"""ListOps generator following the Long Range Arena specification (Tay et al., arXiv:2011.04006;
ListOps: Nangia & Bowman, arXiv:1804.06028).

A tree is drawn top-down from depth 1: below the maximum depth a node is an operator with probability
``op_prob`` (0.25 as in LRA), otherwise a digit 0-9; the maximum-depth level holds only digits, so trees
have at most ``max_depth`` levels counting the leaves. An operator takes 2..``max_args`` arguments
(uniform), then one of MAX, MIN, MED (integer part of the median), SM (sum modulo 10). Trees whose token
count (operators, digits and ``]``; the parentheses are not counted, as LRA's tokenizer drops them) lies
strictly between ``min_length`` and ``max_length`` are kept, the rest rejected; rejecting as soon as a
partial tree reaches ``max_length`` changes nothing about which trees are kept, only the cost.

Each operator with arguments v0..v(n-1) is written as LRA writes its binary pairs:
``( ( ( [MAX v0 ) v1 ) ] )`` for n = 2. Files are ``basic_{train,val,test}.tsv`` with the header
``Source<TAB>Target`` (csv module, ``\\r\\n`` line ends), the layout of ``lra_release/listops-1000``.
"""

from __future__ import annotations

import csv
import hashlib
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

__all__ = ["ListOpsConfig", "sample_expression", "generate_split", "write_listops", "OPERATORS"]

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
SPLITS = ("train", "val", "test")
_CHUNK = 500


@dataclass(frozen=True)
class ListOpsConfig:
    """Generator settings (LRA: depth 10, 10 arguments, lengths in (500, 2000), operator prob 0.25)."""

    max_depth: int = 10
    max_args: int = 10
    min_length: int = 500
    max_length: int = 2000
    op_prob: float = 0.25

    def __post_init__(self) -> None:
        if self.max_depth < 1 or self.max_args < 2:
            raise ValueError(f"need max_depth >= 1 and max_args >= 2, got {self.max_depth}, {self.max_args}")
        if not 0 <= self.min_length < self.max_length - 1:
            raise ValueError(f"need 0 <= min_length < max_length - 1, got {self.min_length}, "
                             f"{self.max_length}")
        if not 0 < self.op_prob < 1:
            raise ValueError(f"op_prob must lie in (0, 1), got {self.op_prob}")


class _TooLong(Exception):
    pass


def _apply(op: str, args: list[int]) -> int:
    if op == "[MAX":
        return max(args)
    if op == "[MIN":
        return min(args)
    if op == "[SM":
        return sum(args) % 10
    s = sorted(args)  # [MED: integer part of the median (LRA: int(np.median(args)))
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) // 2


def _tree(rng: random.Random, depth: int, cfg: ListOpsConfig, out: list[str], count: list[int]) -> int:
    """Append the tree's words to ``out``; return its value. ``count[0]`` tracks the token count."""
    if depth < cfg.max_depth and rng.random() < cfg.op_prob:
        n = rng.randint(2, cfg.max_args)
        count[0] += 2  # the operator and its closing bracket
        if count[0] >= cfg.max_length:
            raise _TooLong
        head = len(out)
        out.append("")  # placeholder for the opening parentheses and the operator
        args = []
        for k in range(n):
            args.append(_tree(rng, depth + 1, cfg, out, count))
            out.append(")")
        op = OPERATORS[rng.randrange(4)]
        out[head] = "( " * (n + 1) + op
        out.append("] )")
        return _apply(op, args)
    count[0] += 1
    if count[0] >= cfg.max_length:
        raise _TooLong
    v = rng.randrange(10)
    out.append(str(v))
    return v


def sample_expression(rng: random.Random, cfg: ListOpsConfig = ListOpsConfig()) -> tuple[str, int, int]:
    """Draw trees until one has an accepted length; return ``(source, value, n_tokens)``."""
    while True:
        out: list[str] = []
        count = [0]
        try:
            value = _tree(rng, 1, cfg, out, count)
        except _TooLong:
            continue
        if count[0] > cfg.min_length:
            return " ".join(out), value, count[0]


def _chunk_seed(seed: int, split: int, chunk: int) -> int:
    return int(np.random.SeedSequence([seed, split, chunk]).generate_state(1)[0])


def _make_chunk(args: tuple[int, int, int, int, ListOpsConfig]) -> list[tuple[str, int]]:
    seed, split, chunk, n, cfg = args
    rng = random.Random(_chunk_seed(seed, split, chunk))
    return [sample_expression(rng, cfg)[:2] for _ in range(n)]


def _chunks(seed: int, split: int, n: int, cfg: ListOpsConfig) -> list[tuple]:
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    return [(seed, split, c, min(_CHUNK, n - c * _CHUNK), cfg) for c in range(n_chunks)]


def generate_split(n: int, split: int, seed: int, cfg: ListOpsConfig = ListOpsConfig(), workers: int = 1,
                   progress: Callable[[int], None] | None = None) -> Iterator[list[tuple[str, int]]]:
    """Yield chunks of ``(source, value)`` for one split; identical for any ``workers``."""
    jobs = _chunks(seed, split, n, cfg)
    if workers <= 1:
        for job in jobs:
            rows = _make_chunk(job)
            if progress:
                progress(len(rows))
            yield rows
        return
    with ProcessPoolExecutor(workers) as ex:
        for rows in ex.map(_make_chunk, jobs):
            if progress:
                progress(len(rows))
            yield rows


def write_listops(out_dir: str | Path, n_train: int = 96000, n_val: int = 2000, n_test: int = 2000,
                  seed: int = 0, cfg: ListOpsConfig = ListOpsConfig(), workers: int = 1,
                  progress: Callable[[int], None] | None = None) -> dict[str, Path]:
    """Write ``basic_{train,val,test}.tsv`` into ``out_dir``; duplicates across splits are redrawn.

    Returns the paths written. Deterministic in ``seed`` and independent of ``workers``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seen: set[bytes] = set()  # 16-byte digests: the sources themselves would take ~0.5 GB at full size
    paths = {}
    for s_id, (name, n) in enumerate(zip(SPLITS, (n_train, n_val, n_test))):
        if n < 0:
            raise ValueError(f"n_{name} must be >= 0, got {n}")
        path = out_dir / f"basic_{name}.tsv"
        tmp = path.with_suffix(".tsv.part")
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f, delimiter="\t")
            w.writerow(["Source", "Target"])
            written, extra = 0, 0
            for rows in generate_split(n, s_id, seed, cfg, workers, progress):
                for src, val in rows:
                    key = hashlib.blake2b(src.encode(), digest_size=16).digest()
                    if key not in seen:
                        seen.add(key)
                        w.writerow([src, val])
                        written += 1
            while written < n:  # practically never: refill duplicates from further chunks
                extra += 1
                for src, val in _make_chunk((seed, s_id, 10**6 + extra, n - written, cfg)):
                    key = hashlib.blake2b(src.encode(), digest_size=16).digest()
                    if key not in seen and written < n:
                        seen.add(key)
                        w.writerow([src, val])
                        written += 1
        tmp.replace(path)
        paths[name] = path
    return paths
