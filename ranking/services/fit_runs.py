"""Writes for fits: requests (coalesced), the backstop sweep, and executing a FitRun.

Executing goes through :func:`ranking.jobs.job_run` (lease, heartbeat, results stored in the same
transaction that marks the run succeeded). Idempotent: a run that is finished, held by a live
lease, or superseded by a newer automatic request for the same project and model is left alone,
so a message delivered twice fits once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, OuterRef, Q, Subquery
from django.utils import timezone

from annotator import sql as hot_sql
from annotator.errors import InvalidInput
from annotator.models import DEMOGRAPHIC_FIELDS, Project, RankAnswer
from ranking import jobs, loaders
from ranking.core.bt import fit_bt
from ranking.core.errors import ConvergenceError
from ranking.core.pairwise import comparison_components, outcome_counts
from ranking.loaders import ComparisonData
from ranking.models import DEFAULT_ALPHA, FitModel, FitRun, FitStatus, ItemScore, RaterItemOffset
from ranking.services import adaptive_pairs, calibration_reports, model_rankings

log = logging.getLogger(__name__)

KIND = jobs.job_kind_register(name="fit_run", model=FitRun, task_name="ranking.fit_run_execute")
AUTO_REFIT_MODELS = (FitModel.BT,)
MIN_FOR_HOLDOUT = 40  # hierarchical fits hold out judgments for the predictive comparison from this many


# ------------------------------------------------------------------------------------------------
# Requests
# ------------------------------------------------------------------------------------------------


def validate_params(*, model: str, params: dict) -> dict:
    """Normalise fit parameters, refusing unknown keys and out-of-range values."""
    allowed = {"alpha", "half_life_days", "ties", "instruction_version", "demographic_field",
               "demographic_value", "tau", "holdout_fraction", "random_state", "include_repeats",
               "include_rankings"}
    unknown = set(params) - allowed
    if unknown:
        raise InvalidInput(f"Unknown fit parameter: {sorted(unknown)[0]}.", field=sorted(unknown)[0])
    clean: dict = {}
    alpha = params.get("alpha", DEFAULT_ALPHA)
    if not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1e6:
        raise InvalidInput("alpha must be a number ≥ 0.", field="alpha")
    clean["alpha"] = float(alpha)
    half_life = params.get("half_life_days")
    if half_life is not None and (not isinstance(half_life, (int, float)) or half_life <= 0):
        raise InvalidInput("half_life_days must be a positive number of days (or null for no decay).",
                           field="half_life_days")
    clean["half_life_days"] = None if half_life is None else float(half_life)
    ties = params.get("ties", "davidson")
    if ties not in ("davidson", "ignore"):
        raise InvalidInput("ties must be 'davidson' or 'ignore'.", field="ties")
    clean["ties"] = ties
    version = params.get("instruction_version")
    if version is not None and (not isinstance(version, int) or version < 1):
        raise InvalidInput("instruction_version must be a version number.", field="instruction_version")
    clean["instruction_version"] = version
    include_repeats = params.get("include_repeats", False)
    if not isinstance(include_repeats, bool):
        raise InvalidInput("include_repeats must be true or false.", field="include_repeats")
    if include_repeats:  # stored only when set, so the parameters of ordinary fits are unchanged
        clean["include_repeats"] = True
    include_rankings = params.get("include_rankings", True)
    if not isinstance(include_rankings, bool):
        raise InvalidInput("include_rankings must be true or false.", field="include_rankings")
    if not include_rankings:  # rankings (rank breaking) are in by default; stored only when left out
        clean["include_rankings"] = False
    field = params.get("demographic_field")
    if field is not None:
        if field not in DEMOGRAPHIC_FIELDS:
            raise InvalidInput(f"demographic_field must be one of {', '.join(DEMOGRAPHIC_FIELDS)}.",
                               field="demographic_field")
        if not isinstance(params.get("demographic_value"), str):
            raise InvalidInput("demographic_value is needed with demographic_field.", field="demographic_value")
        clean["demographic_field"] = field
        clean["demographic_value"] = params["demographic_value"]
    if model == FitModel.HBT:
        tau = params.get("tau")
        if tau is not None and (not isinstance(tau, (int, float)) or tau <= 0):
            raise InvalidInput("tau must be a positive number (or null to estimate it).", field="tau")
        clean["tau"] = None if tau is None else float(tau)
        holdout = params.get("holdout_fraction", 0.1)
        if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 <= holdout < 0.5:
            raise InvalidInput("holdout_fraction must be a number in [0, 0.5).", field="holdout_fraction")
        clean["holdout_fraction"] = float(holdout)
        random_state = params.get("random_state", 0)
        if isinstance(random_state, bool) or not isinstance(random_state, int) or not 0 <= random_state < 2**32:
            raise InvalidInput("random_state must be a whole number from 0 to 2³²−1 (the holdout split's seed).",
                               field="random_state")
        clean["random_state"] = random_state
    return clean


def fit_refit_requested(*, project_id: int) -> None:
    """New data arrived: make sure one automatic fit is pending per (project, model).

    Called inside the judgment's transaction; the FitRun row is written there (the outbox) and
    published to the broker only after commit, with a short timeout, so a broker outage never fails
    or holds up the judgment. A burst of judgments shares one pending FitRun (a partial unique
    constraint guarantees it).
    """
    for model in AUTO_REFIT_MODELS:
        if _automatic_fit_pending(project_id=project_id, model=model):
            continue
        try:
            with transaction.atomic():
                run = FitRun.objects.create(project_id=project_id, model=model, automatic=True,
                                            params=validate_params(model=model, params={}))
        except IntegrityError:
            continue  # another judgment created it concurrently
        # let a burst of judgments land before fitting
        jobs.job_publish_on_commit(run, countdown=settings.PREFLAB_AUTO_FIT_DELAY_S)


def _automatic_fit_pending(*, project_id: int, model: str) -> bool:
    """``FitRun.objects.filter(project_id=…, model=…, status=QUEUED, automatic=True).exists()``, hand-written: it
    runs with every answer (see :mod:`annotator.sql`), and the ORM's query building costs more than the look-up."""
    qn = connection.ops.quote_name
    return hot_sql.one(f"SELECT 1 FROM {qn(FitRun._meta.db_table)} WHERE {qn('project_id')} = %s"
                       f" AND {qn('model')} = %s AND {qn('status')} = %s AND {qn('automatic')} = %s LIMIT 1",
                       [project_id, model, FitStatus.QUEUED.value, True], connection) is not None


def fit_run_request(*, project: Project, model: str = FitModel.BT, params: dict | None = None) -> FitRun:
    """A person asks for a fit. Published to the workers after commit."""
    if model not in FitModel.values:
        raise InvalidInput(f"model must be one of {', '.join(FitModel.values)}.", field="model")
    clean = validate_params(model=model, params=params or {})
    with transaction.atomic():
        run = FitRun.objects.create(project=project, model=model, params=clean, automatic=False)
        jobs.job_publish_on_commit(run)
    return run


def fit_sweep() -> int:
    """Backstop: request an automatic fit for projects whose judgments or rankings are newer than their last fit.

    Projects with a queued or running BT fit are skipped: the job sweep (:func:`ranking.jobs.jobs_sweep`)
    publishes or takes over those, so a stale row never blocks the project for long. Returns the
    number of projects for which a fit was requested.
    """
    succeeded = FitRun.objects.filter(project=OuterRef("pk"), model=FitModel.BT, status=FitStatus.SUCCEEDED)
    newest_cutoff = succeeded.order_by("-cutoff_judgment_id").values("cutoff_judgment_id")[:1]
    newest_ranking_cutoff = (succeeded.filter(cutoff_ranking_id__isnull=False).order_by("-cutoff_ranking_id")
                             .values("cutoff_ranking_id")[:1])
    # the study's rankings only (as loaders.latest_ranking_id): a calibration round's rankings are never fitted, so
    # counting them made every sweep refit a project with a round (the fit's ranking cut-off stays behind them)
    latest_ranking = (RankAnswer.objects.filter(project=OuterRef("pk"), task__pool__isnull=True)
                      .order_by("-id").values("id")[:1])
    pending = FitRun.objects.filter(model=FitModel.BT, status__in=[FitStatus.QUEUED, FitStatus.RUNNING])
    stale = (
        Project.objects.annotate(latest=Max("judgments__id"), fitted=Subquery(newest_cutoff),
                                 latest_ranking=Subquery(latest_ranking),
                                 fitted_ranking=Subquery(newest_ranking_cutoff))
        .filter(Q(latest__isnull=False) | Q(latest_ranking__isnull=False))
        .exclude(pk__in=pending.values("project_id"))
    )
    count = 0
    for project_id, latest, fitted, latest_ranking, fitted_ranking in stale.values_list(
            "pk", "latest", "fitted", "latest_ranking", "fitted_ranking"):
        new_judgments = latest is not None and (fitted is None or latest > fitted)
        new_rankings = latest_ranking is not None and (fitted_ranking is None or latest_ranking > fitted_ranking)
        if new_judgments or new_rankings:
            with transaction.atomic():
                fit_refit_requested(project_id=project_id)
            count += 1
    return count


# ------------------------------------------------------------------------------------------------
# Execution
# ------------------------------------------------------------------------------------------------


def _prepare(run: FitRun) -> bool:
    """Under the claim's lock: supersede an automatic run that a newer one replaces; fix the cut-offs (the
    newest judgment, and the newest ranking unless the parameters leave rankings out)."""
    newer = FitRun.objects.filter(project_id=run.project_id, model=run.model, pk__gt=run.pk, automatic=True)
    if run.automatic and newer.exists():
        run.status = FitStatus.SUPERSEDED
        run.finished_at = timezone.now()
        return False
    run.cutoff_judgment_id = loaders.latest_judgment_id(project_id=run.project_id)
    if run.params.get("include_rankings", True):
        run.cutoff_ranking_id = loaders.latest_ranking_id(project_id=run.project_id)
    return True


def fit_run_execute(*, fit_run_id: int) -> None:
    """Run one FitRun (the Celery task's body). Idempotent; see :func:`ranking.jobs.job_run`."""
    jobs.job_run(kind=KIND.name, job_id=fit_run_id, body=_fit, prepare=_prepare)


def _fit(run: FitRun, lease: jobs.Lease) -> jobs.Outcome:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if run.cutoff_judgment_id is None and run.cutoff_ranking_id is None:
        raise InvalidInput("There are no judgments or rankings to fit yet.", field="params")
    data = loaders.comparison_data(project_id=run.project_id, cutoff_judgment_id=run.cutoff_judgment_id,
                                   cutoff_ranking_id=run.cutoff_ranking_id,
                                   params={**run.params, "ties": run.params.get("ties", "davidson")})
    timings["load_s"] = time.perf_counter() - t0
    lease.progress(0.2)
    if run.model == FitModel.HBT:
        return _fit_hbt(run=run, data=data, timings=timings, progress=lease.progress)
    return _fit_bt(run=run, data=data, timings=timings, progress=lease.progress)


def _item_scores(*, run: FitRun, data: ComparisonData, strengths, se, ci_low, ci_high) -> list[ItemScore]:
    n = len(data.item_ids)
    wins, losses, ties = outcome_counts(winners=data.winners, losers=data.losers, tied=data.tied, n_items=n,
                                        weights=data.weights)
    counts = np.bincount(np.concatenate([data.winners, data.losers]), minlength=n)
    order = np.argsort(-strengths, kind="stable")
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(1, len(order) + 1)

    def val(arr, i):
        return None if arr is None else float(arr[i])

    return [
        ItemScore(fit=run, item_id=int(data.item_ids[i]), strength=float(strengths[i]), se=val(se, i),
                  ci_low=val(ci_low, i), ci_high=val(ci_high, i), rank=int(rank[i]), wins=float(wins[i]),
                  losses=float(losses[i]), ties=float(ties[i]), n_judgments=int(counts[i]))
        for i in range(n)
    ]


def _data_summary(data: ComparisonData) -> dict:
    from_ranking = 0 if data.from_ranking is None else int(data.from_ranking.sum())
    return {
        "n_comparisons": len(data.winners),
        "n_judgments": len(data.judgment_ids),
        "n_rankings": len(data.ranking_ids),
        "n_ranking_pairs": from_ranking,
        "n_ties": int(data.tied.sum()),
        "n_items": len(data.item_ids),
        "n_raters": len(data.rater_ids),
        "n_components": comparison_components(winners=data.winners, losers=data.losers,
                                              n_items=len(data.item_ids)),
    }


def _fit_bt(*, run: FitRun, data: ComparisonData, timings: dict, progress: Callable[[float], None]) -> jobs.Outcome:
    t0 = time.perf_counter()
    fit = fit_bt(data.winners, data.losers, len(data.item_ids), tied=data.tied if data.tied.any() else None,
                 weights=data.weights, alpha=run.params.get("alpha", DEFAULT_ALPHA),
                 compute_se=True)  # exact up to 1,500 items, certified within 0.5 % above (ranking.core.bt)
    timings["fit_s"] = time.perf_counter() - t0
    progress(0.8)
    scores = _item_scores(run=run, data=data, strengths=fit.strengths, se=fit.se, ci_low=fit.ci_low,
                          ci_high=fit.ci_high)

    def store(job: FitRun) -> None:
        t0 = time.perf_counter()
        ItemScore.objects.filter(fit=job).delete()
        ItemScore.objects.bulk_create(scores, batch_size=2000)
        timings["store_s"] = time.perf_counter() - t0
        job.summary = summary | {"timings": {k: round(v, 4) for k, v in timings.items()}}
        calibration_reports.calibration_report_after_new_data(project_id=job.project_id)
        project_id = job.project_id  # the next adaptive batch is planned from this fit, once it is stored
        transaction.on_commit(lambda: adaptive_pairs.adaptive_after_fit(project_id=project_id))

    summary = {**_data_summary(data), "log_likelihood": float(fit.log_likelihood), "tie_param": fit.tie_param,
               "n_iter": int(fit.n_iter), "se_method": fit.se_method, "se_error_bound": fit.se_error_bound}
    t0 = time.perf_counter()
    try:
        summary["model_ranking"] = model_rankings.model_ranking_compute(
            data=data, attributes=loaders.item_attributes(item_ids=data.item_ids),
            alpha=run.params.get("alpha", DEFAULT_ALPHA), random_state=run.pk)
    except (ValueError, ConvergenceError) as exc:  # the image-level fit stands; the page says why
        summary["model_ranking"] = None
        summary["model_ranking_error"] = str(exc)
    timings["models_s"] = time.perf_counter() - t0
    return jobs.Outcome(store=store, fields={"summary": summary})


def _fit_hbt(*, run: FitRun, data: ComparisonData, timings: dict, progress: Callable[[float], None]) -> jobs.Outcome:
    """Hierarchical fit: first on a hold-out split (the predictive comparison, and τ), then on all data."""
    # imported here: the hierarchical fit runs in torch, whose import costs ~1 s and ~300 MB of resident
    # memory — every web process and every other job would otherwise pay it without using it
    from ranking.core.hbt import fit_hbt, heldout_log_loss

    params = run.params
    n_items, n_raters = len(data.item_ids), len(data.rater_ids)
    tied = data.tied if data.tied.any() else None
    alpha = max(params.get("alpha", DEFAULT_ALPHA), 1e-6)  # the hierarchical model needs a proper prior
    tau = params.get("tau")
    predictive = None
    m = len(data.winners)
    holdout = params.get("holdout_fraction", 0.1)
    if holdout and m >= MIN_FOR_HOLDOUT:
        t0 = time.perf_counter()
        rng = np.random.default_rng(params.get("random_state", 0))
        test = rng.random(m) < holdout
        train = ~test
        fit = fit_hbt(data.winners[train], data.losers[train], data.raters[train], n_items, n_raters,
                      tied=None if tied is None else tied[train],
                      weights=None if data.weights is None else data.weights[train],
                      tau=tau, alpha=alpha, random_state=params.get("random_state", 0))
        result = heldout_log_loss(fit, data.winners[test], data.losers[test], data.raters[test],
                                  tied=None if tied is None else tied[test])
        per_rater_gain = result["per_rater_population_log_loss"] - result["per_rater_personal_log_loss"]
        judged = ~np.isnan(per_rater_gain)
        predictive = {
            "n_train": int(train.sum()),
            "n_test": int(test.sum()),
            "tau": float(fit.tau),
            "personal_log_loss": result["personal_log_loss"],
            "population_log_loss": result["population_log_loss"],
            "personal_accuracy": result["personal_accuracy"],
            "population_accuracy": result["population_accuracy"],
            "raters_better_personal": int((per_rater_gain[judged] > 0).sum()),
            "raters_with_test_data": int(judged.sum()),
        }
        timings["holdout_s"] = time.perf_counter() - t0
        tau = fit.tau if tau is None else tau
        progress(0.5)
    t0 = time.perf_counter()
    fit = fit_hbt(data.winners, data.losers, data.raters, n_items, n_raters, tied=tied, weights=data.weights,
                  tau=tau, alpha=alpha, random_state=params.get("random_state", 0))
    timings["fit_s"] = time.perf_counter() - t0
    progress(0.8)
    scores = _item_scores(run=run, data=data, strengths=fit.strengths, se=None, ci_low=None, ci_high=None)
    offsets = [RaterItemOffset(fit=run, rater_id=int(data.rater_ids[r]), item_id=int(data.item_ids[i]),
                               offset=float(u))
               for r, i, u in zip(fit.offset_raters, fit.offset_items, fit.offsets)]
    summary = {
        **_data_summary(data),
        "tau": float(fit.tau),
        "tau_selection": "cross-validation" if params.get("tau") is None else "given",
        "tie_param": fit.tie_param,
        "log_posterior": float(fit.log_posterior),
        "n_iter": int(fit.n_iter),
        "n_offsets": len(offsets),
        "predictive": predictive,
    }

    def store(job: FitRun) -> None:
        t0 = time.perf_counter()
        ItemScore.objects.filter(fit=job).delete()
        ItemScore.objects.bulk_create(scores, batch_size=2000)
        RaterItemOffset.objects.filter(fit=job).delete()
        RaterItemOffset.objects.bulk_create(offsets, batch_size=5000)
        timings["store_s"] = time.perf_counter() - t0
        job.summary = summary | {"timings": {k: round(v, 4) for k, v in timings.items()}}

    return jobs.Outcome(store=store, fields={"summary": summary})
