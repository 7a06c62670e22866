"""Benchmark: PrefLab Plackett–Luce fit (ranking/core/rankings.py) against choix's ranking estimators.

Run from the repository root:  python bench/bench_rankings.py  [--help for sizes and caps]

What is measured (every method in its own freshly spawned process, on identical data generated there
from the same seed: true θ ~ N(0, 1) over --n-items items; each ranking shows k items, k uniform in
[--k-min, --k-max], drawn uniformly without replacement, and orders them by the Gumbel trick, i.e.
a complete Plackett–Luce ranking):
- seconds: time.perf_counter around the fitting call only; both get the rankings as the same Python
  list of lists of ints (choix's ranking format), built before the clock starts. Ours is run 3 times
  in the process (compute_se=False) and the median is shown; "ours+se" is one run with standard
  errors (compute_se=True, the default).
- NLL: the negative log-likelihood (natural log, no prior) of the returned strengths on the same data,
  all evaluated by the same function (ranking.core.rankings.pl_objective).
- max |Δθ|: largest difference of the mean-centred strengths from ours.
- choix estimators run with their defaults: ilsr_rankings (alpha = 0, max_iter = 100, tol = 1e-8 on
  the L1 change of the parameters) and opt_rankings (scipy Newton-CG, tol = 1e-5, alpha = 1e-6: a
  tiny ridge, it minimises NLL + 1e-6·Σθ²). A run that exceeds --cap seconds is stopped and shown
  as "> cap"; a run that raises is shown with its error.
The machine's load average is printed first: the cores are shared, timings are noisy, compare ratios
within one run.

Latest run (2026-12-04, 2 cores shared with other engineers' jobs; `python bench/bench_rankings.py`):

load average (1, 5, 15 min) at start: 2.00, 2.95, 2.53; 2 CPUs; BLAS threads: default
== 20,000 complete rankings, k = 5..10, over 1,000 items (seed 0) ==
method                    seconds   × ours                NLL   max |Δθ|  note
ours                        0.691      1.0      165254.960071    0.0e+00  6 Newton its; runs 0.691, 0.689, 0.729
ours+se                     1.122      1.6      165254.960071    0.0e+00  6 Newton its; runs 1.122
choix.ilsr_rankings         3.658      5.3      165254.960071    2.2e-09  defaults
choix.opt_rankings        170.504    246.9      165254.960071    1.0e-04  defaults
best finished choix NLL − ours = -2.910e-11 (positive: ours is lower)

Reading it: all three reach the same optimum (NLL equal to 1e-16 relative; the −2.9e-11 is rounding in
a sum of 130,000 terms; choix's ilsr agrees to 2e-9 in θ, opt_rankings stops at its tol = 1e-5, 1e-4
in θ). Ours: 6 Newton steps, each a dense 1,000 × 1,000 Hessian (one k×k block per ranking) and a
Cholesky solve; with SEs it adds one dense inverse. choix's ilsr_rankings loops over the rankings in
Python each iteration and solves a dense 1,000-state Markov chain; opt_rankings evaluates objective,
gradient and Hessian in Python loops over the ~130,000 choices. An earlier run (a slightly earlier revision of
rankings.py, same algorithm) on a busier machine (load ≈ 3.5, unit tests running at the same time) measured ours 2.434 s (runs 2.625,
2.434, 1.272), ours+se 6.413 s, ilsr 6.137 s, opt 334.253 s, same NLLs: the multi-threaded BLAS
calls suffer most from contention.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_data(n_items: int, n_rankings: int, k_min: int, k_max: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n_items)
    rankings = []
    for _ in range(n_rankings):
        k = int(rng.integers(k_min, k_max + 1))
        shown = rng.choice(n_items, k, replace=False)
        rankings.append(shown[np.argsort(-(theta[shown] + rng.gumbel(size=k)))].tolist())
    return rankings


def _worker(method: str, args: dict, out) -> None:
    import choix

    from ranking.core.rankings import fit_plackett_luce, pl_objective

    n = args["n_items"]
    rankings = make_data(n, args["n_rankings"], args["k_min"], args["k_max"], args["seed"])
    times = []
    note = ""
    try:
        if method in ("ours", "ours+se"):
            repeats = 3 if method == "ours" else 1
            for _ in range(repeats):
                t0 = time.perf_counter()
                fit = fit_plackett_luce(rankings, n, compute_se=(method == "ours+se"))
                times.append(time.perf_counter() - t0)
            theta = fit.strengths
            note = f"{fit.n_iter} Newton its; runs " + ", ".join(f"{t:.3f}" for t in times)
        else:
            fn = getattr(choix, method.split(".")[1])
            t0 = time.perf_counter()
            theta = fn(n, rankings)
            times.append(time.perf_counter() - t0)
            note = "defaults"
    except Exception as exc:  # report, don't hide: the row shows the error
        out.send({"seconds": None, "nll": None, "theta": None, "note": f"raised {type(exc).__name__}: {exc}"})
        return
    theta = np.asarray(theta, dtype=float)
    nll = pl_objective(theta, rankings, n)
    out.send({"seconds": statistics.median(times), "nll": nll, "theta": theta - theta.mean(), "note": note})


def run(method: str, args: dict, cap: float) -> dict:
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker, args=(method, args, send))
    proc.start()
    # The cap counts from process start (includes data generation, about a second).
    if recv.poll(cap):
        result = recv.recv()
        proc.join()
    else:
        proc.terminate()
        proc.join()
        result = {"seconds": None, "nll": None, "theta": None, "note": f"stopped after {cap:.0f} s cap"}
    result["method"] = method
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-items", type=int, default=1_000)
    parser.add_argument("--n-rankings", type=int, default=20_000)
    parser.add_argument("--k-min", type=int, default=5)
    parser.add_argument("--k-max", type=int, default=10)
    parser.add_argument("--cap", type=float, default=600.0, help="seconds allowed per choix estimator")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-opt", action="store_true", help="skip choix.opt_rankings (the slowest)")
    args = parser.parse_args()
    data_args = {
        "n_items": args.n_items,
        "n_rankings": args.n_rankings,
        "k_min": args.k_min,
        "k_max": args.k_max,
        "seed": args.seed,
    }
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"
    print(
        f"load average (1, 5, 15 min) at start: {load}; {os.cpu_count()} CPUs; BLAS threads: {threads}",
        flush=True,
    )
    print(
        f"== {args.n_rankings:,} complete rankings, k = {args.k_min}..{args.k_max}, over {args.n_items:,} items "
        f"(seed {args.seed}) ==",
        flush=True,
    )
    ours = run("ours", data_args, cap=3600)
    rows = [ours, run("ours+se", data_args, cap=3600), run("choix.ilsr_rankings", data_args, args.cap)]
    if not args.skip_opt:
        rows.append(run("choix.opt_rankings", data_args, args.cap))
    base = ours["seconds"]
    print(f"{'method':22} {'seconds':>10} {'× ours':>8} {'NLL':>18} {'max |Δθ|':>10}  note")
    for r in rows:
        if r["seconds"] is None:
            sec = f"> {args.cap:.0f}" if "cap" in r["note"] else "n/a"
            ratio = f"> {args.cap / base:.0f}" if "cap" in r["note"] else "n/a"
            nll = dtheta = "n/a"
        else:
            sec, ratio = f"{r['seconds']:.3f}", f"{r['seconds'] / base:.1f}"
            nll = f"{r['nll']:.6f}"
            dtheta = f"{np.max(np.abs(r['theta'] - ours['theta'])):.1e}"
        print(f"{r['method']:22} {sec:>10} {ratio:>8} {nll:>18} {dtheta:>10}  {r['note']}", flush=True)
    finished = [r for r in rows[2:] if r["seconds"] is not None]
    if finished:
        gap = min(r["nll"] for r in finished) - ours["nll"]
        print(f"best finished choix NLL − ours = {gap:+.3e} (positive: ours is lower)")


if __name__ == "__main__":
    main()
