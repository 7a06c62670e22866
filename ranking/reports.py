"""Agreement reports and the datasheet: stored rows → arrays → ``ranking.core`` → plain dicts.

Reads only (nothing here writes, except :func:`datasheet_note_update`). :func:`agreement_compute`
computes every section both pages show, as JSON-ready data, from the data up to a cut-off; a
Celery worker stores it as an ``AgreementReport`` (see :mod:`ranking.report_jobs`) and the pages
render a stored report through :func:`agreement_view` and :func:`datasheet_view`. Rater identities
never leave this module except as pseudonymous ``public_id``; external ids (crowd-platform
participant ids) are never read.

Methods, as the pages state them:

* A pair's categories are "item A preferred", "item B preferred", "tie", where A is the task's
  ``item_a`` (the lower id; screen side is randomised and irrelevant here).
* Fleiss' kappa needs the same number of judgments per pair: it uses the pairs with at least *m*
  judgments, *m* being the most common count among pairs with ≥ 2, and of each the first *m*
  judgments by submission order. Krippendorff's alpha (nominal) uses every judgment (missing
  allowed). 95 % intervals for both: percentile bootstrap over pairs (200 resamples, seed 0).
* Repeats: with a project ``repeat_rate`` > 0 a rater is re-shown, sides swapped, a pair they
  already answered (``Judgment.is_repeat``). Repeat answers are consistency probes, not extra
  votes: every pairwise statistic here (opinions per pair, kappa, alpha, rater quality, groups)
  leaves them out. :func:`intra_rater_consistency` pairs each repeat answer with the rater's first
  answer and counts agreement in terms of items (the same winner, or a tie both times), per rater
  and overall, with Wilson 95 % intervals.
* Group LR test: decided judgments only, groups that are not too small and not "not answered" /
  "prefer not to say"; see :func:`ranking.core.consistency.group_lr_test`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from datetime import date, datetime

import numpy as np
from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from annotator.models import ConsentVersion, Demographics, InstructionVersion, Item, Judgment, Project, Rater
from ranking.core import agreement
from ranking.core.bt import ConvergenceError, fit_bt
from ranking.core.consistency import group_lr_test, nominal_alpha_from_counts, triad_counts

DEMOGRAPHIC_FIELDS = ("country", "languages", "age_band", "gender", "expertise", "colour_vision", "device")
FIELD_LABELS = {"country": "Country", "languages": "Languages", "age_band": "Age band", "gender": "Gender",
                "expertise": "Expertise", "colour_vision": "Colour vision", "device": "Device"}
NOT_ANSWERED = "Not answered"
PREFER_NOT = "prefer_not"
BT_ALPHA = 0.01
MIN_GROUP_RATERS = 5
MIN_GROUP_JUDGMENTS = 30
BOOTSTRAP_RESAMPLES = 200
ICC_REFERENCES = ({"label": "crowd ≈ 0.40", "value": 0.40}, {"label": "lab ≈ 0.94", "value": 0.94})
A_WINS, B_WINS, TIE = 0, 1, 2


# ------------------------------------------------------------------------------------------------
# Rows → arrays
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairwiseRows:
    """A project's pairwise judgments as arrays (compact indices)."""

    judgment_ids: np.ndarray
    task: np.ndarray  # compact task index
    task_ids: np.ndarray
    item_a: np.ndarray  # compact item index of the task's item_a
    item_b: np.ndarray
    item_ids: np.ndarray
    outcome: np.ndarray  # A_WINS / B_WINS / TIE
    rater: np.ndarray  # compact rater index
    rater_ids: np.ndarray

    @property
    def n(self) -> int:
        return int(self.judgment_ids.size)

    @property
    def decided(self) -> np.ndarray:
        return self.outcome != TIE

    def winners_losers(self) -> tuple[np.ndarray, np.ndarray]:
        """Winner and loser item index per row (for ties: item A, item B)."""
        b_won = self.outcome == B_WINS
        return np.where(b_won, self.item_b, self.item_a), np.where(b_won, self.item_a, self.item_b)


def _judgments(*, project: Project, cutoff_judgment_id: int | None = None):
    qs = Judgment.objects.filter(project=project)
    return qs if cutoff_judgment_id is None else qs.filter(id__lte=cutoff_judgment_id)


def pairwise_rows(*, project: Project, cutoff_judgment_id: int | None = None) -> PairwiseRows:
    """The project's pairwise judgments (those with id ≤ ``cutoff_judgment_id`` if given), repeats left out."""
    rows = list(
        _judgments(project=project, cutoff_judgment_id=cutoff_judgment_id)
        .filter(task__kind="pairwise", right_item__isnull=False, is_repeat=False)
        .order_by("id")
        .values_list("id", "task_id", "task__item_a_id", "task__item_b_id", "winner_id", "is_tie", "rater_id")
    )
    arr = np.array(rows, dtype=object).reshape(-1, 7)
    ids = arr[:, 0].astype(np.int64)
    task_ids, task = np.unique(arr[:, 1].astype(np.int64), return_inverse=True)
    a_db, b_db = arr[:, 2].astype(np.int64), arr[:, 3].astype(np.int64)
    item_ids, inv = np.unique(np.concatenate([a_db, b_db]), return_inverse=True)
    tie = arr[:, 5].astype(bool)
    winner = np.array([w if w is not None else -1 for w in arr[:, 4]], dtype=np.int64)
    outcome = np.where(tie, TIE, np.where(winner == a_db, A_WINS, B_WINS)).astype(np.int64)
    rater_ids, rater = np.unique(arr[:, 6].astype(np.int64), return_inverse=True)
    m = ids.size
    return PairwiseRows(judgment_ids=ids, task=task.ravel(), task_ids=task_ids, item_a=inv.ravel()[:m],
                        item_b=inv.ravel()[m:], item_ids=item_ids, outcome=outcome, rater=rater.ravel(),
                        rater_ids=rater_ids)


def _subset(rows: PairwiseRows, mask: np.ndarray) -> PairwiseRows:
    """Rows under ``mask``, keeping the item and task index spaces (so results line up)."""
    return PairwiseRows(judgment_ids=rows.judgment_ids[mask], task=rows.task[mask], task_ids=rows.task_ids,
                        item_a=rows.item_a[mask], item_b=rows.item_b[mask], item_ids=rows.item_ids,
                        outcome=rows.outcome[mask], rater=rows.rater[mask], rater_ids=rows.rater_ids)


def _slot_matrix(*, unit: np.ndarray, values: np.ndarray, n_units: int) -> np.ndarray:
    """(max ratings per unit, n_units) with NaN for missing: the k-th rating of each unit in row k.

    Nominal/ordinal alpha, AC1 and percent agreement depend only on each unit's values, not on
    which rater gave them, so slots stand in for raters (a dense rater × unit matrix would not fit
    in memory for crowd projects).
    """
    if unit.size == 0:
        return np.full((0, n_units), np.nan)
    order = np.argsort(unit, kind="stable")
    u = unit[order]
    starts = np.searchsorted(u, np.arange(n_units))
    slot = np.arange(u.size) - starts[u]
    out = np.full((int(slot.max()) + 1, n_units), np.nan)
    out[slot, u] = values[order]
    return out


def _category_counts(*, unit: np.ndarray, category: np.ndarray, n_units: int, n_categories: int) -> np.ndarray:
    counts = np.zeros((n_units, n_categories), dtype=np.int64)
    np.add.at(counts, (unit, category), 1)
    return counts


def _modal_fleiss_table(*, unit: np.ndarray, category: np.ndarray, n_units: int, n_categories: int):
    """Fleiss table from the first m ratings of units with ≥ m ratings, m the modal count (≥ 2)."""
    totals = np.bincount(unit, minlength=n_units)
    eligible = totals[totals >= 2]
    if eligible.size == 0:
        return None, 0
    m = int(Counter(eligible.tolist()).most_common(1)[0][0])
    order = np.argsort(unit, kind="stable")  # stable: submission order within a unit
    u = unit[order]
    rank = np.arange(u.size) - np.searchsorted(u, np.arange(n_units))[u]
    keep = (rank < m) & (totals[u] >= m)
    table = _category_counts(unit=u[keep], category=category[order][keep], n_units=n_units,
                             n_categories=n_categories)
    return table[totals >= m], m


def _try(fn, *args, **kwargs):
    """(value, None) or (None, reason) for statistics that are undefined on some data."""
    try:
        return fn(*args, **kwargs), None
    except (ValueError, ConvergenceError) as exc:
        return None, str(exc)


def _bootstrap_ci(statistic, n_units: int, *, resamples: int = BOOTSTRAP_RESAMPLES, random_state: int = 0):
    """Percentile 95 % interval of ``statistic(indices)`` over unit resamples; None if undefined."""
    if n_units < 2:
        return None
    rng = np.random.default_rng(random_state)
    values = []
    for _ in range(resamples):
        try:
            values.append(statistic(rng.integers(0, n_units, n_units)))
        except ValueError:
            continue
    if len(values) < resamples * 0.9:
        return None
    return [float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))]


# ------------------------------------------------------------------------------------------------
# Pairwise agreement
# ------------------------------------------------------------------------------------------------


def pair_opinions(*, rows: PairwiseRows, item_names: dict[int, str], sort: str = "controversy",
                  limit: int = 200) -> dict:
    """Per pair: counts, shares and the Wilson 95 % interval of the share preferring A.

    ``sort``: ``controversy`` (decided share of A closest to 50 %, then more judgments first),
    ``n`` (most judgments first) or ``agreement`` (highest majority share first).
    """
    n_tasks = rows.task_ids.size
    counts = _category_counts(unit=rows.task, category=rows.outcome, n_units=n_tasks, n_categories=3)
    n = counts.sum(axis=1)
    present = n > 0
    low, high = agreement.wilson_interval(counts[:, A_WINS], n)
    decided = counts[:, A_WINS] + counts[:, B_WINS]
    with np.errstate(divide="ignore", invalid="ignore"):
        decided_share_a = np.where(decided > 0, counts[:, A_WINS] / decided, 0.5)
        majority = agreement.majority_share(counts)
    distance = np.abs(decided_share_a - 0.5)
    idx = np.flatnonzero(present)
    if sort == "n":
        order = idx[np.lexsort((distance[idx], -n[idx]))]
    elif sort == "agreement":
        order = idx[np.lexsort((-n[idx], -majority[idx]))]
    else:
        sort = "controversy"
        order = idx[np.lexsort((-n[idx], distance[idx]))]
    first_a = {}
    for t, a, b in zip(rows.task, rows.item_a, rows.item_b):
        first_a.setdefault(int(t), (int(a), int(b)))
    out = []
    for t in order[:limit]:
        a, b = first_a[int(t)]
        a_id, b_id = int(rows.item_ids[a]), int(rows.item_ids[b])
        out.append({
            "task_id": int(rows.task_ids[t]), "item_a_id": a_id, "item_b_id": b_id,
            "item_a": item_names.get(a_id, str(a_id)), "item_b": item_names.get(b_id, str(b_id)),
            "n": int(n[t]), "n_a": int(counts[t, A_WINS]), "n_b": int(counts[t, B_WINS]),
            "n_tie": int(counts[t, TIE]),
            "share_a": float(counts[t, A_WINS] / n[t]), "share_b": float(counts[t, B_WINS] / n[t]),
            "share_tie": float(counts[t, TIE] / n[t]),
            "wilson_a": [float(low[t]), float(high[t])], "majority_share": float(majority[t]),
        })
    return {"sort": sort, "n_pairs": int(present.sum()), "rows": out, "shown": len(out)}


def pairwise_agreement(*, rows: PairwiseRows, with_ci: bool = True) -> dict:
    """Project-level pairwise agreement: majority share, Fleiss' kappa, nominal alpha."""
    n_tasks = rows.task_ids.size
    counts = _category_counts(unit=rows.task, category=rows.outcome, n_units=n_tasks, n_categories=3)
    n = counts.sum(axis=1)
    multi = n >= 2
    result: dict = {"n_judgments": rows.n, "n_pairs": int((n > 0).sum()), "n_pairs_multi": int(multi.sum()),
                    "tie_share": float((rows.outcome == TIE).mean()) if rows.n else None}
    shares = agreement.majority_share(counts[multi]) if multi.any() else np.array([])
    result["mean_majority_share"] = float(shares.mean()) if shares.size else None
    result["majority_share_ci"] = (
        _bootstrap_ci(lambda i: float(shares[i].mean()), shares.size) if with_ci and shares.size else None)
    table, m = _modal_fleiss_table(unit=rows.task, category=rows.outcome, n_units=n_tasks, n_categories=3)
    fleiss = {"value": None, "m": m, "n_pairs": 0, "ci": None, "reason": None}
    if table is None or table.shape[0] == 0:
        fleiss["reason"] = "no pair has two or more judgments yet"
    else:
        fleiss["n_pairs"] = int(table.shape[0])
        fleiss["value"], fleiss["reason"] = _try(agreement.fleiss_kappa, table)
        if fleiss["value"] is not None and with_ci:
            fleiss["ci"] = _bootstrap_ci(lambda i: agreement.fleiss_kappa(table[i]), table.shape[0])
    result["fleiss_kappa"] = fleiss
    slots = _slot_matrix(unit=rows.task, values=rows.outcome.astype(float), n_units=n_tasks)
    slots = slots[:, multi] if slots.size else slots
    alpha = {"value": None, "ci": None, "reason": None, "n_pairs": int(multi.sum())}
    if slots.shape[0] < 2 or slots.shape[1] == 0:
        alpha["reason"] = "no pair has two or more judgments yet"
    else:
        alpha["value"], alpha["reason"] = _try(agreement.krippendorff_alpha, slots, "nominal")
        if alpha["value"] is not None and with_ci:
            multi_counts = counts[multi]  # same alpha from counts (see nominal_alpha_from_counts), fast to resample
            alpha["ci"] = _bootstrap_ci(lambda i: nominal_alpha_from_counts(multi_counts[i]), multi_counts.shape[0])
    result["alpha_nominal"] = alpha
    return result


#: Raters with at least this many repeated pairs are listed as low-consistency below this share.
MIN_REPEATS_FOR_FLAG = 5
LOW_CONSISTENCY_SHARE = 0.6


def intra_rater_consistency(*, project: Project, cutoff_judgment_id: int | None = None) -> dict:
    """Per rater and overall: repeated pairs answered twice and the share answered the same way.

    Each repeat answer is paired with the rater's first answer to the same assignment's pair. The
    two agree when they name the same winning item, or are both ties (sides are swapped between
    the showings, so a rater pressing the same side twice disagrees). Wilson 95 % intervals;
    raters with at least :data:`MIN_REPEATS_FOR_FLAG` repeats and a share below
    :data:`LOW_CONSISTENCY_SHARE` are listed as low.
    """
    pairs = list(
        _judgments(project=project, cutoff_judgment_id=cutoff_judgment_id)
        .filter(is_repeat=True, right_item__isnull=False, assignment__repeat_of__judgment__isnull=False)
        .order_by("id")
        .values_list("rater_id", "winner_id", "is_tie", "assignment__repeat_of__judgment__winner_id",
                     "assignment__repeat_of__judgment__is_tie")
    )
    public_ids = _public_ids(project) if pairs else {}
    n_by: Counter = Counter()
    k_by: Counter = Counter()
    for rater_id, winner, tie, first_winner, first_tie in pairs:
        n_by[rater_id] += 1
        k_by[rater_id] += int(tie == first_tie and (tie or winner == first_winner))
    rater_ids = sorted(n_by, key=lambda r: (k_by[r] / n_by[r], -n_by[r], public_ids.get(r, "")))
    n = np.array([n_by[r] for r in rater_ids], dtype=np.int64)
    k = np.array([k_by[r] for r in rater_ids], dtype=np.int64)
    low, high = agreement.wilson_interval(k, n) if n.size else (np.array([]), np.array([]))
    raters = []
    for i, r in enumerate(rater_ids):
        share = float(k[i] / n[i])
        raters.append({"rater": public_ids.get(r, "?"), "n_repeated": int(n[i]), "n_consistent": int(k[i]),
                       "consistent_share": share, "wilson": [float(low[i]), float(high[i])],
                       "low": bool(n[i] >= MIN_REPEATS_FOR_FLAG and share < LOW_CONSISTENCY_SHARE)})
    total_n, total_k = int(n.sum()), int(k.sum())
    overall = agreement.wilson_interval(total_k, total_n) if total_n else None
    return {
        "repeat_rate": project.repeat_rate,
        "n_repeated": total_n, "n_consistent": total_k,
        "consistent_share": total_k / total_n if total_n else None,
        "wilson": [float(overall[0]), float(overall[1])] if overall else None,
        "n_raters": len(raters), "raters": raters, "low": [r for r in raters if r["low"]],
        "min_repeats_for_flag": MIN_REPEATS_FOR_FLAG, "low_share": LOW_CONSISTENCY_SHARE,
    }


def _bt_strengths(rows: PairwiseRows) -> np.ndarray | None:
    if rows.n == 0:
        return None
    winners, losers = rows.winners_losers()
    tied = rows.outcome == TIE
    fit, _ = _try(fit_bt, winners, losers, rows.item_ids.size, tied=tied if tied.any() else None,
                  alpha=BT_ALPHA, compute_se=False)
    return None if fit is None else fit.strengths


def rater_quality(*, rows: PairwiseRows, public_ids: dict[int, str]) -> dict:
    """Per rater: leave-one-out majority agreement, BT-prediction agreement, intransitive triads."""
    n_raters = rows.rater_ids.size
    n_tasks = rows.task_ids.size
    counts = _category_counts(unit=rows.task, category=rows.outcome, n_units=n_tasks, n_categories=3)
    others = counts[rows.task].copy()
    others[np.arange(rows.n), rows.outcome] -= 1
    top = others.max(axis=1)
    unique_mode = (others == top[:, None]).sum(axis=1) == 1
    loo_valid = (others.sum(axis=1) >= 1) & unique_mode
    loo_agree = loo_valid & (others.argmax(axis=1) == rows.outcome)
    loo_n = np.bincount(rows.rater, weights=loo_valid, minlength=n_raters)
    loo_k = np.bincount(rows.rater, weights=loo_agree, minlength=n_raters)

    strengths = _bt_strengths(rows)
    decided = rows.decided
    winners, losers = rows.winners_losers()
    if strengths is not None:
        diff = strengths[winners] - strengths[losers]
        hit = np.where(diff > 0, 1.0, np.where(diff == 0, 0.5, 0.0))
        bt_n = np.bincount(rows.rater, weights=decided, minlength=n_raters)
        bt_k = np.bincount(rows.rater, weights=hit * decided, minlength=n_raters)
    else:
        bt_n = bt_k = np.zeros(n_raters)
    triads = triad_counts(winners[decided], losers[decided], rows.rater[decided], n_raters=n_raters)
    n_judg = np.bincount(rows.rater, minlength=n_raters)

    with np.errstate(divide="ignore", invalid="ignore"):
        loo = np.where(loo_n > 0, loo_k / loo_n, np.nan)
        bt = np.where(bt_n > 0, bt_k / bt_n, np.nan)
    scored = (loo_n >= 5) & ~np.isnan(loo)
    mean = float(loo[scored].mean()) if scored.sum() >= 3 else None
    sd = float(loo[scored].std(ddof=1)) if scored.sum() >= 3 else None
    raters = []
    for r in range(n_raters):
        reasons = []
        if mean is not None and sd and scored[r] and loo[r] < mean - 2 * sd:
            reasons.append("majority agreement more than 2 SD below the mean")
        if loo_n[r] >= 10 and loo[r] < 0.5:
            reasons.append("agrees with the majority on fewer than half of 10+ pairs")
        if bt_n[r] >= 10 and bt[r] < 0.5:
            reasons.append("agrees with the population ranking on fewer than half of 10+ choices")
        raters.append({
            "rater": public_ids.get(int(rows.rater_ids[r]), "?"), "n_judgments": int(n_judg[r]),
            "loo_n": int(loo_n[r]), "loo_agreement": None if np.isnan(loo[r]) else float(loo[r]),
            "bt_n": int(bt_n[r]), "bt_agreement": None if np.isnan(bt[r]) else float(bt[r]),
            "n_triads": int(triads.n_triads[r]), "n_cyclic": int(triads.n_cyclic[r]),
            "cyclic_share": float(triads.n_cyclic[r] / triads.n_triads[r]) if triads.n_triads[r] else None,
            "flagged": bool(reasons), "reasons": reasons,
        })
    raters.sort(key=lambda x: (not x["flagged"], x["loo_agreement"] if x["loo_agreement"] is not None else 2))
    total_triads = int(triads.n_triads.sum())
    return {
        "raters": raters, "mean_loo": mean, "sd_loo": sd, "n_flagged": sum(r["flagged"] for r in raters),
        "bt_available": strengths is not None,
        "n_triads": total_triads, "n_cyclic": int(triads.n_cyclic.sum()),
        "cyclic_share": float(triads.n_cyclic.sum() / total_triads) if total_triads else None,
    }


# ------------------------------------------------------------------------------------------------
# Groups
# ------------------------------------------------------------------------------------------------


def _choice_labels(field: str) -> dict[str, str]:
    choices = Demographics._meta.get_field(field).choices or []
    return {"": NOT_ANSWERED, PREFER_NOT: "Prefer not to say", **{k: str(v) for k, v in choices}}


def rater_groups(*, project: Project, field: str) -> dict[int, str]:
    """rater id → the rater's value of a demographic field ('' when not answered)."""
    if field not in DEMOGRAPHIC_FIELDS:
        raise ValueError(f"field must be one of {', '.join(DEMOGRAPHIC_FIELDS)}")
    values = dict(Demographics.objects.filter(rater__project=project).values_list("rater_id", field))
    return {rid: (values.get(rid) or "").strip() for rid in Rater.objects.filter(project=project)
            .values_list("id", flat=True)}


def group_breakdown(*, rows: PairwiseRows, groups_by_rater: dict[int, str], field: str,
                    item_names: dict[int, str], top: int = 10) -> dict:
    """Per group: counts, within-group agreement, BT strengths; and the pooled-vs-groups LR test."""
    labels = _choice_labels(field)
    rater_value = np.array([groups_by_rater.get(int(r), "") for r in rows.rater_ids], dtype=object)
    row_value = rater_value[rows.rater] if rows.n else np.array([], dtype=object)
    values = sorted(set(groups_by_rater.values()) | set(row_value.tolist()),
                    key=lambda v: (v in ("", PREFER_NOT), labels.get(v, v)))
    n_tasks = rows.task_ids.size
    pooled = _bt_strengths(rows)
    groups = []
    for value in values:
        mask = row_value == value
        sub = _subset(rows, mask)
        n_r = int(np.unique(sub.rater).size)
        joined = sum(1 for v in groups_by_rater.values() if v == value)
        too_small = n_r < MIN_GROUP_RATERS or sub.n < MIN_GROUP_JUDGMENTS
        counts = _category_counts(unit=sub.task, category=sub.outcome, n_units=n_tasks, n_categories=3)
        multi = counts.sum(axis=1) >= 2
        entry = {"value": value, "label": labels.get(value, value), "n_raters_joined": joined, "n_raters": n_r,
                 "n_judgments": sub.n, "too_small": too_small, "n_pairs_multi": int(multi.sum()),
                 "mean_majority_share": float(agreement.majority_share(counts[multi]).mean()) if multi.any()
                 else None, "alpha_nominal": None, "strengths": None,
                 "testable": not too_small and value not in ("", PREFER_NOT)}
        if multi.any():
            slots = _slot_matrix(unit=sub.task, values=sub.outcome.astype(float), n_units=n_tasks)[:, multi]
            entry["alpha_nominal"], _ = _try(agreement.krippendorff_alpha, slots, "nominal")
        if not too_small:
            entry["strengths"] = _bt_strengths(sub)
        groups.append(entry)

    order = np.argsort(-pooled)[:top] if pooled is not None else np.array([], dtype=int)
    table = []
    for i in order:
        row = {"item": item_names.get(int(rows.item_ids[i]), str(rows.item_ids[i])), "pooled": float(pooled[i]),
               "groups": [None if g["strengths"] is None else float(g["strengths"][i]) for g in groups]}
        table.append(row)
    for g in groups:
        g.pop("strengths")

    testable = [k for k, g in enumerate(groups) if g["testable"]]
    lr = {"statistic": None, "df": None, "p": None, "n_common": None, "groups": [groups[k]["label"] for k in testable],
          "reason": None}
    if len(testable) < 2:
        lr["reason"] = (f"needs at least two groups with ≥ {MIN_GROUP_RATERS} raters and ≥ {MIN_GROUP_JUDGMENTS} "
                        "judgments (not counting 'not answered' and 'prefer not to say')")
    else:
        code = np.full(len(groups), -1)
        code[testable] = np.arange(len(testable))
        value_code = {groups[k]["value"]: code[k] for k in range(len(groups))}
        row_group = np.array([value_code[v] for v in row_value], dtype=np.int64)
        use = rows.decided & (row_group >= 0)
        winners, losers = rows.winners_losers()
        res, reason = _try(group_lr_test, winners[use], losers[use], row_group[use], n_groups=len(testable),
                           alpha=BT_ALPHA)
        if res is None:
            lr["reason"] = reason
        else:
            lr.update(statistic=res.statistic, df=res.df, p=res.p, n_common=res.n_common,
                      n_comparisons=[int(c) for c in res.n_comparisons])
    return {"field": field, "field_label": FIELD_LABELS[field], "groups": groups, "strength_table": table,
            "lr_test": lr, "min_raters": MIN_GROUP_RATERS, "min_judgments": MIN_GROUP_JUDGMENTS}


# ------------------------------------------------------------------------------------------------
# Likert and checklist (rich feedback)
# ------------------------------------------------------------------------------------------------


def _annotation_model():
    try:
        return apps.get_model("annotator", "Annotation")
    except LookupError:
        return None


def likert_agreement(*, item_index: np.ndarray, scores: np.ndarray, n_items: int) -> dict:
    """One Likert dimension: one-way ICC(1,1)/ICC(1,k), ordinal alpha, RichHF shares, histogram.

    Crowd designs give different raters to different items, so the one-way forms apply. ICC needs
    complete rows: it uses the first k ratings of items with ≥ k, k the most common count (≥ 2).
    """
    out: dict = {"n_ratings": int(scores.size), "icc1": None, "icc1k": None, "k": None, "n_targets_icc": 0,
                 "alpha_ordinal": None, "shares": None, "histogram": [], "reason": None}
    out["histogram"] = [(str(v), int((scores == v).sum())) for v in range(1, 6)]
    slots = _slot_matrix(unit=item_index, values=scores.astype(float), n_units=n_items)
    if slots.shape[0] < 2:
        out["reason"] = "no image has two or more ratings yet"
        return out
    out["alpha_ordinal"], _ = _try(agreement.krippendorff_alpha, slots, "ordinal")
    shares, _ = _try(agreement.likert_agreement_shares, slots.T)
    if shares is not None:
        out["shares"] = {"perfect": shares.perfect, "within_one": shares.within_one, "n_targets": shares.n_targets}
    per_item = (~np.isnan(slots)).sum(axis=0)
    eligible = per_item[per_item >= 2]
    k = int(Counter(eligible.tolist()).most_common(1)[0][0])
    matrix = slots[:k, per_item >= k].T
    res, reason = _try(agreement.icc, matrix)
    if res is None:
        out["reason"] = reason
    else:
        out.update(k=k, n_targets_icc=int(res.n_targets), icc1=_icc_dict(res["ICC1"]), icc1k=_icc_dict(res["ICC1k"]))
    return out


def _icc_dict(form) -> dict:
    return {"value": float(form.value), "ci_low": float(form.ci_low), "ci_high": float(form.ci_high),
            "p": float(form.p)}


def checklist_agreement(*, item_index: np.ndarray, answers: np.ndarray, n_items: int) -> dict:
    """One yes/no question: yes-rate, Fleiss' kappa (modal-count subsample) and Gwet's AC1."""
    out: dict = {"n_answers": int(answers.size), "yes_rate": float(answers.mean()) if answers.size else None,
                 "kappa": None, "ac1": None, "reason": None}
    slots = _slot_matrix(unit=item_index, values=answers.astype(float), n_units=n_items)
    if slots.shape[0] < 2:
        out["reason"] = "no image has two or more answers yet"
        return out
    out["ac1"], out["reason"] = _try(agreement.gwet_ac1, slots)
    table, _ = _modal_fleiss_table(unit=item_index, category=answers.astype(np.int64), n_units=n_items,
                                   n_categories=2)
    if table is not None and table.shape[0]:
        out["kappa"], _ = _try(agreement.fleiss_kappa, table)
    return out


def rich_agreement(*, project: Project, cutoff_annotation_id: int | None = None) -> dict:
    """Likert and checklist agreement when rich feedback exists; honest 'nothing yet' otherwise."""
    model = _annotation_model()
    result: dict = {"available": model is not None, "likert": [], "checklist": [],
                    "icc_references": ICC_REFERENCES}
    if model is None:
        return result
    annotations = model.objects.filter(project=project)
    if cutoff_annotation_id is not None:
        annotations = annotations.filter(id__lte=cutoff_annotation_id)
    rows = list(annotations.order_by("id").values_list("item_id", "kind", "scores",
                                                                                 "answers"))
    item_ids = sorted({r[0] for r in rows})
    index = {item_id: i for i, item_id in enumerate(item_ids)}
    for dim in getattr(project, "likert_dimensions", None) or []:
        pairs = [(index[r[0]], r[2][dim["name"]]) for r in rows
                 if r[1] == "rich" and isinstance(r[2], dict) and r[2].get(dim["name"]) is not None]
        if not pairs:
            continue
        arr = np.array(pairs, dtype=float)
        result["likert"].append({"name": dim["name"], "label": dim.get("label", dim["name"]),
                                 **likert_agreement(item_index=arr[:, 0].astype(np.int64), scores=arr[:, 1],
                                                    n_items=len(item_ids))})
    for q in getattr(project, "checklist", None) or []:
        pairs = [(index[r[0]], bool(r[3][q["id"]])) for r in rows
                 if r[1] == "checklist" and isinstance(r[3], dict) and r[3].get(q["id"]) is not None]
        if not pairs:
            continue
        arr = np.array(pairs, dtype=np.int64)
        result["checklist"].append({"id": q["id"], "question": q.get("question", q["id"]),
                                    "dimension": q.get("dimension", ""),
                                    **checklist_agreement(item_index=arr[:, 0], answers=arr[:, 1],
                                                          n_items=len(item_ids))})
    return result


HEATMAP_BATCH = 200
HEATMAP_BINS = 10  # correlation histogram over [-1, 1], bins of 0.2
LIKERT_IMAGES_SHOWN = 50


def _rich_feedback_batches(*, project: Project, cutoff_annotation_id: int | None = None,
                           batch_size: int = HEATMAP_BATCH):
    """Consolidated rich feedback (:func:`annotator.consolidation.item_feedback`) of every image with a
    rich-feedback answer up to the cut-off, ``batch_size`` images and one annotations query at a time."""
    from annotator.consolidation import item_feedback

    model = _annotation_model()
    if model is None:
        return
    annotations = model.objects.filter(project=project, kind="rich")
    if cutoff_annotation_id is not None:
        annotations = annotations.filter(id__lte=cutoff_annotation_id)
    item_ids = sorted(set(annotations.values_list("item_id", flat=True)))
    for start in range(0, len(item_ids), batch_size):
        batch = list(Item.objects.filter(id__in=item_ids[start:start + batch_size]).order_by("id"))
        by_item: dict[int, list] = {item.pk: [] for item in batch}
        rows = (annotations.filter(item__in=batch).select_related("rater").order_by("id")
                .only("item_id", "kind", "points", "misaligned_words", "scores", "answers", "submitted_at",
                      "rater__public_id"))
        for annotation in rows:
            by_item[annotation.item_id].append(annotation)
        for item in batch:
            yield item, item_feedback(item=item, project=project, annotations=by_item[item.pk])


def heatmap_agreement_summary(*, correlations: list[float | None], n_marked: int, n_images: int) -> dict:
    """Distribution over images of the leave-one-out correlation between raters' disk maps (one kind).

    ``correlations``: one value per image with ≥ 2 raters, None where undefined (no rater, or only one,
    marked anything of the kind). ``n_marked`` of ``n_images`` rich-feedback images have a mark by anyone.
    """
    values = np.array([c for c in correlations if c is not None], dtype=float)
    counts, edges = np.histogram(values, bins=HEATMAP_BINS, range=(-1.0, 1.0))
    return {
        "n_images": len(correlations), "n_defined": int(values.size),
        "share_defined": values.size / len(correlations) if correlations else None,
        "mean": float(values.mean()) if values.size else None,
        "median": float(np.median(values)) if values.size else None,
        "histogram": [{"low": float(edges[i]), "high": float(edges[i + 1]), "n": int(counts[i])}
                      for i in range(HEATMAP_BINS)],
        "n_marked": n_marked, "n_rich_images": n_images,
        "marked_share": n_marked / n_images if n_images else None,
    }


def _likert_image_row(*, item: Item, values: list[int]) -> dict:
    arr = np.array(values, dtype=float)
    counts = [int((arr == s).sum()) for s in range(1, 6)]
    top = max(counts)
    return {
        "item_id": item.pk, "item": item.original_name or str(item.pk), "n": int(arr.size),
        "counts": counts, "text": ", ".join(f"{c}×{s}" for s, c in zip(range(1, 6), counts) if c),
        "mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if arr.size > 1 else None,
        "spread": float(arr.max() - arr.min()),
        "glyph": [{"score": s, "n": c, "h": round(16 * c / top, 1), "y": round(17 - 16 * c / top, 1), "x": 10 * (s - 1)}
                  for s, c in zip(range(1, 6), counts)],
    }


def likert_image_opinions(*, rows: list[dict], sort: str = "controversy", limit: int = LIKERT_IMAGES_SHOWN) -> dict:
    """Per-image Likert rows of one dimension in ``sort`` order: ``controversy`` (largest max − min, then
    largest SD, then most ratings), ``n`` (most ratings first) or ``agreement`` (smallest spread first)."""
    def sd(r):
        return r["sd"] if r["sd"] is not None else 0.0
    if sort == "n":
        key = (lambda r: (-r["n"], -r["spread"], -sd(r), r["item_id"]))
    elif sort == "agreement":
        key = (lambda r: (r["spread"], sd(r), -r["n"], r["item_id"]))
    else:
        sort = "controversy"
        key = (lambda r: (-r["spread"], -sd(r), -r["n"], r["item_id"]))
    ordered = sorted(rows, key=key)[:limit]
    return {"sort": sort, "n_images": len(rows), "rows": ordered, "shown": len(ordered)}


def _spread_counts(rows: list[dict]) -> dict:
    """Images with ≥ 2 ratings by spread (max − min): 0, 1, 2 or more."""
    multi = [r["spread"] for r in rows if r["n"] >= 2]
    return {"n_multi": len(multi), "zero": sum(1 for v in multi if v == 0), "one": sum(1 for v in multi if v == 1),
            "two_plus": sum(1 for v in multi if v >= 2)}


def rich_image_agreement(*, project: Project, cutoff_annotation_id: int | None = None) -> dict:
    """Heatmap agreement per point kind, and per-image Likert histograms, from the rich feedback.

    Heatmaps: for each image with ≥ 2 raters, the mean leave-one-out correlation between the raters'
    disk maps (``ItemFeedback.heatmap_agreement``); undefined (skipped) where fewer than two raters'
    maps vary, e.g. nobody or only one rater marked the kind. Likert: every image's score histogram per
    dimension, precomputed under each of :data:`OPINION_SORTS` (the top :data:`LIKERT_IMAGES_SHOWN`).
    """
    from annotator.feedback import POINT_KINDS

    dims = list(getattr(project, "likert_dimensions", None) or [])
    correlations: dict[str, list] = {kind: [] for kind in POINT_KINDS}
    marked = {kind: 0 for kind in POINT_KINDS}
    likert_rows: dict[str, list[dict]] = {d["name"]: [] for d in dims}
    n_images = 0
    for item, fb in _rich_feedback_batches(project=project, cutoff_annotation_id=cutoff_annotation_id):
        if not fb.answers:
            continue
        n_images += 1
        for kind in POINT_KINDS:
            if any(p.get("kind") == kind for a in fb.answers for p in a.points):
                marked[kind] += 1
            if fb.n_raters >= 2:
                correlations[kind].append(fb.heatmap_agreement.get(kind))
        for d in dims:
            values = [a.scores.get(d["name"]) for a in fb.answers if a.scores.get(d["name"]) is not None]
            if values:
                likert_rows[d["name"]].append(_likert_image_row(item=item, values=values))
    heat = [{"kind": kind, **heatmap_agreement_summary(correlations=correlations[kind], n_marked=marked[kind],
                                                       n_images=n_images)} for kind in POINT_KINDS]
    likert = [{"name": d["name"], "label": d.get("label", d["name"]),
               "spread_counts": _spread_counts(likert_rows[d["name"]]),
               "opinions": {sort: likert_image_opinions(rows=likert_rows[d["name"]], sort=sort)
                            for sort in OPINION_SORTS}}
              for d in dims if likert_rows[d["name"]]]
    return {"n_images": n_images, "heatmaps": heat if n_images else [], "likert_images": likert}


def heatmap_chart(*, histogram: list[dict], width: int = 360, height: int = 140) -> dict:
    """Geometry of one correlation histogram (bins over [−1, 1]) as an SVG bar chart."""
    left, right, top, bottom = 30, 10, 10, 22
    span, plot_h = width - left - right, height - top - bottom
    peak = max([b["n"] for b in histogram] + [1])
    bw = span / max(len(histogram), 1)
    bars = [{"x": left + i * bw + 1, "w": bw - 2, "h": plot_h * b["n"] / peak,
             "y": top + plot_h - plot_h * b["n"] / peak, "n": b["n"], "low": b["low"], "high": b["high"]}
            for i, b in enumerate(histogram)]
    ticks = [{"x": left + span * (t + 1) / 2, "label": f"{t:g}"} for t in (-1.0, -0.5, 0.0, 0.5, 1.0)]
    return {"width": width, "height": height, "left": left, "bars": bars, "ticks": ticks, "peak": peak,
            "axis_y": top + plot_h, "right_x": width - right}


def icc_chart(*, likert: list[dict], width: int = 760) -> dict:
    """Geometry of the horizontal ICC chart (0–1 axis) with the crowd and lab reference lines."""
    left, right, row_h, top = 230, 30, 26, 24
    span = width - left - right
    bars = []
    for i, dim in enumerate(likert):
        for j, key in enumerate(("icc1", "icc1k")):
            form = dim.get(key)
            if not form:
                continue
            y = top + (2 * i + j) * row_h
            v = max(0.0, min(1.0, form["value"]))
            bars.append({"label": f"{dim['label']} {'ICC(1,1)' if key == 'icc1' else 'ICC(1,k)'}", "y": y,
                         "w": span * v, "value": form["value"],
                         "ci_x1": left + span * max(0.0, form["ci_low"]), "ci_x2": left + span * min(1.0, form["ci_high"]),
                         "cy": y + 8})
    height = top + max(len(bars), 1) * row_h + 24
    refs = [{"x": left + span * r["value"], "label": r["label"]} for r in ICC_REFERENCES]
    ticks = [{"x": left + span * t / 5, "label": f"{t / 5:.1f}"} for t in range(6)]
    return {"width": width, "height": height, "left": left, "span": span, "bars": bars, "refs": refs,
            "ticks": ticks, "axis_y": height - 20, "top": top}


# ------------------------------------------------------------------------------------------------
# Pages' entry points
# ------------------------------------------------------------------------------------------------


def _item_names(project: Project) -> dict[int, str]:
    return dict(Item.objects.filter(project=project).values_list("id", "original_name"))


def _public_ids(project: Project) -> dict[int, str]:
    return dict(Rater.objects.filter(project=project).values_list("id", "public_id"))


OPINION_SORTS = ("controversy", "n", "agreement")
DATASHEET_DATETIMES = {"collection_period": ("first_judgment", "last_judgment"),
                       "instruction_versions": ("created_at", "in_force_from", "in_force_until", "first_shown_at"),
                       "consent_versions": ("created_at",)}


def report_jsonable(value):
    """``value`` as JSON data: numpy scalars and arrays to Python, tuples to lists, dataclasses to dicts,
    datetimes to ISO 8601 strings (as Django's JSON encoder writes them), NaN and ±inf to None."""
    if isinstance(value, dict):
        return {str(k): report_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [report_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return report_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if is_dataclass(value) and not isinstance(value, type):
        return report_jsonable(asdict(value))
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (datetime, date)):
        return DjangoJSONEncoder().default(value)
    return value


def agreement_compute(*, project: Project, cutoff_judgment_id: int | None = None,
                      cutoff_annotation_id: int | None = None,
                      progress: Callable[[float], None] | None = None) -> dict:
    """Every section the agreement page and the datasheet show, as JSON-ready data.

    Uses the judgments with id ≤ ``cutoff_judgment_id`` and the annotations with id ≤
    ``cutoff_annotation_id`` (all of them when None). The page's choices are all precomputed:
    opinions under each of :data:`OPINION_SORTS`, the group breakdown by each of
    :data:`DEMOGRAPHIC_FIELDS`. ``progress(fraction)`` is called between sections. This is what an
    ``AgreementReport`` stores; :func:`agreement_view` and :func:`datasheet_view` read it.
    """
    step = progress or (lambda fraction: None)
    rows = pairwise_rows(project=project, cutoff_judgment_id=cutoff_judgment_id)
    names = _item_names(project)
    step(0.1)
    result: dict = {"pairwise": pairwise_agreement(rows=rows)}
    result["intra_rater"] = intra_rater_consistency(project=project, cutoff_judgment_id=cutoff_judgment_id)
    step(0.3)
    result["opinions"] = {sort: pair_opinions(rows=rows, item_names=names, sort=sort) for sort in OPINION_SORTS}
    result["quality"] = rater_quality(rows=rows, public_ids=_public_ids(project))
    step(0.45)
    result["groups"] = {}
    for k, field in enumerate(DEMOGRAPHIC_FIELDS):
        result["groups"][field] = group_breakdown(rows=rows, groups_by_rater=rater_groups(project=project, field=field),
                                                  field=field, item_names=names)
        step(0.45 + 0.4 * (k + 1) / len(DEMOGRAPHIC_FIELDS))
    result["rich"] = rich_agreement(project=project, cutoff_annotation_id=cutoff_annotation_id)
    step(0.87)
    result["rich_images"] = rich_image_agreement(project=project, cutoff_annotation_id=cutoff_annotation_id)
    step(0.9)
    judgments = _judgments(project=project, cutoff_judgment_id=cutoff_judgment_id)
    period = judgments.aggregate(first=Min("submitted_at"), last=Max("submitted_at"))
    model = _annotation_model()
    annotations = model.objects.filter(project=project) if model is not None else None
    if annotations is not None and cutoff_annotation_id is not None:
        annotations = annotations.filter(id__lte=cutoff_annotation_id)
    result["collection_period"] = {"first_judgment": period["first"], "last_judgment": period["last"]}
    result["counts"] = {
        "items": Item.objects.filter(project=project).count(),
        "pairwise_tasks": project.tasks.filter(kind="pairwise").count(),
        "raters_joined": Rater.objects.filter(project=project).count(),
        "raters_with_judgments": int(rows.rater_ids.size),
        "judgments": judgments.count(),
        "annotations": annotations.count() if annotations is not None else 0,
    }
    result["demographics"] = demographics_summary(project=project)
    result["instruction_versions"] = instruction_history(project=project, cutoff_judgment_id=cutoff_judgment_id,
                                                         cutoff_annotation_id=cutoff_annotation_id)
    result["consent_versions"] = consent_history(project=project)
    step(0.95)
    return report_jsonable(result)


def agreement_view(*, result: dict, field: str = "expertise", sort: str = "controversy") -> dict:
    """What the agreement page shows of a computed report, for one group field and one sort order."""
    if field not in DEMOGRAPHIC_FIELDS:
        field = "expertise"
    if sort not in OPINION_SORTS:
        sort = "controversy"
    return {
        "pairwise": result["pairwise"],
        "intra_rater": result.get("intra_rater"),  # None in reports stored before repeats existed
        "opinions": result["opinions"][sort],
        "quality": result["quality"],
        "groups": result["groups"][field],
        "rich": result["rich"],
        "heatmaps": [dict(h, chart=heatmap_chart(histogram=h["histogram"]))
                     for h in (result.get("rich_images") or {}).get("heatmaps", [])],
        "likert_images": [{"name": d["name"], "label": d["label"], "opinions": d["opinions"][sort]}
                          for d in (result.get("rich_images") or {}).get("likert_images", [])],
        "fields": [(f, FIELD_LABELS[f]) for f in DEMOGRAPHIC_FIELDS],
    }


def agreement_report(*, project: Project, field: str = "expertise", sort: str = "controversy") -> dict:
    """The agreement page's content computed now from all current data (no stored report)."""
    return agreement_view(result=agreement_compute(project=project), field=field, sort=sort)


def demographics_summary(*, project: Project) -> list[dict]:
    """Per field: counts of every answer, with 'prefer not to say' and 'not answered' (no identities)."""
    n_raters = Rater.objects.filter(project=project).count()
    out = []
    for field in DEMOGRAPHIC_FIELDS:
        labels = _choice_labels(field)
        counts = Counter((v or "").strip() for v in
                         Demographics.objects.filter(rater__project=project).values_list(field, flat=True))
        answered = sum(counts.values())
        counts[""] += n_raters - answered  # raters who never reached the demographics form
        rows = [{"value": v, "label": labels.get(v, v), "n": n} for v, n in counts.items() if n]
        rows.sort(key=lambda r: (r["value"] in ("", PREFER_NOT), -r["n"], r["label"]))
        out.append({"field": field, "label": FIELD_LABELS[field], "counts": rows})
    return out


def instruction_history(*, project: Project, cutoff_judgment_id: int | None = None,
                        cutoff_annotation_id: int | None = None) -> list[dict]:
    judged = Q() if cutoff_judgment_id is None else Q(judgments__id__lte=cutoff_judgment_id)
    versions = list(InstructionVersion.objects.filter(project=project).order_by("version")
                    .annotate(n_judgments=Count("judgments", filter=judged, distinct=True)))
    model = _annotation_model()
    n_ann = {}
    if model is not None:
        annotations = model.objects.filter(project=project)
        if cutoff_annotation_id is not None:
            annotations = annotations.filter(id__lte=cutoff_annotation_id)
        n_ann = dict(annotations.values_list("instruction_version_id")
                     .annotate(n=Count("id")).values_list("instruction_version_id", "n"))
    out = []
    for i, v in enumerate(versions):
        until = versions[i + 1].created_at if i + 1 < len(versions) else None
        out.append({"version": v.version, "text": v.text, "created_at": v.created_at, "in_force_from": v.created_at,
                    "in_force_until": until, "first_shown_at": v.first_shown_at, "n_judgments": v.n_judgments,
                    "n_annotations": int(n_ann.get(v.pk, 0))})
    return out


def consent_history(*, project: Project) -> list[dict]:
    versions = (ConsentVersion.objects.filter(project=project).order_by("version")
                .annotate(n_raters=Count("rater", distinct=True)))
    return [{"version": v.version, "text": v.text, "created_at": v.created_at, "n_raters_consented": v.n_raters}
            for v in versions]


def _revive(value):
    return parse_datetime(value) if isinstance(value, str) else value


DATASHEET_METHODS = [
    "Pair categories: item A preferred, item B preferred, tie (A is the pair's first item, not a screen side).",
    "Fleiss' kappa: pairs with at least m judgments, m the most common count among pairs with ≥ 2; "
    "the first m judgments of each by submission time. Krippendorff's alpha (nominal) uses every judgment.",
    f"95% intervals for agreement: percentile bootstrap over pairs ({BOOTSTRAP_RESAMPLES} resamples, seed 0).",
    "Group difference: likelihood-ratio test of one Bradley–Terry model for all groups against one per group, "
    "decided judgments only, items compared within every group; df = (groups − 1)·(common items − 1); "
    f"fits with a weak N(0, {1 / BT_ALPHA:g}) prior. Groups with fewer than {MIN_GROUP_RATERS} raters or "
    f"{MIN_GROUP_JUDGMENTS} judgments are reported as too small and left out of the test, as are "
    "'not answered' and 'prefer not to say'.",
    "Repeats (a pair re-shown to the same rater, sides swapped) are consistency probes: left out of every "
    "pairwise statistic and of fits; intra-rater consistency is the share of repeats answered with the same "
    "winning item (or a tie both times), Wilson 95% interval.",
    "Raters appear only in aggregate; no identities or external participant ids are included.",
]


def _likert_images_summary(rich_images: dict | None) -> list[dict]:
    """Per Likert dimension: images scored, how many with ≥ 2 ratings have a spread (max − min) of 0, 1
    and ≥ 2, and the five most controversial images."""
    out = []
    for d in (rich_images or {}).get("likert_images", []):
        op = d["opinions"]["controversy"]
        out.append({"name": d["name"], "label": d["label"], "n_images": op["n_images"],
                    "spread_counts": d["spread_counts"],
                    "most_controversial": [{k: r[k] for k in ("item_id", "item", "n", "text", "mean", "spread")}
                                           for r in op["rows"][:5]]})
    return out


def datasheet_view(*, result: dict, project: Project, generated_at=None, report: dict | None = None) -> dict:
    """The datasheet as plain data from a computed report (the page, the Markdown and the JSON download).

    The project's name and description and the researcher's known limitations are read now; everything
    else is the report's, as of its cut-off. ``report`` (id, cut-offs) is included when given.
    """
    sheet = {
        "project": {"name": project.name, "slug": project.slug, "description": project.description},
        "generated_at": generated_at or timezone.now(),
        "collection_period": {k: _revive(v) for k, v in result["collection_period"].items()},
        "counts": result["counts"],
        "demographics": result["demographics"],
        "instruction_versions": [{k: _revive(v) if k in DATASHEET_DATETIMES["instruction_versions"] else v
                                  for k, v in row.items()} for row in result["instruction_versions"]],
        "consent_versions": [{k: _revive(v) if k in DATASHEET_DATETIMES["consent_versions"] else v
                              for k, v in row.items()} for row in result["consent_versions"]],
        "agreement": {"pairwise": result["pairwise"], "rich": result["rich"],
                      "intra_rater": result.get("intra_rater"),
                      "heatmaps": (result.get("rich_images") or {}).get("heatmaps", []),
                      "likert_images": _likert_images_summary(result.get("rich_images"))},
        "group_differences": {
            field: {"label": g["field_label"],
                    "groups": [{k: grp[k] for k in ("label", "n_raters", "n_judgments", "too_small",
                                                    "mean_majority_share", "alpha_nominal")} for grp in g["groups"]],
                    "lr_test": g["lr_test"]}
            for field in DEMOGRAPHIC_FIELDS if (g := result["groups"].get(field)) is not None
        },  # in field order: a PostgreSQL jsonb column does not keep key order
        "limitations": datasheet_limitations(project=project),
        "methods": DATASHEET_METHODS,
    }
    if report is not None:
        sheet["report"] = report
    return sheet


def datasheet_build(*, project: Project) -> dict:
    """The datasheet computed now from all current data (no stored report)."""
    return datasheet_view(result=agreement_compute(project=project), project=project)


def datasheet_limitations(*, project: Project) -> str:
    from ranking.models import DatasheetNote

    note = DatasheetNote.objects.filter(project=project).first()
    return note.limitations if note else ""


def datasheet_note_update(*, project: Project, limitations: str):
    from ranking.models import DatasheetNote

    with transaction.atomic():
        note, _ = DatasheetNote.objects.update_or_create(project=project, defaults={"limitations": limitations})
    return note
