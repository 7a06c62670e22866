"""Leaving a rater out of fits and statistics, and taking them back in (reversible, recorded).

A researcher excludes a rater — typically one flagged on the raters page (position bias, answers too
fast, straight-lining; see :func:`annotator.selectors.rater_quality_by_rater`) — with a reason. The
decision is a new :class:`~annotator.models.RaterExclusion` row (append-only history) and the rater's
``excluded_at`` / ``excluded_reason``; nothing of the rater's answers is changed or deleted. From then on:

- every loader of :mod:`ranking.loaders` (fits, agreement and calibration reports) leaves the rater's
  judgments, rankings and annotations out, and a refit is requested at once (the same request a new
  judgment makes), so the rankings follow;
- the rater is handed no further task (:func:`annotator.services.assignments.assignment_next` returns
  None, so the rater reaches the usual "nothing left" page); an assignment they held open is given back
  to the pool;
- with ``release_places`` (the raters page offers it, and releasing a crowd participant's places does it),
  each task the rater answered gets its place back as well, so other raters are handed it and the study still
  reaches its overlap without the excluded answers (:func:`rater_places_release`). Once given back, places
  are not taken again if the rater is included later (those tasks may then end with an answer more).

Including the rater again writes an ``include`` row, clears the fields and requests a refit; the
rater's answers count again, and the rater may be handed tasks again.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from annotator.errors import Conflict, InvalidInput
from annotator.models import Assignment, AssignmentState, ExclusionAction, Rater, RaterExclusion, Task

MAX_REASON_CHARS = 2000


def _reason_clean(reason) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("Give a reason: it is recorded with the decision and summarised in the datasheet.",
                           field="reason")
    reason = " ".join(reason.split())  # one line: it is listed in the datasheet (HTML and Markdown)
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidInput(f"The reason must be at most {MAX_REASON_CHARS} characters.", field="reason")
    return reason


def _refit_requested(*, project_id: int) -> None:
    from ranking.services import fit_refit_requested  # ranking depends on annotator, not the reverse

    fit_refit_requested(project_id=project_id)


def _open_assignment_release(*, rater: Rater) -> None:
    """Give the rater's open assignment back to the pool, as expiry does (a late answer is still stored,
    and then left out like the rater's others)."""
    open_ = list(Assignment.objects.select_for_update().filter(rater_id=rater.pk, state=AssignmentState.OPEN)
                 .values_list("pk", "task_id", "is_repeat"))
    for pk, task_id, is_repeat in open_:  # at most one (a database constraint)
        Assignment.objects.filter(pk=pk).update(state=AssignmentState.EXPIRED)
        if not is_repeat:  # a repeat holds no slot of its task
            Task.objects.filter(pk=task_id).update(n_assigned=F("n_assigned") - 1)


def _places_give_back(*, rater: Rater) -> int:
    """The places the rater holds, given back: the open assignment expires, and each task the rater answered
    (a first showing that still holds its place: not a repeat, nor a late answer taken while excluded, nor one
    given back before) gets one place back. Returns how many. Records the time on ``places_released_at``.
    A second call (a double click, two researchers) finds nothing held and gives nothing back; tasks the rater
    answered after being included again are given back by a later call.

    Locks the rater's assignments first, as the answer path does, so an answer arriving at the same moment
    waits (or is waited for); then the rater, then the tasks in task order.
    """
    held = list(Assignment.objects.select_for_update(of=("self",))
                .filter(Q(state=AssignmentState.OPEN) | Q(state=AssignmentState.ANSWERED, holds_place=True),
                        rater_id=rater.pk, is_repeat=False)
                .order_by("task_id").values_list("pk", "task_id", "state"))
    Rater.objects.filter(pk=rater.pk).update(places_released_at=timezone.now())
    # only the rows read above: an assignment opened since (by a request that committed meanwhile) is left
    # to the exclusion, which expires it and gives its place back
    Assignment.objects.filter(pk__in=[pk for pk, _, state in held if state == AssignmentState.OPEN]).update(
        state=AssignmentState.EXPIRED)
    Assignment.objects.filter(pk__in=[pk for pk, _, state in held if state == AssignmentState.ANSWERED]).update(
        holds_place=False)
    task_ids = [task_id for _, task_id, _ in held]  # one each: a rater is shown a task once (repeats hold none)
    list(Task.objects.select_for_update().filter(pk__in=task_ids).order_by("pk").values_list("pk"))  # in task order
    Task.objects.filter(pk__in=task_ids).update(n_assigned=F("n_assigned") - 1)
    return len(held)


def rater_exclude(*, rater: Rater, by_user, reason: str, release_places: bool = False) -> RaterExclusion:
    """Leave ``rater`` out of fits and statistics and hand them no further task; ``reason`` is required.
    ``release_places``: also give back the places of the tasks they answered (see the module docstring).

    Raises InvalidInput (field ``reason``) without a reason, Conflict (field ``rater``) if the rater is
    already excluded (nothing is changed then). Requests a refit of the project. ``rater`` is updated in place.
    """
    reason = _reason_clean(reason)
    with transaction.atomic():
        # the answer path's lock order: assignment, task, rater (a refusal below rolls the release back)
        given_back = _places_give_back(rater=rater) if release_places else 0
        _open_assignment_release(rater=rater)
        locked = Rater.objects.select_for_update().get(pk=rater.pk)
        if locked.excluded_at is not None:
            raise Conflict(f"Rater {locked.public_id} is already excluded.", field="rater")
        entry = RaterExclusion.objects.create(rater=locked, action=ExclusionAction.EXCLUDE, reason=reason,
                                              created_by=by_user)
        locked.excluded_at, locked.excluded_reason = entry.created_at, reason
        locked.save(update_fields=["excluded_at", "excluded_reason"])
        _refit_requested(project_id=locked.project_id)
    rater.excluded_at, rater.excluded_reason = locked.excluded_at, locked.excluded_reason
    rater.places_released_at = locked.places_released_at
    entry.places_given_back = given_back
    return entry


def rater_places_release(*, rater: Rater, by_user, reason: str = "") -> int:
    """Give back the places a rater holds — the open assignment and every task they answered — and exclude the
    rater (if not excluded already) with ``reason`` (by default: their Prolific status). Returns how many places
    were given back (0 when none is held, e.g. released before). Used for crowd participants who will not come
    back (:mod:`annotator.services.prolific`)."""
    with transaction.atomic():
        given_back = _places_give_back(rater=rater)
        rater.refresh_from_db(fields=["places_released_at", "crowd_status", "excluded_at", "excluded_reason"])
        why = " ".join(reason.split()) or f"Places released: Prolific status {rater.crowd_status or 'not reported'}."
        if rater.excluded_at is None:
            rater_exclude(rater=rater, by_user=by_user, reason=why)
    return given_back


def rater_include(*, rater: Rater, by_user, reason: str) -> RaterExclusion:
    """Take an excluded rater back into fits and statistics (and the task stream); ``reason`` is required.

    Raises InvalidInput (field ``reason``) without a reason, Conflict (field ``rater``) if the rater is not
    excluded. Requests a refit of the project. ``rater`` is updated in place.
    """
    reason = _reason_clean(reason)
    with transaction.atomic():
        locked = Rater.objects.select_for_update().get(pk=rater.pk)
        if locked.excluded_at is None:
            raise Conflict(f"Rater {locked.public_id} is not excluded.", field="rater")
        entry = RaterExclusion.objects.create(rater=locked, action=ExclusionAction.INCLUDE, reason=reason,
                                              created_by=by_user)
        locked.excluded_at, locked.excluded_reason = None, ""
        locked.save(update_fields=["excluded_at", "excluded_reason"])
        _refit_requested(project_id=locked.project_id)
    rater.excluded_at, rater.excluded_reason = None, ""
    return entry
