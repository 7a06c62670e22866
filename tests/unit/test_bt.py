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
