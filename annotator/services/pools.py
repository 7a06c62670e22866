"""Task pools: tasks kept apart from a project's own stream, with raters of their own.

A calibration round is one: :func:`pool_create_rank` makes the pool and its one rank task (the round's
sample, every rater ranking all of it); raters join it by its link (:func:`rater_join` with ``pool``) or,
for staff, from the app (:func:`rater_staff_for_pool`).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from annotator.errors import InvalidInput
from annotator.models import RANK_MAX_ITEMS, RANK_MIN_ITEMS, Item, Project, Task, TaskItem, TaskKind, TaskPool
from annotator.services.answers import is_whole_number

MAX_POOL_RATERS = 1000


def pool_create_rank(*, project: Project, label: str, item_ids: Sequence[int], max_raters: int) -> TaskPool:
    """A new pool holding one rank task of ``item_ids`` (3–10 distinct, non-retired images of the project,
    kept in the given order as the task's positions), which up to ``max_raters`` raters may rank."""
    ids = list(item_ids)
    if not RANK_MIN_ITEMS <= len(ids) <= RANK_MAX_ITEMS:
        raise InvalidInput(f"A rank task shows from {RANK_MIN_ITEMS} to {RANK_MAX_ITEMS} images; "
                           f"{len(ids)} were given.", field="item_ids")
    if len(set(ids)) != len(ids):
        raise InvalidInput("The images of a rank task must be distinct.", field="item_ids")
    if not is_whole_number(max_raters) or not 1 <= max_raters <= MAX_POOL_RATERS:
        raise InvalidInput(f"max_raters must be from 1 to {MAX_POOL_RATERS}.", field="max_raters")
    found = set(Item.objects.filter(project=project, pk__in=ids, retired_at__isnull=True)
                .values_list("pk", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        raise InvalidInput(f"Image {missing[0]} is not a current (non-retired) image of this project.",
                           field="item_ids")
    with transaction.atomic():
        pool = TaskPool.objects.create(project=project, label=label[:200])
        task = Task.objects.create(project=project, kind=TaskKind.RANK, item_a_id=ids[0], pool=pool,
                                   max_raters=max_raters)
        TaskItem.objects.bulk_create([TaskItem(task=task, item_id=item_id, position=position)
                                      for position, item_id in enumerate(ids)])
    return pool


def pool_set_open(*, pool: TaskPool, is_open: bool) -> TaskPool:
    """Open or close the pool's link (staff already ranking are not affected)."""
    pool.is_open = is_open
    pool.save(update_fields=["is_open"])
    return pool


def pool_set_max_raters(*, pool: TaskPool, max_raters: int) -> None:
    if not is_whole_number(max_raters) or not 1 <= max_raters <= MAX_POOL_RATERS:
        raise InvalidInput(f"max_raters must be from 1 to {MAX_POOL_RATERS}.", field="max_raters")
    Task.objects.filter(pool=pool).update(max_raters=max_raters)
