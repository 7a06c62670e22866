"""Tests of the model leaderboard (ranking/core/model_bt.py). No database, no Django."""

import dataclasses

import choix
import numpy as np
import pytest

from ranking.core import model_bt
from ranking.core.bt import fit_bt
from ranking.core.model_bt import (
    ConvergenceError,
    DisconnectedComparisonsError,
    fit_model_bt,
    win_rate_matrix,
)


def simulate(theta, n_prompts, per_prompt, seed, *, tie_param=0.0, sigma=0.0, copies=1, beta=None, x=None):
    """Comparisons of images of random model pairs, ``per_prompt`` per prompt (cluster).

    Outcomes follow the Davidson model on ``θ_a + u_{g,a} − θ_b − u_{g,b} + β·(x_a − x_b)``:
    ``sigma`` is the SD of the prompt × model random effects ``u`` (over-dispersion, which also
    attenuates the population-level strengths). ``copies > 1`` repeats every comparison of a prompt
    ``copies`` times with the same outcome (raters who agree completely): each row is still exactly
    Davidson with strengths θ, but rows of a prompt are dependent, so the variance of the estimates
    is ``copies`` times the model-based one. ``x``: callable(rng, models) -> (m, p) covariates.
    Returns (model_a, model_b, outcome, groups, x_a, x_b).
    """
    rng = np.random.default_rng(seed)
    theta = np.asarray(theta, dtype=float)
    n = theta.size
    distinct = per_prompt // copies
    m = n_prompts * distinct
    g = np.repeat(np.arange(n_prompts), distinct)
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    u = rng.normal(scale=sigma, size=(n_prompts, n))
    d = theta[a] + u[g, a] - theta[b] - u[g, b]
    xa = xb = None
    if x is not None:
        xa, xb = x(rng, a), x(rng, b)
        d += (xa - xb) @ np.asarray(beta, dtype=float)
    denom = np.exp(d / 2) + np.exp(-d / 2) + tie_param
    p_a, p_tie = np.exp(d / 2) / denom, tie_param / denom
    unif = rng.random(m)
    y = np.where(unif < p_a, 1.0, np.where(unif < p_a + p_tie, 0.5, 0.0))
    rep = (lambda v: None if v is None else np.repeat(v, copies, axis=0)) if copies > 1 else (lambda v: v)
    return rep(a), rep(b), rep(y), rep(g), rep(xa), rep(xb)


def winners_losers(a, b, y):
    return np.where(y == 0.0, b, a), np.where(y == 0.0, a, b), y == 0.5


# --- agreement with fit_bt and choix --------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_fit_bt_and_choix_without_ties(seed):
    n = 8
    theta = np.random.default_rng(seed).normal(size=n)
    a, b, y, _, _, _ = simulate(theta, 100, 6, seed)
    fit = fit_model_bt(a, b, y, n, n_bootstrap=0)
    w, l, _ = winners_losers(a, b, y)
    ref = fit_bt(w, l, n)
    np.testing.assert_allclose(fit.strengths, ref.strengths, atol=1e-9, rtol=0)
    np.testing.assert_allclose(fit.se, ref.se, rtol=1e-9)
    data = list(zip(w.tolist(), l.tolist()))
    for est in (choix.opt_pairwise(n, data, alpha=0.0, tol=1e-12), choix.ilsr_pairwise(n, data, tol=1e-12)):
        np.testing.assert_allclose(fit.strengths, est - est.mean(), atol=1e-6, rtol=0)
    assert fit.tie_param is None and fit.coef is None and fit.coef_se is None
    assert abs(fit.strengths.mean()) < 1e-12
    assert fit.n_comparisons == a.size and fit.n_groups == a.size


@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_matches_fit_bt_with_ties_weights_and_alpha(alpha):
    n = 6
    a, b, y, g, _, _ = simulate(np.linspace(-1, 1, n), 150, 6, 3, tie_param=0.6)
    weights = np.random.default_rng(4).uniform(0, 2, a.size)
    weights[:20] = 0.0
    fit = fit_model_bt(a, b, y, n, weights=weights, alpha=alpha, groups=g, n_bootstrap=0)
    w, l, tied = winners_losers(a, b, y)
    ref = fit_bt(w, l, n, tied=tied, weights=weights, alpha=alpha)
    np.testing.assert_allclose(fit.strengths, ref.strengths, atol=1e-9, rtol=0)
    np.testing.assert_allclose(fit.se, ref.se, rtol=1e-8)
    assert fit.tie_param == pytest.approx(ref.tie_param, rel=1e-8)
    assert fit.log_likelihood == pytest.approx(ref.log_likelihood, rel=1e-10)
    assert fit.n_comparisons == a.size - 20


def test_newton_from_a_cold_start_reaches_fit_bt():
    """fit_model_bt starts at fit_bt's estimate; from θ = 0, ν = 1 its own Newton gets there too."""
    n = 5
    a, b, y, _, _, _ = simulate(np.array([1.5, 0.5, 0.0, -0.5, -1.5]), 100, 4, 5, tie_param=0.4)
    w, l, tied = winners_losers(a, b, y)
    ref = fit_bt(w, l, n, tied=tied)
    tie = (y == 0.5).astype(float)
    rows = model_bt._Rows(
        n=n, a=a, b=b, v=y - 0.5, tie=tie, w=np.ones(a.size), dx=np.zeros((a.size, 0)), has_ties=True
    )
    objective = model_bt._Objective(rows, 0.0, model_bt._centring_basis(n))
    z, _, n_iter = model_bt._fit(objective, np.zeros(n + 1), 100, 1e-10)
    assert n_iter > 3
    np.testing.assert_allclose(z[:n], ref.strengths, atol=1e-9, rtol=0)
    assert np.exp(z[-1]) == pytest.approx(ref.tie_param, rel=1e-8)


# --- sandwich standard errors -----------------------------------------------------------------


def test_sandwich_equals_model_based_on_well_specified_data():
    theta = np.linspace(-1, 1, 6)
    ratios, ratios_rows = [], []
    for seed in range(4):
        a, b, y, g, _, _ = simulate(theta, 400, 10, seed, tie_param=0.3)
        fit = fit_model_bt(a, b, y, 6, groups=g, n_bootstrap=0)
        ratios.append(fit.se_sandwich / fit.se)
        per_row = fit_model_bt(a, b, y, 6, n_bootstrap=0)
        ratios_rows.append(per_row.se_sandwich / per_row.se)
        np.testing.assert_allclose(per_row.se, fit.se)
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.04)
    assert np.mean(ratios_rows) == pytest.approx(1.0, abs=0.03)
    assert np.min(ratios) > 0.85 and np.max(ratios) < 1.15


def test_sandwich_grows_with_within_prompt_dependence():
    theta = np.linspace(-1, 1, 6)
    # Prompt × model random effects: clustered SEs larger than model-based ones.
    a, b, y, g, _, _ = simulate(theta, 400, 10, 7, tie_param=0.3, sigma=1.0)
    fit = fit_model_bt(a, b, y, 6, groups=g, n_bootstrap=0)
    assert np.mean(fit.se_sandwich / fit.se) > 1.1
    # Every comparison repeated 3 times within its prompt: the true SE is √3 × the model-based one.
    a, b, y, g, _, _ = simulate(theta, 400, 12, 8, tie_param=0.3, copies=3)
    fit = fit_model_bt(a, b, y, 6, groups=g, n_bootstrap=0)
    assert np.mean(fit.se_sandwich / fit.se) == pytest.approx(np.sqrt(3), rel=0.1)
    unclustered = fit_model_bt(a, b, y, 6, n_bootstrap=0)
    assert np.mean(unclustered.se_sandwich / unclustered.se) == pytest.approx(1.0, abs=0.1)
    np.testing.assert_allclose(fit.ci_high - fit.ci_low, 2 * 1.959964 * fit.se_sandwich, rtol=1e-6)
    np.testing.assert_allclose(np.diag(fit.covariance), fit.se_sandwich**2)


# --- bootstrap and rank intervals (small Monte Carlo) -------------------------------------------


def test_cluster_bootstrap_covers_at_about_the_nominal_rate():
    theta = np.array([0.6, 0.1, -0.2, -0.5])
    theta -= theta.mean()
    hits_boot = hits_wald = hits_model = total = 0
    for rep in range(30):
        a, b, y, g, _, _ = simulate(theta, 50, 9, 100 + rep, tie_param=0.3, copies=3)
        fit = fit_model_bt(a, b, y, 4, groups=g, n_bootstrap=60, random_state=rep)
        hits_boot += np.sum((fit.boot_ci_low <= theta) & (theta <= fit.boot_ci_high))
        hits_wald += np.sum((fit.ci_low <= theta) & (theta <= fit.ci_high))
        hits_model += np.sum(np.abs(fit.strengths - theta) <= 1.959964 * fit.se)
        total += theta.size
        assert fit.boot_strengths.shape == (60 - fit.n_bootstrap_failed, 4)
    assert hits_boot / total >= 0.87
    assert hits_wald / total >= 0.87
    assert hits_model / total < 0.85  # the model-based intervals ignore the clustering


def test_bootstrap_is_reproducible_and_counts_failed_resamples():
    # Model 3 is compared in one prompt only: resamples without that prompt have no estimate.
    a, b, y, g, _, _ = simulate(np.array([0.5, 0.0, -0.5]), 40, 6, 11)
    a = np.r_[a, 3, 0, 3, 1]
    b = np.r_[b, 0, 3, 1, 3]
    y = np.r_[y, 1.0, 1.0, 0.0, 0.0]
    g = np.r_[g, 99, 99, 99, 99]
    first = fit_model_bt(a, b, y, 4, groups=g, n_bootstrap=50, random_state=3)
    again = fit_model_bt(a, b, y, 4, groups=g, n_bootstrap=50, random_state=3)
    assert 0 < first.n_bootstrap_failed < 50
    np.testing.assert_array_equal(first.boot_ci_low, again.boot_ci_low)
    assert first.boot_strengths.shape == (50 - first.n_bootstrap_failed, 4)
    none = fit_model_bt(a, b, y, 4, groups=g, n_bootstrap=0)
    assert none.boot_ci_low is None and none.boot_ci_high is None and none.boot_strengths is None


def _rank_coverage(theta, n_reps, seed, **kwargs):
    true_rank = 1 + np.sum(theta[None, :] > theta[:, None], axis=1)
    clustered = kwargs.pop("clustered", True)
    hits = 0
    for rep in range(n_reps):
        a, b, y, g, _, _ = simulate(theta, 100, 9, seed + rep, tie_param=0.3, copies=3)
        groups = g if clustered else None
        fit = fit_model_bt(a, b, y, theta.size, groups=groups, n_bootstrap=0, **kwargs)
        assert np.all((fit.rank_low <= fit.rank) & (fit.rank <= fit.rank_high))
        hits += np.all((fit.rank_low <= true_rank) & (true_rank <= fit.rank_high))
    return hits / n_reps


def test_rank_intervals_cover_all_true_ranks_at_once():
    # Least favourable case: all models equal, every true rank is 1, and an interval misses as soon
    # as any pair is called significant (the family-wise error).
    equal = np.zeros(6)
    assert _rank_coverage(equal, 250, 1000) >= 0.93
    # Comparisons repeated within prompts but treated as independent: the same intervals fail.
    assert _rank_coverage(equal, 100, 2000, clustered=False) < 0.8
    spread = np.array([1.0, 0.6, 0.5, 0.0, -0.9, -1.2])
    assert _rank_coverage(spread - spread.mean(), 80, 3000) >= 0.95


def test_rank_intervals_are_informative_with_enough_data():
    theta = np.array([2.0, 1.0, 0.0, -1.0, -2.0])
    a, b, y, g, _, _ = simulate(theta, 400, 10, 21)
    fit = fit_model_bt(a, b, y, 5, groups=g, n_bootstrap=0)
    np.testing.assert_array_equal(fit.rank, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(fit.rank_low, fit.rank)
    np.testing.assert_array_equal(fit.rank_high, fit.rank)


def test_bootstrap_max_t_rank_intervals():
    theta = np.array([0.8, 0.3, 0.25, -0.4, -0.95])
    a, b, y, g, _, _ = simulate(theta, 120, 9, 31, tie_param=0.3, copies=3)
    bonf = fit_model_bt(a, b, y, 5, groups=g, n_bootstrap=0)
    maxt = fit_model_bt(a, b, y, 5, groups=g, n_bootstrap=150, rank_method="bootstrap_max_t", random_state=0)
    assert bonf.rank_method == "bonferroni" and maxt.rank_method == "bootstrap_max_t"
    assert bonf.rank_critical_value == pytest.approx(2.807034, rel=1e-5)  # z at 1 − 0.05/20
    # Between the marginal z and a generous multiple of the Bonferroni value.
    assert 1.96 < maxt.rank_critical_value < 1.25 * bonf.rank_critical_value
    assert np.all(maxt.rank_low <= maxt.rank) and np.all(maxt.rank <= maxt.rank_high)
    np.testing.assert_array_equal(maxt.rank, bonf.rank)


# --- covariates (style control) -------------------------------------------------------------


def test_covariates_recover_planted_coefficients():
    theta = np.array([0.5, 0.0, -0.5, 0.2])
    theta -= theta.mean()
    beta = np.array([0.8, -0.5])
    a, b, y, g, xa, xb = simulate(
        theta, 500, 10, 41, tie_param=0.4, beta=beta, x=lambda rng, models: rng.normal(size=(models.size, 2))
    )
    fit = fit_model_bt(a, b, y, 4, groups=g, covariates_a=xa, covariates_b=xb, n_bootstrap=0)
    assert np.all(np.abs(fit.coef - beta) < 4 * fit.coef_se)
    np.testing.assert_allclose(fit.coef, beta, atol=0.1)
    np.testing.assert_allclose(fit.coef_se / fit.coef_se_model, 1.0, atol=0.15)
    assert np.all(np.abs(fit.strengths - theta) < 4 * fit.se_sandwich)
    assert fit.tie_param == pytest.approx(0.4, rel=0.2)


def test_style_control_removes_a_resolution_advantage():
    # Model 0's images are systematically larger (log resolution +1), raters prefer larger images
    # (β = 1), all models are equally good.
    theta = np.zeros(4)

    def log_resolution(rng, models):
        return (np.where(models == 0, 1.0, 0.0) + rng.normal(scale=0.7, size=models.size))[:, None]

    a, b, y, g, xa, xb = simulate(theta, 400, 10, 51, beta=[1.0], x=log_resolution)
    plain = fit_model_bt(a, b, y, 4, groups=g, n_bootstrap=0)
    style = fit_model_bt(a, b, y, 4, groups=g, covariates_a=xa, covariates_b=xb, n_bootstrap=0)
    assert plain.strengths[0] > 0.5  # the resolution advantage shows up as model strength
    assert abs(style.strengths[0]) < 3 * style.se_sandwich[0]
    assert np.max(np.abs(style.strengths - theta)) < 0.5 * np.max(np.abs(plain.strengths - theta))
    assert style.coef[0] == pytest.approx(1.0, abs=0.2)
    assert plain.rank_high[0] == 1  # without style control model 0 is "certainly" the best
    assert style.rank_high[0] > 1


def test_covariates_as_one_dimensional_array():
    a, b, y, _, xa, xb = simulate(
        np.array([0.3, 0.0, -0.3]), 100, 6, 61, beta=[0.5], x=lambda rng, k: rng.normal(size=(k.size, 1))
    )
    two_d = fit_model_bt(a, b, y, 3, covariates_a=xa, covariates_b=xb, n_bootstrap=0)
    one_d = fit_model_bt(a, b, y, 3, covariates_a=xa[:, 0], covariates_b=xb[:, 0], n_bootstrap=0)
    np.testing.assert_allclose(one_d.strengths, two_d.strengths)
    assert one_d.coef.shape == (1,)


# --- win-rate matrix --------------------------------------------------------------------------


def test_win_rate_matrix_by_hand():
    # 0 vs 1: 0 won, tie, 1 won -> (1 + ½ + 0) / 3; 2 vs 0: 2 won once; 1 and 2 never met.
    a = np.array([0, 1, 0, 2])
    b = np.array([1, 0, 1, 0])
    y = np.array([1.0, 0.5, 0.0, 1.0])
    fit = fit_model_bt(*_connected_tiny(), 3, n_bootstrap=0)
    fit = dataclasses.replace(fit, strengths=np.log([2.0, 1.0, 0.5]), tie_param=1.0)
    wr = win_rate_matrix(a, b, y, 3, fit)
    np.testing.assert_array_equal(wr.counts, [[0, 3, 1], [3, 0, 0], [1, 0, 0]])
    expected = np.array([[np.nan, 0.5, 0.0], [0.5, np.nan, np.nan], [1.0, np.nan, np.nan]])
    np.testing.assert_allclose(wr.observed, expected)
    # π = (2, 1, ½), ν = 1: P(0 ≻ 1) + ½ P(tie) = (2 + ½√2) / (2 + 1 + √2).
    s2 = np.sqrt(2.0)
    assert wr.predicted[0, 1] == pytest.approx((2 + s2 / 2) / (3 + s2))
    assert wr.predicted[0, 2] == pytest.approx((2 + 0.5) / (2 + 0.5 + 1))
    np.testing.assert_allclose(wr.predicted + wr.predicted.T, np.where(np.eye(3), np.nan, 1.0))
    assert np.isnan(np.diag(wr.predicted)).all()
    plain = dataclasses.replace(fit, tie_param=None)
    assert win_rate_matrix(a, b, y, 3, plain).predicted[0, 1] == pytest.approx(2 / 3)


def test_win_rate_matrix_agrees_with_a_well_fitted_model():
    theta = np.array([0.7, 0.0, -0.7])
    a, b, y, _, _, _ = simulate(theta, 1000, 10, 71, tie_param=0.5)
    fit = fit_model_bt(a, b, y, 3, n_bootstrap=0)
    wr = win_rate_matrix(a, b, y, 3, fit)
    off = ~np.eye(3, dtype=bool)
    np.testing.assert_allclose(wr.observed[off], wr.predicted[off], atol=0.02)
    assert wr.counts.sum() == 2 * a.size


def _connected_tiny():
    a = np.array([0, 1, 1, 2, 2, 0, 0, 1])
    b = np.array([1, 0, 2, 1, 0, 2, 1, 2])
    y = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0])
    return a, b, y


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_models": 1}, "n_models must be an integer >= 2"),
        ({"n_models": True}, "n_models must be an integer >= 2"),
        ({"model_a": [[0, 1]]}, "model_a must be a 1-D array"),
        ({"model_a": [0.5, 1, 1, 2, 2, 0, 0, 1]}, "model_a must hold integer model indices"),
        ({"model_b": [1, 0, 2, 1, 0, 2, 1, 7]}, r"model_b must be in \[0, n_models=3\)"),
        ({"model_b": [1, 0, 2]}, "model_a and model_b must have the same length"),
        ({"model_b": [0, 1, 1, 1, 0, 2, 1, 2]}, r"3 row\(s\) compare a model with itself"),
        ({"outcome": [1.0] * 7}, r"outcome must have shape \(8,\)"),
        ({"outcome": [1, 1, 1, 1, 1, 1, 0.3, 0]}, r"outcome must be 1 \(a won\), 0 \(b won\) or 0.5.*row 6"),
        ({"outcome": ["x"] * 8}, "outcome must be numeric"),
        ({"model_a": [], "model_b": [], "outcome": []}, "hold no comparisons"),
        ({"alpha": -1.0}, "alpha must be a finite number >= 0"),
        ({"n_bootstrap": -1}, "n_bootstrap must be an integer >= 0"),
        ({"n_bootstrap": 1.5}, "n_bootstrap must be an integer >= 0"),
        ({"confidence": 1.0}, r"confidence must be in \(0, 1\)"),
        ({"rank_method": "tukey"}, "rank_method must be one of"),
        ({"rank_method": "bootstrap_max_t", "n_bootstrap": 50}, "needs n_bootstrap >= 100"),
        ({"max_iter": 0}, "max_iter must be a positive integer"),
        ({"tol": 0.0}, "tol must be a positive number"),
        ({"covariates_a": np.zeros((8, 1))}, "covariates_a and covariates_b must be given together"),
        (
            {"covariates_a": np.zeros((7, 1)), "covariates_b": np.zeros((8, 1))},
            r"covariates_a must have shape \(8, p\)",
        ),
        (
            {"covariates_a": np.full((8, 1), np.nan), "covariates_b": np.zeros((8, 1))},
            "covariates_a must be finite",
        ),
        ({"covariates_a": np.zeros((8, 1)), "covariates_b": np.zeros((8, 2))}, "must have the same shape"),
        ({"weights": [1.0] * 7}, r"weights must have shape \(8,\)"),
        ({"weights": [np.nan] + [1.0] * 7}, "weights must be finite"),
        ({"weights": [-1.0] + [1.0] * 7}, "weights must be non-negative"),
        ({"weights": [0.0] * 8}, "weights are all zero"),
        ({"groups": [0] * 7}, r"groups must have shape \(8,\)"),
        ({"groups": [0] * 8}, "one cluster: clustered SEs need at least 2"),
        ({"groups": np.array([1, None] * 4, dtype=object)}, "groups must hold sortable labels"),
        ({"n_models": 5}, r"2 of n_models=5 models appear in no comparison.*\[3, 4\].*re-index"),
        ({"weights": [1, 1, 0, 0, 0, 0, 1, 0]}, r"models appear in no comparison.*\[2\]"),
        ({"outcome": [0.5] * 8}, "every comparison is a tie"),
    ],
)
def test_invalid_input_raises_value_error_naming_the_argument(kwargs, match):
    a, b, y = _connected_tiny()
    args = {"model_a": a, "model_b": b, "outcome": y, "n_models": 3, "n_bootstrap": 0} | kwargs
    with pytest.raises(ValueError, match=match):
        fit_model_bt(
            args.pop("model_a"), args.pop("model_b"), args.pop("outcome"), args.pop("n_models"), **args
        )


def test_absent_model_raises_even_with_alpha():
    """Per-category subsets must be re-indexed: a model without data is an error whatever alpha."""
    a, b, y = _connected_tiny()
    with pytest.raises(ValueError, match=r"appear in no comparison.*\[3\]"):
        fit_model_bt(a, b, y, 4, alpha=1.0, n_bootstrap=0)


def test_disconnected_comparisons_need_alpha():
    a = np.array([0, 1, 0, 2, 2, 3])
    b = np.array([1, 0, 2, 0, 3, 2])
    y = np.array([1.0, 1.0, 1.0, 0.0, 1.0, 1.0])  # {0, 1} beat {2, 3} in every cross comparison
    with pytest.raises(DisconnectedComparisonsError, match="not strongly connected") as info:
        fit_model_bt(a, b, y, 4, n_bootstrap=0)
    assert isinstance(info.value, ValueError)
    fit = fit_model_bt(a, b, y, 4, alpha=1.0, n_bootstrap=20, random_state=0)
    assert fit.strengths[0] > fit.strengths[2] and fit.n_bootstrap_failed == 0


def test_collinear_covariates_raise():
    a, b, y = _connected_tiny()
    resolution = np.array([1.0, 2.0, 3.0])  # constant within each model: same as the model indicators
    with pytest.raises(ValueError, match="covariates_a/covariates_b are collinear"):
        fit_model_bt(a, b, y, 3, covariates_a=resolution[a], covariates_b=resolution[b], n_bootstrap=0)


def test_diverging_estimate_raises_convergence_error():
    # Two models, one won twice and tied once: connected both ways through the tie, no finite MLE.
    with pytest.raises(ConvergenceError, match="diverge"):
        fit_model_bt([0, 0, 1], [1, 1, 0], [1.0, 1.0, 0.5], 2, n_bootstrap=0)


def test_win_rate_matrix_rejects_a_fit_of_another_size():
    a, b, y = _connected_tiny()
    fit = fit_model_bt(a, b, y, 3, n_bootstrap=0)
    with pytest.raises(ValueError, match=r"fit.strengths must have shape \(4,\)"):
        win_rate_matrix(np.r_[a, 3], np.r_[b, 0], np.r_[y, 1.0], 4, fit)
    with pytest.raises(ValueError, match="model_a and model_b must differ"):
        win_rate_matrix([0], [0], [1.0], 3, fit)
