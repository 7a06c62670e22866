"""Writes for calibration reports: how far each automated metric agrees with the project's raters.

A report is computed from the data up to its cut-offs (judgments, annotations, the newest metric
run) by :func:`ranking.core.metric_agreement.metric_agreement` and stored; the calibration page, its
API and the datasheet render the latest succeeded one. Requests coalesce onto the project's queued
report; a BT fit or a metric run that succeeds asks for one automatically (in its own finishing
transaction, so the request is in the outbox exactly when the new data is). Execution goes through
:func:`ranking.jobs.job_run`, like every job.
"""

from __future__ import annotations

from annotator.models import Project
from ranking import jobs, loaders, selectors
from ranking.core.metric_agreement import metric_agreement
from ranking.models import CalibrationReport, MetricScore
from ranking.services.agreement_reports import report_jsonable

KIND = jobs.job_kind_register(name="calibration_report", model=CalibrationReport,
                              task_name="ranking.calibration_report_execute")
#: Below this many judgments, "Compute" on the page computes in the request itself.
SYNC_COMPUTE_LIMIT = 20_000


def calibration_compute(*, project: Project, cutoff_judgment_id: int | None, cutoff_annotation_id: int | None,
                        cutoff_metric_run_id: int | None, progress=None) -> dict:
    """The report's content from the data up to the cut-offs (JSON-ready)."""
    step = progress or (lambda fraction: None)
    data = loaders.calibration_data(project=project, cutoff_judgment_id=cutoff_judgment_id,
                                    cutoff_annotation_id=cutoff_annotation_id,
                                    cutoff_metric_run_id=cutoff_metric_run_id)
    step(0.3)
    result = metric_agreement(judgments=data.judgments, metrics=data.metrics, signals=data.signals,
                              strengths=data.strengths)
    step(0.95)
    result["signal_labels"] = data.signal_labels
    result["fit_id"] = data.fit_id
    return report_jsonable(result)


def calibration_report_request(*, project: Project, automatic: bool = False) -> CalibrationReport:
    """Ask for a fresh report; coalesces onto the project's queued one. Published after commit."""
    return jobs.job_queued_or_new(model=CalibrationReport, scope={"project": project}, automatic=automatic)


def calibration_report_after_new_data(*, project_id: int) -> None:
    """A fit or a metric run just succeeded (called in its finishing transaction): if the project has
    metric scores, make sure an automatic report is queued (coalesced with a queued one)."""
    if MetricScore.objects.filter(item__project_id=project_id).exists():
        calibration_report_request(project=Project.objects.get(pk=project_id), automatic=True)


def _prepare(report: CalibrationReport) -> bool:
    report.cutoff_judgment_id, report.cutoff_annotation_id = loaders.cutoffs(project_id=report.project_id)
    report.cutoff_metric_run_id = loaders.latest_metric_run_id(project_id=report.project_id)
    return True


def _compute(report: CalibrationReport, lease: jobs.Lease) -> jobs.Outcome:
    project = Project.objects.get(pk=report.project_id)
    result = calibration_compute(project=project, cutoff_judgment_id=report.cutoff_judgment_id,
                                 cutoff_annotation_id=report.cutoff_annotation_id,
                                 cutoff_metric_run_id=report.cutoff_metric_run_id, progress=lease.progress)
    return jobs.Outcome(fields={"result": result})


def calibration_report_execute(*, report_id: int) -> None:
    """Compute and store one report (the Celery task's body). Idempotent."""
    jobs.job_run(kind=KIND.name, job_id=report_id, body=_compute, prepare=_prepare)


def calibration_report_compute_now(*, project: Project) -> CalibrationReport:
    """Compute a report in this process through the same lifecycle (a small project's request).

    A queued report of the project (e.g. an automatic one) is the one computed, not a second one.
    """
    report = jobs.job_queued_or_new(model=CalibrationReport, scope={"project": project}, publish=False)
    calibration_report_execute(report_id=report.pk)
    report.refresh_from_db()
    return report


def calibration_report_ask(*, project: Project) -> CalibrationReport:
    """What the page's "Compute" button does: small projects at once, large ones on a worker."""
    if selectors.project_data_size(project=project) < SYNC_COMPUTE_LIMIT:
        return calibration_report_compute_now(project=project)
    return calibration_report_request(project=project)
