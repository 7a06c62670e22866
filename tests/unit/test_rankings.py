"""Tests of the rankings engine (ranking/core/rankings.py). No database, no Django."""

import itertools
import math
import subprocess
import sys
from pathlib import Path

import choix
import numpy as np
import pytest
import scipy.optimize
import scipy.stats

from ranking.core import rankings as rk
from ranking.core.bt import DisconnectedComparisonsError, fit_bt
from ranking.core.errors import ConvergenceError
from ranking.core.rankings import (
    KendallTau,
    PLFit,
    fit_plackett_luce,
    kendall_tau_exact,
    pl_objective,
    rank_breaking,
    top_k_overlap,
)

REPO = Path(__file__).resolve().parents[2]


# --- simulation and brute-force likelihoods written straight from the model ------------------------


def simulate_pl(n_items, n_rankings, seed, k_range=(3, 10), top=None, scale=1.0):
    """Plackett–Luce rankings by the Gumbel trick: sort θ_i + Gumbel noise (descending).

    Each ranking shows k items drawn uniformly from ``k_range``; with ``top`` only the best ``top``
    are kept and ``shown`` holds the shown set.
    """
    rng = np.random.default_rng(seed)
    theta = rng.normal(scale=scale, size=n_items)
    out, shown = [], []
    for _ in range(n_rankings):
        k = int(rng.integers(k_range[0], k_range[1] + 1))
        s = rng.choice(n_items, k, replace=False)
        order = s[np.argsort(-(theta[s] + rng.gumbel(size=k)))].tolist()
        out.append(order if top is None else order[:top])
        shown.append(s.tolist())
    return theta, out, (shown if top is not None else None)


def dl_alternatives(remaining, orders):
    return [h for t in orders if t <= len(remaining) for h in itertools.combinations(remaining, t)]


def dl_alt_weight(h, theta, deltas):
    t = len(h)
    return (1.0 if t == 1 else deltas[t]) * math.exp(sum(theta[i] for i in h) / t)


def simulate_dl(n_items, n_rankings, seed, deltas, k_range=(2, 5)):
    """Davidson–Luce rankings sampled choice by choice (subsets of sizes in {1} ∪ deltas)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n_items)
    orders = [1, *sorted(deltas)]
    out = []
    for _ in range(n_rankings):
        k = int(rng.integers(k_range[0], k_range[1] + 1))
        remaining = sorted(rng.choice(n_items, k, replace=False).tolist())
        ranking = []
        while remaining:
            alts = dl_alternatives(remaining, orders)
            w = np.array([dl_alt_weight(h, theta, deltas) for h in alts])
            h = alts[rng.choice(len(alts), p=w / w.sum())]
            ranking.append(list(h))
            remaining = [i for i in remaining if i not in h]
        out.append(ranking)
    return theta, out


def groups_of(ranking):
    return [[g] if isinstance(g, int) else list(g) for g in ranking]


def dl_log_prob(theta, groups, rest, deltas):
    """log P(ranked groups in order, then the unranked ``rest``) under Davidson–Luce, choice by choice."""
    orders = [1, *sorted(deltas)]
    remaining = [i for g in groups for i in g] + list(rest)
    total = 0.0
    for g in groups:
        if len(remaining) == 1:
            break
        alts = dl_alternatives(remaining, orders)
        denom = sum(dl_alt_weight(h, theta, deltas) for h in alts)
        total += math.log(dl_alt_weight(tuple(g), theta, deltas) / denom)
        remaining = [i for i in remaining if i not in g]
    return total


def pl_full_log_prob(theta, order):
    """log P(a complete strict order) under Plackett–Luce: Π_s π_(s) / Σ_{j ≥ s} π_(j)."""
    v = np.asarray([theta[i] for i in order])
    return float(sum(v[s] - np.log(np.sum(np.exp(v[s:]))) for s in range(len(v))))


def ordered_partitions(items):
    """Every weak order (ordered set partition) of ``items``."""
    items = list(items)
    if not items:
        yield []
        return
    for size in range(1, len(items) + 1):
        for first in itertools.combinations(items, size):
            rest = [i for i in items if i not in first]
            for tail in ordered_partitions(rest):
                yield [list(first), *tail]


def numeric_hessian(f, x, h=1e-4):
    k = x.size
    hess = np.empty((k, k))
    eye = np.eye(k) * h
    for a in range(k):
        for b in range(a, k):
            ea, eb = eye[a], eye[b]
            val = (f(x + ea + eb) - f(x + ea - eb) - f(x - ea + eb) + f(x - ea - eb)) / (4 * h * h)
            hess[a, b] = hess[b, a] = val
    return hess


# --- against choix ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mle_matches_choix_ilsr_rankings(seed):
    n = 25
    _, rankings, _ = simulate_pl(n, 600, seed, k_range=(3, 10))  # mixed lengths
    fit = fit_plackett_luce(rankings, n)
    ref = choix.ilsr_rankings(n, rankings, alpha=0.0, tol=1e-13, max_iter=100_000)
    np.testing.assert_allclose(fit.strengths, ref - ref.mean(), atol=1e-9, rtol=0)  # choix: mean zero too
    assert abs(fit.strengths.mean()) < 1e-12
    assert fit.converged and fit.tie_params is None
    assert fit.objective <= pl_objective(ref, rankings, n) + 1e-9


def test_mle_matches_choix_opt_rankings():
    # choix's opt_rankings evaluates its objective in a Python loop (slow): a small data set.
    n = 8
    _, rankings, _ = simulate_pl(n, 60, seed=4, k_range=(3, 6))
    fit = fit_plackett_luce(rankings, n)
    ref = choix.opt_rankings(n, rankings, alpha=0.0, tol=1e-10)
    np.testing.assert_allclose(fit.strengths, ref - ref.mean(), atol=1e-6, rtol=0)
    assert fit.objective <= pl_objective(ref - ref.mean(), rankings, n) + 1e-12


def test_map_matches_choix_opt_rankings_with_its_alpha_halved():
    """choix's opt_rankings(alpha=a) minimises NLL + a·Σθ² (Top1Fcts' penalty): our alpha = 2a."""
    n, alpha = 8, 1.0
    _, rankings, _ = simulate_pl(n, 60, seed=5, k_range=(3, 6))
    theta = np.random.default_rng(0).normal(size=n)
    choix_objective = choix.opt.Top1Fcts.from_rankings(rankings, alpha / 2).objective(theta)
    assert pl_objective(theta, rankings, n, alpha=alpha) == pytest.approx(choix_objective, rel=1e-12)
    fit = fit_plackett_luce(rankings, n, alpha=alpha)
    ref = choix.opt_rankings(n, rankings, alpha=alpha / 2, tol=1e-10)
    np.testing.assert_allclose(fit.strengths, ref, atol=1e-6, rtol=0)  # the MAP is mean-zero itself
    nll = pl_objective(fit.strengths, rankings, n)
    assert fit.objective == pytest.approx(nll + 0.5 * alpha * fit.strengths @ fit.strengths, rel=1e-12)
    assert fit.log_likelihood == pytest.approx(-nll, rel=1e-12)


def test_top_m_rankings_match_choix_top1_on_the_implied_choices():
    n = 20
    _, rankings, shown = simulate_pl(n, 1500, seed=3, k_range=(4, 8), top=2)
    fit = fit_plackett_luce(rankings, n, shown=shown)
    top1 = []
    for ranking, s in zip(rankings, shown):
        remaining = list(s)
        for winner in ranking:
            remaining.remove(winner)
            top1.append((winner, list(remaining)))
    ref = choix.ilsr_top1(n, top1, alpha=0.0, tol=1e-13, max_iter=100_000)
    np.testing.assert_allclose(fit.strengths, ref - ref.mean(), atol=1e-8, rtol=0)


# --- the likelihood ----------------------------------------------------------------------------------


def test_log_likelihood_equals_brute_force_for_full_rankings():
    n = 10
    _, rankings, _ = simulate_pl(n, 120, seed=4, k_range=(2, 7))
    weights = np.random.default_rng(0).uniform(0.2, 3.0, len(rankings))
    fit = fit_plackett_luce(rankings, n, weights=weights)
    brute = sum(w * pl_full_log_prob(fit.strengths, r) for w, r in zip(weights, rankings))
    assert fit.log_likelihood == pytest.approx(brute, rel=1e-12)
    theta = np.random.default_rng(1).normal(size=n)  # anywhere, not only at the optimum
    brute = sum(w * pl_full_log_prob(theta, r) for w, r in zip(weights, rankings))
    assert -pl_objective(theta, rankings, n, weights=weights) == pytest.approx(brute, rel=1e-12)


def test_partial_rankings_of_mixed_lengths_match_brute_force_marginal():
    """A top-m ranking's likelihood is the sum, over every order of the unranked rest, of full PL rankings."""
    n = 9
    rng = np.random.default_rng(7)
    rankings, shown = [], []
    for _ in range(40):
        k = int(rng.integers(2, 7))
        s = rng.choice(n, k, replace=False).tolist()
        m = int(rng.integers(1, k + 1))
        rankings.append(s[:m])
        shown.append(s if rng.random() < 0.8 else None)  # some complete rankings mixed in
        if shown[-1] is None:
            rankings[-1] = s
    theta = rng.normal(size=n)
    brute = 0.0
    for r, s in zip(rankings, shown):
        rest = [] if s is None else [i for i in s if i not in r]
        brute += math.log(
            sum(math.exp(pl_full_log_prob(theta, r + list(tail))) for tail in itertools.permutations(rest))
        )
    assert -pl_objective(theta, rankings, n, shown=shown) == pytest.approx(brute, rel=1e-12)
    fit = fit_plackett_luce(rankings, n, shown=shown, alpha=0.3)  # small data: MAP always exists
    res = scipy.optimize.minimize(
        lambda t: pl_objective(t, rankings, n, shown=shown, alpha=0.3),
        np.zeros(n),
        method="BFGS",
        options={"gtol": 1e-10},
    )
    np.testing.assert_allclose(fit.strengths, res.x, atol=1e-5)  # BFGS on numerical gradients
    assert fit.objective <= res.fun + 1e-12


def test_davidson_luce_is_a_probability_model():
    """Summed over every weak order of 4 items (75 of them), the probabilities add up to 1."""
    theta = np.array([0.3, -1.0, 0.8, 0.1])
    for deltas in ({2: 0.7, 3: 0.4, 4: 1.5}, {2: 2.0}):
        total = 0.0
        count = 0
        for weak in ordered_partitions(range(4)):
            if any(len(g) > 1 and len(g) not in deltas for g in weak):
                continue  # tie orders outside T have probability 0
            total += math.exp(-pl_objective(theta, [weak], 4, tie_params=deltas))
            count += 1
        assert total == pytest.approx(1.0, rel=1e-12)
    assert count == 24 + 6 * 6 + 3 * 2  # strict orders, + one tied pair (6 pairs × 3!), + two tied pairs


def test_davidson_luce_log_likelihood_matches_choice_by_choice_formula_and_partial_marginal():
    deltas = {2: 0.6, 3: 0.25}
    theta = np.random.default_rng(2).normal(size=7)
    rankings = [[[0, 3], 5, [1, 2, 6]], [4, [2, 0]], [[6, 1]], [2, 5, 1]]
    shown = [None, [4, 2, 0, 1, 3], None, [2, 5, 1, 3, 4, 6]]
    got = -pl_objective(theta, rankings, 7, shown=shown, tie_params=deltas)
    brute = 0.0
    for r, s in zip(rankings, shown):
        groups = groups_of(r)
        ranked = [i for g in groups for i in g]
        rest = [] if s is None else [i for i in s if i not in ranked]
        direct = dl_log_prob(theta, groups, rest, deltas)
        # Marginal over every way (order and ties) the unranked rest could have been ranked.
        completions = [w for w in ordered_partitions(rest) if all(len(g) == 1 or len(g) in deltas for g in w)]
        marginal = math.log(sum(math.exp(dl_log_prob(theta, groups + w, [], deltas)) for w in completions))
        assert direct == pytest.approx(marginal, rel=1e-12)
        brute += direct
    assert got == pytest.approx(brute, rel=1e-12)


def test_pairs_with_ties_are_the_davidson_model_of_bt():
    """With k = 2 Davidson–Luce is Davidson (1970): same θ, δ_2 = ν and likelihood as fit_bt."""
    rng = np.random.default_rng(6)
    n = 8
    theta = rng.normal(size=n)
    i = rng.integers(0, n, 600)
    j = (i + rng.integers(1, n, 600)) % n
    pi, pj = np.exp(theta[i]), np.exp(theta[j])
    nu = 0.8
    u = rng.random(600) * (pi + pj + nu * np.sqrt(pi * pj))
    tied = u >= pi + pj
    winners = np.where(u < pi, i, j)
    losers = np.where(u < pi, j, i)
    rankings = [[[int(a), int(b)]] if t else [int(a), int(b)] for a, b, t in zip(winners, losers, tied)]
    weights = rng.uniform(0.5, 2.0, 600)
    fit = fit_plackett_luce(rankings, n, weights=weights)
    ref = fit_bt(winners, losers, n, tied=tied, weights=weights)
    np.testing.assert_allclose(fit.strengths, ref.strengths, atol=1e-8)
    np.testing.assert_allclose(fit.se, ref.se, rtol=1e-6)
    assert set(fit.tie_params) == {2}
    assert fit.tie_params[2] == pytest.approx(ref.tie_param, rel=1e-8)
    assert fit.log_likelihood == pytest.approx(ref.log_likelihood, rel=1e-10)


def test_ties_fit_equals_direct_minimisation_and_recovers_tie_parameters():
    deltas = {2: 0.5, 3: 0.2}
    theta, rankings = simulate_dl(8, 4000, seed=11, deltas=deltas, k_range=(2, 5))
    fit = fit_plackett_luce(rankings, 8)
    assert set(fit.tie_params) == {2, 3}
    assert fit.tie_params[2] == pytest.approx(0.5, rel=0.15)
    assert fit.tie_params[3] == pytest.approx(0.2, rel=0.35)
    assert np.max(np.abs(fit.strengths - (theta - theta.mean()))) < 0.15
    # The optimum itself, by a general-purpose optimiser on the choice-by-choice likelihood.
    small = rankings[:300]
    fit_s = fit_plackett_luce(small, 8)

    def nll(x):  # θ_0..θ_6 free, θ_7 = −Σ; x[7:] = log δ_2, log δ_3
        th = np.append(x[:7], -x[:7].sum())
        d = {2: math.exp(x[7]), 3: math.exp(x[8])}
        return -sum(dl_log_prob(th, groups_of(r), [], d) for r in small)

    res = scipy.optimize.minimize(nll, np.zeros(9), method="BFGS", options={"gtol": 1e-8})
    np.testing.assert_allclose(fit_s.strengths, np.append(res.x[:7], -res.x[:7].sum()), atol=1e-4)
    assert math.log(fit_s.tie_params[2]) == pytest.approx(res.x[7], abs=1e-4)
    assert -fit_s.log_likelihood == pytest.approx(res.fun, rel=1e-9)


# --- estimation properties -------------------------------------------------------------------------


def test_recovers_known_strengths_from_simulated_rankings():
    n = 40
    theta, rankings, _ = simulate_pl(n, 6000, seed=21, k_range=(3, 10))
    fit = fit_plackett_luce(rankings, n)
    truth = theta - theta.mean()
    err = fit.strengths - truth
    assert np.max(np.abs(err)) < 0.2
    assert np.all(np.abs(err) < 4.5 * fit.se)
    cover = np.mean((fit.ci_low <= truth) & (truth <= fit.ci_high))
    assert 0.85 <= cover <= 1.0
    assert np.corrcoef(fit.strengths, truth)[0, 1] > 0.99


def test_invariant_to_relabelling_items():
    n = 12
    _, rankings = simulate_dl(n, 500, seed=3, deltas={2: 0.7}, k_range=(2, 6))
    shown = [None] * len(rankings)
    rankings = list(rankings)
    rankings[0] = [[5]]  # a top-1 choice from a shown set
    shown[0] = [5, 0, 2, 7]
    perm = np.random.default_rng(5).permutation(n)

    def relabel(r):
        return [[int(perm[i]) for i in g] for g in r]

    fit = fit_plackett_luce(rankings, n, shown=shown)
    fit_p = fit_plackett_luce(
        [relabel(r) for r in rankings],
        n,
        shown=[None if s is None else [int(perm[i]) for i in s] for s in shown],
    )
    np.testing.assert_allclose(fit_p.strengths[perm], fit.strengths, atol=1e-9)
    np.testing.assert_allclose(fit_p.se[perm], fit.se, rtol=1e-7)
    assert fit_p.tie_params[2] == pytest.approx(fit.tie_params[2], rel=1e-9)
    assert fit_p.log_likelihood == pytest.approx(fit.log_likelihood, rel=1e-12)


def test_integer_weights_equal_repeated_rankings():
    n = 10
    _, rankings = simulate_dl(n, 300, seed=8, deltas={2: 0.5}, k_range=(2, 5))
    counts = np.random.default_rng(9).integers(0, 4, len(rankings))  # includes weight 0
    weighted = fit_plackett_luce(rankings, n, weights=counts.astype(float))
    repeated = fit_plackett_luce([r for r, c in zip(rankings, counts) for _ in range(c)], n)
    np.testing.assert_allclose(weighted.strengths, repeated.strengths, atol=1e-9)
    np.testing.assert_allclose(weighted.se, repeated.se, rtol=1e-7)
    assert weighted.log_likelihood == pytest.approx(repeated.log_likelihood, rel=1e-10)
    assert weighted.tie_params[2] == pytest.approx(repeated.tie_params[2], rel=1e-9)


def test_input_forms_are_equivalent():
    a = fit_plackett_luce([[2, 0, 1], [1, 2, 0], [0, 1, 2]], 3)
    b = fit_plackett_luce([[[2], [0], [1]], np.array([1, 2, 0]), ([0], 1, (2,))], 3)
    np.testing.assert_allclose(a.strengths, b.strengths, atol=1e-14)
    # A complete ranking equals the same ranking with shown = its items, and dropping the last
    # item of a complete ranking changes nothing (its last "choice" is certain).
    c = fit_plackett_luce([[2, 0], [1, 2], [0, 1]], 3, shown=[[0, 1, 2]] * 3)
    np.testing.assert_allclose(a.strengths, c.strengths, atol=1e-12)
    assert a.log_likelihood == pytest.approx(c.log_likelihood, rel=1e-14)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_standard_errors_match_inverse_of_numerical_hessian(alpha):
    n = 6
    deltas = {2: 0.6}
    _, rankings = simulate_dl(n, 250, seed=12, deltas=deltas, k_range=(2, 5))
    fit = fit_plackett_luce(rankings, n, alpha=alpha)

    def penalised(x):  # x = (θ_0..θ_{n-1}, log δ_2)
        return pl_objective(x[:n], rankings, n, alpha=alpha, tie_params={2: math.exp(x[n])})

    x0 = np.append(fit.strengths, math.log(fit.tie_params[2]))
    h = numeric_hessian(penalised, x0)
    h_theta = h[:n, :n] - np.outer(h[:n, n], h[n, :n]) / h[n, n]  # profile out log δ
    proj = np.eye(n) - 1.0 / n
    cov = proj @ np.linalg.pinv(h_theta) @ proj
    np.testing.assert_allclose(fit.se, np.sqrt(np.diag(cov)), rtol=1e-5)
    np.testing.assert_allclose(fit.ci_high - fit.ci_low, 2 * 1.959963984540054 * fit.se, rtol=1e-12)


def test_standard_errors_without_ties_match_numerical_hessian():
    n = 7
    _, rankings, shown = simulate_pl(n, 200, seed=13, k_range=(3, 7), top=3)
    fit = fit_plackett_luce(rankings, n, shown=shown)
    h = numeric_hessian(lambda t: pl_objective(t, rankings, n, shown=shown), fit.strengths)
    proj = np.eye(n) - 1.0 / n
    np.testing.assert_allclose(fit.se, np.sqrt(np.diag(proj @ np.linalg.pinv(h) @ proj)), rtol=1e-5)


@pytest.mark.parametrize("deltas", [None, {2: 0.4}])
def test_matrix_free_solver_gives_the_dense_answer(monkeypatch, deltas):
    n = 60
    if deltas is None:
        _, rankings, shown = simulate_pl(n, 1500, seed=14, k_range=(3, 7), top=4)
    else:
        _, rankings = simulate_dl(n, 1500, seed=14, deltas=deltas, k_range=(3, 6))
        shown = None
    dense = fit_plackett_luce(rankings, n, shown=shown, compute_se=False)
    monkeypatch.setattr(rk, "_DENSE_MAX_PARAMS", 10)
    sparse = fit_plackett_luce(rankings, n, shown=shown, compute_se=False)
    np.testing.assert_allclose(sparse.strengths, dense.strengths, atol=1e-7)
    assert sparse.objective == pytest.approx(dense.objective, rel=1e-12)
    if deltas:
        assert sparse.tie_params[2] == pytest.approx(dense.tie_params[2], rel=1e-7)


def test_tie_free_hessian_shortcut_equals_the_general_formula():
    """Without ties the Hessian is assembled per ranking; it must equal Xᵀ diag(wp) X − Σ w μ μᵀ."""
    n = 15
    _, rankings, shown = simulate_pl(n, 300, seed=15, k_range=(2, 8), top=3)
    shown[::3] = [None] * len(shown[::3])  # every third ranking: complete (its top 3 only)
    weights = np.random.default_rng(2).uniform(0.0, 2.0, len(rankings))
    data = rk._parse_rankings(rankings, n, shown, weights)
    design = rk._Design(data, [1])
    assert design.simple
    x = np.random.default_rng(3).normal(size=n)
    _, _, p = design.evaluate(x, 0.0)
    fast = design.hessian(p, 0.7)
    design.simple = False
    general = design.hessian(p, 0.7)
    np.testing.assert_allclose(fast, general, atol=1e-12)
    assert np.abs(fast).max() > 1.0


# --- existence ----------------------------------------------------------------------------------------


def test_disconnected_rankings_raise_and_name_the_groups():
    # {0, 1} are always ranked above {2, 3}: no finite MLE.
    rankings = [[0, 2, 3], [1, 3, 2], [0, 1, 2], [1, 0, 3]]
    with pytest.raises(DisconnectedComparisonsError) as info:
        fit_plackett_luce(rankings, 4)
    msg = str(info.value)
    assert "[0, 1] (never ranked below the rest)" in msg
    assert "alpha > 0" in msg
    assert "[2, 3] (never ranked above the rest)" in msg
    assert sorted(map(sorted, (g.tolist() for g in info.value.groups))) == [[0, 1], [2, 3]]
    fit = fit_plackett_luce(rankings, 4, alpha=1.0)  # MAP exists
    assert fit.strengths[0] > fit.strengths[2]


def test_items_only_left_unranked_or_never_shown_are_not_identifiable():
    rankings = [[0, 1], [1, 0], [0]]
    shown = [None, None, [0, 1, 2]]
    with pytest.raises(DisconnectedComparisonsError) as info:
        fit_plackett_luce(rankings, 4, shown=shown)
    assert "[2] (never ranked above the rest)" in str(info.value)
    assert info.value.unobserved.tolist() == [3]
    assert "Items in no ranking: [3]" in str(info.value)
    with pytest.raises(DisconnectedComparisonsError, match=r"some items are in no ranking.*: \[2\]"):
        fit_plackett_luce([[0, 1], [1, 0]], 3)


def test_tie_order_at_every_opportunity_has_no_mle():
    # Every choice is a tie of the whole pair: δ_2 → ∞ although the graph is connected.
    rankings = [[[0, 1]], [[1, 2]], [[0, 2]]]
    with pytest.raises(ConvergenceError, match="tie parameter δ_2 diverges"):
        fit_plackett_luce(rankings, 3)


# --- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rankings": [[0, 1, 0]]}, r"rankings\[0\] lists item 0 more than once"),
        ({"rankings": [[0, 1], [2, [1, 2]]]}, r"rankings\[1\] lists item 2 more than once"),
        ({"rankings": [[0, 1], [0, 5]]}, r"rankings\[1\] contains item 5, outside \[0, n_items=4\)"),
        ({"rankings": [[0, 1], [-1, 2]]}, r"rankings\[1\] contains item -1"),
        ({"rankings": [[0, 1], [2]]}, r"rankings\[1\] has fewer than 2 items"),
        ({"rankings": [[0, 1], []]}, r"rankings\[1\] ranks no items"),
        ({"rankings": [[0, []]]}, r"rankings\[0\] has an empty group"),
        ({"rankings": [[0, 1.5]]}, r"rankings\[0\] holds 1.5"),
        ({"rankings": [[True, 2]]}, r"rankings\[0\] holds True"),
        ({"rankings": [3]}, r"rankings\[0\] must be a sequence"),
        ({"rankings": [{0, 1, 2}]}, r"rankings\[0\] is a set: a ranking must be ordered"),
        ({"rankings": [[0, 1]], "weights": [-1.0]}, r"weights must be non-negative"),
        ({"rankings": [[0, 1]], "weights": [1.0, 2.0]}, r"weights must have shape \(1,\)"),
        ({"rankings": [[0, 1]], "weights": [np.nan]}, r"weights must be finite"),
        (
            {"rankings": [[0, 1]], "shown": [[0, 2]]},
            r"rankings\[0\] ranks item 1, which is not in shown\[0\]",
        ),
        ({"rankings": [[0]], "shown": [[0]]}, r"rankings\[0\] has fewer than 2 items \(1 shown\)"),
        ({"rankings": [[0, 1]], "shown": [[0, 1, 1]]}, r"shown\[0\] lists item 1 more than once"),
        ({"rankings": [[0, 1]], "shown": [None, None]}, r"shown must have one entry per ranking"),
        ({"rankings": [[0, 1]], "shown": [[0, 1, 9]]}, r"shown\[0\] contains item 9"),
        ({"rankings": [[0, 1]], "alpha": -1.0}, r"alpha must be a finite number >= 0"),
        ({"rankings": [[0, 1]], "n_items": 0}, r"n_items must be a positive integer"),
        ({"rankings": [[0, 1]], "max_iter": 0}, r"max_iter must be a positive integer"),
        ({"rankings": [[0, 1]], "tol": -1.0}, r"tol must be a positive number"),
    ],
)
def test_bad_input_raises_value_error_naming_the_problem(kwargs, message):
    kwargs = {"n_items": 4, **kwargs}
    rankings = kwargs.pop("rankings")
    n_items = kwargs.pop("n_items")
    with pytest.raises(ValueError, match=message):
        fit_plackett_luce(rankings, n_items, **kwargs)


def test_pl_objective_requires_tie_parameters_for_ties():
    with pytest.raises(ValueError, match=r"ties of order \[2\]"):
        pl_objective(np.zeros(3), [[[0, 1], 2]], 3)
    with pytest.raises(ValueError, match=r"tie_params\[2\] must be a positive number"):
        pl_objective(np.zeros(3), [[[0, 1], 2]], 3, tie_params={2: 0.0})
    with pytest.raises(ValueError, match=r"strengths must have shape \(3,\)"):
        pl_objective(np.zeros(4), [[0, 1]], 3)


def test_result_is_frozen():
    fit = fit_plackett_luce([[0, 1], [1, 0]], 2)
    assert isinstance(fit, PLFit)
    with pytest.raises(AttributeError):
        fit.strengths = None
    np.testing.assert_allclose(fit.strengths, 0.0, atol=1e-12)
    assert fit.log_likelihood == pytest.approx(2 * math.log(0.5), rel=1e-12)
    assert fit.n_choices == 2


# --- rank breaking ------------------------------------------------------------------------------------


def rows(winners, losers, tied, weights):
    return sorted(
        (tuple(sorted((int(w), int(l)))) if t else (int(w), int(l)), bool(t), round(float(x), 12))
        for w, l, t, x in zip(winners, losers, tied, weights)
    )


def test_full_breaking_rows_and_weights():
    out = rank_breaking([[3, [0, 5], 1]], weights=[2.0])
    third = round(2.0 / 3, 12)  # 3 chosen from 4 items: weight 2 / (4 − 1)
    half = round(2.0 / 2, 12)  # {0, 5} chosen from 3 items: weight 2 / (3 − 1)
    assert rows(*out) == sorted(
        [
            ((3, 0), False, third),
            ((3, 5), False, third),
            ((3, 1), False, third),
            ((0, 1), False, half),
            ((5, 1), False, half),
            ((0, 5), True, half),
        ]
    )
    assert out[0].dtype == np.int64 and out[2].dtype == bool and out[3].dtype == float


def test_full_breaking_of_top_m_and_adjacent_breaking():
    # Top-2 of {0, 1, 2, 3}: 2 beats 0, 1, 3 (weight 1/3); 0 beats 1, 3 (weight 1/2); 1 vs 3 unknown.
    out = rank_breaking([[2, 0]], shown=[[0, 1, 2, 3]])
    assert rows(*out) == sorted(
        [
            ((2, 0), False, 0.333333333333),
            ((2, 1), False, 0.333333333333),
            ((2, 3), False, 0.333333333333),
            ((0, 1), False, 0.5),
            ((0, 3), False, 0.5),
        ]
    )
    adj = rank_breaking([[2, 0]], shown=[[0, 1, 2, 3]], method="adjacent")
    assert rows(*adj) == sorted([((2, 0), False, 1.0), ((0, 1), False, 1.0), ((0, 3), False, 1.0)])
    adj = rank_breaking([[4, [0, 5], 1], [1, 2]], method="adjacent", weights=[1.0, 0.0])
    assert rows(*adj) == sorted(
        [
            ((4, 0), False, 1.0),
            ((4, 5), False, 1.0),
            ((0, 1), False, 1.0),
            ((5, 1), False, 1.0),
            ((0, 5), True, 1.0),
        ]
    )
    with pytest.raises(ValueError, match="method must be"):
        rank_breaking([[0, 1]], method="pairs")
    with pytest.raises(ValueError, match=r"rankings\[0\] lists item 1 more than once"):
        rank_breaking([[1, 0, 1]])
    with pytest.raises(ValueError, match=r"outside \[0, n_items=2\)"):
        rank_breaking([[1, 0, 2]], n_items=2)


def test_full_breaking_weights_sum_to_one_per_untied_choice():
    _, rankings, _ = simulate_pl(10, 50, seed=1, k_range=(3, 10))
    winners, _, tied, weights = rank_breaking(rankings)
    assert not tied.any()
    assert weights.sum() == pytest.approx(sum(len(r) - 1 for r in rankings), rel=1e-12)
    assert winners.size == sum(len(r) * (len(r) - 1) // 2 for r in rankings)


@pytest.mark.parametrize("top", [None, 3])
def test_bt_on_fully_broken_rankings_recovers_the_plackett_luce_strengths(top):
    n = 20
    theta, rankings, shown = simulate_pl(n, 20_000, seed=31, k_range=(4, 10), top=top)
    truth = theta - theta.mean()
    winners, losers, tied, weights = rank_breaking(rankings, shown=shown, n_items=n)
    bt_fit = fit_bt(winners, losers, n, tied=tied, weights=weights, compute_se=False)
    pl_fit = fit_plackett_luce(rankings, n, shown=shown, compute_se=False)
    assert kendall_tau_exact(bt_fit.strengths, truth).tau > 0.95
    # Consistent: the broken-pairs estimate is as close to the truth as the PL MLE, up to noise.
    assert np.max(np.abs(bt_fit.strengths - truth)) < 0.1
    assert np.max(np.abs(bt_fit.strengths - pl_fit.strengths)) < 0.1
    assert np.polyfit(truth, bt_fit.strengths, 1)[0] == pytest.approx(1.0, abs=0.03)
    # Adjacent breaking keeps the ordering but shrinks the scale (it is not consistent for PL).
    adj = fit_bt(*rank_breaking(rankings, shown=shown, method="adjacent")[:2], n, compute_se=False)
    assert kendall_tau_exact(adj.strengths, truth).tau > 0.9
    assert np.polyfit(truth, adj.strengths, 1)[0] < 0.92


def test_breaking_with_ties_feeds_bt_davidson():
    _, rankings = simulate_dl(10, 800, seed=2, deltas={2: 0.8}, k_range=(3, 5))
    winners, losers, tied, weights = rank_breaking(rankings)
    assert tied.any()
    fit = fit_bt(winners, losers, 10, tied=tied, weights=weights)
    pl = fit_plackett_luce(rankings, 10)
    assert np.corrcoef(fit.strengths, pl.strengths)[0, 1] > 0.95


# --- Kendall's τ ----------------------------------------------------------------------------------------


def test_mahonian_numbers():
    # Inversion counts of the 24 permutations of 4 items: 1, 3, 5, 6, 5, 3, 1 (OEIS A008302).
    cdf = [rk._mahonian_cdf(4, c) * 24 for c in range(7)]
    assert np.diff([0.0, *cdf]).round(9).tolist() == [1, 3, 5, 6, 5, 3, 1]
    for n in range(2, 8):
        inv = [
            sum(p[i] > p[j] for i in range(n) for j in range(i + 1, n))
            for p in itertools.permutations(range(n))
        ]
        for c in range(n * (n - 1) // 2 + 1):
            assert rk._mahonian_cdf(n, c) == pytest.approx(np.mean(np.array(inv) <= c), rel=1e-14)


@pytest.mark.parametrize("n", range(3, 13))
def test_exact_p_value_matches_scipy(n):
    rng = np.random.default_rng(n)
    for _ in range(150):
        x = rng.permutation(n)
        y = rng.permutation(n) if rng.random() < 0.7 else np.argsort(x + rng.normal(scale=2, size=n))
        res = kendall_tau_exact(x, y)
        ref = scipy.stats.kendalltau(x, y, method="exact")
        assert res.method == "exact"
        assert res.tau == pytest.approx(ref.statistic, abs=1e-14)
        assert res.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    # Extremes: perfect agreement and reversal.
    for y in (np.arange(n), np.arange(n)[::-1]):
        tau, p = kendall_tau_exact(np.arange(n), y)
        assert abs(tau) == 1.0
        assert p == pytest.approx(2 / math.factorial(n), rel=1e-12)


def test_exact_p_value_for_larger_n_matches_scipy_exact():
    rng = np.random.default_rng(40)
    x = rng.normal(size=45)
    y = x + rng.normal(scale=3.0, size=45)
    res = kendall_tau_exact(x, y)
    ref = scipy.stats.kendalltau(x, y, method="exact")
    assert res.method == "exact" and res.n == 45
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)


def test_ties_and_large_n_fall_back_to_asymptotic_tau_b():
    rng = np.random.default_rng(3)
    for n in (5, 12, 30, 200):
        x = rng.integers(0, 4, n)
        y = x + rng.integers(0, 3, n)
        res = kendall_tau_exact(x, y)
        ref = scipy.stats.kendalltau(x, y, method="asymptotic")
        assert res.method == "asymptotic"
        assert res.tau == pytest.approx(ref.statistic, rel=1e-12)
        assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    x = rng.normal(size=500)
    y = 0.1 * x + rng.normal(size=500)
    res = kendall_tau_exact(x, y)
    ref = scipy.stats.kendalltau(x, y, method="asymptotic")
    assert res.method == "asymptotic"
    assert res.tau == pytest.approx(ref.statistic, rel=1e-12)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)


def test_kendall_result_unpacks_and_bad_input():
    res = kendall_tau_exact([1, 2, 3, 4], [1, 3, 2, 4])
    assert isinstance(res, KendallTau)
    tau, p = res
    assert tau == pytest.approx(4 / 6) and p == res.p_value
    with pytest.raises(ValueError, match="same length"):
        kendall_tau_exact([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2"):
        kendall_tau_exact([1], [1])
    with pytest.raises(ValueError, match="x is constant"):
        kendall_tau_exact([1, 1, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="y contains NaN"):
        kendall_tau_exact([1, 2, 3], [1, np.nan, 3])
    with pytest.raises(ValueError, match="without ties"):
        kendall_tau_exact([1, 2, 2], [1, 2, 3], method="exact")


# --- top-k overlap --------------------------------------------------------------------------------------


def test_top_k_overlap():
    human = ["a", "b", "c", "d", "e"]
    metric = ["c", "a", "e", "b", "d"]
    assert top_k_overlap(human, metric, 1) == 0.0
    assert top_k_overlap(human, metric, 2) == 0.5
    assert top_k_overlap(human, metric, 3) == pytest.approx(2 / 3)
    assert top_k_overlap(human, metric, 5) == 1.0
    assert top_k_overlap([3, 1, 2], [1, 3, 9, 8], 2) == 1.0  # orders over different items
    with pytest.raises(ValueError, match="exceeds the length"):
        top_k_overlap(human, metric[:2], 3)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        top_k_overlap(human, metric, 0)
    with pytest.raises(ValueError, match="human_order lists an item more than once"):
        top_k_overlap(["a", "a", "b"], metric, 2)


# --- the boundary ----------------------------------------------------------------------------------------


def test_module_imports_without_django():
    code = "import sys, ranking.core.rankings; sys.exit('django' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
