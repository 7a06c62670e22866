"""Benchmark: PrefLab hierarchical Bradley–Terry (ranking/core/hbt.py).

Run from the repository root:  python bench/bench_hbt.py  [--help for sizes]

Simulated data (seeded numpy RNG): population strengths θ ~ N(0, 1); raters belong to one of
``--groups`` taste groups, each group with its own item deviations ~ N(0, 0.6²), plus a personal
deviation ~ N(0, 0.3²) for every (rater, item) the rater judges; every rater works on a random slice of
``--items-per-rater`` items (as in PrefLab projects, where a rater sees the items of the tasks assigned
to them) and each comparison picks a random rater and two distinct items of that rater's slice; the
outcome is drawn from the Bradley–Terry model on the rater's strengths. 10 % of comparisons, drawn at
random, are held out.

What is printed:
- target case (default 1,000,000 comparisons, 10,000 items, 2,000 raters, fixed ``--tau``):
  wall seconds of ``fit_hbt`` (time.perf_counter, includes building the sparse pair index), L-BFGS
  iterations, number of stored offsets, process peak RSS (``resource.getrusage(...).ru_maxrss``, the
  whole process incl. simulated data), held-out log-loss / accuracy of personal vs population
  predictions (``heldout_log_loss``), and PASS/MISS against the 60 s target.
- ``tau=None`` (3-fold cross-validation over the default τ grid) on a smaller case (``--cv-*``),
  with the cross-validation table; it costs 3 × 6 + 1 fits and has no target.
- peer: choix's plain population BT (``choix.opt_pairwise``, method BFGS, which loops in Python over
  comparisons) on a subsample of the smaller case, against ``fit_hbt(tau=0)`` (the population limit
  of our model) on the same rows with the same prior (choix's penalty ``alpha_c‖θ‖²`` = ours with
  ``alpha = 2·alpha_c``). This checks the population limit and shows the scale of a reference
  implementation; choix has no hierarchical model, so there is no like-for-like peer for the target.
  The printed max |Δθ| is at the level of choix's default stopping tolerance (tol = 1e-5 on the
  gradient); the τ = 0 limit is checked against a tight scipy MAP in tests/unit/test_hbt.py.

Output of one run (2026-11-22, machine: 2 cores, shared with other jobs — timings are noisy)::

    python 3.11.7, numpy 2.4.6, torch 2.13.0+cpu, torch threads 2, device cpu, float64
    target: 1,000,000 comparisons (900,104 fitted), 10,000 items, 2,000 raters, 250 items per rater, tau=0.5
      fit_hbt: 30.7 s, 122 L-BFGS iterations, 486,362 offsets stored, peak RSS (whole process) 566 MB
      held-out (99,896 comparisons): log-loss personal 0.5511 vs population 0.5596; accuracy personal 0.7152 vs population 0.7077
      target <= 60 s: PASS (30.7 s)
    tau=None (3-fold CV over the default grid): 100,000 comparisons, 1,000 items, 200 raters
      fit_hbt(tau=None): 14.3 s; chosen tau 0.4; CV log-loss by tau {0: 0.5672, 0.1: 0.5667, 0.2: 0.5654, 0.4: 0.5621, 0.8: 0.5639, 1.6: 0.6122}
      same size with that tau fixed: 0.56 s, 22 iterations
      held-out (9,991 comparisons): log-loss personal 0.5591 vs population 0.5661; accuracy personal 0.7071 vs population 0.7038
    peer, population BT on 10,000 comparisons / 1,000 items, same prior: choix.opt_pairwise(BFGS) 17.11 s; fit_hbt(tau=0) 0.641 s; max |Δθ| 1.61e-04
    process peak RSS at exit: 578 MB
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ranking.core.hbt import fit_hbt, heldout_log_loss

TARGET_SECONDS = 60.0


def simulate(n_comparisons, n_items, n_raters, items_per_rater, groups, seed):
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 1.0, n_items)
    group_dev = rng.normal(0.0, 0.6, (groups, n_items))
    group_of = rng.integers(0, groups, n_raters)
    k = min(items_per_rater, n_items)
    # each rater's slice: k distinct items (a random offset into a random permutation, wrapping)
    perm = rng.permutation(n_items)
    start = rng.integers(0, n_items, n_raters)
    r = rng.integers(0, n_raters, n_comparisons)
    ia = rng.integers(0, k, n_comparisons)
    ib = (ia + rng.integers(1, k, n_comparisons)) % k
    a = perm[(start[r] + ia) % n_items]
    b = perm[(start[r] + ib) % n_items]
    # personal deviation per (rater, item), generated from the pair key (never a dense matrix)
    def personal(items):
        key = r.astype(np.uint64) * np.uint64(n_items) + items.astype(np.uint64)
        h = (key * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)) >> np.uint64(11)
        u1 = (h.astype(np.float64) + 0.5) / 2.0**53
        h2 = ((key + np.uint64(0x632BE59BD9B4E019)) * np.uint64(0xBF58476D1CE4E5B9)) >> np.uint64(11)
        u2 = (h2.astype(np.float64) + 0.5) / 2.0**53
        return 0.3 * np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)

    sa = theta[a] + group_dev[group_of[r], a] + personal(a)
    sb = theta[b] + group_dev[group_of[r], b] + personal(b)
    a_wins = rng.random(n_comparisons) < 1.0 / (1.0 + np.exp(sb - sa))
    winners = np.where(a_wins, a, b)
    losers = np.where(a_wins, b, a)
    test = rng.random(n_comparisons) < 0.10
    return winners, losers, r, test


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def fmt_heldout(h):
    return (f"held-out ({h['n']:,} comparisons): log-loss personal {h['personal_log_loss']:.4f} vs population "
            f"{h['population_log_loss']:.4f}; accuracy personal {h['personal_accuracy']:.4f} vs population "
            f"{h['population_accuracy']:.4f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--comparisons", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--raters", type=int, default=2_000)
    ap.add_argument("--items-per-rater", type=int, default=250)
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--tau", type=float, default=0.5, help="fixed τ for the target case")
    ap.add_argument("--cv-comparisons", type=int, default=100_000)
    ap.add_argument("--cv-items", type=int, default=1_000)
    ap.add_argument("--cv-raters", type=int, default=200)
    ap.add_argument("--peer-comparisons", type=int, default=10_000, help="0 skips the choix peer")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
          f"torch threads {torch.get_num_threads()}, device cpu, float64")

    # ---- target case, fixed tau
    w, l, r, test = simulate(args.comparisons, args.items, args.raters, args.items_per_rater, args.groups, args.seed)
    tr = ~test
    print(f"target: {args.comparisons:,} comparisons ({tr.sum():,} fitted), {args.items:,} items, "
          f"{args.raters:,} raters, {args.items_per_rater} items per rater, tau={args.tau:g}")
    t0 = time.perf_counter()
    fit = fit_hbt(w[tr], l[tr], r[tr], args.items, args.raters, tau=args.tau)
    secs = time.perf_counter() - t0
    h = heldout_log_loss(fit, w[test], l[test], r[test])
    verdict = "PASS" if secs <= TARGET_SECONDS else "MISS"
    print(f"  fit_hbt: {secs:.1f} s, {fit.n_iter} L-BFGS iterations, {fit.n_pairs:,} offsets stored, "
          f"peak RSS (whole process) {peak_rss_mb():.0f} MB")
    print(f"  {fmt_heldout(h)}")
    print(f"  target <= {TARGET_SECONDS:.0f} s: {verdict} ({secs:.1f} s)")
    del w, l, r, test, tr, fit

    # ---- tau=None on a smaller case
    w, l, r, test = simulate(args.cv_comparisons, args.cv_items, args.cv_raters, args.items_per_rater,
                             args.groups, args.seed + 1)
    tr = ~test
    print(f"tau=None (3-fold CV over the default grid): {args.cv_comparisons:,} comparisons, "
          f"{args.cv_items:,} items, {args.cv_raters:,} raters")
    t0 = time.perf_counter()
    fit_cv = fit_hbt(w[tr], l[tr], r[tr], args.cv_items, args.cv_raters, tau=None, random_state=args.seed)
    secs_cv = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit_fixed = fit_hbt(w[tr], l[tr], r[tr], args.cv_items, args.cv_raters, tau=fit_cv.tau)
    secs_fixed = time.perf_counter() - t0
    table = ", ".join(f"{g:g}: {v:.4f}" for g, v in fit_cv.tau_selection)
    print(f"  fit_hbt(tau=None): {secs_cv:.1f} s; chosen tau {fit_cv.tau:g}; CV log-loss by tau {{{table}}}")
    print(f"  same size with that tau fixed: {secs_fixed:.2f} s, {fit_fixed.n_iter} iterations")
    print(f"  {fmt_heldout(heldout_log_loss(fit_cv, w[test], l[test], r[test]))}")

    # ---- peer: plain population BT with choix on a subsample
    if args.peer_comparisons > 0:
        import choix

        n = min(args.peer_comparisons, int(tr.sum()))
        ws, ls, rs = w[tr][:n], l[tr][:n], r[tr][:n]
        alpha = 1e-2
        pairs = list(zip(ws.tolist(), ls.tolist()))
        t0 = time.perf_counter()
        theta_c = choix.opt_pairwise(args.cv_items, pairs, alpha=alpha / 2, method="BFGS")
        secs_c = time.perf_counter() - t0
        t0 = time.perf_counter()
        fit0 = fit_hbt(ws, ls, rs, args.cv_items, args.cv_raters, tau=0.0, alpha=alpha, tol=1e-7)
        secs_0 = time.perf_counter() - t0
        diff = np.max(np.abs((theta_c - theta_c.mean()) - fit0.strengths))
        print(f"peer, population BT on {n:,} comparisons / {args.cv_items:,} items, same prior: "
              f"choix.opt_pairwise(BFGS) {secs_c:.2f} s; fit_hbt(tau=0) {secs_0:.3f} s; "
              f"max |Δθ| {diff:.2e}")
    print(f"process peak RSS at exit: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
