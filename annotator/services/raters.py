"""Raters: joining, consent, demographics, reading the instructions, and where each goes next."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotator import selectors
from annotator.errors import Conflict, InvalidInput
from annotator.models import (
    DEMOGRAPHIC_FIELDS,
    STAFF_SOURCE,
    Assignment,
    ConsentVersion,
    Demographics,
    InstructionVersion,
    Project,
    Rater,
    Task,
    TaskPool,
)
from annotator.services.assignments import assignment_next


def rater_join(
    *, project: Project, prolific_pid: str = "", study_id: str = "", session_id: str = "",
    pool: TaskPool | None = None,
) -> tuple[Rater, bool]:
    """A rater arrives. The same Prolific PID resumes its rater instead of creating another.

    Refused (Conflict, nothing stored) when the project (or, joining by a pool's link, the pool) is
    closed (``project_closed``), has no consent text or instructions yet (``not_ready``), or — for a new
    rater — has no task with a free place left (``study_full``): a latecomer is told before consent, not
    after. A rater joining by a pool's link is a rater of that pool (handed only its tasks).
    """
    if not (pool.is_open if pool is not None else project.is_open):
        raise Conflict("This study is not accepting participants at the moment.", code="project_closed")
    for name, value in (("PROLIFIC_PID", prolific_pid), ("STUDY_ID", study_id), ("SESSION_ID", session_id)):
        if len(value) > 64 or not all(ch.isalnum() or ch in "-_" for ch in value):
            raise InvalidInput(f"{name} must be at most 64 letters, digits, '-' or '_'.", field=name)
    readiness = selectors.project_readiness(project=project)
    if readiness.missing:
        raise Conflict("This study is not open yet. Please try again later.", code="not_ready")
    if prolific_pid:
        existing = Rater.objects.filter(project=project, prolific_pid=prolific_pid).first()
        if existing is not None and existing.pool_id != (pool.pk if pool is not None else None):
            raise Conflict("This participant already takes part in another part of this study.",
                           code="already_rater")
        if existing is not None:
            return existing, False
    has_places = readiness.has_places if pool is None else (
        Task.objects.filter(pool=pool, is_active=True, n_assigned__lt=selectors.task_slots(project)).exists())
    if not has_places:
        raise Conflict("Sorry, this study is full: every place has been taken.", code="study_full")
    try:
        with transaction.atomic():
            rater = Rater.objects.create(
                project=project,
                source="prolific" if prolific_pid else "invite",
                pool=pool,
                prolific_pid=prolific_pid,
                study_id=study_id,
                session_id=session_id,
            )
    except IntegrityError:
        # The same PID joined concurrently: resume the rater the other request created.
        return Rater.objects.get(project=project, prolific_pid=prolific_pid), False
    return rater, True


def rater_staff_for_pool(*, pool: TaskPool, user) -> Rater:
    """The rater a staff member ranks a pool's tasks as (made on first use; one per user and pool)."""
    with transaction.atomic():
        TaskPool.objects.select_for_update().filter(pk=pool.pk).first()  # one rater per user, even when racing
        rater = Rater.objects.filter(pool=pool, user=user, source=STAFF_SOURCE).first()
        if rater is None:
            rater = Rater.objects.create(project_id=pool.project_id, pool=pool, user=user, source=STAFF_SOURCE)
    return rater


def rater_consent(*, rater: Rater, consent_version_id: int) -> Rater:
    """Record that the rater agreed to the current consent text (which is now immutable)."""
    current = selectors.consent_current(project=rater.project)
    if current is None or current.pk != consent_version_id:
        raise Conflict("The consent text changed; please read the current version.", field="consent_version")
    now = timezone.now()
    with transaction.atomic():
        ConsentVersion.objects.filter(pk=current.pk, first_shown_at__isnull=True).update(first_shown_at=now)
        rater.consent_version = current
        rater.consented_at = now
        rater.save(update_fields=["consent_version", "consented_at"])
    return rater


def rater_consent_decline(*, rater: Rater, consent_version_id: int) -> Rater:
    """Record that the rater declined the consent text they were shown (the first decline's time is kept)."""
    version = ConsentVersion.objects.filter(pk=consent_version_id, project_id=rater.project_id).first()
    if version is None:
        raise InvalidInput("Unknown consent version.", field="consent_version")
    now = timezone.now()
    with transaction.atomic():
        ConsentVersion.objects.filter(pk=version.pk, first_shown_at__isnull=True).update(first_shown_at=now)
        if rater.consent_declined_at is None:
            rater.consent_declined_at = now
            rater.save(update_fields=["consent_declined_at"])
    return rater


def demographics_submit(*, rater: Rater, **answers: str) -> Demographics:
    """Store self-reported demographics. Every field may be left blank or 'prefer_not'."""
    unknown = set(answers) - set(DEMOGRAPHIC_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown demographics field: {sorted(unknown)[0]}.", field=sorted(unknown)[0])
    clean: dict[str, str] = {}
    for name in DEMOGRAPHIC_FIELDS:
        value = (answers.get(name) or "").strip()
        field = Demographics._meta.get_field(name)
        if field.choices and value and value not in dict(field.choices):
            raise InvalidInput(f"'{value}' is not a valid choice for {name}.", field=name)
        if len(value) > field.max_length:
            raise InvalidInput(f"{name} is too long (at most {field.max_length} characters).", field=name)
        clean[name] = value
    demographics, _ = Demographics.objects.update_or_create(rater=rater, defaults=clean)
    return demographics


def rater_acknowledge_instructions(*, rater: Rater, instruction_version_id: int) -> Rater:
    """Record that the rater read the current instructions. Marks the version as shown (now immutable)."""
    current = selectors.instruction_current(project=rater.project)
    if current is None or current.pk != instruction_version_id:
        raise Conflict(
            "These instructions are no longer current; please read the new version.",
            field="instruction_version",
            code="instructions_changed",
        )
    now = timezone.now()
    InstructionVersion.objects.filter(pk=current.pk, first_shown_at__isnull=True).update(first_shown_at=now)
    rater.acknowledged_instruction = current
    rater.acknowledged_at = now
    rater.save(update_fields=["acknowledged_instruction", "acknowledged_at"])
    return rater


@dataclass(frozen=True)
class RaterNext:
    """Where a rater goes next.

    ``status`` is ``"blocked"`` (``step`` names the flow page still to do: consent, demographics or
    instructions), ``"task"`` (``assignment`` is the rater's open assignment) or ``"done"`` (nothing is
    left for them: the completion page).
    """

    status: str
    step: str = "task"
    assignment: Assignment | None = None


def rater_next(*, rater: Rater, none_open: bool = False) -> RaterNext:
    """The rater's next step, shared by the rater pages and the rater API.

    Opens the rater's next assignment when they have none (:func:`assignment_next`); writes nothing
    else. Completion is recorded by :func:`rater_next_after_answer`, in the request that stores an answer.
    """
    step = selectors.rater_next_step(rater=rater)
    if step != "task":
        return RaterNext(status="blocked", step=step)
    assignment = assignment_next(rater=rater, none_open=none_open)
    if assignment is None:
        return RaterNext(status="done")
    return RaterNext(status="task", assignment=assignment)


def rater_next_after_answer(*, rater: Rater, answered: bool = False) -> RaterNext:
    """:func:`rater_next` for the request that stored an answer: when nothing is left, the rater has
    completed, and the time is recorded (once; a later answer, e.g. a late one, does not move it). An
    excluded rater (e.g. screened out by this very answer) has not completed: nothing is recorded.

    ``answered``: this request has just stored the answer to the rater's open assignment, so the rater
    holds none (see ``none_open`` of :func:`assignment_next`)."""
    following = rater_next(rater=rater, none_open=answered)
    if following.status == "done" and rater.completed_at is None and rater.excluded_at is None:
        rater.completed_at = timezone.now()
        rater.save(update_fields=["completed_at"])
    return following
