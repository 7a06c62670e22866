"""Pairwise judgments as arrays, and the agreement statistics computed from them.

Pure numpy (no Django): :mod:`ranking.loaders` turns database rows into :class:`PairwiseRows`;
the functions here return JSON-ready dicts that agreement reports store.

Methods, as the pages state them:

* A pair's categories are "item A preferred", "item B preferred", "tie", where A is the task's
  ``item_a`` (the lower id; screen side is randomised and irrelevant here).
* Fleiss' kappa needs the same number of judgments per pair: it uses the pairs with at least *m*
  judgments, *m* being the most common count among pairs with ≥ 2, and of each the first *m*
  judgments by submission order. Krippendorff's alpha (nominal) uses every judgment (missing
  allowed). 95 % intervals for both: percentile bootstrap over pairs (200 resamples, seed 0).
* Repeats (a pair re-shown to the same rater, sides swapped) are consistency probes, not extra
  votes: the loaders leave them out of :class:`PairwiseRows`; :func:`intra_rater_consistency`
  scores them.
* Group LR test: decided judgments only, groups that are not too small and not "not answered" /
  "prefer not to say"; see :func:`ranking.core.consistency.group_lr_test`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ranking.core import agreement
from ranking.core.bt import fit_bt
from ranking.core.consistency import group_lr_test, nominal_alpha_from_counts, triad_counts
from ranking.core.errors import ConvergenceError

__all__ = [
    "A_WINS",
    "BOOTSTRAP_RESAMPLES",
    "B_WINS",
    "NOT_ANSWERED",
    "PREFER_NOT",
    "TIE",
    "PairwiseRows",
    "bootstrap_ci",
    "category_counts",
    "comparison_components",
    "group_breakdown",
    "intra_rater_consistency",
    "modal_fleiss_table",
    "outcome_counts",
    "pair_opinions",
    "pairwise_agreement",
    "rater_quality",
    "slot_matrix",
    "try_statistic",
]

A_WINS, B_WINS, TIE = 0, 1, 2
NOT_ANSWERED = "Not answered"
PREFER_NOT = "prefer_not"
MIN_GROUP_RATERS = 5
MIN_GROUP_JUDGMENTS = 30
BOOTSTRAP_RESAMPLES = 200
#: Raters with at least this many repeated pairs are listed as low-consistency below this share.
MIN_REPEATS_FOR_FLAG = 5
LOW_CONSISTENCY_SHARE = 0.6


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


def subset(rows: PairwiseRows, mask: np.ndarray) -> PairwiseRows:
    """Rows under ``mask``, keeping the item and task index spaces (so results line up)."""
    return PairwiseRows(judgment_ids=rows.judgment_ids[mask], task=rows.task[mask], task_ids=rows.task_ids,
                        item_a=rows.item_a[mask], item_b=rows.item_b[mask], item_ids=rows.item_ids,
                        outcome=rows.outcome[mask], rater=rows.rater[mask], rater_ids=rows.rater_ids)


def slot_matrix(*, unit: np.ndarray, values: np.ndarray, n_units: int) -> np.ndarray:
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


def category_counts(*, unit: np.ndarray, category: np.ndarray, n_units: int, n_categories: int) -> np.ndarray:
    counts = np.zeros((n_units, n_categories), dtype=np.int64)
    np.add.at(counts, (unit, category), 1)
    return counts


def modal_fleiss_table(*, unit: np.ndarray, category: np.ndarray, n_units: int, n_categories: int):
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
    table = category_counts(unit=u[keep], category=category[order][keep], n_units=n_units,
                             n_categories=n_categories)
    return table[totals >= m], m


def try_statistic(fn, *args, **kwargs):
    """(value, None) or (None, reason) for statistics that are undefined on some data."""
    try:
        return fn(*args, **kwargs), None
    except (ValueError, ConvergenceError) as exc:
        return None, str(exc)


def bootstrap_ci(statistic, n_units: int, *, resamples: int = BOOTSTRAP_RESAMPLES, random_state: int = 0):
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


def pair_opinions(*, rows: PairwiseRows, item_names: dict[int, str], sort: str = "controversy",
                  limit: int = 200) -> dict:
    """Per pair: counts, shares and the Wilson 95 % interval of the share preferring A.

    ``sort``: ``controversy`` (decided share of A closest to 50 %, then more judgments first),
    ``n`` (most judgments first) or ``agreement`` (highest majority share first).
    """
    n_tasks = rows.task_ids.size
    counts = category_counts(unit=rows.task, category=rows.outcome, n_units=n_tasks, n_categories=3)
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
    counts = category_counts(unit=rows.task, category=rows.outcome, n_units=n_tasks, n_categories=3)
    n = counts.sum(axis=1)
    multi = n >= 2
    result: dict = {"n_judgments": rows.n, "n_pairs": int((n > 0).sum()), "n_pairs_multi": int(multi.sum()),
                    "tie_share": float((rows.outcome == TIE).mean()) if rows.n else None}
    shares = agreement.majority_share(counts[multi]) if multi.any() else np.array([])
    result["mean_majority_share"] = float(shares.mean()) if shares.size else None
    result["majority_share_ci"] = (
        bootstrap_ci(lambda i: float(shares[i].mean()), shares.size) if with_ci and shares.size else None)
    table, m = modal_fleiss_table(unit=rows.task, category=rows.outcome, n_units=n_tasks, n_categories=3)
    fleiss = {"value": None, "m": m, "n_pairs": 0, "ci": None, "reason": None}
    if table is None or table.shape[0] == 0:
        fleiss["reason"] = "no pair has two or more judgments yet"
    else:
        fleiss["n_pairs"] = int(table.shape[0])
        fleiss["value"], fleiss["reason"] = try_statistic(agreement.fleiss_kappa, table)
        if fleiss["value"] is not None and with_ci:
            fleiss["ci"] = bootstrap_ci(lambda i: agreement.fleiss_kappa(table[i]), table.shape[0])
    result["fleiss_kappa"] = fleiss
    slots = slot_matrix(unit=rows.task, values=rows.outcome.astype(float), n_units=n_tasks)
    slots = slots[:, multi] if slots.size else slots
    alpha = {"value": None, "ci": None, "reason": None, "n_pairs": int(multi.sum())}
    if slots.shape[0] < 2 or slots.shape[1] == 0:
        alpha["reason"] = "no pair has two or more judgments yet"
    else:
        alpha["value"], alpha["reason"] = try_statistic(agreement.krippendorff_alpha, slots, "nominal")
        if alpha["value"] is not None and with_ci:
            multi_counts = counts[multi]  # same alpha from counts (see nominal_alpha_from_counts), fast to resample
            alpha["ci"] = bootstrap_ci(lambda i: nominal_alpha_from_counts(multi_counts[i]), multi_counts.shape[0])
    result["alpha_nominal"] = alpha
    return result


def bt_strengths(rows: PairwiseRows, *, alpha: float) -> np.ndarray | None:
    """Population BT strengths of the rows' items (no SEs), or None if there is no fit."""
    if rows.n == 0:
        return None
    winners, losers = rows.winners_losers()
    tied = rows.outcome == TIE
    fit, _ = try_statistic(fit_bt, winners, losers, rows.item_ids.size, tied=tied if tied.any() else None,
                  alpha=alpha, compute_se=False)
    return None if fit is None else fit.strengths


def rater_quality(*, rows: PairwiseRows, public_ids: dict[int, str], alpha: float) -> dict:
    """Per rater: leave-one-out majority agreement, BT-prediction agreement, intransitive triads."""
    n_raters = rows.rater_ids.size
    n_tasks = rows.task_ids.size
    counts = category_counts(unit=rows.task, category=rows.outcome, n_units=n_tasks, n_categories=3)
    others = counts[rows.task].copy()
    others[np.arange(rows.n), rows.outcome] -= 1
    top = others.max(axis=1)
    unique_mode = (others == top[:, None]).sum(axis=1) == 1
    loo_valid = (others.sum(axis=1) >= 1) & unique_mode
    loo_agree = loo_valid & (others.argmax(axis=1) == rows.outcome)
    loo_n = np.bincount(rows.rater, weights=loo_valid, minlength=n_raters)
    loo_k = np.bincount(rows.rater, weights=loo_agree, minlength=n_raters)

    strengths = bt_strengths(rows, alpha=alpha)
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


def group_breakdown(*, rows: PairwiseRows, groups_by_rater: dict[int, str], field: str, field_label: str,
                    labels: dict[str, str], item_names: dict[int, str], alpha: float, top: int = 10) -> dict:
    """Per group: counts, within-group agreement, BT strengths; and the pooled-vs-groups LR test.

    ``groups_by_rater``: database rater id → the rater's answer ('' when not answered); ``labels``:
    answer → label. BT fits use the prior precision ``alpha``.
    """
    rater_value = np.array([groups_by_rater.get(int(r), "") for r in rows.rater_ids], dtype=object)
    row_value = rater_value[rows.rater] if rows.n else np.array([], dtype=object)
    values = sorted(set(groups_by_rater.values()) | set(row_value.tolist()),
                    key=lambda v: (v in ("", PREFER_NOT), labels.get(v, v)))
    n_tasks = rows.task_ids.size
    pooled = bt_strengths(rows, alpha=alpha)
    groups = []
    for value in values:
        mask = row_value == value
        sub = subset(rows, mask)
        n_r = int(np.unique(sub.rater).size)
        joined = sum(1 for v in groups_by_rater.values() if v == value)
        too_small = n_r < MIN_GROUP_RATERS or sub.n < MIN_GROUP_JUDGMENTS
        counts = category_counts(unit=sub.task, category=sub.outcome, n_units=n_tasks, n_categories=3)
        multi = counts.sum(axis=1) >= 2
        entry = {"value": value, "label": labels.get(value, value), "n_raters_joined": joined, "n_raters": n_r,
                 "n_judgments": sub.n, "too_small": too_small, "n_pairs_multi": int(multi.sum()),
                 "mean_majority_share": float(agreement.majority_share(counts[multi]).mean()) if multi.any()
                 else None, "alpha_nominal": None, "strengths": None,
                 "testable": not too_small and value not in ("", PREFER_NOT)}
        if multi.any():
            slots = slot_matrix(unit=sub.task, values=sub.outcome.astype(float), n_units=n_tasks)[:, multi]
            entry["alpha_nominal"], _ = try_statistic(agreement.krippendorff_alpha, slots, "nominal")
        if not too_small:
            entry["strengths"] = bt_strengths(sub, alpha=alpha)
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
        res, reason = try_statistic(group_lr_test, winners[use], losers[use], row_group[use], n_groups=len(testable),
                           alpha=alpha)
        if res is None:
            lr["reason"] = reason
        else:
            lr.update(statistic=res.statistic, df=res.df, p=res.p, n_common=res.n_common,
                      n_comparisons=[int(c) for c in res.n_comparisons])
    return {"field": field, "field_label": field_label, "groups": groups, "strength_table": table,
            "lr_test": lr, "min_raters": MIN_GROUP_RATERS, "min_judgments": MIN_GROUP_JUDGMENTS}


def intra_rater_consistency(*, repeats: list[tuple], public_ids: dict[int, str], repeat_rate: float) -> dict:
    """Per rater and overall: repeated pairs answered twice and the share answered the same way.

    ``repeats``: one ``(rater_id, winner_id, is_tie, first_winner_id, first_is_tie)`` per repeat
    answer, paired with the rater's first answer to the same pair. The two agree when they name the
    same winning item, or are both ties (sides are swapped between the showings, so a rater pressing
    the same side twice disagrees). Wilson 95 % intervals; raters with at least
    :data:`MIN_REPEATS_FOR_FLAG` repeats and a share below :data:`LOW_CONSISTENCY_SHARE` are listed
    as low.
    """
    n_by: Counter = Counter()
    k_by: Counter = Counter()
    for rater_id, winner, tie, first_winner, first_tie in repeats:
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
        "repeat_rate": repeat_rate,
        "n_repeated": total_n, "n_consistent": total_k,
        "consistent_share": total_k / total_n if total_n else None,
        "wilson": [float(overall[0]), float(overall[1])] if overall else None,
        "n_raters": len(raters), "raters": raters, "low": [r for r in raters if r["low"]],
        "min_repeats_for_flag": MIN_REPEATS_FOR_FLAG, "low_share": LOW_CONSISTENCY_SHARE,
    }


def outcome_counts(*, winners: np.ndarray, losers: np.ndarray, tied: np.ndarray, n_items: int,
                   weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: (weighted) wins, losses and ties (for a tie, ``winners``/``losers`` are its two items)."""
    w = weights if weights is not None else np.ones(len(winners))
    decided = ~tied
    wins = np.bincount(winners[decided], weights=w[decided], minlength=n_items)
    losses = np.bincount(losers[decided], weights=w[decided], minlength=n_items)
    ties = (np.bincount(winners[tied], weights=w[tied], minlength=n_items)
            + np.bincount(losers[tied], weights=w[tied], minlength=n_items))
    return wins, losses, ties


def comparison_components(*, winners: np.ndarray, losers: np.ndarray, n_items: int) -> int:
    """Number of connected groups of items (by any comparison). Strengths compare only within a group."""
    graph = coo_matrix((np.ones(len(winners)), (winners, losers)), shape=(n_items, n_items))
    return int(connected_components(graph, directed=False)[0])
