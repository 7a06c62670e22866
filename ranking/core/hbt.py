"""Hierarchical (per-rater) Bradley–Terry model with Davidson ties, fitted by MAP in torch.

Model
-----
Every item ``i`` has a population strength ``θ_i`` and every rater ``r`` who judged item ``i`` has a
personal offset ``u_ri``; rater ``r``'s strength of item ``i`` is ``s_ri = θ_i + u_ri`` (natural-log
scale, "logits"). Write ``π = exp(s)``. One comparison of ``i`` with ``j`` by rater ``r`` follows
the Davidson (1970) model::

    P(i beats j) = π_ri / (π_ri + π_rj + ν √(π_ri π_rj))
    P(tie)       = ν √(π_ri π_rj) / (π_ri + π_rj + ν √(π_ri π_rj))

with a tie parameter ``ν ≥ 0``; without ties in the data ``ν = 0`` and this is plain Bradley–Terry,
``P(i beats j) = 1 / (1 + exp(s_rj − s_ri))``. With ties, ``ν`` is estimated (as ``log ν``).

Priors (all Gaussian, so the MAP problem is convex)::

    u_ri ~ N(0, τ²)          shrinkage of every rater toward the population
    θ_i  ~ N(0, 1 / alpha)   weak, only to make θ identifiable (the likelihood ignores shifts)

Each comparison carries a non-negative weight ``w`` (e.g. time decay ``2^(−age / half_life)``); the
weighted log-likelihood ``Σ w · log P(outcome)`` makes a row of weight 2 the same as the row twice.
The fit maximises the log posterior (up to constants)::

    Σ_k w_k log P(outcome_k) − (alpha / 2) Σ_i θ_i² − (1 / (2 τ²)) Σ_(r,i) u_ri²

``τ → 0`` gives the population model (all ``u = 0``; ``tau=0`` is allowed and fits exactly that);
``τ → ∞`` lets every rater's strengths follow only their own judgments.

Storage
-------
Offsets exist only where rater ``r`` judged item ``i``: :class:`HBTFit` holds them sparsely, one
entry per distinct judged (rater, item) pair (``offset_raters``, ``offset_items``, ``offsets``,
sorted by rater then item); an unjudged item has offset 0 (the prior mean). Nothing of size
``n_raters × n_items`` is ever allocated.

Method
------
All arrays live in torch tensors (float64) on the CPU, or on CUDA with ``device="cuda"``. The
negative log posterior and its gradient are computed in closed form, vectorised over comparisons
(gathers plus ``bincount``/``index_add`` scatters, no Python loop over comparisons). It is minimised
by limited-memory BFGS with a fixed diagonal preconditioner (prior precision plus ``¼ ×`` the
weighted number of comparisons touching each parameter, an upper bound on the likelihood curvature)
and a backtracking Armijo line search; the problem is convex, so this converges to the unique MAP.
Convergence is declared when every coordinate's preconditioned gradient ``|g_j| / D_j`` — roughly
how far (in logits) a Newton step would still move it — is at most ``tol``. Otherwise
:class:`ConvergenceError` is raised.

Estimating τ (``tau=None``)
---------------------------
τ is chosen by K-fold cross-validation (default K = 3) over a small grid (default
``DEFAULT_TAU_GRID`` = 0, 0.1, 0.2, 0.4, 0.8, 1.6): comparisons are split into K random folds
(``random_state``), the model is fitted on K − 1 folds for every τ in the grid (warm-started from the
previous τ) and scored on the held-out fold by the weighted predictive log-loss of the observed
outcome (win, loss or tie under the Davidson model, using offsets learnt in training; an offset for
a (rater, item) pair unseen in training is 0). The τ with the lowest total held-out log-loss wins
(the smaller τ on an exact tie) and the model is refitted on all data with it. The grid and each
fold's scores are kept in ``HBTFit.tau_selection``. This costs ``K × len(grid) + 1`` fits; its
resolution is the grid's. It estimates the τ that predicts a rater's next judgments best, which is
what the personal models are for, rather than a marginal-likelihood (empirical Bayes) τ.

This module is pure numpy/torch and must not import Django.

Benchmark (``python bench/bench_hbt.py``, full output in that file's docstring), 2026-11-22, machine:
2 cores, shared (timings noisy): 1,000,000 comparisons (900,104 fitted), 10,000 items, 2,000 raters,
τ = 0.5 fixed: 30.7 s, 122 L-BFGS iterations, 486,362 offsets, peak RSS 566 MB — PASS (≤ 60 s);
held-out log-loss personal 0.5511 vs population 0.5596. ``tau=None`` on 100,000 comparisons /
1,000 items / 200 raters: 14.3 s (19 fits) versus 0.56 s with τ fixed; ``tau=None`` on the full
target case (separate run, same day and machine): 237 s, chosen τ = 0.4 (no target for this path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ranking.core.errors import ConvergenceError

__all__ = [
    "DEFAULT_TAU_GRID",
    "ConvergenceError",
    "HBTFit",
    "fit_hbt",
    "heldout_log_loss",
]

DEFAULT_TAU_GRID = (0.0, 0.1, 0.2, 0.4, 0.8, 1.6)
_LBFGS_MEMORY = 6
_ARMIJO_C1 = 1e-4
_MAX_BACKTRACKS = 50
# A fitted logit this large means the MAP runs off to infinity (e.g. all comparisons are ties).
_MAX_ABS_PARAM = 60.0


@dataclass(frozen=True, eq=False)
class HBTFit:
    """Result of :func:`fit_hbt`.

    Attributes
    ----------
    strengths : numpy.ndarray, shape (n_items,)
        Population strengths θ in logits, centred to mean zero.
    tau : float
        Standard deviation of the personal offsets (logits), given or estimated.
    tie_param : float or None
        Davidson tie parameter ν (dimensionless); ``None`` when the data hold no ties (as in
        :class:`ranking.core.bt.BTFit`).
    offset_raters, offset_items : numpy.ndarray of int64, shape (n_pairs,)
        The distinct judged (rater, item) pairs, sorted by rater then item.
    offsets : numpy.ndarray of float64, shape (n_pairs,)
        MAP offsets ``u_ri`` (logits) for those pairs.
    n_items, n_raters : int
    alpha : float
        Prior precision of θ used in the fit.
    n_iter : int
        L-BFGS iterations of the final fit.
    converged : bool
        Always True (non-convergence raises :class:`ConvergenceError`).
    log_posterior : float
        Maximised objective ``Σ w log P − (alpha/2)‖θ‖² − ‖u‖²/(2τ²)`` (natural log, without the
        Gaussian normalising constants), evaluated before θ is centred (centring does not change
        the likelihood and moves the θ prior term by ``(alpha/2)·n·mean(θ)²``, which is 0 at the MAP).
    tau_selection : tuple of (float, float) or None
        With ``tau=None``: ``(τ, mean held-out log-loss per unit weight)`` for every grid value.
    """

    strengths: np.ndarray
    tau: float
    tie_param: float | None
    offset_raters: np.ndarray
    offset_items: np.ndarray
    offsets: np.ndarray
    n_items: int
    n_raters: int
    alpha: float
    n_iter: int
    converged: bool
    log_posterior: float
    tau_selection: tuple | None = None
    _keys: np.ndarray = field(repr=False, default=None)
    _rater_ptr: np.ndarray = field(repr=False, default=None)

    def __post_init__(self):
        keys = self.offset_raters * np.int64(self.n_items) + self.offset_items
        object.__setattr__(self, "_keys", keys)
        ptr = np.searchsorted(self.offset_raters, np.arange(self.n_raters + 1))
        object.__setattr__(self, "_rater_ptr", ptr)

    @property
    def n_pairs(self) -> int:
        """Number of stored offsets (distinct judged (rater, item) pairs)."""
        return int(self.offsets.shape[0])

    def personal_strengths(self, rater: int) -> np.ndarray:
        """Rater ``rater``'s strengths ``θ + u_r·`` (logits), length ``n_items``.

        Items the rater never judged get offset 0, i.e. the population strength.
        """
        r = _check_index_scalar(rater, self.n_raters, "rater")
        out = self.strengths.copy()
        lo, hi = self._rater_ptr[r], self._rater_ptr[r + 1]
        out[self.offset_items[lo:hi]] += self.offsets[lo:hi]
        return out

    def offset_of(self, raters, items) -> np.ndarray:
        """Offsets ``u_ri`` for arrays of raters and items (0 where the pair was never judged)."""
        raters, items = np.broadcast_arrays(np.asarray(raters, dtype=np.int64), np.asarray(items, dtype=np.int64))
        q = raters * np.int64(self.n_items) + items
        return _lookup(self._keys, self.offsets, q)

    def predict_proba(self, a, b, rater=None) -> np.ndarray:
        """P(a beats b) under the Davidson model, vectorised.

        Parameters
        ----------
        a, b : array_like of int
            Item indices (broadcast together).
        rater : None, int or array_like of int
            ``None``: the population model (θ only). Otherwise the rater(s) whose personal strengths
            are used (broadcast with ``a`` and ``b``).

        Returns
        -------
        numpy.ndarray of float
            ``π_a / (π_a + π_b + ν √(π_a π_b))``. Without ties (ν = 0) ``p(a, b) + p(b, a) = 1``;
            with ties the remainder ``1 − p(a, b) − p(b, a)`` is the tie probability.
        """
        a = _check_index_array(a, self.n_items, "a")
        b = _check_index_array(b, self.n_items, "b")
        sa = self.strengths[a]
        sb = self.strengths[b]
        if rater is not None:
            r = _check_index_array(rater, self.n_raters, "rater")
            sa = sa + self.offset_of(r, a)
            sb = sb + self.offset_of(r, b)
        return _davidson_win_prob(sa, sb, self.tie_param or 0.0)


# --------------------------------------------------------------------------------------------------
# input validation


def _check_index_scalar(value, n, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not 0 <= int(value) < n:
        raise ValueError(f"{name} must be in [0, {n}), got {value}")
    return int(value)


def _check_index_array(value, n, name):
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        if arr.size == 0:
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise ValueError(f"{name} must hold indices in [0, {n})")
    return arr


def _check_comparisons(winners, losers, raters, n_items, n_raters, tied, weights):
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 2:
        raise ValueError(f"n_items must be an integer >= 2, got {n_items!r}")
    if isinstance(n_raters, bool) or not isinstance(n_raters, (int, np.integer)) or n_raters < 1:
        raise ValueError(f"n_raters must be an integer >= 1, got {n_raters!r}")
    w = _check_index_array(winners, n_items, "winners")
    l = _check_index_array(losers, n_items, "losers")
    r = _check_index_array(raters, n_raters, "raters")
    for name, arr in (("winners", w), ("losers", l), ("raters", r)):
        if arr.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional")
    m = w.shape[0]
    if l.shape[0] != m:
        raise ValueError(f"losers must have the same length as winners ({m}), got {l.shape[0]}")
    if r.shape[0] != m:
        raise ValueError(f"raters must have the same length as winners ({m}), got {r.shape[0]}")
    if m == 0:
        raise ValueError("winners must hold at least one comparison")
    if np.any(w == l):
        raise ValueError("winners and losers must differ in every comparison (an item cannot meet itself)")
    if tied is None:
        t = np.zeros(m, dtype=bool)
    else:
        t = np.asarray(tied)
        if t.shape != (m,):
            raise ValueError(f"tied must have shape ({m},), got {t.shape}")
        if t.dtype != bool:
            if t.dtype.kind not in "iu" or np.any((t != 0) & (t != 1)):
                raise ValueError("tied must hold booleans (or 0/1)")
            t = t.astype(bool)
    if weights is None:
        wt = np.ones(m, dtype=np.float64)
    else:
        wt = np.asarray(weights, dtype=np.float64)
        if wt.shape != (m,):
            raise ValueError(f"weights must have shape ({m},), got {wt.shape}")
        if not np.all(np.isfinite(wt)) or np.any(wt < 0):
            raise ValueError("weights must be finite and non-negative")
        if wt.sum() <= 0:
            raise ValueError("weights must not all be zero")
    return w, l, r, t, wt


def _resolve_device(device):
    if device is None:
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available (torch.cuda.is_available() is False)")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be None, 'cpu' or 'cuda', got {device!r}")
    return dev


# --------------------------------------------------------------------------------------------------
# numerics


def _davidson_win_prob(sa, sb, nu):
    """P(a beats b) = 1 / (1 + e^d + ν e^{d/2}) with d = s_b − s_a, computed in log space."""
    d = np.asarray(sb - sa, dtype=np.float64)
    log_den = np.logaddexp(np.logaddexp(0.0, d), math.log(nu) + 0.5 * d) if nu > 0 else np.logaddexp(0.0, d)
    return np.exp(-log_den)


def _lookup(keys, values, q):
    """values[k] where keys[k] == q (keys sorted), else 0."""
    if keys.size == 0:
        return np.zeros(q.shape, dtype=np.float64)
    idx = np.searchsorted(keys, q)
    idx_c = np.minimum(idx, keys.size - 1)
    found = keys[idx_c] == q
    return np.where(found, values[idx_c], 0.0)


class _Problem:
    """One data set prepared for the optimiser: pairs, comparison → pair indices, curvature bounds."""

    def __init__(self, w, l, r, t, wt, n_items, n_raters, device):
        self.n_items = int(n_items)
        self.n_raters = int(n_raters)
        self.device = device
        # Distinct (rater, item) pairs, sorted by rater then item (np.unique sorts the keys).
        m = w.shape[0]
        keys = np.concatenate([r * np.int64(n_items) + w, r * np.int64(n_items) + l])
        self.pair_keys, inverse = np.unique(keys, return_inverse=True)
        self.pair_raters = self.pair_keys // n_items
        self.pair_items = self.pair_keys % n_items
        self.n_pairs = int(self.pair_keys.shape[0])
        inverse = inverse.reshape(-1)
        # Order comparisons by winner pair (so by rater) for memory locality of gathers/scatters.
        order = np.argsort(inverse[:m], kind="stable")
        pw, pl = inverse[:m][order], inverse[m:][order]
        t, wt = t[order], wt[order]
        self.m = m
        self.has_ties = bool(np.any(t & (wt > 0)))
        as_t = lambda a, dt: torch.as_tensor(np.ascontiguousarray(a), dtype=dt, device=device)  # noqa: E731
        self.pw = as_t(pw, torch.int64)
        self.pl = as_t(pl, torch.int64)
        self.pwl = torch.cat([self.pw, self.pl])
        self.pair_item_t = as_t(self.pair_items, torch.int64)
        self.wt = as_t(wt, torch.float64)
        self.total_weight = float(wt.sum())
        self.tied = as_t(t, torch.bool) if self.has_ties else None
        if self.has_ties:
            self.tie_weight = float(wt[t].sum())
            self.tied_f = self.tied.to(torch.float64)
        # Weighted number of comparisons touching each pair / item (for the preconditioner).
        pair_count = torch.bincount(self.pwl, weights=torch.cat([self.wt, self.wt]), minlength=self.n_pairs)
        self.pair_count = pair_count
        self.item_count = torch.bincount(self.pair_item_t, weights=pair_count, minlength=self.n_items)

    def pair_index_of(self, raters, items):
        """Index of each (rater, item) pair among this problem's pairs, −1 if absent."""
        q = raters * np.int64(self.n_items) + items
        idx = np.searchsorted(self.pair_keys, q)
        idx_c = np.minimum(idx, max(self.n_pairs - 1, 0))
        found = self.pair_keys[idx_c] == q if self.n_pairs else np.zeros(q.shape, dtype=bool)
        return np.where(found, idx_c, -1)


class _Objective:
    """Negative log posterior and gradient over x = [θ (n_items), u (n_pairs if τ > 0), log ν (if ties)]."""

    def __init__(self, prob: _Problem, tau: float, alpha: float):
        self.p = prob
        self.alpha = alpha
        self.has_u = tau > 0
        self.prec_u = 1.0 / (tau * tau) if self.has_u else math.inf
        n_i, n_u = prob.n_items, (prob.n_pairs if self.has_u else 0)
        self.sl_theta = slice(0, n_i)
        self.sl_u = slice(n_i, n_i + n_u)
        self.i_nu = n_i + n_u if prob.has_ties else None
        self.n = n_i + n_u + (1 if prob.has_ties else 0)
        # Diagonal curvature bound D (prior precision + 1/4 per unit weight) for preconditioning.
        d = torch.empty(self.n, dtype=torch.float64, device=prob.device)
        d[self.sl_theta] = alpha + 0.25 * prob.item_count
        if self.has_u:
            d[self.sl_u] = self.prec_u + 0.25 * prob.pair_count
        if prob.has_ties:
            d[self.i_nu] = 0.25 * prob.total_weight
        self.diag = d
        self.inv_diag = 1.0 / d

    def initial(self):
        x = torch.zeros(self.n, dtype=torch.float64, device=self.p.device)
        if self.p.has_ties:
            share = min(max(self.p.tie_weight / self.p.total_weight, 1e-6), 1 - 1e-6)
            x[self.i_nu] = math.log(2 * share / (1 - share))  # P(tie | equal strengths) = ν / (2 + ν)
        return x

    def pair_strengths(self, x):
        theta = x[self.sl_theta]
        s = theta[self.p.pair_item_t]
        if self.has_u:
            s = s + x[self.sl_u]
        return s

    def __call__(self, x):
        p = self.p
        theta = x[self.sl_theta]
        s = self.pair_strengths(x)
        ab = s[p.pwl]
        a, b = ab[: p.m], ab[p.m :]
        wt = p.wt
        if p.has_ties:
            lognu = x[self.i_nu]
            c = lognu + 0.5 * (a + b)
            mx = torch.maximum(torch.maximum(a, b), c)
            z = mx + torch.log(torch.exp(a - mx) + torch.exp(b - mx) + torch.exp(c - mx))
            pa, pb, pc = torch.exp(a - z), torch.exp(b - z), torch.exp(c - z)
            ll = torch.where(p.tied, c, a) - z
            half = 0.5 * p.tied_f
            # d(−ll)/da and d(−ll)/db, weighted
            ga = wt * (pa + 0.5 * pc - (1.0 - half))
            gb = wt * (pb + 0.5 * pc - half)
            g_nu = torch.sum(wt * (pc - p.tied_f))
        else:
            dd = b - a
            ll = -torch.nn.functional.softplus(dd)
            ga = -wt * torch.sigmoid(dd)
            gb = -ga
        f = -torch.dot(wt, ll) + 0.5 * self.alpha * torch.dot(theta, theta)
        g_pair = torch.bincount(p.pwl, weights=torch.cat([ga, gb]), minlength=p.n_pairs)
        g = torch.empty_like(x)
        g[self.sl_theta] = torch.bincount(p.pair_item_t, weights=g_pair, minlength=p.n_items) + self.alpha * theta
        if self.has_u:
            u = x[self.sl_u]
            f = f + 0.5 * self.prec_u * torch.dot(u, u)
            g[self.sl_u] = g_pair + self.prec_u * u
        if p.has_ties:
            g[self.i_nu] = g_nu
        return float(f), g


def _lbfgs(obj: _Objective, x0, max_iter, tol):
    """Preconditioned L-BFGS with Armijo backtracking; returns (x, f, n_iter). Raises on failure."""
    x = x0.clone()
    f, g = obj(x)
    if not math.isfinite(f):
        raise ConvergenceError("objective is not finite at the starting point")
    inv_d = obj.inv_diag
    s_hist, y_hist, rho_hist = [], [], []
    for it in range(max_iter + 1):
        crit = float(torch.max(torch.abs(g) * inv_d))
        if crit <= tol:
            return x, f, it
        if it == max_iter:
            break
        # two-loop recursion with H0 = γ · D⁻¹
        q = g.clone()
        alphas = []
        for s, y, rho in zip(reversed(s_hist), reversed(y_hist), reversed(rho_hist)):
            a_i = rho * float(torch.dot(s, q))
            q.add_(y, alpha=-a_i)
            alphas.append(a_i)
        if s_hist:
            y_last = y_hist[-1]
            gamma = float(torch.dot(s_hist[-1], y_last)) / float(torch.dot(y_last, y_last * inv_d))
        else:
            gamma = 1.0
        q.mul_(inv_d).mul_(gamma)
        for s, y, rho, a_i in zip(s_hist, y_hist, rho_hist, reversed(alphas)):
            b_i = rho * float(torch.dot(y, q))
            q.add_(s, alpha=a_i - b_i)
        direction = q.neg_()
        slope = float(torch.dot(g, direction))
        if not slope < 0:
            s_hist.clear(), y_hist.clear(), rho_hist.clear()
            direction = -g * inv_d
            slope = float(torch.dot(g, direction))
        step = 1.0
        f_noise = 1e-13 * max(1.0, abs(f))
        for _ in range(_MAX_BACKTRACKS):
            x_new = x + step * direction
            f_new, g_new = obj(x_new)
            if math.isfinite(f_new) and f_new <= f + _ARMIJO_C1 * step * slope + f_noise:
                break
            step *= 0.5
        else:
            raise ConvergenceError(
                f"line search failed at iteration {it} (preconditioned gradient {crit:.3g} > tol {tol:g})"
            )
        s_vec = x_new - x
        y_vec = g_new - g
        sy = float(torch.dot(s_vec, y_vec))
        if sy > 1e-12 * float(torch.dot(y_vec, y_vec)) and sy > 0:
            s_hist.append(s_vec)
            y_hist.append(y_vec)
            rho_hist.append(1.0 / sy)
            if len(s_hist) > _LBFGS_MEMORY:
                s_hist.pop(0), y_hist.pop(0), rho_hist.pop(0)
        x, f, g = x_new, f_new, g_new
        if float(torch.max(torch.abs(x))) > _MAX_ABS_PARAM:
            raise ConvergenceError(
                f"parameters diverge (|value| > {_MAX_ABS_PARAM:g} logits): the MAP does not exist for these "
                "data (e.g. only ties) or alpha is too small"
            )
    raise ConvergenceError(
        f"L-BFGS did not converge in max_iter={max_iter} iterations (preconditioned gradient {crit:.3g} > tol {tol:g})"
    )


def _fit_fixed_tau(prob, tau, alpha, max_iter, tol, x0=None):
    obj = _Objective(prob, tau, alpha)
    if x0 is None:
        x0 = obj.initial()
    x, f, n_iter = _lbfgs(obj, x0, max_iter, tol)
    return obj, x, f, n_iter


def _warm_start(prev_obj, prev_x, obj):
    """Carry θ, u and log ν over from a fit at another τ on the same problem."""
    x = obj.initial()
    x[obj.sl_theta] = prev_x[prev_obj.sl_theta]
    if obj.has_u and prev_obj.has_u:
        x[obj.sl_u] = prev_x[prev_obj.sl_u]
    if obj.i_nu is not None:
        x[obj.i_nu] = prev_x[prev_obj.i_nu]
    return x


def _unpack(obj, x):
    theta = x[obj.sl_theta].cpu().numpy().copy()
    u = x[obj.sl_u].cpu().numpy().copy() if obj.has_u else np.zeros(obj.p.n_pairs)
    nu = math.exp(float(x[obj.i_nu])) if obj.i_nu is not None else 0.0
    return theta, u, nu


def _outcome_log_prob(theta, u_of, nu, w, l, r, t):
    """log P(observed outcome) per comparison under the Davidson model (winner listed first)."""
    sa = theta[w] + u_of(r, w)
    sb = theta[l] + u_of(r, l)
    d = sb - sa
    if nu > 0:
        log_nu = math.log(nu)
        log_den = np.logaddexp(np.logaddexp(0.0, d), log_nu + 0.5 * d)
        return np.where(t, log_nu + 0.5 * d, 0.0) - log_den
    return -np.logaddexp(0.0, d)


def _select_tau_cv(w, l, r, t, wt, n_items, n_raters, alpha, max_iter, tol, device, grid, folds, rng):
    m = w.shape[0]
    fold_of = rng.permutation(m) % folds
    losses = np.zeros(len(grid))
    for k in range(folds):
        train, test = fold_of != k, fold_of == k
        if wt[train].sum() <= 0:
            continue
        prob = _Problem(w[train], l[train], r[train], t[train], wt[train], n_items, n_raters, device)
        prev = None
        for j, tau in enumerate(grid):
            obj = _Objective(prob, tau, alpha)
            x0 = _warm_start(*prev, obj) if prev is not None else None
            _, x, _, _ = _fit_fixed_tau(prob, tau, alpha, max_iter, tol, x0)
            prev = (obj, x)
            theta, u, nu = _unpack(obj, x)
            if not prob.has_ties and t[test].any():
                nu = 0.0  # no ties seen in training: held-out ties are scored as impossible below
            def u_of(rr, ii, prob=prob, u=u):
                idx = prob.pair_index_of(rr, ii)
                return np.where(idx >= 0, u[np.maximum(idx, 0)], 0.0)

            lp = _outcome_log_prob(theta, u_of, nu, w[test], l[test], r[test], t[test])
            if nu == 0.0:
                lp = np.where(t[test], -np.inf, lp)
            losses[j] -= float(np.dot(wt[test], np.where(wt[test] > 0, lp, 0.0)))
    losses /= wt.sum()
    best = int(np.argmin(losses))  # first minimum = smallest τ on exact ties (grid is ascending)
    return float(grid[best]), tuple((float(g), float(v)) for g, v in zip(grid, losses))


# --------------------------------------------------------------------------------------------------
# public API


def fit_hbt(
    winners,
    losers,
    raters,
    n_items: int,
    n_raters: int,
    *,
    tied=None,
    weights=None,
    tau: float | None = None,
    alpha: float = 1e-2,
    max_iter: int = 2000,
    tol: float = 1e-5,
    device=None,
    random_state=None,
    tau_grid=DEFAULT_TAU_GRID,
    cv_folds: int = 3,
) -> HBTFit:
    """Fit the hierarchical Bradley–Terry (Davidson) model by MAP.

    Parameters
    ----------
    winners, losers, raters : array_like of int, shape (n_comparisons,)
        Comparison ``k``: rater ``raters[k]`` preferred item ``winners[k]`` over ``losers[k]``
        (for a tie, the order of the two items does not matter).
    n_items, n_raters : int
        Item indices are in ``[0, n_items)``, rater indices in ``[0, n_raters)``.
    tied : array_like of bool, optional
        ``True`` where the comparison was a tie. With any (positive-weight) tie, the Davidson
        parameter ν is estimated; otherwise ν = 0.
    weights : array_like of float, optional
        Non-negative per-comparison weights (default 1); weight 2 counts as the row twice.
    tau : float or None
        Standard deviation (logits) of the personal offsets ``u_ri ~ N(0, τ²)``; 0 gives the
        population model. ``None`` estimates τ by K-fold cross-validation over ``tau_grid`` (see
        the module docstring), which costs ``cv_folds × len(tau_grid) + 1`` fits.
    alpha : float
        Precision (1/variance, per logit²) of the Gaussian prior ``θ_i ~ N(0, 1/alpha)``; must be > 0.
    max_iter : int
        Maximum L-BFGS iterations per fit.
    tol : float
        Convergence when every preconditioned gradient coordinate ``|g_j| / D_j`` (≈ remaining
        Newton step, logits) is ≤ ``tol``.
    device : None, "cpu" or "cuda"
        Where the torch tensors live; ``"cuda"`` raises ``ValueError`` if CUDA is not available.
    random_state : None, int or numpy.random.Generator
        Seeds the cross-validation folds (only used when ``tau is None``).
    tau_grid : sequence of float
        Candidate τ values for ``tau=None`` (non-negative).
    cv_folds : int
        Number of cross-validation folds for ``tau=None`` (≥ 2).

    Returns
    -------
    HBTFit

    Raises
    ------
    ValueError
        Invalid input (the message names the argument).
    ConvergenceError
        The optimiser did not converge (never returns a partial fit).
    """
    w, l, r, t, wt = _check_comparisons(winners, losers, raters, n_items, n_raters, tied, weights)
    if np.all(t[wt > 0]):
        raise ValueError("tied: every (positive-weight) comparison is a tie, so the tie parameter has no finite "
                         "estimate and strengths are not informed")
    if not (isinstance(alpha, (int, float, np.floating)) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if not (isinstance(tol, (int, float, np.floating)) and math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a finite number > 0, got {tol!r}")
    if tau is not None and not (isinstance(tau, (int, float, np.floating)) and math.isfinite(tau) and tau >= 0):
        raise ValueError(f"tau must be None or a finite number >= 0, got {tau!r}")
    dev = _resolve_device(device)
    alpha, tol = float(alpha), float(tol)

    selection = None
    if tau is None:
        grid = np.asarray(tau_grid, dtype=np.float64)
        if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid < 0):
            raise ValueError("tau_grid must be a non-empty sequence of finite numbers >= 0")
        if isinstance(cv_folds, bool) or not isinstance(cv_folds, (int, np.integer)) or cv_folds < 2:
            raise ValueError(f"cv_folds must be an integer >= 2, got {cv_folds!r}")
        if cv_folds > w.shape[0]:
            raise ValueError(f"cv_folds ({cv_folds}) exceeds the number of comparisons ({w.shape[0]})")
        grid = np.unique(grid)
        rng = np.random.default_rng(random_state)
        tau, selection = _select_tau_cv(w, l, r, t, wt, n_items, n_raters, alpha, max_iter, tol, dev, grid,
                                        int(cv_folds), rng)
    tau = float(tau)

    prob = _Problem(w, l, r, t, wt, n_items, n_raters, dev)
    obj, x, f, n_iter = _fit_fixed_tau(prob, tau, alpha, int(max_iter), tol)
    theta, u, nu = _unpack(obj, x)
    theta -= theta.mean()
    return HBTFit(
        strengths=theta,
        tau=tau,
        tie_param=nu if prob.has_ties else None,
        offset_raters=prob.pair_raters.astype(np.int64),
        offset_items=prob.pair_items.astype(np.int64),
        offsets=u,
        n_items=int(n_items),
        n_raters=int(n_raters),
        alpha=alpha,
        n_iter=int(n_iter),
        converged=True,
        log_posterior=-f,
        tau_selection=selection,
    )


def heldout_log_loss(fit: HBTFit, winners, losers, raters, tied=None) -> dict:
    """Predictive log-loss and accuracy of personal vs population predictions on held-out comparisons.

    Both models predict the binary outcome "the first-listed item wins" with the Davidson win
    probability conditional on a decisive result, ``π_a / (π_a + π_b)`` (= ``sigmoid(s_a − s_b)``), from
    the population strengths θ or the rater's personal strengths θ + u_r·.

    Ties count half: a tie scores as half a win for each side, i.e. log-loss
    ``−½ log p − ½ log(1 − p)`` and accuracy credit ½ whatever is predicted. Comparisons whose rater
    and items were not in the fit simply use offset 0 (personal == population there).

    Parameters
    ----------
    fit : HBTFit
    winners, losers, raters : array_like of int, shape (n,)
    tied : array_like of bool, optional

    Returns
    -------
    dict
        ``n`` (comparisons), ``n_ties``; ``personal_log_loss``, ``population_log_loss`` (mean, nats
        per comparison); ``personal_accuracy``, ``population_accuracy`` (share, 0–1);
        ``per_rater_n`` (int array, length n_raters), ``per_rater_personal_log_loss`` and
        ``per_rater_population_log_loss`` (float arrays; NaN for raters with no held-out comparison).
    """
    if not isinstance(fit, HBTFit):
        raise ValueError("fit must be an HBTFit")
    w, l, r, t, _ = _check_comparisons(winners, losers, raters, fit.n_items, fit.n_raters, tied, None)
    d_pop = fit.strengths[w] - fit.strengths[l]
    d_per = d_pop + fit.offset_of(r, w) - fit.offset_of(r, l)

    def score(d):
        lp_win = -np.logaddexp(0.0, -d)  # log P(first wins | decisive)
        lp_lose = -np.logaddexp(0.0, d)
        loss = np.where(t, -0.5 * (lp_win + lp_lose), -lp_win)
        acc = np.where(t, 0.5, (d > 0) + 0.5 * (d == 0))
        return loss, acc

    loss_pop, acc_pop = score(d_pop)
    loss_per, acc_per = score(d_per)
    cnt = np.bincount(r, minlength=fit.n_raters)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_pop = np.bincount(r, weights=loss_pop, minlength=fit.n_raters) / cnt
        per_per = np.bincount(r, weights=loss_per, minlength=fit.n_raters) / cnt
    return {
        "n": int(w.shape[0]),
        "n_ties": int(t.sum()),
        "personal_log_loss": float(loss_per.mean()),
        "population_log_loss": float(loss_pop.mean()),
        "personal_accuracy": float(acc_per.mean()),
        "population_accuracy": float(acc_pop.mean()),
        "per_rater_n": cnt,
        "per_rater_personal_log_loss": per_per,
        "per_rater_population_log_loss": per_pop,
    }
