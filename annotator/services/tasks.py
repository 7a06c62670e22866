"""Task generation: pairwise tasks (within prompts, random pairs, an uploaded pair list) and one
rich-feedback or checklist task per item (rank tasks: :mod:`annotator.services.ranks`, also reached
through :func:`tasks_generate`). Retired items are never put in a new task."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence

from django.db import transaction

from annotator.errors import InvalidInput
from annotator.models import SINGLE_ITEM_KINDS, Project, Task, TaskKind
from annotator.services.projects import project_update
from annotator.services.ranks import tasks_generate_rank

MAX_TASKS_PER_GENERATION = 1_000_000


def _create_pairs(*, project: Project, pairs: Iterable[tuple[int, int]], random_state: int | None) -> int:
    rng = random.Random(random_state)
    normalised = {(min(a, b), max(a, b)) for a, b in pairs if a != b}
    if len(normalised) > MAX_TASKS_PER_GENERATION:
        raise InvalidInput(f"At most {MAX_TASKS_PER_GENERATION} tasks can be generated at once.", field="pairs")
    existing = set(  # a quality check on the same two images is no task of the study
        Task.objects.filter(project=project, kind=TaskKind.PAIRWISE, check_kind="", pool__isnull=True)
        .values_list("item_a_id", "item_b_id")
    )
    new = sorted(normalised - existing)
    Task.objects.bulk_create(
        [
            Task(project=project, kind=TaskKind.PAIRWISE, item_a_id=a, item_b_id=b,
                 shuffle_key=rng.randrange(2**31))
            for a, b in new
        ],
        batch_size=2000,
    )
    return len(new)


def tasks_generate_within_prompt(*, project: Project, random_state: int | None = None) -> int:
    """All pairs of items that share a prompt. Returns the number of new tasks."""
    by_prompt: dict[str, list[int]] = defaultdict(list)
    for item_id, prompt in project.items.filter(retired_at__isnull=True).values_list("id", "prompt"):
        by_prompt[prompt].append(item_id)
    pairs = itertools.chain.from_iterable(itertools.combinations(ids, 2) for ids in by_prompt.values())
    with transaction.atomic():
        return _create_pairs(project=project, pairs=pairs, random_state=random_state)


def tasks_generate_random(*, project: Project, budget: int, same_prompt: bool = False,
                          random_state: int | None = None) -> int:
    """Up to ``budget`` distinct random pairs (optionally only within a prompt)."""
    if not isinstance(budget, int) or not 1 <= budget <= MAX_TASKS_PER_GENERATION:
        raise InvalidInput(f"budget must be from 1 to {MAX_TASKS_PER_GENERATION}.", field="budget")
    rng = random.Random(random_state)
    groups: dict[str, list[int]] = defaultdict(list)
    for item_id, prompt in project.items.filter(retired_at__isnull=True).values_list("id", "prompt"):
        groups[prompt if same_prompt else ""].append(item_id)
    pools = [ids for ids in groups.values() if len(ids) >= 2]
    if not pools:
        raise InvalidInput("The project needs at least two items (sharing a prompt, if asked) to make pairs.",
                           field="budget")
    possible = sum(len(ids) * (len(ids) - 1) // 2 for ids in pools)
    budget = min(budget, possible)
    weights = [len(ids) * (len(ids) - 1) / 2 for ids in pools]
    chosen: set[tuple[int, int]] = set()
    attempts = 0
    while len(chosen) < budget and attempts < budget * 50:
        attempts += 1
        ids = rng.choices(pools, weights=weights)[0]
        a, b = rng.sample(ids, 2)
        chosen.add((min(a, b), max(a, b)))
    with transaction.atomic():
        return _create_pairs(project=project, pairs=chosen, random_state=random_state)


def tasks_generate_from_pairs(*, project: Project, pairs: Sequence[tuple[str, str]],
                              random_state: int | None = None) -> int:
    """Pairs named by item file name, sha256 or id. Every name must resolve, or nothing is created."""
    lookup: dict[str, int] = {}
    retired: set[int] = set()
    for item_id, name, sha, retired_at in project.items.values_list("id", "original_name", "sha256", "retired_at"):
        lookup[str(item_id)] = item_id
        lookup[sha] = item_id
        lookup.setdefault(name, item_id)
        if retired_at is not None:
            retired.add(item_id)
    resolved = []
    for line, (a, b) in enumerate(pairs, start=1):
        missing = [ref for ref in (a, b) if ref not in lookup]
        if missing:
            raise InvalidInput(f"Pair list line {line}: no item named '{missing[0]}' in this project.", field="pairs")
        gone = [ref for ref in (a, b) if lookup[ref] in retired]
        if gone:
            raise InvalidInput(f"Pair list line {line}: the image '{gone[0]}' is retired.", field="pairs")
        if lookup[a] == lookup[b]:
            raise InvalidInput(f"Pair list line {line}: an item cannot be compared with itself.", field="pairs")
        resolved.append((lookup[a], lookup[b]))
    if not resolved:
        raise InvalidInput("The pair list is empty.", field="pairs")
    with transaction.atomic():
        return _create_pairs(project=project, pairs=resolved, random_state=random_state)


def tasks_generate(*, project: Project, strategy: str, budget: int | None = None, same_prompt: bool = False,
                   pairs=None, overlap: int | None = None, random_state: int | None = None,
                   k: int | None = None, n_tasks: int | None = None, target: str = "items") -> int:
    """Make pairwise tasks by one of the strategies, or rank tasks (``strategy="rank"``: ``n_tasks`` tasks of
    ``k`` images, :func:`annotator.services.ranks.tasks_generate_rank`); optionally setting overlap first."""
    if strategy == "rank":
        if k is None or n_tasks is None:
            raise InvalidInput("Rank tasks need k (images per task) and n_tasks.", field="k" if k is None else "n_tasks")
        return tasks_generate_rank(project=project, k=k, n_tasks=n_tasks, same_prompt=same_prompt,
                                   overlap=overlap, random_state=random_state)
    if overlap is not None:
        project_update(project=project, overlap=overlap)
    if strategy == "within_prompt":
        return tasks_generate_within_prompt(project=project, random_state=random_state)
    if strategy == "random":
        return tasks_generate_random(project=project, budget=budget, same_prompt=same_prompt,
                                     random_state=random_state)
    if strategy == "adaptive":
        return tasks_generate_adaptive(project=project, budget=budget, target=target, random_state=random_state)
    return tasks_generate_from_pairs(project=project, pairs=[tuple(p) for p in pairs], random_state=random_state)


def tasks_generate_adaptive(*, project: Project, budget: int, target: str = "items",
                            random_state: int | None = None) -> int:
    """Up to ``budget`` new pairs where one more comparison shrinks the uncertainty most, planned from the
    project's newest fit (:func:`ranking.services.adaptive_pairs.adaptive_pairs_plan`). Returns tasks made."""
    from ranking.services.adaptive_pairs import adaptive_pairs_plan  # ranking depends on annotator

    if not isinstance(budget, int) or isinstance(budget, bool) or not 1 <= budget <= MAX_TASKS_PER_GENERATION:
        raise InvalidInput(f"budget must be from 1 to {MAX_TASKS_PER_GENERATION}.", field="budget")
    with transaction.atomic():
        pairs = adaptive_pairs_plan(project=project, budget=budget, target=target, random_state=random_state)
        return _create_pairs(project=project, pairs=pairs, random_state=random_state)


def tasks_generate_single(*, project: Project, kind: str, overlap: int | None = None,
                          random_state: int | None = None) -> int:
    """One task of ``kind`` (rich or checklist) per item that has none yet. Returns the number created.

    Each task is answered by ``overlap`` raters (RichHF-18K used 3); pass ``overlap`` to set it first.
    """
    if kind not in SINGLE_ITEM_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(SINGLE_ITEM_KINDS)}.", field="kind")
    if kind == TaskKind.CHECKLIST and not project.checklist:
        raise InvalidInput("Define the checklist questions before making checklist tasks.", field="checklist")
    if overlap is not None:
        project_update(project=project, overlap=overlap)
    rng = random.Random(random_state)
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        have = set(Task.objects.filter(project=project, kind=kind).values_list("item_a_id", flat=True))
        new = [i for i in project.items.filter(retired_at__isnull=True).order_by("id").values_list("id", flat=True)
               if i not in have]
        if len(new) > MAX_TASKS_PER_GENERATION:
            raise InvalidInput(f"At most {MAX_TASKS_PER_GENERATION} tasks can be generated at once.", field="kind")
        Task.objects.bulk_create(
            [Task(project=project, kind=kind, item_a_id=i, item_b_id=None, shuffle_key=rng.randrange(2**31))
             for i in new],
            batch_size=2000,
        )
    return len(new)
