"""Benchmark adaptive pair selection (ranking/core/adaptive.py) against uniform random pairs.

Run from the repository root::

    python bench/bench_adaptive.py            # the full run (about a minute on one core)
    python bench/bench_adaptive.py --small    # 3 seeds, for a quick check

Simulation (seeded, synthetic). Judgments arrive in batches; after each batch the strengths are
refitted with ``fit_bt`` (``alpha`` small, Davidson ties) and the next batch is planned from the fit
(``strength_covariance`` of the fitted strengths, ``plan_pairs``). The first batch is uniform for
every strategy. Outcomes are drawn from the Davidson model with the true strengths and a small tie
parameter ν. Strategies, each on the same true strengths per seed:

* ``uniform``           — uniformly random distinct pairs (``rule="uniform"``);
* ``ci_reduction``      — the Chatbot Arena rule (expected reduction of the pair's 95 % CI width);
* ``information_gain``  — mutual information between the outcome and θ (BALD).

Item level: ``N_ITEMS`` items, true θ ~ N(0, 1), batches of ``BATCH`` distinct pairs.
Model level: ``N_MODELS`` models × ``PER_MODEL`` images; a model's true strength μ ~ N(0, 1), an
image's θ = μ + N(0, 0.5²). A batch draws ``BATCH_MODELS`` model pairs (with replacement, like
Arena's per-battle sampling), each turned into two least-compared images by
``model_pairs_to_items``; the model strengths are fitted by BT on (winner's model, loser's model).

Figures per strategy (mean ± sd over the seeds): judgments until the mean (and the max) 95 % CI
width of the fitted strengths (``2 · 1.96 · se`` from ``fit_bt``, logits) first falls below its
target, checked after every batch (a run that never gets there within the cap counts as the cap,
flagged with ``>``); Kendall τ between the fitted and the true strengths after a fixed budget.
"ratio" is the strategy's mean divided by uniform's (below 1 = fewer judgments needed).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import scipy
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ranking.core.adaptive import (
    all_pairs,
    model_pairs_to_items,
    pair_counts,
    plan_pairs,
    strength_covariance,
)
from ranking.core.bt import Z_95, fit_bt

STRATEGIES = ("uniform", "ci_reduction", "information_gain")
SEEDS = tuple(range(11, 21))
NU = 0.3  # true Davidson tie parameter (≈ 13 % ties between equal items)
ALPHA = 0.01  # prior precision of the refits: θ ~ N(0, 10²)
FLOOR = 0.05

N_ITEMS, BATCH = 50, 50
# (spread of the true θ, target mean and max 95 % CI width in logits, τ budget, cap)
ITEM_SCENARIOS = ((1.0, 1.2, 1.5, 1500, 6000), (2.0, 1.5, 2.0, 1500, 8000))

N_MODELS, PER_MODEL, IMAGE_SD, BATCH_MODELS = 8, 20, 0.5, 25
MODEL_TARGET_MEAN, MODEL_TARGET_MAX = 0.5, 0.75
MODEL_BUDGET, MODEL_CAP = 500, 4000


def davidson_outcomes(rng, theta_a, theta_b, nu):
    """Draw outcomes: +1 a wins, 0 tie, −1 b wins (Davidson model)."""
    d = theta_a - theta_b
    denom = np.exp(d / 2) + np.exp(-d / 2) + nu
    pa, pt = np.exp(d / 2) / denom, nu / denom
    u = rng.random(d.size)
    return np.where(u < pa, 1, np.where(u < pa + pt, 0, -1))


class Run:
    """One strategy on one problem: accumulate judgments, refit, plan."""

    def __init__(self, n, strategy, rng):
        self.n, self.strategy, self.rng = n, strategy, rng
        self.a = np.zeros(0, dtype=np.int64)  # compared units (items or models)
        self.b = np.zeros(0, dtype=np.int64)
        self.outcome = np.zeros(0, dtype=np.int64)
        self.fit = None

    def add(self, a, b, outcome):
        self.a = np.r_[self.a, a]
        self.b = np.r_[self.b, b]
        self.outcome = np.r_[self.outcome, outcome]
        winners = np.where(self.outcome >= 0, self.a, self.b)
        losers = np.where(self.outcome >= 0, self.b, self.a)
        self.fit = fit_bt(winners, losers, self.n, tied=self.outcome == 0, alpha=ALPHA)

    def counts(self):
        return pair_counts(self.a, self.b, self.n)

    def plan(self, k, replace):
        if self.fit is None or self.strategy == "uniform":
            rule, theta, cov = "uniform", np.zeros(self.n), np.ones(self.n)
        else:
            rule, theta = self.strategy, self.fit.strengths
            cov = strength_covariance(theta, self.counts(), tie_param=self.fit.tie_param, alpha=ALPHA)
        return plan_pairs(
            theta, cov, self.counts(), k, rule=rule, floor=FLOOR, replace=replace, random_state=self.rng
        ).pairs

    def widths(self):
        w = 2 * Z_95 * self.fit.se
        return float(w.mean()), float(w.max())


def simulate_items(seed, strategy, spread, target_mean, target_max, budget, cap):
    truth = np.random.default_rng([seed, 0]).normal(scale=spread, size=N_ITEMS)
    rng = np.random.default_rng([seed, 1 + STRATEGIES.index(strategy)])
    run = Run(N_ITEMS, strategy, rng)
    return _loop(run, truth, lambda: _item_batch(run, truth, rng), target_mean, target_max, budget, cap)


def _item_batch(run, truth, rng):
    pairs = run.plan(BATCH, replace=False)
    run.add(pairs[:, 0], pairs[:, 1], davidson_outcomes(rng, truth[pairs[:, 0]], truth[pairs[:, 1]], NU))


def simulate_models(seed, strategy):
    g = np.random.default_rng([seed, 100])
    mu = g.normal(size=N_MODELS)
    item_models = np.repeat(np.arange(N_MODELS), PER_MODEL)
    theta = mu[item_models] + g.normal(scale=IMAGE_SD, size=item_models.size)
    rng = np.random.default_rng([seed, 101 + STRATEGIES.index(strategy)])
    run = Run(N_MODELS, strategy, rng)
    item_counts = np.zeros((item_models.size, item_models.size))

    def batch():
        model_pairs = run.plan(BATCH_MODELS, replace=True)
        items = model_pairs_to_items(model_pairs, item_models, item_counts, random_state=rng)
        np.add.at(item_counts, (items[:, 0], items[:, 1]), 1)
        np.add.at(item_counts, (items[:, 1], items[:, 0]), 1)
        outcome = davidson_outcomes(rng, theta[items[:, 0]], theta[items[:, 1]], NU)
        run.add(model_pairs[:, 0], model_pairs[:, 1], outcome)

    return _loop(run, mu, batch, MODEL_TARGET_MEAN, MODEL_TARGET_MAX, MODEL_BUDGET, MODEL_CAP)


def scenarios():
    """(title, simulate(seed, strategy), budget) for every table."""
    out = []
    for spread, t_mean, t_max, budget, cap in ITEM_SCENARIOS:
        title = (
            f"item level, θ ~ N(0, {spread:g}²): targets mean CI ≤ {t_mean}, max CI ≤ {t_max} logits, "
            f"cap {cap:,}"
        )
        out.append(
            (
                title,
                partial(
                    simulate_items,
                    spread=spread,
                    target_mean=t_mean,
                    target_max=t_max,
                    budget=budget,
                    cap=cap,
                ),
                budget,
            )
        )
    title = (
        f"model level ({N_MODELS} models × {PER_MODEL} images): targets mean CI ≤ {MODEL_TARGET_MEAN}, "
        f"max CI ≤ {MODEL_TARGET_MAX} logits, cap {MODEL_CAP:,}"
    )
    out.append((title, simulate_models, MODEL_BUDGET))
    return out


def _loop(run, truth, batch, target_mean, target_max, budget, cap):
    to_mean = to_max = tau = None
    while True:
        batch()
        m = run.a.size
        mean_w, max_w = run.widths()
        if to_mean is None and mean_w <= target_mean:
            to_mean = m
        if to_max is None and max_w <= target_max:
            to_max = m
        if tau is None and m >= budget:
            tau = stats.kendalltau(run.fit.strengths, truth).statistic
        if (to_mean is not None and to_max is not None and tau is not None) or m >= cap:
            break
    return {
        "to_mean": (to_mean or cap, to_mean is None),
        "to_max": (to_max or cap, to_max is None),
        "tau": tau,
    }


def _fmt(values, censored=None, digits=0):
    v = np.asarray(values, dtype=float)
    flag = ">" if censored is not None and any(censored) else " "
    return f"{flag}{v.mean():8.{digits}f} ± {v.std(ddof=1):6.{digits}f}"


def table(title, results, budget):
    print(f"\n== {title} ==")
    header = (
        f"{'strategy':<18} {'judgments to mean CI':>21} {'ratio':>6}   {'judgments to max CI':>21} {'ratio':>6}"
        f"   {'Kendall τ @ ' + format(budget, ','):>22} {'Δτ':>7}"
    )
    print(header)
    print("-" * len(header))
    base = {key: np.mean([r[key][0] for r in results["uniform"]]) for key in ("to_mean", "to_max")}
    base_tau = np.mean([r["tau"] for r in results["uniform"]])
    for strategy in STRATEGIES:
        rs = results[strategy]
        cells = []
        for key in ("to_mean", "to_max"):
            vals = [r[key][0] for r in rs]
            cells.append(f"{_fmt(vals, [r[key][1] for r in rs]):>21} {np.mean(vals) / base[key]:6.2f}")
        taus = [r["tau"] for r in rs]
        print(
            f"{strategy:<18} {cells[0]}   {cells[1]}   {_fmt(taus, digits=3):>22} {np.mean(taus) - base_tau:+7.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="3 seeds instead of 10")
    args = parser.parse_args()
    seeds = SEEDS[:3] if args.small else SEEDS
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}; "
        f"seeds {list(seeds)}; true ν = {NU}, refit alpha = {ALPHA}, floor = {FLOOR}"
    )
    print(
        f"item level: {N_ITEMS} items, {BATCH} distinct pairs per batch (of {all_pairs(N_ITEMS).shape[0]}); "
        f"model level: {N_MODELS} models × {PER_MODEL} images, μ ~ N(0, 1), image θ = μ + N(0, {IMAGE_SD}²), "
        f"{BATCH_MODELS} model pairs per batch (with replacement, of {all_pairs(N_MODELS).shape[0]})"
    )
    start = time.perf_counter()
    for title, simulate, budget in scenarios():
        t0 = time.perf_counter()
        results = {s: [simulate(seed, s) for seed in seeds] for s in STRATEGIES}
        table(title, results, budget)
        print(f"({time.perf_counter() - t0:.1f} s)")
    print(
        f"\ntotal {time.perf_counter() - start:.1f} s. Judgments are counted at batch ends; mean ± sd over "
        f"{len(seeds)} seeds; '>' = some run hit the cap (counted as the cap)."
    )


if __name__ == "__main__":
    main()
