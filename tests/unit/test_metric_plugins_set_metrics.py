"""Tests of ranking.metric_plugins.set_metrics: diversity, Fréchet distance, KID and CMMD.

Closed forms for Gaussians, brute-force double loops for the kernel estimators, and the unbiasedness of KID.
"""

import itertools
import math

import numpy as np
import pytest
from scipy import linalg

from ranking.metric_plugins import set_metrics as sm

# ----------------------------------------------------------------------------------------------------
# diversity
# ----------------------------------------------------------------------------------------------------


def test_diversity_of_orthogonal_and_identical_vectors():
    assert sm.diversity(np.eye(5) * 3.0) == pytest.approx(1.0)
    assert sm.diversity(np.tile([1.0, 2.0, -1.0], (4, 1))) == pytest.approx(0.0, abs=1e-12)
    assert sm.diversity(np.array([[1.0, 0.0], [-2.0, 0.0]])) == pytest.approx(2.0)


def test_diversity_matches_a_double_loop():
    x = np.random.default_rng(0).normal(size=(9, 6))
    cos = [
        x[i] @ x[j] / (np.linalg.norm(x[i]) * np.linalg.norm(x[j])) for i, j in itertools.combinations(range(9), 2)
    ]
    assert sm.mean_pairwise_cosine_similarity(x) == pytest.approx(np.mean(cos), abs=1e-12)
    assert sm.diversity(x) == pytest.approx(1 - np.mean(cos), abs=1e-12)


def test_diversity_input_checks():
    with pytest.raises(ValueError, match="at least 2 rows"):
        sm.diversity(np.ones((1, 3)))
    with pytest.raises(ValueError, match="all-zero row"):
        sm.diversity(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="2-D"):
        sm.diversity(np.ones(4))


# ----------------------------------------------------------------------------------------------------
# Fréchet distance
# ----------------------------------------------------------------------------------------------------


def test_fid_of_identical_sets_is_zero():
    x = np.random.default_rng(1).normal(size=(200, 8))
    assert sm.fid_from_features(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_closed_form_for_diagonal_covariances():
    # for commuting (here diagonal) covariances: ‖Δμ‖² + Σ_i (√a_i − √b_i)²
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = 1.0 + 4.0 + ((1 - 3) ** 2 + (2 - 1) ** 2 + 0.0)
    assert sm.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_closed_form_for_full_covariances():
    rng = np.random.default_rng(2)
    m1, m2 = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = m1 @ m1.T + np.eye(4), m2 @ m2.T + 0.5 * np.eye(4)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    # Tr((Σ1 Σ2)^½) = Tr((Σ1^½ Σ2 Σ1^½)^½), the symmetric form, via eigenvalues
    r1 = linalg.sqrtm(s1).real
    inner = np.linalg.eigvalsh(r1 @ s2 @ r1)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(inner))
    assert sm.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_fid_from_samples_approaches_the_population_value():
    rng = np.random.default_rng(3)
    mu1, mu2 = np.zeros(3), np.array([1.0, 0.0, 0.5])
    s1, s2 = np.diag([1.0, 2.0, 0.5]), np.diag([2.0, 2.0, 1.0])
    x = rng.multivariate_normal(mu1, s1, size=40_000)
    y = rng.multivariate_normal(mu2, s2, size=40_000)
    expected = sm.frechet_distance(mu1, s1, mu2, s2)
    assert sm.fid_from_features(x, y) == pytest.approx(expected, abs=0.03)


def test_frechet_distance_input_checks():
    with pytest.raises(ValueError, match="same feature dimension"):
        sm.fid_from_features(np.ones((3, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="shape"):
        sm.frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="finite"):
        sm.fid_from_features(np.full((3, 2), np.inf), np.ones((3, 2)))
    # a singular covariance (fewer samples than dimensions) still gives a finite, non-negative value
    rng = np.random.default_rng(4)
    assert 0 <= sm.fid_from_features(rng.normal(size=(5, 10)), rng.normal(size=(5, 10))) < 1e3


# ----------------------------------------------------------------------------------------------------
# KID
# ----------------------------------------------------------------------------------------------------


def _kid_double_loop(x, y):
    d = x.shape[1]

    def k(a, b):
        return (a @ b / d + 1.0) ** 3

    m = len(x)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return kxx + kyy - 2 * kxy


def test_kid_with_one_full_subset_matches_the_double_loop():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(12, 4)), rng.normal(0.5, 1.0, size=(12, 4))
    result = sm.kid(x, y, n_subsets=1, subset_size=12, random_state=0)  # the subset is a permutation
    assert result.subset_size == 12
    assert result.mean == pytest.approx(_kid_double_loop(x, y), rel=1e-10)


def test_kid_is_unbiased_for_one_distribution_and_positive_for_two():
    values = []
    for seed in range(60):
        rng = np.random.default_rng(seed)
        x, y = rng.normal(size=(40, 5)), rng.normal(size=(40, 5))
        values.append(sm.kid(x, y, n_subsets=1, subset_size=40, random_state=seed).mean)
    values = np.array(values)
    se = values.std(ddof=1) / math.sqrt(len(values))
    assert abs(values.mean()) < 3 * se  # expectation 0: the estimator is unbiased
    assert (values < 0).any()  # … and therefore sometimes negative
    rng = np.random.default_rng(100)
    shifted = sm.kid(rng.normal(size=(200, 5)), rng.normal(0.7, 1.0, size=(200, 5)), n_subsets=20,
                     subset_size=100, random_state=1)
    assert shifted.mean > 10 * shifted.std / math.sqrt(20)


def test_kid_subsets_are_reproducible_and_capped():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(50, 3))
    a = sm.kid(x, y, n_subsets=5, subset_size=1000, random_state=7)
    b = sm.kid(x, y, n_subsets=5, subset_size=1000, random_state=7)
    assert a.subset_size == 30 and np.array_equal(a.values, b.values)
    with pytest.raises(ValueError, match="n_subsets"):
        sm.kid(x, y, n_subsets=0)
    with pytest.raises(ValueError, match="subset_size"):
        sm.kid(x, y, subset_size=1)


# ----------------------------------------------------------------------------------------------------
# CMMD
# ----------------------------------------------------------------------------------------------------


def _rbf_double_loop(x, y, sigma, unbiased):
    def k(a, b):
        return math.exp(-np.sum((a - b) ** 2) / (2 * sigma**2))

    n, m = len(x), len(y)
    if unbiased:
        kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
        kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    else:
        kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n)) / n**2
        kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m)) / m**2
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return kxx + kyy - 2 * kxy


def test_cmmd_matches_a_brute_force_double_loop():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(7, 5)), rng.normal(0.3, 1.2, size=(9, 5))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    yn = y / np.linalg.norm(y, axis=1, keepdims=True)
    assert sm.cmmd(x, y) == pytest.approx(1000 * _rbf_double_loop(xn, yn, 10.0, unbiased=False), rel=1e-9)
    # a bandwidth where the kernel is far from flat, without normalisation, both estimators
    for unbiased in (False, True):
        assert sm.mmd2_rbf(x, y, sigma=1.5, unbiased=unbiased) == pytest.approx(
            _rbf_double_loop(x, y, 1.5, unbiased), rel=1e-9
        )
    assert sm.cmmd(x, y, normalise=False, sigma=1.5, scale=1.0) == pytest.approx(
        _rbf_double_loop(x, y, 1.5, unbiased=False), rel=1e-9
    )


def test_cmmd_of_identical_sets_is_zero_and_grows_with_a_shift():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(50, 16))
    assert sm.cmmd(x, x) == pytest.approx(0.0, abs=1e-9)
    near = sm.cmmd(x, x + rng.normal(0, 0.1, x.shape))
    far = sm.cmmd(x, x + rng.normal(0, 1.0, x.shape))
    assert 0 < near < far


def test_cmmd_input_checks():
    with pytest.raises(ValueError, match="sigma"):
        sm.mmd2_rbf(np.ones((2, 2)), np.ones((2, 2)), sigma=0)
    with pytest.raises(ValueError, match="all-zero row"):
        sm.cmmd(np.zeros((2, 2)), np.ones((2, 2)))
