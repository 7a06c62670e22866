"""Tests of the population Bradley–Terry engine (ranking/core/bt.py). No database, no Django."""

import subprocess
import sys
from pathlib import Path

import choix
import numpy as np
import pytest
import scipy.optimize

from ranking.core import bt
from ranking.core.bt import (
    ConvergenceError,
    DisconnectedComparisonsError,
    bt_objective,
    decay_weights,
    fit_bt,
)

REPO = Path(__file__).resolve().parents[2]


def simulate(n_items, n_comparisons, seed, tie_param=None, scale=1.0):
    """Random pairs, outcomes drawn from the (Davidson) model with θ ~ N(0, scale²)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(scale=scale, size=n_items)
    i = rng.integers(0, n_items, n_comparisons)
    j = (i + rng.integers(1, n_items, n_comparisons)) % n_items
    pi, pj = np.exp(theta[i]), np.exp(theta[j])
    nu = tie_param or 0.0
    denom = pi + pj + nu * np.sqrt(pi * pj)
    u = rng.random(n_comparisons)
    i_wins = u < pi / denom
    tied = u >= (pi + pj) / denom
    winners = np.where(i_wins, i, j)
    losers = np.where(i_wins, j, i)
    return theta, winners, losers, (tied if tie_param else None)


def davidson_nll_rows(theta, log_nu, winners, losers, tied, weights):
    """Row-by-row Davidson negative log-likelihood written straight from the model formula."""
    pw, pl = np.exp(theta[winners]), np.exp(theta[losers])
    nu = np.exp(log_nu)
    denom = pw + pl + nu * np.sqrt(pw * pl)
    logp = np.where(tied, np.log(nu * np.sqrt(pw * pl)), np.log(pw)) - np.log(denom)
    return -float(np.sum(weights * logp))


# --- reference implementation and published example -------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_choix_estimators(seed):
    n = 25
    _, winners, losers, _ = simulate(n, 800, seed)
    data = list(zip(winners.tolist(), losers.tolist()))
    fit = fit_bt(winners, losers, n)
    ref_ilsr = choix.ilsr_pairwise(n, data, alpha=0.0, tol=1e-12, max_iter=10_000)
    ref_opt = choix.opt_pairwise(n, data, alpha=0.0, tol=1e-12)
    for ref in (ref_ilsr, ref_opt):
        np.testing.assert_allclose(fit.strengths, ref - ref.mean(), atol=1e-6, rtol=0)
    assert abs(fit.strengths.mean()) < 1e-12
    assert fit.converged and fit.tie_param is None


def test_wikipedia_worked_example():
    """Worked example of the English Wikipedia article "Bradley–Terry model" (section "Worked example").

    Four teams A, B, C, D played 22 games; wins[i][j] = games team i won against team j:
    A beat B 2 times, lost to B 3 times, never played C, beat D once and lost to D 4 times;
    B beat C 5 times and lost to C 3 times; C beat D once and lost to D 3 times.
    The article iterates the MM update and reports, normalised to geometric mean 1,
    p = (0.640, 1.043, 0.660, 2.270). We check those printed figures (to the 3 decimals printed)
    and an independent run of the same MM iteration to 1e-8.
    """
    wins = np.array([[0, 2, 0, 1], [3, 0, 5, 0], [0, 3, 0, 1], [4, 0, 3, 0]], dtype=float)
    w, loser = np.nonzero(wins)
    fit = fit_bt(w, loser, 4, weights=wins[w, loser])
    p = np.exp(fit.strengths)  # strengths are mean zero: geometric mean of p is 1
    np.testing.assert_allclose(p, [0.640, 1.043, 0.660, 2.270], atol=5e-4)

    # The iteration the article describes: p_i <- W_i / Σ_j n_ij / (p_i + p_j), then renormalise.
    games = wins + wins.T
    total_wins = wins.sum(axis=1)
    mm = np.ones(4)
    for _ in range(2000):
        mm = total_wins / (games / (mm[:, None] + mm[None, :])).sum(axis=1)
        mm /= np.exp(np.log(mm).mean())
    np.testing.assert_allclose(p, mm, rtol=1e-8)


def test_recovers_known_strengths():
    theta, winners, losers, _ = simulate(30, 30_000, seed=7)
    fit = fit_bt(winners, losers, 30)
    truth = theta - theta.mean()
    # ~2,000 comparisons per item gives SE ≈ 0.05; allow 0.2 logits (and 4.5 SE) everywhere.
    assert np.max(np.abs(fit.strengths - truth)) < 0.2
    assert np.all(np.abs(fit.strengths - truth) < 4.5 * fit.se)
    assert np.corrcoef(fit.strengths, truth)[0, 1] > 0.99


def test_recovers_tie_parameter():
    theta, winners, losers, tied = simulate(20, 40_000, seed=3, tie_param=0.8)
    fit = fit_bt(winners, losers, 20, tied=tied)
    assert fit.tie_param == pytest.approx(0.8, abs=0.05)
    assert np.max(np.abs(fit.strengths - (theta - theta.mean()))) < 0.15


# --- invariances ----------------------------------------------------------------------------------


def test_invariant_to_relabelling_items():
    n = 40
    _, winners, losers, tied = simulate(n, 3000, seed=11, tie_param=0.5)
    perm = np.random.default_rng(5).permutation(n)
    fit = fit_bt(winners, losers, n, tied=tied)
    fit_perm = fit_bt(perm[winners], perm[losers], n, tied=tied)
    np.testing.assert_allclose(fit_perm.strengths[perm], fit.strengths, atol=1e-9)
    np.testing.assert_allclose(fit_perm.se[perm], fit.se, rtol=1e-7)
    assert fit_perm.tie_param == pytest.approx(fit.tie_param, rel=1e-9)


def test_integer_weights_equal_duplicated_rows():
    n = 15
    _, winners, losers, tied = simulate(n, 600, seed=4, tie_param=0.4)
    counts = np.random.default_rng(9).integers(0, 4, winners.size)  # includes weight 0 rows
    weighted = fit_bt(winners, losers, n, tied=tied, weights=counts.astype(float))
    repeated = fit_bt(np.repeat(winners, counts), np.repeat(losers, counts), n, tied=np.repeat(tied, counts))
    np.testing.assert_allclose(weighted.strengths, repeated.strengths, atol=1e-9)
    np.testing.assert_allclose(weighted.se, repeated.se, rtol=1e-7)
    assert weighted.log_likelihood == pytest.approx(repeated.log_likelihood, rel=1e-10)
    assert weighted.tie_param == pytest.approx(repeated.tie_param, rel=1e-9)


def test_ties_are_symmetric():
    n = 12
    _, winners, losers, tied = simulate(n, 500, seed=8, tie_param=1.0)
    swapped_w = np.where(tied, losers, winners)
    swapped_l = np.where(tied, winners, losers)
    a = fit_bt(winners, losers, n, tied=tied)
    b = fit_bt(swapped_w, swapped_l, n, tied=tied)
    np.testing.assert_allclose(a.strengths, b.strengths, atol=1e-12)
    assert a.tie_param == pytest.approx(b.tie_param, rel=1e-12)


def test_balanced_record_gives_equal_strengths():
    # Each pair: one win each way and one tie -> all strengths equal; ν = 1 (one tie per 3 games
    # at equal strength: P(tie) = ν / (2 + ν) = 1/3).
    pairs = [(0, 1), (1, 2), (0, 2)]
    w = [a for a, b in pairs] + [b for a, b in pairs] + [a for a, b in pairs]
    loser = [b for a, b in pairs] + [a for a, b in pairs] + [b for a, b in pairs]
    tied = [False] * 6 + [True] * 3
    fit = fit_bt(w, loser, 3, tied=tied)
    np.testing.assert_allclose(fit.strengths, 0.0, atol=1e-12)
    assert fit.tie_param == pytest.approx(1.0, rel=1e-10)


# --- Davidson likelihood and standard errors --------------------------------------------------------


def test_davidson_fit_equals_direct_minimisation():
    n = 8
    _, winners, losers, tied = simulate(n, 400, seed=2, tie_param=0.6)
    weights = np.random.default_rng(1).uniform(0.2, 2.0, winners.size)
    fit = fit_bt(winners, losers, n, tied=tied, weights=weights)

    def nll(x):  # free θ_0..θ_{n-2}; θ_{n-1} = −Σ others (mean zero); x[-1] = log ν
        theta = np.append(x[: n - 1], -x[: n - 1].sum())
        return davidson_nll_rows(theta, x[-1], winners, losers, tied, weights)

    res = scipy.optimize.minimize(nll, np.zeros(n), method="BFGS", options={"gtol": 1e-9})
    theta_ref = np.append(res.x[: n - 1], -res.x[: n - 1].sum())
    np.testing.assert_allclose(fit.strengths, theta_ref, atol=1e-5)
    assert fit.tie_param == pytest.approx(np.exp(res.x[-1]), rel=1e-5)
    assert -fit.log_likelihood == pytest.approx(res.fun, rel=1e-10)
    assert fit.objective == pytest.approx(-fit.log_likelihood)


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


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_standard_errors_match_finite_difference_information(alpha):
    n = 6
    _, winners, losers, tied = simulate(n, 300, seed=12, tie_param=0.7)
    weights = np.ones(winners.size)
    fit = fit_bt(winners, losers, n, tied=tied, alpha=alpha)

    def penalised(x):  # x = (θ_0..θ_{n-1}, log ν)
        return davidson_nll_rows(x[:n], x[n], winners, losers, tied, weights) + 0.5 * alpha * x[:n] @ x[:n]

    x_hat = np.append(fit.strengths, np.log(fit.tie_param))
    hess = numeric_hessian(penalised, x_hat)
    # Covariance of (θ, log ν): inverse of the information; θ then centred (mean-zero constraint).
    centre = np.eye(n + 1)
    centre[:n, :n] -= 1.0 / n
    hess = centre.T @ hess @ centre  # drop the (noisy) null direction (1, …, 1, 0)
    cov = np.linalg.pinv(hess, rcond=1e-6, hermitian=True)
    se_numeric = np.sqrt(np.diag(cov)[:n])
    np.testing.assert_allclose(fit.se, se_numeric, rtol=1e-4)
    np.testing.assert_allclose(fit.ci_low, fit.strengths - 1.959964 * fit.se, atol=1e-6)
    np.testing.assert_allclose(fit.ci_high, fit.strengths + 1.959964 * fit.se, atol=1e-6)


def test_standard_errors_without_ties_match_finite_difference():
    n = 7
    _, winners, losers, _ = simulate(n, 250, seed=21)
    fit = fit_bt(winners, losers, n)

    def nll(theta):
        return bt_objective(theta, winners, losers, n)

    centre = np.eye(n) - 1.0 / n  # mean-zero constraint; also removes the noisy null direction
    hess = centre @ numeric_hessian(nll, fit.strengths) @ centre
    se_numeric = np.sqrt(np.diag(np.linalg.pinv(hess, rcond=1e-6, hermitian=True)))
    np.testing.assert_allclose(fit.se, se_numeric, rtol=1e-4)
    assert np.all(fit.ci_low < fit.strengths) and np.all(fit.strengths < fit.ci_high)


def test_compute_se_false_skips_standard_errors():
    _, winners, losers, _ = simulate(10, 300, seed=1)
    fit = fit_bt(winners, losers, 10, compute_se=False)
    assert fit.se is None and fit.ci_low is None and fit.ci_high is None


def test_objective_function_agrees_with_fit():
    _, winners, losers, tied = simulate(10, 400, seed=6, tie_param=0.3)
    fit = fit_bt(winners, losers, 10, tied=tied, alpha=0.1)
    obj = bt_objective(fit.strengths, winners, losers, 10, tied=tied, alpha=0.1, tie_param=fit.tie_param)
    assert obj == pytest.approx(fit.objective, rel=1e-12)
    assert fit.objective == pytest.approx(-fit.log_likelihood + 0.05 * fit.strengths @ fit.strengths)


# --- standard errors at any size: the "bounded" method against the exact dense one --------------------


def graph_data(shape, n, seed, tie_param=None):
    """Comparisons on a graph of a given shape, strongly connected (every compared pair has a result
    each way), outcomes drawn from the model. Returns winners, losers, tied, weights, n_items."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n)
    if shape == "dense":  # ~150 distinct opponents per item, like the benchmark
        i = rng.integers(0, n, 75 * n)
        j = (i + rng.integers(1, n, i.size)) % n
    elif shape == "sparse":  # ~20 opponents per item
        i = rng.integers(0, n, 10 * n)
        j = (i + rng.integers(1, n, i.size)) % n
    elif shape == "popular":  # heavy-tailed popularity: a few items in many pairs, most in few
        p = rng.pareto(1.2, n) + 1.0
        i = rng.choice(n, 10 * n, p=p / p.sum())
        j = (i + 1 + rng.choice(n - 1, i.size)) % n
    elif shape == "chain":  # each item against its neighbours and, rarely, the item 3 further on
        theta = np.linspace(0.0, 3.0, n)
        i = np.r_[np.arange(n - 1), rng.integers(0, n - 3, n // 20)]
        j = np.r_[np.arange(1, n), i[n - 1 :] + 3]
    elif shape == "grid":
        k = int(np.sqrt(n))
        idx = np.arange(k * k).reshape(k, k)
        i = np.r_[idx[:, :-1].ravel(), idx[:-1, :].ravel()]
        j = np.r_[idx[:, 1:].ravel(), idx[1:, :].ravel()]
    elif shape == "dumbbell":  # two well-mixed halves joined by 10 pairs
        h = n // 2
        i = rng.integers(0, h, 20 * n)
        j = (i + rng.integers(1, h, i.size)) % h
        other = rng.random(i.size) < 0.5
        i[other] += h
        j[other] += h
        i = np.r_[i, rng.integers(0, h, 10)]
        j = np.r_[j, rng.integers(h, 2 * h, 10)]
    else:
        raise AssertionError(shape)
    n_items = int(max(i.max(), j.max())) + 1
    count = rng.integers(2, 6, i.size)
    wins_i = np.clip(rng.binomial(count, 1.0 / (1.0 + np.exp(theta[j] - theta[i]))), 1, count - 1)
    winners, losers = np.r_[i, j], np.r_[j, i]
    weights = np.r_[wins_i, count - wins_i].astype(float)
    tied = None
    if tie_param is not None:  # turn a share of each pair's results into ties
        tied = rng.random(winners.size) < tie_param / (2.0 + tie_param)
    return winners, losers, tied, weights, n_items


def assert_bounded_matches_dense(winners, losers, n, **kwargs):
    bounded = fit_bt(winners, losers, n, compute_se="bounded", **kwargs)
    dense = fit_bt(winners, losers, n, compute_se="dense", **kwargs)
    assert bounded.se_method == "bounded" and dense.se_method == "dense"
    assert dense.se_error_bound == 0.0
    rel = np.abs(bounded.se / dense.se - 1.0)
    assert rel.max() <= 0.01  # the target
    assert rel.max() <= bounded.se_error_bound * (1 + 1e-6) + 1e-9  # the certificate holds
    assert bounded.se_error_bound <= 5e-3  # the default se_rtol
    np.testing.assert_allclose(bounded.ci_low, bounded.strengths - Z95 * bounded.se, rtol=0, atol=1e-12)
    return bounded, rel


Z95 = 1.959963984540054


class PathSpy:
    """Counts calls of the bounded method's fall-backs (block CG; exact sparse solves)."""

    def __init__(self, monkeypatch):
        self.cg_items = 0
        self.exact_items = 0
        cg, exact = bt._block_cg_bounds, bt._exact_sparse_variances

        def spy_cg(op, bounds, items, *args):
            self.cg_items += items.size
            return cg(op, bounds, items, *args)

        def spy_exact(problem, der, items):
            self.exact_items += items.size
            return exact(problem, der, items)

        monkeypatch.setattr(bt, "_block_cg_bounds", spy_cg)
        monkeypatch.setattr(bt, "_exact_sparse_variances", spy_exact)


@pytest.mark.parametrize(
    "shape, n, alpha, tie_param",
    [
        ("dense", 2000, 0.0, None),
        ("dense", 2000, 0.0, 0.5),
        ("sparse", 2500, 0.0, None),
        ("sparse", 2500, 0.01, 0.3),
        ("popular", 2500, 0.0, None),
    ],
)
def test_bounded_se_within_1_percent_of_exact_on_well_connected_graphs(monkeypatch, shape, n, alpha, tie_param):
    spy = PathSpy(monkeypatch)
    winners, losers, tied, weights, n = graph_data(shape, n, seed=3, tie_param=tie_param)
    fit = assert_bounded_matches_dense(winners, losers, n, tied=tied, weights=weights, alpha=alpha)[0]
    assert fit.se_error_bound > 0  # certified by bounds, not solved exactly
    assert spy.exact_items == 0


@pytest.mark.parametrize("shape, n", [("chain", 2000), ("grid", 2025), ("dumbbell", 2000)])
def test_bounded_se_exact_where_the_spectral_gap_is_tiny(monkeypatch, shape, n):
    # Long chains, grids and two clusters joined by a few pairs: bounds from a few Krylov steps
    # cannot certify 0.5 %, so the items go to the exact sparse solve (or the dense inversion).
    spy = PathSpy(monkeypatch)
    winners, losers, _, weights, n = graph_data(shape, n, seed=4)
    rel = assert_bounded_matches_dense(winners, losers, n, weights=weights)[1]
    assert spy.exact_items > 0
    assert rel.max() < 1e-8


def test_bounded_se_block_cg_step_certifies(monkeypatch):
    # Without the two-step local bounds the sparse graph's items go to the block CG step.
    monkeypatch.setattr(bt, "_LOCAL_MAX_PATHS", 0)
    spy = PathSpy(monkeypatch)
    winners, losers, tied, weights, n = graph_data("sparse", 2500, seed=5, tie_param=0.4)
    assert_bounded_matches_dense(winners, losers, n, tied=tied, weights=weights, alpha=0.1)
    assert spy.cg_items > 0 and spy.exact_items == 0


@pytest.mark.parametrize("alpha, tie_param", [(0.0, None), (0.0, 0.5), (0.001, 0.5), (0.001, None)])
def test_exact_sparse_step_without_dense_fallback(monkeypatch, alpha, tie_param):
    # The sparse LU path itself (grounded Laplacian or L + alpha·I, Sherman–Morrison for ties).
    monkeypatch.setattr(bt, "_SE_DENSE_FALLBACK_MAX", 0)
    spy = PathSpy(monkeypatch)
    winners, losers, tied, weights, n = graph_data("chain", 600, seed=6, tie_param=tie_param)
    rel = assert_bounded_matches_dense(winners, losers, n, tied=tied, weights=weights, alpha=alpha)[1]
    assert spy.exact_items > 0
    assert rel.max() < 1e-8


def test_bounded_se_with_disconnected_groups_and_a_prior():
    # alpha > 0 fits groups that were never compared with each other; their relative strengths rest
    # on the prior alone (tiny eigenvalues of the information).
    # The last item is in no comparison at all.
    w1, l1, _, wt1, n1 = graph_data("sparse", 800, seed=7)
    w2, l2, _, wt2, n2 = graph_data("dense", 700, seed=8)
    winners, losers = np.r_[w1, w2 + n1], np.r_[l1, l2 + n1]
    fit = assert_bounded_matches_dense(winners, losers, n1 + n2 + 1, weights=np.r_[wt1, wt2], alpha=0.01)[0]
    assert fit.se[-1] == pytest.approx(np.sqrt((1 - 1 / (n1 + n2 + 1)) / 0.01), rel=1e-6)


def test_spectral_bounds_contain_the_spectrum():
    winners, losers, tied, weights, n = graph_data("sparse", 400, seed=9, tie_param=0.5)
    agg = bt._aggregate(winners, losers, n, tied, weights)
    problem = bt._Problem(agg, 0.05)
    *_, der, _ = bt._newton(problem, 100, 1e-10)
    op = bt._ScaledInformation(problem, der)
    dense_b = op.matvec(np.eye(n))
    np.testing.assert_allclose(dense_b, dense_b.T, atol=1e-12)
    eig = np.linalg.eigvalsh(dense_b)
    assert eig[0] > 0 and eig[-1] <= 2.0 + 1e-12
    u = np.sqrt(der["deg"]) / np.linalg.norm(np.sqrt(der["deg"]))
    np.testing.assert_allclose(op.matvec(u), u, atol=1e-10)  # the deflated null vector
    lanczos = bt._Lanczos(op.matvec, n, 120)
    for steps in (30, 60, 120):
        a, b = bt._spectral_bounds(lanczos, steps, 1e-9)
        assert a <= eig[0] and eig[-1] <= b
    assert a > 0.8 * eig[0]  # 120 steps: a sharp bound
    # Moments used by the one-step bounds agree with the dense matrix.
    moments, w = op.local_moments(2)
    off = (dense_b**2).sum(axis=0) - np.diag(dense_b) ** 2
    base, rnorm2 = op.local_bounds(np.arange(n), 1, moments, w)
    np.testing.assert_allclose(base, 1.0 / np.diag(dense_b), rtol=1e-12)
    np.testing.assert_allclose(rnorm2, off / np.diag(dense_b) ** 2, rtol=1e-9, atol=1e-12)
    inv_diag = np.diag(np.linalg.inv(dense_b))
    for order in (1, 2):
        base, rnorm2 = op.local_bounds(np.arange(n), order, moments, w)
        assert np.all(base + rnorm2 / eig[-1] <= inv_diag * (1 + 1e-12))
        assert np.all(inv_diag <= (base + rnorm2 / eig[0]) * (1 + 1e-12))


def test_kuczynski_wozniakowski_epsilon():
    # 1.648·√n·exp(−√ε(2k − 1)) = fail_prob, solved for ε.
    eps = bt._kw_relative_error(10_000, 30, 1e-9)
    assert 1.648 * 100 * np.exp(-np.sqrt(eps) * 59) == pytest.approx(1e-9, rel=1e-9)
    assert bt._kw_relative_error(10_000, 120, 1e-9) < eps


def test_auto_se_is_dense_for_few_items_and_bounded_for_many(monkeypatch):
    winners, losers, _, weights, n = graph_data("dense", 300, seed=10)
    assert fit_bt(winners, losers, n, weights=weights).se_method == "dense"
    monkeypatch.setattr(bt, "_SE_DENSE_MAX_ITEMS", 100)
    fit = fit_bt(winners, losers, n, weights=weights)
    assert fit.se_method == "bounded" and 0 < fit.se_error_bound <= 5e-3
    exact = fit_bt(winners, losers, n, weights=weights, compute_se="dense")
    np.testing.assert_allclose(fit.se, exact.se, rtol=fit.se_error_bound * (1 + 1e-6))


def test_se_rtol_is_honoured():
    winners, losers, _, weights, n = graph_data("sparse", 1500, seed=11)
    fit = fit_bt(winners, losers, n, weights=weights, compute_se="bounded", se_rtol=1e-3)
    exact = fit_bt(winners, losers, n, weights=weights, compute_se="dense")
    assert fit.se_error_bound <= 1e-3
    assert np.max(np.abs(fit.se / exact.se - 1)) <= fit.se_error_bound * (1 + 1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(compute_se="fast"), "compute_se"),
    (dict(compute_se=1), "compute_se"),
    (dict(se_rtol=0.05), "se_rtol"),
    (dict(se_rtol=0.0), "se_rtol"),
])
def test_invalid_se_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_bt([0, 1], [1, 0], 2, **kwargs)


def test_long_chain_fits_where_conjugate_gradients_stall(monkeypatch):
    # 10,000 items compared only with their neighbours: the Laplacian's spectral gap is ~1e-7 and
    # Jacobi-CG stalled, so Newton raised ConvergenceError. The Newton systems now fall back to a
    # sparse factorisation, which for a chain costs O(n).
    factored = []

    class Spy(bt._SparseFactor):
        def __init__(self, *args):
            factored.append(1)
            super().__init__(*args)

    monkeypatch.setattr(bt, "_SparseFactor", Spy)
    winners, losers, _, weights, n = graph_data("chain", 10_000, seed=12)
    fit = fit_bt(winners, losers, n, weights=weights, compute_se=False)
    assert factored
    agg = bt._aggregate(np.asarray(winners), np.asarray(losers), n, None, weights)
    _, der = bt._Problem(agg, 0.0).evaluate(fit.strengths, 0.0)
    assert np.max(np.abs(der["grad"])) < 1e-8  # stationary point of a convex objective: the MLE


# --- numerical edge cases ------------------------------------------------------------------------------


@pytest.mark.parametrize("wins, losses, as_weights", [(30_000, 1, False), (51_577, 1, True), (1, 40_000, True)])
def test_lopsided_two_items_give_the_closed_form_mle(wins, losses, as_weights):
    # Two items: θ_0 − θ_1 = log(wins / losses), var(θ_0 − θ_1) = N / (wins · losses) with
    # N = wins + losses, and each centred strength has half that difference's SE.
    if as_weights:
        fit = fit_bt([0, 1], [1, 0], 2, weights=[float(wins), float(losses)])
    else:
        fit = fit_bt([0] * wins + [1] * losses, [1] * wins + [0] * losses, 2)
    total = wins + losses
    assert fit.strengths[0] - fit.strengths[1] == pytest.approx(np.log(wins / losses), abs=1e-9)
    np.testing.assert_allclose(fit.se, 0.5 * np.sqrt(total / (wins * losses)), rtol=1e-9)
    ll = wins * np.log(wins / total) + losses * np.log(losses / total)
    assert fit.log_likelihood == pytest.approx(ll, rel=1e-10)


@pytest.mark.parametrize("kwargs, match", [
    (dict(winners=[], losers=[]), "no comparisons"),
    (dict(winners=[], losers=[], alpha=1.0), "no comparisons"),
    (dict(winners=[0, 1], losers=[1, 2], weights=[0.0, 0.0], alpha=1.0), "weights"),
    (dict(winners=[0, 1], losers=[1, 2], weights=[0.0, 0.0]), "weights"),
])
def test_nothing_to_fit_raises_a_value_error_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_bt(n_items=3, **kwargs)
    with pytest.raises(ValueError, match=match):
        bt_objective(np.zeros(3), n_items=3, **{k: v for k, v in kwargs.items()})


# --- the sparse (conjugate-gradient) path ----------------------------------------------------------


def test_sparse_path_equals_dense_path(monkeypatch):
    n = 1200
    _, winners, losers, tied = simulate(n, 40_000, seed=13, tie_param=0.3)
    sparse = fit_bt(winners, losers, n, tied=tied, compute_se=False)
    monkeypatch.setattr(bt, "_DENSE_MAX_ITEMS", 10_000)
    dense = fit_bt(winners, losers, n, tied=tied, compute_se=False)
    np.testing.assert_allclose(sparse.strengths, dense.strengths, atol=1e-8)
    assert sparse.tie_param == pytest.approx(dense.tie_param, rel=1e-8)


def test_sparse_path_matches_choix():
    n = 1500
    _, winners, losers, _ = simulate(n, 45_000, seed=17)
    fit = fit_bt(winners, losers, n, compute_se=False)
    ref = choix.ilsr_pairwise(n, list(zip(winners.tolist(), losers.tolist())), tol=1e-12, max_iter=1000)
    np.testing.assert_allclose(fit.strengths, ref - ref.mean(), atol=1e-6)


# --- identifiability -------------------------------------------------------------------------------


def two_groups():
    # {0,1,2} and {3,4,5} are each strongly connected (cycles); group A always beats group B.
    w = [0, 1, 2, 3, 4, 5, 0, 1]
    loser = [1, 2, 0, 4, 5, 3, 3, 4]
    return np.array(w), np.array(loser)


def test_disconnected_comparisons_raise_naming_groups():
    w, loser = two_groups()
    with pytest.raises(DisconnectedComparisonsError) as info:
        fit_bt(w, loser, 6)
    message = str(info.value)
    assert "[0, 1, 2]" in message and "[3, 4, 5]" in message
    assert "never lost to the rest" in message and "never beat the rest" in message
    assert sorted(sorted(g.tolist()) for g in info.value.groups) == [[0, 1, 2], [3, 4, 5]]
    assert isinstance(info.value, ValueError)


def test_item_without_comparisons_raises_naming_it():
    w, loser = np.array([0, 1]), np.array([1, 0])
    with pytest.raises(DisconnectedComparisonsError, match=r"no comparison: \[2\]") as info:
        fit_bt(w, loser, 3)
    assert info.value.unobserved.tolist() == [2]


def test_ties_connect_both_ways():
    # 0 beat 1, 1 beat 2, 2 tied 0: strongly connected only through the tie.
    fit = fit_bt([0, 1, 2], [1, 2, 0], 3, tied=[False, False, True])
    assert fit.strengths[0] > fit.strengths[1] > fit.strengths[2]
    assert np.all(np.isfinite(fit.se))
    with pytest.raises(DisconnectedComparisonsError):
        fit_bt([0, 1], [1, 2], 3)


def test_quasi_separated_ties_raise_instead_of_diverging():
    # Two items: 0 won twice and tied once. Connected both ways through the tie, but the Davidson
    # likelihood increases without bound as θ_0 − θ_1 and ν grow together: no finite MLE.
    with pytest.raises(ConvergenceError, match="diverge"):
        fit_bt([0, 0, 0], [1, 1, 1], 2, tied=[False, True, False])
    fit = fit_bt([0, 0, 0], [1, 1, 1], 2, tied=[False, True, False], alpha=1.0)
    assert np.all(np.isfinite(fit.strengths)) and np.isfinite(fit.tie_param)


@pytest.mark.parametrize("alpha", [0.1, 1.0])
def test_prior_fits_disconnected_data(alpha):
    w, loser = two_groups()
    fit = fit_bt(w, loser, 7, alpha=alpha)  # item 6 never compared
    assert np.all(np.isfinite(fit.strengths)) and np.all(np.isfinite(fit.se))
    assert fit.strengths[:3].mean() > fit.strengths[3:6].mean()
    assert abs(fit.strengths.mean()) < 1e-12
    # Penalised-likelihood stationarity: ∇NLL + alpha·θ = 0 (central differences).
    h = 1e-6
    grad = [
        (bt_objective(fit.strengths + h * e, w, loser, 7, alpha=alpha)
         - bt_objective(fit.strengths - h * e, w, loser, 7, alpha=alpha)) / (2 * h)
        for e in np.eye(7)
    ]
    np.testing.assert_allclose(grad, 0.0, atol=1e-6)


# --- validation, convergence, decay -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(winners=[0, 5], losers=[1, 0]), "winners"),
        (dict(winners=[0, 1], losers=[1, -1]), "losers"),
        (dict(winners=[0, 1, 2], losers=[1, 0]), "same length"),
        (dict(winners=[0, 1], losers=[0, 0]), "differ"),
        (dict(winners=[0.5, 1], losers=[1, 0]), "winners"),
        (dict(winners=[0, 1], losers=[1, 0], weights=[1.0, -1.0]), "weights"),
        (dict(winners=[0, 1], losers=[1, 0], weights=[1.0, np.nan]), "weights"),
        (dict(winners=[0, 1], losers=[1, 0], weights=[1.0]), "weights"),
        (dict(winners=[0, 1], losers=[1, 0], tied=[True]), "tied"),
        (dict(winners=[0, 1], losers=[1, 0], tied=[0.5, 0.2]), "tied"),
        (dict(winners=[0, 1], losers=[1, 0], alpha=-1.0), "alpha"),
        (dict(winners=[0, 1], losers=[1, 0], alpha=np.nan), "alpha"),
        (dict(winners=[0, 1], losers=[1, 0], n_items=0), "n_items"),
        (dict(winners=[0, 1], losers=[1, 0], tol=0.0), "tol"),
        (dict(winners=[0, 1], losers=[1, 0], max_iter=0), "max_iter"),
    ],
)
def test_invalid_input_names_the_argument(kwargs, match):
    kwargs.setdefault("n_items", 3)
    with pytest.raises(ValueError, match=match):
        fit_bt(**kwargs)


def test_non_convergence_raises():
    _, winners, losers, _ = simulate(20, 2000, seed=5, scale=2.0)
    with pytest.raises(ConvergenceError):
        fit_bt(winners, losers, 20, max_iter=1)


def test_decay_weights_values():
    np.testing.assert_allclose(decay_weights([0.0, 7.0, 14.0, 3.5], half_life=7.0), [1.0, 0.5, 0.25, 2**-0.5])
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="half_life"):
            decay_weights([1.0], bad)
    with pytest.raises(ValueError, match="ages"):
        decay_weights([-1.0], 1.0)
    with pytest.raises(ValueError, match="ages"):
        decay_weights([np.nan], 1.0)


def test_decay_weighted_fit_equals_weighted_fit():
    _, winners, losers, _ = simulate(10, 500, seed=10)
    ages = np.random.default_rng(0).uniform(0, 30, winners.size)
    weights = decay_weights(ages, half_life=10.0)
    a = fit_bt(winners, losers, 10, weights=weights)
    b = fit_bt(winners, losers, 10, weights=2.0 * weights)  # scaling weights keeps θ, halves variance
    np.testing.assert_allclose(a.strengths, b.strengths, atol=1e-9)
    np.testing.assert_allclose(a.se, b.se * np.sqrt(2.0), rtol=1e-7)


def test_core_module_does_not_import_django():
    code = "import sys; import ranking.core.bt; print('django' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
