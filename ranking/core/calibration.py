"""Agreement of automated image metrics with human pairwise judgments (metric calibration).

Pure numpy/scipy (no Django import).  The ``ranking`` services build the arrays from stored
judgments and metric scores and store what these functions return.

Conventions
-----------
* A human pairwise judgment of images *a* and *b* is ``outcome`` ∈ {+1 (a preferred), −1 (b
  preferred), 0 (tie)}.
* A metric's prediction comes from ``delta = score(a) − score(b)`` in the metric's own units (the
  caller flips the sign for lower-is-better metrics).  With a tie threshold ``epsilon ≥ 0`` (same
  units) the metric predicts a tie when ``|delta| ≤ epsilon`` and ``sign(delta)`` otherwise.
* Several metrics at once are passed as ``deltas`` of shape ``(n_judgments, n_metrics)`` (one column
  per metric), with ``epsilon`` a scalar or one value per metric.
* ``groups`` (optional, one label per judgment, e.g. the prompt) marks judgments that are not
  independent: bootstrap resamples, permutation swaps and cross-validation folds then move whole
  groups.  Without ``groups`` every judgment is its own group.
* ``random_state`` is ``None``, an ``int`` seed or a ``numpy.random.Generator``.

Pairwise accuracy conventions (``convention=``)
------------------------------------------------
``"acc_eq"``
    Exact-match rate over all judgments, ties included as a third class: 1 when the metric's
    prediction (tie when ``|delta| ≤ epsilon``) equals the human outcome, else 0.  This is
    ``acc_eq`` of Deutsch, Foster & Freitag (2023), "Ties Matter: Meta-Evaluating Modern Metrics
    with Pairwise Accuracy and Tie Calibration", EMNLP 2023 (called acc23 in the WMT23 metrics task).
``"pickscore"``
    1 for an exact match, 0.5 when exactly one of human and metric says tie, 0 otherwise — the
    evaluation of Kirstain et al. (2023), "Pick-a-Pic: An Open Dataset of User Preferences for
    Text-to-Image Generation", NeurIPS 2023.  (Pick-a-Pic thresholds the model's probability
    ``P(a ≻ b)`` around 0.5; for a score-softmax model that is a threshold on ``|delta|``.)
``"skip_ties"``
    Human ties are left out; a metric tie counts as wrong: preference accuracy over decided pairs,
    the convention of Xu et al. (2023), "ImageReward: Learning and Evaluating Human Preferences for
    Text-to-Image Generation", NeurIPS 2023.

Every accuracy is a ratio of per-judgment *scores* (in {0, 0.5, 1}) to per-judgment *weights*
(1, or 0 for human ties under ``"skip_ties"``); the weights never depend on the metric.  Internally
scores are kept in half-units (integers 0, 1, 2) so that counts, argmax and permutation
comparisons are exact.

Functions
---------
pairwise_accuracy        accuracy of one or many metrics under one convention
tie_calibration          the epsilon maximising accuracy, in-sample or cross-validated by group
pair_counts              concordant / discordant / tied pairs of two item-level score vectors
kendall_variants         tau_b, tau_c, tau_23, acc_23, Pearson and Spearman over all item pairs
bootstrap_ci             clustered percentile bootstrap CI of accuracy, many metrics at once
permutation_test         PERM-BOTH paired test of two metrics' accuracies
significance_clusters    metrics sorted by accuracy and grouped into significance ranks
human_ceiling            leave-one-rater-out accuracy of single raters against the others
davidson_probabilities   P(a ≻ b), P(tie), P(b ≻ a) under the Davidson model in delta
probability_calibration  cross-fitted logistic / Davidson calibration with ECE, Brier, reliability
reliability_diagram      equal-width reliability bins and the expected calibration error
precision_recall_curve   precision and recall of the gate ``score ≥ t`` for every distinct t
gating_threshold         threshold meeting a target precision or recall, with bootstrap CI
agreement_drift          accuracy per time window with CIs and a Cochran–Armitage trend test
metric_blend             non-negative blend of metrics under nested grouped cross-validation
group_folds              grouped cross-validation fold labels
calibration_report       the per-metric report the calibration pages show (one call)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize, special, stats

from ranking.core.errors import ConvergenceError

__all__ = [
    "AgreementDrift",
    "BootstrapCI",
    "CalibrationReport",
    "GatingThreshold",
    "HumanCeiling",
    "MetricBlend",
    "PairCounts",
    "PermutationTest",
    "PrecisionRecallCurve",
    "ProbabilityCalibration",
    "ReliabilityDiagram",
    "SignificanceClusters",
    "TieCalibration",
    "agreement_drift",
    "bootstrap_ci",
    "calibration_report",
    "davidson_probabilities",
    "gating_threshold",
    "group_folds",
    "human_ceiling",
    "kendall_variants",
    "metric_blend",
    "pair_counts",
    "pairwise_accuracy",
    "permutation_test",
    "precision_recall_curve",
    "probability_calibration",
    "reliability_diagram",
    "significance_clusters",
    "tie_calibration",
]

Convention = Literal["acc_eq", "pickscore", "skip_ties"]
CONVENTIONS: tuple[str, ...] = ("acc_eq", "pickscore", "skip_ties")

# A count matrix of the bootstrap is built in chunks of at most this many cells (resamples × groups).
_MAX_COUNT_CELLS = 4_000_000
# Fitted |β·delta| (in logits) beyond this means separation, not an estimate.
_MAX_LOGIT = 60.0


# --------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------


def _check_outcome(outcome, name: str = "outcome") -> np.ndarray:
    arr = np.asarray(outcome)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric (-1, 0, +1), got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    ok = (arr == 1) | (arr == 0) | (arr == -1)
    if not ok.all():
        raise ValueError(f"{name} must hold only -1, 0 and +1; found {arr[~ok][0]!r}")
    return arr.astype(np.int8)


def _check_values(values, n: int | None, name: str, *, allow_2d: bool = False) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim not in ((1, 2) if allow_2d else (1,)):
        shape = "(n,) or (n, n_metrics)" if allow_2d else "(n,)"
        raise ValueError(f"{name} must have shape {shape}, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.size == 0:
        raise ValueError(f"{name} is empty")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but outcome has {n} (length mismatch)")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains infinite values")
    return arr


def _check_convention(convention) -> str:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    return convention


def _check_epsilon(epsilon, n_metrics: int, name: str = "epsilon") -> np.ndarray:
    eps = np.asarray(epsilon, dtype=np.float64)
    if eps.ndim == 0:
        eps = np.full(n_metrics, float(eps))
    if eps.shape != (n_metrics,):
        raise ValueError(f"{name} must be a scalar or have shape ({n_metrics},), got shape {eps.shape}")
    if not np.isfinite(eps).all() or (eps < 0).any():
        raise ValueError(f"{name} must be finite and >= 0, got {epsilon!r}")
    return eps


def _group_codes(groups, n: int, name: str = "groups") -> tuple[np.ndarray, int]:
    """Integer codes ``0..G-1`` of ``groups`` (each judgment its own group when ``None``)."""
    if groups is None:
        return np.arange(n), n
    arr = np.asarray(groups)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} entries but outcome has {n} (length mismatch)")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    _, codes = np.unique(arr, return_inverse=True)
    codes = codes.reshape(-1)
    return codes, int(codes.max()) + 1


def _check_resamples(n_resamples, name: str = "n_resamples") -> int:
    if isinstance(n_resamples, bool) or int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"{name} must be a positive integer, got {n_resamples!r}")
    return int(n_resamples)


def _check_confidence(confidence) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return float(confidence)


# --------------------------------------------------------------------------------------------------
# Per-judgment scores
# --------------------------------------------------------------------------------------------------


def _predict(delta: np.ndarray, epsilon) -> np.ndarray:
    """The metric's predicted outcome: 0 when ``|delta| ≤ epsilon``, else ``sign(delta)``."""
    pred = np.sign(delta).astype(np.int8)
    pred[np.abs(delta) <= epsilon] = 0
    return pred


def _score2(outcome: np.ndarray, pred: np.ndarray, convention: str) -> np.ndarray:
    """Per-judgment score in half-units (0, 1, 2) of prediction ``pred`` against ``outcome``."""
    exact = pred == outcome
    if convention == "acc_eq":
        return 2 * exact.astype(np.int8)
    if convention == "pickscore":
        return (2 * exact + ((pred == 0) != (outcome == 0))).astype(np.int8)
    return 2 * (exact & (outcome != 0)).astype(np.int8)


def _weights(outcome: np.ndarray, convention: str) -> np.ndarray:
    """Per-judgment weight (0 or 1): 0 only for human ties under ``"skip_ties"``."""
    if convention == "skip_ties":
        return (outcome != 0).astype(np.int64)
    return np.ones(outcome.shape[0], dtype=np.int64)


def _scores_matrix(outcome, deltas, eps, convention) -> np.ndarray:
    """Half-unit scores of shape (n, n_metrics) for 2-D ``deltas``."""
    pred = _predict(deltas, eps[None, :])
    return _score2(outcome[:, None], pred, convention)


def _require_weight(total_weight, convention: str, what: str = "outcome") -> None:
    if total_weight == 0:
        raise ValueError(
            f"{what} has no decided (non-tie) judgments, so the {convention!r} accuracy is undefined"
        )


def pairwise_accuracy(outcome, delta, *, epsilon=0.0, convention: Convention = "acc_eq"):
    """Pairwise accuracy of a metric (or of several) against human pairwise judgments.

    Parameters
    ----------
    outcome : array_like of int, shape (n,)
        Human judgments: +1 (a preferred), −1 (b preferred), 0 (tie).
    delta : array_like of float, shape (n,) or (n, n_metrics)
        ``score(a) − score(b)`` of each metric, in the metric's units.
    epsilon : float or array_like of shape (n_metrics,), default 0.0
        Tie threshold(s), in the metric's units: the metric predicts a tie when ``|delta| ≤ epsilon``.
    convention : {"acc_eq", "pickscore", "skip_ties"}, default "acc_eq"
        How ties count (see the module docstring and its sources):

        * ``"acc_eq"`` — exact-match rate over three classes (Deutsch et al., 2023, acc_eq).
        * ``"pickscore"`` — 1 exact, 0.5 when exactly one side is a tie, else 0 (Kirstain et al., 2023).
        * ``"skip_ties"`` — human ties dropped, metric ties wrong (Xu et al., 2023, ImageReward).

    Returns
    -------
    float or numpy.ndarray
        Accuracy in [0, 1] (a float for 1-D ``delta``, one value per metric for 2-D ``delta``).

    Raises
    ------
    ValueError
        Length mismatch, ``outcome`` values outside {−1, 0, 1}, NaN or infinite ``delta``, empty
        input, negative ``epsilon``, unknown ``convention``, or ``"skip_ties"`` with only human ties.
    """
    y = _check_outcome(outcome)
    d = _check_values(delta, y.size, "delta", allow_2d=True)
    convention = _check_convention(convention)
    w_total = int(_weights(y, convention).sum())
    _require_weight(w_total, convention)
    if d.ndim == 1:
        eps = _check_epsilon(epsilon, 1)[0]
        s2 = _score2(y, _predict(d, eps), convention)
        return float(s2.sum(dtype=np.int64)) / (2 * w_total)
    eps = _check_epsilon(epsilon, d.shape[1])
    s2 = _scores_matrix(y, d, eps, convention)
    return s2.sum(axis=0, dtype=np.int64) / (2 * w_total)


# --------------------------------------------------------------------------------------------------
# Cross-validation folds
# --------------------------------------------------------------------------------------------------


def group_folds(groups, *, n_folds: int, random_state=None) -> np.ndarray:
    """Assign whole groups to ``n_folds`` cross-validation folds at random.

    Parameters
    ----------
    groups : array_like, shape (n,)
        Group label of each judgment (e.g. the prompt); judgments of one group share a fold.
    n_folds : int
        Number of folds, ``2 ≤ n_folds ≤ number of groups``.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    numpy.ndarray of int, shape (n,)
        Fold label in ``0..n_folds-1`` of each judgment; every fold is non-empty.

    Notes
    -----
    Groups are shuffled and cut into ``n_folds`` runs of about equal numbers of *judgments*
    (cumulative size).  When a very large group would leave a fold empty, groups are dealt
    round-robin over the shuffled order instead (equal numbers of groups per fold).
    """
    arr = np.asarray(groups)
    codes, n_groups = _group_codes(arr, arr.shape[0] if arr.ndim == 1 else -1)
    return _folds_from_codes(codes, n_groups, n_folds, np.random.default_rng(random_state))


def _folds_from_codes(codes, n_groups, n_folds, rng) -> np.ndarray:
    if isinstance(n_folds, bool) or int(n_folds) != n_folds or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    n_folds = int(n_folds)
    if n_folds > n_groups:
        raise ValueError(f"n_folds={n_folds} exceeds the number of groups ({n_groups})")
    sizes = np.bincount(codes, minlength=n_groups)
    perm = rng.permutation(n_groups)
    before = np.cumsum(sizes[perm]) - sizes[perm]
    fold_perm = (before * n_folds) // codes.size
    if np.unique(fold_perm).size < n_folds:
        fold_perm = np.arange(n_groups) % n_folds
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    fold_of_group[perm] = fold_perm
    return fold_of_group[codes]


# --------------------------------------------------------------------------------------------------
# Tie calibration
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TieCalibration:
    """Result of :func:`tie_calibration`; unpacks as ``epsilon, accuracy = tie_calibration(...)``.

    Attributes
    ----------
    epsilon : float
        Tie threshold (metric units) maximising the accuracy on all the data (the one to deploy).
    accuracy : float
        The reported accuracy: held-out (pooled over folds, each fold scored with the epsilon chosen
        on the other folds) when ``cross_validated``, else equal to ``in_sample_accuracy``.
    in_sample_accuracy : float
        Accuracy at ``epsilon`` on the data that chose it (optimistic).
    cross_validated : bool
    fold_epsilons : numpy.ndarray or None
        Epsilon chosen on the training part of each fold (``None`` in-sample).
    convention : str
    """

    epsilon: float
    accuracy: float
    in_sample_accuracy: float
    cross_validated: bool
    fold_epsilons: np.ndarray | None
    convention: str

    def __iter__(self) -> Iterator[float]:
        yield self.epsilon
        yield self.accuracy


def _tie_parts(y, d, convention):
    """Sorted |delta|, per-judgment gain of predicting a tie, and decided-prediction scores."""
    dec2 = _score2(y, np.sign(d).astype(np.int8), convention).astype(np.int64)
    tie2 = _score2(y, np.zeros_like(y), convention).astype(np.int64)
    a = np.abs(d)
    order = np.argsort(a, kind="stable")
    return a[order], (tie2 - dec2)[order], dec2, order


def _best_epsilon(a_sorted, gain_sorted, dec_total) -> tuple[float, int]:
    """Smallest candidate epsilon maximising the half-unit score total; candidates 0 and each |delta|."""
    ends = np.flatnonzero(np.r_[a_sorted[1:] != a_sorted[:-1], True])
    totals = dec_total + np.cumsum(gain_sorted)[ends]
    eps = a_sorted[ends]
    if a_sorted[0] > 0:
        totals = np.r_[dec_total, totals]
        eps = np.r_[0.0, eps]
    k = int(np.argmax(totals))
    return float(eps[k]), int(totals[k])


def tie_calibration(
    outcome,
    delta,
    *,
    groups=None,
    n_folds: int | None = None,
    convention: Convention = "acc_eq",
    random_state=None,
) -> TieCalibration:
    """Choose the tie threshold epsilon that maximises pairwise accuracy (tie calibration).

    Parameters
    ----------
    outcome : array_like of int, shape (n,)
        Human judgments in {−1, 0, +1}.
    delta : array_like of float, shape (n,)
        ``score(a) − score(b)`` of one metric.
    groups : array_like, shape (n,), optional
        Group of each judgment (e.g. prompt) for the folds; judgments of a group share a fold.
    n_folds : int, optional
        ``None`` (default): choose and report in-sample, as Deutsch et al. (2023) do.  Otherwise
        K-fold cross-validation by group: each fold is scored with the epsilon chosen on the other
        folds and the pooled held-out accuracy is reported, which is not optimistic.
    convention : {"acc_eq", "pickscore", "skip_ties"}, default "acc_eq"
        The accuracy being maximised (the tie calibration of the paper is for ``"acc_eq"``;
        ``"skip_ties"`` always gives epsilon 0 or a value below the smallest non-zero ``|delta|``).
    random_state : None, int or numpy.random.Generator
        Seeds the fold assignment.

    Returns
    -------
    TieCalibration

    Notes
    -----
    Tie calibration (Deutsch, Foster & Freitag, 2023): accuracy is a step function of
    epsilon that changes only at the values of ``|delta|``, so the candidates are 0 and every
    distinct ``|delta|``, and the search is exact.  With ``|delta|`` sorted once, the score total at
    each candidate is (scores of the decided predictions) + (cumulative gain of turning the smallest
    ``|delta|`` into ties), so the whole search is one sort and one cumulative sum — O(n log n);
    each cross-validation fold reuses the sort with the fold masked out (O(n) more per fold).
    Among equally accurate candidates the smallest epsilon is returned.
    """
    y = _check_outcome(outcome)
    d = _check_values(delta, y.size, "delta")
    convention = _check_convention(convention)
    w = _weights(y, convention)
    _require_weight(int(w.sum()), convention)
    a_sorted, gain_sorted, dec2, order = _tie_parts(y, d, convention)
    eps, total = _best_epsilon(a_sorted, gain_sorted, int(dec2.sum()))
    in_sample = total / (2 * int(w.sum()))
    if n_folds is None:
        return TieCalibration(eps, in_sample, in_sample, False, None, convention)

    codes, n_groups = _group_codes(groups, y.size)
    folds = _folds_from_codes(codes, n_groups, n_folds, np.random.default_rng(random_state))
    folds_sorted = folds[order]
    fold_eps = np.empty(int(n_folds))
    held_total = 0
    held_weight = 0
    for k in range(int(n_folds)):
        test = folds == k
        train_w = int(w[~test].sum())
        _require_weight(train_w, convention, f"the training part of fold {k}")
        gain_k = np.where(folds_sorted != k, gain_sorted, 0)
        fold_eps[k], _ = _best_epsilon(a_sorted, gain_k, int(dec2[~test].sum()))
        held_total += int(_score2(y[test], _predict(d[test], fold_eps[k]), convention).sum(dtype=np.int64))
        held_weight += int(w[test].sum())
    return TieCalibration(eps, held_total / (2 * held_weight), in_sample, True, fold_eps, convention)


# --------------------------------------------------------------------------------------------------
# Item-level rank correlations
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairCounts:
    """Classification of all ``n(n−1)/2`` item pairs by two score vectors (human, metric).

    Attributes
    ----------
    concordant, discordant : int
        Pairs ordered the same / the opposite way by both (neither tied).
    tied_human_only, tied_metric_only, tied_both : int
        Pairs tied in the human scores only, in the metric scores only, in both.
    n_pairs : int
        ``n(n−1)/2``, the sum of the five counts.
    """

    concordant: int
    discordant: int
    tied_human_only: int
    tied_metric_only: int
    tied_both: int
    n_pairs: int


def _dense_ranks(x: np.ndarray) -> np.ndarray:
    _, inv = np.unique(x, return_inverse=True)
    return inv.reshape(-1).astype(np.int64)


def _tied_pairs(codes: np.ndarray) -> int:
    c = np.bincount(codes).astype(np.int64)
    return int((c * (c - 1) // 2).sum())


def _count_inversions(x: np.ndarray) -> int:
    """Pairs ``i < j`` with ``x[i] > x[j]`` (strictly), by a bottom-up merge sort vectorised per level."""
    n = x.size
    if n < 2:
        return 0
    top = int(x.max()) + 1  # padding value, larger than every entry, placed at the end
    size = 1 << (n - 1).bit_length()
    a = np.full(size, top, dtype=np.int64)
    a[:n] = x
    inversions = 0
    width = 1
    while width < size:
        blocks = a.reshape(-1, 2 * width)
        n_blocks = blocks.shape[0]
        offset = (np.arange(n_blocks, dtype=np.int64) * (top + 1))[:, None]
        left = (blocks[:, :width] + offset).ravel()  # sorted: sorted blocks with increasing offsets
        right = (blocks[:, width:] + offset).ravel()
        # Left keys <= a right key = all left keys of earlier blocks + own block's left keys <= it.
        at_most = np.searchsorted(left, right, side="right")
        block_of_right = np.repeat(np.arange(n_blocks, dtype=np.int64), width)
        inversions += int(((block_of_right + 1) * width - at_most).sum())
        a = np.sort(blocks, axis=1, kind="stable").ravel()  # timsort merges the two sorted runs in O(width)
        width *= 2
    return inversions


def pair_counts(human_scores, metric_scores) -> PairCounts:
    """Concordant, discordant and tied item pairs of two score vectors, in O(n log n).

    Parameters
    ----------
    human_scores, metric_scores : array_like of float, shape (n_items,)
        Item-level scores (e.g. BT strengths, Likert means, checklist pass rates; a metric's score).

    Returns
    -------
    PairCounts

    Notes
    -----
    Ties are exact equality.  Human ties, metric ties and joint ties are counted from the run lengths
    of the sorted values (and of the sorted value pairs); discordant pairs are the inversions of the
    metric scores after a lexicographic sort by (human, metric), counted by a merge sort (Knight,
    1966, the algorithm behind ``scipy.stats.kendalltau``); concordant pairs are the remainder.
    """
    h = _check_values(human_scores, None, "human_scores")
    m = _check_values(metric_scores, h.size, "metric_scores")
    if h.size < 2:
        raise ValueError(f"human_scores needs at least 2 items, got {h.size}")
    n = h.size
    hr, mr = _dense_ranks(h), _dense_ranks(m)
    t_h = _tied_pairs(hr)
    t_m = _tied_pairs(mr)
    order = np.lexsort((mr, hr))
    hs, ms = hr[order], mr[order]
    run_starts = np.flatnonzero(np.r_[True, (hs[1:] != hs[:-1]) | (ms[1:] != ms[:-1]), True])
    runs = np.diff(run_starts).astype(np.int64)
    t_both = int((runs * (runs - 1) // 2).sum())
    discordant = _count_inversions(ms)
    total = n * (n - 1) // 2
    concordant = total - discordant - t_h - t_m + t_both
    return PairCounts(concordant, discordant, t_h - t_both, t_m - t_both, t_both, total)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    xc, yc = x - x.mean(), y - y.mean()
    # Plain reductions, not BLAS dot: on an oversubscribed machine a threaded dot of a short vector
    # can cost milliseconds.
    denom = np.sqrt(np.sum(xc * xc) * np.sum(yc * yc))
    if denom == 0:
        return float("nan")
    return float(np.clip(np.sum(xc * yc) / denom, -1.0, 1.0))


def kendall_variants(human_scores, metric_scores) -> dict[str, float]:
    r"""Kendall tau variants, Pearson and Spearman between item-level human and metric scores.

    Parameters
    ----------
    human_scores : array_like of float, shape (n_items,)
        Item-level human scores: BT strengths, Likert means, checklist pass rates…
    metric_scores : array_like of float, shape (n_items,)
        The metric's score of the same items.

    Returns
    -------
    dict
        ``"tau_b"``, ``"tau_c"``, ``"tau_23"``, ``"acc_23"``, ``"pearson"``, ``"spearman"`` (floats).

    Notes
    -----
    Over all :math:`N = n(n-1)/2` item pairs with :math:`C` concordant, :math:`D` discordant,
    :math:`T_h` / :math:`T_m` tied in human / metric scores only and :math:`T_{hm}` tied in both
    (Deutsch, Foster & Freitag, 2023):

    .. math::

        \tau_b = \frac{C-D}{\sqrt{(C+D+T_h)(C+D+T_m)}},\quad
        \tau_c = \frac{2(C-D)}{n^2 (k-1)/k},\quad
        \tau_{23} = \frac{C + T_{hm} - D - T_h - T_m}{N},\quad
        acc_{23} = \frac{C + T_{hm}}{N}

    with :math:`k` the smaller number of distinct values of the two vectors (Stuart's tau_c, as
    ``scipy.stats.kendalltau(variant="c")``).  tau_23 and acc_23 reward a metric for tying exactly
    the pairs humans tie.  Pearson is on the raw scores, Spearman on average ranks.

    tau_b, tau_c, Pearson and Spearman are ``NaN`` (documented exception to raising) when either
    vector is constant; tau_23 and acc_23 stay defined.  Counting is O(n log n) (:func:`pair_counts`).
    No epsilon is applied to metric scores (ties are exact equality).
    """
    h = _check_values(human_scores, None, "human_scores")
    m = _check_values(metric_scores, h.size, "metric_scores")
    pc = pair_counts(h, m)
    n = h.size
    c, d = pc.concordant, pc.discordant
    n_total = pc.n_pairs
    tied_h = pc.tied_human_only + pc.tied_both
    tied_m = pc.tied_metric_only + pc.tied_both
    if tied_h == n_total or tied_m == n_total:
        tau_b = tau_c = float("nan")
    else:
        tau_b = (c - d) / np.sqrt(float(n_total - tied_h)) / np.sqrt(float(n_total - tied_m))
        k = min(np.unique(h).size, np.unique(m).size)
        tau_c = 2.0 * (c - d) / (n * n * (k - 1) / k)
    tau_23 = (c + pc.tied_both - d - pc.tied_human_only - pc.tied_metric_only) / n_total
    acc_23 = (c + pc.tied_both) / n_total
    return {
        "tau_b": float(tau_b),
        "tau_c": float(tau_c),
        "tau_23": float(tau_23),
        "acc_23": float(acc_23),
        "pearson": _pearson(h, m),
        "spearman": _pearson(stats.rankdata(h), stats.rankdata(m)),
    }


# --------------------------------------------------------------------------------------------------
# Clustered bootstrap
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapCI:
    """Percentile bootstrap interval (floats for one metric, arrays of shape (n_metrics,) for many).

    Unpacks as ``estimate, low, high``.

    Attributes
    ----------
    estimate : float or numpy.ndarray
        The statistic on the data.
    low, high : float or numpy.ndarray
        Percentile interval bounds (``(1 − confidence)/2`` and ``(1 + confidence)/2`` quantiles).
    confidence : float
    n_resamples : int
    n_groups : int
        Number of resampled units (groups, or judgments when no groups were given).
    """

    estimate: float | np.ndarray
    low: float | np.ndarray
    high: float | np.ndarray
    confidence: float
    n_resamples: int
    n_groups: int

    def __iter__(self) -> Iterator[float | np.ndarray]:
        """Unpack as ``estimate, low, high = bootstrap_ci(...)``."""
        yield self.estimate
        yield self.low
        yield self.high


def _resample_counts(rng, n_groups: int, n_resamples: int) -> Iterator[np.ndarray]:
    """Chunks of the (resamples × groups) count matrix of a nonparametric bootstrap.

    Row ``b`` holds how often each group is drawn when ``n_groups`` groups are drawn with replacement
    (a Multinomial(n_groups, 1/n_groups) vector).  Chunks bound memory; there is no loop per resample.
    """
    chunk = max(1, _MAX_COUNT_CELLS // n_groups)
    for start in range(0, n_resamples, chunk):
        c = min(chunk, n_resamples - start)
        draws = rng.integers(0, n_groups, size=(c, n_groups))
        draws += np.arange(c, dtype=draws.dtype)[:, None] * n_groups
        yield np.bincount(draws.ravel(), minlength=c * n_groups).reshape(c, n_groups).astype(np.float64)


def _ratio_bootstrap(num_g, den_g, n_resamples, confidence, rng):
    """Percentile CI of ``Σ num / Σ den`` resampling groups; ``num_g`` (G, M), ``den_g`` (G,)."""
    n_groups = den_g.shape[0]
    ratios = np.empty((n_resamples, num_g.shape[1]))
    row = 0
    for counts in _resample_counts(rng, n_groups, n_resamples):
        den = counts @ den_g
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios[row : row + counts.shape[0]] = (counts @ num_g) / den[:, None]
        row += counts.shape[0]
    tail = (1 - confidence) / 2
    with np.errstate(invalid="ignore"):
        low, high = np.nanquantile(ratios, [tail, 1 - tail], axis=0)
    estimate = num_g.sum(axis=0) / den_g.sum()
    return estimate, low, high


def _group_sum(codes, n_groups, values) -> np.ndarray:
    """Per-group sums; ``values`` (n,) → (G,), (n, M) → (G, M)."""
    if values.ndim == 1:
        return np.bincount(codes, weights=values, minlength=n_groups)
    return np.stack(
        [np.bincount(codes, weights=values[:, j], minlength=n_groups) for j in range(values.shape[1])],
        axis=1,
    )


def bootstrap_ci(
    outcome,
    delta,
    *,
    epsilon=0.0,
    convention: Convention = "acc_eq",
    groups=None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    random_state=None,
) -> BootstrapCI:
    """Clustered percentile bootstrap CI of pairwise accuracy, for one metric or many at once.

    Parameters
    ----------
    outcome : array_like of int, shape (n,)
        Human judgments in {−1, 0, +1}.
    delta : array_like of float, shape (n,) or (n, n_metrics)
        ``score(a) − score(b)`` of each metric.
    epsilon : float or array_like of shape (n_metrics,), default 0.0
        Tie threshold(s) in metric units (e.g. from :func:`tie_calibration`).
    convention : {"acc_eq", "pickscore", "skip_ties"}, default "acc_eq"
    groups : array_like, shape (n,), optional
        Cluster of each judgment (e.g. prompt).  Whole groups are resampled with replacement, not
        judgments, so within-prompt correlation widens the interval as it should.
    n_resamples : int, default 1000
    confidence : float, default 0.95
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    BootstrapCI
        Floats for 1-D ``delta``, arrays of shape (n_metrics,) for 2-D ``delta``.

    Notes
    -----
    Accuracy is a ratio of sums of per-judgment scores and weights, so each group is reduced to its
    sums (one per metric, and one weight sum shared by all metrics).  A resample is a vector of
    group counts ~ Multinomial(G, 1/G); all resamples form a count matrix ``K`` (built in chunks,
    no loop per resample) and the resampled accuracies of every metric are ``(K S) / (K w)``.  All
    metrics share the same resamples.  Intervals are percentile intervals (Efron & Tibshirani, 1993);
    resamples with zero weight (possible with ``"skip_ties"``) are ignored.
    """
    y = _check_outcome(outcome)
    d = _check_values(delta, y.size, "delta", allow_2d=True)
    convention = _check_convention(convention)
    n_resamples = _check_resamples(n_resamples)
    confidence = _check_confidence(confidence)
    one = d.ndim == 1
    d2 = d[:, None] if one else d
    eps = _check_epsilon(epsilon, d2.shape[1])
    codes, n_groups = _group_codes(groups, y.size)
    w = _weights(y, convention)
    _require_weight(int(w.sum()), convention)
    s2 = _scores_matrix(y, d2, eps, convention).astype(np.float64) / 2
    est, low, high = _ratio_bootstrap(
        _group_sum(codes, n_groups, s2),
        _group_sum(codes, n_groups, w.astype(np.float64)),
        n_resamples,
        confidence,
        np.random.default_rng(random_state),
    )
    if one:
        return BootstrapCI(float(est[0]), float(low[0]), float(high[0]), confidence, n_resamples, n_groups)
    return BootstrapCI(est, low, high, confidence, n_resamples, n_groups)


# --------------------------------------------------------------------------------------------------
# Permutation tests
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PermutationTest:
    """Result of :func:`permutation_test`.

    Attributes
    ----------
    difference : float
        ``accuracy_1 − accuracy_2``.
    p_value : float
        ``(1 + #{resampled differences at least as extreme}) / (1 + n_resamples)``.
    accuracy_1, accuracy_2 : float
    n_resamples : int
    alternative : str
    """

    difference: float
    p_value: float
    accuracy_1: float
    accuracy_2: float
    n_resamples: int
    alternative: str


_ALTERNATIVES = ("two-sided", "greater", "less")
_EXACT_SWAP_GROUPS = 14  # up to 2^14 = 16,384 sign patterns: enumerate them (exact p-value)


def _swap_p_value(x2_g: np.ndarray, n_resamples: int, alternative: str, rng) -> float:
    """p-value of ``Σ x2_g`` under random sign flips of every group's difference ``x2_g`` (integers).

    Swapping two metrics' predictions in group g flips the sign of that group's score difference.
    With at most :data:`_EXACT_SWAP_GROUPS` groups of non-zero difference every one of the 2^g sign
    patterns is enumerated and the p-value is exact (the share of patterns at least as extreme,
    the observed one included): a Monte Carlo estimate would scatter around the exact value, and
    with few groups (few prompts) that value can be the smallest one attainable. Otherwise groups
    with equal ``|x2_g|`` = v are exchangeable, so the resampled total is exactly
    ``Σ_v v (2 B_v − k_v)`` with ``B_v ~ Binomial(k_v, 1/2)`` (k_v groups of magnitude v): the same
    distribution as flipping each group, drawn with one binomial per magnitude per resample.
    """
    observed = int(x2_g.sum())
    nonzero = x2_g[x2_g != 0].astype(np.int64)
    if nonzero.size <= _EXACT_SWAP_GROUPS:
        patterns = (np.arange(1 << nonzero.size)[:, None] >> np.arange(nonzero.size)[None, :]) & 1
        totals = (2 * patterns - 1) @ nonzero
        if alternative == "two-sided":
            return float(np.mean(np.abs(totals) >= abs(observed)))
        if alternative == "greater":
            return float(np.mean(totals >= observed))
        return float(np.mean(totals <= observed))
    magnitude_counts = np.bincount(np.abs(x2_g).astype(np.int64))
    values = np.flatnonzero(magnitude_counts)
    values = values[values > 0]
    if values.size == 0:
        resampled = np.zeros(n_resamples, dtype=np.int64)
    else:
        k = magnitude_counts[values]
        heads = rng.binomial(k[None, :], 0.5, size=(n_resamples, values.size))
        resampled = ((2 * heads - k[None, :]) * values[None, :]).sum(axis=1)
    if alternative == "two-sided":
        extreme = np.abs(resampled) >= abs(observed)
    elif alternative == "greater":
        extreme = resampled >= observed
    else:
        extreme = resampled <= observed
    return (1 + int(extreme.sum())) / (1 + n_resamples)


def permutation_test(
    outcome,
    delta_1,
    delta_2,
    *,
    epsilon_1: float = 0.0,
    epsilon_2: float = 0.0,
    convention: Convention = "acc_eq",
    groups=None,
    n_resamples: int = 1000,
    alternative: str = "two-sided",
    random_state=None,
) -> PermutationTest:
    """Paired permutation test (PERM-BOTH) of the accuracy difference of two metrics.

    Parameters
    ----------
    outcome : array_like of int, shape (n,)
        Human judgments in {−1, 0, +1}.
    delta_1, delta_2 : array_like of float, shape (n,)
        The two metrics' ``score(a) − score(b)`` on the same judgments.
    epsilon_1, epsilon_2 : float, default 0.0
        Each metric's own tie threshold (metric units).
    convention : {"acc_eq", "pickscore", "skip_ties"}, default "acc_eq"
    groups : array_like, shape (n,), optional
        Swap whole groups (e.g. prompts) instead of single judgments.
    n_resamples : int, default 1000
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
        ``"greater"``: H1 metric 1 is more accurate; ``"less"``: less accurate.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    PermutationTest

    Notes
    -----
    PERM-BOTH (Deutsch, Dror & Roth, 2021, "A Statistical Analysis of Summarization Evaluation
    Metrics using Resampling Methods", TACL): under H0 the two metrics are exchangeable, so each
    resample swaps the two metrics' predictions of every judgment (or group) with probability 1/2 and
    recomputes the accuracy difference.  Because each metric is scored with its own epsilon before
    swapping, metrics with different tie thresholds are compared fairly (as for pairwise Kendall
    comparisons in the WMT23 metrics task).  The accuracy denominator does not depend on the metric,
    so a swap flips the sign of the group's score difference and the resampled difference is drawn
    exactly by one binomial per distinct magnitude (see ``_swap_p_value``).  The p-value carries the
    +1 correction (Phipson & Smyth, 2010), so it is never 0; identical metrics give p = 1.
    """
    y = _check_outcome(outcome)
    d1 = _check_values(delta_1, y.size, "delta_1")
    d2 = _check_values(delta_2, y.size, "delta_2")
    convention = _check_convention(convention)
    n_resamples = _check_resamples(n_resamples)
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")
    e1 = _check_epsilon(epsilon_1, 1, "epsilon_1")[0]
    e2 = _check_epsilon(epsilon_2, 1, "epsilon_2")[0]
    codes, n_groups = _group_codes(groups, y.size)
    w_total = int(_weights(y, convention).sum())
    _require_weight(w_total, convention)
    s1 = _score2(y, _predict(d1, e1), convention).astype(np.int64)
    s2 = _score2(y, _predict(d2, e2), convention).astype(np.int64)
    x2_g = np.bincount(codes, weights=s1 - s2, minlength=n_groups).astype(np.int64)
    p = _swap_p_value(x2_g, n_resamples, alternative, np.random.default_rng(random_state))
    acc1 = int(s1.sum()) / (2 * w_total)
    acc2 = int(s2.sum()) / (2 * w_total)
    return PermutationTest(acc1 - acc2, p, acc1, acc2, n_resamples, alternative)


@dataclass(frozen=True)
class SignificanceClusters:
    """Result of :func:`significance_clusters`.

    Attributes
    ----------
    accuracy : numpy.ndarray, shape (n_metrics,)
        Accuracy of each metric (input order).
    order : numpy.ndarray of int, shape (n_metrics,)
        Metric indices from most to least accurate (stable for equal accuracy).
    rank : numpy.ndarray of int, shape (n_metrics,)
        Significance cluster of each metric (input order), 1 = best.
    p_values : numpy.ndarray, shape (n_metrics, n_metrics)
        ``p_values[i, j]``: one-sided PERM-BOTH p-value for "metric i is more accurate than metric j",
        filled where i precedes j in ``order``; ``NaN`` elsewhere.
    alpha : float
    """

    accuracy: np.ndarray
    order: np.ndarray
    rank: np.ndarray
    p_values: np.ndarray
    alpha: float


def significance_clusters(
    outcome,
    deltas,
    *,
    epsilon=0.0,
    convention: Convention = "acc_eq",
    groups=None,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    random_state=None,
) -> SignificanceClusters:
    """Sort metrics by accuracy and group them into significance clusters (ranks).

    Parameters
    ----------
    outcome : array_like of int, shape (n,)
    deltas : array_like of float, shape (n, n_metrics)
    epsilon : float or array_like of shape (n_metrics,), default 0.0
        Per-metric tie thresholds (typically from :func:`tie_calibration`).
    convention : {"acc_eq", "pickscore", "skip_ties"}, default "acc_eq"
    groups : array_like, shape (n,), optional
        Swap units of the permutation test (e.g. prompts).
    n_resamples : int, default 1000
    alpha : float, default 0.05
        Significance level.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    SignificanceClusters

    Notes
    -----
    The ranking rule of the WMT metrics tasks (Freitag et al., 2022/2023): metrics are sorted by
    accuracy; walking down the list, metric *i* opens a new cluster (rank + 1) when some metric of
    the current cluster — from the metric that opened it up to *i − 1* — is significantly more
    accurate than *i*, i.e. its one-sided PERM-BOTH p-value (:func:`permutation_test` with
    ``alternative="greater"``) is ``≤ alpha``.  So a cluster holds metrics not significantly beaten
    by any metric of their own cluster, and every metric is beaten by some metric of a better cluster.
    All pairs (i before j) are tested; each pair uses independent random swaps.
    """
    y = _check_outcome(outcome)
    d = _check_values(deltas, y.size, "deltas", allow_2d=True)
    if d.ndim == 1:
        d = d[:, None]
    convention = _check_convention(convention)
    n_resamples = _check_resamples(n_resamples)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    eps = _check_epsilon(epsilon, d.shape[1])
    codes, n_groups = _group_codes(groups, y.size)
    w_total = int(_weights(y, convention).sum())
    _require_weight(w_total, convention)
    s2 = _scores_matrix(y, d, eps, convention).astype(np.float64)
    totals = s2.sum(axis=0)
    accuracy = totals / (2 * w_total)
    sums = _group_sum(codes, n_groups, s2).astype(np.int64)
    n_metrics = d.shape[1]
    order = np.argsort(-totals, kind="stable")
    rng = np.random.default_rng(random_state)
    p = np.full((n_metrics, n_metrics), np.nan)
    for a in range(n_metrics):
        for b in range(a + 1, n_metrics):
            i, j = order[a], order[b]
            p[i, j] = _swap_p_value(sums[:, i] - sums[:, j], n_resamples, "greater", rng)
    rank = np.empty(n_metrics, dtype=np.int64)
    rank[order] = _assign_ranks(p[np.ix_(order, order)], alpha)
    return SignificanceClusters(accuracy, order, rank, p, float(alpha))


def _assign_ranks(p_sorted: np.ndarray, alpha: float) -> np.ndarray:
    """Cluster ranks of metrics already sorted best first.

    ``p_sorted[a, b]`` (a < b) is the p-value for "the metric at position a beats the one at b".
    The metric at position b opens a new cluster when any metric from the start of the current
    cluster up to b − 1 beats it with ``p ≤ alpha``.
    """
    n = p_sorted.shape[0]
    ranks = np.empty(n, dtype=np.int64)
    current, start = 1, 0
    for b in range(n):
        if b > start and bool((p_sorted[start:b, b] <= alpha).any()):
            current += 1
            start = b
        ranks[b] = current
    return ranks


# --------------------------------------------------------------------------------------------------
# Human ceiling
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HumanCeiling:
    """Result of :func:`human_ceiling`.

    Attributes
    ----------
    accuracy : float
        Pooled accuracy of single raters' judgments against the reference built from the others.
    n_scored : int
        Judgments that could be scored (their pair has a judgment by another rater; under
        ``"skip_ties"`` also a decided reference).
    n_pairs : int
        Distinct pairs with judgments from at least two raters.
    raters : numpy.ndarray
        Rater ids with at least one scored judgment (sorted).
    rater_accuracy : numpy.ndarray
        The same accuracy per rater.
    reference : str
    convention : str
    """

    accuracy: float
    n_scored: int
    n_pairs: int
    raters: np.ndarray
    rater_accuracy: np.ndarray
    reference: str
    convention: str

    def share(self, accuracy):
        """A metric's accuracy as a share of this ceiling (``accuracy / self.accuracy``)."""
        return np.asarray(accuracy, dtype=np.float64) / self.accuracy


# Half-unit score table [pred + 1, ref + 1] of predicting pred when ref is the reference answer.
def _score_table(convention: str) -> tuple[np.ndarray, np.ndarray]:
    labels = np.array([-1, 0, 1], dtype=np.int8)
    pred = np.repeat(labels, 3)
    ref = np.tile(labels, 3)
    table = _score2(ref, pred, convention).reshape(3, 3).astype(np.int64)
    weight = _weights(labels, convention)  # by reference answer
    return table, weight


def human_ceiling(
    outcome,
    pair_ids,
    rater_ids,
    *,
    convention: Convention = "acc_eq",
    reference: str = "majority",
) -> HumanCeiling:
    """Leave-one-rater-out accuracy of a single human rater (the "single human" line).

    Parameters
    ----------
    outcome : array_like of int, shape (n,)
        Judgments in {−1, 0, +1}, oriented the same way for every judgment of a pair (a = the same
        image).
    pair_ids : array_like, shape (n,)
        Which image pair each judgment is about.
    rater_ids : array_like, shape (n,)
        Who made each judgment.
    convention : {"acc_eq", "pickscore", "skip_ties"}, default "acc_eq"
        Scoring, with the held-out rater in the metric's place and the others as the human reference.
    reference : {"majority", "each"}, default "majority"
        ``"majority"``: each judgment is scored against the *plurality answer of the other raters* on
        the same pair (all of the held-out rater's judgments of that pair are removed); when no answer
        has a strict plurality (e.g. one "a" and one "b") the reference is a tie.  ``"each"``: each
        judgment is scored against every other rater's judgment of the pair, each counted once (the
        mean pairwise inter-rater accuracy).

    Returns
    -------
    HumanCeiling

    Notes
    -----
    The accuracy pools every scored judgment (sum of scores / sum of weights), so raters who judged
    more count more; ``rater_accuracy`` gives each rater's own figure.  Pairs judged by one rater only
    are not scored.  A metric is a deterministic predictor, so ``"majority"`` is the fairer ceiling
    (a single rater against the consensus); ``"each"`` is lower (rater–rater agreement).
    """
    y = _check_outcome(outcome)
    convention = _check_convention(convention)
    if reference not in ("majority", "each"):
        raise ValueError(f"reference must be 'majority' or 'each', got {reference!r}")
    pair_codes, n_pairs = _group_codes(pair_ids, y.size, "pair_ids")
    rater_arr = np.asarray(rater_ids)
    rater_codes, n_raters = _group_codes(rater_arr, y.size, "rater_ids")
    k = (y + 1).astype(np.int64)
    per_pair = np.bincount(pair_codes * 3 + k, minlength=3 * n_pairs).reshape(n_pairs, 3)
    pr_codes, pr_index = np.unique(pair_codes * n_raters + rater_codes, return_inverse=True)
    pr_index = pr_index.reshape(-1)
    per_pair_rater = np.bincount(pr_index * 3 + k, minlength=3 * pr_codes.size).reshape(-1, 3)
    others = per_pair[pair_codes] - per_pair_rater[pr_index]  # (n, 3) counts of -1, 0, +1
    has_others = others.sum(axis=1) > 0
    table, ref_weight = _score_table(convention)

    if reference == "majority":
        top = others.max(axis=1)
        unique_top = (others == top[:, None]).sum(axis=1) == 1
        ref = np.where(unique_top, others.argmax(axis=1) - 1, 0)
        s2 = table[k, ref + 1]
        w = ref_weight[ref + 1] * has_others
        s2 = s2 * w
    else:
        s2 = (others * table[k]).sum(axis=1)
        w = (others * ref_weight[None, :]).sum(axis=1)
    total_w = int(w.sum())
    if total_w == 0:
        raise ValueError(
            "no judgment can be scored: pair_ids has no pair judged by two raters"
            + (" with a decided reference" if convention == "skip_ties" else "")
        )
    scored = w > 0
    per_rater_s = np.bincount(rater_codes, weights=s2, minlength=n_raters)
    per_rater_w = np.bincount(rater_codes, weights=w, minlength=n_raters)
    keep = per_rater_w > 0
    rater_labels = np.unique(rater_arr)
    pairs_multi = int((np.bincount(pr_codes // n_raters, minlength=n_pairs) >= 2).sum())
    return HumanCeiling(
        accuracy=int(s2.sum()) / (2 * total_w),
        n_scored=int(scored.sum()),
        n_pairs=pairs_multi,
        raters=rater_labels[keep],
        rater_accuracy=per_rater_s[keep] / (2 * per_rater_w[keep]),
        reference=reference,
        convention=convention,
    )


# --------------------------------------------------------------------------------------------------
# Probability calibration
# --------------------------------------------------------------------------------------------------


def davidson_probabilities(delta, *, beta: float, nu: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Outcome probabilities of the Davidson model in the metric difference.

    .. math::

        P(a \succ b) = \frac{e^{\beta\delta/2}}{Z},\quad P(b \succ a) = \frac{e^{-\beta\delta/2}}{Z},
        \quad P(\text{tie}) = \frac{\nu}{Z},\quad Z = e^{\beta\delta/2} + e^{-\beta\delta/2} + \nu

    Parameters
    ----------
    delta : array_like of float
        Metric differences ``score(a) − score(b)``.
    beta : float
        Slope in logits per metric unit; with ``nu = 0`` this is the logistic
        ``P(a ≻ b) = σ(β δ)``.
    nu : float
        Tie parameter, ``≥ 0`` (``P(tie) = ν / (2 + ν)`` at δ = 0).

    Returns
    -------
    p_a, p_tie, p_b : numpy.ndarray
        Same shape as ``delta``; they sum to 1.
    """
    if not np.isfinite(beta):
        raise ValueError(f"beta must be finite, got {beta!r}")
    if not (np.isfinite(nu) and nu >= 0):
        raise ValueError(f"nu must be finite and >= 0, got {nu!r}")
    u = 0.5 * beta * np.asarray(delta, dtype=np.float64)
    log_nu = np.log(nu) if nu > 0 else -np.inf
    log_z = np.logaddexp(np.logaddexp(u, -u), log_nu)
    return np.exp(u - log_z), np.exp(log_nu - log_z), np.exp(-u - log_z)


def _fit_davidson(x, y, *, ties: bool, max_iter: int, tol: float) -> tuple[float, float]:
    """ML (β, log ν) on standardised differences ``x`` by Newton's method; log ν = -inf without ties.

    The negative log-likelihood is convex in (β, log ν) (a log-sum-exp of affine functions minus a
    linear term), so Newton with backtracking converges; separation shows as divergence.
    """
    a = (y == 1).astype(np.float64)
    b = (y == -1).astype(np.float64)
    t = (y == 0).astype(np.float64)
    n = y.size
    half_x = 0.5 * x

    def nll(theta):
        u = theta[0] * half_x
        if ties:
            log_z = np.logaddexp(np.logaddexp(u, -u), theta[1])
            return float(np.sum(log_z - a * u + b * u - t * theta[1]))
        log_z = np.logaddexp(u, -u)
        return float(np.sum(log_z - a * u + b * u))

    if ties:
        share = t.mean()
        theta = np.array([0.0, np.log(2 * share / (1 - share))])
    else:
        theta = np.array([0.0])
    value = nll(theta)
    for _ in range(max_iter):
        u = theta[0] * half_x
        log_z = np.logaddexp(np.logaddexp(u, -u), theta[1]) if ties else np.logaddexp(u, -u)
        pa, pb = np.exp(u - log_z), np.exp(-u - log_z)
        diff = pa - pb
        g_beta = np.sum(half_x * (diff - (a - b)))
        h_bb = np.sum(half_x**2 * ((pa + pb) - diff**2))
        if ties:
            pt = np.exp(theta[1] - log_z)
            grad = np.array([g_beta, np.sum(pt - t)])
            h_bt = -np.sum(half_x * diff * pt)
            h_tt = np.sum(pt * (1 - pt))
            hess = np.array([[h_bb, h_bt], [h_bt, h_tt]])
        else:
            grad = np.array([g_beta])
            hess = np.array([[h_bb]])
        if np.max(np.abs(grad)) <= tol * n:
            return float(theta[0]), float(theta[1]) if ties else -np.inf
        try:
            step = np.linalg.solve(hess + 1e-12 * np.eye(hess.shape[0]), grad)
        except np.linalg.LinAlgError as exc:  # pragma: no cover - Hessian is PSD with a ridge
            raise ConvergenceError(f"Davidson fit: singular Hessian ({exc})") from exc
        scale = 1.0
        while True:
            candidate = theta - scale * step
            new_value = nll(candidate)
            if new_value <= value - 1e-4 * scale * float(grad @ step) or scale < 1e-10:
                break
            scale *= 0.5
        theta, value = candidate, new_value
        if abs(theta[0]) * np.max(np.abs(half_x)) > _MAX_LOGIT or (ties and abs(theta[1]) > _MAX_LOGIT):
            raise ConvergenceError(
                "probability calibration diverged: the human outcomes are (almost) perfectly "
                "separated by delta, so the maximum-likelihood slope is infinite"
            )
    raise ConvergenceError(f"probability calibration did not converge in max_iter={max_iter} iterations")


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Equal-width reliability bins of predicted probabilities against observed frequencies.

    Attributes
    ----------
    bin_edges : numpy.ndarray, shape (n_bins + 1,)
    mean_predicted : numpy.ndarray, shape (n_bins,)
        Mean predicted probability in each bin (``NaN`` for an empty bin).
    observed_frequency : numpy.ndarray, shape (n_bins,)
        Share of events in each bin (``NaN`` for an empty bin).
    count : numpy.ndarray of int, shape (n_bins,)
    ece : float
        Expected calibration error ``Σ_b (n_b / n) |mean_predicted_b − observed_frequency_b|``.
    """

    bin_edges: np.ndarray
    mean_predicted: np.ndarray
    observed_frequency: np.ndarray
    count: np.ndarray
    ece: float


def reliability_diagram(predicted, observed, *, n_bins: int = 15) -> ReliabilityDiagram:
    """Reliability-diagram data and the expected calibration error (ECE).

    Parameters
    ----------
    predicted : array_like of float in [0, 1], shape (n,)
        Predicted probability of an event.
    observed : array_like of bool or 0/1, shape (n,)
        Whether the event happened.
    n_bins : int, default 15
        Equal-width bins on [0, 1]; bin *b* is ``[b/n_bins, (b+1)/n_bins)``, the last one closed.

    Returns
    -------
    ReliabilityDiagram

    Notes
    -----
    ECE with equal-width bins as in Guo et al. (2017), "On Calibration of Modern Neural Networks"
    (15 bins there).  It is biased upwards for small bins: with n judgments and B bins a perfectly
    calibrated predictor has ECE of order ``sqrt(B / n)``.
    """
    p = _check_values(predicted, None, "predicted")
    o = _check_values(observed, p.size, "observed")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("predicted must lie in [0, 1]")
    if not np.isin(o, (0.0, 1.0)).all():
        raise ValueError("observed must hold only 0/1 (or booleans)")
    if isinstance(n_bins, bool) or int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    n_bins = int(n_bins)
    index = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=p, minlength=n_bins) / count
        freq = np.bincount(index, weights=o, minlength=n_bins) / count
    filled = count > 0
    ece = float(np.sum(count[filled] * np.abs(mean_p[filled] - freq[filled])) / p.size)
    return ReliabilityDiagram(np.linspace(0.0, 1.0, n_bins + 1), mean_p, freq, count, ece)


@dataclass(frozen=True)
class ProbabilityCalibration:
    """Result of :func:`probability_calibration`.

    Attributes
    ----------
    model : str
        ``"davidson"`` or ``"logistic"``.
    beta : float
        Slope fitted on all the data, logits per metric unit of delta.
    tie_param : float
        Davidson ν fitted on all the data (0 for ``"logistic"`` or when there are no ties).
    ece : float
        Held-out ECE of ``P(a ≻ b)`` for the event "a preferred" (``n_bins`` equal-width bins).
    brier : float
        Held-out Brier score: for ``"davidson"`` the three-outcome score
        ``mean Σ_k (p_k − 1[outcome = k])²`` (range 0–2); for ``"logistic"`` the binary one (0–1).
    log_loss : float
        Held-out mean negative log-likelihood (natural log).
    reliability : ReliabilityDiagram
        Held-out reliability data for ``P(a ≻ b)``.
    n_evaluated : int
        Judgments evaluated (all for ``"davidson"``, the non-tie ones for ``"logistic"``).
    fold_beta, fold_tie_param : numpy.ndarray or None
        Parameters fitted on each fold's training part (``None`` in-sample).
    cross_validated : bool
    """

    model: str
    beta: float
    tie_param: float
    ece: float
    brier: float
    log_loss: float
    reliability: ReliabilityDiagram
    n_evaluated: int
    fold_beta: np.ndarray | None
    fold_tie_param: np.ndarray | None
    cross_validated: bool

    def predict(self, delta) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(P(a ≻ b), P(tie), P(b ≻ a))`` at the given deltas under the all-data fit."""
        return davidson_probabilities(delta, beta=self.beta, nu=self.tie_param)


def probability_calibration(
    outcome,
    delta,
    *,
    model: str = "davidson",
    groups=None,
    n_folds: int | None = 5,
    n_bins: int = 15,
    random_state=None,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> ProbabilityCalibration:
    r"""Calibrate a metric difference into outcome probabilities and measure held-out calibration.

    Parameters
    ----------
    outcome : array_like of int, shape (n,)
        Human judgments in {−1, 0, +1}.
    delta : array_like of float, shape (n,)
        ``score(a) − score(b)``.
    model : {"davidson", "logistic"}, default "davidson"
        ``"davidson"``: :math:`P(a\succ b) \propto e^{\beta\delta/2}`,
        :math:`P(b\succ a) \propto e^{-\beta\delta/2}`, :math:`P(\text{tie}) \propto \nu`
        (Davidson, 1970, with the metric difference in place of the strength difference);
        β and ν by maximum likelihood on all judgments.  ``"logistic"``: the no-tie model
        :math:`P(a\succ b) = \sigma(\beta\delta)`, fitted and evaluated on the non-tie judgments only.
        Both are symmetric (no intercept) because the a/b order is arbitrary.
    groups : array_like, shape (n,), optional
        Fold groups (e.g. prompt).
    n_folds : int or None, default 5
        Parameters are fitted on the training folds and every judgment is predicted by the fit that
        did not see it (cross-fitting); the metrics are computed on these held-out predictions.
        ``None`` evaluates in-sample (optimistic).
    n_bins : int, default 15
        Reliability bins for the ECE.
    random_state : None, int or numpy.random.Generator
        Seeds the folds.
    max_iter, tol : int, float
        Newton iterations and gradient tolerance (per judgment).

    Returns
    -------
    ProbabilityCalibration

    Raises
    ------
    ConvergenceError
        If the outcomes are perfectly separated by delta (the ML slope is infinite) or Newton's
        method does not converge.
    ValueError
        Bad input; ``"logistic"`` without decided judgments; all-zero ``delta``.

    Notes
    -----
    ``delta`` is divided by its root mean square before fitting (reported β is in original units).
    Without ties in the training data the Davidson fit has ν = 0 and equals the logistic model.
    """
    y = _check_outcome(outcome)
    d = _check_values(delta, y.size, "delta")
    if model not in ("davidson", "logistic"):
        raise ValueError(f"model must be 'davidson' or 'logistic', got {model!r}")
    if model == "logistic":
        keep = y != 0
        if not keep.any():
            raise ValueError("outcome has no decided (non-tie) judgments to fit the logistic model")
        y, d = y[keep], d[keep]
        groups = None if groups is None else np.asarray(groups)[keep]
    scale = float(np.sqrt(np.mean(d * d)))
    if scale == 0:
        raise ValueError("delta is zero everywhere; there is no slope to fit")
    x = d / scale

    def fit(mask):
        n_ties = int((y[mask] == 0).sum())
        if n_ties == int(mask.sum()):
            raise ValueError("outcome holds only ties (in a training part); the slope is not identifiable")
        ties = model == "davidson" and n_ties > 0
        ym, xm = y[mask], x[mask]
        sides = np.sign(ym[(ym != 0) & (xm != 0)] * xm[(ym != 0) & (xm != 0)])
        informative_ties = bool(((ym == 0) & (xm != 0)).any())
        if sides.size and np.unique(sides).size == 1 and not informative_ties:
            raise ConvergenceError(
                "probability calibration has no finite maximum-likelihood slope: delta separates the "
                "decided judgments perfectly (and no tie has a non-zero delta)"
            )
        b, log_nu = _fit_davidson(x[mask], y[mask], ties=ties, max_iter=max_iter, tol=tol)
        return b / scale, (float(np.exp(log_nu)) if ties else 0.0)

    beta, nu = fit(np.ones(y.size, dtype=bool))
    if n_folds is None:
        pa, pt, pb = davidson_probabilities(d, beta=beta, nu=nu)
        fold_beta = fold_nu = None
    else:
        codes, n_groups = _group_codes(groups, y.size)
        folds = _folds_from_codes(codes, n_groups, n_folds, np.random.default_rng(random_state))
        pa, pt, pb = np.empty(y.size), np.empty(y.size), np.empty(y.size)
        fold_beta, fold_nu = np.empty(int(n_folds)), np.empty(int(n_folds))
        for k in range(int(n_folds)):
            test = folds == k
            fold_beta[k], fold_nu[k] = fit(~test)
            pa[test], pt[test], pb[test] = davidson_probabilities(d[test], beta=fold_beta[k], nu=fold_nu[k])
    event_a = (y == 1).astype(np.float64)
    diagram = reliability_diagram(pa, event_a, n_bins=n_bins)
    tiny = np.finfo(np.float64).tiny
    if model == "davidson":
        brier = float(np.mean((pa - event_a) ** 2 + (pt - (y == 0)) ** 2 + (pb - (y == -1)) ** 2))
        p_obs = np.where(y == 1, pa, np.where(y == -1, pb, pt))
    else:
        brier = float(np.mean((pa - event_a) ** 2))
        p_obs = np.where(y == 1, pa, pb)
    log_loss = float(-np.mean(np.log(np.maximum(p_obs, tiny))))
    return ProbabilityCalibration(
        model=model,
        beta=float(beta),
        tie_param=float(nu),
        ece=diagram.ece,
        brier=brier,
        log_loss=log_loss,
        reliability=diagram,
        n_evaluated=int(y.size),
        fold_beta=fold_beta,
        fold_tie_param=fold_nu,
        cross_validated=n_folds is not None,
    )


# --------------------------------------------------------------------------------------------------
# Gating thresholds
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrecisionRecallCurve:
    """Precision and recall of the gate ``pass ⇔ score ≥ t`` at every distinct score t (ascending).

    Attributes
    ----------
    thresholds : numpy.ndarray, shape (k,)
        Distinct scores, ascending.
    precision : numpy.ndarray, shape (k,)
        Share of human-passed items among the items the gate passes.
    recall : numpy.ndarray, shape (k,)
        Share of human-passed items that the gate passes.
    n_pass : numpy.ndarray of int, shape (k,)
        Items the gate passes.
    n_true_pass : numpy.ndarray of int, shape (k,)
        Items passed by both the gate and the humans.
    """

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    n_pass: np.ndarray
    n_true_pass: np.ndarray


def _check_labels(passed, n: int) -> np.ndarray:
    lab = _check_values(passed, n, "passed")
    if not np.isin(lab, (0.0, 1.0)).all():
        raise ValueError("passed must hold only booleans or 0/1")
    lab = lab.astype(bool)
    if not lab.any():
        raise ValueError("passed has no positive (human-passed) item; precision and recall are undefined")
    return lab


def precision_recall_curve(scores, passed) -> PrecisionRecallCurve:
    """Precision/recall of a pass/fail gate on a metric against binary human pass labels.

    Parameters
    ----------
    scores : array_like of float, shape (n_items,)
        Metric score per item (higher passes).
    passed : array_like of bool, shape (n_items,)
        Human pass label per item (e.g. majority of raters said "acceptable").

    Returns
    -------
    PrecisionRecallCurve
    """
    s = _check_values(scores, None, "scores")
    lab = _check_labels(passed, s.size)
    order = np.argsort(s, kind="stable")
    s_sorted, lab_sorted = s[order], lab[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    pos_before = np.r_[0, np.cumsum(lab_sorted)][starts]
    n_pass = s.size - starts
    tp = int(lab.sum()) - pos_before
    return PrecisionRecallCurve(s_sorted[starts], tp / n_pass, tp / lab.sum(), n_pass, tp)


@dataclass(frozen=True)
class GatingThreshold:
    """Result of :func:`gating_threshold`.

    Attributes
    ----------
    threshold : float
        Pass ⇔ ``score ≥ threshold``.
    target : str
        ``"precision"`` or ``"recall"``.
    target_value : float
    precision, recall : float
        Achieved on the data at ``threshold``.
    ci_low, ci_high : float
        Bootstrap percentile CI of the targeted rate at this fixed threshold.
    curve : PrecisionRecallCurve
    """

    threshold: float
    target: str
    target_value: float
    precision: float
    recall: float
    ci_low: float
    ci_high: float
    curve: PrecisionRecallCurve


def gating_threshold(
    scores,
    passed,
    *,
    target_precision: float | None = None,
    target_recall: float | None = None,
    groups=None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    random_state=None,
) -> GatingThreshold:
    """Recommend a pass threshold on a metric that meets a target precision or recall.

    Parameters
    ----------
    scores : array_like of float, shape (n_items,)
    passed : array_like of bool, shape (n_items,)
    target_precision, target_recall : float in (0, 1]
        Give exactly one.  ``target_precision``: the lowest threshold whose precision reaches it
        (so recall is as high as possible).  ``target_recall``: among thresholds whose recall reaches
        it, the one with the highest precision (ties: the lower threshold).
    groups : array_like, shape (n_items,), optional
        Cluster labels for the bootstrap (e.g. prompt); items by default.
    n_resamples : int, default 1000
    confidence : float, default 0.95
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    GatingThreshold

    Raises
    ------
    ValueError
        If no threshold meets the target (the message gives the best achievable value).

    Notes
    -----
    The CI resamples items (or groups) at the *chosen* threshold; it does not include the
    uncertainty of choosing the threshold on the same data, which makes the achieved rate
    optimistic — choose on one sample and check on another when that matters.
    """
    if (target_precision is None) == (target_recall is None):
        raise ValueError("give exactly one of target_precision and target_recall")
    target = "precision" if target_precision is not None else "recall"
    value = float(target_precision if target_precision is not None else target_recall)
    if not 0 < value <= 1:
        raise ValueError(f"target_{target} must be in (0, 1], got {value!r}")
    curve = precision_recall_curve(scores, passed)
    s = _check_values(scores, None, "scores")
    lab = _check_labels(passed, s.size)
    rate = curve.precision if target == "precision" else curve.recall
    meets = np.flatnonzero(rate >= value)
    if meets.size == 0:
        raise ValueError(f"no threshold reaches a {target} of {value:g} (the best is {rate.max():.4f})")
    # Precision target: the lowest threshold.  Recall target: the first (lowest) precision maximum.
    k = int(meets[0]) if target == "precision" else int(meets[np.argmax(curve.precision[meets])])
    t = float(curve.thresholds[k])
    gate = s >= t
    codes, n_groups = _group_codes(groups, s.size)
    num = _group_sum(codes, n_groups, (gate & lab).astype(np.float64))[:, None]
    den = _group_sum(codes, n_groups, (gate if target == "precision" else lab).astype(np.float64))
    _, low, high = _ratio_bootstrap(
        num,
        den,
        _check_resamples(n_resamples),
        _check_confidence(confidence),
        np.random.default_rng(random_state),
    )
    return GatingThreshold(
        threshold=t,
        target=target,
        target_value=value,
        precision=float(curve.precision[k]),
        recall=float(curve.recall[k]),
        ci_low=float(low[0]),
        ci_high=float(high[0]),
        curve=curve,
    )


# --------------------------------------------------------------------------------------------------
# Drift over time
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgreementDrift:
    """Result of :func:`agreement_drift`.

    Attributes
    ----------
    window : numpy.ndarray of int, shape (n_windows,)
        Window ids with data, ascending.
    accuracy, low, high : numpy.ndarray, shape (n_windows,)
        Accuracy per window and its clustered bootstrap percentile CI.
    n_judgments : numpy.ndarray of int, shape (n_windows,)
    slope : float
        Least-squares change in per-judgment score per window id (accuracy points per window).
    trend_z : float
        Cochran–Armitage z statistic (positive: agreement increases over time).
    trend_p_value : float
        Two-sided normal p-value of the trend.  ``slope``, ``trend_z`` and ``trend_p_value`` are
        ``NaN`` with a single window or constant scores (documented exception to raising).
    """

    window: np.ndarray
    accuracy: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_judgments: np.ndarray
    slope: float
    trend_z: float
    trend_p_value: float


def _window_ids(n, windows, timestamps, window_length) -> np.ndarray:
    if (windows is None) == (timestamps is None):
        raise ValueError("give exactly one of windows and timestamps")
    if windows is not None:
        win = np.asarray(windows)
        if win.shape != (n,):
            raise ValueError(f"windows must have shape ({n},), got {win.shape} (length mismatch)")
        if win.dtype.kind not in "iu":
            raise ValueError(f"windows must hold integer window ids, got dtype {win.dtype}")
        return win.astype(np.int64)
    if window_length is None:
        raise ValueError("window_length is required with timestamps")
    ts = np.asarray(timestamps)
    if ts.shape != (n,):
        raise ValueError(f"timestamps must have shape ({n},), got {ts.shape} (length mismatch)")
    if ts.dtype.kind == "M":
        ts = ts.astype("datetime64[ns]").astype(np.int64).astype(np.float64)
        length = np.timedelta64(window_length).astype("timedelta64[ns]").astype(np.int64)
    else:
        ts = _check_values(ts, n, "timestamps")
        length = window_length
    length = float(length)
    if not (np.isfinite(length) and length > 0):
        raise ValueError(f"window_length must be positive, got {window_length!r}")
    return np.floor((ts - ts.min()) / length).astype(np.int64)


def agreement_drift(
    outcome,
    delta,
    *,
    windows=None,
    timestamps=None,
    window_length=None,
    epsilon: float = 0.0,
    convention: Convention = "acc_eq",
    groups=None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    random_state=None,
) -> AgreementDrift:
    """Metric–human agreement per time window, with CIs and a test for a linear trend.

    Parameters
    ----------
    outcome : array_like of int, shape (n,)
    delta : array_like of float, shape (n,)
    windows : array_like of int, shape (n,), optional
        Window id of each judgment (ordered in time; gaps allowed).
    timestamps : array_like of float or datetime64, shape (n,), optional
        Judgment times; windows are ``floor((t − min t) / window_length)``.
    window_length : float or numpy.timedelta64
        Window length in the units of ``timestamps`` (required with ``timestamps``).
    epsilon : float, default 0.0
    convention : {"acc_eq", "pickscore", "skip_ties"}, default "acc_eq"
    groups : array_like, shape (n,), optional
        Bootstrap clusters within each window (e.g. prompt).
    n_resamples : int, default 1000
    confidence : float, default 0.95
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    AgreementDrift

    Notes
    -----
    Trend test: the Cochran–Armitage test for trend in proportions (Armitage, 1955) with the window
    id as the dose score, on the per-judgment scores ``s`` (weight-0 judgments left out):
    ``z = Σ_i (t_i − t̄)(s_i − s̄) / sqrt(v · Σ_i (t_i − t̄)²)`` with ``v`` the population variance of
    ``s``.  For 0/1 scores (``"acc_eq"``, ``"skip_ties"``) ``v = s̄(1 − s̄)`` and this is exactly the
    classical statistic; for ``"pickscore"`` (scores 0, ½, 1) it is the same linear score test.  It
    treats judgments as independent, so with strong prompt clustering the p-value is too small.
    """
    y = _check_outcome(outcome)
    d = _check_values(delta, y.size, "delta")
    convention = _check_convention(convention)
    n_resamples = _check_resamples(n_resamples)
    confidence = _check_confidence(confidence)
    eps = _check_epsilon(epsilon, 1)[0]
    win = _window_ids(y.size, windows, timestamps, window_length)
    w = _weights(y, convention)
    _require_weight(int(w.sum()), convention)
    s = _score2(y, _predict(d, eps), convention).astype(np.float64) / 2
    codes, _ = _group_codes(groups, y.size)
    rng = np.random.default_rng(random_state)
    keep = w > 0
    window_ids = np.unique(win[keep])
    acc, low, high = (np.empty(window_ids.size) for _ in range(3))
    count = np.empty(window_ids.size, dtype=np.int64)
    for i, wid in enumerate(window_ids):
        m = keep & (win == wid)
        sub_codes, n_sub = _group_codes(codes[m], int(m.sum()))
        est, lo, hi = _ratio_bootstrap(
            _group_sum(sub_codes, n_sub, s[m])[:, None],
            np.bincount(sub_codes, minlength=n_sub).astype(np.float64),
            n_resamples,
            confidence,
            rng,
        )
        acc[i], low[i], high[i], count[i] = est[0], lo[0], hi[0], int(m.sum())
    t = win[keep].astype(np.float64)
    sk = s[keep]
    tc = t - t.mean()
    sxx = float(np.sum(tc * tc))
    v = float(np.mean((sk - sk.mean()) ** 2))
    if window_ids.size < 2 or v == 0 or sxx == 0:
        slope = z = p = float("nan")
    else:
        cov = float(np.sum(tc * (sk - sk.mean())))
        slope = cov / sxx
        z = cov / np.sqrt(v * sxx)
        p = float(2 * stats.norm.sf(abs(z)))
    return AgreementDrift(window_ids, acc, low, high, count, slope, float(z), p)


# --------------------------------------------------------------------------------------------------
# Metric combination
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricBlend:
    """Result of :func:`metric_blend`.

    Attributes
    ----------
    weights : numpy.ndarray, shape (n_metrics,)
        Non-negative weights on the *standardised* metric differences (each delta divided by its root
        mean square), fitted on all the data; the blend delta is ``Σ_j weights_j · delta_j / scale_j``.
    scale : numpy.ndarray, shape (n_metrics,)
        Root mean square of each metric's delta on all the data.
    epsilon : float
        Tie threshold of the blend (standardised units), tie-calibrated on all the data.
    alpha : float
        L2 penalty chosen by cross-validation on all the data.
    held_out_accuracy : float
        Nested cross-validated accuracy of the blend (everything — scaling, penalty, weights,
        epsilon — chosen without the held-out fold).
    best_single_accuracy : float
        Held-out accuracy of the best single metric chosen (with its epsilon) on each training part.
    difference : float
        ``held_out_accuracy − best_single_accuracy``.
    p_value : float
        Two-sided paired PERM-BOTH p-value of that difference on the held-out predictions.
    fold_weights : numpy.ndarray, shape (n_folds, n_metrics)
    fold_best_single : numpy.ndarray of int, shape (n_folds,)
    convention : str
    """

    weights: np.ndarray
    scale: np.ndarray
    epsilon: float
    alpha: float
    held_out_accuracy: float
    best_single_accuracy: float
    difference: float
    p_value: float
    fold_weights: np.ndarray
    fold_best_single: np.ndarray
    convention: str


def _blend_loss(w, z, target, alpha):
    margin = np.einsum("ij,j->i", z, w)
    loss = np.mean(np.logaddexp(0.0, margin) - target * margin) + 0.5 * alpha * np.sum(w * w)
    grad = np.einsum("ij,i->j", z, special.expit(margin) - target) / z.shape[0] + alpha * w
    return loss, grad


def _fit_blend(z, y, alpha, max_iter) -> np.ndarray:
    target = (1.0 + y) / 2.0  # 1, 0, and 0.5 for a tie (soft label)
    w0 = np.full(z.shape[1], 1.0 / z.shape[1])
    res = optimize.minimize(
        _blend_loss,
        w0,
        args=(z, target, alpha),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * z.shape[1],
        options={"maxiter": max_iter},
    )
    if not res.success:
        raise ConvergenceError(f"metric blend: L-BFGS-B did not converge ({res.message})")
    return res.x


def _choose_alpha(z, y, codes, n_groups, alphas, n_inner, rng, max_iter) -> float:
    folds = _folds_from_codes(codes, n_groups, n_inner, rng)
    target = (1.0 + y) / 2.0
    losses = np.zeros(len(alphas))
    for k in range(n_inner):
        test = folds == k
        for i, a in enumerate(alphas):
            w = _fit_blend(z[~test], y[~test], a, max_iter)
            margin = np.einsum("ij,j->i", z[test], w)
            losses[i] += np.sum(np.logaddexp(0.0, margin) - target[test] * margin)
    return float(alphas[int(np.argmin(losses))])


def metric_blend(
    outcome,
    deltas,
    *,
    groups=None,
    n_folds: int = 5,
    n_inner_folds: int = 3,
    alphas=(1e-4, 1e-3, 1e-2, 1e-1),
    convention: Convention = "acc_eq",
    n_resamples: int = 1000,
    random_state=None,
    max_iter: int = 500,
) -> MetricBlend:
    r"""Non-negative blend of metrics, fitted and evaluated under nested grouped cross-validation.

    Parameters
    ----------
    outcome : array_like of int, shape (n,)
    deltas : array_like of float, shape (n, n_metrics)
        ``score(a) − score(b)`` of every metric (lower-is-better metrics already sign-flipped).
    groups : array_like, shape (n,), optional
        Fold groups (e.g. prompts): a prompt's judgments never sit on both sides of a split.
    n_folds : int, default 5
        Outer folds (evaluation).
    n_inner_folds : int, default 3
        Inner folds of each outer training part (choice of the penalty ``alpha``).
    alphas : sequence of float
        Candidate L2 penalties on the standardised weights.
    convention : {"acc_eq", "pickscore", "skip_ties"}, default "acc_eq"
        Accuracy used for tie calibration, model comparison and the test.
    n_resamples : int, default 1000
        Permutations of the paired test.
    random_state : None, int or numpy.random.Generator
    max_iter : int, default 500
        L-BFGS-B iterations per fit.

    Returns
    -------
    MetricBlend

    Notes
    -----
    Model (in the spirit of MetaMetrics, Winata et al., 2024: a non-negative combination of
    metrics calibrated to human preferences): with :math:`z_{ij} = \delta_{ij}/\mathrm{rms}_j` the
    blend difference is :math:`m_i = \sum_j w_j z_{ij}`, :math:`w \ge 0`.  The weights minimise the
    smooth surrogate of pairwise accuracy

    .. math::

        \frac1n \sum_i \big[\log(1 + e^{m_i}) - q_i m_i\big] + \frac{\alpha}{2}\lVert w\rVert^2,
        \qquad q_i = (1 + y_i)/2,

    the logistic loss with human ties as soft labels ½ (which pulls tied pairs towards
    :math:`m = 0`, i.e. towards a predicted tie), by L-BFGS-B with bounds :math:`w_j \ge 0`.

    Per outer fold, using its training part only: scales, ``alpha`` (inner CV, held-out logistic
    loss), weights, the blend's epsilon (:func:`tie_calibration`), and the best single metric (highest
    tie-calibrated accuracy) with its epsilon.  Both are then scored on the held-out fold; the
    pooled held-out accuracies are compared by the paired PERM-BOTH test (swapping the two
    predictors per judgment, or per group).  The reported ``weights`` come from a final fit on all the
    data and are for deployment; the accuracy to quote is ``held_out_accuracy``.
    """
    y = _check_outcome(outcome)
    d = _check_values(deltas, y.size, "deltas", allow_2d=True)
    if d.ndim == 1:
        d = d[:, None]
    convention = _check_convention(convention)
    n_resamples = _check_resamples(n_resamples)
    alphas = np.asarray(alphas, dtype=np.float64)
    if alphas.ndim != 1 or alphas.size == 0 or (alphas < 0).any() or not np.isfinite(alphas).all():
        raise ValueError(f"alphas must be a non-empty sequence of finite values >= 0, got {alphas!r}")
    if isinstance(n_inner_folds, bool) or int(n_inner_folds) != n_inner_folds or n_inner_folds < 2:
        raise ValueError(f"n_inner_folds must be an integer >= 2, got {n_inner_folds!r}")
    w_judg = _weights(y, convention)
    _require_weight(int(w_judg.sum()), convention)
    codes, n_groups = _group_codes(groups, y.size)
    rng = np.random.default_rng(random_state)
    folds = _folds_from_codes(codes, n_groups, n_folds, rng)
    n_metrics = d.shape[1]

    def rms(x):
        r = np.sqrt(np.mean(x * x, axis=0))
        return np.where(r > 0, r, 1.0)

    def fit_all(mask, inner_rng):
        scale = rms(d[mask])
        z = d[mask] / scale
        sub_codes, n_sub = _group_codes(codes[mask], int(mask.sum()))
        if n_sub < n_inner_folds:
            raise ValueError(f"a training part has {n_sub} groups, fewer than n_inner_folds={n_inner_folds}")
        alpha = _choose_alpha(z, y[mask], sub_codes, n_sub, alphas, int(n_inner_folds), inner_rng, max_iter)
        w = _fit_blend(z, y[mask], alpha, max_iter)
        eps = tie_calibration(y[mask], np.einsum("ij,j->i", z, w), convention=convention).epsilon
        return scale, alpha, w, eps

    blend_s2 = np.empty(y.size, dtype=np.int64)
    single_s2 = np.empty(y.size, dtype=np.int64)
    fold_weights = np.empty((int(n_folds), n_metrics))
    fold_best = np.empty(int(n_folds), dtype=np.int64)
    for k in range(int(n_folds)):
        test = folds == k
        train = ~test
        scale, _, w, eps = fit_all(train, rng)
        fold_weights[k] = w
        blend_delta = np.einsum("ij,j->i", d[test] / scale, w)
        blend_s2[test] = _score2(y[test], _predict(blend_delta, eps), convention)
        single = [tie_calibration(y[train], d[train, j], convention=convention) for j in range(n_metrics)]
        best = int(np.argmax([c.in_sample_accuracy for c in single]))
        fold_best[k] = best
        single_s2[test] = _score2(y[test], _predict(d[test, best], single[best].epsilon), convention)

    total_w = int(w_judg.sum())
    blend_acc = int(blend_s2.sum()) / (2 * total_w)
    single_acc = int(single_s2.sum()) / (2 * total_w)
    x2_g = np.bincount(codes, weights=blend_s2 - single_s2, minlength=n_groups).astype(np.int64)
    p = _swap_p_value(x2_g, n_resamples, "two-sided", rng)
    scale, alpha, w, eps = fit_all(np.ones(y.size, dtype=bool), rng)
    return MetricBlend(
        weights=w,
        scale=scale,
        epsilon=float(eps),
        alpha=alpha,
        held_out_accuracy=blend_acc,
        best_single_accuracy=single_acc,
        difference=blend_acc - single_acc,
        p_value=p,
        fold_weights=fold_weights,
        fold_best_single=fold_best,
        convention=convention,
    )


# --------------------------------------------------------------------------------------------------
# One-call report
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationReport:
    """Result of :func:`calibration_report`; arrays have one entry per metric (input order).

    Attributes
    ----------
    accuracy : dict
        ``{"acc_eq", "pickscore", "skip_ties"} -> ndarray``: accuracy at epsilon 0.
    epsilon : numpy.ndarray
        Tie-calibrated epsilon of each metric (acc_eq, all the data).
    tie_accuracy : numpy.ndarray
        acc_eq at ``epsilon`` in-sample (as reported in the WMT metrics tasks; optimistic).
    tie_accuracy_held_out : numpy.ndarray or None
        acc_eq with epsilon chosen on the other folds (grouped ``n_folds``-fold CV); ``None`` when
        ``n_folds`` is ``None``.
    ci : BootstrapCI
        Clustered bootstrap CI of acc_eq at ``epsilon`` (arrays).
    kendall : list of dict or None
        :func:`kendall_variants` of each metric's item scores against the human item scores.
    clusters : SignificanceClusters
        Significance ranks of acc_eq at ``epsilon`` (one-sided PERM-BOTH, level ``alpha``).
    """

    accuracy: dict
    epsilon: np.ndarray
    tie_accuracy: np.ndarray
    tie_accuracy_held_out: np.ndarray | None
    ci: BootstrapCI
    kendall: list | None
    clusters: SignificanceClusters


def calibration_report(
    outcome,
    deltas,
    *,
    groups=None,
    human_item_scores=None,
    metric_item_scores=None,
    n_folds: int | None = 5,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    alpha: float = 0.05,
    random_state=None,
) -> CalibrationReport:
    """Everything the metric-calibration page shows for many metrics on one set of judgments.

    Parameters
    ----------
    outcome : array_like of int, shape (n,)
    deltas : array_like of float, shape (n, n_metrics)
    groups : array_like, shape (n,), optional
        Prompt (or other cluster) of each judgment: used by the bootstrap, the permutation tests and
        the cross-validation folds.
    human_item_scores : array_like of float, shape (n_items,), optional
        Item-level human scores (e.g. BT strengths) for :func:`kendall_variants`.
    metric_item_scores : array_like of float, shape (n_items, n_metrics), optional
        The metrics' scores of the same items (required with ``human_item_scores``).
    n_folds : int or None, default 5
        Folds of the cross-validated tie calibration (``None`` skips it).
    n_resamples : int, default 1000
        Bootstrap resamples and permutations per test.
    confidence : float, default 0.95
    alpha : float, default 0.05
        Level of the significance clusters.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    CalibrationReport

    Notes
    -----
    Per metric: accuracy under the three conventions (epsilon 0), tie calibration (in-sample, and
    grouped-CV held-out), the clustered bootstrap CI of tie-calibrated acc_eq and, when item scores
    are given, the Kendall variants; across metrics, significance clusters from all pairwise
    permutation tests.
    """
    y = _check_outcome(outcome)
    d = _check_values(deltas, y.size, "deltas", allow_2d=True)
    if d.ndim == 1:
        d = d[:, None]
    n_metrics = d.shape[1]
    rng = np.random.default_rng(random_state)
    accuracy = {c: pairwise_accuracy(y, d, convention=c) for c in CONVENTIONS}
    eps = np.empty(n_metrics)
    tie_acc = np.empty(n_metrics)
    held = None if n_folds is None else np.empty(n_metrics)
    fold_seed = int(rng.integers(2**63 - 1))
    for j in range(n_metrics):
        # One seed for all metrics: the same folds for each metric.  A cross-validated call also
        # gives the all-data epsilon and its in-sample accuracy.
        cal = tie_calibration(y, d[:, j], groups=groups, n_folds=n_folds, random_state=fold_seed)
        eps[j], tie_acc[j] = cal.epsilon, cal.in_sample_accuracy
        if held is not None:
            held[j] = cal.accuracy
    ci = bootstrap_ci(
        y, d, epsilon=eps, groups=groups, n_resamples=n_resamples, confidence=confidence, random_state=rng
    )
    kendall = None
    if human_item_scores is not None or metric_item_scores is not None:
        if human_item_scores is None or metric_item_scores is None:
            raise ValueError("give both human_item_scores and metric_item_scores, or neither")
        h = _check_values(human_item_scores, None, "human_item_scores")
        mi = _check_values(metric_item_scores, h.size, "metric_item_scores", allow_2d=True)
        if mi.ndim == 1:
            mi = mi[:, None]
        if mi.shape[1] != n_metrics:
            raise ValueError(
                f"metric_item_scores has {mi.shape[1]} columns but deltas has {n_metrics} metrics"
            )
        kendall = [kendall_variants(h, mi[:, j]) for j in range(n_metrics)]
    clusters = significance_clusters(
        y, d, epsilon=eps, groups=groups, n_resamples=n_resamples, alpha=alpha, random_state=rng
    )
    return CalibrationReport(accuracy, eps, tie_acc, held, ci, kendall, clusters)
