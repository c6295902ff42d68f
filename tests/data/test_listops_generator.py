"""ListOps generator: labels checked by an independent evaluator, LRA's format, and the LRA length and
depth distributions (compared with a plain rejection sampler written here from the LRA specification)."""

from __future__ import annotations

import random
import statistics

import numpy as np
import pytest
from scipy import stats

from ssm.data import ListOpsDataModule
from ssm.data.generate.__main__ import main as generate_main
from ssm.data.generate.listops import ListOpsConfig, sample_expression, write_listops
from ssm.data.lra.listops import read_listops_tsv

OPS = {"[MAX": max, "[MIN": min, "[MED": lambda a: int(statistics.median(a)), "[SM": lambda a: sum(a) % 10}


def parse_binary(tokens: list[str], i: int = 0):
    """LRA's written form: an item is a word, or '(' item item ')'. Returns (tree, next index)."""
    if tokens[i] != "(":
        return tokens[i], i + 1
    left, i = parse_binary(tokens, i + 1)
    right, i = parse_binary(tokens, i)
    assert tokens[i] == ")", f"expected ')' at {i}, got {tokens[i]}"
    return (left, right), i + 1


def flatten(tree) -> tuple[str, list] | str:
    """Binary pairs ((((op, a0), a1), ...), ']') -> (op, [args]); asserts LRA's pair structure."""
    if isinstance(tree, str):
        assert tree.isdigit() and len(tree) == 1, tree
        return tree
    head, last = tree
    assert last == "]", f"an operator node must close with ']', got {last!r}"
    args = []
    while isinstance(head, tuple):
        head, arg = head
        args.append(flatten(arg))
    assert head in OPS, head
    return head, args[::-1]


def evaluate(node) -> int:
    if isinstance(node, str):
        return int(node)
    op, args = node
    return OPS[op]([evaluate(a) for a in args])


def measure(node, depth: int = 1) -> tuple[int, int, int]:
    """(token count without parentheses, depth counting leaves, largest argument count)."""
    if isinstance(node, str):
        return 1, depth, 0
    parts = [measure(a, depth + 1) for a in node[1]]
    return 2 + sum(p[0] for p in parts), max(p[1] for p in parts), max([len(node[1])] + [p[2] for p in parts])


def leaf_depths(node, depth: int = 1) -> list[int]:
    if isinstance(node, str):
        return [depth]
    return [d for a in node[1] for d in leaf_depths(a, depth + 1)]


def reference_stats(rng: random.Random, n: int, lo: int = 500, hi: int = 2000) -> dict[str, list[float]]:
    """Plain LRA rejection sampling, whole trees drawn before the length test: per accepted tree its
    length, depth, root argument count and mean leaf depth."""
    def tree(depth: int) -> tuple[int, list[int], int]:
        if depth < 10 and rng.random() < 0.25:
            kids = [tree(depth + 1) for _ in range(rng.randint(2, 10))]
            return 2 + sum(k[0] for k in kids), [d for k in kids for d in k[1]], len(kids)
        return 1, [depth], 0

    out: dict[str, list[float]] = {"length": [], "depth": [], "root_args": [], "mean_leaf_depth": []}
    while len(out["length"]) < n:
        length, leaves, root_args = tree(1)
        if lo < length < hi:
            out["length"].append(length)
            out["depth"].append(max(leaves))
            out["root_args"].append(root_args)
            out["mean_leaf_depth"].append(float(np.mean(leaves)))
    return out


@pytest.fixture(scope="module")
def samples():
    rng = random.Random(1234)
    return [sample_expression(rng) for _ in range(250)]


def test_labels_are_true_values_and_format_is_lras(samples):
    seen_ops, values = set(), set()
    for src, value, n_tokens in samples:
        toks = src.split()
        tree, end = parse_binary(toks)
        assert end == len(toks)
        node = flatten(tree)
        assert evaluate(node) == value
        length, depth, max_args = measure(node)
        assert length == n_tokens == sum(t not in "()" for t in toks)
        assert 500 < length < 2000 and depth <= 10 and 2 <= max_args <= 10
        seen_ops |= {t for t in toks if t.startswith("[")}
        values.add(value)
    assert seen_ops == set(OPS) and values == set(range(10))


def test_median_is_integer_part():
    # even count: median of 1 and 4 is 2.5 -> 2 (LRA: int(np.median))
    src = "( ( ( [MED 1 ) 4 ) ] )"
    assert evaluate(flatten(parse_binary(src.split())[0])) == 2


def test_length_and_depth_distributions_match_lra_sampler(samples):
    ref = reference_stats(random.Random(99), 250)
    nodes = [flatten(parse_binary(s[0].split())[0]) for s in samples]
    gen = {"length": [s[2] for s in samples], "depth": [max(leaf_depths(t)) for t in nodes],
           "root_args": [len(t[1]) for t in nodes],
           "mean_leaf_depth": [float(np.mean(leaf_depths(t))) for t in nodes]}
    pvals = {k: stats.ks_2samp(gen[k], ref[k]).pvalue for k in ("length", "root_args", "mean_leaf_depth")}
    assert min(pvals.values()) > 1e-3, f"KS p-values against the LRA sampler: {pvals}"
    # LRA's setting: lengths spread over most of (500, 2000); every kept tree reaches depth 10
    assert min(gen["length"]) < 650 and max(gen["length"]) > 1700
    assert gen["depth"] == ref["depth"] == [10] * 250


def test_write_is_deterministic_and_worker_independent(tmp_path):
    cfg = ListOpsConfig(min_length=30, max_length=200)
    a = write_listops(tmp_path / "a", 600, 5, 5, seed=7, cfg=cfg, workers=1)
    b = write_listops(tmp_path / "b", 600, 5, 5, seed=7, cfg=cfg, workers=2)
    c = write_listops(tmp_path / "c", 600, 5, 5, seed=8, cfg=cfg, workers=1)
    for split in ("train", "val", "test"):
        assert a[split].read_bytes() == b[split].read_bytes()
    assert a["train"].read_bytes() != c["train"].read_bytes()
    seqs, labels = read_listops_tsv(a["train"])
    assert len(seqs) == 600 and np.bincount(labels, minlength=10).min() > 0
    sources = [line.split("\t")[0] for p in a.values() for line in p.read_text().splitlines()[1:]]
    assert len(set(sources)) == len(sources) == 610


def test_cli_writes_what_the_loader_reads(tmp_path, capsys):
    rc = generate_main(["listops", "--out", str(tmp_path), "--n", "8", "--n-val", "3", "--n-test", "3",
                        "--min-length", "20", "--max-length", "80", "--workers", "1"])
    assert rc == 0
    dm = ListOpsDataModule(tmp_path, batch_size=8)
    dm.setup()
    b = next(iter(dm.train_dataloader()))
    assert b["x"].shape[0] == 8 and 20 < int(b["lengths"].min()) and int(b["lengths"].max()) < 80
