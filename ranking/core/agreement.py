"""Inter-rater agreement and reliability for PrefLab ratings.

Pure numpy/scipy functions (no Django import) that the ``ranking`` services call with arrays built
from stored judgments.  Every function either returns a well-defined number or raises ``ValueError``
saying why the statistic is undefined for the data; none returns NaN in place of an answer, except
where documented for "no data yet" cells of a vectorised helper (``wilson_interval``,
``majority_share``).

Array conventions (they follow the reference implementations, so take care):

* ``icc`` and ``likert_agreement_shares`` take ``ratings`` of shape ``(n_targets, n_raters)`` — one row
  per image, one column per rater (the layout of Shrout & Fleiss, 1979, Table 2).
* ``krippendorff_alpha``, ``gwet_ac1`` and ``percent_agreement`` take ``reliability_data`` of shape
  ``(n_raters, n_units)`` — one row per rater (the layout of Krippendorff, 2011, and of the
  ``krippendorff`` package).
* ``fleiss_kappa`` and ``majority_share`` take count tables ``(n_units, n_categories)``.

Missing ratings are ``NaN`` everywhere.

Functions
---------
icc                      six Shrout–Fleiss ICC forms with F-based 95 % CIs
krippendorff_alpha       nominal / ordinal / interval / ratio, missing data allowed
fleiss_kappa             Fleiss (1971) multi-rater kappa on a count table
cohen_kappa              Cohen (1960) kappa, unweighted / linear / quadratic (Cohen, 1968)
gwet_ac1                 Gwet (2008) AC1, multi-rater, missing data allowed
percent_agreement        mean share of agreeing rater pairs per unit
likert_agreement_shares  RichHF-style shares: perfect agreement and max − min ≤ 1
wilson_interval          Wilson (1927) score interval for proportions, vectorised
majority_share           share of the modal category per unit, vectorised

Benchmark (``python bench/bench_agreement.py``), 2026-11-22, machine: 2 cores, shared (timings
noisy; compare ratios within one run).  Long-format DataFrame build for pingouin is excluded from
its timing::

    python 3.11.7, numpy 2.4.6, pingouin 0.7.0
    pingouin timing excludes building its long-format DataFrame; best of repeats
    case                       method                         seconds    ratio        value    |diff|  <=1s
    -------------------------------------------------------------------------------------------------------
    ICC 18,000x3 (ICC2)        preflab icc                     0.0018    24.6x   0.43663240   1.7e-16  PASS
    ICC 18,000x3 (ICC2)        pingouin.intraclass_corr        0.0450     1.0x   0.43663240
    alpha ordinal 18,000x3     preflab krippendorff_alpha      0.0035     3.0x   0.53442035   0.0e+00  PASS
    alpha ordinal 18,000x3     krippendorff.alpha              0.0108     1.0x   0.53442035
    alpha ordinal 100,000x5    preflab krippendorff_alpha      0.0323     1.9x   0.52020568   4.6e-15
    alpha ordinal 100,000x5    krippendorff.alpha              0.0604     1.0x   0.52020568
    alpha interval 100,000x5   preflab krippendorff_alpha      0.0108     4.5x   0.52561009   3.1e-15
    alpha interval 100,000x5   krippendorff.alpha              0.0485     1.0x   0.52561009
    ratio = reference seconds / preflab seconds (higher is faster for preflab)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

__all__ = [
    "ICCForm",
    "ICCResult",
    "LikertAgreementShares",
    "cohen_kappa",
    "fleiss_kappa",
    "gwet_ac1",
    "icc",
    "krippendorff_alpha",
    "likert_agreement_shares",
    "majority_share",
    "percent_agreement",
    "wilson_interval",
]

# Ordinal and ratio alpha need a V × V distance matrix over the V distinct values.
_MAX_DOMAIN_FOR_MATRIX = 10_000
# Above this many cells (beyond 4 per value) the unit x value table is built sparsely with np.unique.
_DENSE_TABLE_SLACK = 1_000_000


# --------------------------------------------------------------------------------------------------
# Intraclass correlation
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ICCForm:
    """One intraclass correlation form with its F test and 95 % confidence interval.

    Attributes
    ----------
    value : float
        The ICC estimate.
    ci_low, ci_high : float
        Bounds of the 95 % confidence interval (F-based, Shrout & Fleiss 1979; McGraw & Wong 1996).
    f : float
        F statistic of the test that the ICC is zero (``inf`` when the error mean square is 0).
    df1, df2 : float
        Degrees of freedom of that F test.
    p : float
        Upper-tail p-value of the F test.
    """

    value: float
    ci_low: float
    ci_high: float
    f: float
    df1: float
    df2: float
    p: float


class ICCResult(dict):
    """Mapping ``{"ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"} -> ICCForm`` plus the sizes used.

    Attributes
    ----------
    n_targets : int
        Targets (rows) used, i.e. complete rows.
    n_raters : int
        Raters (columns).
    n_dropped : int
        Targets dropped because at least one rating was missing (listwise deletion).
    """

    def __init__(self, forms: dict[str, ICCForm], *, n_targets: int, n_raters: int, n_dropped: int):
        super().__init__(forms)
        self.n_targets = n_targets
        self.n_raters = n_raters
        self.n_dropped = n_dropped

    def __repr__(self) -> str:
        return (
            f"ICCResult({dict.__repr__(self)}, n_targets={self.n_targets}, "
            f"n_raters={self.n_raters}, n_dropped={self.n_dropped})"
        )


def icc(ratings, *, confidence: float = 0.95) -> ICCResult:
    r"""Intraclass correlation coefficients in the six Shrout & Fleiss (1979) forms.

    Parameters
    ----------
    ratings : array_like, shape (n_targets, n_raters)
        ``ratings[i, j]`` is rater *j*'s score of target *i*; ``NaN`` marks a missing rating.
    confidence : float, default 0.95
        Coverage of the confidence intervals.

    Returns
    -------
    ICCResult
        A ``dict`` subclass mapping ``"ICC1"``, ``"ICC2"``, ``"ICC3"``, ``"ICC1k"``, ``"ICC2k"``,
        ``"ICC3k"`` to :class:`ICCForm`; attributes ``n_targets``, ``n_raters`` and ``n_dropped``.

    Raises
    ------
    ValueError
        If ``ratings`` is not 2-D, holds infinities, fewer than 2 complete targets or fewer than
        2 raters remain, or the ratings have no variance at all (every ICC is 0/0).

    Notes
    -----
    **Missing data.** The two-way ANOVA needs a complete table, so every target with a missing
    rating is dropped (listwise deletion, as ``pingouin.intraclass_corr(nan_policy="omit")``) and the
    number dropped is reported in ``n_dropped``.  Check it: heavy deletion changes what is measured.

    With *n* targets, *k* raters, grand mean :math:`\bar x`, target means :math:`\bar x_{i\cdot}` and
    rater means :math:`\bar x_{\cdot j}`, the mean squares are

    .. math::

        MS_R = \frac{k\sum_i(\bar x_{i\cdot}-\bar x)^2}{n-1},\quad
        MS_C = \frac{n\sum_j(\bar x_{\cdot j}-\bar x)^2}{k-1},\quad
        MS_E = \frac{\sum_{ij}(x_{ij}-\bar x_{i\cdot}-\bar x_{\cdot j}+\bar x)^2}{(n-1)(k-1)},\quad
        MS_W = \frac{SS_C + SS_E}{n(k-1)}

    and

    The six forms (Shrout & Fleiss name / McGraw & Wong name: estimate; F test):

    * ``ICC1``  ICC(1,1) / ICC(1): :math:`(MS_R-MS_W)/(MS_R+(k-1)MS_W)`;
      :math:`F = MS_R/MS_W` on (n−1, n(k−1)) df.
    * ``ICC2``  ICC(2,1) / ICC(A,1): :math:`(MS_R-MS_E)/(MS_R+(k-1)MS_E+k(MS_C-MS_E)/n)`;
      :math:`F = MS_R/MS_E` on (n−1, (n−1)(k−1)) df.
    * ``ICC3``  ICC(3,1) / ICC(C,1): :math:`(MS_R-MS_E)/(MS_R+(k-1)MS_E)`; F as ICC2.
    * ``ICC1k`` ICC(1,k): :math:`(MS_R-MS_W)/MS_R`; F as ICC1.
    * ``ICC2k`` ICC(2,k) / ICC(A,k): :math:`(MS_R-MS_E)/(MS_R+(MS_C-MS_E)/n)`; F as ICC2.
    * ``ICC3k`` ICC(3,k) / ICC(C,k): :math:`(MS_R-MS_E)/MS_R`; F as ICC2.

    Confidence intervals: for forms 1 and 3, :math:`F_L = F/F_{1-\alpha/2}(df_1,df_2)`,
    :math:`F_U = F\,F_{1-\alpha/2}(df_2,df_1)`, bounds :math:`(F_*-1)/(F_*+k-1)` for single and
    :math:`1-1/F_*` for average measures.  Form 2 uses the Satterthwaite approximation of
    McGraw & Wong (1996, Table 7); its average-measure bounds are the Spearman–Brown step-up of the
    single-measure bounds.  These are the formulas of ``pingouin.intraclass_corr`` (whose CI95%
    column is rounded to two decimals by default); values, F, df and p agree with it to 1e-9.

    When :math:`MS_E = 0` (ratings differ between targets but every rater gives every target the
    same score, up to a per-rater offset for forms 2 and 3) F is infinite, p is 0 and the bounds are
    their limits as :math:`F\to\infty`.

    References
    ----------
    Shrout, P. E., & Fleiss, J. L. (1979). Intraclass correlations: uses in assessing rater
    reliability. *Psychological Bulletin*, 86(2), 420–428.
    McGraw, K. O., & Wong, S. P. (1996). Forming inferences about some intraclass correlation
    coefficients. *Psychological Methods*, 1(1), 30–46.
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"ratings must be 2-D (n_targets, n_raters), got shape {x.shape}")
    if np.isinf(x).any():
        raise ValueError("ratings contain infinite values")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    complete = ~np.isnan(x).any(axis=1)
    n_dropped = int((~complete).sum())
    x = x[complete]
    n, k = x.shape
    if k < 2:
        raise ValueError(f"ICC needs at least 2 raters, got {k}")
    if n < 2:
        raise ValueError(
            f"ICC needs at least 2 targets with complete ratings; {n} remain after dropping "
            f"{n_dropped} with missing ratings"
        )

    grand = x.mean()
    row_means = x.mean(axis=1)
    col_means = x.mean(axis=0)
    ss_rows = k * np.sum((row_means - grand) ** 2)
    ss_cols = n * np.sum((col_means - grand) ** 2)
    ss_err = np.sum((x - row_means[:, None] - col_means[None, :] + grand) ** 2)
    if ss_rows == 0 and ss_cols == 0 and ss_err == 0:
        raise ValueError("ratings have no variance (all equal); every ICC is 0/0 and undefined")

    df_rows = n - 1
    df_cols = k - 1
    df_err = (n - 1) * (k - 1)
    df_within = n * (k - 1)
    msr = ss_rows / df_rows
    msc = ss_cols / df_cols
    mse = ss_err / df_err
    msw = (ss_cols + ss_err) / df_within

    with np.errstate(divide="ignore", invalid="ignore"):
        icc1 = (msr - msw) / (msr + (k - 1) * msw)
        icc2 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
        icc3 = (msr - mse) / (msr + (k - 1) * mse)
        icc1k = (msr - msw) / msr
        icc2k = (msr - mse) / (msr + (msc - mse) / n)
        icc3k = (msr - mse) / msr
        f1 = msr / msw if msw > 0 else np.inf
        f3 = msr / mse if mse > 0 else np.inf
    if msr == 0:
        # Targets are indistinguishable (only raters differ): the average-measure forms divide by
        # MS_R = 0.  Refuse rather than report -inf.
        raise ValueError("ratings do not vary between targets (MS_R = 0); the ICC is undefined")
    p1 = float(stats.f.sf(f1, df_rows, df_within))
    p3 = float(stats.f.sf(f3, df_rows, df_err))

    tail = 1 - (1 - confidence) / 2
    l1, u1, l1k, u1k = _icc_ci_one_three(f1, df_rows, df_within, k, tail)
    l3, u3, l3k, u3k = _icc_ci_one_three(f3, df_rows, df_err, k, tail)
    l2, u2 = _icc2_ci(msr, msc, mse, icc2, n, k, tail)
    l2k = l2 * k / (1 + l2 * (k - 1))
    u2k = u2 * k / (1 + u2 * (k - 1))

    def form(value, lo, hi, f, df2, p):
        return ICCForm(float(value), float(lo), float(hi), float(f), float(df_rows), float(df2), p)

    forms = {
        "ICC1": form(icc1, l1, u1, f1, df_within, p1),
        "ICC2": form(icc2, l2, u2, f3, df_err, p3),
        "ICC3": form(icc3, l3, u3, f3, df_err, p3),
        "ICC1k": form(icc1k, l1k, u1k, f1, df_within, p1),
        "ICC2k": form(icc2k, l2k, u2k, f3, df_err, p3),
        "ICC3k": form(icc3k, l3k, u3k, f3, df_err, p3),
    }
    return ICCResult(forms, n_targets=n, n_raters=k, n_dropped=n_dropped)


def _icc_ci_one_three(f, df1, df2, k, tail):
    """CI bounds (single, single, average, average) for ICC forms 1 and 3 (Shrout & Fleiss, 1979)."""
    if np.isinf(f):
        return 1.0, 1.0, 1.0, 1.0
    f_low = f / stats.f.ppf(tail, df1, df2)
    f_up = f * stats.f.ppf(tail, df2, df1)
    return (
        (f_low - 1) / (f_low + (k - 1)),
        (f_up - 1) / (f_up + (k - 1)),
        1 - 1 / f_low,
        1 - 1 / f_up,
    )


def _icc2_ci(msr, msc, mse, icc2, n, k, tail):
    """CI for ICC(A,1) by the Satterthwaite approximation (McGraw & Wong, 1996, Table 7)."""
    if mse == 0:
        if msc == 0:
            return 1.0, 1.0
        v = float(k - 1)  # limit of the Satterthwaite df as MS_C / MS_E -> inf
    else:
        fj = msc / mse
        a = n * (1 + (k - 1) * icc2) - k * icc2
        vn = (n - 1) * (k - 1) * (k * icc2 * fj + a) ** 2
        vd = (n - 1) * k**2 * icc2**2 * fj**2 + a**2
        v = vn / vd
    f_up = stats.f.ppf(tail, n - 1, v)
    f_low = stats.f.ppf(tail, v, n - 1)
    denom = k * msc + (k * n - k - n) * mse
    low = n * (msr - f_up * mse) / (f_up * denom + n * msr)
    high = n * (f_low * msr - mse) / (denom + n * f_low * msr)
    return low, high


# --------------------------------------------------------------------------------------------------
# Krippendorff's alpha
# --------------------------------------------------------------------------------------------------

Level = Literal["nominal", "ordinal", "interval", "ratio"]


def krippendorff_alpha(reliability_data, level: Level = "nominal", *, value_domain=None) -> float:
    r"""Krippendorff's alpha for any number of raters, with missing data.

    Parameters
    ----------
    reliability_data : array_like of numbers, shape (n_raters, n_units)
        ``reliability_data[r, u]`` is rater *r*'s value for unit *u*; ``NaN`` marks a missing value.
    level : {"nominal", "ordinal", "interval", "ratio"}, default "nominal"
        Level of measurement, which selects the difference function :math:`\delta^2_{ck}`.
    value_domain : array_like, optional
        The possible values.  Every observed value must belong to it (else ``ValueError``).  For
        ``"ordinal"`` the ranks follow the order given here (default: sorted observed values); values
        that nobody used carry zero frequency and do not change alpha.  For the other levels it only
        validates the data.

    Returns
    -------
    float
        :math:`\alpha = 1 - D_o/D_e`.

    Raises
    ------
    ValueError
        Fewer than 2 raters; no unit with at least two values; no variation among the pairable
        values (:math:`D_e = 0`, alpha is 0/0); values outside ``value_domain``; negative values at
        the ratio level; infinite values.
    TypeError
        Non-numeric data (map labels to numbers first).

    Notes
    -----
    Coincidence-matrix method (Krippendorff, 2011).  Units with fewer than two values are not
    pairable and are ignored.  With :math:`n_{uc}` the number of values *c* in unit *u*,
    :math:`m_u = \sum_c n_{uc}` (only units with :math:`m_u \ge 2`), the coincidences are
    :math:`o_{ck} = \sum_u (n_{uc}n_{uk} - [c=k]\,n_{uc})/(m_u-1)`, with marginals
    :math:`n_c = \sum_k o_{ck}` and :math:`n = \sum_c n_c`, and

    .. math::

        \alpha = 1 - (n-1)\,\frac{\sum_{c,k} o_{ck}\,\delta^2_{ck}}{\sum_{c,k} n_c n_k\,\delta^2_{ck}}.

    Difference functions: nominal :math:`[c\ne k]`; ordinal
    :math:`(\sum_{g=c}^{k} n_g - (n_c+n_k)/2)^2`; interval :math:`(c-k)^2`; ratio
    :math:`((c-k)/(c+k))^2`.

    Everything is vectorised over units (no Python loop).  Nominal and interval alpha are computed
    from per-unit sums in :math:`O(N\log N)` for *N* values, whatever the number of distinct values;
    ordinal and ratio build a :math:`V\times V` matrix over the *V* distinct values (fine for rating
    scales; refused above 10,000 distinct values).  Agrees with ``krippendorff.alpha`` to ~1e-12.

    References
    ----------
    Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School for
    Communication, University of Pennsylvania. https://repository.upenn.edu/asc_papers/43
    Hayes, A. F., & Krippendorff, K. (2007). Answering the call for a standard reliability measure
    for coding data. *Communication Methods and Measures*, 1(1), 77–89.
    """
    if level not in ("nominal", "ordinal", "interval", "ratio"):
        raise ValueError(f"level must be nominal, ordinal, interval or ratio, got {level!r}")
    data = _as_float_matrix(reliability_data, "reliability_data")
    if data.shape[0] < 2:
        raise ValueError(f"alpha needs at least 2 raters, got {data.shape[0]}")
    observed = data[~np.isnan(data)]
    if value_domain is not None:
        domain = _as_float_vector(value_domain, "value_domain")
        if not np.isin(observed, domain).all():
            bad = np.setdiff1d(observed, domain)[:5]
            raise ValueError(f"reliability_data holds values outside value_domain, e.g. {bad.tolist()}")
    else:
        domain = None
    if level == "ratio" and (observed < 0).any():
        raise ValueError("ratio-level alpha needs non-negative values (a ratio scale has a true zero)")

    unit, values, m_u = _pairable_values(data)
    w_u = 1.0 / (m_u - 1)  # per pairable unit
    n = values.size

    if level == "interval":
        # sum_{i != j in u} (v_i - v_j)^2 = 2 m_u sum_i (v_i - mean_u)^2, and likewise over all n values.
        centred = values - values.mean()
        unit_mean = np.bincount(unit, weights=centred) / m_u
        ss_within = np.bincount(unit, weights=(centred - unit_mean[unit]) ** 2)
        observed_sum = np.sum(w_u * 2.0 * m_u * ss_within)
        expected_sum = 2.0 * n * np.sum((centred - centred.mean()) ** 2)
        return _alpha_from_sums(observed_sum, expected_sum, n)

    codes, uniq = _codes(values, domain if level == "ordinal" else None)
    n_codes = uniq.size
    g_unit, g_code, g_count = _unit_code_counts(unit, codes, n_codes)
    n_c = np.bincount(codes, minlength=n_codes).astype(float)

    if level == "nominal":
        # sum_{c != k} o_ck = sum_u w_u (m_u^2 - sum_c n_uc^2);  sum_{c != k} n_c n_k = n^2 - sum n_c^2
        same = np.bincount(g_unit, weights=g_count.astype(float) ** 2, minlength=m_u.size)
        observed_sum = np.sum(w_u * (m_u.astype(float) ** 2 - same))
        expected_sum = float(n) ** 2 - np.sum(n_c**2)
        return _alpha_from_sums(observed_sum, expected_sum, n)

    if n_codes > _MAX_DOMAIN_FOR_MATRIX:
        raise ValueError(
            f"{level} alpha builds a V x V matrix; {n_codes} distinct values exceed the limit of "
            f"{_MAX_DOMAIN_FOR_MATRIX}"
        )
    # Coincidence matrix o = sum_u w_u n_u n_u^T - diag(sum_u w_u n_u) from the unit x value table
    # (dense when small, sparse otherwise).
    if m_u.size * n_codes <= 4 * n + _DENSE_TABLE_SLACK:
        table = np.zeros((m_u.size, n_codes))
        table[g_unit, g_code] = g_count
        weighted = table * w_u[:, None]
        o = weighted.T @ table - np.diag(weighted.sum(axis=0))
    else:
        from scipy import sparse

        table = sparse.csr_matrix((g_count.astype(float), (g_unit, g_code)), shape=(m_u.size, n_codes))
        weighted = table.multiply(w_u[:, None]).tocsr()
        o = (table.T @ weighted).toarray() - np.diag(np.asarray(weighted.sum(axis=0)).ravel())
    if level == "ordinal":
        cum = np.cumsum(n_c)
        idx = np.arange(n_codes)
        lo = np.minimum(idx[:, None], idx[None, :])
        hi = np.maximum(idx[:, None], idx[None, :])
        between = cum[hi] - cum[lo] + n_c[lo]
        delta = (between - (n_c[lo] + n_c[hi]) / 2.0) ** 2
    else:  # ratio
        c, k = uniq[:, None], uniq[None, :]
        total = c + k
        delta = np.divide(c - k, total, out=np.zeros((n_codes, n_codes)), where=total != 0) ** 2
    observed_sum = np.sum(o * delta)
    expected_sum = np.sum(np.outer(n_c, n_c) * delta)
    return _alpha_from_sums(observed_sum, expected_sum, n)


def _alpha_from_sums(observed_sum: float, expected_sum: float, n: int) -> float:
    if expected_sum <= 0:
        raise ValueError(
            "no variation among the pairable values (expected disagreement D_e = 0); alpha is 0/0 "
            "and undefined"
        )
    return float(1.0 - (n - 1) * observed_sum / expected_sum)


def _as_float_matrix(data, name: str) -> np.ndarray:
    arr = np.asarray(data)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric (NaN for missing); got dtype {arr.dtype}")
    arr = arr.astype(float)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_raters, n_units), got shape {arr.shape}")
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains infinite values")
    return arr


def _as_float_vector(data, name: str) -> np.ndarray:
    arr = np.asarray(data)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr.astype(float).ravel()


def _pairable_values(data: np.ndarray):
    """Values of units with at least two ratings, in unit-major order.

    Returns ``(unit, values, m_u)``: the pairable-unit index of each value (0..U-1), the values,
    and the number of values in each pairable unit.
    """
    valid = ~np.isnan(data)
    counts = valid.sum(axis=0)
    keep = counts >= 2
    if not keep.any():
        raise ValueError("no unit has values from at least two raters; agreement is undefined")
    valid_t = np.ascontiguousarray(valid[:, keep].T)
    values = np.ascontiguousarray(data[:, keep].T)[valid_t]
    m_u = counts[keep]
    unit = np.repeat(np.arange(m_u.size), m_u)
    return unit, values, m_u


def _codes(values: np.ndarray, domain: np.ndarray | None):
    """Integer codes of ``values``; ranks follow ``domain`` order when given, else sorted order."""
    if domain is None:
        low, high = values.min(), values.max()
        span = high - low
        if span <= 4 * values.size + _DENSE_TABLE_SLACK and np.array_equal(values, np.round(values)):
            # Integer ratings (e.g. Likert): O(N) coding with a lookup table instead of a sort.
            offset = (values - low).astype(np.int64)
            used = np.bincount(offset, minlength=int(span) + 1) > 0
            lookup = np.cumsum(used) - 1
            return lookup[offset], np.flatnonzero(used) + low
        uniq, codes = np.unique(values, return_inverse=True)
        return codes.ravel(), uniq
    order = np.argsort(domain, kind="stable")
    pos = np.searchsorted(domain[order], values)
    return order[pos], domain


def _unit_code_counts(unit: np.ndarray, codes: np.ndarray, n_codes: int):
    """Sparse (unit, code, count) triplets of the unit x value count table."""
    key = unit.astype(np.int64) * n_codes + codes
    n_units = int(unit[-1]) + 1
    if n_units * n_codes <= 4 * key.size + _DENSE_TABLE_SLACK:
        dense = np.bincount(key, minlength=n_units * n_codes)
        nz = np.flatnonzero(dense)
        return nz // n_codes, nz % n_codes, dense[nz]
    uniq, cnt = np.unique(key, return_counts=True)
    return uniq // n_codes, uniq % n_codes, cnt


# --------------------------------------------------------------------------------------------------
# Kappas, AC1, percent agreement
# --------------------------------------------------------------------------------------------------


def fleiss_kappa(counts) -> float:
    r"""Fleiss' kappa for a fixed number of raters per unit.

    Parameters
    ----------
    counts : array_like of non-negative integers, shape (n_units, n_categories)
        ``counts[i, j]`` is how many raters put unit *i* in category *j*.  Every row must sum to
        the same number of raters *m* ≥ 2.

    Returns
    -------
    float
        :math:`\kappa = (\bar P - P_e)/(1 - P_e)` with
        :math:`P_i = (\sum_j n_{ij}^2 - m)/(m(m-1))`, :math:`\bar P = \operatorname{mean}_i P_i`,
        :math:`p_j = \sum_i n_{ij}/(N m)`, :math:`P_e = \sum_j p_j^2`.

    Raises
    ------
    ValueError
        Rows with different totals (use :func:`krippendorff_alpha` or :func:`gwet_ac1` for unequal
        numbers of raters), fewer than 2 raters per unit, negative or non-integer counts, or every
        rating in one category (:math:`P_e = 1`, kappa is 0/0).

    References
    ----------
    Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters. *Psychological
    Bulletin*, 76(5), 378–382.  Matches ``statsmodels.stats.inter_rater.fleiss_kappa``.
    """
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2 or table.shape[0] < 1:
        raise ValueError(f"counts must be a 2-D (n_units, n_categories) table, got shape {table.shape}")
    if (table < 0).any() or not np.all(np.isfinite(table)) or not np.all(table == np.round(table)):
        raise ValueError("counts must be finite non-negative integers")
    totals = table.sum(axis=1)
    if not np.all(totals == totals[0]):
        raise ValueError(
            f"Fleiss' kappa needs the same number of raters per unit; row totals range from "
            f"{totals.min():g} to {totals.max():g}"
        )
    m = totals[0]
    if m < 2:
        raise ValueError(f"Fleiss' kappa needs at least 2 raters per unit, got {m:g}")
    n_units = table.shape[0]
    p_j = table.sum(axis=0) / (n_units * m)
    p_e = np.sum(p_j**2)
    p_bar = np.mean((np.sum(table**2, axis=1) - m) / (m * (m - 1)))
    if np.isclose(p_e, 1.0, rtol=0, atol=1e-15):
        raise ValueError("every rating is in one category (P_e = 1); Fleiss' kappa is undefined")
    return float((p_bar - p_e) / (1 - p_e))


def cohen_kappa(a, b, weights: Literal["linear", "quadratic"] | None = None) -> float:
    r"""Cohen's kappa for two raters, optionally weighted.

    Parameters
    ----------
    a, b : array_like, shape (n_units,)
        The two raters' labels for the same units.  No missing values (drop incomplete pairs first).
    weights : {None, "linear", "quadratic"}
        ``None``: unweighted kappa; labels may be any sortable values (numbers or strings).
        ``"linear"`` / ``"quadratic"``: weighted kappa; labels must be numbers on an ordered scale.

    Returns
    -------
    float
        :math:`\kappa = 1 - \sum_{ij} w_{ij} p_{ij} / \sum_{ij} w_{ij} p_{i\cdot} p_{\cdot j}` where
        :math:`p` is the joint distribution of (a, b) over the categories and :math:`w` the
        disagreement weights.  Unweighted: :math:`w_{ij} = [i \ne j]`, which is
        :math:`(p_o - p_e)/(1 - p_e)`.

    Raises
    ------
    ValueError
        Different lengths, empty input, missing labels (NaN or None), labels that cannot be
        compared with each other, non-numeric labels with weights, or
        :math:`p_e = 1` (both raters used one and the same category only; kappa is 0/0).

    Notes
    -----
    Categories are the sorted union of the labels both raters used.  **Weights use the numeric
    distance between category values**: linear :math:`|x_i - x_j|`, quadratic
    :math:`(x_i - x_j)^2` (kappa is invariant to scaling the weights).  For labels that are
    consecutive integers this is the same as index-based weights (``sklearn.metrics.
    cohen_kappa_score(weights=...)``, statsmodels ``wt="linear"`` / ``"quadratic"``); when a
    level of the scale is unused by both raters (e.g. labels {1, 2, 5}) the numeric distance is
    kept, which equals sklearn's result with ``labels=`` the full scale.

    References
    ----------
    Cohen, J. (1960). A coefficient of agreement for nominal scales. *Educational and Psychological
    Measurement*, 20(1), 37–46.
    Cohen, J. (1968). Weighted kappa. *Psychological Bulletin*, 70(4), 213–220.
    """
    if weights not in (None, "linear", "quadratic"):
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"a and b must be 1-D of equal length, got shapes {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("a and b are empty")
    for name, arr in (("a", a), ("b", b)):
        if arr.dtype.kind == "f" and np.isnan(arr).any():
            raise ValueError(f"cohen_kappa does not accept missing labels (NaN in {name}); drop incomplete pairs")
        if arr.dtype.kind == "O" and any(v is None or (isinstance(v, float) and v != v) for v in arr):
            raise ValueError(
                f"cohen_kappa does not accept missing labels (None or NaN in {name}); drop incomplete pairs"
            )
    both = np.concatenate([a, b])
    if weights is not None and both.dtype.kind not in "biuf":
        raise ValueError("weighted kappa needs numeric, ordered labels")
    try:
        cats, inv = np.unique(both, return_inverse=True)
    except TypeError as exc:  # e.g. numbers mixed with strings in an object array
        raise ValueError(f"the labels in a and b must be mutually comparable values: {exc}") from None
    inv = inv.ravel()
    k = cats.size
    joint = np.bincount(inv[: a.size] * k + inv[a.size :], minlength=k * k).reshape(k, k) / a.size
    if weights is None:
        w = 1.0 - np.eye(k)
    else:
        diff = np.abs(cats.astype(float)[:, None] - cats.astype(float)[None, :])
        w = diff if weights == "linear" else diff**2
    expected = np.outer(joint.sum(axis=1), joint.sum(axis=0))
    denom = np.sum(w * expected)
    if denom <= 0:
        raise ValueError("both raters used the same single category (p_e = 1); kappa is undefined")
    return float(1.0 - np.sum(w * joint) / denom)


def _nominal_unit_counts(reliability_data):
    """(unit x category) counts of a (n_raters, n_units) nominal matrix, units with >= 1 rating."""
    data = _as_float_matrix(reliability_data, "reliability_data")
    valid = ~np.isnan(data)
    counts = valid.sum(axis=0)
    keep = counts >= 1
    values = data[:, keep].T[valid[:, keep].T]
    r_i = counts[keep]
    unit = np.repeat(np.arange(r_i.size), r_i)
    cats, codes = np.unique(values, return_inverse=True)
    table = np.zeros((r_i.size, cats.size))
    np.add.at(table, (unit, codes.ravel()), 1.0)
    return table, r_i.astype(float), cats


def _pair_agreement(table: np.ndarray, r_i: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean share of agreeing ordered rater pairs over units with >= 2 ratings, and that mask."""
    two = r_i >= 2
    if not two.any():
        raise ValueError("no unit has ratings from at least two raters; agreement is undefined")
    t, r = table[two], r_i[two]
    share = np.sum(t * (t - 1), axis=1) / (r * (r - 1))
    return float(share.mean()), two


def percent_agreement(reliability_data) -> float:
    r"""Observed agreement: the mean over units of the share of rater pairs that agree.

    Parameters
    ----------
    reliability_data : array_like of numbers, shape (n_raters, n_units)
        Nominal labels, ``NaN`` for missing.

    Returns
    -------
    float
        :math:`p_a = \frac{1}{n'}\sum_{i: r_i \ge 2} \sum_k r_{ik}(r_{ik}-1) / (r_i(r_i-1))` where
        :math:`r_{ik}` is the number of raters putting unit *i* in category *k*, :math:`r_i` the
        number of ratings of unit *i* and :math:`n'` the number of units with at least two ratings.
        Units with fewer than two ratings are ignored.  For two raters with complete data this is
        the fraction of units on which they agree.  Each unit weighs the same whatever its number of
        raters (this is Gwet's (2008, 2014) :math:`p_a`).

    Raises
    ------
    ValueError
        No unit has two or more ratings; fewer than 2 raters; non-numeric data.
    """
    table, r_i, _ = _nominal_unit_counts(_check_raters(reliability_data))
    p_a, _ = _pair_agreement(table, r_i)
    return p_a


def gwet_ac1(reliability_data) -> float:
    r"""Gwet's AC1 for nominal ratings from any number of raters, missing data allowed.

    Parameters
    ----------
    reliability_data : array_like of numbers, shape (n_raters, n_units)
        Nominal labels, ``NaN`` for missing (same layout as :func:`krippendorff_alpha`).

    Returns
    -------
    float
        :math:`AC_1 = (p_a - p_e)/(1 - p_e)` with :math:`p_a` as in :func:`percent_agreement`
        (units with at least two ratings), and

        .. math::

            p_e = \frac{1}{q-1}\sum_k \pi_k(1-\pi_k), \qquad
            \pi_k = \frac{1}{n}\sum_{i: r_i \ge 1} \frac{r_{ik}}{r_i},

        where *q* is the number of categories used and *n* the number of units with at least one
        rating (units nobody rated are excluded).  For two raters and two categories this reduces to
        :math:`p_e = 2\pi(1-\pi)` with :math:`\pi` the mean of the raters' "yes" rates.

    Raises
    ------
    ValueError
        Fewer than 2 raters; no unit with two ratings; only one category used (:math:`q = 1`, AC1
        is undefined).

    References
    ----------
    Gwet, K. L. (2008). Computing inter-rater reliability and its variance in the presence of high
    agreement. *British Journal of Mathematical and Statistical Psychology*, 61(1), 29–48.
    Gwet, K. L. (2014). *Handbook of Inter-Rater Reliability* (4th ed.), ch. 4 (missing ratings);
    as implemented by ``gwet.ac1.raw`` in the R package irrCAC.
    """
    table, r_i, cats = _nominal_unit_counts(_check_raters(reliability_data))
    p_a, _ = _pair_agreement(table, r_i)
    q = cats.size
    if q < 2:
        raise ValueError("only one category was used; AC1 is undefined (p_e has q - 1 = 0 in it)")
    pi = np.mean(table / r_i[:, None], axis=0)
    p_e = np.sum(pi * (1 - pi)) / (q - 1)
    return float((p_a - p_e) / (1 - p_e))


def _check_raters(reliability_data):
    data = _as_float_matrix(reliability_data, "reliability_data")
    if data.shape[0] < 2:
        raise ValueError(f"agreement needs at least 2 raters, got {data.shape[0]}")
    return data


# --------------------------------------------------------------------------------------------------
# Likert shares, proportions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LikertAgreementShares:
    """RichHF-style agreement shares for one Likert dimension.

    Attributes
    ----------
    perfect : float
        Share of counted targets where all raters gave the same score.
    within_one : float
        Share of counted targets where max − min ≤ 1.
    n_targets : int
        Targets counted (those with at least two ratings).
    n_excluded : int
        Targets with fewer than two ratings, left out.
    """

    perfect: float
    within_one: float
    n_targets: int
    n_excluded: int


def likert_agreement_shares(ratings) -> LikertAgreementShares:
    r"""Share of targets with perfect agreement and with max − min ≤ 1 (RichHF-18K style).

    Parameters
    ----------
    ratings : array_like, shape (n_targets, n_raters)
        Scores (e.g. Likert 1–5), one row per target, ``NaN`` for missing.

    Returns
    -------
    LikertAgreementShares
        ``perfect`` = :math:`\frac{1}{T}\#\{i: \max_j x_{ij} = \min_j x_{ij}\}`,
        ``within_one`` = :math:`\frac{1}{T}\#\{i: \max_j x_{ij} - \min_j x_{ij} \le 1\}`, over the
        *T* targets with at least two ratings (missing ratings ignored).

    Raises
    ------
    ValueError
        Not 2-D, or no target has two ratings.

    References
    ----------
    Liang, Y. et al. (2024). Rich human feedback for text-to-image generation. CVPR 2024 (RichHF-18K
    reports the share of images whose raters' scores differ by at most one point).
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"ratings must be 2-D (n_targets, n_raters), got shape {x.shape}")
    if np.isinf(x).any():
        raise ValueError("ratings contain infinite values")
    counted = (~np.isnan(x)).sum(axis=1) >= 2
    t = int(counted.sum())
    if t == 0:
        raise ValueError("no target has at least two ratings")
    rows = x[counted]
    spread = np.nanmax(rows, axis=1) - np.nanmin(rows, axis=1)
    return LikertAgreementShares(
        perfect=float(np.mean(spread == 0)),
        within_one=float(np.mean(spread <= 1)),
        n_targets=t,
        n_excluded=int(x.shape[0] - t),
    )


def wilson_interval(successes, n, confidence: float = 0.95):
    r"""Wilson score interval for a binomial proportion, vectorised.

    Parameters
    ----------
    successes, n : array_like of int
        Successes and trials (broadcast together); ``0 <= successes <= n``.
    confidence : float, default 0.95

    Returns
    -------
    (low, high) : tuple of float or ndarray
        With :math:`\hat p = s/n` and :math:`z = \Phi^{-1}(1 - (1-\text{confidence})/2)`,

        .. math::

            \frac{\hat p + z^2/(2n) \pm z\sqrt{\hat p(1-\hat p)/n + z^2/(4n^2)}}{1 + z^2/n}.

        Where ``n == 0`` both bounds are ``NaN`` (no trials, no estimate).  Scalars in, floats out.

    Raises
    ------
    ValueError
        NaN or infinite counts, negative counts, ``successes > n``, or ``confidence`` outside (0, 1).

    References
    ----------
    Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference.
    *JASA*, 22(158), 209–212.  Matches ``statsmodels.stats.proportion.proportion_confint(
    method="wilson")``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    s = np.asarray(successes, dtype=float)
    t = np.asarray(n, dtype=float)
    for name, arr in (("successes", s), ("n", t)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite counts (no NaN or inf)")
    if np.any(s < 0) or np.any(t < 0):
        raise ValueError("successes and n must be non-negative")
    if np.any(s > t):
        raise ValueError("successes cannot exceed n")
    z = stats.norm.ppf(1 - (1 - confidence) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = s / t
        denom = 1 + z**2 / t
        centre = (p + z**2 / (2 * t)) / denom
        half = z * np.sqrt(p * (1 - p) / t + z**2 / (4 * t**2)) / denom
        low = np.where(t > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
        high = np.where(t > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def majority_share(counts):
    r"""Share of the votes that went to the most chosen category, per unit.

    Parameters
    ----------
    counts : array_like of non-negative numbers, shape (n_categories,) or (n_units, n_categories)
        Votes per category (e.g. left / right / tie for a pairwise task).

    Returns
    -------
    float or ndarray, shape (n_units,)
        :math:`\max_k c_{ik} / \sum_k c_{ik}`; ``NaN`` for a unit with no votes.  Ranges from
        :math:`1/K` (even split over *K* categories) to 1 (unanimous).

    Raises
    ------
    ValueError
        Negative counts or an empty category axis.
    """
    c = np.asarray(counts, dtype=float)
    if c.ndim not in (1, 2) or c.shape[-1] == 0:
        raise ValueError(f"counts must be (n_categories,) or (n_units, n_categories), got {c.shape}")
    if np.any(c < 0):
        raise ValueError("counts must be non-negative")
    total = c.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, c.max(axis=-1) / total, np.nan)
    return float(share) if share.ndim == 0 else share
