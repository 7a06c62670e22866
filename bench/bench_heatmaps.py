"""Benchmark: consolidating RichHF-style point annotations into heatmaps.

Target (DESIGN.md): 18,000 images × 3 raters at 512 × 512, radius = height / 20, in ≤ 60 s on the
2-core machine. Synthetic, seeded data: each rater clicks Poisson(5) points uniformly over the image.

All heatmaps together would be 18,000 × 512 × 512 float32 = 18.9 GB, so they are never held at once:
``iter_consolidated`` yields chunks of ``--chunk-size`` images and the benchmark keeps only a per-image
summary (mean heat, fraction of pixels marked by any rater, fraction marked by all raters). With
``--memmap PATH`` it also writes the exact rater counts as a uint8 memmap (heatmap = count / 3;
4.7 GB at full size).

Peer, in the same run: the naive method that computes ``np.hypot`` of every pixel centre to every point
over the whole grid, timed on a subsample of images and extrapolated (labelled as such).

Run from the repository root: ``python bench/bench_heatmaps.py [--n-images N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ranking.core.heatmaps import iter_consolidated

TARGET_SECONDS = 60.0


def synthetic_points(n_images, n_raters, mean_points, size, seed):
    """Flat arrays (points, image_index, rater_index) of Poisson(mean_points) points per rater."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(mean_points, size=(n_images, n_raters))
    image_index = np.repeat(np.arange(n_images).repeat(n_raters), counts.ravel())
    rater_index = np.repeat(np.tile(np.arange(n_raters), n_images), counts.ravel())
    points = rng.uniform(0.0, size, size=(counts.sum(), 2))
    return points, image_index, rater_index


def naive_heatmap(points, rater_index, n_raters, size, radius):
    """Peer: per point, the distance of every pixel centre over the full grid (np.hypot)."""
    centres = np.arange(size, dtype=np.float64) + 0.5
    xs, ys = np.meshgrid(centres, centres)  # xs[r, c] = c + .5, ys[r, c] = r + .5
    total = np.zeros((size, size), dtype=np.float32)
    for k in range(n_raters):
        rater_map = np.zeros((size, size), dtype=bool)
        for x, y in points[rater_index == k]:
            rater_map |= np.hypot(xs - x, ys - y) <= radius
        total += rater_map
    return total / np.float32(n_raters)


def max_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=18_000)
    parser.add_argument("--n-raters", type=int, default=3)
    parser.add_argument("--mean-points", type=float, default=5.0)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--chunk-size", type=int, default=16)
    parser.add_argument("--naive-images", type=int, default=30, help="subsample for the naive peer")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--memmap", type=Path, default=None, help="also write uint8 rater counts here")
    args = parser.parse_args(argv)

    size, n_raters = args.size, args.n_raters
    radius = size / 20
    points, image_index, rater_index = synthetic_points(
        args.n_images, n_raters, args.mean_points, size, args.seed
    )
    print(f"python {platform.python_version()}, numpy {np.__version__}, cpus {os.cpu_count()}")
    print(
        f"data: {args.n_images} images x {n_raters} raters, {len(points)} points "
        f"({len(points) / max(args.n_images * n_raters, 1):.2f} per rater), {size}x{size}, radius {radius}"
    )
    print("kept: per-image mean heat, fraction marked by any rater, fraction marked by all raters"
          + (f"; uint8 counts memmap at {args.memmap}" if args.memmap else ""))

    counts_out = None
    if args.memmap is not None:
        counts_out = np.lib.format.open_memmap(
            args.memmap, mode="w+", dtype=np.uint8, shape=(args.n_images, size, size)
        )
    mean_heat = np.zeros(args.n_images, dtype=np.float64)
    any_frac = np.zeros(args.n_images, dtype=np.float64)
    all_frac = np.zeros(args.n_images, dtype=np.float64)
    n_pix = size * size

    t0 = time.perf_counter()
    for start, counts in iter_consolidated(
        points, image_index, rater_index, n_raters, size, size, radius,
        chunk_size=args.chunk_size, counts=True,
    ):
        stop = start + len(counts)
        heat = counts.astype(np.float32)
        heat /= np.float32(n_raters)  # the consolidated heatmaps of this chunk (float32)
        mean_heat[start:stop] = heat.reshape(len(heat), -1).sum(axis=1, dtype=np.float64) / n_pix
        flat = counts.reshape(len(counts), -1)
        any_frac[start:stop] = np.count_nonzero(flat, axis=1) / n_pix
        all_frac[start:stop] = np.count_nonzero(flat == n_raters, axis=1) / n_pix
        if counts_out is not None:
            counts_out[start:stop] = counts
    if counts_out is not None:
        counts_out.flush()
    fast_s = time.perf_counter() - t0
    fast_rss = max_rss_mb()

    print(
        f"consolidation (stamped disk masks, streamed): {fast_s:.2f} s, "
        f"{args.n_images / fast_s:,.0f} images/s, peak RSS {fast_rss:,.0f} MB"
    )
    print(
        f"summary: mean heat {mean_heat.mean():.4f}, marked by any rater {any_frac.mean():.4f}, "
        f"by all raters {all_frac.mean():.5f} (averages over images)"
    )

    # peer: naive full-grid distances, on a subsample, extrapolated
    n_naive = min(args.naive_images, args.n_images)
    max_diff = 0.0
    t0 = time.perf_counter()
    naive_maps = []
    for i in range(n_naive):
        sel = image_index == i
        naive_maps.append(naive_heatmap(points[sel], rater_index[sel], n_raters, size, radius))
    naive_s = time.perf_counter() - t0
    sel = image_index < n_naive
    for start, heat in iter_consolidated(
        points[sel], image_index[sel], rater_index[sel], np.full(n_naive, n_raters), size, size, radius
    ):
        for j, m in enumerate(heat):
            max_diff = max(max_diff, float(np.abs(m - naive_maps[start + j]).max()))
    naive_extrapolated = naive_s / max(n_naive, 1) * args.n_images
    print(
        f"peer naive np.hypot full grid: {naive_s:.2f} s on {n_naive} images -> EXTRAPOLATED to "
        f"{args.n_images} images: {naive_extrapolated:,.0f} s; ratio naive/stamped "
        f"{naive_extrapolated / fast_s:,.0f}x; max |difference| on the subsample {max_diff:g}"
    )
    verdict = "PASS" if fast_s <= TARGET_SECONDS else "MISS"
    print(f"{verdict}: {fast_s:.2f} s vs target <= {TARGET_SECONDS:.0f} s for {args.n_images} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
