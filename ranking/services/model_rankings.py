"""The model-level part of a Bradley–Terry fit: which generator (source model) is better.

Computed in the fit job from the same comparisons as the image-level fit (judgments and broken
rankings, with their weights) and stored in the fit's summary (``summary["model_ranking"]``):
strengths per source model from the comparisons between images of *different* models, with
model-based, sandwich (clustered by prompt) and clustered-bootstrap intervals, rank intervals that hold
for all models at once, the same fit with style control (log megapixels and log aspect ratio of the two
images as covariates), per-category fits when images carry ``metadata["category"]``, and the observed and
predicted model-vs-model win rates. See :mod:`ranking.core.model_bt` for the maths.
"""

from __future__ import annotations

import numpy as np

from ranking.core.model_bt import ModelBTFit, fit_model_bt, win_rate_matrix
from ranking.loaders import ComparisonData, ItemAttributes

#: Resamples of the prompt-clustered bootstrap of a model-level fit.
N_BOOTSTRAP = 200
#: A category is fitted on its own when its cross-model comparisons reach this many.
MIN_CATEGORY_COMPARISONS = 30
STYLE_COVARIATES = ("log megapixels", "log aspect ratio")


def _num(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _rows(fit: ModelBTFit, names: list[str], present: np.ndarray) -> list[dict]:
    rows = []
    for k in np.argsort(fit.rank, kind="stable"):
        rows.append({
            "model": names[present[k]], "strength": float(fit.strengths[k]), "se": _num(fit.se[k]),
            "se_sandwich": _num(fit.se_sandwich[k]), "ci_low": _num(fit.ci_low[k]), "ci_high": _num(fit.ci_high[k]),
            "boot_ci_low": _num(fit.boot_ci_low[k]) if fit.boot_ci_low is not None else None,
            "boot_ci_high": _num(fit.boot_ci_high[k]) if fit.boot_ci_high is not None else None,
            "rank": int(fit.rank[k]), "rank_low": int(fit.rank_low[k]), "rank_high": int(fit.rank_high[k]),
        })
    return rows


def _fit_json(fit: ModelBTFit, names: list[str], present: np.ndarray, covariates=()) -> dict:
    out = {"rows": _rows(fit, names, present), "tie_param": _num(fit.tie_param),
           "n_comparisons": int(fit.n_comparisons), "n_groups": int(fit.n_groups)}
    if fit.coef is not None:
        out["coef"] = [{"name": name, "value": float(c), "se": _num(s)}
                       for name, c, s in zip(covariates, fit.coef, fit.coef_se)]
    return out


def model_ranking_compute(*, data: ComparisonData, attributes: ItemAttributes, alpha: float,
                          random_state: int = 0) -> dict | None:
    """The model-level results for a fit's data, JSON-ready; None when there are not two source models
    with comparisons between them (then the leaderboard says so)."""
    model_w, model_l = attributes.model[data.winners], attributes.model[data.losers]
    cross = model_w != model_l
    if not cross.any():
        return None
    a, b = model_w[cross], model_l[cross]
    present = np.unique(np.concatenate([a, b]))
    if present.size < 2:
        return None
    code = {int(m): k for k, m in enumerate(present)}
    a_c = np.array([code[int(m)] for m in a], dtype=np.int64)
    b_c = np.array([code[int(m)] for m in b], dtype=np.int64)
    outcome = np.where(data.tied[cross], 0.5, 1.0)
    weights = data.weights[cross] if data.weights is not None else None
    groups = attributes.prompt[data.winners][cross]
    names = attributes.model_names
    n = present.size
    common = {"groups": groups, "weights": weights, "alpha": alpha, "n_bootstrap": N_BOOTSTRAP,
              "random_state": random_state}
    plain = fit_model_bt(a_c, b_c, outcome, n, **common)
    result = {"models": [names[m] for m in present], "n_comparisons": int(cross.sum()),
              "n_prompts": int(np.unique(groups).size), "plain": _fit_json(plain, names, present)}
    covariates = np.column_stack([attributes.log_megapixels, attributes.log_aspect])
    varying = [j for j in range(covariates.shape[1]) if np.ptp(covariates[:, j]) > 1e-12]
    if varying:
        # Style is only told apart from the model when the covariates vary within models: the images'
        # model indicators and covariates must be linearly independent (a ridge would hide it).
        seen_items = np.unique(np.concatenate([data.winners[cross], data.losers[cross]]))
        design = np.column_stack([attributes.model[seen_items][:, None] == present[None, :],
                                  covariates[seen_items][:, varying]]).astype(float)
        if np.linalg.matrix_rank(design) < design.shape[1]:
            varying = []
            result["style_note"] = ("not possible here: the images' size and aspect ratio are fixed by their model, "
                                    "so style and model cannot be told apart")
    if varying:
        x = covariates[:, varying]
        try:
            style = fit_model_bt(a_c, b_c, outcome, n, covariates_a=x[data.winners][cross],
                                 covariates_b=x[data.losers][cross], **common)
        except ValueError as exc:  # e.g. every model makes images of one size: size and model are one thing
            result["style"] = None
            result["style_note"] = f"not possible here: {exc}"
        else:
            result["style"] = _fit_json(style, names, present, covariates=[STYLE_COVARIATES[j] for j in varying])
    else:
        result["style"] = None
        result.setdefault("style_note", "every image has the same size and aspect ratio: nothing to control for")
    rates = win_rate_matrix(a_c, b_c, outcome, n, plain)
    result["win_rates"] = {key: [[_num(v) for v in row] for row in getattr(rates, key)]
                           for key in ("observed", "predicted")}
    result["win_rates"]["counts"] = rates.counts.astype(int).tolist()
    categories = np.array(attributes.category, dtype=object)
    cat_w, cat_l = categories[data.winners][cross], categories[data.losers][cross]
    per_category = {}
    for category in sorted({c for c in cat_w if c}):
        rows = (cat_w == category) & (cat_l == category)
        if rows.sum() < MIN_CATEGORY_COMPARISONS:
            continue
        seen = np.unique(np.concatenate([a_c[rows], b_c[rows]]))
        if seen.size < 2:
            continue
        sub = {int(m): k for k, m in enumerate(seen)}
        try:
            fit = fit_model_bt(np.array([sub[int(m)] for m in a_c[rows]]), np.array([sub[int(m)] for m in b_c[rows]]),
                               outcome[rows], seen.size, groups=groups[rows],
                               weights=weights[rows] if weights is not None else None, alpha=max(alpha, 1e-3),
                               n_bootstrap=0, random_state=random_state)
        except ValueError as exc:
            per_category[category] = {"error": str(exc)}
            continue
        per_category[category] = _fit_json(fit, names, present[seen])
    result["categories"] = per_category
    return result
