"""Celery tasks of the ranking app: thin edges that take ids and call services.

Every job task is idempotent (:mod:`ranking.jobs`), acknowledged late and re-queued if its worker
dies, retried (at most 3 times, with backoff) only on a transient database failure; its hard time
limit stays below the broker's visibility timeout
(``CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]``, checked in the tests).
"""

from celery import shared_task

from ranking import jobs
from ranking.services import agreement_reports, calibration_reports, fit_runs, metric_runs, releases, rounds

FIT_TIME_LIMIT_S = 1900
REPORT_TIME_LIMIT_S = 960
METRIC_RUN_TIME_LIMIT_S = 3300  # model metrics on CPU over a large project; below the 3,600 s visibility timeout


def job_task(name: str, *, time_limit_s: int, soft_margin_s: int = 100):
    """The task decorator every job kind shares (see the module docstring)."""
    return shared_task(
        name=name,
        ignore_result=True,
        acks_late=True,
        reject_on_worker_lost=True,
        autoretry_for=(jobs.TransientJobError,),
        max_retries=3,
        retry_backoff=True,
        soft_time_limit=time_limit_s - soft_margin_s,
        time_limit=time_limit_s,
    )


@job_task("ranking.fit_run_execute", time_limit_s=FIT_TIME_LIMIT_S)
def fit_run_execute(fit_run_id: int) -> None:
    fit_runs.fit_run_execute(fit_run_id=fit_run_id)


@job_task("ranking.agreement_report_execute", time_limit_s=REPORT_TIME_LIMIT_S, soft_margin_s=60)
def agreement_report_execute(report_id: int) -> None:
    agreement_reports.agreement_report_execute(report_id=report_id)


@job_task("ranking.metric_run_execute", time_limit_s=METRIC_RUN_TIME_LIMIT_S)
def metric_run_execute(metric_run_id: int) -> None:
    metric_runs.metric_run_execute(metric_run_id=metric_run_id)


@job_task("ranking.calibration_report_execute", time_limit_s=REPORT_TIME_LIMIT_S, soft_margin_s=60)
def calibration_report_execute(report_id: int) -> None:
    calibration_reports.calibration_report_execute(report_id=report_id)


@job_task("ranking.round_result_execute", time_limit_s=REPORT_TIME_LIMIT_S, soft_margin_s=60)
def round_result_execute(result_id: int) -> None:
    rounds.round_result_execute(result_id=result_id)


@job_task("ranking.dataset_release_execute", time_limit_s=METRIC_RUN_TIME_LIMIT_S)
def dataset_release_execute(release_id: int) -> None:
    releases.release_execute(release_id=release_id)


@shared_task(name="ranking.rounds_schedule_due", ignore_result=True, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=240, time_limit=300)
def rounds_schedule_due() -> None:
    rounds.rounds_schedule_due()


@shared_task(name="ranking.fit_sweep", ignore_result=True, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=120, time_limit=150)
def fit_sweep() -> None:
    fit_runs.fit_sweep()


@shared_task(name="ranking.jobs_sweep", ignore_result=True, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=60, time_limit=90)
def jobs_sweep() -> None:
    jobs.jobs_sweep()
