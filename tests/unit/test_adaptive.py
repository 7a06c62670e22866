"""Tests of adaptive pair selection (ranking/core/adaptive.py). No database, no Django."""

import numpy as np
import pytest

from ranking.core.adaptive import (
    RULES,
    PairPlan,
    all_pairs,
    comparison_information,
    model_pairs_to_items,
    pair_counts,
    pair_weights,
    plan_pairs,
    strength_covariance,
)
from ranking.core.bt import Z_95, fit_bt


def random_counts(n, m, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    return pair_counts(a, b, n)


def weight_of(cand, weights, i, j):
    return float(weights[np.flatnonzero((cand[:, 0] == i) & (cand[:, 1] == j))[0]])


# ------------------------------------------------------------------------------------------
# Building blocks


def test_comparison_information_is_p_one_minus_p_without_ties_and_the_davidson_curvature_with():
    d = np.array([-40.0, -3.0, -0.5, 0.0, 0.7, 5.0, 800.0])
    p = 1.0 / (1.0 + np.exp(-d))
    np.testing.assert_allclose(comparison_information(d), p * (1 - p), rtol=1e-12, atol=1e-300)
    # Davidson: the information is the second derivative of log D(d), D = e^{d/2} + e^{-d/2} + ν.
    nu, h = 0.8, 1e-4
    x = np.array([-2.0, 0.0, 0.3, 4.0])

    def log_d(t):
        return np.log(np.exp(t / 2) + np.exp(-t / 2) + nu)

    numeric = (log_d(x + h) - 2 * log_d(x) + log_d(x - h)) / h**2
    np.testing.assert_allclose(comparison_information(x, nu), numeric, rtol=1e-6)
    assert np.all(np.isfinite(comparison_information(d, nu)))


def test_pair_counts_is_symmetric_and_counts_both_orders():
    counts = pair_counts([0, 1, 2, 0], [1, 0, 0, 2], 3)
    np.testing.assert_array_equal(counts, [[0, 2, 2], [2, 0, 0], [2, 0, 0]])
    np.testing.assert_array_equal(pair_counts([0], [1], 2, weights=[2.5]), [[0, 2.5], [2.5, 0]])
    assert all_pairs(3).tolist() == [[0, 1], [0, 2], [1, 2]]


def test_strength_covariance_matches_fit_bt_standard_errors():
    rng = np.random.default_rng(3)
    n, m = 12, 400
    theta = rng.normal(size=n)
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    won = rng.random(m) < 1 / (1 + np.exp(theta[b] - theta[a]))
    winners, losers = np.where(won, a, b), np.where(won, b, a)
    counts = pair_counts(a, b, n)
    for alpha in (0.0, 0.3):
        fit = fit_bt(winners, losers, n, alpha=alpha)
        cov = strength_covariance(fit.strengths, counts, alpha=alpha)
        np.testing.assert_allclose(np.sqrt(np.diag(cov)), fit.se, rtol=1e-8)
        np.testing.assert_allclose(cov.sum(axis=1), 0.0, atol=1e-10)  # strengths are mean-zero


# ------------------------------------------------------------------------------------------
# pair_weights


def brute_force_reduction(info_matrix, i, j, info, alpha):
    """2z(√(uᵀCu) − √(uᵀC'u)) with C, C' from inverting the information before/after."""
    n = info_matrix.shape[0]
    u = np.zeros(n)
    u[i], u[j] = 1.0, -1.0

    def cov(f):
        return np.linalg.inv(f) if alpha > 0 else np.linalg.pinv(f)

    before = u @ cov(info_matrix) @ u
    after = u @ cov(info_matrix + info * np.outer(u, u)) @ u
    return 2 * Z_95 * (np.sqrt(before) - np.sqrt(after))


@pytest.mark.parametrize("alpha", [0.0, 0.5])
@pytest.mark.parametrize("tie_param", [None, 0.7])
def test_ci_reduction_equals_refit_of_the_covariance_with_one_more_comparison(alpha, tie_param):
    n = 7
    theta = np.random.default_rng(1).normal(size=n)
    theta -= theta.mean()
    counts = random_counts(n, 60, seed=2)
    cov = strength_covariance(theta, counts, tie_param=tie_param, alpha=alpha)
    info_pair = counts * comparison_information(theta[:, None] - theta[None, :], tie_param)
    np.fill_diagonal(info_pair, 0.0)
    info_matrix = np.diag(info_pair.sum(axis=1) + alpha) - info_pair
    cand = all_pairs(n)
    weights = pair_weights(theta, cov, counts, rule="ci_reduction", tie_param=tie_param, floor=0.0)
    expected = [
        brute_force_reduction(
            info_matrix, i, j, comparison_information(theta[i] - theta[j], tie_param), alpha
        )
        for i, j in cand
    ]
    np.testing.assert_allclose(weights, expected, rtol=1e-7)


@pytest.mark.parametrize("rule", ["ci_reduction", "information_gain"])
def test_close_pairs_weigh_most(rule):
    strengths = np.array([0.0, 0.1, 3.0])
    w = pair_weights(strengths, np.full(3, 0.5), np.zeros((3, 3)), rule=rule, floor=0.0)
    cand = all_pairs(3)
    assert weight_of(cand, w, 0, 1) > weight_of(cand, w, 1, 2) > 0
    assert weight_of(cand, w, 0, 1) > weight_of(cand, w, 0, 2)


@pytest.mark.parametrize("rule", ["ci_reduction", "information_gain"])
def test_uncertain_pairs_weigh_most(rule):
    se = np.array([0.2, 0.2, 1.0, 1.0])
    w = pair_weights(np.zeros(4), se, np.zeros((4, 4)), rule=rule, floor=0.0)
    cand = all_pairs(4)
    assert np.argmax(w) == np.flatnonzero((cand[:, 0] == 2) & (cand[:, 1] == 3))[0]
    assert weight_of(cand, w, 0, 2) > weight_of(cand, w, 0, 1)


@pytest.mark.parametrize("rule", ["ci_reduction", "information_gain"])
def test_rarely_compared_pairs_weigh_most(rule):
    counts = np.zeros((4, 4))
    counts[0, 1] = counts[1, 0] = 60  # pair (0, 1) compared often, the rest a little, in a cycle
    for i, j in [(1, 2), (2, 3), (3, 0)]:
        counts[i, j] = counts[j, i] = 5
    strengths = np.zeros(4)
    cand = all_pairs(4)
    full = pair_weights(strengths, strength_covariance(strengths, counts), counts, rule=rule, floor=0.0)
    assert np.argmin(full) == 0  # (0, 1)
    assert weight_of(cand, full, 0, 2) > weight_of(cand, full, 1, 2) > weight_of(cand, full, 0, 1)
    # With standard errors only, the direct comparisons bound the pair's variance.
    se_only = pair_weights(strengths, np.full(4, 0.5), counts, rule=rule, floor=0.0)
    assert weight_of(cand, se_only, 0, 1) < weight_of(cand, se_only, 0, 2)


def test_information_gain_is_bald_mutual_information():
    # Small variance: MI ≈ ½ I v (the Laplace entropy drop); never above log 3; zero without doubt.
    for d, nu in [(0.0, None), (1.3, None), (0.4, 0.6)]:
        strengths = np.array([d, 0.0])
        info = comparison_information(d, nu)
        v = 1e-3
        w = pair_weights(
            strengths,
            np.sqrt([v / 2, v / 2]),
            np.zeros((2, 2)),
            rule="information_gain",
            tie_param=nu,
            floor=0.0,
        )
        np.testing.assert_allclose(w, 0.5 * info * v, rtol=2e-3)
    w = pair_weights(
        np.zeros(2), np.array([30.0, 30.0]), np.zeros((2, 2)), rule="information_gain", tie_param=1.0
    )
    assert 0.5 < w[0] <= np.log(3)
    zero = pair_weights(
        np.array([0.0, 1.0, 2.0]),
        np.array([0.0, 0.0, 1.0]),
        np.zeros((3, 3)),
        rule="information_gain",
        floor=0.0,
    )
    assert zero[0] == 0.0 and zero[1] > 0 and zero[2] > 0


@pytest.mark.parametrize("rule", ["ci_reduction", "information_gain"])
def test_floor_keeps_every_pair_alive(rule):
    n = 10
    theta = np.linspace(-4, 4, n)
    counts = random_counts(n, 200, seed=5)
    cov = strength_covariance(theta, counts, alpha=0.1)
    raw = pair_weights(theta, cov, counts, rule=rule, floor=0.0)
    floored = pair_weights(theta, cov, counts, rule=rule, floor=0.2)
    assert raw.min() < 0.2 * raw.mean()  # the floor binds for some pairs here
    np.testing.assert_allclose(floored, np.maximum(raw, 0.2 * raw.mean()))
    assert floored.min() == pytest.approx(0.2 * raw.mean())
    # Nothing to learn anywhere: uniform weights instead of a division by zero.
    np.testing.assert_array_equal(pair_weights(theta[:3], np.zeros(3), np.zeros((3, 3)), rule=rule), 1.0)


def test_uniform_rule_and_candidates_subset():
    w = pair_weights(np.zeros(4), np.ones(4), np.zeros((4, 4)), rule="uniform")
    np.testing.assert_array_equal(w, np.ones(6))
    cand = np.array([[3, 1], [0, 2]])
    sub = pair_weights(
        np.array([0.0, 1.0, 0.2, 3.0]), np.ones(4), np.zeros((4, 4)), candidates=cand, floor=0.0
    )
    full = pair_weights(np.array([0.0, 1.0, 0.2, 3.0]), np.ones(4), np.zeros((4, 4)), floor=0.0)
    np.testing.assert_allclose(sub, [full[4], full[1]])  # (1, 3) and (0, 2) in all_pairs order


# ------------------------------------------------------------------------------------------
# plan_pairs


def test_plan_draws_distinct_pairs_reproducibly():
    n = 15
    theta = np.random.default_rng(0).normal(size=n)
    counts = random_counts(n, 100, seed=1)
    cov = strength_covariance(theta, counts, alpha=0.1)
    for rule in RULES:
        plan = plan_pairs(theta, cov, counts, 40, rule=rule, random_state=42)
        assert isinstance(plan, PairPlan) and plan.rule == rule
        assert plan.pairs.shape == (40, 2) and np.all(plan.pairs[:, 0] < plan.pairs[:, 1])
        assert len({tuple(p) for p in plan.pairs}) == 40
        assert plan.candidates.shape == (n * (n - 1) // 2, 2) and plan.weights.shape == (
            plan.candidates.shape[0],
        )
        np.testing.assert_allclose(plan.probabilities.sum(), 1.0)
        again = plan_pairs(theta, cov, counts, 40, rule=rule, random_state=42)
        np.testing.assert_array_equal(plan.pairs, again.pairs)
    other = plan_pairs(theta, cov, counts, 40, random_state=43)
    assert not np.array_equal(plan_pairs(theta, cov, counts, 40, random_state=42).pairs, other.pairs)
    # all candidates: a permutation of them
    everything = plan_pairs(theta, cov, counts, n * (n - 1) // 2, random_state=0).pairs
    assert len({tuple(p) for p in everything}) == n * (n - 1) // 2
    assert plan_pairs(theta, cov, counts, 0).pairs.shape == (0, 2)


def test_plan_respects_candidates_and_follows_the_weights():
    theta = np.array([0.0, 0.05, 4.0, -4.0])
    se = np.ones(4)
    cand = np.array([[1, 0], [2, 3], [0, 3]])  # any orientation
    plan = plan_pairs(theta, se, np.zeros((4, 4)), 2, candidates=cand, random_state=0)
    np.testing.assert_array_equal(plan.candidates, [[0, 1], [2, 3], [0, 3]])
    assert {tuple(p) for p in plan.pairs} <= {(0, 1), (2, 3), (0, 3)}
    # With replacement the empirical frequencies follow the probabilities.
    draws = plan_pairs(theta, se, np.zeros((4, 4)), 20000, candidates=cand, replace=True, random_state=1)
    freq = [np.mean((draws.pairs[:, 0] == i) & (draws.pairs[:, 1] == j)) for i, j in draws.candidates]
    np.testing.assert_allclose(freq, draws.probabilities, atol=0.015)
    assert draws.probabilities[0] > draws.probabilities[2] > draws.probabilities[1]


def test_plan_with_zero_floor_still_fills_the_batch():
    se = np.array([0.0, 0.0, 0.0, 1.0])  # only pairs with item 3 have anything to learn
    plan = plan_pairs(np.zeros(4), se, np.zeros((4, 4)), 5, floor=0.0, random_state=0)
    assert len({tuple(p) for p in plan.pairs}) == 5
    assert {tuple(p) for p in plan.pairs[:3]} == {(0, 3), (1, 3), (2, 3)}


# ------------------------------------------------------------------------------------------
# model_pairs_to_items


def test_model_pairs_to_items_picks_least_compared_images_of_the_right_models():
    item_models = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    counts = np.zeros((8, 8))
    for i, j, c in [(0, 3, 5), (1, 4, 2), (2, 5, 1), (0, 6, 3), (3, 7, 4)]:
        counts[i, j] = counts[j, i] = c
    # totals: item0 8, item1 2, item2 1, item3 9, item4 2, item5 1, item6 3, item7 4
    out = model_pairs_to_items(np.array([[0, 1]]), item_models, counts, random_state=0)
    assert out.tolist() == [[2, 4]]
    out = model_pairs_to_items(np.array([[2, 0], [0, 1], [1, 2]]), item_models, counts, random_state=0)
    assert np.all(item_models[out[:, 0]] == [2, 0, 1]) and np.all(item_models[out[:, 1]] == [0, 1, 2])
    assert out[0].tolist() == [5, 2]
    # 1-D totals work the same; a repeated model pair moves on to images not used yet
    out = model_pairs_to_items(np.array([[0, 1]]), item_models, counts.sum(axis=1), random_state=0)
    assert out.tolist() == [[2, 4]]
    out = model_pairs_to_items(np.array([[0, 1]] * 3), np.repeat([0, 1], 3), random_state=0)
    assert sorted(out[:, 0]) == [0, 1, 2] and sorted(out[:, 1]) == [3, 4, 5]


def test_model_pairs_to_items_is_random_among_equals_and_prefers_new_pairs():
    item_models = np.repeat([0, 1], 4)
    seen = {tuple(model_pairs_to_items([[0, 1]], item_models, random_state=s)[0]) for s in range(40)}
    assert len(seen) > 8  # many different images among equally compared ones
    assert all(a < 4 <= b for a, b in seen)
    # same totals, but (0, 4) already compared directly: item 0 is then paired with another image
    counts = np.zeros((8, 8))
    counts[0, 4] = counts[4, 0] = 1
    counts[1, 5] = counts[5, 1] = counts[2, 6] = counts[6, 2] = counts[3, 7] = counts[7, 3] = 1
    for s in range(20):
        a, b = model_pairs_to_items([[0, 1]], item_models, counts, random_state=s)[0]
        assert counts[a, b] == 0
    np.testing.assert_array_equal(
        model_pairs_to_items([[0, 1], [1, 0]], item_models, random_state=7),
        model_pairs_to_items([[0, 1], [1, 0]], item_models, random_state=7),
    )


# ------------------------------------------------------------------------------------------
# Adaptive beats uniform


def judgments_to_target(rule, seed, n=20, batch=20, spread=2.0, target=1.6, cap=3000, alpha=0.01):
    """Batches of planned pairs, refit after each; judgments until the mean 95 % CI ≤ target."""
    truth = np.random.default_rng([seed, 0]).normal(scale=spread, size=n)
    rng = np.random.default_rng([seed, 1])
    a = b = np.zeros(0, dtype=int)
    won = np.zeros(0, dtype=bool)
    counts, theta, cov = np.zeros((n, n)), np.zeros(n), np.ones(n)
    while a.size < cap:
        pairs = plan_pairs(
            theta, cov, counts, batch, rule=rule if a.size else "uniform", random_state=rng
        ).pairs
        p_first = 1 / (1 + np.exp(truth[pairs[:, 1]] - truth[pairs[:, 0]]))
        a, b = np.r_[a, pairs[:, 0]], np.r_[b, pairs[:, 1]]
        won = np.r_[won, rng.random(batch) < p_first]
        fit = fit_bt(np.where(won, a, b), np.where(won, b, a), n, alpha=alpha)
        if 2 * Z_95 * fit.se.mean() <= target:
            return a.size
        counts, theta = pair_counts(a, b, n), fit.strengths
        cov = strength_covariance(theta, counts, alpha=alpha)
    return cap


def test_adaptive_reaches_the_target_ci_width_with_fewer_judgments():
    # True strengths spread over ~8 logits: uniform pairs waste judgments on foregone conclusions.
    # Over 4 seeds ci_reduction needs 0.48–0.76 of uniform's judgments (checked on 5 seed sets).
    seeds = range(4)
    uniform = sum(judgments_to_target("uniform", s) for s in seeds)
    ci = sum(judgments_to_target("ci_reduction", s) for s in seeds)
    gain = sum(judgments_to_target("information_gain", s) for s in seeds)
    assert ci < 0.85 * uniform
    assert gain < uniform


# ------------------------------------------------------------------------------------------
# Errors

THETA = np.zeros(3)
SE = np.ones(3)
COUNTS = np.zeros((3, 3))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strengths": np.zeros((3, 1))}, "1-D"),
        ({"strengths": np.zeros(1), "cov": np.ones(1), "counts": np.zeros((1, 1))}, "at least 2"),
        ({"strengths": np.array([0.0, np.nan, 1.0])}, "finite"),
        ({"cov": np.ones(4)}, r"shape \(3,\)"),
        ({"cov": np.ones((3, 2))}, "cov must have shape"),
        ({"cov": np.array([1.0, -1.0, 1.0])}, "standard errors must be"),
        ({"cov": np.full((3, 3), np.inf)}, "cov must be finite"),
        ({"cov": np.array([[1.0, 0.5, 0], [0, 1, 0], [0, 0, 1]])}, "symmetric"),
        ({"cov": -np.eye(3)}, "non-negative diagonal"),
        ({"counts": np.zeros((2, 2))}, "counts must have shape"),
        ({"counts": -np.ones((3, 3))}, "finite and >= 0"),
        ({"counts": np.triu(np.ones((3, 3)), 1)}, "symmetric"),
        ({"rule": "greedy"}, "rule must be one of"),
        ({"tie_param": -0.1}, "tie_param"),
        ({"floor": 1.5}, "floor"),
        ({"candidates": np.array([0, 1])}, r"shape \(c, 2\)"),
        ({"candidates": np.zeros((0, 2), dtype=int)}, "empty"),
        ({"candidates": np.array([[0.5, 1.0]])}, "integer"),
        ({"candidates": np.array([[0, 3]])}, r"\[0, 3\)"),
        ({"candidates": np.array([[1, 1]])}, "two different items"),
        ({"candidates": np.array([[0, 1], [1, 0]])}, "distinct"),
    ],
)
def test_pair_weights_and_plan_pairs_reject_bad_input(kwargs, match):
    args = {"strengths": THETA, "cov": SE, "counts": COUNTS} | kwargs
    with pytest.raises(ValueError, match=match):
        pair_weights(args.pop("strengths"), args.pop("cov"), args.pop("counts"), **args)
    args = {"strengths": THETA, "cov": SE, "counts": COUNTS} | kwargs
    with pytest.raises(ValueError, match=match):
        plan_pairs(args.pop("strengths"), args.pop("cov"), args.pop("counts"), 1, **args)


def test_plan_pairs_rejects_bad_k():
    with pytest.raises(ValueError, match="only 3 candidate pairs"):
        plan_pairs(THETA, SE, COUNTS, 4)
    with pytest.raises(ValueError, match="only 1 candidate pairs"):
        plan_pairs(THETA, SE, COUNTS, 2, candidates=[[0, 2]])
    assert plan_pairs(THETA, SE, COUNTS, 4, replace=True).pairs.shape == (4, 2)
    for k in (-1, 1.5, True):
        with pytest.raises(ValueError, match="non-negative integer"):
            plan_pairs(THETA, SE, COUNTS, k)


@pytest.mark.parametrize(
    ("model_pairs", "item_models", "counts", "match"),
    [
        ([[0, 2]], [0, 0, 1], None, r"model\(s\) \[2\] have no images"),
        ([[0, 1]], [0, 0, 2], None, r"model\(s\) \[1\] have no images"),
        ([[0, 0]], [0, 1], None, "two different models"),
        ([0, 1], [0, 1], None, r"shape \(k, 2\)"),
        ([[0, -1]], [0, 1], None, "non-negative integer"),
        ([[0, 1]], [[0, 1]], None, "1-D"),
        ([[0, 1]], [0.0, 1.0], None, "non-negative integer"),
        ([[0, 1]], [0, 1], np.zeros((3, 3)), "counts_items must have shape"),
        ([[0, 1]], [0, 1], np.array([[0, 1], [2, 0]]), "symmetric"),
        ([[0, 1]], [0, 1], np.array([1.0, -1.0]), "totals"),
    ],
)
def test_model_pairs_to_items_rejects_bad_input(model_pairs, item_models, counts, match):
    with pytest.raises(ValueError, match=match):
        model_pairs_to_items(np.asarray(model_pairs), np.asarray(item_models), counts)


def test_building_blocks_reject_bad_input():
    with pytest.raises(ValueError, match="separate groups"):
        strength_covariance(np.zeros(4), pair_counts([0, 2], [1, 3], 4))
    assert strength_covariance(np.zeros(4), pair_counts([0, 2], [1, 3], 4), alpha=1.0).shape == (4, 4)
    with pytest.raises(ValueError, match="alpha"):
        strength_covariance(np.zeros(2), np.zeros((2, 2)), alpha=-1)
    with pytest.raises(ValueError, match="tie_param"):
        comparison_information(0.0, tie_param=np.inf)
    with pytest.raises(ValueError, match="n_items"):
        all_pairs(1)
    with pytest.raises(ValueError, match="same length"):
        pair_counts([0, 1], [1], 2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        pair_counts([0], [2], 2)
    with pytest.raises(ValueError, match="two different items"):
        pair_counts([1], [1], 2)
    with pytest.raises(ValueError, match="weights"):
        pair_counts([0], [1], 2, weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="n_items"):
        pair_counts([0], [1], 0)
