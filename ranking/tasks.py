"""Celery tasks of the ranking app: thin edges that take ids and call services."""

from celery import shared_task

from ranking import fitting, report_jobs, services


@shared_task(
    name="ranking.fit_run_execute",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(fitting.TransientFitError,),
    max_retries=3,
    retry_backoff=True,
    soft_time_limit=1800,
    time_limit=1900,
)
def fit_run_execute(fit_run_id: int) -> None:
    fitting.fit_run_execute(fit_run_id=fit_run_id)


@shared_task(name="ranking.fit_sweep", ignore_result=True, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=120, time_limit=150)
def fit_sweep() -> None:
    services.fit_sweep()


@shared_task(
    name="ranking.agreement_report_execute",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(report_jobs.TransientReportError,),
    max_retries=3,
    retry_backoff=True,
    soft_time_limit=900,
    time_limit=960,
)
def agreement_report_execute(report_id: int) -> None:
    report_jobs.agreement_report_execute(report_id=report_id)
