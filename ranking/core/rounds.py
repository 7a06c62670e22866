"""Calibration rounds: a small sample of images ranked by a few raters, compared with the metrics.

A *calibration round* shows a sample of k images (typically 3–10) to a few raters, who each rank
them best → worst (rank task, ties allowed). Per round this module

* fits the raters' consensus (:func:`round_consensus`, Plackett–Luce with a small ridge),
* compares it with each automated metric (:func:`metric_round_agreement`: Kendall's τ, pairwise
  accuracy with a bootstrap interval, top-k overlap),
* checks a metric's pass/fail gate against the humans' pass label (:func:`human_good`,
  :func:`gate_check`) and proposes a better threshold (:func:`propose_threshold`);

it draws the round's sample (:func:`sample_uniform`, :func:`sample_stratified`,
:func:`sample_disagreement`, :func:`sample_near_threshold`), and across rounds it pools the
agreement (:func:`pooled_agreement`), watches it for a drop (:func:`cusum_drift`, Page's CUSUM) and
simulates how that alarm behaves (:func:`alarm_characteristics`).

Conventions
-----------
* ``rankings`` are lists of groups of item indices, best first, exactly as
  :func:`ranking.core.rankings.fit_plackett_luce` accepts them (``[3, [0, 5], 1]`` ties 0 with 5).
  Items are indexed ``0 … n_items − 1`` within the round.
* ``metric_scores`` have shape ``(n_items,)`` in the metric's own units; ``NaN`` marks an item the
  metric did not score. ``higher_is_better=False`` flips a metric so that higher is better before
  anything is compared ("oriented" scores).
* A gate passes an item when ``score ≥ threshold`` (``higher_is_better``) or ``score ≤ threshold``
  (otherwise); a ``NaN`` score never passes.
* Human strengths closer than ``1e-9 · max(1, max|θ|)`` are treated as equal (items the raters
  tied everywhere get equal strengths up to rounding; rounding must not order them).
* ``random_state`` is ``None``, an ``int`` seed or a ``numpy.random.Generator``; every random
  result is reproducible with a seed.

This module is pure numpy/scipy and must not import Django.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ranking.core.bt import DisconnectedComparisonsError
from ranking.core.errors import ConvergenceError
from ranking.core.rankings import fit_plackett_luce, kendall_tau_exact, top_k_overlap

__all__ = [
    "AlarmCharacteristics",
    "DriftAlarm",
    "GateCheck",
    "MetricRoundAgreement",
    "PooledAgreement",
    "RoundConsensus",
    "ThresholdProposal",
    "alarm_characteristics",
    "cusum_drift",
    "gate_check",
    "human_good",
    "metric_round_agreement",
    "pooled_agreement",
    "propose_threshold",
    "round_consensus",
    "sample_disagreement",
    "sample_near_threshold",
    "sample_stratified",
    "sample_uniform",
]

DEFAULT_ALPHA = 0.1  # ridge of the round consensus (see round_consensus)
DEFAULT_SHIFT = 0.05  # CUSUM reference drop (accuracy points) of cusum_drift and alarm_characteristics
_TIE_RTOL = 1e-9  # strengths this close (relative to max(1, max|θ|)) are equal
_EQ_DECIMALS = 12  # sampler keys rounded to this many decimals before "random among equals"
_MAX_BATCH_CELLS = 4_000_000  # the batched simulation fit works on at most this many P-tensor cells


# --------------------------------------------------------------------------------------------
# Input checks


def _rng(random_state) -> np.random.Generator:
    return np.random.default_rng(random_state)


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_scores(metric_scores, n_items: int, name: str = "metric_scores") -> np.ndarray:
    arr = np.asarray(metric_scores)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.shape != (n_items,):
        raise ValueError(f"{name} must have shape ({n_items},) (one score per item), got shape {arr.shape}")
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains infinite values (use NaN for an item without a score)")
    return arr


def _check_resamples(n_resamples) -> int:
    return _check_positive_int(n_resamples, "n_resamples")


def _check_confidence(confidence) -> float:
    confidence = float(confidence)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return confidence


def _check_k(k, available: int, what: str = "items") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer (at least 1 item to sample), got {k!r}")
    if k > available:
        raise ValueError(f"k = {int(k)} exceeds the {available} available {what}")
    return int(k)


def _n_rankings(rankings) -> int:
    if isinstance(rankings, (str, bytes)) or not hasattr(rankings, "__len__"):
        raise ValueError("rankings must be a sequence of rankings")
    return len(rankings)


# --------------------------------------------------------------------------------------------
# Human strengths: ties, order, pass label


def _tie_tol(strengths: np.ndarray) -> float:
    finite = strengths[np.isfinite(strengths)]
    scale = float(np.max(np.abs(finite))) if finite.size else 0.0
    return _TIE_RTOL * max(1.0, scale)


def _levels(strengths: np.ndarray) -> np.ndarray:
    """Dense integer levels of a 1-D array, merging values within the tie tolerance (0 = lowest)."""
    order = np.argsort(strengths, kind="stable")
    steps = np.diff(strengths[order]) > _tie_tol(strengths)
    levels = np.empty(strengths.size, dtype=np.int64)
    levels[order] = np.r_[0, np.cumsum(steps)]
    return levels


def _best_first(values: np.ndarray) -> np.ndarray:
    """Indices sorted by decreasing value, equal values by increasing index."""
    return np.lexsort((np.arange(values.size), -values))


def _pair_signs(values: np.ndarray, tol: float | np.ndarray = 0.0) -> np.ndarray:
    """sign(v_i − v_j) over the last axis, 0 within ``tol``: shape (..., n, n)."""
    diff = values[..., :, None] - values[..., None, :]
    tol = np.asarray(tol, dtype=float)[..., None, None] if np.ndim(tol) else tol
    return np.where(np.abs(diff) <= tol, 0, np.sign(diff)).astype(np.int8)


def _pair_scores(human: np.ndarray, metric: np.ndarray):
    """Per pair: the metric's credit (1 same order, ½ metric tie, 0 reversed) and whether humans differ.

    ``human`` and ``metric`` have shape (..., n); returns two (..., n, n) float arrays, symmetric,
    zero on the diagonal and wherever the human strengths are equal.
    """
    tol = np.apply_along_axis(_tie_tol, -1, human) if human.ndim > 1 else _tie_tol(human)
    sh = _pair_signs(human, tol)
    sm = _pair_signs(metric)
    valid = (sh != 0).astype(float)
    credit = np.where(sm == sh, 1.0, np.where(sm == 0, 0.5, 0.0)) * valid
    return credit, valid


def _pair_accuracy(human: np.ndarray, metric: np.ndarray) -> np.ndarray:
    """Pairwise accuracy of ``metric`` against ``human`` over the last axis (NaN without a pair)."""
    credit, valid = _pair_scores(human, metric)
    num = credit.sum(axis=(-2, -1))
    den = valid.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def human_good(strengths) -> np.ndarray:
    """The round's human pass label: strength strictly above the median ("top half").

    Parameters
    ----------
    strengths : array_like of float, shape (n_items,)
        Consensus strengths (e.g. :attr:`RoundConsensus.strengths`); any monotone scale.

    Returns
    -------
    numpy.ndarray of bool, shape (n_items,)
        ``True`` for items whose strength exceeds the median by more than the tie tolerance. With an
        odd number of items the median item is *not* good; items tied at the median are not good;
        with distinct strengths exactly ``n_items // 2`` items are good.

    Notes
    -----
    ``ranking.core.metric_agreement.human_pass_labels`` (the calibration report's "BT top half")
    uses ``strength ≥ median``; the two rules differ only for the median item of an odd ``n`` and for
    items tied at the median. The strict rule is used here so that a round of 3–10 images never
    labels more than half of them good.
    """
    s = np.asarray(strengths)
    if s.dtype.kind not in "biuf":
        raise ValueError(f"strengths must be numeric, got dtype {s.dtype}")
    s = s.astype(np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"strengths must be a non-empty 1-D array, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("strengths must be finite (no NaN or inf)")
    return s > np.median(s) + _tie_tol(s)


# --------------------------------------------------------------------------------------------
# Consensus


@dataclass(frozen=True)
class RoundConsensus:
    """Result of :func:`round_consensus`.

    Attributes
    ----------
    strengths : numpy.ndarray, shape (n_items,)
        Plackett–Luce strengths θ (natural-log scale, logits), mean zero; MAP with ridge ``alpha``.
    se : numpy.ndarray, shape (n_items,)
        Standard errors of ``strengths`` (observed information of the penalised likelihood).
    ci_low, ci_high : numpy.ndarray, shape (n_items,)
        95 % Wald intervals ``strengths ∓ 1.959964 · se``.
    order : numpy.ndarray of int, shape (n_items,)
        Item indices best first (by strength; equal strengths by increasing index).
    n_rankings : int
    alpha : float
    """

    strengths: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    order: np.ndarray
    n_rankings: int
    alpha: float


def round_consensus(rankings, n_items: int, *, alpha: float = DEFAULT_ALPHA) -> RoundConsensus:
    """The raters' consensus of one round: Plackett–Luce strengths with a small ridge.

    Parameters
    ----------
    rankings : sequence of rankings
        One ranking per rater, best first, groups for ties (see :mod:`ranking.core.rankings`).
    n_items : int
        Number of items in the round.
    alpha : float, default 0.1
        Prior precision of the strengths (``θ_i ~ N(0, 1/alpha)``; ``fit_plackett_luce``'s
        ``alpha``). Why a ridge: with a single ranking, or whenever one item is ranked above (or below)
        every other by every rater, the maximum-likelihood strengths do not exist (they run off to
        ±∞: Hunter 2004's strong-connectivity condition fails), yet a round of one rater is a valid
        round. The ridge makes the MAP finite and unique for any rankings while keeping the order
        of a complete untied ranking; ``alpha = 0.1`` (prior SD ≈ 3.2 logits) barely moves strengths
        that the data do determine. ``alpha = 0`` asks for the MLE and raises when it does not exist.

    Returns
    -------
    RoundConsensus

    Raises
    ------
    ValueError
        Invalid rankings (message from ``fit_plackett_luce``).
    DisconnectedComparisonsError
        ``alpha == 0`` and the MLE does not exist.
    ConvergenceError
        The fit did not converge; in particular when a tie size occurs at every opportunity (e.g.
        the round's only rater, or every rater, tied all items): the ridge does not cover the
        Davidson–Luce tie parameters, whose estimate is then infinite.
    """
    n_rank = _n_rankings(rankings)
    if n_rank == 0:
        raise ValueError("rankings is empty: a round needs at least one ranking")
    fit = fit_plackett_luce(rankings, n_items, alpha=alpha)
    theta = fit.strengths
    return RoundConsensus(
        strengths=theta,
        se=fit.se,
        ci_low=fit.ci_low,
        ci_high=fit.ci_high,
        order=_best_first(_levels(theta).astype(float)),
        n_rankings=n_rank,
        alpha=float(alpha),
    )


def _bootstrap_strengths(rankings, n_items: int, alpha: float, n_resamples: int, rng) -> np.ndarray:
    """Strengths refitted on ``n_resamples`` resamples of the rankings (with replacement).

    A resample is a multinomial count vector over the rankings, fitted as ranking weights. Equal
    count vectors give equal fits, so each distinct vector is fitted once (with 3 raters there are
    only 10). Resamples whose fit fails (``alpha == 0`` without an MLE) are rows of NaN.
    """
    n_rank = len(rankings)
    counts = rng.multinomial(n_rank, np.full(n_rank, 1.0 / n_rank), size=n_resamples)
    unique, inverse = np.unique(counts, axis=0, return_inverse=True)
    fits = np.full((unique.shape[0], n_items), np.nan)
    for u, w in enumerate(unique):
        with contextlib.suppress(DisconnectedComparisonsError, ConvergenceError):
            fits[u] = fit_plackett_luce(
                rankings, n_items, weights=w.astype(float), alpha=alpha, compute_se=False
            ).strengths
    return fits[inverse.ravel()]


def _percentile_ci(values: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(finite, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


# --------------------------------------------------------------------------------------------
# Metric agreement


@dataclass(frozen=True)
class MetricRoundAgreement:
    """Result of :func:`metric_round_agreement`.

    Attributes
    ----------
    tau_b : float
        Kendall's τ_b between the human strengths and the oriented metric scores of the scored items
        (``NaN`` when the metric gives them all the same score).
    p_value : float
        Two-sided p-value of τ (``NaN`` when τ is undefined).
    p_method : str
        ``"exact"`` or ``"asymptotic"`` (see ``kendall_tau_exact``), ``"undefined"`` when τ is.
    accuracy : float
        Share of scored item pairs with different human strengths that the metric orders the same way
        (a metric tie counts ½).
    accuracy_ci_low, accuracy_ci_high : float
        Percentile bootstrap interval of ``accuracy`` at ``confidence``.
    bootstrap : str
        What was resampled: ``"rankings"`` (≥ 2 rankings) or ``"items"`` (1 ranking).
    top_k : int
    top_k_overlap : float
        Share of the human top ``top_k`` (of the scored items) that the metric also puts in its top
        ``top_k``.
    n_items : int
        Scored items compared.
    items : numpy.ndarray of int
        Their indices.
    """

    tau_b: float
    p_value: float
    p_method: str
    accuracy: float
    accuracy_ci_low: float
    accuracy_ci_high: float
    bootstrap: str
    top_k: int
    top_k_overlap: float
    n_items: int
    items: np.ndarray


def metric_round_agreement(
    rankings,
    n_items: int,
    metric_scores,
    *,
    higher_is_better: bool = True,
    k: int | None = None,
    alpha: float = DEFAULT_ALPHA,
    n_resamples: int = 500,
    confidence: float = 0.95,
    random_state=None,
) -> MetricRoundAgreement:
    """How well one metric agrees with the raters' consensus in one round.

    The consensus is :func:`round_consensus` fitted on all ``n_items`` items. Items whose metric
    score is ``NaN`` are then left out of every comparison (τ, accuracy, top-k): their rankings
    still inform the other items' strengths.

    Parameters
    ----------
    rankings : sequence of rankings
    n_items : int
    metric_scores : array_like of float, shape (n_items,)
        The metric's score of each item in its own units; ``NaN`` for an item without a score.
    higher_is_better : bool, default True
        ``False`` negates the scores before comparing.
    k : int, optional
        Top-k size, ``1 ≤ k ≤`` number of scored items; default ``max(1, n // 3)`` with ``n`` the
        number of scored items.
    alpha : float, default 0.1
        Ridge of the consensus fit (see :func:`round_consensus`).
    n_resamples : int, default 500
    confidence : float, default 0.95
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    MetricRoundAgreement

    Notes
    -----
    The accuracy interval is a percentile bootstrap. With ≥ 2 rankings it resamples the *rankings*
    (raters) with replacement and refits the consensus each time: it measures how much the
    consensus, hence the accuracy, depends on which raters took part, for these items. With one
    ranking there is nothing to resample among raters, so it resamples the scored *items* with
    replacement (pairs of copies of one item are not pairs): it measures how much the accuracy
    depends on which items were drawn, for this ranking. Neither covers both sources; with 2–3
    raters the rankings bootstrap has few distinct resamples and the interval is coarse.

    Raises
    ------
    ValueError
        Fewer than 3 scored items; the consensus ties all scored items; invalid input.
    """
    n_rank = _n_rankings(rankings)
    consensus = round_consensus(rankings, n_items, alpha=alpha)
    scores = _check_scores(metric_scores, consensus.strengths.size)
    if not isinstance(higher_is_better, (bool, np.bool_)):
        raise ValueError(f"higher_is_better must be True or False, got {higher_is_better!r}")
    n_resamples = _check_resamples(n_resamples)
    confidence = _check_confidence(confidence)
    items = np.flatnonzero(np.isfinite(scores))
    m = items.size
    if m < 3:
        raise ValueError(
            f"only {m} of the {scores.size} items have a metric score (the others are NaN): "
            "agreement needs at least 3 scored items"
        )
    oriented = (scores if higher_is_better else -scores)[items]
    human = consensus.strengths[items]
    levels = _levels(human)
    if levels.max() == 0:
        raise ValueError("the raters' consensus gives every scored item the same strength: agreement is undefined")
    if k is None:
        k = max(1, m // 3)
    k = _check_k(k, m, "scored items")

    if np.all(oriented == oriented[0]):
        tau, p, method = math.nan, math.nan, "undefined"
    else:
        res = kendall_tau_exact(levels, oriented)
        tau, p, method = res.tau, res.p_value, res.method
    accuracy = float(_pair_accuracy(human, oriented))

    rng = _rng(random_state)
    if n_rank >= 2:
        boot = _bootstrap_strengths(list(rankings), consensus.strengths.size, alpha, n_resamples, rng)
        acc = _pair_accuracy(boot[:, items], np.broadcast_to(oriented, (n_resamples, m)))
        acc[~np.isfinite(boot[:, items]).all(axis=1)] = np.nan
        kind = "rankings"
    else:
        credit, valid = _pair_scores(human, oriented)
        c = rng.multinomial(m, np.full(m, 1.0 / m), size=n_resamples).astype(float)
        num = np.einsum("bi,ij,bj->b", c, credit, c)
        den = np.einsum("bi,ij,bj->b", c, valid, c)
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        kind = "items"
    low, high = _percentile_ci(acc, confidence)

    human_order = items[_best_first(levels.astype(float))]
    metric_order = items[_best_first(oriented)]
    return MetricRoundAgreement(
        tau_b=float(tau),
        p_value=float(p),
        p_method=method,
        accuracy=accuracy,
        accuracy_ci_low=low,
        accuracy_ci_high=high,
        bootstrap=kind,
        top_k=k,
        top_k_overlap=top_k_overlap(human_order.tolist(), metric_order.tolist(), k),
        n_items=int(m),
        items=items,
    )


# --------------------------------------------------------------------------------------------
# Gates


@dataclass(frozen=True)
class GateCheck:
    """Result of :func:`gate_check`.

    Attributes
    ----------
    passed : numpy.ndarray of bool, shape (n_items,)
        The gate's decision (``False`` for an item without a score).
    human_good : numpy.ndarray of bool, shape (n_items,)
        The human label given.
    false_pass : numpy.ndarray of int
        Scored items the gate passes that the humans put in the bottom half.
    false_fail : numpy.ndarray of int
        Scored items the gate fails that the humans put in the top half.
    agreement : float
        Share of scored items where the gate's decision equals the human label.
    n_scored : int
        Items with a score (the denominator of ``agreement``).
    """

    passed: np.ndarray
    human_good: np.ndarray
    false_pass: np.ndarray
    false_fail: np.ndarray
    agreement: float
    n_scored: int


def _check_labels(labels, n: int) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.shape != (n,):
        raise ValueError(f"human_good must have shape ({n},) (one label per item), got shape {arr.shape}")
    if arr.dtype.kind not in "biuf" or not np.isin(arr, (0, 1)).all():
        raise ValueError("human_good must hold only booleans (or 0/1)")
    return arr.astype(bool)


def _check_threshold(threshold, name: str = "threshold") -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number, got {threshold!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {threshold!r}")
    return value


def gate_check(metric_scores, threshold: float, *, higher_is_better: bool, human_good) -> GateCheck:
    """Compare a metric's pass/fail gate with the humans' label on one round's items.

    Parameters
    ----------
    metric_scores : array_like of float, shape (n_items,)
        ``NaN`` for an item without a score: it is not passed, and it is left out of
        ``false_pass``, ``false_fail`` and ``agreement`` (the gate made no decision on it).
    threshold : float
        Pass ⇔ ``score ≥ threshold`` when ``higher_is_better``, ``score ≤ threshold`` otherwise.
    higher_is_better : bool
    human_good : array_like of bool, shape (n_items,)
        e.g. :func:`human_good` of the round consensus.

    Returns
    -------
    GateCheck

    Raises
    ------
    ValueError
        No item has a score; shapes differ; labels not boolean; threshold not finite.
    """
    scores = np.asarray(metric_scores)
    if scores.ndim != 1:
        raise ValueError(f"metric_scores must be 1-D, got shape {scores.shape}")
    scores = _check_scores(scores, scores.size)
    good = _check_labels(human_good, scores.size)
    t = _check_threshold(threshold)
    scored = np.isfinite(scores)
    if not scored.any():
        raise ValueError("no item has a metric score (all NaN): the gate cannot be checked")
    with np.errstate(invalid="ignore"):
        passed = (scores >= t) if higher_is_better else (scores <= t)
    passed &= scored
    return GateCheck(
        passed=passed,
        human_good=good,
        false_pass=np.flatnonzero(passed & ~good),
        false_fail=np.flatnonzero(scored & ~passed & good),
        agreement=float(np.mean(passed[scored] == good[scored])),
        n_scored=int(scored.sum()),
    )


@dataclass(frozen=True)
class ThresholdProposal:
    """Result of :func:`propose_threshold` (thresholds in the metric's own units).

    Attributes
    ----------
    threshold : float
        Proposed threshold (equal to ``current_threshold`` when ``changed`` is ``False``).
    ci_low, ci_high : float
        Percentile bootstrap interval of the chosen threshold (re-chosen on every resample).
    current_threshold : float or None
    agreement_current, agreement_proposed : float
        Balanced accuracy ``(TPR + TNR) / 2`` of the gate against the human label on the scored
        items, at the current (``NaN`` without one) and the proposed threshold.
    accuracy_current, accuracy_proposed : float
        Plain share of scored items where gate and label agree (:attr:`GateCheck.agreement`).
    changed : bool
        ``False`` when the current threshold is already among the best.
    bootstrap : str
        ``"rankings"`` (≥ 2 rankings) or ``"items"`` (1 ranking).
    n_items : int
        Scored items used.
    """

    threshold: float
    ci_low: float
    ci_high: float
    current_threshold: float | None
    agreement_current: float
    agreement_proposed: float
    accuracy_current: float
    accuracy_proposed: float
    changed: bool
    bootstrap: str
    n_items: int


def _balanced_accuracy(passed: np.ndarray, good: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted (TPR + TNR)/2 for each row of ``passed`` (C, m); NaN when a class is empty."""
    pos = float(w @ good)
    neg = float(w @ ~good)
    if pos == 0 or neg == 0:
        return np.full(passed.shape[0], np.nan)
    tpr = (passed & good) @ w / pos
    tnr = (~passed & ~good) @ w / neg
    return (tpr + tnr) / 2


def _candidates(values: np.ndarray) -> np.ndarray:
    """Midpoints between consecutive distinct values, plus one below the minimum and one above the max."""
    v = np.unique(values)
    step = (v[-1] - v[0]) / (2 * (v.size - 1)) if v.size > 1 else 0.5
    return np.r_[v[0] - step, (v[1:] + v[:-1]) / 2, v[-1] + step]


def _choose_threshold(s: np.ndarray, good: np.ndarray, w: np.ndarray, current: float | None, reference: float):
    """Best gate threshold (oriented units) by balanced accuracy; returns (threshold, changed, best BA).

    ``current`` is kept when no candidate beats it; otherwise, among the best candidates, the one
    closest to ``reference`` (the current threshold, or a fixed reference without one).
    """
    present = w > 0
    cands = _candidates(s[present])
    ba = _balanced_accuracy(s[None, :] >= cands[:, None], good, w)
    if not np.isfinite(ba).any():
        return math.nan, False, math.nan
    best = np.nanmax(ba)
    if current is not None:
        ba_cur = _balanced_accuracy((s >= current)[None, :], good, w)[0]
        if ba_cur >= best - 1e-12:
            return current, False, float(ba_cur)
    top = cands[ba >= best - 1e-12]
    return float(top[np.argmin(np.abs(top - reference))]), True, float(best)


def propose_threshold(
    rankings,
    n_items: int,
    metric_scores,
    current_threshold: float | None,
    *,
    higher_is_better: bool = True,
    alpha: float = DEFAULT_ALPHA,
    n_resamples: int = 500,
    confidence: float = 0.95,
    random_state=None,
) -> ThresholdProposal:
    """Propose the gate threshold that best reproduces the round's human pass label.

    The human label is :func:`human_good` of :func:`round_consensus` over all ``n_items`` items;
    items whose score is ``NaN`` are left out. Candidate thresholds are the midpoints between
    consecutive distinct scores, plus one below the lowest score (everything passes) and one above
    the highest (nothing passes) — one per distinct pass/fail split. The chosen one maximises the
    *balanced* accuracy ``(TPR + TNR) / 2`` of the gate against the label (with an odd number of
    items the classes are unequal; plain accuracy would favour the larger one). When the current
    threshold's split is among the best it is kept (``changed=False``); otherwise, among the best
    candidates, the one closest to the current threshold is proposed, so the threshold moves no
    further than it must.

    Parameters
    ----------
    rankings : sequence of rankings
    n_items : int
    metric_scores : array_like of float, shape (n_items,)
        ``NaN`` for an item without a score.
    current_threshold : float or None
        The gate's threshold now, metric units; ``None`` when the metric has none yet (then the
        best candidate closest to the median score is proposed and ``changed`` is ``True``).
    higher_is_better : bool, default True
        Pass ⇔ ``score ≥ threshold`` (``True``) or ``score ≤ threshold`` (``False``).
    alpha, n_resamples, confidence, random_state
        As in :func:`metric_round_agreement`.

    Returns
    -------
    ThresholdProposal

    Notes
    -----
    The interval is a percentile bootstrap of the *chosen* threshold: with ≥ 2 rankings the
    rankings are resampled, the consensus and its label refitted and the threshold re-chosen; with
    one ranking the scored items are resampled (labels kept) and the threshold re-chosen among the
    resampled scores. Resamples in which the humans put every scored item in one half give no
    threshold and are dropped. With 3–10 items the interval is wide: one round is a hint, not a
    recalibration.

    Raises
    ------
    ValueError
        Fewer than 2 scored items, or the human label puts every scored item in one half
        (balanced accuracy undefined); invalid input.
    """
    n_rank = _n_rankings(rankings)
    consensus = round_consensus(rankings, n_items, alpha=alpha)
    n = consensus.strengths.size
    scores = _check_scores(metric_scores, n)
    n_resamples = _check_resamples(n_resamples)
    confidence = _check_confidence(confidence)
    current = None if current_threshold is None else _check_threshold(current_threshold, "current_threshold")
    sign = 1.0 if higher_is_better else -1.0
    items = np.flatnonzero(np.isfinite(scores))
    m = items.size
    if m < 2:
        raise ValueError(f"only {m} of the {n} items have a metric score: a threshold needs at least 2")
    s = sign * scores[items]
    good = human_good(consensus.strengths)[items]
    if good.all() or not good.any():
        raise ValueError(
            "the raters put every scored item in the same half (all good or all not good): "
            "no threshold can be chosen"
        )
    cur_o = None if current is None else sign * current
    reference = float(np.median(s)) if cur_o is None else cur_o
    w = np.ones(m)
    chosen_o, changed, ba_best = _choose_threshold(s, good, w, cur_o, reference)

    rng = _rng(random_state)
    if n_rank >= 2:
        boot = _bootstrap_strengths(list(rankings), n, alpha, n_resamples, rng)
        draws = np.full(n_resamples, np.nan)
        for b in range(n_resamples):
            if np.isfinite(boot[b]).all():
                draws[b] = _choose_threshold(s, human_good(boot[b])[items], w, cur_o, reference)[0]
        kind = "rankings"
    else:
        counts = rng.multinomial(m, np.full(m, 1.0 / m), size=n_resamples).astype(float)
        draws = np.array([_choose_threshold(s, good, c, cur_o, reference)[0] for c in counts])
        kind = "items"
    low, high = _percentile_ci(sign * draws, confidence)

    def plain(t):
        return float(np.mean((s >= t) == good))

    ba_cur = math.nan if cur_o is None else float(_balanced_accuracy((s >= cur_o)[None, :], good, w)[0])
    return ThresholdProposal(
        threshold=float(sign * chosen_o),
        ci_low=low,
        ci_high=high,
        current_threshold=current,
        agreement_current=ba_cur,
        agreement_proposed=float(ba_best),
        accuracy_current=math.nan if cur_o is None else plain(cur_o),
        accuracy_proposed=plain(chosen_o),
        changed=bool(changed),
        bootstrap=kind,
        n_items=int(m),
    )


# --------------------------------------------------------------------------------------------
# Sampling the round


def sample_uniform(n_items: int, k: int, *, random_state=None) -> np.ndarray:
    """``k`` distinct item indices drawn uniformly from ``0 … n_items − 1``.

    Returns
    -------
    numpy.ndarray of int64, shape (k,)
        Ascending.
    """
    n_items = _check_positive_int(n_items, "n_items")
    k = _check_k(k, n_items)
    return np.sort(_rng(random_state).choice(n_items, size=k, replace=False)).astype(np.int64)


def _largest_remainder(sizes: np.ndarray, k: int, rng) -> np.ndarray:
    quota = k * sizes / sizes.sum()
    alloc = np.floor(quota).astype(np.int64)
    short = k - int(alloc.sum())
    if short:
        rem = quota - alloc
        order = np.lexsort((rng.random(sizes.size), -np.round(rem, _EQ_DECIMALS)))
        alloc[order[:short]] += 1
    if k >= sizes.size:  # every stratum gets at least one: move units from the most over-allocated
        for s in np.flatnonzero(alloc == 0):
            donors = np.flatnonzero(alloc >= 2)
            excess = alloc[donors] - quota[donors]
            d = donors[np.lexsort((-alloc[donors], -np.round(excess, _EQ_DECIMALS)))[0]]
            alloc[d] -= 1
            alloc[s] += 1
    return alloc


def sample_stratified(strata, k: int, *, random_state=None) -> np.ndarray:
    """``k`` distinct items, allocated to strata in proportion to their sizes, random within each.

    Allocation: stratum ``s`` of ``N_s`` of ``N`` items gets ``⌊k N_s / N⌋``; the units left over go to
    the largest remainders (random among equal remainders). When ``k`` is at least the number of
    strata, every stratum then gets at least one item, each taken from the stratum most above its
    quota ``k N_s / N``. Never more than ``N_s`` from a stratum.

    Parameters
    ----------
    strata : array_like, shape (n_items,)
        Stratum label of each item (e.g. the source model); any sortable labels, no NaN.
    k : int
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    numpy.ndarray of int64, shape (k,)
        Item indices, ascending.
    """
    labels = np.asarray(strata)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"strata must be a non-empty 1-D array of labels, got shape {labels.shape}")
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        raise ValueError("strata contains NaN: every item needs a stratum label")
    k = _check_k(k, labels.size)
    rng = _rng(random_state)
    _, codes = np.unique(labels, return_inverse=True)
    codes = codes.ravel()
    sizes = np.bincount(codes)
    alloc = _largest_remainder(sizes, k, rng)
    picks = [rng.choice(np.flatnonzero(codes == s), size=a, replace=False) for s, a in enumerate(alloc) if a]
    return np.sort(np.concatenate(picks)).astype(np.int64)


def _check_score_matrix(scores, name: str = "scores") -> np.ndarray:
    arr = np.asarray(scores)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains infinite values (use NaN for a missing score)")
    return arr


def _percentile_ranks(column: np.ndarray) -> np.ndarray:
    """Mid-rank percentile of each scored value among the scored values, in (0, 1); NaN stays NaN."""
    out = np.full(column.size, np.nan)
    scored = np.isfinite(column)
    if scored.any():
        out[scored] = (stats.rankdata(column[scored]) - 0.5) / scored.sum()
    return out


def _top_k_random_ties(key: np.ndarray, k: int, rng) -> np.ndarray:
    """Indices of the ``k`` largest ``key`` values, random among equal values (key rounded first)."""
    order = np.lexsort((rng.random(key.size), -np.round(key, _EQ_DECIMALS)))
    return np.sort(order[:k]).astype(np.int64)


def sample_disagreement(scores, k: int, *, random_state=None) -> np.ndarray:
    """The ``k`` items on which the metrics disagree most.

    Each column (metric) is turned into mid-rank percentiles ``(rank − ½) / n_scored`` over the
    items it scored (units cancel, so metrics of any scale compare). An item's disagreement is the
    standard deviation (ddof 0) of its percentiles across the metrics that scored it; an item scored
    by fewer than 2 metrics has disagreement −∞ (chosen only after every other item).

    Parameters
    ----------
    scores : array_like of float, shape (n_items, n_metrics)
        Each column oriented so that higher is better; ``NaN`` for a missing score.
    k : int
    random_state : None, int or numpy.random.Generator
        Breaks ties among equal disagreements.

    Returns
    -------
    numpy.ndarray of int64, shape (k,)
        Item indices, ascending.
    """
    arr = _check_score_matrix(scores)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(
            f"scores must have shape (n_items, n_metrics) with at least 2 metrics to disagree, got shape {arr.shape}"
        )
    k = _check_k(k, arr.shape[0])
    pct = np.column_stack([_percentile_ranks(arr[:, j]) for j in range(arr.shape[1])])
    n_scored = np.isfinite(pct).sum(axis=1)
    filled = np.where(np.isfinite(pct), pct, 0.0)
    mean = filled.sum(axis=1) / np.maximum(n_scored, 1)
    dev = np.where(np.isfinite(pct), pct - mean[:, None], 0.0)
    spread = np.sqrt((dev**2).sum(axis=1) / np.maximum(n_scored, 1))
    spread = np.where(n_scored >= 2, spread, -np.inf)
    return _top_k_random_ties(spread, k, _rng(random_state))


def sample_near_threshold(scores, threshold: float, k: int, *, random_state=None) -> np.ndarray:
    """The ``k`` items whose percentile rank is closest to the threshold's percentile position.

    Percentile rank of an item: ``(rank − ½) / n_scored`` among the scored items (average ranks for
    ties). Position of the threshold: ``(#{score < t} + ½ #{score = t}) / n_scored`` (so an item whose
    score equals ``t`` sits exactly on it). Items with a ``NaN`` score are never chosen. Orientation
    does not matter (the distance is symmetric).

    Parameters
    ----------
    scores : array_like of float, shape (n_items,)
    threshold : float
        In the metric's units.
    k : int
        At most the number of scored items.
    random_state : None, int or numpy.random.Generator
        Breaks ties among equal distances.

    Returns
    -------
    numpy.ndarray of int64, shape (k,)
        Item indices, ascending.
    """
    s = _check_score_matrix(scores)
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D (one metric), got shape {s.shape}")
    t = _check_threshold(threshold)
    scored = np.isfinite(s)
    k = _check_k(k, int(scored.sum()), "scored items")
    v = s[scored]
    position = (np.sum(v < t) + 0.5 * np.sum(v == t)) / v.size
    distance = np.full(s.size, -np.inf)
    distance[scored] = -np.abs(_percentile_ranks(s)[scored] - position)
    return _top_k_random_ties(distance, k, _rng(random_state))


# --------------------------------------------------------------------------------------------
# Across rounds: pooling and drift


@dataclass(frozen=True)
class PooledAgreement:
    """Result of :func:`pooled_agreement`.

    Attributes
    ----------
    estimate : float
        Weighted mean of the rounds' values.
    ci_low, ci_high : float
        Normal interval ``estimate ∓ z · SE`` at ``confidence``.
    se : float
    weights : numpy.ndarray, shape (n_rounds,)
        Normalised weights (sum 1) in input order.
    """

    estimate: float
    ci_low: float
    ci_high: float
    se: float
    weights: np.ndarray


def _check_series(values, name: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    if n is not None and arr.size != n:
        raise ValueError(f"{name} has {arr.size} entries but values has {n} (length mismatch)")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def pooled_agreement(
    values, ci_low, ci_high, *, ages, half_life: float = 3.0, confidence: float = 0.95
) -> PooledAgreement:
    """Time-decayed inverse-variance pooling of per-round agreements.

    Each round's standard error is read off its interval, ``se_i = (high_i − low_i) / (2 z)`` with
    ``z`` the normal quantile of ``confidence`` (an approximation for percentile intervals that are
    not symmetric). Its weight is ``d_i / se_i²`` with decay ``d_i = 0.5 ** (age_i / half_life)``. The
    estimate is ``Σ w_i x_i / Σ w_i`` and, treating the rounds as independent (different items and
    raters each round) and the weights as fixed, its variance is ``Σ w_i² se_i² / (Σ w_i)²`` (which
    is ``1 / Σ se_i⁻²`` without decay).

    Parameters
    ----------
    values : array_like of float, shape (n_rounds,)
    ci_low, ci_high : array_like of float, shape (n_rounds,)
        Each round's interval at ``confidence``; ``ci_high > ci_low``.
    ages : array_like of float, shape (n_rounds,)
        Age of each round (≥ 0), in any unit (rounds, days); ``half_life`` in the same unit.
    half_life : float, default 3.0
    confidence : float, default 0.95
        Level of the given intervals and of the returned one.

    Returns
    -------
    PooledAgreement
    """
    x = _check_series(values, "values")
    low = _check_series(ci_low, "ci_low", x.size)
    high = _check_series(ci_high, "ci_high", x.size)
    age = _check_series(ages, "ages", x.size)
    if (age < 0).any():
        raise ValueError("ages must be >= 0")
    half_life = float(half_life)
    if not np.isfinite(half_life) or half_life <= 0:
        raise ValueError(f"half_life must be a positive number, got {half_life!r}")
    confidence = _check_confidence(confidence)
    if (high <= low).any():
        i = int(np.argmax(high <= low))
        raise ValueError(f"round {i} has ci_high <= ci_low: its standard error would be zero or negative")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    se = (high - low) / (2 * z)
    w = 0.5 ** (age / half_life) / se**2
    total = w.sum()
    estimate = float(w @ x / total)
    se_pooled = float(np.sqrt(np.sum(w**2 * se**2)) / total)
    return PooledAgreement(
        estimate=estimate,
        ci_low=estimate - z * se_pooled,
        ci_high=estimate + z * se_pooled,
        se=se_pooled,
        weights=w / total,
    )


@dataclass(frozen=True)
class DriftAlarm:
    """Result of :func:`cusum_drift`.

    Attributes
    ----------
    statistic : numpy.ndarray, shape (n_rounds,)
        The CUSUM ``S_t`` after each round (0 for the untested baseline rounds).
    alarm_at : int or None
        Index of the first round whose ``S_t > h``; ``None`` without an alarm.
    baseline, shift, h : float
    tested_from : int
        First round tested (``n_baseline`` when the baseline was estimated, else 0).
    """

    statistic: np.ndarray
    alarm_at: int | None
    baseline: float
    shift: float
    h: float
    tested_from: int


def _cusum(values: np.ndarray, ses: np.ndarray, baseline: np.ndarray, start: int, shift: float) -> np.ndarray:
    """Lower CUSUM of many series at once: values, ses (runs, T); baseline (runs,)."""
    stat = np.zeros(values.shape)
    s = np.zeros(values.shape[0])
    for t in range(start, values.shape[1]):
        z = (baseline - values[:, t]) / ses[:, t]
        s = np.maximum(0.0, s + z - shift / (2 * ses[:, t]))
        stat[:, t] = s
    return stat


def _first_alarm(stat: np.ndarray, h: float) -> np.ndarray:
    """First column index with stat > h per row, −1 when none."""
    over = stat > h
    return np.where(over.any(axis=1), np.argmax(over, axis=1), -1)


def cusum_drift(
    values,
    ses,
    *,
    baseline: float | None = None,
    n_baseline: int = 3,
    shift: float = DEFAULT_SHIFT,
    h: float = 4.0,
) -> DriftAlarm:
    """One-sided lower CUSUM (Page 1954) on per-round agreement: alarm on a sustained drop.

    With standardised drops ``z_t = (baseline − x_t) / se_t`` and the reference value half the drop
    to detect (``shift``, in the units of ``values``), ``S_t = max(0, S_{t−1} + z_t − shift / (2 se_t))``,
    ``S = 0`` before the first tested round; the alarm goes off at the first ``S_t > h``. For
    normal ``x_t`` with a correct ``se_t`` this is the standard tabular CUSUM with ``k = δ/2`` and
    decision interval ``h`` (in SE units) — Page, E. S. (1954), "Continuous inspection schemes",
    Biometrika 41(1/2):100–115.

    Parameters
    ----------
    values : array_like of float, shape (n_rounds,)
        Per-round agreement (e.g. accuracy), oldest first.
    ses : array_like of float, shape (n_rounds,)
        Their standard errors (> 0).
    baseline : float, optional
        The in-control level. When not given it is the mean of the first ``n_baseline`` rounds
        (of all rounds when there are fewer), and those rounds are not tested. Estimating the
        baseline from a few rounds raises the false-alarm rate (:func:`alarm_characteristics`
        simulates exactly this).
    n_baseline : int, default 3
    shift : float, default 0.05
        The drop the chart is tuned to detect (≥ 0).
    h : float, default 4.0
        Decision interval (> 0), in standard errors.

    Returns
    -------
    DriftAlarm
    """
    x = _check_series(values, "values")
    se = _check_series(ses, "ses", x.size)
    if (se <= 0).any():
        raise ValueError(f"ses must be > 0 (ses[{int(np.argmax(se <= 0))}] is not)")
    n_baseline = _check_positive_int(n_baseline, "n_baseline")
    shift = float(shift)
    if not np.isfinite(shift) or shift < 0:
        raise ValueError(f"shift must be a finite number >= 0, got {shift!r}")
    h = float(h)
    if not np.isfinite(h) or h <= 0:
        raise ValueError(f"h must be a positive number, got {h!r}")
    if baseline is None:
        start = min(n_baseline, x.size)
        base = float(x[:start].mean())
    else:
        base = _check_threshold(baseline, "baseline")
        start = 0
    stat = _cusum(x[None, :], se[None, :], np.array([base]), start, shift)[0]
    first = int(_first_alarm(stat[None, :], h)[0])
    return DriftAlarm(
        statistic=stat,
        alarm_at=None if first < 0 else first,
        baseline=base,
        shift=shift,
        h=h,
        tested_from=start,
    )


# --------------------------------------------------------------------------------------------
# Simulated alarm behaviour


def _pl_map_complete(orders: np.ndarray, alpha: float, *, max_iter: int = 100, tol: float = 1e-10) -> np.ndarray:
    """MAP Plackett–Luce strengths of many small problems at once (complete untied rankings only).

    ``orders`` (B, R, n): problem ``b``'s ``R`` rankings, each a permutation of ``0 … n−1``, best
    first; ``alpha > 0``. Same objective as ``fit_plackett_luce(…, alpha=alpha)`` (that function
    handles ties, partial rankings and one problem at a time: at ~2 ms a fit it would make the
    default simulation's ~9,000 fits take about 20 s). Batched Newton's method with an Armijo
    backtracking line search; the Hessian is ``Σ_stages diag(p) − p pᵀ`` per ranking plus ``alpha·I``.
    """
    b_count, _, n = orders.shape
    inv = np.argsort(orders, axis=2)  # position of each item in each ranking
    stage = np.triu(np.ones((n, n)))  # stage[s, t] = 1 when position t is still unranked at stage s
    eye = np.eye(n)

    def nll(theta):
        th = np.take_along_axis(np.broadcast_to(theta[:, None, :], orders.shape), orders, axis=2)
        top = th.max(axis=2, keepdims=True)
        e = np.exp(th - top)
        z = np.cumsum(e[..., ::-1], axis=2)[..., ::-1]
        return (np.log(z) + top - th).sum(axis=(1, 2)) + 0.5 * alpha * (theta**2).sum(axis=1), e, z

    theta = np.zeros((b_count, n))
    f, e, z = nll(theta)
    for _ in range(max_iter):
        p = e[..., None, :] / z[..., :, None] * stage  # (B, R, stage, position)
        g_pos = p.sum(axis=2) - 1.0
        grad = np.take_along_axis(g_pos, inv, axis=2).sum(axis=1) + alpha * theta
        h_pos = (g_pos + 1.0)[..., None] * eye - np.einsum("brst,brsu->brtu", p, p)
        h_item = np.take_along_axis(np.take_along_axis(h_pos, inv[..., :, None], axis=2), inv[..., None, :], axis=3)
        hess = h_item.sum(axis=1) + alpha * eye
        step = -np.linalg.solve(hess, grad[..., None])[..., 0]
        slope = np.einsum("bi,bi->b", grad, step)
        t = np.ones(b_count)
        for _ in range(40):
            f_new, e_new, z_new = nll(theta + t[:, None] * step)
            bad = f_new > f + 1e-4 * t * slope + 1e-12 * np.abs(f)
            if not bad.any():
                break
            t = np.where(bad, t / 2, t)
        theta = theta + t[:, None] * step
        f, e, z = f_new, e_new, z_new
        if np.max(np.abs(t[:, None] * step)) < tol:
            return theta - theta.mean(axis=1, keepdims=True)
    raise ConvergenceError(f"batched Plackett–Luce fit did not converge in {max_iter} iterations")


def _sigma_for_accuracy(accuracy: float) -> float:
    """Metric noise SD giving pairwise accuracy ``accuracy`` against the true order.

    Qualities ``q ~ N(0, 1)`` and metric ``q + σ ε``: for a pair, ``D = q_i − q_j`` and the metric's
    difference ``D + σ(ε_i − ε_j)`` are bivariate normal with correlation ``ρ = 1/√(1 + σ²)``, so
    ``P(same sign) = ½ + arcsin(ρ)/π = ½ + arctan(1/σ)/π`` (Sheppard's formula) and
    ``σ = cot(π (accuracy − ½))``, solved in closed form.
    """
    return 1.0 / math.tan(math.pi * (accuracy - 0.5))


def _simulate_round_accuracy(n_rounds: int, n_items: int, n_raters: int, sigma: np.ndarray, alpha: float, rng):
    """Measured accuracy of ``n_rounds`` simulated rounds (metric noise ``sigma[i]`` in round i)."""
    q = rng.normal(size=(n_rounds, n_items))
    gumbel = rng.gumbel(size=(n_rounds, n_raters, n_items))
    metric = q + sigma[:, None] * rng.normal(size=(n_rounds, n_items))
    orders = np.argsort(-(q[:, None, :] + gumbel), axis=2)
    chunk = max(1, _MAX_BATCH_CELLS // (n_raters * n_items * n_items))
    strengths = np.concatenate(
        [_pl_map_complete(orders[i : i + chunk], alpha) for i in range(0, n_rounds, chunk)]
    )
    return _pair_accuracy(strengths, metric)


@dataclass(frozen=True)
class AlarmCharacteristics:
    """Result of :func:`alarm_characteristics`.

    Attributes
    ----------
    false_alarm_rate : float
        Share of runs without drift (``n_rounds`` rounds) whose CUSUM alarms.
    detection_delay_mean, detection_delay_median : float
        Among drifted runs that detect: the number of drifted rounds seen up to and including the
        alarm (1 = alarm on the first round after the change); NaN when no run detects.
    detection_rate : float
        Share of drifted runs whose first alarm falls within the ``n_rounds`` rounds after the
        change (runs that alarmed before the change count as not detecting).
    early_alarm_rate : float
        Share of drifted runs whose first alarm came before the change.
    round_sd : float
        SD of one round's measured accuracy without drift: the SE given to the CUSUM.
    measured_baseline, measured_drifted : float
        Mean measured accuracy (metric vs the consensus) before and after the change; lower than
        the accuracies against the true order because the consensus of a few raters is noisy.
    n_sims, n_items, n_raters : int
    drop : float
    shift : float
    """

    false_alarm_rate: float
    detection_delay_mean: float
    detection_delay_median: float
    detection_rate: float
    early_alarm_rate: float
    round_sd: float
    measured_baseline: float
    measured_drifted: float
    n_sims: int
    n_items: int
    n_raters: int
    drop: float
    shift: float


def alarm_characteristics(
    *,
    n_items: int = 10,
    n_raters: int = 3,
    baseline_accuracy: float = 0.75,
    drop: float = 0.05,
    n_rounds: int = 20,
    change_at: int = 5,
    shift: float | None = None,
    h: float = 4.0,
    n_baseline: int = 3,
    alpha: float = DEFAULT_ALPHA,
    n_sims: int = 200,
    random_state=None,
) -> AlarmCharacteristics:
    """Monte Carlo false-alarm rate and detection delay of :func:`cusum_drift` on calibration rounds.

    Model of one round: ``n_items`` latent qualities ``q ~ N(0, 1)`` (fresh items every round);
    ``n_raters`` complete rankings from Plackett–Luce with strengths ``q`` (sort ``q + Gumbel``);
    metric ``q + σ ε`` with ``σ`` set (closed form, see ``_sigma_for_accuracy``) so that the expected
    pairwise accuracy of the metric against the *true* order is ``baseline_accuracy``, and
    ``baseline_accuracy − drop`` from round ``change_at`` on in the drifted runs. Measured as the app
    measures it: the accuracy of the metric against the consensus (:func:`round_consensus`'s MAP
    with ridge ``alpha``, fitted by a batched Newton solver with the same objective).

    Standard errors: every round gets the same SE, the SD of the measured accuracy over all rounds
    of the runs without drift (``round_sd``, pooled over ``n_sims × n_rounds`` rounds). That is the
    true round-to-round SD (item sampling, rater noise and metric noise together), so the result is
    the behaviour of a CUSUM whose SEs are right. A per-round bootstrap (too slow here) that
    resamples only the raters conditions on the round's items and gives smaller SEs, which makes
    real alarms more frequent than simulated here; the binomial ``√(a(1−a)/n_pairs)`` ignores that
    pairs share items. Each run estimates its baseline from its first ``n_baseline`` rounds, as
    :func:`cusum_drift` does by default.

    Parameters
    ----------
    n_items, n_raters : int
        Items per round (≥ 3) and raters per round (≥ 1).
    baseline_accuracy : float, default 0.75
        In (0.5, 1), against the true order.
    drop : float, default 0.05
        In [0, baseline_accuracy − 0.5).
    n_rounds : int, default 20
        Length of a run without drift; drifted runs have ``change_at + n_rounds`` rounds.
    change_at : int, default 5
        First drifted round (≥ ``n_baseline``).
    shift : float, optional
        CUSUM reference drop; default the :func:`cusum_drift` default (0.05), so the result
        describes the alarm as the app runs it whatever ``drop`` is simulated.
    h : float, default 4.0
    n_baseline : int, default 3
    alpha : float, default 0.1
    n_sims : int, default 200
        Runs of each kind.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    AlarmCharacteristics
    """
    n_items = _check_positive_int(n_items, "n_items")
    if n_items < 3:
        raise ValueError(f"n_items must be at least 3, got {n_items}")
    n_raters = _check_positive_int(n_raters, "n_raters")
    baseline_accuracy = float(baseline_accuracy)
    if not 0.5 < baseline_accuracy < 1:
        raise ValueError(f"baseline_accuracy must be in (0.5, 1), got {baseline_accuracy!r}")
    drop = float(drop)
    if not 0 <= drop < baseline_accuracy - 0.5:
        raise ValueError(
            f"drop must be in [0, baseline_accuracy − 0.5) = [0, {baseline_accuracy - 0.5:g}), got {drop!r}"
        )
    n_rounds = _check_positive_int(n_rounds, "n_rounds")
    n_baseline = _check_positive_int(n_baseline, "n_baseline")
    if isinstance(change_at, bool) or not isinstance(change_at, (int, np.integer)) or change_at < n_baseline:
        raise ValueError(f"change_at must be an integer >= n_baseline = {n_baseline}, got {change_at!r}")
    if n_rounds <= n_baseline:
        raise ValueError(f"n_rounds = {n_rounds} leaves no round to test after {n_baseline} baseline rounds")
    shift = DEFAULT_SHIFT if shift is None else float(shift)
    if not np.isfinite(shift) or shift < 0:
        raise ValueError(f"shift must be a finite number >= 0, got {shift!r}")
    h = float(h)
    if not np.isfinite(h) or h <= 0:
        raise ValueError(f"h must be a positive number, got {h!r}")
    alpha = float(alpha)
    if not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")
    n_sims = _check_positive_int(n_sims, "n_sims")
    rng = _rng(random_state)

    s0 = _sigma_for_accuracy(baseline_accuracy)
    s1 = _sigma_for_accuracy(baseline_accuracy - drop)
    t_drift = int(change_at) + n_rounds
    sigma = np.r_[
        np.full(n_sims * n_rounds, s0),
        np.tile(np.r_[np.full(int(change_at), s0), np.full(n_rounds, s1)], n_sims),
    ]
    acc = _simulate_round_accuracy(sigma.size, n_items, n_raters, sigma, alpha, rng)
    null = acc[: n_sims * n_rounds].reshape(n_sims, n_rounds)
    drifted = acc[n_sims * n_rounds :].reshape(n_sims, t_drift)
    round_sd = float(np.std(null, ddof=1))

    def first_alarms(x):
        base = x[:, :n_baseline].mean(axis=1)
        stat = _cusum(x, np.full(x.shape, round_sd), base, n_baseline, shift)
        return _first_alarm(stat, h)

    null_first = first_alarms(null)
    drift_first = first_alarms(drifted)
    detected = drift_first >= change_at
    delay = (drift_first[detected] - change_at + 1).astype(float)
    return AlarmCharacteristics(
        false_alarm_rate=float(np.mean(null_first >= 0)),
        detection_delay_mean=float(delay.mean()) if delay.size else math.nan,
        detection_delay_median=float(np.median(delay)) if delay.size else math.nan,
        detection_rate=float(detected.mean()),
        early_alarm_rate=float(np.mean((drift_first >= 0) & (drift_first < change_at))),
        round_sd=round_sd,
        measured_baseline=float(np.concatenate([null.ravel(), drifted[:, :change_at].ravel()]).mean()),
        measured_drifted=float(drifted[:, change_at:].mean()),
        n_sims=n_sims,
        n_items=n_items,
        n_raters=n_raters,
        drop=drop,
        shift=shift,
    )
