"""Per-rater quality flags: position bias, answers too fast, straight-lining on Likert scores.

Pure numpy/scipy (no Django import). The annotator app counts each rater's answers and calls
:func:`rater_quality_flags`; the raters page, its CSV and the agreement report show the flags.
A flag is a prompt to look, never an automatic verdict: a researcher decides whether to leave a rater
out of the fits and statistics (and can take the decision back).

Functions
---------
position_bias        per rater: exact two-sided binomial test of left picks against ½, Holm-corrected
                     across the raters tested
holm_adjust          Holm (1979) step-down adjusted p-values
too_fast_share       one rater's answers: how many were faster than a threshold
straight_lining      one rater's Likert answers: how often every dimension got the same score
rater_quality_flags  combine the three into one :class:`RaterQuality` per rater, with reasons

Why a binomial test of left picks is valid: the side each image is shown on is drawn at random per
assignment, independently of the images, so whatever a rater prefers, a rater without a side
preference picks the left image of a decisive answer (not a tie) with probability exactly ½. Left picks
out of ``n`` decisive answers are then Binomial(n, ½) under the null hypothesis of no position bias.
Answers to repeat assignments (a pair re-shown with its sides swapped, not re-drawn) must be left out
by the caller.

Multiple testing: a project has many raters, and at α = 0.05 one fair rater in twenty would be flagged
by chance. The p-values are adjusted with **Holm's** step-down method, which controls the family-wise
error rate (the chance of flagging *any* fair rater) at ``alpha``, rather than Benjamini–Hochberg's
false discovery rate: a flag is about a person and may lead to leaving their work out, so a false flag
costs more than a missed one. The family is the raters with at least ``min_decisive`` decisive answers
(raters with fewer are not tested, so they do not dilute the others' power). A significant deviation
is flagged only when it is also large (``|left share − ½| ≥ min_left_effect``): with thousands of
answers a 52 % left rate is significant and harmless.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "Flag",
    "PositionBias",
    "QualityThresholds",
    "RaterQuality",
    "StraightLining",
    "holm_adjust",
    "position_bias",
    "rater_quality_flags",
    "straight_lining",
    "too_fast_share",
]


@dataclass(frozen=True)
class QualityThresholds:
    """When a rater is flagged. The defaults are project-independent and documented on the raters page.

    Attributes
    ----------
    alpha : float
        Family-wise error rate of the position-bias tests (Holm), default 0.05.
    min_decisive : int
        Decisive (non-tie) pairwise answers a rater needs before being tested for position bias (10).
    min_left_effect : float
        Smallest ``|left share − ½|`` flagged, however small the p-value (0.10: a left share outside
        40–60 %).
    too_fast_ms : float
        An answer given in less than this many milliseconds is too fast to have looked at two images
        (800 ms).
    max_fast_share : float
        Flag a rater when more than this share of their timed answers was too fast (0.20).
    min_timed : int
        Timed answers a rater needs before the too-fast share is judged (10).
    max_identical_share : float
        Flag a rater when at least this share of their Likert answers gave every dimension the same
        score (0.80) …
    min_identical_excess : float
        … and that share exceeds the population's (all raters' answers pooled) by at least this much
        (0.20), so that a project whose dimensions all move together does not flag everyone.
    min_likert_answers : int
        Likert answers (with two or more dimensions scored) a rater needs before straight-lining is
        judged (10).
    """

    alpha: float = 0.05
    min_decisive: int = 10
    min_left_effect: float = 0.10
    too_fast_ms: float = 800.0
    max_fast_share: float = 0.20
    min_timed: int = 10
    max_identical_share: float = 0.80
    min_identical_excess: float = 0.20
    min_likert_answers: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be in (0, 1).")
        for name in ("min_decisive", "min_timed", "min_likert_answers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1.")
        for name in ("min_left_effect", "max_fast_share", "max_identical_share", "min_identical_excess"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1].")
        if self.too_fast_ms <= 0:
            raise ValueError("too_fast_ms must be positive.")

    @property
    def left_share_band(self) -> tuple[float, float]:
        """The left shares not flagged however small their p-value: ½ ± ``min_left_effect``."""
        return 0.5 - self.min_left_effect, 0.5 + self.min_left_effect


DEFAULT_THRESHOLDS = QualityThresholds()


# ------------------------------------------------------------------------------------------------
# Position bias
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PositionBias:
    """Per rater (index ``0..n_raters-1``): the position-bias test. Every array is NaN-free.

    Attributes
    ----------
    left_picks, n_decisive : numpy.ndarray of int, shape (n_raters,)
        The inputs.
    left_share : numpy.ndarray of float
        ``left_picks / n_decisive``; 0.5 (no evidence either way) where ``n_decisive == 0``.
    p_value : numpy.ndarray of float
        Exact two-sided binomial p-value against ½ (:func:`scipy.stats.binomtest`); 1.0 for raters not
        tested.
    p_adjusted : numpy.ndarray of float
        Holm-adjusted p-value within the family of tested raters; 1.0 for raters not tested.
    tested : numpy.ndarray of bool
        ``n_decisive >= min_decisive``.
    flagged : numpy.ndarray of bool
        Tested, ``p_adjusted < alpha`` and ``|left_share − ½| >= min_left_effect``.
    """

    left_picks: np.ndarray
    n_decisive: np.ndarray
    left_share: np.ndarray
    p_value: np.ndarray
    p_adjusted: np.ndarray
    tested: np.ndarray
    flagged: np.ndarray


def holm_adjust(p_values) -> np.ndarray:
    r"""Holm's step-down adjusted p-values.

    With the m p-values sorted, :math:`p_{(1)} \le \dots \le p_{(m)}`, the adjusted value of the j-th is
    :math:`\max_{i \le j} \min\{1, (m - i + 1)\, p_{(i)}\}`; rejecting where the adjusted value is below
    α controls the family-wise error rate at α under any dependence (Holm 1979). Returned in the input
    order; an empty input gives an empty array.
    """
    p = np.asarray(p_values, dtype=float).ravel()
    if p.size == 0:
        return p.copy()
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p-values must be in [0, 1] (no NaN).")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    adjusted = np.minimum(1.0, np.maximum.accumulate(scaled))
    out = np.empty(m)
    out[order] = adjusted
    return out


def position_bias(left_picks, n_decisive, *, alpha: float = DEFAULT_THRESHOLDS.alpha,
                  min_decisive: int = DEFAULT_THRESHOLDS.min_decisive,
                  min_left_effect: float = DEFAULT_THRESHOLDS.min_left_effect) -> PositionBias:
    """Test each rater's left picks against ½ and correct across raters (Holm).

    Parameters
    ----------
    left_picks : array_like of int, shape (n_raters,)
        Decisive answers in which the rater picked the image shown on the left.
    n_decisive : array_like of int, shape (n_raters,)
        Decisive answers (left or right; ties and repeats left out).
    alpha : float
        Family-wise error rate across the tested raters.
    min_decisive : int
        Raters with fewer decisive answers are not tested (and not in the family).
    min_left_effect : float
        Smallest deviation of the left share from ½ that is flagged.

    Returns
    -------
    PositionBias
    """
    k = np.asarray(left_picks, dtype=np.int64).ravel()
    n = np.asarray(n_decisive, dtype=np.int64).ravel()
    if k.shape != n.shape:
        raise ValueError("left_picks and n_decisive must have the same length.")
    if (k < 0).any() or (k > n).any():
        raise ValueError("left_picks must be between 0 and n_decisive.")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1).")
    if min_decisive < 1:
        raise ValueError("min_decisive must be at least 1.")
    share = np.where(n > 0, k / np.maximum(n, 1), 0.5)
    tested = n >= min_decisive
    p_value = np.ones(n.size)
    for r in np.flatnonzero(tested):
        p_value[r] = stats.binomtest(int(k[r]), int(n[r]), 0.5, alternative="two-sided").pvalue
    p_value = np.clip(p_value, 0.0, 1.0)
    p_adjusted = np.ones(n.size)
    p_adjusted[tested] = holm_adjust(p_value[tested])
    flagged = tested & (p_adjusted < alpha) & (np.abs(share - 0.5) >= min_left_effect - 1e-12)
    return PositionBias(left_picks=k, n_decisive=n, left_share=share, p_value=p_value, p_adjusted=p_adjusted,
                        tested=tested, flagged=flagged)


# ------------------------------------------------------------------------------------------------
# Response times, Likert straight-lining
# ------------------------------------------------------------------------------------------------


def too_fast_share(response_times_ms, threshold_ms: float = DEFAULT_THRESHOLDS.too_fast_ms) -> tuple[int, int, float]:
    """One rater's answers: ``(n_fast, n_timed, share)``.

    ``response_times_ms`` are milliseconds from showing to answering; NaN (or None) marks an answer
    without a time, which is not counted. An answer is too fast when its time is strictly below
    ``threshold_ms``. ``share = n_fast / n_timed``, 0.0 when no answer was timed (nothing to judge).
    """
    times = np.asarray([np.nan if t is None else t for t in np.ravel(response_times_ms)], dtype=float)
    timed = times[~np.isnan(times)]
    n_timed = int(timed.size)
    n_fast = int((timed < threshold_ms).sum())
    return n_fast, n_timed, (n_fast / n_timed if n_timed else 0.0)


@dataclass(frozen=True)
class StraightLining:
    """One rater's Likert answers.

    Attributes
    ----------
    n_answers : int
        Answers with two or more dimensions scored (only those can straight-line).
    n_identical : int
        Of those, the answers that gave every scored dimension the same value.
    share : float
        ``n_identical / n_answers``; 0.0 when ``n_answers == 0``.
    sd : float or None
        Standard deviation (ddof 0) of all the rater's scores, every dimension and answer pooled; None
        with fewer than two scores. A rater who always answers "3" has sd 0.
    """

    n_answers: int
    n_identical: int
    share: float
    sd: float | None


def straight_lining(scores) -> StraightLining:
    """Straight-lining of one rater: how often an answer scored every Likert dimension the same.

    Parameters
    ----------
    scores : array_like of float, shape (n_answers, n_dimensions)
        One row per answer, one column per Likert dimension (1–5); NaN where the dimension was not
        scored. Rows with fewer than two scored dimensions count for ``sd`` but not for ``share``.
    """
    arr = np.asarray(scores, dtype=float)
    if arr.size == 0:
        return StraightLining(n_answers=0, n_identical=0, share=0.0, sd=None)
    if arr.ndim != 2:
        raise ValueError("scores must be a 2-D array: one row per answer, one column per dimension.")
    scored = ~np.isnan(arr)
    n_scored = scored.sum(axis=1)
    eligible = n_scored >= 2
    with np.errstate(invalid="ignore"):
        high = np.where(scored, arr, -np.inf).max(axis=1)
        low = np.where(scored, arr, np.inf).min(axis=1)
    identical = eligible & (high == low)
    n_answers, n_identical = int(eligible.sum()), int(identical.sum())
    values = arr[scored]
    sd = float(values.std()) if values.size >= 2 else None
    return StraightLining(n_answers=n_answers, n_identical=n_identical,
                          share=n_identical / n_answers if n_answers else 0.0, sd=sd)


# ------------------------------------------------------------------------------------------------
# Combining
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """One reason to look at a rater: ``code`` (``position_bias``, ``too_fast``, ``straight_lining``),
    a ``label``, a short ``summary`` with the key numbers (for a badge) and ``detail`` with all of them."""

    code: str
    label: str
    summary: str
    detail: str


@dataclass(frozen=True)
class RaterQuality:
    """One rater's quality figures and flags (None where there is nothing to measure)."""

    n_decisive: int
    left_picks: int
    left_share: float | None
    position_p: float | None  # exact two-sided binomial p; None when not tested
    position_p_adjusted: float | None  # Holm-adjusted across the tested raters
    n_timed: int
    n_fast: int
    fast_share: float | None
    n_likert: int
    n_identical: int
    identical_share: float | None
    likert_sd: float | None
    flags: tuple[Flag, ...]

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def flag_codes(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.flags)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f"{f.label}: {f.detail}" for f in self.flags)


def _p_text(p: float) -> str:
    return f"{p:.2g}"


def _percent(x: float) -> str:
    return f"{100 * x:.0f}%"


def rater_quality_flags(*, left_picks, n_decisive, n_fast, n_timed, n_likert=None, n_identical=None,
                        likert_sd=None, thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> list[RaterQuality]:
    """Every rater's figures and flags, with human-readable reasons.

    Parameters
    ----------
    left_picks, n_decisive : array_like of int, shape (n_raters,)
        Pairwise decisive answers (repeats and ties left out) and how many picked the left image.
    n_fast, n_timed : array_like of int, shape (n_raters,)
        Timed pairwise answers and how many were faster than ``thresholds.too_fast_ms``
        (see :func:`too_fast_share`).
    n_likert, n_identical : array_like of int, shape (n_raters,), optional
        Likert answers with ≥ 2 dimensions scored and how many scored every dimension the same
        (see :func:`straight_lining`); all zero when omitted.
    likert_sd : sequence of float or None, optional
        Each rater's SD of scores (reported, not flagged on).
    thresholds : QualityThresholds

    Returns
    -------
    list of RaterQuality, in the raters' order.

    Notes
    -----
    Flags: *position bias* (:func:`position_bias` with ``thresholds``); *too fast* (at least
    ``min_timed`` timed answers and more than ``max_fast_share`` of them under ``too_fast_ms``);
    *straight-lining* (at least ``min_likert_answers`` Likert answers, a share of identical-score
    answers of at least ``max_identical_share``, and at least ``min_identical_excess`` above the pooled
    share of all raters).
    """
    t = thresholds
    bias = position_bias(left_picks, n_decisive, alpha=t.alpha, min_decisive=t.min_decisive,
                         min_left_effect=t.min_left_effect)
    n_raters = bias.n_decisive.size
    fast = np.asarray(n_fast, dtype=np.int64).ravel()
    timed = np.asarray(n_timed, dtype=np.int64).ravel()
    likert = np.zeros(n_raters, np.int64) if n_likert is None else np.asarray(n_likert, dtype=np.int64).ravel()
    same = np.zeros(n_raters, np.int64) if n_identical is None else np.asarray(n_identical, dtype=np.int64).ravel()
    sds = [None] * n_raters if likert_sd is None else list(likert_sd)
    for name, arr in (("n_fast", fast), ("n_timed", timed), ("n_likert", likert), ("n_identical", same)):
        if arr.size != n_raters:
            raise ValueError(f"{name} must have one entry per rater ({n_raters}).")
    if len(sds) != n_raters:
        raise ValueError(f"likert_sd must have one entry per rater ({n_raters}).")
    if (fast > timed).any() or (fast < 0).any():
        raise ValueError("n_fast must be between 0 and n_timed.")
    if (same > likert).any() or (same < 0).any():
        raise ValueError("n_identical must be between 0 and n_likert.")
    pooled_identical = float(same.sum() / likert.sum()) if likert.sum() else 0.0

    out = []
    for r in range(n_raters):
        flags = []
        n, k = int(bias.n_decisive[r]), int(bias.left_picks[r])
        if bias.flagged[r]:
            flags.append(Flag(code="position_bias", label="Position bias",
                              summary=f"left {_percent(bias.left_share[r])} of {n}, p = {_p_text(bias.p_adjusted[r])}",
                              detail=f"left {_percent(bias.left_share[r])} of {n} decisive answers, "
                                     f"p = {_p_text(bias.p_adjusted[r])} (exact binomial, Holm)"))
        fast_share = float(fast[r] / timed[r]) if timed[r] else None
        if fast_share is not None and timed[r] >= t.min_timed and fast_share > t.max_fast_share:
            flags.append(Flag(code="too_fast", label="Too fast",
                              summary=f"{_percent(fast_share)} of {int(timed[r])} under {t.too_fast_ms:g} ms",
                              detail=f"{_percent(fast_share)} of {int(timed[r])} answers under "
                                     f"{t.too_fast_ms:g} ms (limit {_percent(t.max_fast_share)})"))
        identical_share = float(same[r] / likert[r]) if likert[r] else None
        if (identical_share is not None and likert[r] >= t.min_likert_answers
                and identical_share >= t.max_identical_share
                and identical_share - pooled_identical >= t.min_identical_excess - 1e-12):
            flags.append(Flag(code="straight_lining", label="Straight-lining",
                              summary=f"one score for all in {_percent(identical_share)} of {int(likert[r])}",
                              detail=f"same score on every dimension in {_percent(identical_share)} of "
                                     f"{int(likert[r])} Likert answers (all raters {_percent(pooled_identical)})"))
        sd = sds[r]
        out.append(RaterQuality(
            n_decisive=n, left_picks=k, left_share=float(bias.left_share[r]) if n else None,
            position_p=float(bias.p_value[r]) if bias.tested[r] else None,
            position_p_adjusted=float(bias.p_adjusted[r]) if bias.tested[r] else None,
            n_timed=int(timed[r]), n_fast=int(fast[r]), fast_share=fast_share,
            n_likert=int(likert[r]), n_identical=int(same[r]), identical_share=identical_share,
            likert_sd=None if sd is None or not math.isfinite(sd) else float(sd),
            flags=tuple(flags),
        ))
    return out
