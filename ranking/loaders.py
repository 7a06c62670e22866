"""Database rows → numpy arrays for ``ranking.core`` (reads only; compact indices, database ids kept).

Every loader takes a cut-off (the last judgment or annotation id a job saw), so a fit or a report
is reproducible from its stored cut-off and the rater exclusions in force when it ran: every loader of
answers (judgments, rankings, annotations) leaves out the raters a researcher excluded
(``Rater.excluded_at`` set; :mod:`annotator.services.quality`; ``RaterExclusion`` keeps the dated
history), and every loader of judgments leaves out answers to quality checks (``Judgment.is_check``:
gold pairs and attention checks are scored, never data; :mod:`annotator.services.checks`), through
:func:`answers_included`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Max, Q, QuerySet

from annotator.consolidation import item_feedback
from annotator.errors import InvalidInput
from annotator.models import (
    DEMOGRAPHIC_FIELDS,
    Annotation,
    Demographics,
    Item,
    Judgment,
    Project,
    RankAnswer,
    Rater,
    Task,
)
from annotator.selectors import raters_screened_out_count
from ranking.core.bt import decay_weights
from ranking.core.metric_agreement import JudgmentArrays, MetricColumn
from ranking.core.pairwise import A_WINS, B_WINS, NOT_ANSWERED, PREFER_NOT, TIE, PairwiseRows
from ranking.core.rankings import rank_breaking
from ranking.models import FitModel, FitRun, ItemScore, Metric, MetricRun, MetricScore

# ------------------------------------------------------------------------------------------------
# Fits
# ------------------------------------------------------------------------------------------------


def answers_included(qs: QuerySet) -> QuerySet:
    """Judgments, rank answers or annotations without those of excluded raters and (judgments) without answers
    to quality checks (the one definition)."""
    qs = qs.filter(rater__excluded_at__isnull=True)
    return qs.filter(is_check=False) if qs.model is Judgment else qs


@dataclass(frozen=True)
class ComparisonData:
    """What a fit sees, as arrays over a compact item index: the project's judgments, then the pairs its
    rankings break into (``from_ranking``)."""

    item_ids: np.ndarray  # database id of each index
    winners: np.ndarray  # for ties: the left item (a ranking's tied pair: either)
    losers: np.ndarray
    tied: np.ndarray
    raters: np.ndarray  # compact rater index
    rater_ids: np.ndarray
    weights: np.ndarray | None  # None: every comparison weighs 1
    judgment_ids: np.ndarray  # the judgments loaded, in order (one comparison each)
    ranking_ids: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # rankings loaded
    from_ranking: np.ndarray | None = None  # per comparison: a broken pair of a ranking (None: none are)


def comparison_data(*, project_id: int, cutoff_judgment_id: int | None, params: dict, now=None,
                    cutoff_ranking_id: int | None = None) -> ComparisonData:
    """Load what a fit sees: judgments up to ``cutoff_judgment_id`` and, unless ``params["include_rankings"]``
    is false, rankings (rank answers) up to ``cutoff_ranking_id`` (None: no rankings, as fits stored before
    rankings existed), filtered as the parameters say.

    Answers to repeat assignments are left out unless ``params["include_repeats"]``: a repeat
    re-asks a rater a pair they already judged, as a consistency probe, not as an extra vote. Answers of
    excluded raters are always left out (:func:`answers_included`).
    ``instruction_version`` and the demographic filter apply to rankings as to judgments.

    Rankings enter by full rank breaking (:func:`ranking.core.rankings.rank_breaking`, ``method="full"``):
    each choice of the best remaining image(s) out of the ``r`` still unranked makes every chosen image
    beat every other remaining one, with weight ``1 / (r − 1)`` per pair (a complete ranking of k images
    weighs ``k − 1`` judgments in all), and tied images a tied pair; a BT fit of such pairs is consistent
    for Plackett–Luce strengths. ``params["ties"] == "ignore"`` drops the tied pairs (judgments: the ties).

    With ``params["half_life_days"]`` each judgment and each ranking is weighted ``2^(−age / half_life)``,
    its age counted from ``now`` (default: the newest judgment or ranking loaded); a ranking's pairs get
    the product of its decay weight and their breaking weight.
    """
    rows: list = []
    if cutoff_judgment_id is not None:
        qs = answers_included(Judgment.objects.filter(project_id=project_id, id__lte=cutoff_judgment_id,
                                                      right_item__isnull=False))
        if not params.get("include_repeats"):
            qs = qs.filter(is_repeat=False)
        qs = _answers_filtered(qs, params)
        if params.get("ties") == "ignore":
            qs = qs.filter(is_tie=False)
        rows = list(qs.order_by("id").values_list("id", "left_item_id", "right_item_id", "winner_id", "is_tie",
                                                  "rater_id", "submitted_at"))
    rankings: list = []
    if cutoff_ranking_id is not None and params.get("include_rankings", True):
        # a calibration round's rankings (tasks of a pool) are the round's, not the study's
        ranked = _answers_filtered(answers_included(RankAnswer.objects.filter(
            project_id=project_id, id__lte=cutoff_ranking_id, task__pool__isnull=True)), params)
        rankings = list(ranked.order_by("id").values_list("id", "ranking", "rater_id", "submitted_at"))
    if not rows and not rankings:
        raise InvalidInput("There are no judgments or rankings to fit (with these filters).", field="params")
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    left = np.array([r[1] for r in rows], dtype=np.int64)
    right = np.array([r[2] for r in rows], dtype=np.int64)
    winner_db = np.array([r[3] if r[3] is not None else r[1] for r in rows], dtype=np.int64)
    loser_db = np.where(winner_db == left, right, left)
    tied = np.array([r[4] for r in rows], dtype=bool)
    rater_db = np.array([r[5] for r in rows], dtype=np.int64)
    ranked_items = [i for r in rankings for group in r[1] for i in group]
    item_ids = np.unique(np.concatenate([winner_db, loser_db, np.array(ranked_items, dtype=np.int64)]))
    winners, losers = np.searchsorted(item_ids, winner_db), np.searchsorted(item_ids, loser_db)
    decay = None
    if params.get("half_life_days"):
        now = now or max(r[-1] for r in (*rows, *rankings))

        def decay(stamps) -> np.ndarray:
            ages = np.array([(now - t).total_seconds() / 86400 for t in stamps], dtype=float)
            return decay_weights(np.clip(ages, 0, None), params["half_life_days"])

    weights = decay([r[6] for r in rows]) if decay else None
    from_ranking = None
    if rankings:
        broken = _rankings_broken(rankings, item_ids=item_ids, decay=decay,
                                  drop_ties=params.get("ties") == "ignore")
        b_win, b_lose, b_tied, b_weights, b_rater = broken
        m = len(rows)
        winners, losers = np.concatenate([winners, b_win]), np.concatenate([losers, b_lose])
        tied = np.concatenate([tied, b_tied])
        rater_db = np.concatenate([rater_db, b_rater])
        weights = np.concatenate([np.ones(m) if weights is None else weights, b_weights])
        from_ranking = np.arange(len(winners)) >= m
        if not len(winners):
            raise InvalidInput("There are no comparisons to fit (with these filters).", field="params")
    rater_ids, rater_index = np.unique(rater_db, return_inverse=True)
    return ComparisonData(item_ids=item_ids, winners=winners.astype(np.int64), losers=losers.astype(np.int64),
                          tied=tied.astype(bool), raters=rater_index.ravel(), rater_ids=rater_ids,
                          weights=weights, judgment_ids=ids,
                          ranking_ids=np.array([r[0] for r in rankings], dtype=np.int64),
                          from_ranking=from_ranking)


def _answers_filtered(qs: QuerySet, params: dict) -> QuerySet:
    """Judgments or rank answers under one instruction version and/or of raters in one demographic group."""
    if params.get("instruction_version"):
        qs = qs.filter(instruction_version__version=params["instruction_version"])
    if params.get("demographic_field"):
        raters = Demographics.objects.filter(**{params["demographic_field"]: params["demographic_value"]})
        qs = qs.filter(rater_id__in=raters.values("rater_id"))
    return qs


def _rankings_broken(rankings: list, *, item_ids: np.ndarray, decay, drop_ties: bool):
    """Full rank breaking of ``(id, groups, rater_id, submitted_at)`` rows, one rater at a time (so every
    pair keeps its rater): winners, losers (compact indices), tied, weights, rater ids."""
    by_rater: dict[int, list[int]] = {}
    for position, row in enumerate(rankings):
        by_rater.setdefault(row[2], []).append(position)
    decay_of = decay([r[3] for r in rankings]) if decay else np.ones(len(rankings))
    parts = []
    for rater_id, positions in by_rater.items():
        compact = [[[int(np.searchsorted(item_ids, i)) for i in group] for group in rankings[p][1]]
                   for p in positions]
        w, l, t, wt = rank_breaking(compact, method="full", weights=decay_of[positions], n_items=len(item_ids))
        if drop_ties:
            w, l, wt, t = w[~t], l[~t], wt[~t], t[~t]
        parts.append((w, l, t, wt, np.full(w.size, rater_id, dtype=np.int64)))
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(5))


def latest_ranking_id(*, project_id: int) -> int | None:
    return RankAnswer.objects.filter(project_id=project_id, task__pool__isnull=True).aggregate(m=Max("id"))["m"]


def latest_judgment_id(*, project_id: int) -> int | None:
    return Judgment.objects.filter(project_id=project_id).aggregate(m=Max("id"))["m"]


# ------------------------------------------------------------------------------------------------
# Agreement reports
# ------------------------------------------------------------------------------------------------


def judgments_upto(*, project: Project, cutoff_judgment_id: int | None = None) -> QuerySet[Judgment]:
    """The project's judgments up to the cut-off, excluded raters' left out."""
    qs = answers_included(Judgment.objects.filter(project=project))
    return qs if cutoff_judgment_id is None else qs.filter(id__lte=cutoff_judgment_id)


def annotations_upto(*, project: Project, cutoff_annotation_id: int | None = None) -> QuerySet[Annotation]:
    """The project's annotations up to the cut-off, excluded raters' left out."""
    qs = answers_included(Annotation.objects.filter(project=project))
    return qs if cutoff_annotation_id is None else qs.filter(id__lte=cutoff_annotation_id)


def cutoffs(*, project_id: int) -> tuple[int | None, int | None]:
    """The newest judgment id and the newest annotation id of the project (None when there are none)."""
    annotation = Annotation.objects.filter(project_id=project_id).aggregate(m=Max("id"))["m"]
    return latest_judgment_id(project_id=project_id), annotation


def pairwise_rows(*, project: Project, cutoff_judgment_id: int | None = None) -> PairwiseRows:
    """The project's pairwise judgments (those with id ≤ ``cutoff_judgment_id`` if given), repeats and
    excluded raters' left out."""
    rows = list(
        judgments_upto(project=project, cutoff_judgment_id=cutoff_judgment_id)
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


def repeat_pairs(*, project: Project, cutoff_judgment_id: int | None = None) -> list[tuple]:
    """One ``(rater_id, winner_id, is_tie, first_winner_id, first_is_tie)`` per answered repeat."""
    return list(
        judgments_upto(project=project, cutoff_judgment_id=cutoff_judgment_id)
        .filter(is_repeat=True, right_item__isnull=False, assignment__repeat_of__judgment__isnull=False)
        .order_by("id")
        .values_list("rater_id", "winner_id", "is_tie", "assignment__repeat_of__judgment__winner_id",
                     "assignment__repeat_of__judgment__is_tie")
    )


def exclusions(*, project: Project, cutoff_judgment_id: int | None = None,
               cutoff_annotation_id: int | None = None, cutoff_ranking_id: int | None = None) -> dict:
    """The raters excluded now, and what of theirs the loaders leave out (up to the cut-offs): counts and
    the reasons given, each with how many raters it was given for (raters only in aggregate); how many of
    them PrefLab screened out after failed quality checks; and the quality checks (:func:`quality_checks`)."""
    excluded = Rater.objects.filter(project=project, excluded_at__isnull=False)
    judgments = Judgment.objects.filter(project=project, rater__excluded_at__isnull=False, is_check=False)
    if cutoff_judgment_id is not None:
        judgments = judgments.filter(id__lte=cutoff_judgment_id)
    annotations = Annotation.objects.filter(project=project, rater__excluded_at__isnull=False)
    if cutoff_annotation_id is not None:
        annotations = annotations.filter(id__lte=cutoff_annotation_id)
    rankings = RankAnswer.objects.filter(project=project, rater__excluded_at__isnull=False, task__pool__isnull=True)
    if cutoff_ranking_id is not None:
        rankings = rankings.filter(id__lte=cutoff_ranking_id)
    reasons: dict[str, int] = {}
    for reason in excluded.values_list("excluded_reason", flat=True):
        reasons[reason] = reasons.get(reason, 0) + 1
    return {
        "n_raters": sum(reasons.values()),
        "n_judgments": judgments.count() if reasons else 0,
        "n_annotations": annotations.count() if reasons else 0,
        "n_rankings": rankings.count() if reasons else 0,
        "reasons": [{"reason": r, "n": n} for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))],
        "n_screened_out": raters_screened_out_count(project=project) if reasons else 0,
        "quality_checks": quality_checks(project=project, cutoff_judgment_id=cutoff_judgment_id),
    }


def quality_checks(*, project: Project, cutoff_judgment_id: int | None = None) -> dict:
    """The datasheet's quality-check figures: the check rate and fail limit now, the checks made (gold pairs,
    attention checks), their answers up to the cut-off, every rater's included, and the share that passed."""
    checks = Task.objects.filter(project=project).exclude(check_kind="")
    kinds = dict(checks.values_list("check_kind").annotate(n=Count("id")).order_by())
    answers = Judgment.objects.filter(project=project, is_check=True)
    if cutoff_judgment_id is not None:
        answers = answers.filter(id__lte=cutoff_judgment_id)
    counts = answers.aggregate(n=Count("id"), passed=Count("id", filter=Q(check_passed=True)),
                               raters=Count("rater_id", distinct=True))
    return {
        "check_rate": project.check_rate, "fail_limit": project.check_fail_limit,
        "n_checks": sum(kinds.values()), "n_gold": kinds.get("gold", 0), "n_attention": kinds.get("attention", 0),
        "n_answers": counts["n"], "n_passed": counts["passed"], "n_raters": counts["raters"],
        "pass_rate": counts["passed"] / counts["n"] if counts["n"] else None,
    }


def item_names(*, project: Project) -> dict[int, str]:
    return dict(Item.objects.filter(project=project).values_list("id", "original_name"))


def public_ids(*, project: Project) -> dict[int, str]:
    """Database rater id → pseudonymous public id (the only rater identity reports ever show)."""
    return dict(Rater.objects.filter(project=project).values_list("id", "public_id"))


def demographic_labels(*, field: str) -> dict[str, str]:
    """Answer → label for one demographic field, with 'not answered' ('') and 'prefer not to say'."""
    choices = Demographics._meta.get_field(field).choices or []
    return {"": NOT_ANSWERED, PREFER_NOT: "Prefer not to say", **{k: str(v) for k, v in choices}}


def rater_groups(*, project: Project, field: str) -> dict[int, str]:
    """rater id → the rater's value of a demographic field ('' when not answered); excluded raters left out."""
    if field not in DEMOGRAPHIC_FIELDS:
        raise ValueError(f"field must be one of {', '.join(DEMOGRAPHIC_FIELDS)}")
    values = dict(Demographics.objects.filter(rater__project=project, rater__excluded_at__isnull=True)
                  .values_list("rater_id", field))
    included = Rater.objects.filter(project=project, excluded_at__isnull=True).values_list("id", flat=True)
    return {rid: (values.get(rid) or "").strip() for rid in included}


@dataclass(frozen=True)
class RatingRows:
    """One rating per row: compact image index and value (Likert score or checklist answer)."""

    item_index: np.ndarray
    values: np.ndarray
    n_items: int


def rich_ratings(*, project: Project, cutoff_annotation_id: int | None = None) -> tuple[dict, dict]:
    """Likert scores per dimension name and checklist answers per question id, as :class:`RatingRows`.

    Image indices are shared by all dimensions and questions (every image with any annotation).
    """
    rows = list(annotations_upto(project=project, cutoff_annotation_id=cutoff_annotation_id)
                .order_by("id").values_list("item_id", "kind", "scores", "answers"))
    item_ids = sorted({r[0] for r in rows})
    index = {item_id: i for i, item_id in enumerate(item_ids)}
    likert: dict[str, RatingRows] = {}
    for dim in project.likert_dimensions or []:
        pairs = [(index[r[0]], r[2][dim["name"]]) for r in rows
                 if r[1] == "rich" and isinstance(r[2], dict) and r[2].get(dim["name"]) is not None]
        if pairs:
            arr = np.array(pairs, dtype=float)
            likert[dim["name"]] = RatingRows(item_index=arr[:, 0].astype(np.int64), values=arr[:, 1],
                                             n_items=len(item_ids))
    checklist: dict[str, RatingRows] = {}
    for q in project.checklist or []:
        pairs = [(index[r[0]], bool(r[3][q["id"]])) for r in rows
                 if r[1] == "checklist" and isinstance(r[3], dict) and r[3].get(q["id"]) is not None]
        if pairs:
            arr = np.array(pairs, dtype=np.int64)
            checklist[q["id"]] = RatingRows(item_index=arr[:, 0], values=arr[:, 1], n_items=len(item_ids))
    return likert, checklist


HEATMAP_BATCH = 200


def rich_feedback_batches(*, project: Project, cutoff_annotation_id: int | None = None,
                          batch_size: int = HEATMAP_BATCH) -> Iterator[tuple[Item, object]]:
    """Consolidated rich feedback (:func:`annotator.consolidation.item_feedback`) of every image with a
    rich-feedback answer up to the cut-off, ``batch_size`` images and one annotations query at a time."""
    annotations = annotations_upto(project=project, cutoff_annotation_id=cutoff_annotation_id).filter(kind="rich")
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


# ------------------------------------------------------------------------------------------------
# Automated metrics
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricValues:
    """One metric's newest score per image of a project (item ids ascending)."""

    item_ids: np.ndarray
    values: np.ndarray


def metric_values(*, project: Project, metric) -> MetricValues:
    """The newest score of ``metric`` for every image of the project that has one, as arrays."""
    rows = (MetricScore.objects.filter(run__project=project, metric=metric).newest().order_by("item_id")
            .values_list("item_id", "value"))
    arr = np.array(list(rows), dtype=np.float64).reshape(-1, 2)
    return MetricValues(item_ids=arr[:, 0].astype(np.int64), values=arr[:, 1])


# ------------------------------------------------------------------------------------------------
# Calibration reports
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationData:
    """What a calibration report compares: judgments, the metrics' newest scores and the item-level
    human signals, all over one compact index of the project's images."""

    judgments: JudgmentArrays
    metrics: list[MetricColumn]
    signals: dict[str, np.ndarray]
    signal_labels: dict[str, str]
    strengths: np.ndarray | None
    fit_id: int | None


def latest_metric_run_id(*, project_id: int) -> int | None:
    return (MetricRun.objects.filter(project_id=project_id, status="succeeded").aggregate(m=Max("id"))["m"])


def _per_item_means(item_index: np.ndarray, values: np.ndarray, n_items: int) -> np.ndarray:
    total = np.bincount(item_index, weights=values, minlength=n_items)
    count = np.bincount(item_index, minlength=n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def calibration_data(*, project: Project, cutoff_judgment_id: int | None, cutoff_annotation_id: int | None,
                     cutoff_metric_run_id: int | None) -> CalibrationData:
    """Load a calibration report's arrays (pairwise judgments without repeats, up to the cut-offs).

    A judgment's prompt (its cluster for intervals and tests) is the prompt of the pair's first image;
    its drift label is its submission date (UTC). Demographic groups use each rater's answer, with
    'not answered' and 'prefer not to say' left out of the per-group rows.
    """
    items = list(Item.objects.filter(project=project).order_by("id").values_list("id", "prompt"))
    item_ids = np.array([i for i, _ in items], dtype=np.int64)
    index = {item_id: k for k, item_id in enumerate(item_ids.tolist())}
    _, prompt_code = np.unique(np.array([p for _, p in items], dtype=object).astype(str), return_inverse=True)
    n_items = len(items)

    rows = list(judgments_upto(project=project, cutoff_judgment_id=cutoff_judgment_id)
                .filter(task__kind="pairwise", right_item__isnull=False, is_repeat=False).order_by("id")
                .values_list("task__item_a_id", "task__item_b_id", "winner_id", "is_tie", "rater_id", "task_id",
                             "submitted_at"))
    a_db = np.array([r[0] for r in rows], dtype=np.int64)
    b_db = np.array([r[1] for r in rows], dtype=np.int64)
    winner = np.array([r[2] if r[2] is not None else -1 for r in rows], dtype=np.int64)
    tie = np.array([r[3] for r in rows], dtype=bool)
    rater = np.array([r[4] for r in rows], dtype=np.int64)
    item_a = np.array([index[i] for i in a_db.tolist()], dtype=np.int64)
    item_b = np.array([index[i] for i in b_db.tolist()], dtype=np.int64)
    outcome = np.where(tie, 0, np.where(winner == a_db, 1, -1)).astype(np.int64)
    groups = {}
    for name in DEMOGRAPHIC_FIELDS:
        if not Demographics._meta.get_field(name).choices:
            continue  # free text (country, languages): too many values for per-group rows
        by_rater = rater_groups(project=project, field=name)
        groups[name] = np.array([("" if by_rater.get(r, "") == PREFER_NOT else by_rater.get(r, ""))
                                  for r in rater.tolist()], dtype=object).astype(str)
    judgments = JudgmentArrays(outcome=outcome, item_a=item_a, item_b=item_b,
                               pair=np.array([r[5] for r in rows], dtype=np.int64), rater=rater,
                               prompt=prompt_code[item_a] if rows else np.zeros(0, dtype=np.int64),
                               rater_groups=groups,
                               window_labels=[r[6].date().isoformat() for r in rows])

    scores = MetricScore.objects.newest().filter(item__project=project, metric__kind="item")
    if cutoff_metric_run_id is not None:
        scores = scores.filter(run_id__lte=cutoff_metric_run_id)
    else:
        scores = scores.none()
    by_metric: dict[int, np.ndarray] = {}
    for metric_id, item_id, value in scores.values_list("metric_id", "item_id", "value").iterator():
        column = by_metric.setdefault(metric_id, np.full(n_items, np.nan))
        column[index[item_id]] = value
    metrics = [MetricColumn(name=m.name, version=m.version, direction=m.direction, dimension=m.dimension,
                            values=by_metric[m.pk])
               for m in Metric.objects.filter(pk__in=by_metric).order_by("name", "version")]

    signals: dict[str, np.ndarray] = {}
    labels: dict[str, str] = {}
    fit = (FitRun.objects.filter(project=project, model=FitModel.BT, status="succeeded").order_by("-id").first())
    strengths = None
    if fit is not None:
        strengths = np.full(n_items, np.nan)
        for item_id, strength in ItemScore.objects.filter(fit=fit).values_list("item_id", "strength"):
            if item_id in index:
                strengths[index[item_id]] = strength
        signals["bt"], labels["bt"] = strengths, f"Bradley–Terry strength (fit #{fit.pk})"
    annotations = list(annotations_upto(project=project, cutoff_annotation_id=cutoff_annotation_id)
                       .values_list("item_id", "kind", "scores", "answers"))
    for dim in project.likert_dimensions or []:
        pairs = [(index[i], s[dim["name"]]) for i, kind, s, _ in annotations
                 if kind == "rich" and isinstance(s, dict) and s.get(dim["name"]) is not None and i in index]
        if pairs:
            arr = np.array(pairs, dtype=float)
            key = f"likert:{dim['name']}"
            signals[key] = _per_item_means(arr[:, 0].astype(np.int64), arr[:, 1], n_items)
            labels[key] = f"Likert mean: {dim.get('label', dim['name'])}"
    for q in project.checklist or []:
        pairs = [(index[i], float(bool(a[q["id"]]))) for i, kind, _, a in annotations
                 if kind == "checklist" and isinstance(a, dict) and a.get(q["id"]) is not None and i in index]
        if pairs:
            arr = np.array(pairs, dtype=float)
            key = f"checklist:{q['id']}"
            signals[key] = _per_item_means(arr[:, 0].astype(np.int64), arr[:, 1], n_items)
            labels[key] = f"Checklist yes-rate: {q.get('question', q['id'])}"
    return CalibrationData(judgments=judgments, metrics=metrics, signals=signals, signal_labels=labels,
                           strengths=strengths, fit_id=fit.pk if fit is not None else None)


# ------------------------------------------------------------------------------------------------
# Calibration rounds
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemMetricMatrix:
    """The newest score of every directed item metric for a set of images: ``values[i, m]`` of image
    ``item_ids[i]`` and metric ``metrics[m]`` (NaN: no score). Raw values, as the metric gives them."""

    item_ids: np.ndarray
    metrics: list[Metric]
    values: np.ndarray

    def oriented(self) -> np.ndarray:
        """``values`` with every column turned so that higher is better."""
        signs = np.array([-1.0 if m.direction == "lower" else 1.0 for m in self.metrics])
        return self.values * signs if self.metrics else self.values


def item_metric_matrix(*, project: Project, item_ids=None) -> ItemMetricMatrix:
    """Newest item-metric scores of the project's current images (or of ``item_ids``, in that order)."""
    if item_ids is None:
        item_ids = list(Item.objects.filter(project=project, retired_at__isnull=True).order_by("id")
                        .values_list("id", flat=True))
    ids = np.asarray(list(item_ids), dtype=np.int64)
    metrics = list(Metric.objects.filter(scores__item__project=project, kind="item").exclude(direction="none")
                   .distinct().order_by("name", "version"))
    values = np.full((ids.size, len(metrics)), np.nan)
    index = {int(i): k for k, i in enumerate(ids)}
    column = {m.pk: k for k, m in enumerate(metrics)}
    scores = MetricScore.objects.newest().filter(item__project=project, metric_id__in=list(column))
    if ids.size <= 1000:
        scores = scores.filter(item_id__in=ids.tolist())
    for item_id, metric_id, value in scores.values_list("item_id", "metric_id", "value").iterator(chunk_size=20_000):
        row = index.get(item_id)
        if row is not None:
            values[row, column[metric_id]] = value
    return ItemMetricMatrix(item_ids=ids, metrics=metrics, values=values)


def round_rankings(*, pool_id: int, item_ids: list[int], cutoff_answer_id: int | None) -> list[list[list[int]]]:
    """The rankings of a round's task up to the cut-off, as groups of indices into ``item_ids``."""
    if cutoff_answer_id is None:
        return []
    index = {item_id: k for k, item_id in enumerate(item_ids)}
    rows = (RankAnswer.objects.filter(task__pool_id=pool_id, id__lte=cutoff_answer_id).order_by("id")
            .values_list("ranking", flat=True))
    return [[[index[i] for i in group] for group in ranking] for ranking in rows]


def round_latest_answer_id(*, pool_id: int) -> int | None:
    return RankAnswer.objects.filter(task__pool_id=pool_id).aggregate(m=Max("id"))["m"]


# ------------------------------------------------------------------------------------------------
# Model-level rankings
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemAttributes:
    """What the model-level fit needs of each image of a fit's compact index (``item_ids`` order):
    its source model and prompt as codes, a category (``metadata["category"]``, "" if none), and the
    style covariates (log megapixels, log aspect ratio)."""

    model: np.ndarray
    model_names: list[str]
    prompt: np.ndarray
    category: list[str]
    log_megapixels: np.ndarray
    log_aspect: np.ndarray


def item_attributes(*, item_ids: np.ndarray) -> ItemAttributes:
    rows = {pk: (source, prompt, width, height, metadata) for pk, source, prompt, width, height, metadata in
            Item.objects.filter(pk__in=item_ids.tolist())
            .values_list("pk", "source_model", "prompt", "width", "height", "metadata")}
    ordered = [rows[int(i)] for i in item_ids]
    model_names = sorted({r[0] for r in ordered})
    model_code = {name: k for k, name in enumerate(model_names)}
    prompts = {p: k for k, p in enumerate(sorted({r[1] for r in ordered}))}
    return ItemAttributes(
        model=np.array([model_code[r[0]] for r in ordered], dtype=np.int64),
        model_names=model_names,
        prompt=np.array([prompts[r[1]] for r in ordered], dtype=np.int64),
        category=[str((r[4] or {}).get("category", "")) if isinstance(r[4], dict) else "" for r in ordered],
        log_megapixels=np.log(np.array([r[2] * r[3] / 1e6 for r in ordered], dtype=np.float64)),
        log_aspect=np.log(np.array([r[2] / r[3] for r in ordered], dtype=np.float64)),
    )
