"""Storing an answer: the one skeleton behind judgments (pairwise), annotations (rich feedback, checklists)
and rank answers (rank tasks).

Every answer follows the same rules, in this order:

1. the client's idempotency key must be a UUID; payload checks that need no database run next, then
   the response time is checked;
2. the rater's assignment is locked (someone else's is NotFound, 404);
3. a retry with an idempotency key already stored returns the stored answer (a *replay*) and stores
   nothing; the same key on another answer is a Conflict (409) — checked once, under the lock;
4. an assignment already answered is a Conflict with code ``already_answered`` (409), an assignment of
   another task kind is InvalidInput;
5. the rater must answer under the current instructions, which they read (else Conflict with code
   ``instructions_changed``);
6. the answer's own fields are cleaned (by the caller's ``fields`` callable) and the row is created;
   the assignment is marked answered and the counters move; the caller's side effects run (``after``);
   all in one transaction, so nothing is stored partly.

A concurrent retry that wins the race shows up as an IntegrityError on the unique key: the stored
answer is then returned as a replay. A deadlock (PostgreSQL aborts one transaction of a cycle — e.g. two raters
screened out at the same moment, each giving back the places of tasks the other's answer holds) is tried again
from the start, up to :data:`DEADLOCK_ATTEMPTS` times in all, once the other transaction has finished.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import TypeVar

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from annotator import sql
from annotator.errors import Conflict, InvalidInput, NotFound
from annotator.models import (
    Annotation,
    Assignment,
    AssignmentState,
    Judgment,
    RankAnswer,
    Rater,
    Task,
)

log = logging.getLogger(__name__)

MAX_RESPONSE_TIME_MS = 24 * 3600 * 1000

#: Tries of an answer's transaction in all when PostgreSQL aborts it to break a deadlock.
DEADLOCK_ATTEMPTS = 3
#: PostgreSQL's SQLSTATE for "deadlock detected".
_DEADLOCK = "40P01"

Answer = TypeVar("Answer", Judgment, Annotation, RankAnswer)


def is_whole_number(value) -> bool:
    """An int that is not a bool (JSON true must not pass as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def answer_create(
    *,
    model: type[Answer],
    rater: Rater,
    assignment_id: int,
    idempotency_key,
    instruction_version_id: int,
    response_time_ms: int | None,
    kinds: tuple[str, ...],
    wrong_kind: str,
    fields: Callable[[Assignment], dict],
    validate: Callable[[], None] | None = None,
    after: Callable[[Answer], None] | None = None,
) -> tuple[Answer, bool]:
    """Store one answer of ``model`` once (see the module docstring). Returns ``(answer, created)``.

    ``kinds``: the task kinds this model answers (``wrong_kind`` is the message for the others).
    ``fields(assignment)``: the answer's own fields, cleaned (raising InvalidInput naming the field);
    called under the lock, after the instruction check. ``validate()``: payload checks that need no
    database, run before anything is read. ``after(answer)``: side effects inside the transaction.
    """
    key = idempotency_key_parse(idempotency_key)
    if validate is not None:
        validate()
    if response_time_ms is not None and (
        not is_whole_number(response_time_ms) or not 0 <= response_time_ms <= MAX_RESPONSE_TIME_MS
    ):
        raise InvalidInput("response_time_ms must be a whole number of milliseconds, at most a day.",
                           field="response_time_ms")
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            return _answer_store(model=model, rater=rater, assignment_id=assignment_id, key=key,
                                 instruction_version_id=instruction_version_id, response_time_ms=response_time_ms,
                                 kinds=kinds, wrong_kind=wrong_kind, fields=fields, after=after)
        except OperationalError as exc:
            # the whole transaction was rolled back; try again unless it was part of a caller's transaction
            if getattr(exc.__cause__, "sqlstate", None) != _DEADLOCK or connection.in_atomic_block \
                    or attempt == DEADLOCK_ATTEMPTS:
                raise
            log.warning("The answer to assignment %s was rolled back to break a deadlock; trying again (%d of %d).",
                        assignment_id, attempt + 1, DEADLOCK_ATTEMPTS)
    raise AssertionError("unreachable")


def _answer_store(*, model: type[Answer], rater: Rater, assignment_id: int, key: uuid.UUID,
                  instruction_version_id: int, response_time_ms: int | None, kinds: tuple[str, ...],
                  wrong_kind: str, fields: Callable[[Assignment], dict],
                  after: Callable[[Answer], None] | None) -> tuple[Answer, bool]:
    """Steps 2–6 of the module docstring, in one transaction."""
    try:
        with transaction.atomic():
            assignment = _assignment_locked(rater=rater, assignment_id=assignment_id, model=model, key=key)
            replayed_id = assignment.replayed_id
            if replayed_id is None and assignment.state == AssignmentState.ANSWERED:
                # answered while this request waited for the lock: the subquery saw the statement's
                # snapshot, from before that answer committed; look again
                replayed_id = model.objects.filter(idempotency_key=key).values_list("pk", flat=True).first()
            if replayed_id is not None:
                replayed = model.objects.get(pk=replayed_id)
                return _replay(replayed, rater=rater, assignment_id=assignment_id), False
            if assignment.state == AssignmentState.ANSWERED:
                raise Conflict("This assignment was already answered.", field="assignment",
                               code="already_answered")
            if assignment.task.kind not in kinds:
                raise InvalidInput(wrong_kind, field="assignment")
            instructions_id = _instructions_read(rater=rater, instruction_version_id=instruction_version_id,
                                                 current_id=assignment.current_instructions_id)
            answer = model(
                idempotency_key=key,
                project_id=rater.project_id,
                task_id=assignment.task_id,
                assignment=assignment,
                rater=rater,
                instruction_version_id=instructions_id,
                response_time_ms=response_time_ms,
                shown_at=assignment.shown_at,
                **fields(assignment),
            )
            sql.insert(answer)  # as model.objects.create() stores it, in one INSERT … RETURNING
            _assignment_answered(assignment=assignment, rater=rater)
            if after is not None:
                after(answer)
    except IntegrityError:
        existing = model.objects.filter(idempotency_key=key).first()
        if existing is None:
            raise Conflict("This assignment was already answered.", field="assignment",
                           code="already_answered") from None
        return _replay(existing, rater=rater, assignment_id=assignment_id), False
    rater.n_judgments += 1
    rater.n_repeats += int(assignment.is_repeat)
    rater.n_checks += int(bool(assignment.task.check_kind))
    return answer, True


#: Canonical UUID text only: 8-4-4-4-12 ASCII hex digits, either case. ``uuid.UUID`` alone also takes
#: braces, "urn:uuid:", no hyphens and non-ASCII digits (full-width "１" is int()'s 1), so two different
#: keys could name one answer.
_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def idempotency_key_parse(value) -> uuid.UUID:
    """The answer's idempotency key: canonical UUID text only (8-4-4-4-12 ASCII hex, either case)."""
    if value in (None, ""):
        raise InvalidInput("idempotency_key is required (a UUID the client makes once per answer).",
                           field="idempotency_key")
    if isinstance(value, uuid.UUID):  # from Python callers (import scripts, tests)
        return value
    if not isinstance(value, str) or not _UUID_TEXT.fullmatch(value):
        raise InvalidInput("idempotency_key must be a UUID written as 8-4-4-4-12 hexadecimal digits "
                           "(e.g. 3f2b8c1e-5a4d-4e6f-9b7a-1c2d3e4f5a6b).", field="idempotency_key")
    return uuid.UUID(value)


def _replay(existing: Answer, *, rater: Rater, assignment_id: int) -> Answer:
    if existing.rater_id != rater.pk or existing.assignment_id != assignment_id:
        raise Conflict("This idempotency_key was already used for another answer.", field="idempotency_key")
    return existing


def _assignment_locked(*, rater: Rater, assignment_id: int, model: type[Answer], key: uuid.UUID) -> Assignment:
    """The rater's assignment, locked for the answer; someone else's (or none) is NotFound.

    The same query reads the id of the ``model`` answer already stored under ``key`` (``replayed_id``,
    None for a new answer) and the project's current instruction version (``current_instructions_id``):
    one statement instead of three, hand-written (:func:`annotator.sql.assignment_for_answer`: it runs for every
    answer).

    Only the assignment row is locked (``of=("self",)``): a plain ``FOR UPDATE`` would also lock the
    joined task and image rows, which raters answering other assignments of the same images update
    or lock in another order — a deadlock cycle. Counters are then updated task row first, rater row
    second, by every answer.
    """
    assignment = sql.assignment_for_answer(assignment_id=assignment_id, rater=rater, answer_model=model, key=key)
    if assignment is None:
        raise NotFound(f"Assignment {assignment_id} is not one of yours.", field="assignment")
    return assignment


def _instructions_read(*, rater: Rater, instruction_version_id: int, current_id: int | None) -> int:
    """The current instruction version's id (``current_id``), if the rater read it and answers under it;
    else 409."""
    if current_id is None or instruction_version_id != current_id or rater.acknowledged_instruction_id != current_id:
        raise Conflict("The instructions changed since you read them; please read the new version.",
                       field="instruction_version", code="instructions_changed")
    return current_id


def _assignment_answered(*, assignment: Assignment, rater: Rater) -> None:
    """Counters and state after an answer. A late answer to an expired assignment takes its slot back —
    unless the rater was excluded meanwhile (then it takes no place and moves no task counter).

    A repeat's answer leaves the task's counters alone (a repeat is a consistency probe, not a
    vote towards the overlap) and is counted in the rater's ``n_repeats`` as well as ``n_judgments``.
    A quality check's answer moves its task's counters like any answer (they count the raters it was
    shown to and answered by) and is counted in the rater's ``n_checks`` as well as ``n_judgments``.
    """
    sql.assignment_answered(assignment_id=assignment.pk, at=timezone.now())
    if assignment.is_repeat:
        sql.counters_add(model=Rater, pk=rater.pk, n_judgments=1, n_repeats=1)
        return
    is_check = bool(assignment.task.check_kind)
    slot = 1 if assignment.state == AssignmentState.EXPIRED else 0
    if slot and Rater.objects.filter(pk=rater.pk, excluded_at__isnull=False).exists():
        # a late answer of a rater excluded meanwhile (their open task was given back then): stored, but it
        # takes no place (marked so: a later release of the rater's places must not give it back again) and
        # counts towards no task, as it is left out of every fit
        Assignment.objects.filter(pk=assignment.pk).update(holds_place=False)
        sql.counters_add(model=Rater, pk=rater.pk, n_judgments=1, n_checks=int(is_check))
        return
    sql.counters_add(model=Task, pk=assignment.task_id, n_judgments=1, n_assigned=slot)
    sql.counters_add(model=Rater, pk=rater.pk, n_judgments=1, n_checks=int(is_check))
