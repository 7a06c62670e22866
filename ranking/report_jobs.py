"""Stored agreement reports: requests (coalesced), execution by a Celery worker, and their reads.

A report is computed once from the data up to its cut-offs and stored; the agreement page, the
datasheet and its downloads render the latest succeeded one. Executing is idempotent, like
:func:`ranking.fitting.fit_run_execute`: a report that is gone, finished, or being computed by
another worker is left alone, so a message delivered twice computes once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.apps import apps
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Max
from django.utils import timezone

from annotator.models import Judgment, Project
from ranking import reports
from ranking.models import AgreementReport, ReportStatus

log = logging.getLogger(__name__)

STALE_RUNNING_AFTER = timedelta(hours=1)  # a 'running' report older than this was lost with its worker
SYNC_FIRST_VIEW_LIMIT = 20_000  # below this many judgments + annotations, a first view computes on request
ACTIVE = (ReportStatus.QUEUED, ReportStatus.RUNNING)


class TransientReportError(Exception):
    """A failure worth retrying (the database went away); Celery retries a bounded number of times."""


# ------------------------------------------------------------------------------------------------
# Reads
# ------------------------------------------------------------------------------------------------


def _annotations(project_id: int):
    try:
        model = apps.get_model("annotator", "Annotation")
    except LookupError:
        return None
    return model.objects.filter(project_id=project_id)


def agreement_report_latest(*, project: Project) -> AgreementReport | None:
    """The newest succeeded report of the project."""
    return (AgreementReport.objects.filter(project=project, status=ReportStatus.SUCCEEDED)
            .order_by("-id").first())


def agreement_report_pending(*, project: Project) -> AgreementReport | None:
    """The newest queued or running report, if any (what the progress bar follows)."""
    return AgreementReport.objects.filter(project=project, status__in=ACTIVE).order_by("-id").first()


def agreement_report_failed_since(*, project: Project, report: AgreementReport | None) -> AgreementReport | None:
    """The newest failed report newer than ``report`` (so the page can say the last recompute failed)."""
    failed = AgreementReport.objects.filter(project=project, status=ReportStatus.FAILED)
    if report is not None:
        failed = failed.filter(pk__gt=report.pk)
    return failed.order_by("-id").first()


def agreement_report_new_data(*, report: AgreementReport) -> dict:
    """How many judgments and annotations arrived after the report's cut-offs."""
    judgments = Judgment.objects.filter(project_id=report.project_id)
    if report.cutoff_judgment_id is not None:
        judgments = judgments.filter(id__gt=report.cutoff_judgment_id)
    annotations = _annotations(report.project_id)
    if annotations is not None and report.cutoff_annotation_id is not None:
        annotations = annotations.filter(id__gt=report.cutoff_annotation_id)
    return {"judgments": judgments.count(), "annotations": annotations.count() if annotations is not None else 0}


def agreement_report_meta(*, report: AgreementReport) -> dict:
    """What the JSON datasheet says about the report it was rendered from."""
    return {"id": report.pk, "cutoff_judgment_id": report.cutoff_judgment_id,
            "cutoff_annotation_id": report.cutoff_annotation_id, "computed_at": report.finished_at}


def project_data_size(*, project: Project) -> int:
    annotations = _annotations(project.pk)
    return Judgment.objects.filter(project=project).count() + (annotations.count() if annotations is not None else 0)


# ------------------------------------------------------------------------------------------------
# Writes
# ------------------------------------------------------------------------------------------------


def _enqueue(report_id: int) -> None:
    from ranking.tasks import agreement_report_execute

    agreement_report_execute.delay(report_id)


def agreement_report_request(*, project: Project) -> AgreementReport:
    """Ask for a fresh report. Coalesces onto the project's queued report; queued to Celery after commit.

    A report that is already running keeps its older cut-off, so a request made meanwhile queues a
    new one (at most one is queued per project: a partial unique constraint).
    """
    with transaction.atomic():
        queued = AgreementReport.objects.filter(project=project, status=ReportStatus.QUEUED).first()
        if queued is not None:
            return queued
        try:
            with transaction.atomic():
                report = AgreementReport.objects.create(project=project)
        except IntegrityError:  # another request created it concurrently
            return (AgreementReport.objects.filter(project=project, status__in=ACTIVE).order_by("-id").first()
                    or AgreementReport.objects.filter(project=project).order_by("-id").first())
        transaction.on_commit(lambda: _enqueue(report.pk))
    return report


def _cutoffs(project_id: int) -> tuple[int | None, int | None]:
    judgment = Judgment.objects.filter(project_id=project_id).aggregate(m=Max("id"))["m"]
    annotations = _annotations(project_id)
    annotation = annotations.aggregate(m=Max("id"))["m"] if annotations is not None else None
    return judgment, annotation


def _set_progress(report_id: int, progress: float) -> None:
    AgreementReport.objects.filter(pk=report_id).update(progress=round(min(max(progress, 0.0), 1.0), 3))


def _claim(report_id: int) -> AgreementReport | None:
    """Lock the report and mark it running with its cut-offs, or return None if there is nothing to do."""
    with transaction.atomic():
        report = AgreementReport.objects.select_for_update().select_related("project").filter(pk=report_id).first()
        if report is None:
            return None
        if (report.status == ReportStatus.RUNNING and report.started_at
                and timezone.now() - report.started_at < STALE_RUNNING_AFTER):
            return None  # another worker has it
        if report.status not in ACTIVE:
            return None  # finished: a repeated delivery is a no-op
        report.cutoff_judgment_id, report.cutoff_annotation_id = _cutoffs(report.project_id)
        report.status = ReportStatus.RUNNING
        report.started_at = timezone.now()
        report.progress = 0.05
        report.error = ""
        report.save(update_fields=["status", "started_at", "cutoff_judgment_id", "cutoff_annotation_id",
                                   "progress", "error"])
        return report


def _compute_and_store(report: AgreementReport) -> None:
    try:
        result = reports.agreement_compute(project=report.project, cutoff_judgment_id=report.cutoff_judgment_id,
                                           cutoff_annotation_id=report.cutoff_annotation_id,
                                           progress=lambda p: _set_progress(report.pk, p))
    except OperationalError as exc:
        AgreementReport.objects.filter(pk=report.pk).update(status=ReportStatus.QUEUED, progress=0.0)
        raise TransientReportError(str(exc)) from exc
    except Exception as exc:  # recorded on the report, then re-raised for the logs
        AgreementReport.objects.filter(pk=report.pk).update(status=ReportStatus.FAILED,
                                                            error=f"{type(exc).__name__}: {exc}",
                                                            finished_at=timezone.now())
        log.warning("agreement report %s failed: %s", report.pk, exc)
        raise
    AgreementReport.objects.filter(pk=report.pk).update(status=ReportStatus.SUCCEEDED, progress=1.0, result=result,
                                                        finished_at=timezone.now())


def agreement_report_execute(*, report_id: int) -> None:
    """Compute and store one report (the Celery task's body). Idempotent."""
    try:
        report = _claim(report_id)
    except OperationalError as exc:
        raise TransientReportError(str(exc)) from exc
    if report is None:
        return
    _compute_and_store(report)


def agreement_report_compute_now(*, project: Project) -> AgreementReport:
    """Compute a report in this process and store it (a small project's first view)."""
    judgment, annotation = _cutoffs(project.pk)
    report = AgreementReport.objects.create(project=project, status=ReportStatus.RUNNING, started_at=timezone.now(),
                                            cutoff_judgment_id=judgment, cutoff_annotation_id=annotation)
    try:
        _compute_and_store(report)
    except TransientReportError:
        AgreementReport.objects.filter(pk=report.pk).update(status=ReportStatus.FAILED, finished_at=timezone.now(),
                                                            error="The database was unavailable; recompute.")
        raise
    report.refresh_from_db()
    return report
