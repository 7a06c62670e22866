"""Tests of calibration rounds (ranking/core/rounds.py). No database, no Django."""

import itertools
import math

import choix
import numpy as np
import pytest
import scipy.stats

from ranking.core import rounds
from ranking.core.bt import DisconnectedComparisonsError
from ranking.core.rankings import fit_plackett_luce
from ranking.core.rounds import (
    AlarmCharacteristics,
    alarm_characteristics,
    cusum_drift,
    gate_check,
    human_good,
    metric_round_agreement,
    pooled_agreement,
    propose_threshold,
    round_consensus,
    sample_disagreement,
    sample_near_threshold,
    sample_stratified,
    sample_uniform,
)


def simulate_round(theta, n_raters, seed):
    """Complete Plackett–Luce rankings of all items by the Gumbel trick (sort θ + Gumbel, descending)."""
    rng = np.random.default_rng(seed)
    theta = np.asarray(theta, dtype=float)
    return [np.argsort(-(theta + rng.gumbel(size=theta.size))).tolist() for _ in range(n_raters)]


def brute_force_accuracy(human, metric):
    """Pairs with different human values; 1 when the metric orders them the same way, ½ on a metric tie."""
    num = den = 0.0
    for i, j in itertools.combinations(range(len(human)), 2):
        if abs(human[i] - human[j]) <= 1e-9:  # equal strengths up to rounding
            continue
        den += 1
        dh, dm = human[i] - human[j], metric[i] - metric[j]
        num += 0.5 if dm == 0 else float(np.sign(dh) == np.sign(dm))
    return num / den


# --- consensus --------------------------------------------------------------------------------


def test_consensus_is_the_map_of_choix_opt_rankings_with_its_alpha_halved():
    n, alpha = 6, 0.02
    rankings = simulate_round(np.linspace(-1, 1, n), 30, seed=0)
    cons = round_consensus(rankings, n, alpha=alpha)
    ref = choix.opt_rankings(n, rankings, alpha=alpha / 2, tol=1e-10)  # choix penalises a·Σθ²
    np.testing.assert_allclose(cons.strengths, ref, atol=1e-6)
    assert abs(cons.strengths.mean()) < 1e-12
    assert cons.n_rankings == 30 and cons.alpha == alpha
    np.testing.assert_allclose(cons.ci_high - cons.strengths, 1.959963984540054 * cons.se, rtol=1e-12)
    np.testing.assert_allclose(cons.strengths - cons.ci_low, 1.959963984540054 * cons.se, rtol=1e-12)


def test_a_tiny_ridge_leaves_the_mle_of_choix_ilsr_rankings():
    n = 6
    rankings = simulate_round(np.linspace(-1, 1, n), 40, seed=1)
    mle = choix.ilsr_rankings(n, rankings, alpha=0.0, tol=1e-12, max_iter=10_000)
    cons = round_consensus(rankings, n, alpha=1e-6)
    np.testing.assert_allclose(cons.strengths, mle - mle.mean(), atol=1e-4)
    # the default ridge shrinks towards zero, never changes the sign pattern here
    shrunk = round_consensus(rankings, n).strengths
    assert np.all(np.abs(shrunk) < np.abs(mle - mle.mean()) + 1e-12)


def test_consensus_order_recovers_the_simulated_truth():
    theta = np.array([0.3, -1.6, 2.0, -0.5, 1.1, -1.0, 0.0, 1.6])
    cons = round_consensus(simulate_round(theta, 300, seed=2), theta.size)
    np.testing.assert_array_equal(cons.order, np.argsort(-theta))
    assert scipy.stats.pearsonr(cons.strengths, theta)[0] > 0.99


def test_one_ranking_needs_the_ridge_and_then_keeps_its_order():
    ranking = [[4, 1, 0, 3, 2]]
    with pytest.raises(DisconnectedComparisonsError):
        round_consensus(ranking, 5, alpha=0.0)
    cons = round_consensus(ranking, 5)
    assert np.isfinite(cons.strengths).all() and np.isfinite(cons.ci_low).all()
    np.testing.assert_array_equal(cons.order, [4, 1, 0, 3, 2])
    assert np.all(np.diff(cons.strengths[cons.order]) < 0)


def test_items_tied_everywhere_get_equal_strength_and_order_by_index():
    rankings = [[0, [3, 1], 2], [[1, 3], 0, 2]]
    cons = round_consensus(rankings, 4)
    assert cons.strengths[1] == pytest.approx(cons.strengths[3], abs=1e-12)
    order = cons.order.tolist()
    assert order.index(1) + 1 == order.index(3)  # tied: lower index first
    assert order[-1] == 2


def test_consensus_rejects_no_rankings():
    with pytest.raises(ValueError, match="rankings is empty"):
        round_consensus([], 3)


# --- human label ---------------------------------------------------------------------------------


def test_human_good_is_strictly_above_the_median():
    np.testing.assert_array_equal(human_good([3.0, 1.0, 2.0]), [True, False, False])  # odd: median not good
    np.testing.assert_array_equal(human_good([0.1, 0.4, -0.2, 0.3]), [False, True, False, True])
    np.testing.assert_array_equal(human_good([1.0, 1.0, 1.0, 2.0, 0.0]), [False, False, False, True, False])
    # rounding noise at the median is a tie, not a difference
    np.testing.assert_array_equal(human_good([0.5, 0.5 + 1e-14, -1.0, 1.0]), [False, False, False, True])


@pytest.mark.parametrize(
    ("strengths", "match"),
    [([], "non-empty 1-D"), ([[1.0, 2.0]], "non-empty 1-D"), ([1.0, np.nan], "finite"), (["a"], "numeric")],
)
def test_human_good_rejects_bad_input(strengths, match):
    with pytest.raises(ValueError, match=match):
        human_good(strengths)


# --- metric agreement ----------------------------------------------------------------------------


def test_tau_and_p_equal_scipy_exact_and_accuracy_the_pair_count():
    theta = np.array([1.2, -0.4, 0.8, -1.5, 0.1, 0.5, -0.9])
    rankings = simulate_round(theta, 3, seed=4)
    scores = np.array([0.9, 0.2, 0.3, -1.0, 0.4, 1.1, -0.3])
    res = metric_round_agreement(rankings, 7, scores, n_resamples=50, random_state=0)
    strengths = round_consensus(rankings, 7).strengths
    ref = scipy.stats.kendalltau(strengths, scores, method="exact")
    assert res.p_method == "exact"
    assert res.tau_b == pytest.approx(ref.statistic, abs=1e-12)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert res.accuracy == pytest.approx(brute_force_accuracy(strengths, scores), abs=1e-12)
    assert (1 + res.tau_b) / 2 == pytest.approx(res.accuracy)  # no ties: accuracy = (1 + τ)/2
    assert res.n_items == 7 and res.bootstrap == "rankings"
    assert res.top_k == 2  # max(1, 7 // 3)
    top_h = set(np.argsort(-strengths)[:2].tolist())
    assert res.top_k_overlap == len(top_h & {5, 0}) / 2


def test_metric_ties_count_half_and_direction_is_respected():
    rankings = [[0, 1, 2, 3, 4], [0, 2, 1, 3, 4]]
    scores = np.array([5.0, 5.0, 3.0, 1.0, 2.0])  # ties 0 with 1, swaps 3 and 4
    res = metric_round_agreement(rankings, 5, scores, n_resamples=20, random_state=0)
    strengths = round_consensus(rankings, 5).strengths
    assert strengths[1] == pytest.approx(strengths[2], abs=1e-12)  # a human tie: pair (1, 2) left out
    assert res.accuracy == pytest.approx(brute_force_accuracy(strengths, scores))
    assert res.accuracy == pytest.approx(7.5 / 9)  # 9 pairs: 0–1 a metric tie, 3–4 reversed
    assert res.p_method == "asymptotic"  # metric ties: no exact p
    flipped = metric_round_agreement(rankings, 5, -scores, higher_is_better=False, n_resamples=20, random_state=0)
    assert (flipped.tau_b, flipped.accuracy, flipped.top_k_overlap) == (res.tau_b, res.accuracy, res.top_k_overlap)
    reversed_ = metric_round_agreement(rankings, 5, -scores, n_resamples=20, random_state=0)
    assert reversed_.accuracy == pytest.approx(1 - res.accuracy)
    assert reversed_.tau_b == pytest.approx(-res.tau_b)


def test_items_without_a_score_are_left_out():
    theta = np.linspace(1, -1, 6)
    rankings = simulate_round(theta, 4, seed=5)
    scores = np.array([3.0, np.nan, 2.5, 0.1, np.nan, 1.0])
    res = metric_round_agreement(rankings, 6, scores, n_resamples=30, random_state=1)
    strengths = round_consensus(rankings, 6).strengths  # fitted on all 6 items
    keep = [0, 2, 3, 5]
    np.testing.assert_array_equal(res.items, keep)
    assert res.n_items == 4 and res.top_k == 1
    assert res.accuracy == pytest.approx(brute_force_accuracy(strengths[keep], scores[keep]))
    assert res.tau_b == pytest.approx(scipy.stats.kendalltau(strengths[keep], scores[keep]).statistic)


def test_bootstrap_of_identical_rankings_has_no_spread():
    rankings = [[2, 0, 3, 1, 4]] * 3
    scores = np.array([1.0, 3.0, 5.0, 2.0, 0.0])
    res = metric_round_agreement(rankings, 5, scores, n_resamples=40, random_state=2)
    assert res.bootstrap == "rankings"
    assert res.accuracy_ci_low == res.accuracy_ci_high == pytest.approx(res.accuracy)


def test_one_ranking_resamples_items_and_is_reproducible():
    ranking = [[5, 2, 7, 0, 1, 6, 3, 4]]
    scores = np.array([4.0, 6.5, 3.0, 1.5, 2.5, 8.0, 0.0, 5.0])
    a = metric_round_agreement(ranking, 8, scores, n_resamples=300, random_state=7)
    b = metric_round_agreement(ranking, 8, scores, n_resamples=300, random_state=7)
    assert (a.accuracy_ci_low, a.accuracy_ci_high) == (b.accuracy_ci_low, b.accuracy_ci_high)
    c = metric_round_agreement(ranking, 8, scores, n_resamples=300, random_state=8)
    assert (a.accuracy_ci_low, a.accuracy_ci_high) != (c.accuracy_ci_low, c.accuracy_ci_high)
    assert a.bootstrap == "items"
    assert 0 <= a.accuracy_ci_low < a.accuracy < a.accuracy_ci_high <= 1
    perfect = metric_round_agreement(ranking, 8, -np.argsort([5, 2, 7, 0, 1, 6, 3, 4]).astype(float),
                                     n_resamples=100, random_state=0)
    assert perfect.accuracy == 1.0 and perfect.accuracy_ci_low == perfect.accuracy_ci_high == 1.0
    assert perfect.tau_b == pytest.approx(1.0) and perfect.top_k_overlap == 1.0


def test_rankings_bootstrap_interval_reflects_rater_disagreement():
    theta = np.array([0.8, 0.6, 0.4, 0.2, 0.0, -0.2, -0.4, -0.6])
    rankings = simulate_round(theta, 5, seed=9)
    res = metric_round_agreement(rankings, 8, theta, n_resamples=200, random_state=3)
    assert res.accuracy_ci_low < res.accuracy_ci_high
    assert res.accuracy_ci_low <= res.accuracy <= res.accuracy_ci_high


def test_a_constant_metric_has_no_tau_but_an_accuracy_of_one_half():
    res = metric_round_agreement([[0, 1, 2, 3]], 4, np.ones(4), n_resamples=10, random_state=0)
    assert math.isnan(res.tau_b) and math.isnan(res.p_value) and res.p_method == "undefined"
    assert res.accuracy == 0.5


@pytest.mark.parametrize(
    ("rankings", "scores", "kwargs", "match"),
    [
        ([[0, 1, 2, 3]], [1.0, np.nan, np.nan, 0.0], {}, "only 2 of the 4 items have a metric score"),
        ([[0, 1, 2], [1, 2, 0], [2, 0, 1]], [1.0, 2.0, 3.0], {}, "same strength"),  # a Latin square
        ([[0, 1, 2]], [1.0, 2.0, 3.0], {"k": 4}, "k = 4 exceeds the 3 available scored items"),
        ([[0, 1, 2]], [1.0, 2.0, 3.0], {"k": 0}, "k must be a positive integer"),
        ([[0, 1, 2]], [1.0, np.inf, 3.0], {}, "infinite"),
        ([[0, 1, 2]], [1.0, 2.0], {}, r"shape \(3,\)"),
        ([[0, 1, 2]], [1.0, 2.0, 3.0], {"n_resamples": 0}, "n_resamples must be a positive integer"),
        ([[0, 1, 2]], [1.0, 2.0, 3.0], {"confidence": 1.0}, r"confidence must be in \(0, 1\)"),
        ([[0, 1, 2]], [1.0, 2.0, 3.0], {"higher_is_better": "yes"}, "higher_is_better must be True or False"),
    ],
)
def test_metric_round_agreement_rejects(rankings, scores, kwargs, match):
    with pytest.raises(ValueError, match=match):
        metric_round_agreement(rankings, len(scores) if len(scores) > 2 else 3, scores, **kwargs)


# --- gates ---------------------------------------------------------------------------------------


def test_gate_check_hand_worked():
    scores = np.array([0.9, 0.4, np.nan, 0.7, 0.2, 0.5])
    good = np.array([True, True, True, False, False, False])
    res = gate_check(scores, 0.5, higher_is_better=True, human_good=good)
    np.testing.assert_array_equal(res.passed, [True, False, False, True, False, True])
    np.testing.assert_array_equal(res.false_pass, [3, 5])
    np.testing.assert_array_equal(res.false_fail, [1])  # item 2 has no score: not a false fail
    assert res.agreement == pytest.approx(2 / 5) and res.n_scored == 5
    low = gate_check(scores, 0.5, higher_is_better=False, human_good=good)
    np.testing.assert_array_equal(low.passed, [False, True, False, False, True, True])
    np.testing.assert_array_equal(low.false_pass, [4, 5])
    np.testing.assert_array_equal(low.false_fail, [0])
    assert low.agreement == pytest.approx(2 / 5)


@pytest.mark.parametrize(
    ("scores", "threshold", "good", "match"),
    [
        ([np.nan, np.nan], 0.5, [True, False], "no item has a metric score"),
        ([0.1, 0.2], 0.5, [True], r"human_good must have shape \(2,\)"),
        ([0.1, 0.2], 0.5, [2, 0], "only booleans"),
        ([0.1, 0.2], np.nan, [True, False], "threshold must be a finite number"),
        ([[0.1, 0.2]], 0.5, [True, False], "1-D"),
    ],
)
def test_gate_check_rejects(scores, threshold, good, match):
    with pytest.raises(ValueError, match=match):
        gate_check(scores, threshold, higher_is_better=True, human_good=good)


def test_propose_threshold_finds_the_separating_threshold():
    ranking = [[5, 4, 3, 2, 1, 0]]  # humans: 3, 4, 5 good
    scores = np.arange(6.0)
    res = propose_threshold(ranking, 6, scores, 0.5, n_resamples=200, random_state=0)
    assert res.threshold == pytest.approx(2.5) and res.changed
    assert res.agreement_proposed == 1.0 and res.accuracy_proposed == 1.0
    assert res.agreement_current == pytest.approx((1 + 1 / 3) / 2)  # passes 1–5: TPR 1, TNR 1/3
    assert res.accuracy_current == pytest.approx(4 / 6)
    assert res.bootstrap == "items" and res.ci_low <= 2.5 <= res.ci_high
    kept = propose_threshold(ranking, 6, scores, 2.7, n_resamples=50, random_state=0)
    assert not kept.changed and kept.threshold == 2.7 and kept.agreement_current == 1.0
    lower = propose_threshold(ranking, 6, -scores, -0.5, higher_is_better=False, n_resamples=50, random_state=0)
    assert lower.threshold == pytest.approx(-2.5) and lower.changed
    assert lower.ci_low <= -2.5 <= lower.ci_high


def test_propose_threshold_moves_to_the_nearest_best_split():
    ranking = [[3, 1, 2, 0]]  # good: 1 and 3; best splits (BA ¾) at 0.5 and 2.5
    scores = np.arange(4.0)
    assert propose_threshold(ranking, 4, scores, 2.0, n_resamples=20, random_state=0).threshold == 2.5
    assert propose_threshold(ranking, 4, scores, 1.2, n_resamples=20, random_state=0).threshold == 0.5
    kept = propose_threshold(ranking, 4, scores, 1.0, n_resamples=20, random_state=0)  # passes 1, 2, 3
    assert not kept.changed and kept.agreement_current == 0.75
    first = propose_threshold(ranking, 4, scores, None, n_resamples=20, random_state=0)
    assert first.changed and math.isnan(first.agreement_current) and first.agreement_proposed == 0.75


def test_propose_threshold_bootstraps_rankings_and_drops_nan_items():
    rankings = [[5, 4, 3, 2, 1, 0]] * 4
    scores = np.array([0.0, 1.0, 2.0, 3.0, np.nan, 5.0])
    res = propose_threshold(rankings, 6, scores, 0.0, n_resamples=30, random_state=1)
    assert res.bootstrap == "rankings" and res.n_items == 5
    assert res.threshold == 2.5 and res.ci_low == res.ci_high == 2.5  # identical raters: no spread


@pytest.mark.parametrize(
    ("scores", "current", "match"),
    [
        ([np.nan, np.nan, np.nan, 1.0], 0.0, "only 1 of the 4 items have a metric score"),
        ([1.0, 2.0, np.nan, np.nan], 0.0, "same half"),
        ([1.0, 2.0, 3.0, 4.0], np.inf, "current_threshold must be a finite number"),
    ],
)
def test_propose_threshold_rejects(scores, current, match):
    with pytest.raises(ValueError, match=match):
        propose_threshold([[3, 2, 1, 0]], 4, scores, current, n_resamples=10)


# --- samplers ------------------------------------------------------------------------------------


def test_sample_uniform_is_distinct_in_range_and_reproducible():
    a = sample_uniform(50, 10, random_state=3)
    assert a.size == 10 and np.unique(a).size == 10 and a.min() >= 0 and a.max() < 50
    np.testing.assert_array_equal(a, sample_uniform(50, 10, random_state=3))
    np.testing.assert_array_equal(sample_uniform(5, 5, random_state=0), np.arange(5))
    counts = np.bincount(np.concatenate([sample_uniform(6, 2, random_state=s) for s in range(600)]), minlength=6)
    assert counts.min() > 150 and counts.max() < 250  # expected 200 each


def test_sample_stratified_worked_examples():
    strata = np.repeat(["a", "b", "c"], [50, 30, 20])
    picked = sample_stratified(strata, 7, random_state=0)  # quotas 3.5, 2.1, 1.4 → 4, 2, 1
    assert np.unique(picked).size == 7
    assert [int(np.sum(strata[picked] == s)) for s in "abc"] == [4, 2, 1]
    strata = np.repeat([10, 20, 30], [90, 8, 2])  # quotas 4.5, 0.4, 0.1 → 5, 0, 0 → every stratum one
    picked = sample_stratified(strata, 5, random_state=1)
    assert [int(np.sum(strata[picked] == s)) for s in (10, 20, 30)] == [3, 1, 1]
    few = sample_stratified(np.repeat([0, 1, 2], 4), 2, random_state=2)  # fewer picks than strata
    assert np.unique(few // 4).size == 2
    everything = sample_stratified(np.repeat([0, 1], [3, 2]), 5, random_state=0)
    np.testing.assert_array_equal(everything, np.arange(5))


def test_sample_disagreement_picks_the_planted_items():
    rng = np.random.default_rng(0)
    base = rng.normal(size=12)
    scores = np.column_stack([base, 10 * base + 3, base**3])  # monotone: the metrics agree…
    scores[4] = [base.max() + 1, 10 * base.min() - 1, base.min() ** 3 - 1]  # …except on 4 and 9
    scores[9] = [base.min() - 1, 10 * base.max() + 10, base.max() ** 3 + 1]
    np.testing.assert_array_equal(sample_disagreement(scores, 2, random_state=1), [4, 9])
    scores[9, 1:] = np.nan  # one metric left: cannot disagree, chosen last
    assert 9 not in sample_disagreement(scores, 11, random_state=1)
    assert 9 in sample_disagreement(scores, 12, random_state=1)


def test_sample_near_threshold_picks_the_nearest_ranks():
    scores = np.arange(10.0)
    np.testing.assert_array_equal(sample_near_threshold(scores, 6.0, 1), [6])
    np.testing.assert_array_equal(sample_near_threshold(scores, 6.0, 3), [5, 6, 7])
    np.testing.assert_array_equal(sample_near_threshold(scores, 100.0, 2), [8, 9])
    ties = {tuple(sample_near_threshold(scores, 4.5, 3, random_state=s)) for s in range(30)}
    assert ties == {(3, 4, 5), (4, 5, 6)}  # 3 and 6 are equally far: random between them
    with_nan = np.array([0.0, np.nan, 2.0, 3.0, np.nan])
    np.testing.assert_array_equal(sample_near_threshold(with_nan, 1.0, 3), [0, 2, 3])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: sample_uniform(5, 6), "k = 6 exceeds the 5 available items"),
        (lambda: sample_uniform(5, 0), "k must be a positive integer"),
        (lambda: sample_stratified([0, 0, 1], 4), "k = 4 exceeds the 3 available items"),
        (lambda: sample_stratified([0, 0, 1], 0), "k must be a positive integer"),
        (lambda: sample_stratified([0.0, np.nan], 1), "strata contains NaN"),
        (lambda: sample_disagreement(np.ones((4, 2)), 5), "k = 5 exceeds the 4 available items"),
        (lambda: sample_disagreement(np.ones((4, 2)), 0), "k must be a positive integer"),
        (lambda: sample_disagreement(np.ones((4, 1)), 2), "at least 2 metrics"),
        (lambda: sample_disagreement(np.ones(4), 2), "at least 2 metrics"),
        (lambda: sample_near_threshold([1.0, np.nan, 2.0], 1.5, 3), "k = 3 exceeds the 2 available scored items"),
        (lambda: sample_near_threshold([1.0, 2.0], 1.5, 0), "k must be a positive integer"),
        (lambda: sample_near_threshold([1.0, 2.0], np.nan, 1), "threshold must be a finite number"),
    ],
)
def test_samplers_reject(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- pooling and drift ---------------------------------------------------------------------------


def test_pooled_agreement_equals_a_hand_computation():
    values = np.array([0.70, 0.80, 0.60])
    low = np.array([0.60, 0.75, 0.40])
    high = np.array([0.80, 0.85, 0.80])
    ages = np.array([0.0, 3.0, 6.0])
    z = 1.959963984540054
    se = np.array([0.1, 0.05, 0.2]) / z
    w = np.array([1.0, 0.5, 0.25]) / se**2
    est = (w @ values) / w.sum()
    se_pool = math.sqrt(np.sum(w**2 * se**2)) / w.sum()
    res = pooled_agreement(values, low, high, ages=ages, half_life=3.0)
    assert res.estimate == pytest.approx(est, rel=1e-12)
    assert res.se == pytest.approx(se_pool, rel=1e-12)
    assert (res.ci_low, res.ci_high) == pytest.approx((est - z * se_pool, est + z * se_pool), rel=1e-12)
    np.testing.assert_allclose(res.weights, w / w.sum(), rtol=1e-12)
    flat = pooled_agreement(values, low, high, ages=np.zeros(3))  # no decay: plain inverse variance
    assert flat.se == pytest.approx(1 / math.sqrt(np.sum(1 / se**2)), rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ci_high": [0.8, 0.75]}, "ci_high <= ci_low"),
        ({"ages": [0.0, -1.0]}, "ages must be >= 0"),
        ({"half_life": 0.0}, "half_life must be a positive number"),
        ({"values": [0.7, np.nan]}, "values must be finite"),
        ({"ages": [0.0]}, "length mismatch"),
    ],
)
def test_pooled_agreement_rejects(kwargs, match):
    args = {"values": [0.7, 0.8], "ci_low": [0.6, 0.75], "ci_high": [0.8, 0.85], "ages": [0.0, 1.0]} | kwargs
    with pytest.raises(ValueError, match=match):
        pooled_agreement(args["values"], args["ci_low"], args["ci_high"], ages=args["ages"],
                         half_life=args.get("half_life", 3.0))


def test_cusum_flat_series_never_alarms():
    res = cusum_drift(np.full(30, 0.75), np.full(30, 0.05))
    assert res.alarm_at is None and res.baseline == 0.75 and res.tested_from == 3
    assert np.all(res.statistic == 0)


def test_cusum_alarms_on_a_planted_drop_at_the_right_round():
    values = np.r_[np.full(8, 0.75), np.full(10, 0.65)]
    res = cusum_drift(values, np.full(18, 0.05))
    # each dropped round adds (0.10 − 0.025) / 0.05 = 1.5; S = 1.5, 3.0, 4.5 → alarm on the third
    np.testing.assert_allclose(res.statistic[8:11], [1.5, 3.0, 4.5])
    assert res.alarm_at == 10
    given = cusum_drift(values[5:], np.full(13, 0.05), baseline=0.75)
    assert given.tested_from == 0 and given.alarm_at == 5
    rising = cusum_drift(np.r_[np.full(5, 0.7), np.full(10, 0.9)], np.full(15, 0.05))
    assert rising.alarm_at is None  # one-sided: improvements never alarm


def test_cusum_statistic_resets_and_uses_each_rounds_se():
    values = np.array([0.8, 0.8, 0.8, 0.7, 0.9, 0.7])
    ses = np.array([0.1, 0.1, 0.1, 0.05, 0.1, 0.02])
    res = cusum_drift(values, ses, shift=0.04, h=10)
    s3 = (0.1 - 0.02) / 0.05
    s4 = max(0.0, s3 + (-0.1 - 0.02) / 0.1)
    s5 = max(0.0, s4 + (0.1 - 0.02) / 0.02)
    np.testing.assert_allclose(res.statistic, [0, 0, 0, s3, s4, s5])
    assert res.alarm_at is None
    short = cusum_drift([0.7, 0.8], [0.1, 0.1])  # fewer rounds than n_baseline: nothing tested
    assert short.alarm_at is None and short.tested_from == 2 and short.baseline == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ses": [0.1, 0.0, 0.1]}, "ses must be > 0"),
        ({"ses": [0.1, 0.1]}, "length mismatch"),
        ({"h": 0.0}, "h must be a positive number"),
        ({"shift": -0.1}, "shift must be a finite number >= 0"),
        ({"n_baseline": 0}, "n_baseline must be a positive integer"),
        ({"values": []}, "non-empty"),
    ],
)
def test_cusum_rejects(kwargs, match):
    args = {"values": [0.7, 0.8, 0.75], "ses": [0.1, 0.1, 0.1]} | kwargs
    values, ses = args.pop("values"), args.pop("ses")
    with pytest.raises(ValueError, match=match):
        cusum_drift(values, ses, **args)


# --- simulated alarm behaviour -------------------------------------------------------------------


def test_batched_fit_equals_fit_plackett_luce():
    rng = np.random.default_rng(11)
    q = rng.normal(size=(4, 7))
    orders = np.argsort(-(q[:, None, :] + rng.gumbel(size=(4, 3, 7))), axis=2)
    batch = rounds._pl_map_complete(orders, 0.1)
    for b in range(4):
        ref = fit_plackett_luce(orders[b].tolist(), 7, alpha=0.1).strengths
        np.testing.assert_allclose(batch[b], ref, atol=1e-9)


@pytest.mark.parametrize("accuracy", [0.6, 0.75, 0.9])
def test_metric_noise_gives_the_target_accuracy_against_the_truth(accuracy):
    sigma = rounds._sigma_for_accuracy(accuracy)
    rng = np.random.default_rng(0)
    q = rng.normal(size=(20_000, 2))
    m = q + sigma * rng.normal(size=q.shape)
    hit = np.mean(np.sign(q[:, 0] - q[:, 1]) == np.sign(m[:, 0] - m[:, 1]))
    assert hit == pytest.approx(accuracy, abs=0.01)  # SE ≈ 0.003


def test_alarm_is_quiet_without_drift_and_catches_a_big_drop():
    res = alarm_characteristics(baseline_accuracy=0.8, drop=0.2, n_rounds=15, change_at=8, n_baseline=8,
                                h=6.0, n_sims=100, random_state=3)
    assert isinstance(res, AlarmCharacteristics)
    assert res.false_alarm_rate <= 0.06
    assert res.detection_rate >= 0.9
    assert 1 <= res.detection_delay_median <= 10
    assert res.measured_drifted < res.measured_baseline - 0.1
    assert 0.05 < res.round_sd < 0.2


def test_bigger_drops_are_caught_sooner():
    common = dict(n_rounds=12, n_sims=60, random_state=5)  # same seed: the same rounds, noisier metric
    results = [alarm_characteristics(drop=d, **common) for d in (0.05, 0.12, 0.22)]
    delays = [r.detection_delay_mean for r in results]
    rates = [r.detection_rate for r in results]
    assert delays[0] > delays[1] > delays[2]
    assert rates[0] < rates[1] <= rates[2]
    assert len({r.false_alarm_rate for r in results}) == 1  # the runs without drift are identical


def test_alarm_characteristics_is_reproducible_with_a_seed():
    kw = dict(n_items=5, n_raters=2, n_rounds=6, change_at=3, n_sims=20)
    assert alarm_characteristics(random_state=42, **kw) == alarm_characteristics(random_state=42, **kw)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"baseline_accuracy": 0.5}, r"baseline_accuracy must be in \(0.5, 1\)"),
        ({"drop": 0.3}, "drop must be in"),
        ({"drop": -0.01}, "drop must be in"),
        ({"n_items": 2}, "n_items must be at least 3"),
        ({"change_at": 2}, "change_at must be an integer >= n_baseline = 3"),
        ({"n_rounds": 3}, "leaves no round to test"),
        ({"n_sims": 0}, "n_sims must be a positive integer"),
        ({"h": -1.0}, "h must be a positive number"),
        ({"alpha": 0.0}, "alpha must be a positive number"),
    ],
)
def test_alarm_characteristics_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        alarm_characteristics(**kwargs)
