"""Tests for the hierarchical Bradley–Terry model (ranking/core/hbt.py). No database, seeded RNGs."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import torch

from ranking.core.hbt import ConvergenceError, HBTFit, fit_hbt, heldout_log_loss

REPO = Path(__file__).resolve().parents[2]


def simulate(*, n_items=12, n_raters=30, per_rater=200, two_groups=True, nu=0.0, seed=0):
    """Raters in one or two taste groups; group B's strengths are reversed on half of the items.

    Returns winners, losers, raters, tied and a boolean test mask (the last 25 % of every rater's rows).
    """
    rng = np.random.default_rng(seed)
    theta = np.linspace(-1.5, 1.5, n_items)
    theta_b = theta.copy()
    theta_b[::2] = -theta_b[::2]
    r = np.repeat(np.arange(n_raters), per_rater)
    a = rng.integers(0, n_items, r.size)
    b = (a + rng.integers(1, n_items, r.size)) % n_items
    in_b = two_groups & (r % 2 == 1)
    sa = np.where(in_b, theta_b[a], theta[a])
    sb = np.where(in_b, theta_b[b], theta[b])
    pa, pb, pt = np.exp(sa), np.exp(sb), nu * np.exp(0.5 * (sa + sb))
    u = rng.random(r.size) * (pa + pb + pt)
    a_wins, tie = u < pa, u >= pa + pb
    winners = np.where(a_wins | tie, a, b)
    losers = np.where(a_wins | tie, b, a)
    test = np.tile(np.arange(per_rater) >= int(0.75 * per_rater), n_raters)
    return winners, losers, r, tie, test


def bt_map_scipy(winners, losers, n_items, alpha):
    """Plain population BT MAP: minimise Σ log(1 + exp(θ_l − θ_w)) + (alpha/2)‖θ‖²."""

    def f(th):
        d = th[losers] - th[winners]
        sig = 1 / (1 + np.exp(-d))
        g = np.bincount(losers, sig, n_items) - np.bincount(winners, sig, n_items) + alpha * th
        return np.logaddexp(0, d).sum() + 0.5 * alpha * th @ th, g

    res = scipy.optimize.minimize(f, np.zeros(n_items), jac=True, method="L-BFGS-B",
                                  options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 10_000})
    return res.x - res.x.mean()


def split(data, mask):
    w, l, r, t = data
    return (w[mask], l[mask], r[mask], t[mask])


def personal_gain(two_groups, tau=None, seed=0):
    w, l, r, _t, test = simulate(two_groups=two_groups, seed=seed)
    fit = fit_hbt(w[~test], l[~test], r[~test], 12, 30, tau=tau, random_state=seed)
    h = heldout_log_loss(fit, w[test], l[test], r[test])
    return fit, h


# --------------------------------------------------------------------------------------------------
# personal vs population


def test_two_taste_groups_personal_models_predict_each_rater_better():
    fit, h = personal_gain(two_groups=True)
    gain = h["per_rater_population_log_loss"] - h["per_rater_personal_log_loss"]
    assert fit.tau > 0
    assert gain.mean() > 0.05
    assert np.mean(gain > 0) >= 0.8
    assert h["personal_accuracy"] > h["population_accuracy"]


def test_one_taste_group_personal_models_do_not_get_worse():
    _fit, h = personal_gain(two_groups=False)
    assert h["personal_log_loss"] <= h["population_log_loss"] + 0.01


def test_estimated_tau_larger_for_two_groups_than_one():
    fit2, _ = personal_gain(two_groups=True)
    fit1, _ = personal_gain(two_groups=False)
    assert fit2.tau > fit1.tau
    assert fit1.tau <= 0.2
    taus = [g for g, _ in fit2.tau_selection]
    assert fit2.tau in taus and len(taus) == len(fit2.tau_selection)


def test_fixed_tau_two_groups_also_helps():
    _, h = personal_gain(two_groups=True, tau=1.0)
    assert h["personal_log_loss"] < h["population_log_loss"] - 0.05


# --------------------------------------------------------------------------------------------------
# limits of τ


def test_tau_zero_is_population_bt_map():
    w, l, r, _t, _ = simulate(two_groups=True, seed=1)
    alpha = 0.05
    expected = bt_map_scipy(w, l, 12, alpha)
    fit0 = fit_hbt(w, l, r, 12, 30, tau=0.0, alpha=alpha, tol=1e-9)
    np.testing.assert_allclose(fit0.strengths, expected, atol=1e-6)
    np.testing.assert_array_equal(fit0.offsets, 0.0)
    np.testing.assert_allclose(fit0.personal_strengths(3), fit0.strengths)
    # a tiny τ shrinks every rater onto the population
    fit_small = fit_hbt(w, l, r, 12, 30, tau=1e-4, alpha=alpha, tol=1e-9)
    np.testing.assert_allclose(fit_small.strengths, expected, atol=1e-4)
    assert np.max(np.abs(fit_small.offsets)) < 1e-4
    np.testing.assert_allclose(fit_small.personal_strengths(5), expected, atol=1e-4)


def test_large_tau_approaches_independent_per_rater_fits():
    w, l, r, _t, _ = simulate(two_groups=True, seed=2, n_raters=6, per_rater=400)

    def gap(tau):
        fit = fit_hbt(w, l, r, 12, 6, tau=tau, tol=1e-9, max_iter=20_000)
        out = []
        for rater in range(6):
            m = r == rater
            own = bt_map_scipy(w[m], l[m], 12, 1e-9)
            mine = fit.personal_strengths(rater)
            out.append(np.max(np.abs((mine - mine.mean()) - own)))
        return max(out)

    far, near = gap(0.5), gap(50.0)
    assert near < 0.01
    assert near < far / 10


# --------------------------------------------------------------------------------------------------
# weights, ties, predictions, storage


def test_weights_equal_duplication():
    w, l, r, t, _ = simulate(two_groups=True, nu=0.4, seed=3, n_raters=8, per_rater=60)
    rng = np.random.default_rng(7)
    twice = rng.random(w.size) < 0.3
    zero = (~twice) & (rng.random(w.size) < 0.1)
    weights = np.where(twice, 2.0, 1.0)
    weights[zero] = 0.0
    fit_w = fit_hbt(w, l, r, 12, 8, tied=t, weights=weights, tau=0.7, tol=1e-9)
    keep = np.concatenate([np.flatnonzero(~zero), np.flatnonzero(twice)])
    fit_d = fit_hbt(w[keep], l[keep], r[keep], 12, 8, tied=t[keep], tau=0.7, tol=1e-9)
    np.testing.assert_allclose(fit_w.strengths, fit_d.strengths, atol=1e-6)
    np.testing.assert_allclose(fit_w.tie_param, fit_d.tie_param, rtol=1e-6)
    np.testing.assert_allclose(fit_w.log_posterior, fit_d.log_posterior, rtol=1e-9)
    for rater in range(8):
        np.testing.assert_allclose(fit_w.personal_strengths(rater), fit_d.personal_strengths(rater), atol=1e-6)


def test_tie_parameter_recovered_and_predictions_leave_room_for_ties():
    w, l, r, t, _ = simulate(two_groups=False, nu=0.5, seed=4, per_rater=400)
    fit = fit_hbt(w, l, r, 12, 30, tied=t, tau=0.3)
    assert abs(fit.tie_param - 0.5) < 0.08
    a, b = np.array([0, 3, 11]), np.array([5, 3 + 1, 2])
    total = fit.predict_proba(a, b) + fit.predict_proba(b, a)
    assert np.all(total < 1)
    th, nu = fit.strengths, fit.tie_param
    p_tie = nu * np.exp(0.5 * (th[a] + th[b])) / (np.exp(th[a]) + np.exp(th[b]) + nu * np.exp(0.5 * (th[a] + th[b])))
    np.testing.assert_allclose(total + p_tie, 1.0, atol=1e-12)


def test_predict_proba_with_reverse_sums_to_one_without_ties():
    w, l, r, _t, _ = simulate(two_groups=True, seed=5)
    fit = fit_hbt(w, l, r, 12, 30, tau=1.0)
    assert fit.tie_param is None  # as BTFit: no ties, no tie parameter
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 12, 50), rng.integers(0, 12, 50)
    raters = rng.integers(0, 30, 50)
    np.testing.assert_allclose(fit.predict_proba(a, b) + fit.predict_proba(b, a), 1.0, atol=1e-12)
    pr = fit.predict_proba(a, b, rater=raters)
    np.testing.assert_allclose(pr + fit.predict_proba(b, a, rater=raters), 1.0, atol=1e-12)
    # personal predictions use the rater's own strengths
    s = fit.personal_strengths(int(raters[0]))
    np.testing.assert_allclose(pr[0], 1 / (1 + np.exp(s[b[0]] - s[a[0]])), atol=1e-12)
    assert fit.predict_proba(2, 7, rater=1).shape == ()


def test_offsets_stored_sparsely_one_per_judged_pair():
    rng = np.random.default_rng(6)
    n_items, n_raters, m = 2000, 40, 3000
    r = rng.integers(0, n_raters, m)
    w = rng.integers(0, n_items, m)
    l = (w + rng.integers(1, n_items, m)) % n_items
    fit = fit_hbt(w, l, r, n_items, n_raters, tau=0.5)
    judged = set(zip(r.tolist(), w.tolist())) | set(zip(r.tolist(), l.tolist()))
    assert fit.offsets.shape == (len(judged),) == (fit.n_pairs,)
    assert set(zip(fit.offset_raters.tolist(), fit.offset_items.tolist())) == judged
    assert fit.n_pairs <= 2 * m < n_items * n_raters / 10
    # an item rater 0 never judged keeps the population strength
    unjudged = np.setdiff1d(np.arange(n_items), np.concatenate([w[r == 0], l[r == 0]]))
    np.testing.assert_array_equal(fit.personal_strengths(0)[unjudged], fit.strengths[unjudged])


def test_strengths_mean_zero_and_fit_fields():
    w, l, r, _t, _ = simulate(seed=8)
    fit = fit_hbt(w, l, r, 12, 30, tau=0.5)
    assert isinstance(fit, HBTFit)
    assert abs(fit.strengths.mean()) < 1e-12
    assert fit.converged and fit.n_iter > 0 and np.isfinite(fit.log_posterior)
    assert fit.tau == 0.5 and fit.tau_selection is None


def test_heldout_log_loss_counts_ties_half():
    w, l, r, _t, _ = simulate(seed=9, n_raters=4, per_rater=50)
    fit = fit_hbt(w, l, r, 12, 4, tau=0.5)
    tied = np.zeros(3, dtype=bool)
    tied[2] = True
    h = heldout_log_loss(fit, w[:3], l[:3], r[:3], tied=tied)
    d = fit.strengths[w[:3]] - fit.strengths[l[:3]]
    p = 1 / (1 + np.exp(-d))
    expected = np.array([-np.log(p[0]), -np.log(p[1]), -0.5 * np.log(p[2]) - 0.5 * np.log(1 - p[2])])
    assert h["population_log_loss"] == pytest.approx(expected.mean())
    assert h["n_ties"] == 1 and h["n"] == 3
    acc = np.array([d[0] > 0, d[1] > 0, 0.5], dtype=float)
    assert h["population_accuracy"] == pytest.approx(acc.mean())
    assert np.isnan(h["per_rater_personal_log_loss"][1:]).all()  # raters without held-out rows
    only_tie = heldout_log_loss(fit, w[:1], l[:1], r[:1], tied=[True])
    assert only_tie["population_accuracy"] == 0.5


# --------------------------------------------------------------------------------------------------
# errors and boundaries


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"winners": [0, 1], "losers": [0, 2]}, "winners and losers"),
        ({"losers": [1]}, "losers"),
        ({"raters": [0, 5]}, "raters"),
        ({"winners": [0, 12]}, "winners"),
        ({"weights": [1.0, -1.0]}, "weights"),
        ({"weights": [0.0, 0.0]}, "weights"),
        ({"tied": [True]}, "tied"),
        ({"tau": -1.0}, "tau"),
        ({"alpha": 0.0}, "alpha"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": 0.0}, "tol"),
        ({"n_items": 1}, "n_items"),
        ({"tau": None, "cv_folds": 1}, "cv_folds"),
        ({"tau": None, "tau_grid": []}, "tau_grid"),
    ],
)
def test_invalid_input_raises_value_error_naming_argument(kwargs, name):
    args = {"winners": [0, 1], "losers": [1, 2], "raters": [0, 1], "n_items": 12, "n_raters": 2, "tau": 0.5}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        fit_hbt(args.pop("winners"), args.pop("losers"), args.pop("raters"), args.pop("n_items"),
                args.pop("n_raters"), **args)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_cuda_requested_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        fit_hbt([0], [1], [0], 2, 1, tau=0.5, device="cuda")


def test_non_convergence_raises():
    w, l, r, _t, _ = simulate(seed=10)
    with pytest.raises(ConvergenceError):
        fit_hbt(w, l, r, 12, 30, tau=1.0, max_iter=2, tol=1e-12)


def test_only_ties_is_rejected():
    with pytest.raises(ValueError, match="tied"):
        fit_hbt([0, 1, 2], [1, 2, 0], [0, 0, 0], 3, 1, tied=[True, True, True], tau=0.5)


def test_query_validation():
    w, l, r, _t, _ = simulate(seed=11, n_raters=3, per_rater=30)
    fit = fit_hbt(w, l, r, 12, 3, tau=0.5)
    with pytest.raises(ValueError, match="rater"):
        fit.personal_strengths(3)
    with pytest.raises(ValueError, match="a"):
        fit.predict_proba([12], [0])
    with pytest.raises(ValueError, match="rater"):
        fit.predict_proba([1], [0], rater=[-1])


def test_importing_hbt_does_not_import_django():
    code = "import sys, ranking.core.hbt; print('django' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
