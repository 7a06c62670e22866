"""Writes for agreement reports: requests (coalesced), execution on a worker, and the datasheet note.

A report is computed once from the data up to its cut-offs and stored; the agreement page, the
datasheet and its downloads render the latest succeeded one (:mod:`ranking.presenters`).
Executing goes through :func:`ranking.jobs.job_run`: a report that is gone, finished, or leased by
another worker is left alone, so a message delivered twice computes once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import date, datetime

import numpy as np
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Max, Min

from annotator import selectors as annotator_selectors
from annotator.feedback import POINT_KINDS
from annotator.models import DEMOGRAPHIC_FIELDS, Item, Project, Rater, demographic_field_label
from ranking import jobs, loaders, selectors
from ranking.core import pairwise, ratings
from ranking.models import DEFAULT_ALPHA, AgreementReport, DatasheetNote

KIND = jobs.job_kind_register(name="agreement_report", model=AgreementReport,
                              task_name="ranking.agreement_report_execute")
#: Below this many judgments + annotations, "Compute" on the pages computes in the request itself.
SYNC_COMPUTE_LIMIT = 20_000


# ------------------------------------------------------------------------------------------------
# Computing a report's content
# ------------------------------------------------------------------------------------------------


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


def rich_agreement(*, project: Project, cutoff_annotation_id: int | None = None) -> dict:
    """Likert and checklist agreement of the project's rich feedback (empty lists when there is none)."""
    likert_rows, checklist_rows = loaders.rich_ratings(project=project, cutoff_annotation_id=cutoff_annotation_id)
    result: dict = {"likert": [], "checklist": [], "icc_references": ratings.ICC_REFERENCES}
    for dim in project.likert_dimensions or []:
        rows = likert_rows.get(dim["name"])
        if rows is not None:
            result["likert"].append({"name": dim["name"], "label": dim.get("label", dim["name"]),
                                     **ratings.likert_agreement(item_index=rows.item_index, scores=rows.values,
                                                                n_items=rows.n_items)})
    for q in project.checklist or []:
        rows = checklist_rows.get(q["id"])
        if rows is not None:
            result["checklist"].append({"id": q["id"], "question": q.get("question", q["id"]),
                                        "dimension": q.get("dimension", ""),
                                        **ratings.checklist_agreement(item_index=rows.item_index,
                                                                      answers=rows.values, n_items=rows.n_items)})
    return result


def rich_image_agreement(*, project: Project, cutoff_annotation_id: int | None = None) -> dict:
    """Heatmap agreement per point kind, and per-image Likert histograms, from the rich feedback.

    Heatmaps: for each image with ≥ 2 raters, the mean leave-one-out correlation between the raters'
    disk maps (``ItemFeedback.heatmap_agreement``); undefined (skipped) where fewer than two raters'
    maps vary, e.g. nobody or only one rater marked the kind. Likert: every image's score histogram per
    dimension, precomputed under each of :data:`ranking.core.ratings.OPINION_SORTS`.
    """
    dims = list(project.likert_dimensions or [])
    correlations: dict[str, list] = {kind: [] for kind in POINT_KINDS}
    marked = dict.fromkeys(POINT_KINDS, 0)
    likert_rows: dict[str, list[dict]] = {d["name"]: [] for d in dims}
    n_images = 0
    for item, fb in loaders.rich_feedback_batches(project=project, cutoff_annotation_id=cutoff_annotation_id):
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
                likert_rows[d["name"]].append(ratings.likert_image_row(
                    item_id=item.pk, name=item.original_name or str(item.pk), values=values))
    heat = [{"kind": kind, **ratings.heatmap_agreement_summary(correlations=correlations[kind],
                                                               n_marked=marked[kind], n_images=n_images)}
            for kind in POINT_KINDS]
    likert = [{"name": d["name"], "label": d.get("label", d["name"]),
               "spread_counts": ratings.spread_counts(likert_rows[d["name"]]),
               "opinions": {sort: ratings.likert_image_opinions(rows=likert_rows[d["name"]], sort=sort)
                            for sort in ratings.OPINION_SORTS}}
              for d in dims if likert_rows[d["name"]]]
    return {"n_images": n_images, "heatmaps": heat if n_images else [], "likert_images": likert}


def rater_flags(*, project: Project, cutoff_judgment_id: int | None = None,
                cutoff_annotation_id: int | None = None) -> dict:
    """The raters flagged by the quality checks (position bias, too fast, straight-lining; see
    :func:`annotator.selectors.rater_quality_by_rater`) on the answers up to the cut-offs, by public id,
    with whether each is excluded now."""
    quality = annotator_selectors.rater_quality_by_rater(project=project, cutoff_judgment_id=cutoff_judgment_id,
                                                         cutoff_annotation_id=cutoff_annotation_id)
    raters = {pk: (public_id, excluded_at is not None) for pk, public_id, excluded_at in
              Rater.objects.filter(project=project).values_list("pk", "public_id", "excluded_at")}
    flagged = sorted(
        ({"rater": raters[pk][0], "excluded": raters[pk][1],
          "flags": [{"code": f.code, "label": f.label, "detail": f.detail} for f in q.flags]}
         for pk, q in quality.items() if q.flagged and pk in raters),
        key=lambda row: (row["excluded"], row["rater"]))
    return {"n_checked": sum(1 for q in quality.values() if q.n_decisive or q.n_timed or q.n_likert),
            "n_flagged": len(flagged), "raters": flagged}


def agreement_compute(*, project: Project, cutoff_judgment_id: int | None = None,
                      cutoff_annotation_id: int | None = None,
                      progress: Callable[[float], None] | None = None) -> dict:
    """Every section the agreement page and the datasheet show, as JSON-ready data.

    Uses the judgments with id ≤ ``cutoff_judgment_id`` and the annotations with id ≤
    ``cutoff_annotation_id`` (all of them when None). The page's choices are all precomputed:
    opinions under each of :data:`ranking.core.ratings.OPINION_SORTS`, the group breakdown by each
    demographic field. ``progress(fraction)`` is called between sections. This is what an
    ``AgreementReport`` stores; :mod:`ranking.presenters` shapes it for the pages. Excluded raters' answers
    are left out of every statistic (:mod:`ranking.loaders`); ``exclusions`` says how many and why, and
    ``rater_flags`` lists the raters the quality checks flag (excluded or not).
    """
    step = progress or (lambda fraction: None)
    rows = loaders.pairwise_rows(project=project, cutoff_judgment_id=cutoff_judgment_id)
    names = loaders.item_names(project=project)
    public_ids = loaders.public_ids(project=project)
    step(0.1)
    result: dict = {"pairwise": pairwise.pairwise_agreement(rows=rows)}
    result["intra_rater"] = pairwise.intra_rater_consistency(
        repeats=loaders.repeat_pairs(project=project, cutoff_judgment_id=cutoff_judgment_id),
        public_ids=public_ids, repeat_rate=project.repeat_rate)
    step(0.3)
    result["opinions"] = {sort: pairwise.pair_opinions(rows=rows, item_names=names, sort=sort)
                          for sort in ratings.OPINION_SORTS}
    result["quality"] = pairwise.rater_quality(rows=rows, public_ids=public_ids, alpha=DEFAULT_ALPHA)
    step(0.45)
    result["groups"] = {}
    for k, field in enumerate(DEMOGRAPHIC_FIELDS):
        result["groups"][field] = pairwise.group_breakdown(
            rows=rows, groups_by_rater=loaders.rater_groups(project=project, field=field), field=field,
            field_label=demographic_field_label(field), labels=loaders.demographic_labels(field=field),
            item_names=names, alpha=DEFAULT_ALPHA)
        step(0.45 + 0.4 * (k + 1) / len(DEMOGRAPHIC_FIELDS))
    result["rich"] = rich_agreement(project=project, cutoff_annotation_id=cutoff_annotation_id)
    step(0.87)
    result["rich_images"] = rich_image_agreement(project=project, cutoff_annotation_id=cutoff_annotation_id)
    step(0.9)
    judgments = loaders.judgments_upto(project=project, cutoff_judgment_id=cutoff_judgment_id)
    period = judgments.aggregate(first=Min("submitted_at"), last=Max("submitted_at"))
    result["collection_period"] = {"first_judgment": period["first"], "last_judgment": period["last"]}
    result["counts"] = {
        "items": Item.objects.filter(project=project).count(),
        "pairwise_tasks": project.tasks.filter(kind="pairwise", check_kind="").count(),  # checks are no data
        "raters_joined": Rater.objects.filter(project=project).count(),
        "raters_with_judgments": int(rows.rater_ids.size),
        "judgments": judgments.count(),
        "annotations": loaders.annotations_upto(project=project, cutoff_annotation_id=cutoff_annotation_id).count(),
    }
    result["exclusions"] = loaders.exclusions(project=project, cutoff_judgment_id=cutoff_judgment_id,
                                              cutoff_annotation_id=cutoff_annotation_id)
    result["rater_flags"] = rater_flags(project=project, cutoff_judgment_id=cutoff_judgment_id,
                                        cutoff_annotation_id=cutoff_annotation_id)
    result["demographics"] = selectors.demographics_summary(project=project)
    result["instruction_versions"] = selectors.instruction_history(
        project=project, cutoff_judgment_id=cutoff_judgment_id, cutoff_annotation_id=cutoff_annotation_id)
    result["consent_versions"] = selectors.consent_history(project=project)
    step(0.95)
    return report_jsonable(result)


# ------------------------------------------------------------------------------------------------
# Requests and execution
# ------------------------------------------------------------------------------------------------


def agreement_report_request(*, project: Project) -> AgreementReport:
    """Ask for a fresh report. Coalesces onto the project's queued report; published after commit.

    A report that is already running keeps its older cut-off, so a request made meanwhile queues a
    new one (at most one is queued per project: a partial unique constraint).
    """
    return jobs.job_queued_or_new(model=AgreementReport, scope={"project": project})


def _prepare(report: AgreementReport) -> bool:
    report.cutoff_judgment_id, report.cutoff_annotation_id = loaders.cutoffs(project_id=report.project_id)
    return True


def _compute(report: AgreementReport, lease: jobs.Lease) -> jobs.Outcome:
    project = Project.objects.get(pk=report.project_id)
    result = agreement_compute(project=project, cutoff_judgment_id=report.cutoff_judgment_id,
                               cutoff_annotation_id=report.cutoff_annotation_id, progress=lease.progress)
    return jobs.Outcome(fields={"result": result})


def agreement_report_execute(*, report_id: int) -> None:
    """Compute and store one report (the Celery task's body). Idempotent."""
    jobs.job_run(kind=KIND.name, job_id=report_id, body=_compute, prepare=_prepare)


def agreement_report_compute_now(*, project: Project) -> AgreementReport:
    """Compute a report in this process and store it (a small project's request, answered at once).

    The report goes through the same lifecycle as a worker's (claimed, leased, finished), so a
    failure is recorded on it exactly as on the worker.
    """
    report = jobs.job_queued_or_new(model=AgreementReport, scope={"project": project}, publish=False)
    agreement_report_execute(report_id=report.pk)
    report.refresh_from_db()
    return report


def agreement_report_ask(*, project: Project) -> AgreementReport:
    """What the pages' "Compute" button does: small projects at once, large ones on a worker."""
    if selectors.project_data_size(project=project) < SYNC_COMPUTE_LIMIT:
        return agreement_report_compute_now(project=project)
    return agreement_report_request(project=project)


def datasheet_note_update(*, project: Project, limitations: str) -> DatasheetNote:
    with transaction.atomic():
        note, _ = DatasheetNote.objects.update_or_create(project=project, defaults={"limitations": limitations})
    return note
