"""Adaptive pair selection: the next pairs where one more comparison tells the most.

Planned from the project's newest Bradley–Terry fit by :func:`ranking.core.adaptive.plan_pairs` (the
expected reduction of each pair's 95% CI width, with a floor so that no pair is ever starved):

- ``target="items"``: pairs of current images not yet paired in a task, weighted by the image-level
  strengths and standard errors (an image the fit has not seen gets strength 0 and the prior's SE);
- ``target="models"``: pairs of source models weighted by the model-level fit (``summary["model_ranking"]``),
  each turned into two of their images compared least so far.

A project with ``adaptive_batch > 0`` is re-planned on the workers: once a fit has been stored (right
after its finishing transaction commits, so automatic refits coalesce the planning too), when fewer
open places than the batch are left, :func:`adaptive_after_fit` adds the next batch.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from django.db import transaction
from django.db.models import F, Sum, Value
from django.db.models.functions import Greatest

from annotator.errors import InvalidInput
from annotator.models import Item, Project, Task, TaskKind
from ranking.core.adaptive import model_pairs_to_items, plan_pairs
from ranking.models import DEFAULT_ALPHA, FitModel, FitRun, FitStatus, ItemScore

#: Image-level planning considers at most this many candidate pairs (a random subset beyond it).
MAX_CANDIDATES = 200_000
#: Image-level planning is for projects of at most this many current images (a dense count matrix).
MAX_ITEMS = 3000


def _latest_fit(project: Project) -> FitRun | None:
    return (FitRun.objects.filter(project=project, model=FitModel.BT, status=FitStatus.SUCCEEDED)
            .order_by("-finished_at", "-id").first())


def _pair_counts(project: Project, index: dict[int, int], n: int) -> np.ndarray:
    """Comparisons planned so far per pair: each pairwise task's places (its overlap) count as given."""
    counts = np.zeros((n, n))
    for a, b, assigned in (Task.objects.filter(project=project, kind=TaskKind.PAIRWISE, pool__isnull=True, check_kind="")
                           .values_list("item_a_id", "item_b_id", "n_assigned")):
        i, j = index.get(a), index.get(b)
        if i is not None and j is not None:
            counts[i, j] += max(assigned, 1)
            counts[j, i] = counts[i, j]
    return counts


def adaptive_pairs_plan(*, project: Project, budget: int, target: str = "items",
                        random_state: int | None = None) -> list[tuple[int, int]]:
    """Up to ``budget`` pairs of item ids, chosen where they shrink the uncertainty most (see the module)."""
    if target not in ("items", "models"):
        raise InvalidInput("target must be items or models.", field="target")
    fit = _latest_fit(project)
    if fit is None:
        raise InvalidInput("Adaptive pairs are planned from a fit: make some pairs first (e.g. random ones) and "
                           "wait for the first Bradley–Terry fit.", field="strategy")
    rng = np.random.default_rng(random_state)
    items = list(Item.objects.filter(project=project, retired_at__isnull=True).order_by("id")
                 .values_list("id", "source_model"))
    ids = [i for i, _ in items]
    index = {item_id: k for k, item_id in enumerate(ids)}
    if target == "models":
        return _plan_models(project, fit, items, index, budget, rng)
    n = len(ids)
    if n < 2:
        raise InvalidInput("Adaptive pairs need at least two current images.", field="strategy")
    if n > MAX_ITEMS:
        raise InvalidInput(f"Image-level adaptive pairs are for projects of up to {MAX_ITEMS:,} images; this one "
                           f"has {n:,}. Rank the source models instead (target models).", field="target")
    alpha = float(fit.params.get("alpha", DEFAULT_ALPHA)) or DEFAULT_ALPHA
    strengths = np.zeros(n)
    se = np.full(n, 1 / math.sqrt(alpha))  # an image the fit has not seen: the prior
    for item_id, strength, item_se in ItemScore.objects.filter(fit=fit).values_list("item_id", "strength", "se"):
        k = index.get(item_id)
        if k is not None:
            strengths[k] = strength
            if item_se is not None:
                se[k] = item_se
    counts = _pair_counts(project, index, n)
    paired = counts > 0
    total = n * (n - 1) // 2
    if total <= MAX_CANDIDATES:
        candidates = np.array([(i, j) for i, j in itertools.combinations(range(n), 2) if not paired[i, j]],
                              dtype=np.int64).reshape(-1, 2)
    else:
        raw = rng.integers(0, n, size=(MAX_CANDIDATES * 2, 2))
        raw = np.sort(raw[raw[:, 0] != raw[:, 1]], axis=1)
        raw = np.unique(raw, axis=0)
        candidates = raw[~paired[raw[:, 0], raw[:, 1]]][:MAX_CANDIDATES]
    if candidates.shape[0] == 0:
        return []
    plan = plan_pairs(strengths, se, counts, min(budget, candidates.shape[0]), candidates=candidates,
                      random_state=rng)
    return [(ids[i], ids[j]) for i, j in plan.pairs]


def _plan_models(project, fit, items, index, budget, rng) -> list[tuple[int, int]]:
    ranking = fit.summary.get("model_ranking")
    if not ranking:
        raise InvalidInput("Adaptive pairs for source models need a fit with a model-level ranking: judgments "
                           "between images of at least two models.", field="target")
    names = ranking["models"]
    rows = {r["model"]: r for r in ranking["plain"]["rows"]}
    strengths = np.array([rows[m]["strength"] for m in names])
    se = np.array([rows[m]["se_sandwich"] or rows[m]["se"] or 1.0 for m in names])
    observed = np.array(ranking["win_rates"]["counts"], dtype=float)
    k = len(names)
    pairs = np.array(list(itertools.combinations(range(k), 2)), dtype=np.int64)
    plan = plan_pairs(strengths, se, observed, min(budget, len(pairs)), candidates=pairs, random_state=rng)
    model_of = {name: m for m, name in enumerate(names)}
    item_models = np.array([model_of.get(source, -1) for _, source in items])
    item_counts = np.zeros(len(items))
    for column in ("item_a_id", "item_b_id"):
        for item_id, assigned in (Task.objects.filter(project=project, kind=TaskKind.PAIRWISE, pool__isnull=True, check_kind="")
                                  .values_list(column, "n_assigned")):
            if item_id in index:
                item_counts[index[item_id]] += max(assigned, 1)
    chosen = list(plan.pairs)
    # a budget larger than the number of model pairs draws again (with replacement across batches)
    while len(chosen) < budget:
        more = plan_pairs(strengths, se, observed, min(budget - len(chosen), len(pairs)), candidates=pairs,
                          random_state=rng)
        chosen.extend(more.pairs)
    known = np.flatnonzero(item_models >= 0)  # images of a model the fit has not ranked are left out
    item_pairs = model_pairs_to_items(np.array(chosen), item_models[known], item_counts[known], random_state=rng)
    ids = [items[k][0] for k in known]
    return [(ids[a], ids[b]) for a, b in item_pairs]


def open_places(*, project: Project) -> int:
    """Places still to hand out on the project's own pairwise tasks."""
    total = (Task.objects.filter(project=project, kind=TaskKind.PAIRWISE, pool__isnull=True, check_kind="", is_active=True)
             .aggregate(n=Sum(Greatest(Value(project.overlap) - F("n_assigned"), Value(0))))["n"])
    return int(total or 0)


def adaptive_after_fit(*, project_id: int) -> int:
    """Called in a successful fit's finishing transaction: plan the next batch when the project asks for
    adaptive pairs and its open places run low. Returns the tasks made (0: none needed or none possible)."""
    from annotator import services as annotator_services

    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project_id)  # two fits ending together plan once
        if project.adaptive_batch <= 0 or open_places(project=project) >= project.adaptive_batch:
            return 0
        try:
            return annotator_services.tasks_generate(project=project, strategy="adaptive",
                                                     budget=project.adaptive_batch, target=project.adaptive_target)
        except InvalidInput:
            return 0  # e.g. no model-level ranking yet: the next fit tries again
