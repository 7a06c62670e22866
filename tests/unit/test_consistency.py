"""Intransitive triads and the group likelihood-ratio test (no database)."""

import numpy as np
import pytest

from ranking.core.consistency import group_lr_test, triad_counts


def test_cyclic_rater_and_transitive_rater():
    # rater 0: a>b, b>c, c>a (cyclic) plus d>a, d>b (two transitive triads with d: {a,b,d};
    # {a,c,d} and {b,c,d} are incomplete). rater 1: a>b>c, a>c (transitive).
    w = [0, 1, 2, 3, 3, 0, 1, 0]
    lo = [1, 2, 0, 0, 1, 1, 2, 2]
    r = [0, 0, 0, 0, 0, 1, 1, 1]
    out = triad_counts(w, lo, r, n_raters=3)
    assert out.n_triads.tolist() == [2, 1, 0]
    assert out.n_cyclic.tolist() == [1, 0, 0]


def test_triads_do_not_cross_raters():
    # The cycle is split over two raters: nobody has a complete triad.
    out = triad_counts([0, 1, 2], [1, 2, 0], [0, 0, 1], n_raters=2)
    assert out.n_triads.tolist() == [0, 0]


def _simulate(rng, theta, n, reverse=False):
    k = len(theta)
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, k, n)) % k
    t = -theta if reverse else theta
    p = 1 / (1 + np.exp(-(t[a] - t[b])))
    a_wins = rng.random(n) < p
    return np.where(a_wins, a, b), np.where(a_wins, b, a)


def test_lr_test_detects_reversed_group_and_not_a_random_split():
    rng = np.random.default_rng(0)
    theta = np.linspace(-1.5, 1.5, 8)
    w0, l0 = _simulate(rng, theta, 400)
    w1, l1 = _simulate(rng, theta, 400, reverse=True)
    res = group_lr_test(np.r_[w0, w1], np.r_[l0, l1], np.r_[np.zeros(400, int), np.ones(400, int)], n_groups=2)
    assert res.df == 7 and res.n_common == 8
    assert res.p < 1e-6
    w, lo = _simulate(rng, theta, 800)
    null = group_lr_test(w, lo, rng.integers(0, 2, 800), n_groups=2)
    assert null.p > 0.05


def test_lr_test_uses_only_items_compared_in_every_group():
    w = [0, 1, 0, 2, 0, 1]
    lo = [1, 0, 1, 0, 3, 3]
    g = [0, 0, 1, 1, 0, 0]  # item 3 only in group 0; item 2 only in group 1
    res = group_lr_test(w, lo, g, n_groups=2)
    assert res.common_items.tolist() == [0, 1]
    assert res.df == 1
    with pytest.raises(ValueError):
        group_lr_test([0], [1], [0], n_groups=2)


def test_nominal_alpha_from_counts_matches_krippendorff_alpha():
    from ranking.core.agreement import krippendorff_alpha
    from ranking.core.consistency import nominal_alpha_from_counts

    rng = np.random.default_rng(3)
    data = rng.integers(0, 3, (6, 300)).astype(float)
    data[rng.random(data.shape) < 0.4] = np.nan
    counts = np.stack([(data == c).sum(axis=0) for c in range(3)], axis=1)
    assert nominal_alpha_from_counts(counts) == pytest.approx(krippendorff_alpha(data, "nominal"), abs=1e-12)
    with pytest.raises(ValueError):
        nominal_alpha_from_counts([[1, 0, 0], [0, 1, 0]])


def test_group_lr_test_is_calibrated_under_the_null():
    """With one shared ranking, p < 0.05 in about 5% of simulated studies (not systematically more)."""
    from ranking.core.consistency import group_lr_test

    rng = np.random.default_rng(0)
    theta = np.linspace(-1.5, 1.5, 6)
    pairs = np.array([(i, j) for i in range(6) for j in range(i + 1, 6)])
    p_values = []
    for _ in range(300):
        a = np.tile(pairs[:, 0], 24)
        b = np.tile(pairs[:, 1], 24)
        groups = np.repeat(np.arange(24) % 2, len(pairs))
        a_wins = rng.random(a.size) < 1 / (1 + np.exp(-(theta[a] - theta[b])))
        winners, losers = np.where(a_wins, a, b), np.where(a_wins, b, a)
        p_values.append(group_lr_test(winners, losers, groups, n_groups=2).p)
    share = np.mean(np.array(p_values) < 0.05)
    assert 0.02 <= share <= 0.10, share  # binomial(300, 0.05): 0.02–0.09 covers > 99.9%


@pytest.mark.parametrize("counts, match", [
    ([[2, -1], [1, 1]], "non-negative whole numbers"),
    ([[1.5, 1], [1, 1]], "non-negative whole numbers"),
    ([[np.nan, 2], [1, 1]], "non-negative whole numbers"),
    ([2, 1, 1], "table"),
])
def test_nominal_alpha_from_counts_rejects_counts_that_are_not_counts(counts, match):
    from ranking.core.consistency import nominal_alpha_from_counts

    with pytest.raises(ValueError, match=match):
        nominal_alpha_from_counts(counts)


@pytest.mark.parametrize("winners, losers, groups, n_groups, match", [
    ([0, 1, 0, 1], [1, 0, 1, 0], [0, 0, 1, 2], 2, "groups"),  # group index n_groups: IndexError before
    ([0, 1, 0, 1], [1, 0, 1, 0], [0, 0, 1, -1], 2, "groups"),  # negative: wrapped round before
    ([0, -1, 0, 1], [1, 0, 1, 0], [0, 0, 1, 1], 2, "winners"),
    ([0, 1, 0, 1], [1, 0, -2, 0], [0, 0, 1, 1], 2, "losers"),
    ([0, 1.5, 0, 1], [1, 0, 1, 0], [0, 0, 1, 1], 2, "winners"),
    ([], [], [], 2, "no comparisons"),
    ([0, 1], [1, 0], [0, 1], 1, "n_groups"),
])
def test_group_lr_test_rejects_bad_indices_naming_the_argument(winners, losers, groups, n_groups, match):
    with pytest.raises(ValueError, match=match):
        group_lr_test(winners, losers, groups, n_groups=n_groups)
