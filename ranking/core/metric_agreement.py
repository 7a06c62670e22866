"""How far each automated metric agrees with a project's raters: the calibration report's content.

Pure numpy (no Django). :mod:`ranking.services.calibration_reports` loads the arrays; this module
decides which statistics of :mod:`ranking.core.calibration` each metric gets and returns JSON-ready
dicts. Conventions:

* A judgment compares the pair's item A with item B; ``outcome`` is +1 (A preferred), −1 (B
  preferred) or 0 (tie). A metric predicts from ``delta = sign · (score(A) − score(B))`` where
  ``sign`` is +1 for a higher-is-better metric and −1 for a lower-is-better one (descriptive
  metrics, sign 0, get no pairwise statistics). Only judgments whose two images both have a score
  of the metric count for it.
* Intervals: percentile bootstrap clustered by prompt (whole prompts are resampled), 95 %.
  Significance: one-sided PERM-BOTH permutation tests between metrics on the judgments all of them
  scored, swaps per prompt; a metric starts a new cluster when it is significantly worse (p ≤ 0.05)
  than a metric of the current cluster.
* The tie threshold ε (the metric predicts a tie when |delta| ≤ ε) is chosen to maximise acc_eq;
  the headline accuracy is acc_eq at ε chosen on other prompts' judgments (grouped cross-validation),
  so it is not optimistic; the in-sample value is reported beside it.
* Human ceiling: a single rater's acc_eq against the majority of the other raters of the same pair.
* Item-level signals (BT strengths, Likert means, checklist yes-rates): Kendall τ_b, τ_c, τ_23,
  acc_23, Pearson and Spearman over the images both scored.
* Gates: "pass" = the metric at or above a threshold (in the metric's own units and direction).
  Human pass labels, one gate each: BT strength at or above the median, a Likert dimension's mean
  of at least 3, a checklist question's yes-rate of at least one half. The threshold is the one
  reaching a precision of :data:`GATE_TARGET_PRECISION`, with a bootstrap interval of the
  precision achieved there (optimistic: the threshold is chosen on the same images).
* Maps: no metric plugin produces a map yet, so heatmap agreement of metrics (CC, NSS, KLD, SIM,
  AUC-Judd of :mod:`ranking.core.heatmaps` against the consolidated human map) is not part of this
  report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ranking.core import calibration as cal
from ranking.core.errors import ConvergenceError

__all__ = ["GATE_TARGET_PRECISION", "JudgmentArrays", "MetricColumn", "metric_agreement"]

GATE_TARGET_PRECISION = 0.8
MIN_JUDGMENTS = 10  # fewer judgments scored by a metric: its pairwise statistics are not computed
MIN_GROUP_JUDGMENTS = 30  # per demographic group
N_DRIFT_WINDOWS = 6
N_RESAMPLES = 1000
RANDOM_STATE = 0
FAILURES = (ValueError, ConvergenceError, FloatingPointError, np.linalg.LinAlgError)


@dataclass(frozen=True)
class JudgmentArrays:
    """The pairwise judgments a report uses (one entry per judgment, oldest first)."""

    outcome: np.ndarray  # +1 / −1 / 0
    item_a: np.ndarray  # compact item index
    item_b: np.ndarray
    pair: np.ndarray  # task id (the same pair of images)
    rater: np.ndarray  # rater id
    prompt: np.ndarray  # prompt code of the pair (clusters)
    rater_groups: dict[str, np.ndarray] = field(default_factory=dict)  # field -> label per judgment ('' = none)
    window_labels: list[str] = field(default_factory=list)  # one per drift window, oldest first


@dataclass(frozen=True)
class MetricColumn:
    """One metric's newest scores over the compact item index (NaN where an image has none)."""

    name: str
    version: str
    direction: str  # "higher", "lower" or "none"
    dimension: str
    values: np.ndarray


def _sign(direction: str) -> int:
    return {"higher": 1, "lower": -1}.get(direction, 0)


def _attempt(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs), None
    except FAILURES as exc:
        return None, str(exc)


def _f(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _folds(groups: np.ndarray) -> int | None:
    n_groups = np.unique(groups).size
    return min(5, n_groups) if n_groups >= 3 else None


def _windows(n: int, n_windows: int) -> np.ndarray:
    """Equal-count windows over judgments in submission order."""
    k = max(1, min(n_windows, n // MIN_JUDGMENTS))
    return np.minimum((np.arange(n) * k) // max(n, 1), k - 1)


def _pairwise(j: JudgmentArrays, col: MetricColumn, ceiling: float | None) -> dict:
    sign = _sign(col.direction)
    out: dict = {"n_judgments": 0, "reason": None}
    if sign == 0:
        out["reason"] = "a descriptive metric (no better direction): not compared with preferences"
        return out
    scored = np.isfinite(col.values[j.item_a]) & np.isfinite(col.values[j.item_b])
    n = int(scored.sum())
    out["n_judgments"] = n
    if n < MIN_JUDGMENTS:
        out["reason"] = f"only {n} judgments compare two images that both have this metric's score"
        return out
    y = j.outcome[scored]
    d = sign * (col.values[j.item_a[scored]] - col.values[j.item_b[scored]])
    groups = j.prompt[scored]
    out["accuracy"] = {c: _f(cal.pairwise_accuracy(y, d, convention=c)) if c != "skip_ties" or (y != 0).any()
                       else None for c in cal.CONVENTIONS}
    tie, reason = _attempt(cal.tie_calibration, y, d, groups=groups, n_folds=_folds(groups),
                           random_state=RANDOM_STATE)
    eps = tie.epsilon if tie is not None else 0.0
    out["tie"] = None if tie is None else {"epsilon": _f(tie.epsilon), "held_out": _f(tie.accuracy),
                                            "in_sample": _f(tie.in_sample_accuracy),
                                            "cross_validated": bool(tie.cross_validated)}
    ci, _ = _attempt(cal.bootstrap_ci, y, d, epsilon=eps, groups=groups, n_resamples=N_RESAMPLES,
                     random_state=RANDOM_STATE)
    headline = tie.accuracy if tie is not None else out["accuracy"]["acc_eq"]
    out["headline"] = _f(headline)
    out["ci"] = None if ci is None else [_f(ci.low), _f(ci.high)]
    out["ceiling_share"] = _f(headline / ceiling) if ceiling else None
    prob, reason = _attempt(cal.probability_calibration, y, d, groups=groups, n_folds=_folds(groups),
                            random_state=RANDOM_STATE)
    out["probability"] = {"reason": reason} if prob is None else {
        "model": prob.model, "beta": _f(prob.beta), "tie_param": _f(prob.tie_param), "ece": _f(prob.ece),
        "brier": _f(prob.brier), "log_loss": _f(prob.log_loss), "n": int(prob.n_evaluated),
        "reliability": {"predicted": [_f(v) for v in prob.reliability.mean_predicted],
                        "observed": [_f(v) for v in prob.reliability.observed_frequency],
                        "count": [int(c) for c in prob.reliability.count]},
        "reason": None}
    windows = _windows(n, N_DRIFT_WINDOWS)
    drift, reason = _attempt(cal.agreement_drift, y, d, windows=windows, epsilon=eps, groups=groups,
                             n_resamples=N_RESAMPLES, random_state=RANDOM_STATE)
    if drift is None or drift.accuracy.size < 2:
        out["drift"] = {"reason": reason or "too few judgments for more than one window"}
    else:
        labels = _window_labels(j.window_labels, np.flatnonzero(scored), windows, drift.window)
        out["drift"] = {"windows": labels, "accuracy": [_f(v) for v in drift.accuracy],
                        "low": [_f(v) for v in drift.low], "high": [_f(v) for v in drift.high],
                        "n": [int(v) for v in drift.n_judgments], "slope": _f(drift.slope),
                        "z": _f(drift.trend_z), "p": _f(drift.trend_p_value), "reason": None}
    out["groups"] = {}
    for name, labels in j.rater_groups.items():
        rows = []
        for value in sorted(set(labels[scored].tolist()) - {""}):
            mask = labels[scored] == value
            if mask.sum() < MIN_GROUP_JUDGMENTS:
                continue
            gci, _ = _attempt(cal.bootstrap_ci, y[mask], d[mask], epsilon=eps, groups=groups[mask],
                              n_resamples=N_RESAMPLES, random_state=RANDOM_STATE)
            if gci is not None:
                rows.append({"value": value, "n": int(mask.sum()), "accuracy": _f(gci.estimate),
                             "ci": [_f(gci.low), _f(gci.high)]})
        if rows:
            out["groups"][name] = rows
    return out


def _window_labels(labels: list[str], rows: np.ndarray, windows: np.ndarray, present: np.ndarray) -> list[str]:
    """A label per drift window: the given per-judgment labels (dates) of its first and last judgment."""
    if not labels:
        return [f"#{int(w) + 1}" for w in present]
    out = []
    for w in present:
        idx = rows[windows == w]
        out.append(f"{labels[idx[0]]} – {labels[idx[-1]]}" if labels[idx[0]] != labels[idx[-1]] else labels[idx[0]])
    return out


def _item_signals(col: MetricColumn, signals: dict[str, np.ndarray]) -> dict:
    out = {}
    sign = _sign(col.direction) or 1
    for name, human in signals.items():
        both = np.isfinite(human) & np.isfinite(col.values)
        if both.sum() < 3:
            out[name] = {"n_items": int(both.sum()), "reason": "fewer than 3 images have both"}
            continue
        res, reason = _attempt(cal.kendall_variants, human[both], sign * col.values[both])
        out[name] = {"n_items": int(both.sum()), "reason": reason,
                     **({k: _f(v) for k, v in res.items()} if res else {})}
    return out


def human_pass_labels(signals: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Which images the raters pass, per item-level signal (1.0 / 0.0, NaN where the signal is missing):
    BT strength at or above the median of the fitted images, a Likert mean of at least 3 (the middle
    of the 1–5 scale), a checklist yes-rate of at least one half."""
    labels = {}
    for key, values in signals.items():
        known = np.isfinite(values)
        if not known.any():
            continue
        if key == "bt":
            cut = np.median(values[known])
        elif key.startswith("likert:"):
            cut = 3.0
        elif key.startswith("checklist:"):
            cut = 0.5
        else:
            continue
        labels[key] = np.where(known, (values >= cut).astype(float), np.nan)
    return labels


def _gate(col: MetricColumn, passed: np.ndarray) -> dict:
    sign = _sign(col.direction)
    if sign == 0:
        return {"reason": "a descriptive metric (no better direction)"}
    both = np.isfinite(passed) & np.isfinite(col.values)
    if both.sum() < 10:
        return {"reason": f"only {int(both.sum())} images have both a score and this human label"}
    human = passed[both] > 0.5
    if human.all() or not human.any():
        return {"reason": "the raters pass all or none of these images"}
    res, reason = _attempt(cal.gating_threshold, sign * col.values[both], human,
                           target_precision=GATE_TARGET_PRECISION, n_resamples=N_RESAMPLES,
                           random_state=RANDOM_STATE)
    if res is None:
        return {"reason": reason}
    curve = res.curve
    step = max(1, curve.thresholds.size // 60)  # at most ~60 points for the chart
    return {
        "threshold": _f(sign * res.threshold), "direction": col.direction, "target_precision": GATE_TARGET_PRECISION,
        "precision": _f(res.precision), "recall": _f(res.recall), "ci": [_f(res.ci_low), _f(res.ci_high)],
        "n_items": int(both.sum()), "base_rate": _f(human.mean()),
        "curve": {"threshold": [_f(sign * t) for t in curve.thresholds[::step]],
                  "precision": [_f(p) for p in curve.precision[::step]],
                  "recall": [_f(r) for r in curve.recall[::step]]},
        "reason": None,
    }


def metric_agreement(*, judgments: JudgmentArrays, metrics: list[MetricColumn],
                     signals: dict[str, np.ndarray], strengths: np.ndarray | None) -> dict:
    """Every metric's agreement with the judgments and the item-level human signals (JSON-ready).

    ``signals``: item-level human scores by name over the compact item index (NaN where missing),
    e.g. ``{"bt": strengths, "likert:overall": means, "checklist:hands": yes_rates}``;
    ``strengths``: the BT strengths used for the gate (None without a fit).
    """
    y = judgments.outcome
    ceiling_res, ceiling_reason = (None, "no pair has judgments from two raters")
    if y.size:
        ceiling_res, ceiling_reason = _attempt(cal.human_ceiling, y, judgments.pair, judgments.rater)
    ceiling = ceiling_res.accuracy if ceiling_res is not None and np.isfinite(ceiling_res.accuracy) else None
    labels = human_pass_labels({**signals, **({"bt": strengths} if strengths is not None else {})})
    rows = []
    for col in metrics:
        row = {"name": col.name, "version": col.version, "direction": col.direction, "dimension": col.dimension,
               "n_items": int(np.isfinite(col.values).sum())}
        row["pairwise"] = _pairwise(judgments, col, ceiling)
        row["signals"] = _item_signals(col, signals)
        row["gates"] = {key: _gate(col, passed) for key, passed in labels.items()}
        primary = "bt" if "bt" in labels else next(iter(labels), None)
        row["gate"] = row["gates"][primary] if primary else {"reason": "no human pass label (needs a fit, Likert "
                                                                       "scores or checklist answers)"}
        row["gate_label"] = primary
        rows.append(row)
    result = {
        "n_judgments": int(y.size),
        "ceiling": {"accuracy": _f(ceiling) if ceiling is not None else None,
                    "n_scored": int(ceiling_res.n_scored) if ceiling_res is not None else 0,
                    "reason": None if ceiling is not None else ceiling_reason},
        "metrics": rows,
        "signals": list(signals),
        "clusters": _clusters(judgments, metrics, rows),
        "methods": _methods_text(),
    }
    return result


def _methods_text() -> str:
    """The conventions of this module's docstring as Markdown (for the page and the datasheet)."""
    text = __doc__.split("Conventions:", 1)[1].strip()
    for role in (":data:", ":func:", ":mod:"):
        text = text.replace(role, "")
    return text.replace("``", "`")


def _common(judgments: JudgmentArrays, metrics: list[MetricColumn]):
    use = [k for k, m in enumerate(metrics) if _sign(m.direction) != 0]
    if len(use) < 2:
        return use, None, None
    mask = np.ones(judgments.outcome.size, dtype=bool)
    for k in use:
        v = metrics[k].values
        mask &= np.isfinite(v[judgments.item_a]) & np.isfinite(v[judgments.item_b])
    d = np.column_stack([_sign(metrics[k].direction) * (metrics[k].values[judgments.item_a[mask]]
                                                         - metrics[k].values[judgments.item_b[mask]]) for k in use])
    return use, mask, d


def _clusters(judgments: JudgmentArrays, metrics: list[MetricColumn], rows: list[dict]) -> dict:
    """Significance clusters and a non-negative blend, on the judgments every directional metric scored."""
    use, mask, d = _common(judgments, metrics)
    out: dict = {"n_judgments": 0, "metrics": [metrics[k].name for k in use], "reason": None, "blend": None}
    if mask is None:
        out["reason"] = "needs at least two directional metrics"
        return out
    n = int(mask.sum())
    out["n_judgments"] = n
    if n < MIN_JUDGMENTS:
        out["reason"] = f"only {n} judgments are scored by every metric"
        return out
    y, groups = judgments.outcome[mask], judgments.prompt[mask]
    res, reason = _attempt(cal.significance_clusters, y, d, groups=groups, n_resamples=N_RESAMPLES,
                           random_state=RANDOM_STATE)
    if res is None:
        out["reason"] = reason
        return out
    out["accuracy"] = [_f(a) for a in res.accuracy]
    out["rank"] = [int(r) for r in res.rank]
    for k, rank in zip(use, res.rank):
        rows[k]["cluster"] = int(rank)
    if np.unique(groups).size >= 4:
        blend, reason = _attempt(cal.metric_blend, y, d, groups=groups, n_folds=min(5, np.unique(groups).size),
                                 n_resamples=N_RESAMPLES, random_state=RANDOM_STATE)
        out["blend"] = {"reason": reason} if blend is None else {
            "weights": [_f(w) for w in blend.weights], "held_out": _f(blend.held_out_accuracy),
            "best_single": _f(blend.best_single_accuracy), "difference": _f(blend.difference),
            "p": _f(blend.p_value), "reason": None}
    return out
