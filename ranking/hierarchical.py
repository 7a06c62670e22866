"""Hierarchical (per-rater) Bradley–Terry fits in the app: hold-out comparison, then the full fit."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from django.db import transaction

from ranking.core.hbt import fit_hbt, heldout_log_loss
from ranking.models import FitRun, RaterItemOffset

MIN_FOR_HOLDOUT = 40


def fit_and_store_hbt(*, run: FitRun, data, timings: dict, progress: Callable[[float], None]) -> dict:
    from ranking.fitting import _store_item_scores, comparison_components

    params = run.params
    n_items, n_raters = len(data.item_ids), len(data.rater_ids)
    tied = data.tied if data.tied.any() else None
    alpha = max(params.get("alpha", 0.01), 1e-6)  # the hierarchical model needs a proper prior
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
    t0 = time.perf_counter()
    _store_item_scores(run=run, data=data, strengths=fit.strengths, se=None, ci_low=None, ci_high=None)
    with transaction.atomic():
        RaterItemOffset.objects.filter(fit=run).delete()
        RaterItemOffset.objects.bulk_create([
            RaterItemOffset(fit=run, rater_id=int(data.rater_ids[r]), item_id=int(data.item_ids[i]), offset=float(u))
            for r, i, u in zip(fit.offset_raters, fit.offset_items, fit.offsets)
        ], batch_size=5000)
    timings["store_s"] = time.perf_counter() - t0
    return {
        "n_comparisons": int(m),
        "n_ties": int(data.tied.sum()),
        "n_items": n_items,
        "n_raters": n_raters,
        "n_components": comparison_components(data),
        "tau": float(fit.tau),
        "tau_selection": "cross-validation" if params.get("tau") is None else "given",
        "tie_param": float(fit.tie_param) if tied is not None else None,
        "log_posterior": float(fit.log_posterior),
        "n_iter": int(fit.n_iter),
        "n_offsets": int(len(fit.offsets)),
        "predictive": predictive,
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }
