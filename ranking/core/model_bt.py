"""Model leaderboard: Bradley–Terry (Davidson ties) over generators, with robust uncertainty.

Question
--------
Which generator (source model) is better, judged from pairwise comparisons between *images* of
different models. Every comparison row holds the two images' models ``a`` and ``b``, the outcome
(1 = ``a`` won, 0 = ``b`` won, 0.5 = tie) and, optionally, a cluster label (the prompt) and
item-level covariates of the two images.

Model
-----
Model ``k`` has a strength ``θ_k`` (natural-log scale, "logits"). With covariates ``x`` (``p`` per
image, e.g. log resolution) the comparison's linear predictor is::

    d = θ_a − θ_b + β · (x_a − x_b)

and the outcome follows Davidson's (1970) model on ``d``, with ``D = e^{d/2} + e^{−d/2} + ν``::

    P(a wins) = e^{d/2} / D,    P(b wins) = e^{−d/2} / D,    P(tie) = ν / D.

Without ties in the data ``ν = 0`` (plain Bradley–Terry, ``P(a wins) = 1 / (1 + e^{−d})``). ``β`` is
"style control" (as in Chatbot Arena): ``θ`` then ranks the models with the covariates held equal.
Without covariates this is exactly :func:`ranking.core.bt.fit_bt` on the same rows. Rows carry
non-negative weights; ``alpha`` adds ``(alpha/2)·Σθ²`` to the negative log-likelihood (MAP, θ
only — ``β`` and ``ν`` are not penalised).

Fit
---
:func:`ranking.core.bt.fit_bt` (no covariates, same weights and ``alpha``) gives the starting
point and the identifiability check; then Newton's method with a backtracking (Armijo) line search
on the weighted, penalised Davidson negative log-likelihood over ``(θ, β, log ν)``, which is convex.
``θ`` is kept mean-zero by parametrising it as ``θ = Q φ`` with ``Q`` an orthonormal basis of
``{θ : Σθ = 0}``; all matrices are dense (``n_models + p + 1`` parameters, meant for ≤ a few
hundred models). Convergence: a full Newton step moves no coordinate by more than ``tol``.
Cost is ``O(m)`` per Newton step plus ``O((n_models + p)³)``: ~0.03 s for 50,000 comparisons of
20 models, ~0.3 s for 200,000 of 100 models; each bootstrap resample is a warm-started refit of
about that cost (200 resamples: ~5 s and ~30 s on 2 cores).

Uncertainty
-----------
With ``A`` the Hessian of the penalised negative log-likelihood at the estimate in the reduced
coordinates ``(φ, β, log ν)`` and ``T`` the map back to ``(θ, β, log ν)``:

``se`` — model-based: ``diag(T A⁻¹ Tᵀ)``, the inverse observed information under ``Σθ = 0``
(identical to ``fit_bt``'s SEs without covariates).

``se_sandwich`` — robust, clustered by ``groups``: ``T A⁻¹ M A⁻¹ Tᵀ · G/(G − 1)`` with
``M = Σ_g s_g s_gᵀ``, ``s_g`` the (weighted) log-likelihood score of cluster ``g`` in reduced
coordinates and ``G`` the number of clusters (the usual CR1 small-sample factor). Comparisons of the
same prompt share the prompt's quirks (a model that happens to draw one subject badly loses all of
that prompt's comparisons); the model-based SEs treat them as independent and are then too small.
Without ``groups`` every comparison is its own cluster (Huber–White). ``ci_low``/``ci_high`` are
Wald intervals ``θ ± z · se_sandwich`` at ``confidence``.

``boot_ci_low``/``boot_ci_high`` — percentile intervals from a cluster bootstrap: whole clusters
are resampled with replacement (``n_bootstrap`` times, ``random_state``) and the model refitted
(Newton, warm-started at the estimate). A resample in which the estimate does not exist (with
``alpha == 0``: a model drawn in no comparison, a comparison graph that is not strongly connected,
or Newton diverging) is dropped and counted in ``n_bootstrap_failed``; the intervals use the rest.

Rank intervals
--------------
``rank`` is 1 + the number of models with a strictly larger strength. ``rank_low``/``rank_high``
hold for all models at once with probability ≥ ``confidence`` (asymptotically): they come from
simultaneous tests of every pair ``θ_i − θ_j`` (``K = n(n−1)/2`` pairs) using the full sandwich
covariance ``V`` (so correlations between estimates and clustering are accounted for). Pair
``(i, j)`` is called significant when ``|θ_i − θ_j| > c · sd_ij``, ``sd_ij² = V_ii + V_jj − 2V_ij``;
then ``rank_low_i = 1 + #{j significantly better than i}`` and
``rank_high_i = n − #{j significantly worse than i}`` (Chatbot Arena, Chiang et al. 2024, §5).
If every significant call has the right sign — which happens with probability ≥ ``confidence``
because the ``K`` tests control the family-wise error rate — every model's true rank lies in its
interval. The critical value ``c``:

``rank_method="bonferroni"`` (default) — ``c = z_{1 − (1−confidence)/(2K)}``. Deterministic, needs
no bootstrap, valid whatever the correlation between pairs; conservative (about 10 % wider than
the exact max-|t| value for 10–100 models).

``rank_method="bootstrap_max_t"`` — ``c`` is the ``confidence`` quantile over the cluster-bootstrap
replicates of ``max_{i<j} |(θ*_i − θ*_j) − (θ_i − θ_j)| / sd_ij`` (single-step max-|t|, Romano &
Wolf 2005). Sharper, and does not lean on normality of the estimates, but needs ``n_bootstrap``
≥ 100 and its own Monte Carlo error.

This module is pure numpy/scipy and must not import Django.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.stats
from scipy.sparse.csgraph import connected_components

from ranking.core.bt import DisconnectedComparisonsError, fit_bt
from ranking.core.errors import ConvergenceError

__all__ = [
    "RANK_METHODS",
    "ConvergenceError",
    "DisconnectedComparisonsError",
    "ModelBTFit",
    "WinRateMatrix",
    "fit_model_bt",
    "win_rate_matrix",
]

RANK_METHODS = ("bonferroni", "bootstrap_max_t")
_MIN_MAX_T_BOOTSTRAP = 100
# A compared pair this far apart (P(upset) < 1e-15) or |log ν| this large means divergence (as in bt).
_MAX_SPREAD = 35.0
_MAX_LOG_TIE = 25.0
_COLLINEAR_TOL = 1e-10  # smallest eigenvalue of the scaled information matrix


@dataclass(frozen=True)
class ModelBTFit:
    """Result of :func:`fit_model_bt` (module docstring for the model and every interval).

    Attributes
    ----------
    strengths : numpy.ndarray, shape (n_models,)
        θ, logits, mean zero. With covariates: with the covariates held equal ("style control").
    se : numpy.ndarray, shape (n_models,)
        Model-based SEs (inverse observed information under Σθ = 0), logits.
    se_sandwich : numpy.ndarray, shape (n_models,)
        Robust SEs clustered by ``groups`` (per comparison without ``groups``), logits.
    covariance : numpy.ndarray, shape (n_models, n_models)
        Sandwich covariance of ``strengths`` (its diagonal is ``se_sandwich²``); for CIs of
        differences, ``var(θ_i − θ_j) = V_ii + V_jj − 2 V_ij``.
    ci_low, ci_high : numpy.ndarray, shape (n_models,)
        Wald intervals ``strengths ∓ z · se_sandwich`` at ``confidence`` (marginal, per model).
    boot_ci_low, boot_ci_high : numpy.ndarray or None
        Percentile intervals from the cluster bootstrap at ``confidence``; ``None`` when
        ``n_bootstrap == 0`` (or every resample failed).
    boot_strengths : numpy.ndarray or None, shape (n_bootstrap - n_bootstrap_failed, n_models)
        The bootstrap replicates of ``strengths`` (e.g. for rank histograms); ``None`` without.
    rank : numpy.ndarray of int, shape (n_models,)
        1 = best: 1 + the number of models with a larger strength.
    rank_low, rank_high : numpy.ndarray of int, shape (n_models,)
        Rank intervals that hold for all models at once with probability ≥ ``confidence``.
    rank_method : str
        ``"bonferroni"`` or ``"bootstrap_max_t"`` (how the pairwise critical value was set).
    rank_critical_value : float
        That critical value ``c`` (a pair is significant when ``|θ_i − θ_j| > c · sd_ij``).
    tie_param : float or None
        Davidson ν (dimensionless); ``None`` when the data hold no ties.
    coef : numpy.ndarray or None, shape (p,)
        Covariate coefficients β (logits per covariate unit); ``None`` without covariates.
    coef_se : numpy.ndarray or None, shape (p,)
        Their sandwich SEs (clustered like ``se_sandwich``).
    coef_se_model : numpy.ndarray or None, shape (p,)
        Their model-based SEs.
    log_likelihood : float
        Weighted log-likelihood (natural log) at the estimate, without the prior term.
    n_iter : int
        Newton iterations of the main fit.
    n_comparisons : int
        Rows with positive weight.
    n_groups : int
        Clusters among those rows (``n_comparisons`` without ``groups``).
    n_bootstrap_failed : int
        Bootstrap resamples dropped because their estimate does not exist.
    confidence : float
        Level of every interval above.
    """

    strengths: np.ndarray
    se: np.ndarray
    se_sandwich: np.ndarray
    covariance: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    boot_ci_low: np.ndarray | None
    boot_ci_high: np.ndarray | None
    boot_strengths: np.ndarray | None
    rank: np.ndarray
    rank_low: np.ndarray
    rank_high: np.ndarray
    rank_method: str
    rank_critical_value: float
    tie_param: float | None
    coef: np.ndarray | None
    coef_se: np.ndarray | None
    coef_se_model: np.ndarray | None
    log_likelihood: float
    n_iter: int
    n_comparisons: int
    n_groups: int
    n_bootstrap_failed: int
    confidence: float


@dataclass(frozen=True)
class WinRateMatrix:
    """Result of :func:`win_rate_matrix`; entry ``[i, j]`` is about model ``i`` against model ``j``.

    Attributes
    ----------
    observed : numpy.ndarray, shape (n_models, n_models)
        Share of ``i``-vs-``j`` comparisons that ``i`` won, a tie counting ½ (unweighted); NaN where
        the pair was never compared and on the diagonal.
    predicted : numpy.ndarray, shape (n_models, n_models)
        ``P(i ≻ j) + ½ P(tie)`` under the fitted Davidson model (with covariates: at equal
        covariates); NaN on the diagonal.
    counts : numpy.ndarray of int, shape (n_models, n_models)
        Comparisons per pair (symmetric, zero diagonal).
    """

    observed: np.ndarray
    predicted: np.ndarray
    counts: np.ndarray


# --------------------------------------------------------------------------------------------
# Input handling


def _check_n_models(n_models) -> int:
    if isinstance(n_models, bool) or not isinstance(n_models, (int, np.integer)) or n_models < 2:
        raise ValueError(f"n_models must be an integer >= 2, got {n_models!r}")
    return int(n_models)


def _as_model_index(name: str, values, n_models: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of model indices, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer model indices, got dtype {arr.dtype}")
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi >= n_models:
        raise ValueError(f"{name} must be in [0, n_models={n_models}), found values in [{lo}, {hi}]")
    return arr.astype(np.int64, copy=False)


def _validate_pairs(model_a, model_b, outcome, n_models):
    n_models = _check_n_models(n_models)
    a = _as_model_index("model_a", model_a, n_models)
    b = _as_model_index("model_b", model_b, n_models)
    if a.shape != b.shape:
        raise ValueError(f"model_a and model_b must have the same length, got {a.size} and {b.size}")
    same = a == b
    if same.any():
        raise ValueError(
            f"model_a and model_b must differ in every row: {int(same.sum())} row(s) compare a model "
            f"with itself (first: row {int(np.argmax(same))}); drop same-model comparisons"
        )
    try:
        y = np.asarray(outcome, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("outcome must be numeric: 1 (a won), 0 (b won) or 0.5 (tie)") from None
    if y.shape != a.shape:
        raise ValueError(f"outcome must have shape {a.shape}, got {y.shape}")
    bad = ~np.isin(y, (0.0, 0.5, 1.0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"outcome must be 1 (a won), 0 (b won) or 0.5 (tie); row {i} is {y[i]!r}")
    return a, b, y, n_models


def _covariate_matrix(name: str, values, m: int) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != m:
        raise ValueError(f"{name} must have shape ({m}, p) (or ({m},) for one covariate), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return x


def _group_codes(groups, m: int) -> np.ndarray:
    g = np.asarray(groups)
    if g.shape != (m,):
        raise ValueError(f"groups must have shape ({m},), one label per comparison, got {g.shape}")
    try:
        _, codes = np.unique(g, return_inverse=True)
    except TypeError:
        raise ValueError("groups must hold sortable labels of one type (e.g. all int or all str)") from None
    return codes.reshape(-1)


# --------------------------------------------------------------------------------------------
# Likelihood on comparison rows


@dataclass(frozen=True)
class _Rows:
    """Comparison rows with positive weight, ready for the likelihood."""

    n: int  # models
    a: np.ndarray
    b: np.ndarray
    v: np.ndarray  # +½ if a won, −½ if b won, 0 for a tie
    tie: np.ndarray  # 1.0 for a tie
    w: np.ndarray
    dx: np.ndarray  # (m, p): x_a − x_b
    has_ties: bool

    @property
    def p(self) -> int:
        return self.dx.shape[1]

    @property
    def k(self) -> int:
        return self.n + self.p + int(self.has_ties)

    def with_weights(self, w: np.ndarray) -> _Rows:
        keep = w > 0
        tie = self.tie[keep]
        return _Rows(
            n=self.n,
            a=self.a[keep],
            b=self.b[keep],
            v=self.v[keep],
            tie=tie,
            w=w[keep],
            dx=self.dx[keep],
            has_ties=bool(tie.any()),
        )


def _linear_predictor(rows: _Rows, z: np.ndarray) -> np.ndarray:
    d = z[rows.a] - z[rows.b]
    if rows.p:
        d += rows.dx @ z[rows.n : rows.n + rows.p]
    return d


def _row_terms(rows: _Rows, z: np.ndarray, derivatives: bool):
    """Per-row log-likelihood and (optionally) score in (d, η) and NLL curvature, overflow-free.

    With s = e^{−|d|} and D' = D·e^{−|d|/2} = 1 + s + ν e^{−|d|/2}: log D = |d|/2 + log D',
    sinh(d/2)/D = sign(d)(1 − s)/(2D'), ν/D = ν e^{−|d|/2}/D', and (bt.py) ∂²log D/∂d² =
    (1 + ν cosh(d/2)/2)/D², ∂²log D/∂d∂η = −sinh(d/2) ν/D², ∂²log D/∂η² = 2 cosh(d/2) ν/D².
    """
    d = _linear_predictor(rows, z)
    ad = np.abs(d)
    s = np.exp(-ad)
    eta = z[-1] if rows.has_ties else None
    nus = np.exp(eta - 0.5 * ad) if rows.has_ties else 0.0
    dprime = 1.0 + s + nus
    loglik = rows.v * d - 0.5 * ad - np.log(dprime)
    if rows.has_ties:
        loglik += rows.tie * eta
    if not derivatives:
        return loglik, None
    sign = np.sign(d)
    inv2 = 1.0 / dprime**2
    out = {
        "score_d": rows.v - sign * 0.5 * (1.0 - s) / dprime,
        "h_dd": (s + 0.25 * nus * (1.0 + s)) * inv2,
    }
    if rows.has_ties:
        out["score_e"] = rows.tie - nus / dprime
        out["h_de"] = -sign * 0.5 * (1.0 - s) * nus * inv2
        out["h_ee"] = (1.0 + s) * nus * inv2
    return loglik, out


def _vector(rows: _Rows, c_d: np.ndarray, c_e: np.ndarray | None) -> np.ndarray:
    """Σ_rows c_d·∂d/∂z (+ c_e on log ν): a gradient from per-row coefficients."""
    n, p = rows.n, rows.p
    g = np.empty(rows.k)
    g[:n] = np.bincount(rows.a, weights=c_d, minlength=n) - np.bincount(rows.b, weights=c_d, minlength=n)
    if p:
        g[n : n + p] = rows.dx.T @ c_d
    if rows.has_ties:
        g[-1] = c_e.sum()
    return g


def _matrix(rows: _Rows, c_dd: np.ndarray, c_de: np.ndarray | None, c_ee: np.ndarray | None) -> np.ndarray:
    """Σ_rows [c_dd J Jᵀ + c_de (J e_ηᵀ + e_η Jᵀ) + c_ee e_η e_ηᵀ] with J = ∂d/∂z (dense k × k)."""
    n, p, k = rows.n, rows.p, rows.k
    h = np.zeros((k, k))
    w = np.bincount(rows.a * n + rows.b, weights=c_dd, minlength=n * n).reshape(n, n)
    w += w.T
    h[:n, :n] = np.diag(w.sum(axis=1)) - w
    if p:
        cx = rows.dx * c_dd[:, None]
        for col in range(p):
            h[:n, n + col] = np.bincount(rows.a, weights=cx[:, col], minlength=n) - np.bincount(
                rows.b, weights=cx[:, col], minlength=n
            )
        h[n : n + p, n : n + p] = rows.dx.T @ cx
    if rows.has_ties:
        h[:n, -1] = np.bincount(rows.a, weights=c_de, minlength=n) - np.bincount(
            rows.b, weights=c_de, minlength=n
        )
        if p:
            h[n : n + p, -1] = rows.dx.T @ c_de
        h[-1, -1] = c_ee.sum()
    upper = np.triu(h, 1)
    return np.triu(h) + upper.T


class _Objective:
    """Penalised weighted Davidson NLL over z = (θ, β, log ν), reduced to Σθ = 0 by ``T``."""

    def __init__(self, rows: _Rows, alpha: float, basis: np.ndarray):
        self.rows = rows
        self.alpha = alpha
        k, n = rows.k, rows.n
        self.t = np.zeros((k, k - 1))
        self.t[:n, : n - 1] = basis
        self.t[n:, n - 1 :] = np.eye(k - n)

    def value(self, z: np.ndarray) -> float:
        loglik, _ = _row_terms(self.rows, z, derivatives=False)
        theta = z[: self.rows.n]
        return -float(self.rows.w @ loglik) + 0.5 * self.alpha * float(theta @ theta)

    def derivatives(self, z: np.ndarray):
        rows = self.rows
        loglik, der = _row_terms(rows, z, derivatives=True)
        w = rows.w
        theta = z[: rows.n]
        obj = -float(w @ loglik) + 0.5 * self.alpha * float(theta @ theta)
        c_e = w * der["score_e"] if rows.has_ties else None
        grad = -_vector(rows, w * der["score_d"], c_e)
        grad[: rows.n] += self.alpha * theta
        hess = _matrix(
            rows,
            w * der["h_dd"],
            w * der["h_de"] if rows.has_ties else None,
            w * der["h_ee"] if rows.has_ties else None,
        )
        hess[: rows.n, : rows.n] += self.alpha * np.eye(rows.n)
        return obj, grad, hess, der

    def reduced(self, m: np.ndarray) -> np.ndarray:
        return self.t.T @ m @ self.t


def _centring_basis(n: int) -> np.ndarray:
    """Orthonormal basis (n × (n − 1)) of {θ : Σθ = 0}."""
    return scipy.linalg.null_space(np.ones((1, n)))


def _newton(objective: _Objective, z: np.ndarray, max_iter: int, tol: float):
    """Minimise the convex objective from ``z`` (θ part mean-zero); returns (z, Hessian at z, n_iter)."""
    t = objective.t
    obj, grad, hess, _ = objective.derivatives(z)
    for n_iter in range(1, max_iter + 1):
        try:
            factor = scipy.linalg.cho_factor(objective.reduced(hess), check_finite=False)
        except np.linalg.LinAlgError:
            raise ConvergenceError("Newton's method met a singular information matrix") from None
        step = -t @ scipy.linalg.cho_solve(factor, t.T @ grad, check_finite=False)
        if not np.all(np.isfinite(step)):
            raise ConvergenceError("Newton's method produced non-finite values")
        done = float(np.max(np.abs(step))) <= tol
        slope = float(grad @ step)
        size = 1.0
        while True:
            candidate = z + size * step
            value = objective.value(candidate)
            if value <= obj + 1e-4 * size * slope + 64 * np.finfo(float).eps * max(abs(obj), 1.0):
                break
            size *= 0.5
            if size < 1e-10:
                if done or abs(slope) <= 64 * np.finfo(float).eps * max(abs(obj), 1.0):
                    return z, hess, n_iter  # at the optimum to rounding
                raise ConvergenceError("line search failed: the objective does not decrease")
        z = candidate
        obj, grad, hess, _ = objective.derivatives(z)
        if done:
            return z, hess, n_iter
    raise ConvergenceError(f"Newton's method did not converge in max_iter={max_iter} iterations")


def _fit(objective: _Objective, z0: np.ndarray, max_iter: int, tol: float):
    rows = objective.rows
    z, hess, n_iter = _newton(objective, z0, max_iter, tol)
    spread = float(np.max(np.abs(_linear_predictor(rows, z)))) if rows.a.size else 0.0
    eta = float(z[-1]) if rows.has_ties else 0.0
    if not np.all(np.isfinite(z)) or spread > _MAX_SPREAD or abs(eta) > _MAX_LOG_TIE:
        raise ConvergenceError(
            f"estimates diverge (a comparison's predictor {spread:.0f} logits from even, log ν = "
            f"{eta:.1f}): the maximum-likelihood estimate does not exist for these data; use alpha > 0"
        )
    return z, hess, n_iter


def _check_collinear(objective: _Objective, z: np.ndarray) -> None:
    """Raise if (θ, β) are not identified by the design (e.g. a covariate constant per model)."""
    _, _, hess, _ = objective.derivatives(z)
    a = objective.reduced(hess)
    scale = np.sqrt(np.maximum(np.diag(a), np.finfo(float).tiny))
    lam = np.linalg.eigvalsh(a / np.outer(scale, scale))
    if lam[0] < _COLLINEAR_TOL:
        raise ValueError(
            "covariates_a/covariates_b are collinear with the model indicators or with each other "
            "(e.g. a covariate that is constant within every model, or duplicated columns): the "
            "coefficients β are not identifiable; drop or combine those covariates"
        )


def _strongly_connected(rows: _Rows) -> bool:
    """Every model compared, and the directed loser → winner graph (ties both ways) strongly connected."""
    n = rows.n
    seen = np.zeros(n, dtype=bool)
    seen[rows.a] = True
    seen[rows.b] = True
    if not seen.all():
        return False
    a_won = rows.v >= 0  # a won or tie: edge b → a
    b_won = rows.v <= 0
    src = np.concatenate([rows.b[a_won], rows.a[b_won]])
    dst = np.concatenate([rows.a[a_won], rows.b[b_won]])
    graph = scipy.sparse.csr_matrix((np.ones(src.size, dtype=np.int8), (src, dst)), shape=(n, n))
    return connected_components(graph, directed=True, connection="strong")[0] == 1


# --------------------------------------------------------------------------------------------
# Public API


def fit_model_bt(
    model_a,
    model_b,
    outcome,
    n_models: int,
    *,
    groups=None,
    covariates_a=None,
    covariates_b=None,
    weights=None,
    alpha: float = 0.0,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    rank_method: str = "bonferroni",
    random_state=None,
    max_iter: int = 100,
    tol: float = 1e-8,
) -> ModelBTFit:
    """Fit model (generator) strengths by Davidson Bradley–Terry with robust and bootstrap intervals.

    Parameters
    ----------
    model_a, model_b : array_like of int, shape (m,)
        Models of the two images of each comparison, in ``[0, n_models)``; they must differ in every
        row (drop same-model comparisons first).
    outcome : array_like of float, shape (m,)
        1 = the ``model_a`` image won, 0 = the ``model_b`` image won, 0.5 = tie.
    n_models : int
        Number of models (≥ 2). Every model must appear in some comparison with positive weight —
        for a per-category fit re-index to the models present (this is checked whatever
        ``alpha``: a model without data has no estimate worth ranking).
    groups : array_like, shape (m,), optional
        Cluster label per comparison (e.g. the prompt id): the sandwich SEs are clustered by it and
        the bootstrap resamples whole clusters. Default: every comparison its own cluster.
    covariates_a, covariates_b : array_like of float, shape (m, p) or (m,), optional
        Covariates of the two images (e.g. log pixel count, a metric score); give both or neither.
        Their difference enters the predictor through β ("style control").
    weights : array_like of float, shape (m,), optional
        Non-negative weight per comparison (rows of weight 0 are ignored).
    alpha : float, default 0
        Prior precision on θ (adds ``(alpha/2)·Σθ²``); with ``alpha == 0`` the comparison graph must
        be strongly connected.
    n_bootstrap : int, default 200
        Cluster-bootstrap resamples for ``boot_ci_*`` (0: no bootstrap). Each is a Newton refit.
    confidence : float, default 0.95
        Level of the Wald, bootstrap and (simultaneous) rank intervals, in (0, 1).
    rank_method : {"bonferroni", "bootstrap_max_t"}, default "bonferroni"
        Critical value of the simultaneous pairwise tests behind ``rank_low``/``rank_high`` (module
        docstring, "Rank intervals"); ``"bootstrap_max_t"`` needs ``n_bootstrap >= 100``.
    random_state : int, numpy.random.Generator or None
        Seed of the bootstrap.
    max_iter : int, default 100
        Maximum Newton iterations per fit.
    tol : float, default 1e-8
        Convergence when a full Newton step moves no coordinate by more than ``tol``.

    Returns
    -------
    ModelBTFit

    Raises
    ------
    ValueError
        Invalid input (the message names the argument); a model in no comparison; a single
        cluster; covariates not identifiable (collinear with the model indicators).
    DisconnectedComparisonsError
        (A ``ValueError``.) ``alpha == 0`` and the comparison graph is not strongly connected.
    ConvergenceError
        Newton's method did not converge or the estimate does not exist (diverges).
    """
    a, b, y, n = _validate_pairs(model_a, model_b, outcome, n_models)
    m = a.size
    if m == 0:
        raise ValueError("model_a and model_b hold no comparisons: there is nothing to fit")
    alpha = float(alpha)
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be an integer >= 0, got {n_bootstrap!r}")
    confidence = float(confidence)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if rank_method not in RANK_METHODS:
        raise ValueError(f"rank_method must be one of {RANK_METHODS}, got {rank_method!r}")
    if rank_method == "bootstrap_max_t" and n_bootstrap < _MIN_MAX_T_BOOTSTRAP:
        raise ValueError(
            f'rank_method="bootstrap_max_t" needs n_bootstrap >= {_MIN_MAX_T_BOOTSTRAP}, got {n_bootstrap}'
        )
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    tol = float(tol)
    if not np.isfinite(tol) or tol <= 0:
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if (covariates_a is None) != (covariates_b is None):
        raise ValueError("covariates_a and covariates_b must be given together (or neither)")
    if covariates_a is not None:
        xa = _covariate_matrix("covariates_a", covariates_a, m)
        xb = _covariate_matrix("covariates_b", covariates_b, m)
        if xa.shape != xb.shape:
            raise ValueError(
                f"covariates_a and covariates_b must have the same shape, got {xa.shape} and {xb.shape}"
            )
        dx = xa - xb
    else:
        dx = np.zeros((m, 0))
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        if w.shape != (m,):
            raise ValueError(f"weights must have shape ({m},), got {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite (no NaN or inf)")
        if np.any(w < 0):
            raise ValueError("weights must be non-negative")
        if not np.any(w > 0):
            raise ValueError("weights are all zero: no comparison counts, so there is nothing to fit")
    else:
        w = np.ones(m)
    codes = _group_codes(groups, m) if groups is not None else np.arange(m)

    keep = w > 0
    present = np.zeros(n, dtype=bool)
    present[a[keep]] = True
    present[b[keep]] = True
    if not present.all():
        missing = np.flatnonzero(~present)
        shown = ", ".join(str(int(i)) for i in missing[:10]) + (", …" if missing.size > 10 else "")
        raise ValueError(
            f"{missing.size} of n_models={n} models appear in no comparison with positive weight "
            f"([{shown}]): they have no estimate; re-index model_a/model_b to the models present "
            f"(e.g. for a per-category fit) and set n_models accordingly"
        )
    _, codes = np.unique(codes[keep], return_inverse=True)
    codes = codes.reshape(-1)
    n_groups = int(codes.max()) + 1
    if n_groups < 2:
        raise ValueError("groups puts every comparison in one cluster: clustered SEs need at least 2")

    a, b, y, w, dx = a[keep], b[keep], y[keep], w[keep], dx[keep]
    tie = (y == 0.5).astype(float)
    rows = _Rows(n=n, a=a, b=b, v=y - 0.5, tie=tie, w=w, dx=dx, has_ties=bool(tie.any()))
    if np.all(tie == 1.0):
        raise ValueError("every comparison is a tie: the tie parameter ν has no finite estimate")

    # Start (and identifiability check) from the model without covariates.
    winners = np.where(y == 0.0, b, a)
    losers = np.where(y == 0.0, a, b)
    start = fit_bt(
        winners, losers, n, tied=tie.astype(bool), weights=w, alpha=alpha, max_iter=max_iter, compute_se=False
    )
    z0 = np.concatenate(
        [start.strengths, np.zeros(rows.p), [np.log(start.tie_param)] if rows.has_ties else []]
    )
    basis = _centring_basis(n)
    objective = _Objective(rows, alpha, basis)
    if rows.p:
        _check_collinear(objective, z0)
    z, hess, n_iter = _fit(objective, z0, max_iter, tol)
    log_likelihood = -(objective.value(z) - 0.5 * alpha * float(z[:n] @ z[:n]))

    # Model-based and sandwich covariances (in reduced coordinates, mapped back by T).
    t = objective.t
    a_inv = np.linalg.inv(objective.reduced(hess))
    a_inv = 0.5 * (a_inv + a_inv.T)
    cov_model = t @ a_inv @ t.T
    meat = _meat(rows, z, codes, n_groups, groups is None)
    bread = a_inv @ (t.T @ meat @ t) @ a_inv
    cov_sandwich = t @ (0.5 * (bread + bread.T)) @ t.T * (n_groups / (n_groups - 1))
    theta = z[:n]
    se = np.sqrt(np.maximum(np.diag(cov_model)[:n], 0.0))
    se_sandwich = np.sqrt(np.maximum(np.diag(cov_sandwich)[:n], 0.0))
    z_crit = float(scipy.stats.norm.ppf(0.5 + 0.5 * confidence))

    boot = None
    n_failed = 0
    if n_bootstrap:
        boot, n_failed = _bootstrap(
            objective, z, codes, n_groups, n_bootstrap, random_state, alpha, max_iter, tol
        )
    boot_low = boot_high = None
    if boot is not None and boot.shape[0]:
        boot_low, boot_high = np.quantile(boot, [0.5 - 0.5 * confidence, 0.5 + 0.5 * confidence], axis=0)
    else:
        boot = None

    cov_theta = cov_sandwich[:n, :n]
    rank = 1 + np.sum(theta[None, :] > theta[:, None], axis=1)
    rank_low, rank_high, critical = _rank_intervals(theta, cov_theta, confidence, rank_method, boot)
    coef = coef_se = coef_se_model = None
    if covariates_a is not None:
        sl = slice(n, n + rows.p)
        coef = z[sl].copy()
        coef_se = np.sqrt(np.maximum(np.diag(cov_sandwich)[sl], 0.0))
        coef_se_model = np.sqrt(np.maximum(np.diag(cov_model)[sl], 0.0))
    return ModelBTFit(
        strengths=theta.copy(),
        se=se,
        se_sandwich=se_sandwich,
        covariance=cov_theta.copy(),
        ci_low=theta - z_crit * se_sandwich,
        ci_high=theta + z_crit * se_sandwich,
        boot_ci_low=boot_low,
        boot_ci_high=boot_high,
        boot_strengths=boot,
        rank=rank.astype(np.int64),
        rank_low=rank_low,
        rank_high=rank_high,
        rank_method=rank_method,
        rank_critical_value=critical,
        tie_param=float(np.exp(z[-1])) if rows.has_ties else None,
        coef=coef,
        coef_se=coef_se,
        coef_se_model=coef_se_model,
        log_likelihood=float(log_likelihood),
        n_iter=n_iter,
        n_comparisons=int(keep.sum()),
        n_groups=n_groups,
        n_bootstrap_failed=n_failed,
        confidence=confidence,
    )


def _meat(rows: _Rows, z: np.ndarray, codes: np.ndarray, n_groups: int, per_row: bool) -> np.ndarray:
    """Σ_clusters s_g s_gᵀ of the weighted log-likelihood scores, in (θ, β, log ν) coordinates."""
    _, der = _row_terms(rows, z, derivatives=True)
    sd = rows.w * der["score_d"]
    se = rows.w * der["score_e"] if rows.has_ties else None
    if per_row:  # each row its own cluster: the outer products assemble like a Hessian
        return _matrix(
            rows, sd * sd, sd * se if se is not None else None, se * se if se is not None else None
        )
    n, p, k = rows.n, rows.p, rows.k
    scores = np.zeros((n_groups, k))
    scores[:, :n] = (
        np.bincount(codes * n + rows.a, weights=sd, minlength=n_groups * n)
        - np.bincount(codes * n + rows.b, weights=sd, minlength=n_groups * n)
    ).reshape(n_groups, n)
    for col in range(p):
        scores[:, n + col] = np.bincount(codes, weights=rows.dx[:, col] * sd, minlength=n_groups)
    if se is not None:
        scores[:, -1] = np.bincount(codes, weights=se, minlength=n_groups)
    return scores.T @ scores


def _bootstrap(objective, z_hat, codes, n_groups, n_bootstrap, random_state, alpha, max_iter, tol):
    """Cluster bootstrap of θ: resample clusters with replacement, refit from the estimate."""
    rng = np.random.default_rng(random_state)
    rows = objective.rows
    n, p = rows.n, rows.p
    basis = objective.t[:n, : n - 1]
    out = []
    failed = 0
    for _ in range(n_bootstrap):
        mult = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups))
        sample = rows.with_weights(rows.w * mult[codes])
        if alpha == 0 and not _strongly_connected(sample):
            failed += 1
            continue
        z0 = z_hat if sample.has_ties else z_hat[: n + p]  # a resample may have lost every tie
        try:
            z, _, _ = _fit(_Objective(sample, alpha, basis), z0, max_iter, tol)
        except ConvergenceError:
            failed += 1
            continue
        out.append(z[:n])
    return (np.array(out) if out else np.zeros((0, n))), failed


def _rank_intervals(theta, cov, confidence, method, boot):
    n = theta.size
    diff = theta[:, None] - theta[None, :]  # θ_i − θ_j
    var = np.diag(cov)[:, None] + np.diag(cov)[None, :] - 2.0 * cov
    sd = np.sqrt(np.maximum(var, 0.0))
    np.fill_diagonal(sd, np.inf)
    pairs = n * (n - 1) // 2
    if method == "bonferroni" or boot is None:
        critical = float(scipy.stats.norm.ppf(1.0 - (1.0 - confidence) / (2.0 * pairs)))
    else:
        iu = np.triu_indices(n, 1)
        centred = (boot[:, :, None] - boot[:, None, :])[:, iu[0], iu[1]] - diff[iu]
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = np.abs(centred) / sd[iu]
        critical = float(np.quantile(np.nanmax(np.nan_to_num(stat, nan=0.0), axis=1), confidence))
    with np.errstate(divide="ignore", invalid="ignore"):
        better = diff > critical * sd  # [i, j]: i significantly better than j
    rank_low = 1 + better.sum(axis=0)  # models significantly better than j
    rank_high = n - better.sum(axis=1)  # models significantly worse than i
    return rank_low.astype(np.int64), rank_high.astype(np.int64), critical


def win_rate_matrix(model_a, model_b, outcome, n_models: int, fit: ModelBTFit) -> WinRateMatrix:
    """Observed and fitted head-to-head win rates of every pair of models.

    Parameters
    ----------
    model_a, model_b, outcome, n_models
        As for :func:`fit_model_bt` (all rows count once; weights are not used).
    fit : ModelBTFit
        Fit whose ``strengths`` and ``tie_param`` give ``predicted``.

    Returns
    -------
    WinRateMatrix
        ``observed[i, j]``: share of ``i``-vs-``j`` comparisons won by ``i`` (ties ½);
        ``predicted[i, j] = P(i ≻ j) + ½ P(tie)``; ``counts[i, j]``: comparisons of the pair.
    """
    a, b, y, n = _validate_pairs(model_a, model_b, outcome, n_models)
    theta = np.asarray(fit.strengths, dtype=float)
    if theta.shape != (n,):
        raise ValueError(f"fit.strengths must have shape ({n},) for n_models={n}, got {theta.shape}")
    counts = np.bincount(a * n + b, minlength=n * n).reshape(n, n)
    counts = counts + counts.T
    score = np.bincount(a * n + b, weights=y, minlength=n * n).reshape(n, n)
    score += np.bincount(b * n + a, weights=1.0 - y, minlength=n * n).reshape(n, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = np.where(counts > 0, score / counts, np.nan)
    d = theta[:, None] - theta[None, :]
    nu = fit.tie_param or 0.0
    ad = np.abs(d)
    # (e^{d/2} + ν/2) / (e^{d/2} + e^{−d/2} + ν), scaled by e^{−|d|/2}.
    num = np.where(d >= 0, 1.0, np.exp(-ad)) + 0.5 * nu * np.exp(-0.5 * ad)
    predicted = num / (1.0 + np.exp(-ad) + nu * np.exp(-0.5 * ad))
    np.fill_diagonal(observed, np.nan)
    np.fill_diagonal(predicted, np.nan)
    return WinRateMatrix(observed=observed, predicted=predicted, counts=counts.astype(np.int64))
