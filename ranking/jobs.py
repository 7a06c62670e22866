"""One lifecycle for every background job (fits, agreement reports, and each later job kind).

A job is a database row with the fields of :class:`ranking.models.Job`. The row is

* **the outbox**: a service creates it inside the caller's transaction and asks for it to be
  published after commit (:func:`job_publish_on_commit`). Publishing hands one message to the
  broker with a short timeout; if the broker is down the row simply stays unpublished and the
  caller's request is not affected. :func:`jobs_sweep` (beat, every ``PREFLAB_JOB_SWEEP_EVERY_S``)
  publishes queued rows that were never published or not picked up within
  ``PREFLAB_JOB_REPUBLISH_AFTER_S``.
* **the lease**: a worker claims the row (:func:`job_claim`) by writing its owner token and
  ``lease_expires_at = now + PREFLAB_JOB_LEASE_S``, and renews the lease from a heartbeat thread
  every ``PREFLAB_JOB_HEARTBEAT_S`` while the job's body runs (:class:`Lease`). A second delivery
  of the message while the lease is live is dropped; once a lease has expired (its worker was
  killed, lost its database, or hung) the next delivery or sweep takes the job over, up to
  ``PREFLAB_JOB_MAX_ATTEMPTS`` claims, after which the job is marked failed.

Results are stored in the same transaction that marks the job succeeded, and only by the lease's
owner (:func:`job_finish`), so a job whose lease was taken over cannot store a second set of
results. Messages carry only the job's id; every delivery re-reads the row, so duplicated or
out-of-order messages do nothing twice.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, connections, transaction
from django.db.models import Q
from django.utils import timezone

from annotator.errors import InvalidInput
from config.celery import app
from ranking.core.errors import ConvergenceError
from ranking.models import ACTIVE_STATUSES, Job, JobStatus

log = logging.getLogger(__name__)


class TransientJobError(Exception):
    """A failure worth retrying (the database went away); the Celery task retries a bounded number of times."""


class LeaseLost(Exception):
    """This worker no longer holds the job's lease (it expired and another worker took the job over)."""


@dataclass(frozen=True)
class JobKind:
    """A kind of job: its model and the name of the Celery task that executes one row of it."""

    name: str
    model: type[Job]
    task_name: str


KINDS: dict[str, JobKind] = {}


def job_kind_register(*, name: str, model: type[Job], task_name: str) -> JobKind:
    kind = JobKind(name=name, model=model, task_name=task_name)
    KINDS[name] = kind
    return kind


def _kind_of(job: Job) -> JobKind:
    for kind in KINDS.values():
        if isinstance(job, kind.model):
            return kind
    raise LookupError(f"{type(job).__name__} is not a registered job kind")


# ------------------------------------------------------------------------------------------------
# Publishing (the outbox)
# ------------------------------------------------------------------------------------------------


def broker_send(*, task_name: str, job_id: int, countdown: float | None = None) -> None:
    """Hand one message to the broker (no retries; the broker's socket timeouts bound the wait)."""
    app.send_task(task_name, args=(job_id,), countdown=countdown or None, retry=False)


def job_publish(*, kind: str, job_id: int, countdown: float | None = None) -> bool:
    """Publish a message for the job and note when. Never raises: an unpublished job is the sweep's.

    Returns whether the broker took the message.
    """
    job_kind = KINDS[kind]
    try:
        broker_send(task_name=job_kind.task_name, job_id=job_id, countdown=countdown)
    except Exception as exc:  # any broker failure: the row stays in the outbox for the sweep
        log.warning("could not publish %s %s (the sweep will retry): %s", kind, job_id, exc)
        return False
    try:
        job_kind.model.objects.filter(pk=job_id).update(published_at=timezone.now())
    except OperationalError as exc:
        log.warning("published %s %s but could not record it: %s", kind, job_id, exc)
    return True


def job_publish_on_commit(job: Job, *, countdown: float | None = None) -> None:
    """Publish the job once the current transaction commits (never inside it)."""
    kind, job_id = _kind_of(job).name, job.pk
    transaction.on_commit(lambda: job_publish(kind=kind, job_id=job_id, countdown=countdown))


def job_queued_or_new(*, model: type[Job], scope: dict, publish: bool = True, **fields) -> Job:
    """The queued job of ``model`` matching ``scope`` (e.g. ``{"project": p}``), or a new one.

    For job kinds that keep at most one queued row per scope (a partial unique constraint): requests
    made while one is queued coalesce onto it; a new row is published after commit unless
    ``publish`` is False (the caller runs it in this process).
    """
    with transaction.atomic():
        queued = model.objects.filter(status=JobStatus.QUEUED, **scope).first()
        if queued is not None:
            return queued
        try:
            with transaction.atomic():
                job = model.objects.create(**scope, **fields)
        except IntegrityError:  # created concurrently by another request
            return model.objects.filter(status__in=ACTIVE_STATUSES, **scope).order_by("-id").first()
        if publish:
            job_publish_on_commit(job)
    return job


# ------------------------------------------------------------------------------------------------
# Claiming, the lease, finishing
# ------------------------------------------------------------------------------------------------


def worker_token() -> str:
    """A token naming this claim: host, process and a random part (unique per claim)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _lease_s() -> float:
    return float(settings.PREFLAB_JOB_LEASE_S)


def job_claim(*, kind: str, job_id: int, owner: str, prepare: Callable[[Job], bool] | None = None) -> Job | None:
    """Lock the job and take its lease, or return None when there is nothing to do.

    Nothing to do: the row is gone, finished, held by a live lease, or ``prepare(job)`` (called under
    the lock with the row before it is marked running; it may change fields, which are saved)
    returned False. A running job whose lease has expired is taken over; after
    ``PREFLAB_JOB_MAX_ATTEMPTS`` claims it is marked failed instead.
    """
    model = KINDS[kind].model
    now = timezone.now()
    with transaction.atomic():
        job = model.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status not in ACTIVE_STATUSES:
            return None
        if job.status == JobStatus.RUNNING:
            if job.lease_expires_at is not None and job.lease_expires_at > now:
                log.info("%s %s is held by %s until %s; message dropped", kind, job_id, job.lease_owner,
                         job.lease_expires_at)
                return None
            if job.attempts >= settings.PREFLAB_JOB_MAX_ATTEMPTS:
                job.status = JobStatus.FAILED
                job.error = (f"The worker running this job was lost {job.attempts} times "
                             "(killed, out of memory or disconnected); not retried again.")
                job.finished_at = now
                job.lease_owner, job.lease_expires_at = "", None
                job.save(update_fields=["status", "error", "finished_at", "lease_owner", "lease_expires_at"])
                return None
            log.warning("%s %s: lease of %s expired at %s; taking it over", kind, job_id, job.lease_owner,
                        job.lease_expires_at)
        if prepare is not None and not prepare(job):
            job.save()
            return None
        job.status = JobStatus.RUNNING
        job.started_at = now
        job.lease_owner = owner
        job.lease_expires_at = now + timedelta(seconds=_lease_s())
        job.attempts += 1
        job.progress = 0.05
        job.error = ""
        job.save()
        return job


@dataclass
class Lease:
    """The claim of one job by this worker, renewed from a heartbeat thread while the body runs.

    Use as a context manager around the job's body. :meth:`progress` records progress (and raises
    :class:`LeaseLost` if the job was taken over meanwhile, so a stale worker stops early).
    """

    kind: str
    job_id: int
    owner: str
    lost: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _renew(self) -> bool:
        model = KINDS[self.kind].model
        until = timezone.now() + timedelta(seconds=_lease_s())
        return bool(model.objects.filter(pk=self.job_id, status=JobStatus.RUNNING, lease_owner=self.owner)
                    .update(lease_expires_at=until))

    def _beat(self) -> None:
        try:
            while not self._stop.wait(float(settings.PREFLAB_JOB_HEARTBEAT_S)):
                try:
                    if not self._renew():
                        self.lost = True
                        return
                except OperationalError as exc:  # the lease runs out unless the database comes back
                    log.warning("%s %s: heartbeat failed: %s", self.kind, self.job_id, exc)
        finally:
            connections.close_all()  # this thread's own connections

    def __enter__(self) -> Lease:
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.kind}-{self.job_id}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def progress(self, fraction: float) -> None:
        model = KINDS[self.kind].model
        value = round(min(max(float(fraction), 0.0), 1.0), 3)
        updated = model.objects.filter(pk=self.job_id, status=JobStatus.RUNNING, lease_owner=self.owner).update(
            progress=value, lease_expires_at=timezone.now() + timedelta(seconds=_lease_s()))
        if not updated or self.lost:
            self.lost = True
            raise LeaseLost(f"{self.kind} {self.job_id}")


def job_finish(*, kind: str, job_id: int, owner: str, status: str, store: Callable[[Job], None] | None = None,
               **fields) -> bool:
    """End the job: under its lock, if this worker still holds the lease, ``store(job)`` then the status.

    Returns False (and stores nothing) when the lease was lost to another worker.
    """
    model = KINDS[kind].model
    with transaction.atomic():
        job = model.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != JobStatus.RUNNING or job.lease_owner != owner:
            log.warning("%s %s: lease lost before finishing; result discarded", kind, job_id)
            return False
        for name, value in fields.items():
            setattr(job, name, value)
        if store is not None:
            store(job)  # may also set the fields named in ``fields``
        job.status = status
        job.finished_at = timezone.now()
        job.lease_owner, job.lease_expires_at = "", None
        if status == JobStatus.SUCCEEDED:
            job.progress = 1.0
        job.save(update_fields=["status", "finished_at", "lease_owner", "lease_expires_at", "progress", *fields])
    return True


def job_release(*, kind: str, job_id: int, owner: str) -> None:
    """Give the lease back after a transient failure: the job is queued again for the retry."""
    model = KINDS[kind].model
    try:
        model.objects.filter(pk=job_id, status=JobStatus.RUNNING, lease_owner=owner).update(
            status=JobStatus.QUEUED, progress=0.0, lease_owner="", lease_expires_at=None)
    except OperationalError as exc:  # the lease expires by itself; the sweep picks the job up
        log.warning("%s %s: could not release the lease: %s", kind, job_id, exc)


@dataclass(frozen=True)
class Outcome:
    """What a job's body returns: ``store(job)`` writes its results; ``fields`` go on the row."""

    store: Callable[[Job], None] | None = None
    fields: dict = field(default_factory=dict)


EXPECTED_FAILURES = (InvalidInput, ValueError, ConvergenceError)


def job_run(*, kind: str, job_id: int, body: Callable[[Job, Lease], Outcome],
            prepare: Callable[[Job], bool] | None = None) -> None:
    """Claim, run ``body`` under a renewed lease, and finish: the whole lifecycle of one delivery.

    Expected failures (bad parameters or data, a model that does not converge) end the job as
    failed with their message; an unexpected exception does too, and is re-raised for the logs; a
    database outage releases the job and raises :class:`TransientJobError` for a bounded retry.
    """
    owner = worker_token()
    try:
        job = job_claim(kind=kind, job_id=job_id, owner=owner, prepare=prepare)
    except OperationalError as exc:
        raise TransientJobError(str(exc)) from exc
    if job is None:
        return
    with Lease(kind=kind, job_id=job_id, owner=owner) as lease:
        try:
            outcome = body(job, lease)
        except LeaseLost:
            log.warning("%s %s: lease lost while running; stopped", kind, job_id)
            return
        except OperationalError as exc:
            job_release(kind=kind, job_id=job_id, owner=owner)
            raise TransientJobError(str(exc)) from exc
        except EXPECTED_FAILURES as exc:
            message = exc.message if isinstance(exc, InvalidInput) else str(exc)
            job_finish(kind=kind, job_id=job_id, owner=owner, status=JobStatus.FAILED, error=message)
            log.info("%s %s failed: %s", kind, job_id, message)
            return
        except Exception as exc:
            job_finish(kind=kind, job_id=job_id, owner=owner, status=JobStatus.FAILED,
                       error=f"{type(exc).__name__}: {exc}")
            raise
        try:
            job_finish(kind=kind, job_id=job_id, owner=owner, status=JobStatus.SUCCEEDED, store=outcome.store,
                       **outcome.fields)
        except OperationalError as exc:
            job_release(kind=kind, job_id=job_id, owner=owner)
            raise TransientJobError(str(exc)) from exc


# ------------------------------------------------------------------------------------------------
# The sweep (beat)
# ------------------------------------------------------------------------------------------------


def jobs_sweep(*, now=None) -> dict[str, int]:
    """Publish what the outbox holds and take back what lost workers held; returns counts per kind.

    For every kind: queued jobs never published, or published more than
    ``PREFLAB_JOB_REPUBLISH_AFTER_S`` ago and still not started, are published (again); running jobs
    whose lease expired are published so that a worker takes them over (or, past
    ``PREFLAB_JOB_MAX_ATTEMPTS``, marks them failed). Extra messages are harmless: a delivery that
    finds the job finished or leased does nothing.
    """
    now = now or timezone.now()
    republish_before = now - timedelta(seconds=float(settings.PREFLAB_JOB_REPUBLISH_AFTER_S))
    counts: dict[str, int] = {}
    for kind in KINDS.values():
        due = kind.model.objects.filter(
            Q(status=JobStatus.QUEUED) & (Q(published_at__isnull=True) | Q(published_at__lt=republish_before))
            | Q(status=JobStatus.RUNNING) & (Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        ).order_by("id").values_list("id", flat=True)[:1000]
        ids = list(due)
        for job_id in ids:
            job_publish(kind=kind.name, job_id=job_id)
        counts[kind.name] = len(ids)
    return counts
