"""Pathfinder generator (task: Linsley et al., arXiv:1805.08315; LRA: Tay et al., arXiv:2011.04006).

Every image holds two long dashed contours and up to ``n_distractors`` more of the same kind, all drawn
white on black. A contour is a curve of ``n_dashes`` dashes: its heading turns at a constant rate within
each dash, the rate drawn uniformly from [-max_curvature, max_curvature] per dash. Two square markers
sit on contour ends: in a positive image (label 1) at both ends of the first contour, in a negative one
(label 0) at one end of each of the two contours, so the number of contours never gives the label away.

Geometry is set at 32x32 and scaled by ``s = resolution / 32``: dash ``1.5 s``, gap ``s`` (the "dash gap"),
stroke width ``s``, marker side ``3s``, arc sampled every ``0.25 s``. Consecutive dashes lie at most
``gap + 1`` pixels apart (Chebyshev), so dilating the strokes by the gap (a (2 gap + 1)-square) joins
every contour into one piece; contours are placed so that no two come within ``2 gap + 1`` pixels,
so after the same dilation different contours stay apart. Labels alternate within pairs of images in a
seeded order, so any even number of images is exactly balanced.

Output: the LRA layout ``pathfinder<R>/curv_contour_length_14/{imgs/<k>/sample_<i>.png, metadata/<k>.npy}``
with 1000 images per folder ``k``; each metadata line is
``imgs/<k> sample_<i>.png <i> <label> <n_dashes> <n_contours>`` (text, as in the LRA release).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["PathfinderConfig", "render_sample", "dilate", "write_pathfinder", "image_label"]

PER_FOLDER = 1000


@dataclass(frozen=True)
class PathfinderConfig:
    """Generator settings, in pixels of the 32x32 geometry (scaled by ``resolution / 32``)."""

    resolution: int = 32
    n_dashes: int = 14
    dash: float = 1.5
    gap: float = 1.0
    width: int = 1
    marker: int = 3
    n_distractors: int = 4
    distractor_dashes: int = 7
    max_curvature: float = 0.25  # radians per pixel of arc
    step: float = 0.25

    def __post_init__(self) -> None:
        if self.resolution not in (32, 64, 128):
            raise ValueError(f"resolution must be 32, 64 or 128, got {self.resolution}")
        if self.n_dashes < 2 or self.n_distractors < 0:
            raise ValueError(f"need n_dashes >= 2 and n_distractors >= 0, got {self.n_dashes}, "
                             f"{self.n_distractors}")
        if self.gap * self.scale != int(self.gap * self.scale) or self.gap <= 0:
            raise ValueError(f"gap * resolution / 32 must be a positive integer, got {self.gap * self.scale}")

    @property
    def scale(self) -> int:
        return self.resolution // 32

    @property
    def gap_px(self) -> int:
        """The dash gap in pixels: the dilation radius that joins a contour's dashes."""
        return int(self.gap * self.scale)


def dilate(mask: np.ndarray, k: int) -> np.ndarray:
    """Binary dilation by a (2k+1) x (2k+1) square (Chebyshev radius k), separable."""
    out = mask.copy()
    for axis in (0, 1):
        src = out.copy()
        for d in range(1, k + 1):
            if axis == 0:
                out[d:] |= src[:-d]
                out[:-d] |= src[d:]
            else:
                out[:, d:] |= src[:, :-d]
                out[:, :-d] |= src[:, d:]
    return out


def _shape(rng: np.random.Generator, cfg: PathfinderConfig, markers: tuple[bool, bool]
           ) -> tuple[np.ndarray, list[tuple[int, int]]] | None:
    """Pixels (M, 2) of one dashed contour (strokes and markers on the chosen ends) shifted to start
    at (0, 0) with the marker anchors, or None if it does not fit on the canvas."""
    s, n = cfg.scale, cfg.resolution
    period = (cfg.dash + cfg.gap) * s
    ds = cfg.step * s
    t = np.arange(0.0, cfg.n_dashes * period - cfg.gap * s + 1e-9, ds)
    k = np.minimum((t // period).astype(np.int64), cfg.n_dashes - 1)
    rate = rng.uniform(-cfg.max_curvature, cfg.max_curvature, cfg.n_dashes) / s
    theta = rng.uniform(0, 2 * np.pi) + np.concatenate([[0.0], np.cumsum(rate[k[:-1]] * ds)])
    steps = ds * np.stack([np.sin(theta[:-1]), np.cos(theta[:-1])], 1)
    pts = rng.uniform(0, 1, 2) + np.concatenate([[[0.0, 0.0]], np.cumsum(steps, 0)])
    drawn = (t - k * period) < cfg.dash * s - 1e-9
    anchors = np.floor(pts[drawn]).astype(np.int64)
    w, m = cfg.width * s, cfg.marker * s
    ends = [anchors[0], anchors[-1]]
    marked = [e for e, want in zip(ends, markers) if want]
    lo = np.minimum(anchors.min(0) - w // 2, anchors.min(0) - m // 2 if marked else anchors.min(0))
    local = np.zeros((n + m, n + m), dtype=bool)
    rel = anchors - lo - w // 2
    if (rel.max(0) + w).max() > n:
        return None
    for dr in range(w):
        for dc in range(w):
            local[rel[:, 0] + dr, rel[:, 1] + dc] = True
    for e in marked:
        r, c = e - lo - m // 2
        local[r:r + m, c:c + m] = True
    pix = np.argwhere(local)
    if pix.max() >= n:
        return None
    return pix, [tuple(int(v) for v in e - lo) for e in marked]


def _place(rng: np.random.Generator, pix: np.ndarray, zone: np.ndarray) -> np.ndarray | None:
    """A uniformly chosen offset at which no pixel of the shape falls in ``zone``, or None.

    The overlap count of every offset is a cross-correlation of ``zone`` with the shape, done by FFT
    for large shapes.
    """
    n = zone.shape[0]
    span = n - pix.max(0)
    if not zone.any():
        return rng.integers(0, span)
    if len(pix) * span[0] * span[1] < 200_000:  # small: index directly
        oy, ox = np.arange(span[0]), np.arange(span[1])
        rows = pix[:, 0, None, None] + oy[None, :, None]
        cols = pix[:, 1, None, None] + ox[None, None, :]
        hit = zone[rows, cols].any(0)
        free = np.argwhere(~hit)
        return free[rng.integers(len(free))] if len(free) else None
    shape = np.zeros((n, n))
    shape[pix[:, 0], pix[:, 1]] = 1.0
    corr = np.fft.irfft2(np.fft.rfft2(zone.astype(float)) * np.conj(np.fft.rfft2(shape)), s=(n, n))
    free = np.argwhere(corr[: span[0], : span[1]] < 0.5)
    if len(free) == 0:
        return None
    return free[rng.integers(len(free))]


def image_label(seed: int, index: int) -> int:
    """Label of image ``index``: one positive and one negative in each pair (2j, 2j+1), order seeded."""
    flip = int(np.random.SeedSequence([seed, 7, index // 2]).generate_state(1)[0] & 1)
    return (index % 2) ^ flip


def render_sample(cfg: PathfinderConfig, seed: int, index: int, max_tries: int = 2000
                  ) -> tuple[np.ndarray, int, list[tuple[int, int]], int]:
    """Image ``index`` of the data set seeded by ``seed``: (uint8 (R, R), label, marker anchors, contours)."""
    label = image_label(seed, index)
    rng = np.random.default_rng(np.random.SeedSequence([seed, cfg.resolution, index]))
    distractor = replace(cfg, n_dashes=cfg.distractor_dashes)
    sep = 2 * cfg.gap_px + 1  # contours closer than this would merge after dilation by the gap
    n = cfg.resolution
    for _ in range(max_tries):
        occupied = np.zeros((n, n), dtype=bool)
        zone = np.zeros((n, n), dtype=bool)
        markers: list[tuple[int, int]] = []
        count = 0
        plan = [(True, True), (False, False)] if label else [(False, True), (False, True)]
        ok = True
        for i, want in enumerate(plan + [(False, False)] * cfg.n_distractors):
            pix = None
            for _ in range(20 if i < 2 else 5):
                shape = _shape(rng, cfg if i < 2 else distractor, want)
                off = None if shape is None else _place(rng, shape[0], zone)
                if off is not None:
                    pix = shape[0] + off
                    break
            if pix is None:
                if i < 2:
                    ok = False
                    break
                continue  # a distractor that does not fit is left out
            occupied[pix[:, 0], pix[:, 1]] = True
            zone = dilate(occupied, sep)
            markers += [(e[0] + int(off[0]), e[1] + int(off[1])) for e in shape[1]]
            count += 1
        if ok:
            return occupied.astype(np.uint8) * 255, label, markers, count
    raise RuntimeError(f"could not place two separated contours in {max_tries} tries; loosen the config")


def _render_folder(args: tuple[PathfinderConfig, int, int, int, str]) -> list[str]:
    from PIL import Image

    cfg, seed, start, stop, root = args
    lines = []
    for idx in range(start, stop):
        k, i = divmod(idx, PER_FOLDER)
        img, label, _, count = render_sample(cfg, seed, idx)
        Image.fromarray(img, mode="L").save(Path(root) / "imgs" / str(k) / f"sample_{i}.png")
        lines.append(f"imgs/{k} sample_{i}.png {i} {label} {cfg.n_dashes} {count}")
    return lines


def write_pathfinder(out_dir: str | Path, n: int, cfg: PathfinderConfig = PathfinderConfig(), seed: int = 0,
                     workers: int = 1, progress: Callable[[int], None] | None = None) -> Path:
    """Write ``n`` images to ``out_dir/pathfinder<R>/curv_contour_length_14``; returns that folder."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    root = Path(out_dir) / f"pathfinder{cfg.resolution}" / "curv_contour_length_14"
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    jobs = []
    for k in range((n + PER_FOLDER - 1) // PER_FOLDER):
        (root / "imgs" / str(k)).mkdir(parents=True, exist_ok=True)
        for a in range(k * PER_FOLDER, min(n, (k + 1) * PER_FOLDER), 100):
            jobs.append((cfg, seed, a, min(a + 100, n, (k + 1) * PER_FOLDER), str(root)))
    results: dict[int, list[str]] = {}
    if workers <= 1:
        outs = map(_render_folder, jobs)
    else:
        from concurrent.futures import ProcessPoolExecutor

        ex = ProcessPoolExecutor(workers)
        outs = ex.map(_render_folder, jobs)
    for job, lines in zip(jobs, outs):
        results.setdefault(job[2] // PER_FOLDER, []).extend(lines)
        if progress:
            progress(len(lines))
    if workers > 1:
        ex.shutdown()
    for k, lines in results.items():
        (root / "metadata" / f"{k}.npy").write_text("\n".join(lines) + "\n")
    return root
