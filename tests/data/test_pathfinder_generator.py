"""Pathfinder generator: connectivity checked on the pixel grid by a breadth-first search written here,
after dilating the strokes by the dash gap; negatives must stay apart under the same dilation."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from ssm.data import PathfinderDataModule
from ssm.data.generate.__main__ import main as generate_main
from ssm.data.generate.pathfinder import PathfinderConfig, render_sample, write_pathfinder

N4 = [(-1, 0), (1, 0), (0, -1), (0, 1)]
N8 = N4 + [(-1, -1), (-1, 1), (1, -1), (1, 1)]


def grow(on: np.ndarray, r: int) -> np.ndarray:
    """Every pixel within Chebyshev distance r of a lit pixel (plain loops over lit pixels)."""
    out = np.zeros_like(on)
    n = on.shape[0]
    for y, x in zip(*np.nonzero(on)):
        out[max(0, y - r): min(n, y + r + 1), max(0, x - r): min(n, x + r + 1)] = True
    return out


def reachable(on: np.ndarray, start: tuple[int, int], moves) -> np.ndarray:
    seen = np.zeros_like(on)
    seen[start] = True
    todo = deque([start])
    while todo:
        y, x = todo.popleft()
        for dy, dx in moves:
            v, u = y + dy, x + dx
            if 0 <= v < on.shape[0] and 0 <= u < on.shape[1] and on[v, u] and not seen[v, u]:
                seen[v, u] = True
                todo.append((v, u))
    return seen


def find_markers(on: np.ndarray, side: int) -> list[tuple[int, int]]:
    """Centres of the solid side x side squares (strokes are thinner, so only markers fill one)."""
    n = on.shape[0]
    full = np.zeros((n, n), dtype=bool)
    for y in range(n - side + 1):
        for x in range(n - side + 1):
            full[y, x] = on[y:y + side, x:x + side].all()
    groups, left = [], full.copy()
    while left.any():
        start = tuple(int(v) for v in np.argwhere(left)[0])
        g = reachable(left, start, N8)
        left &= ~g
        ys, xs = np.nonzero(g)
        groups.append((int(ys.min()) + side // 2, int(xs.min()) + side // 2))
    return groups


@pytest.mark.parametrize("resolution, count", [(32, 40), (64, 10), (128, 4)])
def test_positives_connect_and_negatives_stay_apart(resolution, count):
    cfg = PathfinderConfig(resolution=resolution)
    s = resolution // 32
    gap = int(cfg.gap * s)
    labels, broken_without_dilation = [], 0
    for i in range(count):
        img, label, _, _ = render_sample(cfg, seed=11, index=i)
        on = img > 0
        markers = find_markers(on, cfg.marker * s)
        assert len(markers) == 2, f"image {i}: found {len(markers)} markers"
        grown = grow(on, gap)
        if label == 1:
            assert reachable(grown, markers[0], N4)[markers[1]], f"image {i}: positive not connected"
            broken_without_dilation += not reachable(on, markers[0], N8)[markers[1]]
        else:
            assert not reachable(grown, markers[0], N8)[markers[1]], f"image {i}: negative connected"
        labels.append(label)
    assert sum(labels) == count // 2  # balanced
    # dashed: without the dilation most positives fall apart (at 32x32 a one-pixel gap on a diagonal
    # can still touch corner to corner, so not all of them)
    assert broken_without_dilation >= 0.75 * sum(labels), f"only {broken_without_dilation} broken"


def test_deterministic_and_seed_dependent():
    cfg = PathfinderConfig()
    a, b, c = render_sample(cfg, 3, 5), render_sample(cfg, 3, 5), render_sample(cfg, 4, 5)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert not np.array_equal(a[0], c[0])
    assert a[0].dtype == np.uint8 and set(np.unique(a[0]).tolist()) <= {0, 255}
    assert a[3] >= 2  # two marked contours at least, usually distractors too


def test_written_layout_loads(tmp_path):
    root = write_pathfinder(tmp_path, 30, PathfinderConfig(), seed=2)
    assert root == tmp_path / "pathfinder32" / "curv_contour_length_14"
    first = (root / "metadata" / "0.npy").read_text().splitlines()[0].split()
    assert first[:2] == ["imgs/0", "sample_0.png"] and first[3] in ("0", "1")
    dm = PathfinderDataModule(tmp_path, batch_size=30, resolution=32, tokens=True, split_seed=0)
    dm.setup()
    ds = dm.train_set.dataset
    assert len(ds) == 30 and int(ds.labels.sum()) == 15
    for i in (0, 7, 29):
        img, label, _, _ = render_sample(PathfinderConfig(), 2, i)
        x, y = ds[i]
        assert y == label and x.tolist() == img.reshape(-1).tolist()


def test_cli(tmp_path):
    assert generate_main(["pathfinder", "--out", str(tmp_path), "--n", "4", "--resolution", "64",
                          "--workers", "1"]) == 0
    assert len(list((tmp_path / "pathfinder64" / "curv_contour_length_14" / "imgs" / "0").glob("*.png"))) == 4
