"""Tests for ranking.core.calibration: hand-computed cases, brute-force definitions, scipy and
statsmodels references, and seeded simulations.

No database and no Django: the module under test must import with Django absent.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, stats

from ranking.core import calibration as cal
from ranking.core.calibration import (
    CONVENTIONS,
    BootstrapCI,
    TieCalibration,
    _assign_ranks,
    agreement_drift,
    bootstrap_ci,
    calibration_report,
    davidson_probabilities,
    gating_threshold,
    group_folds,
    human_ceiling,
    kendall_variants,
    metric_blend,
    pair_counts,
    pairwise_accuracy,
    permutation_test,
    precision_recall_curve,
    probability_calibration,
    reliability_diagram,
    significance_clusters,
    tie_calibration,
)
from ranking.core.errors import ConvergenceError

REPO_ROOT = Path(__file__).resolve().parents[2]

# A hand-checked case (epsilon = 0.1).  Metric predictions: +1, tie, +1, tie, +1, -1, -1, tie.
HAND_OUTCOME = np.array([1, 1, -1, 0, 0, 1, -1, 0])
HAND_DELTA = np.array([2.0, 0.05, 1.0, 0.0, 3.0, -1.0, -0.5, 0.02])


# --------------------------------------------------------------------------------------------------
# Helpers: brute-force definitions written independently of the module
# --------------------------------------------------------------------------------------------------


def _simulate_davidson(rng, delta, beta, nu):
    pa, pt, _ = davidson_probabilities(delta, beta=beta, nu=nu)
    u = rng.random(delta.shape[0])
    return np.where(u < pa, 1, np.where(u < pa + pt, 0, -1))


def _brute_accuracy(outcome, delta, epsilon, convention):
    """Loop over judgments, scoring each by the convention's written rule."""
    total, weight = 0.0, 0
    for y, d in zip(outcome, delta):
        pred = 0 if abs(d) <= epsilon else (1 if d > 0 else -1)
        if convention == "acc_eq":
            total += pred == y
            weight += 1
        elif convention == "pickscore":
            if pred == y:
                total += 1.0
            elif (pred == 0) != (y == 0):
                total += 0.5
            weight += 1
        else:  # skip_ties
            if y == 0:
                continue
            total += pred == y
            weight += 1
    return total / weight


def _brute_pair_counts(h, m):
    c = d = th = tm = tb = 0
    for i, j in itertools.combinations(range(len(h)), 2):
        sh, sm = np.sign(h[i] - h[j]), np.sign(m[i] - m[j])
        if sh == 0 and sm == 0:
            tb += 1
        elif sh == 0:
            th += 1
        elif sm == 0:
            tm += 1
        elif sh == sm:
            c += 1
        else:
            d += 1
    return c, d, th, tm, tb


# --------------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "delta", "name"),
    [
        ([1, -1, 0], [0.1, 0.2], "delta"),  # length mismatch
        ([1, 2, 0], [0.1, 0.2, 0.3], "outcome"),  # value outside {-1, 0, 1}
        ([1, 0.5, 0], [0.1, 0.2, 0.3], "outcome"),
        ([1, np.nan, 0], [0.1, 0.2, 0.3], "outcome"),
        ([1, -1, 0], [0.1, np.nan, 0.3], "delta"),
        ([1, -1, 0], [0.1, np.inf, 0.3], "delta"),
        ([], [], "outcome"),  # empty
        ([1, -1, 0], [], "delta"),
        (["a", "b"], [0.1, 0.2], "outcome"),
    ],
)
def test_bad_input_is_rejected_naming_the_argument(outcome, delta, name):
    for call in (
        lambda: pairwise_accuracy(outcome, delta),
        lambda: tie_calibration(outcome, delta),
        lambda: bootstrap_ci(outcome, delta, n_resamples=10),
        lambda: permutation_test(outcome, delta, delta, n_resamples=10),
    ):
        with pytest.raises(ValueError, match=name):
            call()


def test_other_bad_arguments_are_named():
    y, d = HAND_OUTCOME, HAND_DELTA
    with pytest.raises(ValueError, match="convention"):
        pairwise_accuracy(y, d, convention="accuracy")
    with pytest.raises(ValueError, match="epsilon"):
        pairwise_accuracy(y, d, epsilon=-0.1)
    with pytest.raises(ValueError, match="groups"):
        bootstrap_ci(y, d, groups=[0, 1], n_resamples=10)
    with pytest.raises(ValueError, match="n_folds"):
        tie_calibration(y, d, n_folds=1)
    with pytest.raises(ValueError, match="n_folds"):
        tie_calibration(y, d, groups=[0, 0, 0, 0, 1, 1, 1, 1], n_folds=3)
    with pytest.raises(ValueError, match="non-tie"):
        pairwise_accuracy([0, 0, 0], [1.0, 2.0, 3.0], convention="skip_ties")
    with pytest.raises(ValueError, match="human_scores"):
        kendall_variants([1.0, np.nan, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="metric_scores"):
        kendall_variants([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="pair_ids"):
        human_ceiling([1, 1], [0], [0, 1])
    with pytest.raises(ValueError, match="rater_ids"):
        human_ceiling([1, 1], [0, 0], [0])
    with pytest.raises(ValueError, match="alternative"):
        permutation_test(y, d, d, alternative="bigger")


# --------------------------------------------------------------------------------------------------
# Pairwise accuracy
# --------------------------------------------------------------------------------------------------


def test_pairwise_accuracy_hand_computed_conventions():
    # acc_eq: exact matches at 0, 3, 6, 7 -> 4/8.
    assert pairwise_accuracy(HAND_OUTCOME, HAND_DELTA, epsilon=0.1) == pytest.approx(0.5)
    # Pick-a-Pic: 1 + 0.5 (metric tie) + 0 + 1 + 0.5 (human tie) + 0 + 1 + 1 = 5 of 8.
    assert pairwise_accuracy(HAND_OUTCOME, HAND_DELTA, epsilon=0.1, convention="pickscore") == pytest.approx(
        0.625
    )
    # ImageReward: human ties 3, 4, 7 dropped; of 0, 1, 2, 5, 6 only 0 and 6 right (1 is a metric tie).
    assert pairwise_accuracy(HAND_OUTCOME, HAND_DELTA, epsilon=0.1, convention="skip_ties") == pytest.approx(
        0.4
    )
    # epsilon 0: only delta == 0 (index 3) is a metric tie -> matches at 0, 1, 3, 6 -> 4/8.
    assert pairwise_accuracy(HAND_OUTCOME, HAND_DELTA) == pytest.approx(0.5)
    assert pairwise_accuracy(HAND_OUTCOME, HAND_DELTA, convention="skip_ties") == pytest.approx(3 / 5)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_pairwise_accuracy_matches_the_written_rule_and_handles_many_metrics(convention):
    rng = np.random.default_rng(1)
    y = rng.choice([-1, 0, 1], size=300)
    deltas = np.round(rng.normal(size=(300, 4)) + 0.5 * y[:, None], 1)
    eps = np.array([0.0, 0.1, 0.3, 1.0])
    many = pairwise_accuracy(y, deltas, epsilon=eps, convention=convention)
    for j in range(4):
        one = pairwise_accuracy(y, deltas[:, j], epsilon=eps[j], convention=convention)
        assert one == pytest.approx(_brute_accuracy(y, deltas[:, j], eps[j], convention), abs=1e-12)
        assert many[j] == pytest.approx(one, abs=1e-12)


# --------------------------------------------------------------------------------------------------
# Tie calibration
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tie_calibration_is_exact_against_every_candidate_epsilon(convention, seed):
    rng = np.random.default_rng(seed)
    n = 400
    y = rng.choice([-1, 0, 1], size=n, p=[0.35, 0.3, 0.35])
    delta = np.round(0.8 * y + rng.normal(size=n), 1)  # many repeated |delta| values and exact zeros
    assert (delta == 0).any()
    candidates = np.unique(np.r_[0.0, np.abs(delta)])
    brute = np.array([_brute_accuracy(y, delta, e, convention) for e in candidates])
    result = tie_calibration(y, delta, convention=convention)
    assert result.in_sample_accuracy == pytest.approx(brute.max(), abs=1e-12)
    assert result.epsilon == candidates[np.argmax(brute)]  # the smallest maximiser
    # Nothing between or beyond the candidates does better.
    between = (candidates[1:] + candidates[:-1]) / 2
    assert max(_brute_accuracy(y, delta, e, convention) for e in between) <= brute.max() + 1e-12
    assert not result.cross_validated and result.fold_epsilons is None
    assert result.accuracy == result.in_sample_accuracy


def test_tie_calibration_without_zero_delta_considers_epsilon_zero():
    y = np.array([1, -1, 1, -1])
    delta = np.array([0.5, -0.5, 1.0, -2.0])  # every direction right: predicting no tie is best
    eps, acc = tie_calibration(y, delta)
    assert eps == 0.0
    assert acc == 1.0


def test_tie_calibration_prefers_ties_when_humans_tie_small_differences():
    y = np.array([0, 0, 0, 1, -1, 1])
    delta = np.array([0.01, -0.02, 0.03, 0.5, -0.7, 0.9])
    eps, acc = tie_calibration(y, delta)
    assert eps == pytest.approx(0.03)
    assert acc == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_cross_validated_tie_calibration_does_not_leak(seed):
    # Noise: the metric knows nothing.  Picking epsilon in-sample overfits; held-out must not.
    rng = np.random.default_rng(seed)
    n = 3000
    y = rng.choice([-1, 0, 1], size=n)
    delta = rng.normal(size=n)
    groups = rng.integers(0, 300, size=n)
    cv = tie_calibration(y, delta, groups=groups, n_folds=5, random_state=seed)
    assert cv.cross_validated
    assert cv.fold_epsilons.shape == (5,)
    assert cv.accuracy <= cv.in_sample_accuracy
    assert cv.in_sample_accuracy == tie_calibration(y, delta).accuracy


def test_cross_validated_tie_calibration_is_reproducible_and_held_out_is_brute_force():
    rng = np.random.default_rng(7)
    n = 600
    y = rng.choice([-1, 0, 1], size=n)
    delta = np.round(0.7 * y + rng.normal(size=n), 2)
    groups = rng.integers(0, 60, size=n)
    a = tie_calibration(y, delta, groups=groups, n_folds=4, random_state=3)
    b = tie_calibration(y, delta, groups=groups, n_folds=4, random_state=3)
    assert a.accuracy == b.accuracy and np.array_equal(a.fold_epsilons, b.fold_epsilons)
    folds = group_folds(groups, n_folds=4, random_state=3)
    correct = 0.0
    for k in range(4):
        train, test = folds != k, folds == k
        eps_k = tie_calibration(y[train], delta[train]).epsilon
        assert eps_k == a.fold_epsilons[k]
        correct += _brute_accuracy(y[test], delta[test], eps_k, "acc_eq") * test.sum()
    assert a.accuracy == pytest.approx(correct / n, abs=1e-12)


def test_group_folds_keep_groups_together_and_fill_every_fold():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 50, size=1000)
    folds = group_folds(groups, n_folds=5, random_state=1)
    for g in np.unique(groups):
        assert np.unique(folds[groups == g]).size == 1
    sizes = np.bincount(folds, minlength=5)
    assert (sizes > 0).all()
    assert sizes.max() < 2.5 * sizes.min()
    # One huge group: still every fold is non-empty.
    skewed = np.r_[np.zeros(100, int), np.arange(1, 5)]
    assert np.unique(group_folds(skewed, n_folds=5, random_state=0)).size == 5


# --------------------------------------------------------------------------------------------------
# Kendall variants
# --------------------------------------------------------------------------------------------------


def test_kendall_variants_hand_computed():
    # Pairs: (0,1) tied in the metric only, (0,2) and (1,2) concordant.
    out = kendall_variants([1.0, 2.0, 3.0], [1.0, 1.0, 3.0])
    assert out["tau_23"] == pytest.approx((2 - 1) / 3)
    assert out["acc_23"] == pytest.approx(2 / 3)
    assert out["tau_b"] == pytest.approx(2 / np.sqrt(3 * 2))
    assert out["tau_c"] == pytest.approx(2 * 2 / (9 * (2 - 1) / 2))


@pytest.mark.parametrize(
    ("n", "levels", "seed"), [(2, 3, 0), (3, 2, 1), (17, 4, 2), (60, 5, 3), (257, 30, 4)]
)
def test_pair_counts_and_tau_variants_match_brute_force_and_scipy(n, levels, seed):
    rng = np.random.default_rng(seed)
    h = rng.integers(0, levels, size=n).astype(float)
    m = np.round(h + rng.normal(scale=1.5, size=n)).astype(float)
    c, d, th, tm, tb = _brute_pair_counts(h, m)
    pc = pair_counts(h, m)
    assert (pc.concordant, pc.discordant, pc.tied_human_only, pc.tied_metric_only, pc.tied_both) == (
        c,
        d,
        th,
        tm,
        tb,
    )
    assert pc.n_pairs == n * (n - 1) // 2
    out = kendall_variants(h, m)
    total = n * (n - 1) / 2
    assert out["tau_23"] == pytest.approx((c + tb - d - th - tm) / total, abs=1e-12)
    assert out["acc_23"] == pytest.approx((c + tb) / total, abs=1e-12)
    if np.unique(h).size > 1 and np.unique(m).size > 1:
        assert out["tau_b"] == pytest.approx(stats.kendalltau(h, m).statistic, abs=1e-12)
        assert out["tau_c"] == pytest.approx(stats.kendalltau(h, m, variant="c").statistic, abs=1e-12)
        assert out["pearson"] == pytest.approx(stats.pearsonr(h, m).statistic, abs=1e-12)
        assert out["spearman"] == pytest.approx(stats.spearmanr(h, m).statistic, abs=1e-12)


def test_kendall_variants_continuous_large_against_scipy():
    rng = np.random.default_rng(5)
    h = rng.normal(size=5000)
    m = h + rng.normal(size=5000)
    m[::7] = np.round(m[::7], 1)  # some metric ties
    out = kendall_variants(h, m)
    assert out["tau_b"] == pytest.approx(stats.kendalltau(h, m).statistic, abs=1e-12)
    assert out["tau_c"] == pytest.approx(stats.kendalltau(h, m, variant="c").statistic, abs=1e-12)


def test_kendall_variants_constant_vector():
    out = kendall_variants([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])
    assert np.isnan(out["tau_b"]) and np.isnan(out["tau_c"]) and np.isnan(out["pearson"])
    assert out["tau_23"] == pytest.approx(-1.0)  # every pair tied by the metric only
    assert out["acc_23"] == 0.0
    both = kendall_variants([2.0, 2.0], [1.0, 1.0])
    assert both["tau_23"] == 1.0 and both["acc_23"] == 1.0


# --------------------------------------------------------------------------------------------------
# Clustered bootstrap
# --------------------------------------------------------------------------------------------------


def _clustered(rng, n_groups, per_group, mean=0.7, concentration=4.0):
    """Judgments a/b with y = +1; a group's judgments are right with a group-specific probability."""
    p_group = rng.beta(mean * concentration, (1 - mean) * concentration, size=n_groups)
    groups = np.repeat(np.arange(n_groups), per_group)
    correct = rng.random(groups.size) < p_group[groups]
    return np.ones(groups.size, int), np.where(correct, 1.0, -1.0), groups


def test_bootstrap_ci_coverage_with_clustered_data():
    rng = np.random.default_rng(11)
    hits_grouped = hits_naive = 0
    n_sim = 200
    for _ in range(n_sim):
        y, d, g = _clustered(rng, n_groups=40, per_group=10)
        grouped = bootstrap_ci(y, d, groups=g, n_resamples=400, random_state=rng)
        naive = bootstrap_ci(y, d, n_resamples=400, random_state=rng)
        hits_grouped += grouped.low <= 0.7 <= grouped.high
        hits_naive += naive.low <= 0.7 <= naive.high
    # 95 % nominal: the clustered interval is close to it, the judgment-level one under-covers.
    assert 0.88 <= hits_grouped / n_sim <= 0.99
    assert hits_naive / n_sim < 0.80


def test_bootstrap_ci_many_metrics_share_resamples_and_match_a_naive_loop():
    rng = np.random.default_rng(3)
    n = 2000
    y = rng.choice([-1, 0, 1], size=n)
    deltas = np.stack([y + rng.normal(scale=s, size=n) for s in (0.5, 1.0, 2.0)], axis=1)
    groups = rng.integers(0, 200, size=n)
    eps = np.array([0.2, 0.4, 0.0])
    many = bootstrap_ci(y, deltas, epsilon=eps, groups=groups, n_resamples=2000, random_state=9)
    assert isinstance(many, BootstrapCI) and many.n_groups == 200
    np.testing.assert_allclose(many.estimate, pairwise_accuracy(y, deltas, epsilon=eps))
    one = bootstrap_ci(y, deltas[:, 1], epsilon=0.4, groups=groups, n_resamples=2000, random_state=9)
    assert (one.low, one.high) == (many.low[1], many.high[1])  # the same count matrix
    # An independent per-resample loop (different random numbers) agrees up to Monte Carlo error.
    loop_rng = np.random.default_rng(123)
    index_of = [np.flatnonzero(groups == g) for g in range(200)]
    values = []
    for _ in range(2000):
        idx = np.concatenate([index_of[g] for g in loop_rng.integers(0, 200, size=200)])
        values.append(pairwise_accuracy(y[idx], deltas[idx, 1], epsilon=0.4))
    lo, hi = np.quantile(values, [0.025, 0.975])
    assert one.low == pytest.approx(lo, abs=0.01)
    assert one.high == pytest.approx(hi, abs=0.01)
    assert one.low < one.estimate < one.high
    estimate, low, high = one
    assert (estimate, low, high) == (one.estimate, one.low, one.high)


def test_bootstrap_ci_skip_ties_and_pickscore_conventions():
    y, d = np.tile(HAND_OUTCOME, 20), np.tile(HAND_DELTA, 20)
    for convention, expected in (("pickscore", 0.625), ("skip_ties", 0.4)):
        ci = bootstrap_ci(y, d, epsilon=0.1, convention=convention, n_resamples=500, random_state=0)
        assert ci.estimate == pytest.approx(expected)
        assert ci.low < expected < ci.high


# --------------------------------------------------------------------------------------------------
# Permutation tests and significance clusters
# --------------------------------------------------------------------------------------------------


def test_permutation_test_identical_metrics_give_p_one():
    rng = np.random.default_rng(0)
    y = rng.choice([-1, 0, 1], size=500)
    d = rng.normal(size=500)
    for groups in (None, rng.integers(0, 50, size=500)):
        result = permutation_test(y, d, d.copy(), groups=groups, n_resamples=200, random_state=0)
        assert result.difference == 0.0
        assert result.p_value == 1.0


def test_permutation_test_detects_a_clearly_better_metric():
    rng = np.random.default_rng(1)
    n = 2000
    y = rng.choice([-1, 1], size=n)
    good = y + rng.normal(scale=0.5, size=n)
    bad = y + rng.normal(scale=3.0, size=n)
    result = permutation_test(y, good, bad, n_resamples=1000, random_state=0)
    assert result.difference > 0.2
    assert result.p_value == pytest.approx(1 / 1001)
    assert permutation_test(y, good, bad, alternative="less", n_resamples=1000, random_state=0).p_value > 0.99


def test_permutation_test_exact_small_case():
    # Metric 1 right and metric 2 wrong on all 3 judgments: of the 8 equally likely swaps, 2 give a
    # difference as extreme as observed (all kept, all swapped) -> p = 1/4 (two-sided), 1/8 (greater).
    y = np.array([1, 1, 1])
    two = permutation_test(y, [1.0, 1.0, 1.0], [-1.0, -1.0, -1.0], n_resamples=40000, random_state=0)
    assert two.difference == 1.0
    assert two.p_value == pytest.approx(0.25, abs=0.01)
    one = permutation_test(
        y, [1.0, 1.0, 1.0], [-1.0, -1.0, -1.0], alternative="greater", n_resamples=40000, random_state=0
    )
    assert one.p_value == pytest.approx(0.125, abs=0.01)


def test_permutation_test_matches_an_explicit_swap_loop():
    rng = np.random.default_rng(2)
    n = 600
    y = rng.choice([-1, 0, 1], size=n)
    d1 = y + rng.normal(scale=1.6, size=n)
    d2 = y + rng.normal(scale=2.0, size=n)
    groups = rng.integers(0, 80, size=n)
    for convention in CONVENTIONS:
        for g in (None, groups):
            ours = permutation_test(
                y, d1, d2, epsilon_1=0.3, convention=convention, groups=g, n_resamples=4000, random_state=1
            )
            unit = np.arange(n) if g is None else g
            loop_rng = np.random.default_rng(5)
            observed = ours.difference
            extreme = 0
            for _ in range(4000):
                swap = loop_rng.random(unit.max() + 1) < 0.5
                s = swap[unit]
                a = np.where(s, d2, d1)
                b = np.where(s, d1, d2)
                ea = np.where(s, 0.0, 0.3)
                eb = np.where(s, 0.3, 0.0)
                pa = np.where(np.abs(a) <= ea, 0, np.sign(a))
                pb = np.where(np.abs(b) <= eb, 0, np.sign(b))
                diff = _brute_scores(y, pa, convention) - _brute_scores(y, pb, convention)
                extreme += abs(diff) >= abs(observed) - 1e-12
            p_loop = (1 + extreme) / 4001
            assert ours.p_value == pytest.approx(p_loop, abs=0.035), (convention, g is None)


def _brute_scores(y, pred, convention):
    exact = pred == y
    if convention == "acc_eq":
        return exact.mean()
    if convention == "pickscore":
        return (exact + 0.5 * ((pred == 0) != (y == 0))).mean()
    keep = y != 0
    return exact[keep].mean()


def test_permutation_test_null_p_values_are_roughly_uniform():
    rng = np.random.default_rng(3)
    p_values = []
    for i in range(300):
        y = rng.choice([-1, 0, 1], size=200)
        d1 = y + rng.normal(scale=1.5, size=200)
        d2 = y + rng.normal(scale=1.5, size=200)  # equally good metrics
        p_values.append(permutation_test(y, d1, d2, n_resamples=199, random_state=i).p_value)
    p_values = np.array(p_values)
    assert 0.01 <= (p_values <= 0.05).mean() <= 0.10
    assert 0.4 <= np.median(p_values) <= 0.65


def test_permutation_test_grouped_swaps_are_more_conservative_under_clustering():
    rng = np.random.default_rng(4)
    n_groups, per = 30, 20
    groups = np.repeat(np.arange(n_groups), per)
    y = np.ones(n_groups * per, int)
    # Metric 1 is better on some prompts and worse on others: within-prompt correlation.
    better = rng.random(n_groups) < 0.6
    right_1 = np.where(better[groups], rng.random(groups.size) < 0.9, rng.random(groups.size) < 0.5)
    right_2 = np.where(better[groups], rng.random(groups.size) < 0.5, rng.random(groups.size) < 0.9)
    d1, d2 = np.where(right_1, 1.0, -1.0), np.where(right_2, 1.0, -1.0)
    flat = permutation_test(y, d1, d2, n_resamples=2000, random_state=0)
    grouped = permutation_test(y, d1, d2, groups=groups, n_resamples=2000, random_state=0)
    assert grouped.difference == flat.difference
    assert grouped.p_value > flat.p_value


def test_assign_ranks_follows_the_cluster_rule():
    nan = np.nan
    # A vs B n.s., B vs C n.s., A vs C significant: C opens cluster 2.
    p = np.array([[nan, 0.3, 0.01], [nan, nan, 0.2], [nan, nan, nan]])
    assert _assign_ranks(p, 0.05).tolist() == [1, 1, 2]
    # Not only the best: B (second in the cluster) beating C also opens a new cluster.
    p = np.array([[nan, 0.3, 0.2], [nan, nan, 0.04], [nan, nan, nan]])
    assert _assign_ranks(p, 0.05).tolist() == [1, 1, 2]
    # After a new cluster starts at C, D is compared only with C (not with A, B).
    p = np.array(
        [[nan, 0.3, 0.01, 0.001], [nan, nan, 0.2, 0.001], [nan, nan, nan, 0.5], [nan, nan, nan, nan]]
    )
    assert _assign_ranks(p, 0.05).tolist() == [1, 1, 2, 2]
    # p exactly at the level counts as significant (p <= alpha).
    p = np.array([[nan, 0.05], [nan, nan]])
    assert _assign_ranks(p, 0.05).tolist() == [1, 2]
    assert _assign_ranks(np.array([[nan]]), 0.05).tolist() == [1]


def test_significance_clusters_on_simulated_metrics():
    rng = np.random.default_rng(5)
    n = 3000
    y = rng.choice([-1, 1], size=n)
    groups = rng.integers(0, 300, size=n)
    good = y + rng.normal(scale=0.7, size=n)
    deltas = np.stack([y + rng.normal(scale=4.0, size=n), good, good.copy(), -y + rng.normal(size=n)], axis=1)
    result = significance_clusters(y, deltas, groups=groups, n_resamples=500, random_state=0)
    np.testing.assert_allclose(result.accuracy, pairwise_accuracy(y, deltas))
    assert result.order.tolist()[:2] == [1, 2] and result.order.tolist()[2:] == [0, 3]
    assert result.rank.tolist() == [2, 1, 1, 3]
    assert result.p_values[1, 2] == 1.0  # identical metrics
    assert np.isnan(result.p_values[2, 1])


# --------------------------------------------------------------------------------------------------
# Human ceiling
# --------------------------------------------------------------------------------------------------

# pair 0: A +1, B +1, C -1; pair 1: A tie, B tie; pair 2: A only (not scorable).
CEILING = ([1, 1, -1, 0, 0, 1], [0, 0, 0, 1, 1, 2], ["A", "B", "C", "A", "B", "A"])


def test_human_ceiling_hand_computed():
    # Majority of the others: A and B on pair 0 face {+1, -1} -> no plurality -> tie; C faces {+1, +1}.
    hc = human_ceiling(*CEILING)
    assert hc.accuracy == pytest.approx(2 / 5)  # only the two tie-vs-tie judgments of pair 1 match
    assert (hc.n_scored, hc.n_pairs) == (5, 2)
    assert hc.raters.tolist() == ["A", "B", "C"]
    np.testing.assert_allclose(hc.rater_accuracy, [0.5, 0.5, 0.0])
    assert human_ceiling(*CEILING, convention="pickscore").accuracy == pytest.approx(3 / 5)
    skip = human_ceiling(*CEILING, convention="skip_ties")
    assert skip.accuracy == 0.0 and skip.n_scored == 1  # only C has a decided reference
    # Against each other rater: pair 0 gives 2 of 6 ordered matches, pair 1 gives 2 of 2.
    assert human_ceiling(*CEILING, reference="each").accuracy == pytest.approx(4 / 8)
    assert hc.share(0.3) == pytest.approx(0.75)


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("reference", ["majority", "each"])
def test_human_ceiling_matches_a_brute_force_loop(convention, reference):
    rng = np.random.default_rng(6)
    n = 400
    pairs = rng.integers(0, 60, size=n)
    raters = rng.integers(0, 8, size=n)  # a rater may judge a pair twice
    y = rng.choice([-1, 0, 1], size=n, p=[0.4, 0.2, 0.4])
    total, weight = 0.0, 0
    table = {
        "acc_eq": lambda p, r: float(p == r),
        "pickscore": lambda p, r: 1.0 if p == r else (0.5 if (p == 0) != (r == 0) else 0.0),
        "skip_ties": lambda p, r: float(p == r),
    }[convention]
    for i in range(n):
        others = y[(pairs == pairs[i]) & (raters != raters[i])]
        if others.size == 0:
            continue
        if reference == "majority":
            counts = np.array([(others == v).sum() for v in (-1, 0, 1)])
            refs = [[-1, 0, 1][int(np.argmax(counts))] if (counts == counts.max()).sum() == 1 else 0]
        else:
            refs = list(others)
        for r in refs:
            if convention == "skip_ties" and r == 0:
                continue
            total += table(y[i], r)
            weight += 1
    hc = human_ceiling(y, pairs, raters, convention=convention, reference=reference)
    assert hc.accuracy == pytest.approx(total / weight, abs=1e-12)


# --------------------------------------------------------------------------------------------------
# Probability calibration
# --------------------------------------------------------------------------------------------------


def test_davidson_probabilities_sum_to_one_and_reduce_to_logistic():
    delta = np.linspace(-5, 5, 21)
    pa, pt, pb = davidson_probabilities(delta, beta=0.8, nu=1.5)
    np.testing.assert_allclose(pa + pt + pb, 1.0)
    np.testing.assert_allclose(pt[10], 1.5 / 3.5)
    np.testing.assert_allclose(pa, pb[::-1])
    pa0, pt0, _ = davidson_probabilities(delta, beta=0.8, nu=0.0)
    np.testing.assert_allclose(pa0, 1 / (1 + np.exp(-0.8 * delta)))
    assert (pt0 == 0).all()


def test_davidson_fit_recovers_parameters_and_is_the_mle():
    rng = np.random.default_rng(7)
    delta = rng.normal(scale=3.0, size=30000)
    y = _simulate_davidson(rng, delta, beta=0.9, nu=0.6)
    fit = probability_calibration(y, delta, n_folds=None)
    assert fit.beta == pytest.approx(0.9, rel=0.05)
    assert fit.tie_param == pytest.approx(0.6, rel=0.05)

    def nll(theta):
        pa, pt, pb = davidson_probabilities(delta, beta=theta[0], nu=np.exp(theta[1]))
        return -np.sum(np.log(np.where(y == 1, pa, np.where(y == 0, pt, pb))))

    ref = optimize.minimize(nll, [0.5, 0.0], method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-8})
    assert fit.beta == pytest.approx(ref.x[0], abs=1e-4)
    assert np.log(fit.tie_param) == pytest.approx(ref.x[1], abs=1e-4)
    assert nll([fit.beta, np.log(fit.tie_param)]) <= ref.fun + 1e-6


def test_held_out_calibration_of_a_correct_model_is_good():
    rng = np.random.default_rng(8)
    delta = rng.normal(scale=2.0, size=20000)
    y = _simulate_davidson(rng, delta, beta=1.2, nu=0.8)
    groups = rng.integers(0, 1000, size=delta.size)
    fit = probability_calibration(y, delta, groups=groups, n_folds=5, random_state=0)
    assert fit.cross_validated and fit.fold_beta.shape == (5,)
    assert fit.ece < 0.02
    assert fit.reliability.count.sum() == delta.size
    assert fit.reliability.bin_edges.shape == (16,)
    # Brier (three outcomes) and log loss are those of the held-out-free refit up to fold noise.
    pa, pt, pb = fit.predict(delta)
    brier_in = np.mean((pa - (y == 1)) ** 2 + (pt - (y == 0)) ** 2 + (pb - (y == -1)) ** 2)
    assert fit.brier == pytest.approx(brier_in, abs=0.005)
    logistic = probability_calibration(y, delta, model="logistic", groups=groups, random_state=0)
    assert logistic.tie_param == 0.0
    assert logistic.n_evaluated == int((y != 0).sum())
    assert logistic.ece < 0.02
    assert 0 < logistic.brier < 0.25


def test_miscalibrated_metric_has_large_ece_in_sample_brier_formula():
    rng = np.random.default_rng(9)
    delta = rng.normal(size=5000)
    y = _simulate_davidson(rng, delta, beta=2.0, nu=0.0)
    fit = probability_calibration(y, delta, model="logistic", n_folds=None)
    pa = 1 / (1 + np.exp(-fit.beta * delta))
    assert fit.brier == pytest.approx(np.mean((pa - (y == 1)) ** 2), abs=1e-12)
    assert not fit.cross_validated and fit.fold_beta is None


def test_reliability_diagram_ece():
    rng = np.random.default_rng(10)
    p = rng.random(50000)
    event = rng.random(50000) < p
    calibrated = reliability_diagram(p, event)
    assert calibrated.ece < 0.015
    overconfident = reliability_diagram(p**3, event)
    assert overconfident.ece > 0.15
    # Hand case: two bins used, |0.1 - 0| and |0.9 - 1| weighted equally.
    hand = reliability_diagram([0.1, 0.1, 0.9, 0.9], [0, 0, 1, 1], n_bins=2)
    assert hand.ece == pytest.approx(0.1)
    assert hand.count.tolist() == [2, 2]
    empty = reliability_diagram([0.1], [1], n_bins=3)
    assert np.isnan(empty.mean_predicted[1]) and empty.count.tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="predicted"):
        reliability_diagram([1.2], [1])


def test_separable_data_raise_convergence_error():
    delta = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    y = np.sign(delta).astype(int)
    with pytest.raises(ConvergenceError):
        probability_calibration(y, delta, n_folds=None)
    with pytest.raises(ValueError, match="only ties"):
        probability_calibration([0, 0, 0], [1.0, 2.0, 3.0], n_folds=None)


# --------------------------------------------------------------------------------------------------
# Gating thresholds
# --------------------------------------------------------------------------------------------------


def test_precision_recall_curve_matches_brute_force():
    rng = np.random.default_rng(12)
    scores = np.round(rng.normal(size=300), 1)
    passed = rng.random(300) < 1 / (1 + np.exp(-2 * scores))
    curve = precision_recall_curve(scores, passed)
    np.testing.assert_array_equal(curve.thresholds, np.unique(scores))
    for t, prec, rec, k in zip(curve.thresholds, curve.precision, curve.recall, curve.n_pass):
        gate = scores >= t
        assert k == gate.sum()
        assert prec == pytest.approx((gate & passed).sum() / gate.sum())
        assert rec == pytest.approx((gate & passed).sum() / passed.sum())


def test_gating_threshold_meets_targets_as_specified():
    rng = np.random.default_rng(13)
    scores = rng.normal(size=3000)
    passed = rng.random(3000) < 1 / (1 + np.exp(-2 * scores))
    ts = np.unique(scores)
    prec = np.array([passed[scores >= t].mean() for t in ts])
    rec = np.array([(passed & (scores >= t)).sum() / passed.sum() for t in ts])

    g = gating_threshold(scores, passed, target_precision=0.85, n_resamples=500, random_state=0)
    assert g.threshold == ts[np.flatnonzero(prec >= 0.85)[0]]
    assert g.precision >= 0.85
    assert g.ci_low <= g.precision <= g.ci_high
    assert g.ci_high - g.ci_low < 0.1

    g = gating_threshold(scores, passed, target_recall=0.8, n_resamples=500, random_state=0)
    meets = np.flatnonzero(rec >= 0.8)
    assert g.threshold == ts[meets[np.argmax(prec[meets])]]
    assert g.recall >= 0.8
    assert g.ci_low <= g.recall <= g.ci_high

    with pytest.raises(ValueError, match=r"no threshold reaches a precision of 0\.9 \(the best is 0\.\d{4}\)"):
        gating_threshold(scores, scores < 0, target_precision=0.9)  # anti-correlated: best is ~0.5
    with pytest.raises(ValueError, match="exactly one"):
        gating_threshold(scores, passed, target_precision=0.9, target_recall=0.9)
    with pytest.raises(ValueError, match="passed"):
        gating_threshold(scores, np.zeros(3000, bool), target_recall=0.5)


# --------------------------------------------------------------------------------------------------
# Drift
# --------------------------------------------------------------------------------------------------


def test_agreement_drift_trend_against_statsmodels_and_per_window_accuracy():
    from statsmodels.stats.contingency_tables import Table

    rng = np.random.default_rng(14)
    n = 4000
    win = rng.integers(0, 6, size=n)
    correct = rng.random(n) < 0.55 + 0.04 * win  # agreement improves over time
    y = np.ones(n, int)
    d = np.where(correct, 1.0, -1.0)
    drift = agreement_drift(y, d, windows=win, n_resamples=300, random_state=0)
    assert drift.window.tolist() == list(range(6))
    for k in range(6):
        assert drift.accuracy[k] == pytest.approx(correct[win == k].mean())
        assert drift.low[k] < drift.accuracy[k] < drift.high[k]
    assert drift.slope == pytest.approx(0.04, abs=0.015)
    assert drift.trend_p_value < 1e-6
    # Cochran–Armitage z equals the linear-by-linear association z up to sqrt(N / (N − 1)).
    table = np.stack(
        [np.bincount(win[~correct], minlength=6), np.bincount(win[correct], minlength=6)], axis=1
    )
    ref = Table(table).test_ordinal_association(row_scores=np.arange(6.0), col_scores=np.array([0.0, 1.0]))
    assert drift.trend_z * np.sqrt((n - 1) / n) == pytest.approx(ref.zscore, rel=1e-9)


def test_agreement_drift_stationary_and_timestamps():
    rng = np.random.default_rng(15)
    n = 3000
    y = rng.choice([-1, 0, 1], size=n)
    d = y + rng.normal(scale=1.5, size=n)
    start = np.datetime64("2026-01-01T00:00:00")
    seconds = rng.integers(0, 28 * 86400, size=n)
    ts = start + seconds.astype("timedelta64[s]")
    drift = agreement_drift(
        y,
        d,
        timestamps=ts,
        window_length=np.timedelta64(7, "D"),
        epsilon=0.2,
        n_resamples=200,
        random_state=0,
    )
    expected_windows = (seconds - seconds.min()) // (7 * 86400)
    assert drift.window.tolist() == np.unique(expected_windows).tolist()
    assert drift.n_judgments.sum() == n
    assert drift.trend_p_value > 0.01
    numeric = agreement_drift(
        y,
        d,
        timestamps=seconds.astype(float),
        window_length=7 * 86400.0,
        epsilon=0.2,
        n_resamples=200,
        random_state=0,
    )
    np.testing.assert_allclose(numeric.accuracy, drift.accuracy)
    with pytest.raises(ValueError, match="windows"):
        agreement_drift(y, d)
    with pytest.raises(ValueError, match="window_length"):
        agreement_drift(y, d, timestamps=seconds)


# --------------------------------------------------------------------------------------------------
# Metric blends
# --------------------------------------------------------------------------------------------------


def test_metric_blend_beats_complementary_single_metrics_with_non_negative_weights():
    rng = np.random.default_rng(16)
    n = 3000
    u1, u2 = rng.normal(size=n), rng.normal(size=n)
    true = u1 + u2  # humans see both aspects
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-2.5 * true)), 1, -1)
    deltas = np.stack(
        [u1 + 0.3 * rng.normal(size=n), 10 * (u2 + 0.3 * rng.normal(size=n)), -true + rng.normal(size=n)],
        axis=1,
    )
    groups = rng.integers(0, 300, size=n)
    blend = metric_blend(
        y, deltas, groups=groups, n_folds=4, alphas=(1e-4, 1e-2), n_resamples=500, random_state=0
    )
    assert (blend.weights >= 0).all() and (blend.fold_weights >= 0).all()
    assert blend.weights[2] == pytest.approx(0.0, abs=1e-6)  # the anti-correlated metric gets nothing
    assert blend.weights[0] > 0.2 and blend.weights[1] > 0.2  # standardised: both aspects count
    assert blend.scale[1] == pytest.approx(10 * blend.scale[0], rel=0.1)
    assert blend.held_out_accuracy > blend.best_single_accuracy + 0.05
    assert blend.difference == pytest.approx(blend.held_out_accuracy - blend.best_single_accuracy)
    assert blend.p_value < 0.01
    assert set(blend.fold_best_single.tolist()) <= {0, 1}


# --------------------------------------------------------------------------------------------------
# Report and boundary
# --------------------------------------------------------------------------------------------------


def test_calibration_report_is_consistent_with_the_parts():
    rng = np.random.default_rng(17)
    n_items, n = 200, 2000
    strength = rng.normal(size=n_items)
    metric_items = np.stack([strength + rng.normal(scale=s, size=n_items) for s in (0.3, 1.0, 3.0)], axis=1)
    a, b = rng.integers(0, n_items, size=n), rng.integers(0, n_items, size=n)
    y = _simulate_davidson(rng, strength[a] - strength[b], beta=2.0, nu=0.5)
    deltas = metric_items[a] - metric_items[b]
    groups = rng.integers(0, 100, size=n)
    rep = calibration_report(
        y,
        deltas,
        groups=groups,
        human_item_scores=strength,
        metric_item_scores=metric_items,
        n_resamples=300,
        random_state=0,
    )
    for c in CONVENTIONS:
        np.testing.assert_allclose(rep.accuracy[c], pairwise_accuracy(y, deltas, convention=c))
    for j in range(3):
        cal = tie_calibration(y, deltas[:, j])
        assert isinstance(cal, TieCalibration)
        assert (rep.epsilon[j], rep.tie_accuracy[j]) == (cal.epsilon, cal.accuracy)
        assert rep.kendall[j] == kendall_variants(strength, metric_items[:, j])
        assert rep.tie_accuracy_held_out[j] <= rep.tie_accuracy[j] + 0.02
    np.testing.assert_allclose(rep.ci.estimate, pairwise_accuracy(y, deltas, epsilon=rep.epsilon))
    assert rep.clusters.order.tolist() == [0, 1, 2]
    assert rep.clusters.rank[0] == 1 and rep.clusters.rank[2] > rep.clusters.rank[0]


def test_import_does_not_import_django():
    code = (
        "import sys\n"
        "import ranking.core.calibration\n"
        "loaded = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_permutation_p_value_is_exact_with_few_groups():
    """Four prompts, the first metric right on every judgment, the second wrong: only the identity swap
    pattern (of 2^4) is as extreme one-sided, so p = 1/16 exactly (a sampled p would scatter around it)."""
    outcome = np.array([1, 1, -1, 1, -1, 1, 1, -1])
    good = outcome.astype(float)  # predicts every judgment
    bad = -good
    groups = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    one = cal.permutation_test(outcome, good, bad, groups=groups, alternative="greater", random_state=0)
    two = cal.permutation_test(outcome, good, bad, groups=groups, random_state=1)
    assert one.p_value == 1 / 16 and two.p_value == 2 / 16
    assert cal.permutation_test(outcome, good, bad, groups=groups, alternative="less").p_value == 1.0
    # Brute force over the 16 swap patterns.
    g = np.unique(groups)
    diffs = np.array([(cal.pairwise_accuracy(outcome[groups == k], good[groups == k])
                       - cal.pairwise_accuracy(outcome[groups == k], bad[groups == k])) for k in g]) * 2
    totals = [sum(s * d for s, d in zip(signs, diffs)) for signs in itertools.product([1, -1], repeat=g.size)]
    assert one.p_value == np.mean(np.array(totals) >= diffs.sum())
