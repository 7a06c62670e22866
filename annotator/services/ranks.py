"""Rank tasks: k images (3–10) of one project that a rater orders best → worst, ties where the project allows.

- :func:`tasks_generate_rank` makes the tasks (each task's images are its ``TaskItem`` rows);
- :func:`rank_shown_order` draws the order an assignment shows them in (kept on the assignment);
- :func:`rank_answer_create` stores a rater's ranking through the one answer skeleton
  (:func:`annotator.services.answers.answer_create`: idempotency key, lock, replay, instructions, counters).

A ranking is a list of *groups* of item ids, best first; a group of several ids is a tie (``[[7], [3, 9],
[4]]``); a bare id stands for a group of one (``[7, [3, 9], 4]`` is the same ranking). It must name
every image the task shows exactly once.
"""

from __future__ import annotations

import math
import random
import secrets
from collections import defaultdict

from django.db import transaction

from annotator.errors import InvalidInput
from annotator.models import (
    RANK_MAX_ITEMS,
    RANK_MIN_ITEMS,
    Assignment,
    Project,
    RankAnswer,
    Rater,
    Task,
    TaskItem,
    TaskKind,
)
from annotator.services.answers import answer_create, is_whole_number
from annotator.services.projects import project_update

MAX_RANK_TASKS_PER_GENERATION = 100_000


def tasks_generate_rank(*, project: Project, k: int, n_tasks: int, random_state: int | None = None,
                        same_prompt: bool = False, overlap: int | None = None) -> int:
    """Make up to ``n_tasks`` new rank tasks of ``k`` images each. Returns the number created.

    Every task is a set of ``k`` distinct, non-retired images of the project (with ``same_prompt``, of one
    prompt); no two rank tasks of the project show the same set. The design is balanced: each task takes
    the ``k`` images of its pool shown least often so far (random among equals, ``random_state`` seeds
    it), falling back to a uniform random set when that set exists already. Fewer than ``n_tasks`` are
    made only when fewer distinct sets are left. ``overlap`` (raters per task) is set first when given.
    """
    if not is_whole_number(k) or not RANK_MIN_ITEMS <= k <= RANK_MAX_ITEMS:
        raise InvalidInput(f"k (images per rank task) must be from {RANK_MIN_ITEMS} to {RANK_MAX_ITEMS}.",
                           field="k")
    if not is_whole_number(n_tasks) or not 1 <= n_tasks <= MAX_RANK_TASKS_PER_GENERATION:
        raise InvalidInput(f"n_tasks must be from 1 to {MAX_RANK_TASKS_PER_GENERATION}.", field="n_tasks")
    if overlap is not None:
        project_update(project=project, overlap=overlap)
    rng = random.Random(random_state)
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()  # one generation at a time
        groups: dict[str, list[int]] = defaultdict(list)
        for item_id, prompt in (project.items.filter(retired_at__isnull=True).order_by("id")
                                .values_list("id", "prompt")):
            groups[prompt if same_prompt else ""].append(item_id)
        pools = [ids for ids in groups.values() if len(ids) >= k]
        if not pools:
            where = " sharing a prompt" if same_prompt else ""
            raise InvalidInput(f"A rank task of {k} images needs at least {k} images{where} in the project "
                               "(retired images are left out).", field="k")
        existing = _rank_task_sets(project)
        possible = sum(math.comb(len(ids), k) for ids in pools) - len(
            [s for s in existing if len(s) == k and any(s <= set(ids) for ids in pools)])
        wanted = min(n_tasks, max(possible, 0))
        shown_count: dict[int, int] = defaultdict(int)
        for members in existing:
            for item_id in members:
                shown_count[item_id] += 1
        weights = [math.comb(len(ids), k) for ids in pools]
        chosen: list[tuple[int, ...]] = []
        taken = set(existing)
        attempts = 0
        while len(chosen) < wanted and attempts < wanted * 50:
            attempts += 1
            ids = rng.choices(pools, weights=weights)[0]
            least_shown = sorted(ids, key=lambda i: (shown_count[i], rng.random()))[:k]
            members = frozenset(least_shown)
            if members in taken:
                members = frozenset(rng.sample(ids, k))
                if members in taken:
                    continue
            taken.add(members)
            chosen.append(tuple(sorted(members)))
            for item_id in members:
                shown_count[item_id] += 1
        tasks = Task.objects.bulk_create(
            [Task(project=project, kind=TaskKind.RANK, item_a_id=members[0], item_b_id=None,
                  shuffle_key=rng.randrange(2**31)) for members in chosen],
            batch_size=2000,
        )
        TaskItem.objects.bulk_create(
            [TaskItem(task_id=task.pk, item_id=item_id, position=position)
             for task, members in zip(tasks, chosen) for position, item_id in enumerate(members)],
            batch_size=5000,
        )
    return len(chosen)


def _rank_task_sets(project: Project) -> set[frozenset[int]]:
    members: dict[int, set[int]] = defaultdict(set)
    for task_id, item_id in (TaskItem.objects.filter(task__project=project, task__pool__isnull=True)
                             .values_list("task_id", "item_id")):
        members[task_id].add(item_id)
    return {frozenset(s) for s in members.values()}


def rank_shown_order(*, task_id: int) -> list[int]:
    """The task's images in a fresh random order (item ids, left to right), for a new assignment."""
    order = list(TaskItem.objects.filter(task_id=task_id).order_by("position").values_list("item_id", flat=True))
    secrets.SystemRandom().shuffle(order)
    return order


def rank_answer_create(
    *,
    rater: Rater,
    assignment_id: int,
    ranking,
    idempotency_key,
    instruction_version_id: int,
    response_time_ms: int | None = None,
) -> tuple[RankAnswer, bool]:
    """Store a rater's ranking of a rank task once. Returns ``(answer, created)``.

    The rules of :func:`annotator.services.answers.answer_create` (a retry with the same key returns the
    stored answer; someone else's assignment is NotFound; an answered one or stale instructions a
    Conflict). ``ranking`` (groups of item ids, best first; see the module docstring) must be a
    permutation of the images the assignment shows, and may tie images only where the project allows
    ties; otherwise InvalidInput names the problem (field ``ranking``) and nothing is stored.
    """
    groups: list[list[int]] = []

    def validate() -> None:
        groups.extend(_ranking_groups(ranking))
        if any(len(g) > 1 for g in groups) and not rater.project.allow_tie:
            raise InvalidInput("This study has no ties: give every image a place of its own.", field="ranking")

    def fields(assignment: Assignment) -> dict:
        shown = list(assignment.shown_order) or list(
            TaskItem.objects.filter(task_id=assignment.task_id).order_by("position").values_list("item_id", flat=True))
        _check_permutation(groups, shown)
        return {"shown_order": shown, "ranking": groups, "n_items": len(shown),
                "has_ties": any(len(g) > 1 for g in groups)}

    return answer_create(
        model=RankAnswer,
        rater=rater,
        assignment_id=assignment_id,
        idempotency_key=idempotency_key,
        instruction_version_id=instruction_version_id,
        response_time_ms=response_time_ms,
        kinds=(TaskKind.RANK,),
        wrong_kind="This assignment is not a rank task; submit it as a judgment or an annotation.",
        validate=validate,
        fields=fields,
        after=_after_rank_answer,
    )


def _ranking_groups(ranking) -> list[list[int]]:
    """``ranking`` as a list of groups of item ids (shape only; the images are checked under the lock)."""
    if not isinstance(ranking, (list, tuple)) or not ranking:
        raise InvalidInput("ranking must be a non-empty list of image ids (or lists of tied ids), best first.",
                           field="ranking")
    groups = []
    for place, entry in enumerate(ranking, start=1):
        group = list(entry) if isinstance(entry, (list, tuple)) else [entry]
        if not group:
            raise InvalidInput(f"ranking place {place} is an empty group.", field="ranking")
        if not all(is_whole_number(i) for i in group):
            raise InvalidInput(f"ranking place {place}: image ids are whole numbers.", field="ranking")
        groups.append(group)
    if sum(len(g) for g in groups) > RANK_MAX_ITEMS:
        raise InvalidInput(f"ranking names more than {RANK_MAX_ITEMS} images; a rank task shows at most "
                           f"{RANK_MAX_ITEMS}.", field="ranking")
    return groups


def _check_permutation(groups: list[list[int]], shown: list[int]) -> None:
    seen: set[int] = set()
    for group in groups:
        for item_id in group:
            if item_id in seen:
                raise InvalidInput(f"ranking names image {item_id} twice: give every image one place.",
                                   field="ranking")
            seen.add(item_id)
    unknown = [i for g in groups for i in g if i not in set(shown)]
    if unknown:
        raise InvalidInput(f"ranking names image {unknown[0]}, which this task does not show.", field="ranking")
    missing = [i for i in shown if i not in seen]
    if missing:
        raise InvalidInput(f"ranking leaves out image{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(map(str, missing))}: rank every image shown.", field="ranking")


def _after_rank_answer(answer: RankAnswer) -> None:
    """A ranking feeds the pairwise fits (rank breaking): ask for a refit, as a judgment does. A ranking
    of a pool's task (a calibration round) is not study data: its pool is told instead."""
    from ranking.services import fit_refit_requested, pool_answer_stored  # ranking depends on annotator

    pool_id = Task.objects.filter(pk=answer.task_id).values_list("pool_id", flat=True).first()
    if pool_id is not None:
        pool_answer_stored(pool_id=pool_id)
    else:
        fit_refit_requested(project_id=answer.project_id)
