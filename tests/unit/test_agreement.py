"""Tests for ranking.core.agreement: published worked examples and reference libraries.

No database and no Django: the module under test must import with Django absent.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from ranking.core.agreement import (
    ICCForm,
    ICCResult,
    LikertAgreementShares,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    icc,
    krippendorff_alpha,
    likert_agreement_shares,
    majority_share,
    percent_agreement,
    wilson_interval,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
FORMS = ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k")
LEVELS = ("nominal", "ordinal", "interval", "ratio")
NAN = np.nan

# Shrout & Fleiss (1979), Table 2: 6 targets x 4 judges.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float
)

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 coders x 12 units
# with missing values.  Rows are coders (the layout of the paper and of krippendorff.alpha).
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
)

# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 5 categories, 14 raters; kappa = 0.210.
FLEISS_WIKIPEDIA = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


def _pairs_from_table(table) -> tuple[np.ndarray, np.ndarray]:
    """Expand a 2-rater contingency table (rows: rater A's category, cols: B's) into label arrays."""
    table = np.asarray(table)
    a, b = [], []
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            a += [i] * int(table[i, j])
            b += [j] * int(table[i, j])
    return np.array(a, dtype=float), np.array(b, dtype=float)


def _random_ratings(rng, n_targets, n_raters, levels=5, noise=1.0):
    """Likert-like ratings with a true target effect and per-rater offsets."""
    truth = rng.normal(0, 1, size=(n_targets, 1))
    offset = rng.normal(0, 0.5, size=(1, n_raters))
    latent = truth + offset + rng.normal(0, noise, size=(n_targets, n_raters))
    return np.clip(np.round(latent + (levels + 1) / 2), 1, levels)


def _with_missing(rng, data, share):
    out = data.astype(float).copy()
    out[rng.random(out.shape) < share] = np.nan
    return out


# --------------------------------------------------------------------------------------------------
# ICC
# --------------------------------------------------------------------------------------------------


def test_icc_shrout_fleiss_table_2():
    result = icc(SHROUT_FLEISS)
    published = {"ICC1": 0.17, "ICC2": 0.29, "ICC3": 0.71, "ICC1k": 0.44, "ICC2k": 0.62, "ICC3k": 0.91}
    for key, value in published.items():
        assert result[key].value == pytest.approx(value, abs=0.005), key
    assert isinstance(result, ICCResult) and isinstance(result, dict)
    assert set(result) == set(FORMS)
    assert all(isinstance(form, ICCForm) for form in result.values())
    assert (result.n_targets, result.n_raters, result.n_dropped) == (6, 4, 0)
    # F tests of Shrout & Fleiss: between-targets MS over within MS (one-way) and over residual MS.
    assert result["ICC1"].f == pytest.approx(1.7947, abs=1e-4)
    assert (result["ICC1"].df1, result["ICC1"].df2) == (5, 18)
    assert result["ICC3"].f == pytest.approx(11.0272, abs=1e-4)
    assert (result["ICC3"].df1, result["ICC3"].df2) == (5, 15)


def _pingouin_icc(ratings, *, unrounded: bool):
    pd = pytest.importorskip("pandas")
    pg = pytest.importorskip("pingouin")
    n, k = ratings.shape
    long = pd.DataFrame(
        {
            "target": np.repeat(np.arange(n), k),
            "rater": np.tile(np.arange(k), n),
            "score": ratings.ravel(),
        }
    )
    saved = pg.options.get("round.column.CI95")
    try:
        if unrounded:
            pg.options["round.column.CI95"] = None
        return pg.intraclass_corr(long, targets="target", raters="rater", ratings="score", nan_policy="omit")
    finally:
        pg.options["round.column.CI95"] = saved


@pytest.mark.parametrize("seed,n,k", [(0, 30, 3), (1, 200, 5), (2, 12, 2)])
def test_icc_matches_pingouin(seed, n, k):
    rng = np.random.default_rng(seed)
    ratings = _random_ratings(rng, n, k) + rng.normal(0, 0.1, size=(n, k))
    ours = icc(ratings)
    ref = _pingouin_icc(ratings, unrounded=True).set_index("Type")
    names = dict(zip(FORMS, ["ICC(1,1)", "ICC(A,1)", "ICC(C,1)", "ICC(1,k)", "ICC(A,k)", "ICC(C,k)"]))
    for key, ref_name in names.items():
        row = ref.loc[ref_name]
        form = ours[key]
        assert form.value == pytest.approx(row["ICC"], abs=1e-9), key
        assert form.f == pytest.approx(row["F"], rel=1e-9), key
        assert form.df1 == row["df1"] and form.df2 == row["df2"], key
        assert form.p == pytest.approx(row["pval"], abs=1e-9), key
        assert form.ci_low == pytest.approx(row["CI95"][0], abs=1e-9), key
        assert form.ci_high == pytest.approx(row["CI95"][1], abs=1e-9), key


def test_icc_ci_matches_pingouin_default_rounding():
    rng = np.random.default_rng(7)
    ratings = _random_ratings(rng, 40, 4)
    ours = icc(ratings)
    ref = _pingouin_icc(ratings, unrounded=False)
    for key, ci in zip(FORMS, ref["CI95"]):
        assert np.round([ours[key].ci_low, ours[key].ci_high], 2) == pytest.approx(ci, abs=1e-12)


def test_icc_ci_forms_1_and_3_from_the_f_distribution():
    """Independent scipy computation of the Shrout & Fleiss CI for ICC(1,1) and ICC(C,k)."""
    result = icc(SHROUT_FLEISS)
    k = 4
    f1, f3 = result["ICC1"].f, result["ICC3"].f
    fl = f1 / stats.f.ppf(0.975, 5, 18)
    fu = f1 * stats.f.ppf(0.975, 18, 5)
    assert result["ICC1"].ci_low == pytest.approx((fl - 1) / (fl + k - 1), abs=1e-12)
    assert result["ICC1"].ci_high == pytest.approx((fu - 1) / (fu + k - 1), abs=1e-12)
    fl3 = f3 / stats.f.ppf(0.975, 5, 15)
    assert result["ICC3k"].ci_low == pytest.approx(1 - 1 / fl3, abs=1e-12)
    for form in result.values():
        assert form.ci_low <= form.value <= form.ci_high


def test_icc_drops_targets_with_missing_ratings_and_reports_them():
    ratings = np.vstack([SHROUT_FLEISS, [[1, NAN, 3, 4], [NAN, NAN, NAN, NAN]]])
    result = icc(ratings)
    assert (result.n_targets, result.n_raters, result.n_dropped) == (6, 4, 2)
    complete = icc(SHROUT_FLEISS)
    for key in FORMS:
        assert result[key] == complete[key]


def test_icc_matches_pingouin_nan_omit():
    rng = np.random.default_rng(3)
    ratings = _with_missing(rng, _random_ratings(rng, 60, 3) + rng.normal(0, 0.1, (60, 3)), 0.1)
    ours = icc(ratings)
    ref = _pingouin_icc(ratings, unrounded=True)
    assert ours.n_dropped == int(np.isnan(ratings).any(axis=1).sum()) > 0
    assert [ours[k].value for k in FORMS] == pytest.approx(ref["ICC"].to_numpy(), abs=1e-9)


def test_icc_perfect_agreement_is_one():
    scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    result = icc(np.column_stack([scores, scores, scores]))
    for key in FORMS:
        form = result[key]
        assert form.value == pytest.approx(1.0)
        assert (form.ci_low, form.ci_high) == (pytest.approx(1.0), pytest.approx(1.0))
        assert np.isinf(form.f) and form.p == 0.0


def test_icc_constant_rater_offset_keeps_consistency_but_not_absolute_agreement():
    scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    result = icc(np.column_stack([scores, scores + 1, scores + 2]))
    assert result["ICC3"].value == pytest.approx(1.0)
    assert result["ICC2"].value < 1.0
    assert result["ICC2"].ci_low <= result["ICC2"].value <= result["ICC2"].ci_high


@pytest.mark.parametrize(
    "ratings,message",
    [
        (np.ones((5, 1)), "at least 2 raters"),
        (np.array([[1.0, 2.0]]), "at least 2 targets"),
        (np.array([[1.0, 2.0], [NAN, 1.0], [2.0, NAN]]), "at least 2 targets"),
        (np.full((4, 3), 2.0), "no variance"),
        (np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]), "do not vary between targets"),
        (np.arange(6.0), "2-D"),
    ],
)
def test_icc_refuses_undefined_input(ratings, message):
    with pytest.raises(ValueError, match=message):
        icc(ratings)


# --------------------------------------------------------------------------------------------------
# Krippendorff's alpha
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "level,published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)]
)
def test_alpha_krippendorff_2011_example(level, published):
    krippendorff = pytest.importorskip("krippendorff")
    value = krippendorff_alpha(KRIPPENDORFF_2011, level)
    assert value == pytest.approx(published, abs=0.0005)
    assert value == pytest.approx(
        krippendorff.alpha(KRIPPENDORFF_2011, level_of_measurement=level), abs=1e-12
    )


def test_alpha_nominal_exact_fraction():
    # The paper's nominal alpha 0.743 is the rational number 113/152 (n = 40 pairable values).
    assert krippendorff_alpha(KRIPPENDORFF_2011, "nominal") == pytest.approx(113 / 152, abs=1e-12)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(
    "seed,n_raters,n_units,missing", [(0, 3, 500, 0.2), (1, 6, 300, 0.5), (2, 2, 80, 0.0)]
)
def test_alpha_matches_krippendorff_package(level, seed, n_raters, n_units, missing):
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(seed)
    data = _with_missing(rng, _random_ratings(rng, n_units, n_raters).T, missing)
    ours = krippendorff_alpha(data, level)
    ref = krippendorff.alpha(data, level_of_measurement=level)
    assert ours == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("level", ["interval", "ratio", "nominal"])
def test_alpha_continuous_values_match_package(level):
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(11)
    truth = rng.gamma(2.0, 1.0, size=150)
    data = _with_missing(rng, np.round(truth + rng.gamma(1.0, 0.3, size=(4, 150)), 2), 0.3)
    assert krippendorff_alpha(data, level) == pytest.approx(
        krippendorff.alpha(data, level_of_measurement=level), abs=1e-9
    )


def test_alpha_value_domain():
    krippendorff = pytest.importorskip("krippendorff")
    domain = [1, 2, 3, 4, 5, 6, 7]
    for level in LEVELS:
        ours = krippendorff_alpha(KRIPPENDORFF_2011, level, value_domain=domain)
        ref = krippendorff.alpha(KRIPPENDORFF_2011, value_domain=domain, level_of_measurement=level)
        assert ours == pytest.approx(ref, abs=1e-12)
    with pytest.raises(ValueError, match="outside value_domain"):
        krippendorff_alpha(KRIPPENDORFF_2011, "ordinal", value_domain=[1, 2, 3])


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_sparse_table_path_matches_dense(level, monkeypatch):
    from ranking.core import agreement

    dense = krippendorff_alpha(KRIPPENDORFF_2011, level)
    monkeypatch.setattr(agreement, "_DENSE_TABLE_SLACK", -(10**9))
    assert krippendorff_alpha(KRIPPENDORFF_2011, level) == pytest.approx(dense, abs=1e-12)


def test_alpha_ignores_units_with_one_rating():
    extra = np.array([[7.0, NAN], [NAN, 9.0], [NAN, NAN], [NAN, NAN]])
    with_singletons = np.hstack([KRIPPENDORFF_2011, extra])
    for level in ("nominal", "interval"):
        assert krippendorff_alpha(with_singletons, level) == pytest.approx(
            krippendorff_alpha(KRIPPENDORFF_2011, level), abs=1e-12
        )


def test_alpha_perfect_agreement_is_one():
    data = np.array([[1, 2, 3, 4, 5, 1], [1, 2, 3, 4, 5, NAN], [1, 2, NAN, 4, 5, 1]], dtype=float)
    for level in LEVELS:
        assert krippendorff_alpha(data, level) == pytest.approx(1.0)


def test_alpha_refuses_undefined_input():
    with pytest.raises(ValueError, match="at least 2 raters"):
        krippendorff_alpha(np.array([[1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match="no unit"):
        krippendorff_alpha(np.array([[1.0, NAN], [NAN, 2.0]]))
    with pytest.raises(ValueError, match="no variation"):
        krippendorff_alpha(np.array([[3.0, 3.0, NAN], [3.0, 3.0, 4.0]]))
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(KRIPPENDORFF_2011, "cardinal")
    with pytest.raises(ValueError, match="non-negative"):
        krippendorff_alpha(np.array([[-1.0, 2.0], [1.0, 2.0]]), "ratio")
    with pytest.raises(TypeError, match="numeric"):
        krippendorff_alpha(np.array([["a", "b"], ["a", "c"]]))


def test_alpha_large_input_matches_package():
    """Vectorised path on a bench-sized input (no timing asserted)."""
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(5)
    data = _with_missing(rng, _random_ratings(rng, 18_000, 3).T, 0.1)
    for level in ("ordinal", "nominal"):
        assert krippendorff_alpha(data, level) == pytest.approx(
            krippendorff.alpha(data, level_of_measurement=level), abs=1e-9
        )


# --------------------------------------------------------------------------------------------------
# Fleiss' kappa
# --------------------------------------------------------------------------------------------------


def test_fleiss_kappa_wikipedia_example():
    assert FLEISS_WIKIPEDIA.sum(axis=1).tolist() == [14] * 10
    assert FLEISS_WIKIPEDIA.sum(axis=0).tolist() == [20, 28, 39, 21, 32]  # column totals on the page
    assert fleiss_kappa(FLEISS_WIKIPEDIA) == pytest.approx(0.210, abs=0.0005)


def test_fleiss_kappa_matches_statsmodels():
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    rng = np.random.default_rng(4)
    for n_raters, n_cats in [(3, 2), (5, 4), (10, 7)]:
        probs = rng.dirichlet(np.ones(n_cats), size=120)
        table = np.array([rng.multinomial(n_raters, p) for p in probs])
        ref = inter_rater.fleiss_kappa(table, method="fleiss")
        assert fleiss_kappa(table) == pytest.approx(ref, abs=1e-9)
    assert fleiss_kappa(FLEISS_WIKIPEDIA) == pytest.approx(
        inter_rater.fleiss_kappa(FLEISS_WIKIPEDIA, method="fleiss"), abs=1e-12
    )


def test_fleiss_kappa_perfect_agreement_is_one():
    assert fleiss_kappa([[3, 0, 0], [0, 3, 0], [0, 0, 3], [3, 0, 0]]) == pytest.approx(1.0)


def test_fleiss_kappa_refuses_bad_tables():
    with pytest.raises(ValueError, match="same number of raters"):
        fleiss_kappa([[2, 1], [1, 1]])
    with pytest.raises(ValueError, match="at least 2 raters"):
        fleiss_kappa([[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="one category"):
        fleiss_kappa([[3, 0], [3, 0]])
    with pytest.raises(ValueError, match="non-negative integers"):
        fleiss_kappa([[2.5, 0.5], [1, 2]])


# --------------------------------------------------------------------------------------------------
# Cohen's kappa
# --------------------------------------------------------------------------------------------------


def test_cohen_kappa_textbook_2x2():
    # Wikipedia "Cohen's kappa": 50 grant proposals, both yes 20, A yes/B no 5, A no/B yes 10,
    # both no 15: p_o = 0.7, p_e = 0.5, kappa = 0.4.
    a, b = _pairs_from_table([[20, 5], [10, 15]])
    assert cohen_kappa(a, b) == pytest.approx(0.4, abs=1e-12)


def test_cohen_kappa_irrcac_3x3_example():
    # Gwet's irrCAC overview, dataset cont3x3abstractors (2 abstractors, 100 cases, 3 categories):
    # Cohen's kappa 0.7964094, percent agreement 0.89, Gwet's AC1 0.8493305, Krippendorff 0.7972585.
    a, b = _pairs_from_table([[13, 0, 0], [0, 20, 7], [0, 4, 56]])
    assert cohen_kappa(a, b) == pytest.approx(0.7964094, abs=5e-8)
    data = np.vstack([a, b])
    assert percent_agreement(data) == pytest.approx(0.89, abs=1e-12)
    assert gwet_ac1(data) == pytest.approx(0.8493305, abs=5e-8)
    assert krippendorff_alpha(data, "nominal") == pytest.approx(0.7972585, abs=5e-8)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_matches_sklearn_and_statsmodels(weights):
    metrics = pytest.importorskip("sklearn.metrics")
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    rng = np.random.default_rng(9)
    ratings = _random_ratings(rng, 300, 2)
    a, b = ratings[:, 0], ratings[:, 1]
    assert set(np.unique(np.concatenate([a, b]))) == {1, 2, 3, 4, 5}
    ours = cohen_kappa(a, b, weights=weights)
    assert ours == pytest.approx(metrics.cohen_kappa_score(a, b, weights=weights), abs=1e-9)
    table = np.histogram2d(a, b, bins=[np.arange(0.5, 6), np.arange(0.5, 6)])[0]
    ref = inter_rater.cohens_kappa(table, wt=weights, return_results=False)
    assert ours == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("weights", ["linear", "quadratic"])
def test_weighted_kappa_uses_value_distance_when_a_level_is_unused(weights):
    metrics = pytest.importorskip("sklearn.metrics")
    a = np.array([1, 2, 5, 5, 1, 2, 2, 5])
    b = np.array([1, 1, 5, 2, 2, 2, 1, 5])
    # Levels 3 and 4 of the 1-5 scale are unused: distances stay numeric (2 to 5 is 3 steps).
    full_scale = metrics.cohen_kappa_score(a, b, weights=weights, labels=[1, 2, 3, 4, 5])
    assert cohen_kappa(a, b, weights=weights) == pytest.approx(full_scale, abs=1e-12)


def test_cohen_kappa_string_labels_and_errors():
    a = ["cat", "dog", "dog", "cat", "bird"]
    b = ["cat", "dog", "cat", "cat", "bird"]
    metrics = pytest.importorskip("sklearn.metrics")
    assert cohen_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b), abs=1e-12)
    assert cohen_kappa([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="numeric"):
        cohen_kappa(a, b, weights="linear")
    with pytest.raises(ValueError, match="equal length"):
        cohen_kappa([1, 2], [1])
    with pytest.raises(ValueError, match="NaN"):
        cohen_kappa([1.0, NAN], [1.0, 2.0])
    with pytest.raises(ValueError, match="undefined"):
        cohen_kappa([1, 1, 1], [1, 1, 1])
    with pytest.raises(ValueError, match="weights"):
        cohen_kappa([1, 2], [1, 2], weights="cubic")


# --------------------------------------------------------------------------------------------------
# Gwet's AC1 and percent agreement
# --------------------------------------------------------------------------------------------------


def test_gwet_ac1_two_raters_hand_computed():
    # Two raters, yes/no, 100 items: yes/yes 40, yes/no 10, no/yes 20, no/no 30.
    # p_a = 0.70; pi_yes = (0.50 + 0.60) / 2 = 0.55; p_e = 2 * 0.55 * 0.45 = 0.495 (Gwet 2008, eq. for
    # two raters and two categories); AC1 = (0.70 - 0.495) / (1 - 0.495) = 0.205 / 0.505.
    a, b = _pairs_from_table([[40, 10], [20, 30]])
    data = np.vstack([a, b])
    assert gwet_ac1(data) == pytest.approx(0.205 / 0.505, abs=1e-12)
    assert percent_agreement(data) == pytest.approx(0.70, abs=1e-12)
    # Cohen's kappa on the same table: p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5, kappa = 0.4.
    assert cohen_kappa(a, b) == pytest.approx(0.4, abs=1e-12)


def test_gwet_ac1_multi_rater_with_missing_data():
    # Gwet (2014), Handbook, p. 120 / irrCAC dataset cac.raw4raters (the same 4 x 12 table as
    # Krippendorff 2011): gwet.ac1.raw gives AC1 = 0.7754 (4 d.p.).
    assert gwet_ac1(KRIPPENDORFF_2011) == pytest.approx(0.7754, abs=5e-5)
    # Hand computation of p_a: units 1-12 with >= 2 ratings (unit 12 has one rating, excluded):
    # agreeing-pair shares 1, 1/2, 1, 1, 1, 0, 1, 1/2, 1, 1, 1 -> mean 9/11.
    assert percent_agreement(KRIPPENDORFF_2011) == pytest.approx(9 / 11, abs=1e-12)


def test_gwet_ac1_and_percent_agreement_edge_cases():
    data = np.array([[1, 2, 1, 2], [1, 2, 1, 2], [1, 2, NAN, 2]], dtype=float)
    assert gwet_ac1(data) == pytest.approx(1.0)
    assert percent_agreement(data) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one category"):
        gwet_ac1(np.array([[1.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="at least 2 raters"):
        gwet_ac1(np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="at least 2 raters"):
        percent_agreement(np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="no unit"):
        percent_agreement(np.array([[1.0, NAN], [NAN, 2.0]]))


# --------------------------------------------------------------------------------------------------
# Likert shares, Wilson, majority
# --------------------------------------------------------------------------------------------------


def test_likert_agreement_shares():
    ratings = np.array(
        [
            [3, 3, 3],  # perfect
            [2, 3, 3],  # within one
            [1, 3, 2],  # spread 2
            [5, NAN, 5],  # perfect with a missing rating
            [4, NAN, NAN],  # one rating: not counted
        ],
        dtype=float,
    )
    shares = likert_agreement_shares(ratings)
    assert isinstance(shares, LikertAgreementShares)
    assert shares == LikertAgreementShares(perfect=0.5, within_one=0.75, n_targets=4, n_excluded=1)
    with pytest.raises(ValueError, match="two ratings"):
        likert_agreement_shares([[1.0, NAN], [NAN, 2.0]])


def test_wilson_interval_matches_statsmodels():
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    successes = np.array([0, 1, 7, 50, 99, 100])
    n = np.array([10, 10, 20, 100, 100, 100])
    low, high = wilson_interval(successes, n)
    ref_low, ref_high = proportion.proportion_confint(successes, n, alpha=0.05, method="wilson")
    np.testing.assert_allclose(low, ref_low, atol=1e-12)
    np.testing.assert_allclose(high, ref_high, atol=1e-12)
    lo90, hi90 = wilson_interval(7, 20, confidence=0.90)
    ref90 = proportion.proportion_confint(7, 20, alpha=0.10, method="wilson")
    assert (lo90, hi90) == pytest.approx(ref90, abs=1e-12)
    assert isinstance(lo90, float)


def test_wilson_interval_edges():
    low, high = wilson_interval(np.array([0, 3]), np.array([0, 5]))
    assert np.isnan(low[0]) and np.isnan(high[0])
    assert 0 < low[1] < 0.6 < high[1] < 1
    with pytest.raises(ValueError, match="exceed"):
        wilson_interval(6, 5)
    with pytest.raises(ValueError, match="non-negative"):
        wilson_interval(-1, 5)


def test_majority_share():
    shares = majority_share([[3, 0, 0], [1, 1, 1], [2, 1, 0], [0, 0, 0]])
    np.testing.assert_allclose(shares[:3], [1.0, 1 / 3, 2 / 3])
    assert np.isnan(shares[3])
    assert majority_share([1, 3]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="non-negative"):
        majority_share([[1, -1]])


# --------------------------------------------------------------------------------------------------
# Boundary: no Django
# --------------------------------------------------------------------------------------------------


def test_import_does_not_import_django():
    code = (
        "import sys\n"
        "import ranking.core.agreement\n"
        "loaded = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("a, b, match", [
    ([1, None, 2], [1, 2, 2], "None or NaN in a"),
    (["x", "y", "x"], ["x", None, "y"], "None or NaN in b"),
    ([1.0, 2.0, np.nan], [1.0, 2.0, 2.0], "NaN in a"),
    (np.array([1, 2, float("nan")], dtype=object), [1, 2, 2], "None or NaN in a"),
])
def test_cohen_kappa_missing_labels_raise_naming_the_argument(a, b, match):
    with pytest.raises(ValueError, match=match):
        cohen_kappa(a, b)


@pytest.mark.parametrize("successes, n, match", [
    (np.nan, 10, "successes"),
    ([3, np.nan], [10, 10], "successes"),
    (3, np.nan, "n must"),
    (3, np.inf, "n must"),
])
def test_wilson_interval_rejects_nan(successes, n, match):
    with pytest.raises(ValueError, match=match):
        wilson_interval(successes, n)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(3, 10, confidence=np.nan)
