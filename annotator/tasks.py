"""Celery tasks of the annotator app: thin edges that call services."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from annotator import services


@shared_task(name="annotator.assignments_expire", ignore_result=True, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=120, time_limit=150)
def assignments_expire() -> None:
    services.assignments_expire(older_than=timedelta(minutes=settings.PREFLAB_ASSIGNMENT_TIMEOUT_MIN))
