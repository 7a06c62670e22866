"""Benchmark PrefLab's metric calibration (ranking/core/calibration.py).

Run from the repository root::

    python bench/bench_calibration.py            # the full-size case (about a minute)
    python bench/bench_calibration.py --small    # 10x smaller, for a quick check

Data (seeded, synthetic): 5,000 prompts with 4 images each (20,000 items); an item's true quality
θ ~ N(0, 1); 100,000 human judgments, each of two distinct images of one random prompt, drawn from
the Davidson model P(a ≻ b) ∝ exp(1.5 (θ_a − θ_b) / 2), P(tie) ∝ 1.2.  20 metrics: metric j scores
an item θ + noise with its own noise level (0.2 … 3.0); every fourth metric is rounded to 0.1 so it
produces exact ties.  Deltas are score(a) − score(b); the human item scores for the Kendall variants
are the true θ plus noise (as BT strengths would be).

"A full report" (the DESIGN.md / issue-10 target: ≤ 10 s on the 2-core machine) is one call of
``calibration_report`` on these data with ``groups`` = prompt and 1,000 resamples, which computes,
for each of the 20 metrics: pairwise accuracy under the three conventions (acc_eq, pickscore,
skip_ties); tie calibration in-sample and 5-fold cross-validated by prompt; the prompt-clustered
bootstrap 95 % CI of tie-calibrated acc_eq (1,000 resamples, shared by all metrics); the Kendall
variants (tau_b, tau_c, tau_23, acc_23, Pearson, Spearman) over the 20,000 items; and across metrics
the 190 pairwise PERM-BOTH permutation tests (1,000 swaps each, per prompt) that give the
significance clusters.  Its time is the best of 3 calls.

Side by side (best of a few repeats; the naive loops are measured on fewer resamples/candidates
and extrapolated linearly, as printed in the "note" column):

* clustered bootstrap: the vectorised count-matrix path vs a per-resample Python loop that gathers
  the resampled prompts' judgments and recomputes the 20 accuracies;
* permutation tests: the exact binomial-per-magnitude draw vs a per-resample loop that swaps the two
  metrics' predictions per prompt and rescoring both;
* tie calibration: the O(n log n) sort-and-cumsum search vs scanning every candidate epsilon with a
  full accuracy evaluation (O(n²));
* Kendall: tau_b and tau_c of ``kendall_variants`` (which also computes tau_23, acc_23, Pearson and
  Spearman) vs ``scipy.stats.kendalltau`` (variants b and c), with the absolute difference.

Timings on a shared machine are noisy: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ranking.core.calibration import (
    bootstrap_ci,
    calibration_report,
    davidson_probabilities,
    kendall_variants,
    pairwise_accuracy,
    significance_clusters,
    tie_calibration,
)

TARGET_SECONDS = 10.0


def synthetic(rng, n_prompts, per_prompt, n_judgments, n_metrics):
    n_items = n_prompts * per_prompt
    theta = rng.normal(size=n_items)
    prompt = rng.integers(0, n_prompts, size=n_judgments)
    first = rng.integers(0, per_prompt, size=n_judgments)
    second = (first + rng.integers(1, per_prompt, size=n_judgments)) % per_prompt
    a, b = prompt * per_prompt + first, prompt * per_prompt + second
    pa, pt, _ = davidson_probabilities(theta[a] - theta[b], beta=1.5, nu=1.2)
    u = rng.random(n_judgments)
    outcome = np.where(u < pa, 1, np.where(u < pa + pt, 0, -1)).astype(np.int8)
    noise = np.linspace(0.2, 3.0, n_metrics)
    scores = theta[:, None] + rng.normal(size=(n_items, n_metrics)) * noise[None, :]
    scores[:, ::4] = np.round(scores[:, ::4], 1)
    human_items = theta + rng.normal(scale=0.2, size=n_items)
    return outcome, scores[a] - scores[b], prompt, human_items, scores


def best_time(fn, repeats):
    best, value = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def naive_bootstrap(outcome, deltas, eps, groups, n_resamples, rng):
    """Per-resample loop: draw prompts with replacement, gather their judgments, recompute."""
    order = np.argsort(groups, kind="stable")
    starts = np.r_[0, np.cumsum(np.bincount(groups))]
    n_groups = starts.size - 1
    values = np.empty((n_resamples, deltas.shape[1]))
    for r in range(n_resamples):
        picked = rng.integers(0, n_groups, size=n_groups)
        idx = np.concatenate([order[starts[g] : starts[g + 1]] for g in picked])
        values[r] = pairwise_accuracy(outcome[idx], deltas[idx], epsilon=eps)
    return np.quantile(values, [0.025, 0.975], axis=0)


def naive_permutation(outcome, d1, d2, e1, e2, groups, n_resamples, rng):
    """Per-resample loop: swap the two metrics' predictions per prompt and rescore both."""
    observed = pairwise_accuracy(outcome, d1, epsilon=e1) - pairwise_accuracy(outcome, d2, epsilon=e2)
    p1 = np.where(np.abs(d1) <= e1, 0, np.sign(d1))
    p2 = np.where(np.abs(d2) <= e2, 0, np.sign(d2))
    n_groups = int(groups.max()) + 1
    extreme = 0
    for _ in range(n_resamples):
        swap = (rng.random(n_groups) < 0.5)[groups]
        x = np.where(swap, p2, p1)
        z = np.where(swap, p1, p2)
        diff = np.mean(x == outcome) - np.mean(z == outcome)
        extreme += diff >= observed
    return (1 + extreme) / (1 + n_resamples)


def naive_tie_scan(outcome, delta, candidates):
    """Evaluate the accuracy at every candidate epsilon (O(n) each)."""
    return max(pairwise_accuracy(outcome, delta, epsilon=e) for e in candidates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="10x fewer judgments, prompts and items")
    args = parser.parse_args()
    scale = 10 if args.small else 1
    n_prompts, per_prompt, n_judgments, n_metrics, n_resamples = 5_000 // scale, 4, 100_000 // scale, 20, 1000
    rng = np.random.default_rng(20261123)
    outcome, deltas, prompt, human_items, metric_items = synthetic(
        rng, n_prompts, per_prompt, n_judgments, n_metrics
    )
    n_items = human_items.size
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}; "
        f"{n_judgments:,} judgments, {n_metrics} metrics, {n_prompts:,} prompts, {n_items:,} items, "
        f"{n_resamples:,} resamples"
    )

    # The full report.
    t_report, report = best_time(
        lambda: calibration_report(
            outcome,
            deltas,
            groups=prompt,
            human_item_scores=human_items,
            metric_item_scores=metric_items,
            n_folds=5,
            n_resamples=n_resamples,
            random_state=0,
        ),
        3,
    )
    eps = report.epsilon

    rows = []  # (case, method, seconds, value, reference value or None, note)

    # Clustered bootstrap, 20 metrics.
    t_vec, ci = best_time(
        lambda: bootstrap_ci(
            outcome, deltas, epsilon=eps, groups=prompt, n_resamples=n_resamples, random_state=1
        ),
        3,
    )
    few = 20
    t_loop, _ = best_time(
        lambda: naive_bootstrap(outcome, deltas, eps, prompt, few, np.random.default_rng(2)), 1
    )
    case = f"bootstrap CI {n_metrics} metrics"
    rows.append((case, "preflab bootstrap_ci", t_vec, ci.estimate[0], None, "count matrix x group sums"))
    rows.append(
        (
            case,
            "naive per-resample loop",
            t_loop * n_resamples / few,
            None,
            None,
            f"measured on {few} resamples, x{n_resamples // few}",
        )
    )

    # Permutation tests for the significance clusters (190 pairs).
    n_pairs = n_metrics * (n_metrics - 1) // 2
    t_vec, _ = best_time(
        lambda: significance_clusters(
            outcome, deltas, epsilon=eps, groups=prompt, n_resamples=n_resamples, random_state=3
        ),
        3,
    )
    few = 40
    t_loop, _ = best_time(
        lambda: naive_permutation(
            outcome, deltas[:, 0], deltas[:, 1], eps[0], eps[1], prompt, few, np.random.default_rng(4)
        ),
        1,
    )
    case = f"perm tests {n_pairs} pairs"
    rows.append((case, "preflab significance_clusters", t_vec, None, None, "binomial per |difference|"))
    rows.append(
        (
            case,
            "naive per-resample loop",
            t_loop * n_pairs * n_resamples / few,
            None,
            None,
            f"measured on 1 pair x {few} swaps, x{n_pairs * n_resamples // few}",
        )
    )

    # Tie calibration of one metric, exact search.
    t_fast, cal = best_time(lambda: tie_calibration(outcome, deltas[:, 1]), 5)
    candidates = np.unique(np.r_[0.0, np.abs(deltas[:, 1])])
    few = 100
    sample = candidates[np.linspace(0, candidates.size - 1, few).astype(int)]
    t_scan, _ = best_time(lambda: naive_tie_scan(outcome, deltas[:, 1], sample), 1)
    case = "tie calibration 1 metric"
    rows.append(
        (case, "preflab tie_calibration", t_fast, cal.in_sample_accuracy, None, "sort + cumsum, exact")
    )
    rows.append(
        (
            case,
            "scan every candidate epsilon",
            t_scan * candidates.size / few,
            None,
            None,
            f"measured on {few} of {candidates.size:,} candidates, extrapolated",
        )
    )

    # Kendall variants against scipy, one metric over all items (metric 0 has ties).
    for variant in ("b", "c"):
        t_ours, kv = best_time(lambda: kendall_variants(human_items, metric_items[:, 0]), 3)
        t_ref, ref = best_time(
            lambda v=variant: stats.kendalltau(human_items, metric_items[:, 0], variant=v).statistic, 3
        )
        case = f"Kendall tau_{variant} {n_items:,} items"
        rows.append(
            (case, "preflab kendall_variants", t_ours, kv[f"tau_{variant}"], ref, "all six statistics")
        )
        rows.append((case, "scipy.stats.kendalltau", t_ref, ref, None, f"variant={variant!r}"))

    header = f"{'case':<28} {'method':<30} {'seconds':>9} {'ratio':>8} {'value':>11} {'|diff|':>9}  note"
    print(header)
    print("-" * (len(header) + 30))
    for i in range(0, len(rows), 2):
        ours_row, ref_row = rows[i], rows[i + 1]
        ratio = ref_row[2] / ours_row[2]
        for case, method, seconds, value, ref_value, note in (ours_row, ref_row):
            is_ours = ours_row is not None and method == ours_row[1]
            ratio_txt = f"{ratio:7.1f}x" if is_ours else f"{'1.0x':>8}"
            value_txt = f"{value:11.8f}" if value is not None else f"{'':>11}"
            diff = f"{abs(value - ref_value):9.1e}" if ref_value is not None else f"{'':>9}"
            print(f"{case:<28} {method:<30} {seconds:9.4f} {ratio_txt:>8} {value_txt} {diff}  {note}")
    print(
        "ratio = reference (or extrapolated naive) seconds / preflab seconds (higher is faster for preflab)"
    )
    print(
        f"clusters: ranks {report.clusters.rank.tolist()}; best acc_eq {report.tie_accuracy.max():.4f} "
        f"(held-out {report.tie_accuracy_held_out.max():.4f}); CI width {np.mean(report.ci.high - report.ci.low):.4f}"
    )
    verdict = "PASS" if t_report <= TARGET_SECONDS else "MISS"
    print(
        f"{verdict}  full report ({n_metrics} metrics, {n_judgments:,} judgments, {n_resamples:,} resamples): "
        f"{t_report:.2f} s (target <= {TARGET_SECONDS:.0f} s, best of 3)"
    )


if __name__ == "__main__":
    main()
