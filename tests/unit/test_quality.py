"""Per-rater quality flags: position bias, too-fast answers, straight-lining (no database, no Django)."""

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from ranking.core.quality import (
    QualityThresholds,
    holm_adjust,
    position_bias,
    rater_quality_flags,
    straight_lining,
    too_fast_share,
)

# Position bias -----------------------------------------------------------------------------------------


def test_p_values_are_scipys_exact_two_sided_binomial_test():
    k = np.array([46, 25, 12, 30, 3])
    n = np.array([50, 50, 20, 40, 10])
    out = position_bias(k, n, min_decisive=10)
    for r in range(k.size):
        assert out.p_value[r] == pytest.approx(stats.binomtest(int(k[r]), int(n[r]), 0.5).pvalue, rel=1e-12)
    assert out.left_share.tolist() == pytest.approx([0.92, 0.5, 0.6, 0.75, 0.3])
    assert out.tested.all()


def test_holm_matches_statsmodels_and_a_worked_example():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    # worked example: p = 0.01, 0.04, 0.03, 0.005 (m = 4) → sorted 0.005, 0.01, 0.03, 0.04 ×4, ×3, ×2, ×1
    # = 0.02, 0.03, 0.06, 0.04 → running max 0.02, 0.03, 0.06, 0.06
    p = np.array([0.01, 0.04, 0.03, 0.005])
    assert holm_adjust(p).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 0.2, 40)
    _, expected, _, _ = multitest.multipletests(p, method="holm")
    assert holm_adjust(p) == pytest.approx(expected, rel=1e-12)
    assert holm_adjust([]).size == 0


def test_holm_is_applied_across_the_tested_raters_only():
    # three tested raters, one with too few answers (not tested, not in the family of m = 3)
    k, n = [40, 20, 26, 5], [50, 40, 40, 5]
    out = position_bias(k, n, min_decisive=10)
    raw = [stats.binomtest(k[r], n[r], 0.5).pvalue for r in range(3)]
    assert out.p_adjusted[:3] == pytest.approx(holm_adjust(raw))
    assert not out.tested[3] and out.p_value[3] == 1.0 and out.p_adjusted[3] == 1.0 and not out.flagged[3]
    assert out.flagged.tolist() == [True, False, False, False]


def test_always_left_on_ten_answers_is_flagged_and_on_nine_not_tested():
    out = position_bias([10, 9], [10, 9], min_decisive=10, alpha=0.05)
    assert out.p_value[0] == pytest.approx(2 / 1024)
    assert out.flagged.tolist() == [True, False]
    assert out.tested.tolist() == [True, False]


def test_a_small_significant_deviation_is_not_flagged():
    # 5,600 left of 10,000: p ≈ 1e-33, but a left share of 56 % is within 50 % ± 10 points
    out = position_bias([5600, 6200], [10_000, 10_000])
    assert out.p_adjusted.max() < 1e-20
    assert out.flagged.tolist() == [False, True]


def test_no_decisive_answers_means_no_test_no_flag_and_no_nan():
    out = position_bias([0, 0], [0, 0])
    for arr in (out.left_share, out.p_value, out.p_adjusted):
        assert not np.isnan(arr).any()
    assert out.left_share.tolist() == [0.5, 0.5] and not out.flagged.any() and not out.tested.any()
    empty = position_bias([], [])
    assert empty.flagged.size == 0


@pytest.mark.parametrize(("k", "n"), [([3], [2]), ([-1], [5]), ([1, 2], [3])])
def test_impossible_counts_are_refused(k, n):
    with pytest.raises(ValueError):
        position_bias(k, n)


def test_simulated_always_left_rater_is_flagged_and_fair_raters_mostly_not():
    """Property: among 60 fair raters (left with probability ½) and one who always presses left on 20 or
    more answers, the always-left one is flagged in every run and fair raters almost never (Holm keeps the
    family-wise error ≤ α = 0.05, so over 200 runs about 10 or fewer runs flag any fair rater). With 61
    raters, 10 answers all left (p ≈ 0.002) is not enough: Holm multiplies the smallest p by 61."""
    rng = np.random.default_rng(20240601)
    runs, runs_with_false_flag = 200, 0
    for _ in range(runs):
        n = rng.integers(10, 120, 61)
        k = rng.binomial(n, 0.5)
        n[-1] = rng.integers(20, 120)
        k[-1] = n[-1]  # always left
        out = position_bias(k, n)
        assert out.flagged[-1]
        runs_with_false_flag += bool(out.flagged[:-1].any())
    assert runs_with_false_flag <= 0.05 * runs * 1.8  # 18 of 200; expected ≲ 10


def test_a_rater_biased_to_the_right_is_flagged_too():
    out = position_bias([4], [50])
    assert out.flagged[0] and out.left_share[0] == pytest.approx(0.08)


# Response times, straight-lining -----------------------------------------------------------------------


def test_too_fast_share_counts_strictly_below_the_threshold_and_skips_untimed():
    assert too_fast_share([300, 799, 800, 2000, np.nan, None], 800) == (2, 4, 0.5)
    assert too_fast_share([], 800) == (0, 0, 0.0)
    assert too_fast_share([np.nan], 800) == (0, 0, 0.0)


def test_straight_lining_on_a_known_matrix():
    nan = np.nan
    scores = [
        [3, 3, 3, 3],  # identical
        [5, 5, 5, nan],  # identical on the three scored
        [1, 2, 3, 4],
        [4, nan, nan, nan],  # one dimension: cannot straight-line (counts for sd only)
    ]
    out = straight_lining(scores)
    assert (out.n_answers, out.n_identical) == (3, 2)
    assert out.share == pytest.approx(2 / 3)
    values = np.array([3, 3, 3, 3, 5, 5, 5, 1, 2, 3, 4, 4], dtype=float)
    assert out.sd == pytest.approx(values.std())


def test_straight_lining_edge_cases():
    empty = straight_lining(np.zeros((0, 4)))
    assert (empty.n_answers, empty.n_identical, empty.share, empty.sd) == (0, 0, 0.0, None)
    constant = straight_lining([[3, 3], [3, 3]])
    assert constant.share == 1.0 and constant.sd == 0.0
    with pytest.raises(ValueError):
        straight_lining([[[1]]])


# Combining ---------------------------------------------------------------------------------------------


def test_flags_and_reasons_with_the_numbers():
    out = rater_quality_flags(
        left_picks=[46, 26, 0], n_decisive=[50, 50, 0],
        n_fast=[20, 1, 0], n_timed=[50, 50, 0],
        n_likert=[0, 20, 20], n_identical=[0, 4, 19],
    )
    always_left, fair, liner = out
    assert always_left.flag_codes == ("position_bias", "too_fast")
    bias = always_left.flags[0]
    assert bias.label == "Position bias"
    assert "left 92% of 50" in bias.detail and "p = " in bias.detail and "Holm" in bias.detail
    assert "40% of 50 answers under 800 ms" in always_left.flags[1].detail
    assert always_left.left_share == pytest.approx(0.92)
    assert always_left.position_p == pytest.approx(stats.binomtest(46, 50, 0.5).pvalue)
    assert not fair.flagged and fair.reasons == ()
    # pooled identical share (0 + 4 + 19) / 40 = 57.5 %; the straight-liner's 95 % is 37.5 points above
    assert liner.flag_codes == ("straight_lining",)
    assert "95% of 20 Likert answers" in liner.flags[0].detail
    assert liner.left_share is None and liner.position_p is None and liner.fast_share is None


def test_minimum_counts_before_flagging():
    out = rater_quality_flags(left_picks=[9], n_decisive=[9], n_fast=[9], n_timed=[9], n_likert=[9],
                              n_identical=[9])
    assert not out[0].flagged


def test_straight_lining_is_relative_to_the_population():
    # everyone straight-lines (dimensions that move together): nobody is singled out
    out = rater_quality_flags(left_picks=[0, 0], n_decisive=[0, 0], n_fast=[0, 0], n_timed=[0, 0],
                              n_likert=[20, 20], n_identical=[18, 19])
    assert not any(q.flagged for q in out)


def test_thresholds_are_configurable_and_checked():
    strict = QualityThresholds(too_fast_ms=1000, max_fast_share=0.05, min_timed=5)
    out = rater_quality_flags(left_picks=[0], n_decisive=[0], n_fast=[1], n_timed=[10], thresholds=strict)
    assert out[0].flag_codes == ("too_fast",) and "1000 ms" in out[0].flags[0].detail
    assert QualityThresholds().left_share_band == pytest.approx((0.4, 0.6))
    with pytest.raises(ValueError):
        QualityThresholds(alpha=0)
    with pytest.raises(ValueError):
        rater_quality_flags(left_picks=[0], n_decisive=[0], n_fast=[2], n_timed=[1])
    with pytest.raises(ValueError):
        rater_quality_flags(left_picks=[0, 0], n_decisive=[0, 0], n_fast=[0], n_timed=[0])


def test_the_core_imports_without_django():
    code = ("import sys; import ranking.core.quality; "
            "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
