"""Executing a FitRun: database rows → arrays → ``ranking.core`` → result rows.

Idempotent: a run that is finished (or superseded by a newer request for the same
project and model) is left alone, so a message delivered twice fits once.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.db import OperationalError, transaction
from django.db.models import Max
from django.utils import timezone

from annotator.errors import InvalidInput
from annotator.models import Demographics, Judgment
from ranking.core.bt import ConvergenceError, decay_weights, fit_bt
from ranking.models import FitModel, FitRun, FitStatus, ItemScore

log = logging.getLogger(__name__)

DEFAULT_ALPHA = 0.01  # weak N(0, 100) prior: keeps early, sparse data fittable
STALE_RUNNING_AFTER = timedelta(hours=1)  # a 'running' run older than this was lost with its worker
ELO_SCALE = 400 / math.log(10)  # strength θ (natural log-odds) to Elo points


class TransientFitError(Exception):
    """A failure worth retrying (the database went away); Celery retries a bounded number of times."""


def validate_params(*, model: str, params: dict) -> dict:
    """Normalise fit parameters, refusing unknown keys and out-of-range values."""
    allowed = {"alpha", "half_life_days", "ties", "instruction_version", "demographic_field",
               "demographic_value", "tau", "holdout_fraction", "random_state", "include_repeats"}
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
    field = params.get("demographic_field")
    if field is not None:
        from annotator.services import DEMOGRAPHIC_FIELDS

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
        if not isinstance(holdout, (int, float)) or not 0 <= holdout < 0.5:
            raise InvalidInput("holdout_fraction must be in [0, 0.5).", field="holdout_fraction")
        clean["holdout_fraction"] = float(holdout)
        clean["random_state"] = int(params.get("random_state", 0))
    return clean


@dataclass(frozen=True)
class ComparisonData:
    """A project's judgments as arrays over a compact item index."""

    item_ids: np.ndarray  # database id of each index
    winners: np.ndarray  # for ties: the left item
    losers: np.ndarray
    tied: np.ndarray
    raters: np.ndarray  # compact rater index
    rater_ids: np.ndarray
    weights: np.ndarray | None
    judgment_ids: np.ndarray


def comparison_data(*, project_id: int, cutoff_judgment_id: int, params: dict, now=None) -> ComparisonData:
    """Load the judgments a fit sees: up to the cut-off, filtered as the parameters say.

    Answers to repeat assignments are left out unless ``params["include_repeats"]``: a repeat
    re-asks a rater a pair they already judged, as a consistency probe, not as an extra vote.
    """
    qs = Judgment.objects.filter(project_id=project_id, id__lte=cutoff_judgment_id, right_item__isnull=False)
    if not params.get("include_repeats"):
        qs = qs.filter(is_repeat=False)
    if params.get("instruction_version"):
        qs = qs.filter(instruction_version__version=params["instruction_version"])
    if params.get("demographic_field"):
        raters = Demographics.objects.filter(**{params["demographic_field"]: params["demographic_value"]})
        qs = qs.filter(rater_id__in=raters.values("rater_id"))
    if params.get("ties") == "ignore":
        qs = qs.filter(is_tie=False)
    rows = list(qs.order_by("id").values_list("id", "left_item_id", "right_item_id", "winner_id", "is_tie",
                                              "rater_id", "submitted_at"))
    if not rows:
        raise InvalidInput("There are no judgments to fit (with these filters).", field="params")
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    left = np.array([r[1] for r in rows], dtype=np.int64)
    right = np.array([r[2] for r in rows], dtype=np.int64)
    winner = np.array([r[3] if r[3] is not None else r[1] for r in rows], dtype=np.int64)
    tied = np.array([r[4] for r in rows], dtype=bool)
    loser = np.where(winner == left, right, left)
    item_ids, inverse = np.unique(np.concatenate([winner, loser]), return_inverse=True)
    m = len(rows)
    rater_ids, rater_index = np.unique(np.array([r[5] for r in rows], dtype=np.int64), return_inverse=True)
    weights = None
    if params.get("half_life_days"):
        now = now or max(r[6] for r in rows)
        ages = np.array([(now - r[6]).total_seconds() / 86400 for r in rows])
        weights = decay_weights(np.clip(ages, 0, None), params["half_life_days"])
    return ComparisonData(item_ids=item_ids, winners=inverse[:m], losers=inverse[m:], tied=tied,
                          raters=rater_index, rater_ids=rater_ids, weights=weights, judgment_ids=ids)


def _set_progress(run_id: int, progress: float) -> None:
    FitRun.objects.filter(pk=run_id).update(progress=round(min(max(progress, 0.0), 1.0), 3))


def _claim(fit_run_id: int) -> FitRun | None:
    """Lock the run and mark it running, or return None if there is nothing to do."""
    with transaction.atomic():
        run = FitRun.objects.select_for_update().filter(pk=fit_run_id).first()
        if run is None:
            return None
        if run.status == FitStatus.RUNNING and run.started_at and timezone.now() - run.started_at < STALE_RUNNING_AFTER:
            return None  # another worker has it
        if run.status not in (FitStatus.QUEUED, FitStatus.RUNNING):
            return None  # finished: a repeated delivery is a no-op
        newer = FitRun.objects.filter(project_id=run.project_id, model=run.model, pk__gt=run.pk,
                                      automatic=run.automatic)
        if run.automatic and newer.exists():
            run.status = FitStatus.SUPERSEDED
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "finished_at"])
            return None
        cutoff = Judgment.objects.filter(project_id=run.project_id).aggregate(m=Max("id"))["m"]
        run.status = FitStatus.RUNNING
        run.started_at = timezone.now()
        run.cutoff_judgment_id = cutoff
        run.progress = 0.05
        run.error = ""
        run.save(update_fields=["status", "started_at", "cutoff_judgment_id", "progress", "error"])
        return run


def fit_run_execute(*, fit_run_id: int) -> None:
    try:
        run = _claim(fit_run_id)
    except OperationalError as exc:
        raise TransientFitError(str(exc)) from exc
    if run is None:
        return
    timings: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        if run.cutoff_judgment_id is None:
            raise InvalidInput("There are no judgments to fit yet.", field="params")
        data = comparison_data(project_id=run.project_id, cutoff_judgment_id=run.cutoff_judgment_id,
                               params={**run.params, "ties": run.params.get("ties", "davidson")})
        timings["load_s"] = time.perf_counter() - t0
        _set_progress(run.pk, 0.2)
        if run.model == FitModel.HBT:
            from ranking.hierarchical import fit_and_store_hbt

            summary = fit_and_store_hbt(run=run, data=data, timings=timings, progress=lambda p: _set_progress(run.pk, p))
        else:
            summary = _fit_and_store_bt(run=run, data=data, timings=timings)
    except OperationalError as exc:
        FitRun.objects.filter(pk=run.pk).update(status=FitStatus.QUEUED, progress=0.0)
        raise TransientFitError(str(exc)) from exc
    except (InvalidInput, ValueError, ConvergenceError) as exc:
        message = exc.message if isinstance(exc, InvalidInput) else str(exc)
        FitRun.objects.filter(pk=run.pk).update(status=FitStatus.FAILED, error=message, finished_at=timezone.now())
        log.info("fit run %s failed: %s", run.pk, message)
        return
    except Exception as exc:  # an unexpected failure is recorded on the run, then re-raised for the logs
        FitRun.objects.filter(pk=run.pk).update(status=FitStatus.FAILED, error=f"{type(exc).__name__}: {exc}",
                                                finished_at=timezone.now())
        raise
    FitRun.objects.filter(pk=run.pk).update(status=FitStatus.SUCCEEDED, progress=1.0, summary=summary,
                                            finished_at=timezone.now())


def outcome_counts(data: ComparisonData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per compact item: (weighted) wins, losses and ties."""
    n = len(data.item_ids)
    w = data.weights if data.weights is not None else np.ones(len(data.winners))
    decided = ~data.tied
    wins = np.bincount(data.winners[decided], weights=w[decided], minlength=n)
    losses = np.bincount(data.losers[decided], weights=w[decided], minlength=n)
    ties = np.bincount(data.winners[data.tied], weights=w[data.tied], minlength=n) + np.bincount(
        data.losers[data.tied], weights=w[data.tied], minlength=n)
    return wins, losses, ties


def _store_item_scores(*, run: FitRun, data: ComparisonData, strengths, se, ci_low, ci_high) -> None:
    wins, losses, ties = outcome_counts(data)
    counts = np.bincount(np.concatenate([data.winners, data.losers]), minlength=len(data.item_ids))
    order = np.argsort(-strengths, kind="stable")
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(1, len(order) + 1)

    def val(arr, i):
        return None if arr is None else float(arr[i])

    with transaction.atomic():
        ItemScore.objects.filter(fit=run).delete()
        ItemScore.objects.bulk_create([
            ItemScore(fit=run, item_id=int(data.item_ids[i]), strength=float(strengths[i]), se=val(se, i),
                      ci_low=val(ci_low, i), ci_high=val(ci_high, i), rank=int(rank[i]), wins=float(wins[i]),
                      losses=float(losses[i]), ties=float(ties[i]), n_judgments=int(counts[i]))
            for i in range(len(data.item_ids))
        ], batch_size=2000)


def comparison_components(data: ComparisonData) -> int:
    """Number of connected groups of items (by any comparison). Strengths compare only within a group."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(data.item_ids)
    graph = coo_matrix((np.ones(len(data.winners)), (data.winners, data.losers)), shape=(n, n))
    return int(connected_components(graph, directed=False)[0])


def _fit_and_store_bt(*, run: FitRun, data: ComparisonData, timings: dict) -> dict:
    t0 = time.perf_counter()
    fit = fit_bt(data.winners, data.losers, len(data.item_ids), tied=data.tied if data.tied.any() else None,
                 weights=data.weights, alpha=run.params.get("alpha", DEFAULT_ALPHA),
                 compute_se=len(data.item_ids) <= 5000)
    timings["fit_s"] = time.perf_counter() - t0
    _set_progress(run.pk, 0.8)
    t0 = time.perf_counter()
    _store_item_scores(run=run, data=data, strengths=fit.strengths, se=fit.se, ci_low=fit.ci_low,
                       ci_high=fit.ci_high)
    timings["store_s"] = time.perf_counter() - t0
    return {
        "n_comparisons": int(len(data.winners)),
        "n_ties": int(data.tied.sum()),
        "n_items": int(len(data.item_ids)),
        "n_raters": int(len(data.rater_ids)),
        "n_components": comparison_components(data),
        "log_likelihood": float(fit.log_likelihood),
        "tie_param": fit.tie_param,
        "n_iter": int(fit.n_iter),
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }
