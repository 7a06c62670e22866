"""Writes for the ranking app: fit requests (coalesced), fit execution and its results."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from ranking.models import FitModel, FitRun, FitStatus

AUTO_REFIT_MODELS = (FitModel.BT,)


def fit_refit_requested(*, project_id: int) -> None:
    """New data arrived: make sure one automatic fit is pending per (project, model).

    Called inside the judgment's transaction. A burst of judgments shares one pending
    FitRun (a partial unique constraint guarantees it); the fit is queued to Celery
    only after the transaction that created it commits.
    """
    for model in AUTO_REFIT_MODELS:
        pending = FitRun.objects.filter(project_id=project_id, model=model, status=FitStatus.QUEUED, automatic=True)
        if pending.exists():
            continue
        from ranking.fitting import validate_params

        try:
            with transaction.atomic():
                run = FitRun.objects.create(project_id=project_id, model=model, automatic=True,
                                            params=validate_params(model=model, params={}))
        except IntegrityError:
            continue  # another judgment created it concurrently
        delay = settings.PREFLAB_AUTO_FIT_DELAY_S  # let a burst of judgments land before fitting
        transaction.on_commit(lambda run_id=run.pk: _enqueue(run_id, countdown=delay))


def _enqueue(fit_run_id: int, *, countdown: float = 0) -> None:
    from ranking.tasks import fit_run_execute

    fit_run_execute.apply_async((fit_run_id,), countdown=countdown or None)


def fit_run_request(*, project, model: str = FitModel.BT, params: dict | None = None) -> FitRun:
    """A person asks for a fit. Queued to Celery after commit."""
    from ranking.fitting import validate_params

    if model not in FitModel.values:
        from annotator.errors import InvalidInput

        raise InvalidInput(f"model must be one of {', '.join(FitModel.values)}.", field="model")
    clean = validate_params(model=model, params=params or {})
    with transaction.atomic():
        run = FitRun.objects.create(project=project, model=model, params=clean, automatic=False)
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def fit_sweep() -> int:
    """Backstop: queue an automatic fit for projects whose judgments are newer than their last fit.

    Returns the number of projects for which a fit was requested.
    """
    from django.db.models import Max, OuterRef, Subquery

    from annotator.models import Project

    newest_cutoff = (
        FitRun.objects.filter(project=OuterRef("pk"), model=FitModel.BT, status=FitStatus.SUCCEEDED)
        .order_by("-cutoff_judgment_id").values("cutoff_judgment_id")[:1]
    )
    pending = FitRun.objects.filter(model=FitModel.BT, status__in=[FitStatus.QUEUED, FitStatus.RUNNING])
    stale = (
        Project.objects.annotate(latest=Max("judgments__id"), fitted=Subquery(newest_cutoff))
        .filter(latest__isnull=False)
        .exclude(pk__in=pending.values("project_id"))
    )
    count = 0
    for project_id, latest, fitted in stale.values_list("pk", "latest", "fitted"):
        if fitted is None or latest > fitted:
            with transaction.atomic():
                fit_refit_requested(project_id=project_id)
            count += 1
    return count
