"""Celery tasks of the ranking app: thin edges that take ids and call services.

Every job task is idempotent (:mod:`ranking.jobs`), acknowledged late and re-queued if its worker
dies; its hard time limit stays below the broker's visibility timeout
(``CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]``, checked in the tests).
"""

from celery import shared_task

from ranking import jobs
from ranking.services import agreement_reports, fit_runs

FIT_TIME_LIMIT_S = 1900
REPORT_TIME_LIMIT_S = 960


@shared_task(
    name="ranking.fit_run_execute",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(jobs.TransientJobError,),
    max_retries=3,
    retry_backoff=True,
    soft_time_limit=FIT_TIME_LIMIT_S - 100,
    time_limit=FIT_TIME_LIMIT_S,
)
def fit_run_execute(fit_run_id: int) -> None:
    fit_runs.fit_run_execute(fit_run_id=fit_run_id)


@shared_task(
    name="ranking.agreement_report_execute",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(jobs.TransientJobError,),
    max_retries=3,
    retry_backoff=True,
    soft_time_limit=REPORT_TIME_LIMIT_S - 60,
    time_limit=REPORT_TIME_LIMIT_S,
)
def agreement_report_execute(report_id: int) -> None:
    agreement_reports.agreement_report_execute(report_id=report_id)


@shared_task(name="ranking.fit_sweep", ignore_result=True, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=120, time_limit=150)
def fit_sweep() -> None:
    fit_runs.fit_sweep()


@shared_task(name="ranking.jobs_sweep", ignore_result=True, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=60, time_limit=90)
def jobs_sweep() -> None:
    jobs.jobs_sweep()
