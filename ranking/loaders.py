"""Database rows → numpy arrays for ``ranking.core`` (reads only; compact indices, database ids kept).

Every loader takes a cut-off (the last judgment or annotation id a job saw), so a fit or a report
is reproducible from its stored cut-off.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from django.db.models import Max, QuerySet

from annotator.consolidation import item_feedback
from annotator.errors import InvalidInput
from annotator.models import DEMOGRAPHIC_FIELDS, Annotation, Demographics, Item, Judgment, Project, Rater
from ranking.core.bt import decay_weights
from ranking.core.pairwise import A_WINS, B_WINS, NOT_ANSWERED, PREFER_NOT, TIE, PairwiseRows
from ranking.models import MetricScore

# ------------------------------------------------------------------------------------------------
# Fits
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonData:
    """A project's judgments as arrays over a compact item index (what a fit sees)."""

    item_ids: np.ndarray  # database id of each index
    winners: np.ndarray  # for ties: the left item
    losers: np.ndarray
    tied: np.ndarray
    raters: np.ndarray  # compact rater index
    rater_ids: np.ndarray
    weights: np.ndarray | None
    judgment_ids: np.ndarray


def comparison_data(*, project_id: int, cutoff_judgment_id: int, params: dict, now=None) -> ComparisonData:
    """Load the judgments a fit sees: up to the cut-off, filtered as the parameters say.

    Answers to repeat assignments are left out unless ``params["include_repeats"]``: a repeat
    re-asks a rater a pair they already judged, as a consistency probe, not as an extra vote.
    With ``params["half_life_days"]`` each judgment is weighted ``2^(−age / half_life)``, its age
    counted from ``now`` (default: the newest judgment loaded).
    """
    qs = Judgment.objects.filter(project_id=project_id, id__lte=cutoff_judgment_id, right_item__isnull=False)
    if not params.get("include_repeats"):
        qs = qs.filter(is_repeat=False)
    if params.get("instruction_version"):
        qs = qs.filter(instruction_version__version=params["instruction_version"])
    if params.get("demographic_field"):
        raters = Demographics.objects.filter(**{params["demographic_field"]: params["demographic_value"]})
        qs = qs.filter(rater_id__in=raters.values("rater_id"))
    if params.get("ties") == "ignore":
        qs = qs.filter(is_tie=False)
    rows = list(qs.order_by("id").values_list("id", "left_item_id", "right_item_id", "winner_id", "is_tie",
                                              "rater_id", "submitted_at"))
    if not rows:
        raise InvalidInput("There are no judgments to fit (with these filters).", field="params")
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    left = np.array([r[1] for r in rows], dtype=np.int64)
    right = np.array([r[2] for r in rows], dtype=np.int64)
    winner = np.array([r[3] if r[3] is not None else r[1] for r in rows], dtype=np.int64)
    tied = np.array([r[4] for r in rows], dtype=bool)
    loser = np.where(winner == left, right, left)
    item_ids, inverse = np.unique(np.concatenate([winner, loser]), return_inverse=True)
    m = len(rows)
    rater_ids, rater_index = np.unique(np.array([r[5] for r in rows], dtype=np.int64), return_inverse=True)
    weights = None
    if params.get("half_life_days"):
        now = now or max(r[6] for r in rows)
        ages = np.array([(now - r[6]).total_seconds() / 86400 for r in rows])
        weights = decay_weights(np.clip(ages, 0, None), params["half_life_days"])
    return ComparisonData(item_ids=item_ids, winners=inverse[:m], losers=inverse[m:], tied=tied,
                          raters=rater_index, rater_ids=rater_ids, weights=weights, judgment_ids=ids)


def latest_judgment_id(*, project_id: int) -> int | None:
    return Judgment.objects.filter(project_id=project_id).aggregate(m=Max("id"))["m"]


# ------------------------------------------------------------------------------------------------
# Agreement reports
# ------------------------------------------------------------------------------------------------


def judgments_upto(*, project: Project, cutoff_judgment_id: int | None = None) -> QuerySet[Judgment]:
    qs = Judgment.objects.filter(project=project)
    return qs if cutoff_judgment_id is None else qs.filter(id__lte=cutoff_judgment_id)


def annotations_upto(*, project: Project, cutoff_annotation_id: int | None = None) -> QuerySet[Annotation]:
    qs = Annotation.objects.filter(project=project)
    return qs if cutoff_annotation_id is None else qs.filter(id__lte=cutoff_annotation_id)


def cutoffs(*, project_id: int) -> tuple[int | None, int | None]:
    """The newest judgment id and the newest annotation id of the project (None when there are none)."""
    annotation = Annotation.objects.filter(project_id=project_id).aggregate(m=Max("id"))["m"]
    return latest_judgment_id(project_id=project_id), annotation


def pairwise_rows(*, project: Project, cutoff_judgment_id: int | None = None) -> PairwiseRows:
    """The project's pairwise judgments (those with id ≤ ``cutoff_judgment_id`` if given), repeats left out."""
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
    """rater id → the rater's value of a demographic field ('' when not answered)."""
    if field not in DEMOGRAPHIC_FIELDS:
        raise ValueError(f"field must be one of {', '.join(DEMOGRAPHIC_FIELDS)}")
    values = dict(Demographics.objects.filter(rater__project=project).values_list("rater_id", field))
    return {rid: (values.get(rid) or "").strip() for rid in Rater.objects.filter(project=project)
            .values_list("id", flat=True)}


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
