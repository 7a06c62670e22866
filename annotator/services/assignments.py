"""Assignment: which task a rater gets next (repeats of answered pairs and quality checks mixed in), and expiry
of abandoned ones."""

from __future__ import annotations

import random
import secrets
from collections import defaultdict
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from annotator import selectors, sql
from annotator.models import Assignment, AssignmentState, CheckKind, Rater, Task, TaskKind
from annotator.services.ranks import rank_shown_order

#: A repeat re-shows a pair only after at least this many other assignments of the same rater.
REPEAT_MIN_GAP = 3


def assignment_next(*, rater: Rater, none_open: bool = False) -> Assignment | None:
    """The rater's open assignment, or a new one, or None when nothing is left for them.

    Policy: tasks with the fewest assignments first (random among equals), never a task
    this rater already had, never more than ``overlap`` raters per task, never a task of a
    retired image (``Task.is_active``). A rank task's images are shown in an order drawn at random
    per assignment (``Assignment.shown_order``). The slot is taken with a conditional UPDATE, so
    concurrent raters cannot over-fill a task; on PostgreSQL rows being claimed by others are
    skipped (``SKIP LOCKED``) rather than waited for — unless every open task is being claimed at
    that moment: then it looks again, and finally waits, so a rater is never told "nothing left"
    while tasks remain.

    Repeats: with probability ``project.repeat_rate`` (drawn from ``random.Random`` seeded by
    the rater's id and answer count, so a rater's stream is reproducible) the next assignment
    re-shows a pairwise task the rater answered at least :data:`REPEAT_MIN_GAP` assignments
    ago, sides swapped (see :func:`_repeat_create`). Repeats take no slot and do not count
    towards ``tasks_per_rater``; they are only served while a new task is still available, so
    they never delay a rater's completion.

    Quality checks: otherwise, with probability ``project.check_rate`` (a draw of its own, seeded the same
    way) the next assignment is a quality check the rater has not seen (:func:`_check_create`). Like
    repeats, checks do not count towards ``tasks_per_rater`` and are served only while a new task is
    available; the normal selection never hands one out.

    ``none_open``: the caller knows the rater holds no open assignment (it has just stored the answer to
    it), so it is not looked up first. Should a concurrent request of the rater have opened one since,
    the claim below runs into the one-open-assignment constraint and returns that one.

    An excluded rater (``rater.excluded_at``, see :mod:`annotator.services.quality`) gets None: nothing is
    left for them, with no query (excluding gave their open assignment back).
    """
    if rater.excluded_at is not None:
        return None
    if not none_open:
        open_assignment = selectors.assignment_open(rater=rater)
        if open_assignment is not None:
            return open_assignment
    project = rater.project
    if project.tasks_per_rater and rater.n_judgments - rater.n_repeats - rater.n_checks >= project.tasks_per_rater:
        return selectors.assignment_open(rater=rater) if none_open else None

    def available():  # built only on the paths that ask (query building is most of this function's cost)
        return selectors.tasks_available_to(rater=rater)

    if project.repeat_rate > 0:
        rng = random.Random(f"{rater.pk}:{rater.n_judgments}")
        if rng.random() < project.repeat_rate and available().exists():
            repeat = _repeat_create(rater=rater, rng=rng)
            if repeat is not None:
                return repeat
    if project.check_rate > 0 and rater.pool_id is None:
        rng = random.Random(f"check:{rater.pk}:{rater.n_judgments}")
        if rng.random() < project.check_rate and available().exists():
            check = _check_create(rater=rater, rng=rng)
            if check is not None:
                return check
    attempts = 8
    slots = project.overlap  # a task's places: its own max_raters, else this (selectors.task_slots)
    for attempt in range(attempts):
        with transaction.atomic():
            # tasks_available_to(rater) in order, the first row locked (only the task row; its images come with
            # it for the payload); the last attempt waits for the rows other raters are claiming instead of
            # skipping them. One hand-written statement (annotator.sql.task_to_claim): it runs for every answer.
            task = sql.task_to_claim(rater=rater, slots_default=slots, skip_locked=attempt < attempts - 1)
            if task is None:
                if attempt < attempts - 1 and available().exists():
                    continue  # every open task is being claimed by someone else right now: look again
                return None
            if not sql.task_slot_take(task_id=task.pk, slots_default=slots):
                continue
            left, right = (task.item_a_id, task.item_b_id)
            if right is not None and secrets.randbelow(2):
                left, right = right, left
            shown_order = rank_shown_order(task_id=task.pk) if task.kind == TaskKind.RANK else []
            if shown_order:
                left = shown_order[0]
            created = Assignment(task_id=task.pk, rater=rater, project=project, left_item_id=left,
                                 right_item_id=right, shown_order=shown_order)
            if not sql.insert(created, ignore_conflicts=True):
                # A concurrent request of the same rater opened an assignment first: give the place back.
                sql.counters_add(model=Task, pk=task.pk, n_assigned=-1)
            elif not shown_order:
                # the payload's task and images, as selectors.assignment_open would load them
                created.task = task
                items = {task.item_a_id: task.item_a, task.item_b_id: task.item_b}
                created.left_item = items[left]
                created.right_item = items[right] if right is not None else None
                created.project = project
                return created
        break
    # The new (or concurrently opened) assignment, with its task and images loaded in the same query.
    return selectors.assignment_open(rater=rater)


def _repeat_create(*, rater: Rater, rng: random.Random) -> Assignment | None:
    """Open a repeat of one of the rater's answered pairwise assignments, or None if none is eligible.

    Eligible: answered, not itself a repeat nor a quality check, not yet repeated, and followed by at least
    :data:`REPEAT_MIN_GAP` other assignments of this rater (so the repeat is never shown within
    three tasks of the first showing). One is chosen with ``rng``; the repeat shows its task with
    left and right swapped and takes no slot of the task.
    """
    recent = list(
        Assignment.objects.filter(rater=rater).order_by("-id").values_list("id", flat=True)[:REPEAT_MIN_GAP]
    )
    if len(recent) < REPEAT_MIN_GAP:
        return None
    eligible = (
        Assignment.objects.filter(rater=rater, is_repeat=False, state=AssignmentState.ANSWERED,
                                  right_item__isnull=False, id__lt=recent[-1], task__is_active=True,
                                  task__check_kind=CheckKind.NONE)
        .exclude(Exists(Assignment.objects.filter(repeat_of=OuterRef("pk"))))
        .order_by("id")
    )
    n_eligible = eligible.count()
    if not n_eligible:
        return None
    original = eligible.values("id", "task_id", "left_item_id", "right_item_id")[rng.randrange(n_eligible)]
    try:
        with transaction.atomic():
            return Assignment.objects.create(
                task_id=original["task_id"], rater=rater, project=rater.project, is_repeat=True,
                repeat_of_id=original["id"], left_item_id=original["right_item_id"],
                right_item_id=original["left_item_id"],
            )
    except IntegrityError:
        # A concurrent request of the same rater opened an assignment (or this repeat) first.
        return selectors.assignment_open(rater=rater)


def _check_create(*, rater: Rater, rng: random.Random) -> Assignment | None:
    """Open one of the quality checks the rater has not seen, chosen with ``rng``, or None if none is left.

    A gold pair's sides are drawn with ``rng`` (it must look like any task); an attention check is shown as
    the researcher stored it (its instruction may name a side). The check's ``n_assigned`` counts the raters
    it was handed to (so expiry and place releases, which give a slot back, keep it consistent).
    """
    unseen = selectors.checks_unseen_by(rater=rater).order_by("id")
    n_unseen = unseen.count()
    if not n_unseen:
        return None
    check = unseen.select_related("item_a", "item_b")[rng.randrange(n_unseen)]
    left, right = check.item_a_id, check.item_b_id
    if check.check_kind == CheckKind.GOLD and rng.random() < 0.5:
        left, right = right, left
    try:
        with transaction.atomic():
            created = Assignment.objects.create(task_id=check.pk, rater=rater, project=rater.project,
                                                left_item_id=left, right_item_id=right)
            Task.objects.filter(pk=check.pk).update(n_assigned=F("n_assigned") + 1)
    except IntegrityError:
        # A concurrent request of the same rater opened an assignment (or this check) first.
        return selectors.assignment_open(rater=rater)
    items = {check.item_a_id: check.item_a, check.item_b_id: check.item_b}
    created.task, created.left_item, created.right_item = check, items[left], items[right]
    return created


def assignments_expire(*, older_than: timedelta, limit: int = 10_000) -> int:
    """Free the slots of assignments left open longer than ``older_than`` (raters who walked away).

    The task goes back to the pool so other raters can answer it. If the rater comes back and
    answers after all, the answer is still stored (it is never lost) and the task may then have
    one answer more than its overlap. Returns the number of assignments expired.

    An expired repeat held no slot, so none is given back; its original is not repeated again.
    """
    cutoff = timezone.now() - older_than
    with transaction.atomic():
        stale = list(
            Assignment.objects.select_for_update(skip_locked=True)
            .filter(state=AssignmentState.OPEN, shown_at__lt=cutoff)
            .values_list("pk", "task_id", "is_repeat")[:limit]
        )
        if not stale:
            return 0
        Assignment.objects.filter(pk__in=[pk for pk, _, _ in stale]).update(state=AssignmentState.EXPIRED)
        per_task: dict[int, int] = defaultdict(int)
        for _, task_id, is_repeat in stale:
            if not is_repeat:
                per_task[task_id] += 1
        for task_id, n in sorted(per_task.items()):
            Task.objects.filter(pk=task_id).update(n_assigned=F("n_assigned") - n)
    return len(stale)
