"""Population Bradley–Terry model (with Davidson ties) fitted by Newton's method.

Model
-----
Every item ``i`` has a strength ``θ_i`` (natural-log scale, "logits"); write ``π_i = exp(θ_i)``.
For one comparison between ``i`` and ``j`` (Davidson 1970)::

    P(i beats j) = π_i / (π_i + π_j + ν √(π_i π_j))
    P(tie)       = ν √(π_i π_j) / (π_i + π_j + ν √(π_i π_j))

with a tie parameter ``ν ≥ 0``. When the data hold no ties, ``ν = 0`` and this is the plain
Bradley–Terry model ``P(i beats j) = 1 / (1 + exp(θ_j - θ_i))``. When there are ties ``ν`` is
estimated jointly with ``θ`` by maximum likelihood (internally as ``log ν``).

Each comparison carries a non-negative weight (a row of weight 2 counts as the same row twice);
:func:`decay_weights` gives the usual time-decay weights. ``alpha`` adds ``(alpha / 2) · Σ θ_i²`` to
the negative log-likelihood (a Gaussian prior ``θ_i ~ N(0, 1/alpha)``: MAP instead of ML).

Method
------
Comparisons are first aggregated to sufficient statistics: per unordered pair ``{i, j}`` the total
weight of comparisons between them, per item the net weighted score (wins − losses), and the total
tie weight. The penalised negative log-likelihood is then a sum over distinct pairs; it is convex in
``(θ, log ν)``. It is minimised by Newton's method with a backtracking line search, started
from the smoothed log-odds of each item's win share. The Hessian in
``θ`` is a weighted graph Laplacian (plus ``alpha·I``); each Newton system is solved either densely
(few items) or by conjugate gradients on the sparse Laplacian with a diagonal preconditioner
(many items), the ``log ν`` coordinate being eliminated by a Schur complement.

Standard errors come from the observed information (Laplace approximation) at the optimum under
the mean-zero constraint ``Σ θ_i = 0``: the covariance of ``θ`` is ``P H⁻ P`` where ``H`` is the
Hessian of the penalised negative log-likelihood in ``θ`` with ``log ν`` profiled out (Schur
complement), ``H⁻`` its (pseudo-)inverse and ``P = I − 11ᵀ/n`` the centring projection. It is
computed exactly as ``diag((H + c·11ᵀ/n)⁻¹) − 1/(n(alpha + c))`` with a dense Cholesky
factorisation (``c`` = mean of ``diag(H)``; ``H·1 = alpha·1`` makes the correction exact).
That is ``O(n_items³)`` time and ``8·n_items²`` bytes; pass ``compute_se=False`` to skip it.

This module is pure numpy/scipy and must not import Django.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse
from scipy.sparse.csgraph import connected_components

from ranking.core.errors import ConvergenceError

__all__ = [
    "BTFit",
    "ConvergenceError",
    "DisconnectedComparisonsError",
    "bt_objective",
    "decay_weights",
    "fit_bt",
]

Z_95 = 1.959963984540054  # two-sided 95 % normal quantile

_DENSE_MAX_ITEMS = 250  # up to this many items Newton systems are solved densely
_BINCOUNT_MAX_CELLS = 1 << 25
# A fitted pair this far apart (P(upset) < 1e-15) or |log ν| this large means divergence, not a fit.
_MAX_SPREAD = 35.0
_MAX_LOG_TIE = 25.0  # aggregate by bincount over n² cells when that is cheap


class DisconnectedComparisonsError(ValueError):
    """The maximum-likelihood estimate does not exist (``alpha == 0``).

    Raised when the directed comparison graph (an edge from loser to winner, ties both ways) is not
    strongly connected: some group of items never beat, or never lost to, the rest, so its
    strengths can be pushed to ±∞. Items that appear in no comparison are also not identifiable.

    Attributes
    ----------
    groups : list of numpy.ndarray
        Item indices of each strongly connected component, largest first.
    unobserved : numpy.ndarray
        Items that appear in no comparison (with positive weight).
    """

    def __init__(self, message: str, groups: list[np.ndarray], unobserved: np.ndarray):
        super().__init__(message)
        self.groups = groups
        self.unobserved = unobserved


@dataclass(frozen=True)
class BTFit:
    """Result of :func:`fit_bt`.

    Attributes
    ----------
    strengths : numpy.ndarray, shape (n_items,)
        θ, natural-log scale (logits), centred to mean zero.
    se : numpy.ndarray or None
        Standard errors of ``strengths`` (same units) from the observed information under the
        mean-zero constraint; ``None`` when ``compute_se=False``.
    ci_low, ci_high : numpy.ndarray or None
        95 % Wald intervals ``strengths ∓ 1.959964 · se``.
    tie_param : float or None
        Davidson ν (dimensionless); ``None`` when the data hold no ties.
    log_likelihood : float
        Weighted log-likelihood (natural log) at the estimate, without the prior term.
    objective : float
        Penalised negative log-likelihood ``-log_likelihood + (alpha/2)·Σθ²`` (what is minimised).
    n_iter : int
        Newton iterations performed.
    converged : bool
        Always ``True`` for a returned fit (non-convergence raises :class:`ConvergenceError`).
    """

    strengths: np.ndarray
    se: np.ndarray | None
    ci_low: np.ndarray | None
    ci_high: np.ndarray | None
    tie_param: float | None
    log_likelihood: float
    objective: float
    n_iter: int
    converged: bool


def decay_weights(ages, half_life: float) -> np.ndarray:
    """Time-decay weights ``0.5 ** (ages / half_life)``.

    Parameters
    ----------
    ages : array_like of float
        Age of each comparison, ``>= 0``, in any time unit.
    half_life : float
        Age at which a comparison counts half, ``> 0``, in the same unit as ``ages``.

    Returns
    -------
    numpy.ndarray of float
        Weights in ``(0, 1]``.
    """
    half_life = float(half_life)
    if not np.isfinite(half_life) or half_life <= 0:
        raise ValueError(f"half_life must be a positive finite number, got {half_life!r}")
    ages = np.asarray(ages, dtype=float)
    if np.isnan(ages).any():
        raise ValueError("ages must not contain NaN")
    if (ages < 0).any():
        raise ValueError("ages must be >= 0")
    return 0.5 ** (ages / half_life)


# --------------------------------------------------------------------------------------------
# Input handling and aggregation


def _as_index_array(name: str, values, n_items: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of item indices, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer item indices, got dtype {arr.dtype}")
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi >= n_items:
        raise ValueError(f"{name} must be in [0, n_items={n_items}), found values in [{lo}, {hi}]")
    return arr.astype(np.int64, copy=False)


@dataclass(frozen=True)
class _Aggregate:
    n_items: int
    a: np.ndarray  # lower item index of each distinct pair (a < b), sorted by (a, b)
    b: np.ndarray
    count: np.ndarray  # total weight of comparisons between a and b (wins both ways + ties)
    net: np.ndarray  # per item: weighted wins − weighted losses (ties excluded)
    ties: float  # total tie weight
    a_beats_b: np.ndarray  # bool: some positive-weight row where a won (or a tie)
    b_beats_a: np.ndarray


def _aggregate(winners, losers, n_items, tied, weights) -> _Aggregate:
    m = winners.size
    w = weights
    if tied is not None and not tied.any():
        tied = None

    lo = np.minimum(winners, losers)
    hi = np.maximum(winners, losers)
    # +1 if the lower index won, −1 if the higher index won, 0 for a tie.
    sign = np.where(winners == lo, 1.0, -1.0)
    if tied is not None:
        sign[tied] = 0.0
    key = lo * n_items + hi
    wsign = sign if w is None else sign * w

    net = (
        np.bincount(winners, weights=w, minlength=n_items) - np.bincount(losers, weights=w, minlength=n_items)
    ).astype(float)
    if tied is not None:
        tw = tied.astype(float) if w is None else tied * w
        tie_by_item = np.bincount(winners, weights=tw, minlength=n_items) - np.bincount(
            losers, weights=tw, minlength=n_items
        )
        net -= tie_by_item  # ties are neither wins nor losses
        ties = float(tw.sum())
    else:
        ties = 0.0

    cells = n_items * n_items
    if cells <= _BINCOUNT_MAX_CELLS and cells <= 8 * max(m, 1):
        count = np.bincount(key, weights=w, minlength=cells)
        # Weight where the lower index won (+) / higher index won (−), and ties, per cell.
        fwd = np.bincount(key, weights=(wsign > 0) * (1.0 if w is None else w), minlength=cells)
        bwd = np.bincount(key, weights=(wsign < 0) * (1.0 if w is None else w), minlength=cells)
        if tied is not None:
            tcell = np.bincount(key, weights=tw, minlength=cells)
            fwd = fwd + tcell
            bwd = bwd + tcell
        keys = np.flatnonzero(count > 0)
        count = count[keys]
        fwd = fwd[keys]
        bwd = bwd[keys]
    else:
        if w is None and tied is None:
            # Fast path: sort once; per pair count and number of lower-index wins.
            if 2 * cells < 2**31:  # smaller keys sort faster
                key = key.astype(np.int32)
            order_keys = key * 2 + (sign < 0)  # lower-index wins first within a pair
            order_keys.sort()
            pair = order_keys >> 1
            start = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
            keys = pair[start]
            count = np.diff(np.r_[start, m]).astype(float)
            bwd = np.add.reduceat(order_keys & 1, start).astype(float)
            fwd = count - bwd
        else:
            keys, inv = np.unique(key, return_inverse=True)
            k = keys.size
            ww = np.ones(m) if w is None else w
            count = np.bincount(inv, weights=ww, minlength=k)
            fwd = np.bincount(inv, weights=ww * (sign > 0), minlength=k)
            bwd = np.bincount(inv, weights=ww * (sign < 0), minlength=k)
            if tied is not None:
                tcell = np.bincount(inv, weights=tw, minlength=k)
                fwd = fwd + tcell
                bwd = bwd + tcell
            keep = count > 0
            if not keep.all():
                keys, count, fwd, bwd = keys[keep], count[keep], fwd[keep], bwd[keep]
    keys = keys.astype(np.int64, copy=False)
    a = keys // n_items
    b = keys - a * n_items
    return _Aggregate(
        n_items=n_items,
        a=a,
        b=b,
        count=count,
        net=net,
        ties=ties,
        a_beats_b=fwd > 0,
        b_beats_a=bwd > 0,
    )


def _fmt_items(items: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(int(i)) for i in items[:limit])
    more = f", … ({items.size} items)" if items.size > limit else ""
    return f"[{shown}{more}]"


def _check_identifiable(agg: _Aggregate) -> None:
    """Raise :class:`DisconnectedComparisonsError` if the ML estimate does not exist."""
    n = agg.n_items
    # Directed edge loser -> winner; ties give both directions.
    src = np.concatenate([agg.b[agg.a_beats_b], agg.a[agg.b_beats_a]])
    dst = np.concatenate([agg.a[agg.a_beats_b], agg.b[agg.b_beats_a]])
    graph = scipy.sparse.csr_matrix((np.ones(src.size, dtype=np.int8), (src, dst)), shape=(n, n))
    n_comp, labels = connected_components(graph, directed=True, connection="strong")
    if n_comp == 1:
        return
    seen = np.zeros(n, dtype=bool)
    seen[agg.a] = True
    seen[agg.b] = True
    unobserved = np.flatnonzero(~seen)
    sizes = np.bincount(labels, minlength=n_comp)
    order = np.argsort(-sizes, kind="stable")
    members = np.argsort(labels, kind="stable")
    bounds = np.r_[0, np.cumsum(sizes)]
    groups = [members[bounds[c] : bounds[c + 1]] for c in order]
    # Which components never lost to / never beat items outside themselves.
    cross = labels[src] != labels[dst]
    lost_out = np.zeros(n_comp, dtype=bool)
    won_out = np.zeros(n_comp, dtype=bool)
    lost_out[labels[src[cross]]] = True
    won_out[labels[dst[cross]]] = True
    parts = []
    observed_groups = [c for c in order if sizes[c] > 1 or seen[members[bounds[c]]]]
    for c in observed_groups[:5]:
        g = members[bounds[c] : bounds[c + 1]]
        note = []
        if not lost_out[c]:
            note.append("never lost to the rest")
        if not won_out[c]:
            note.append("never beat the rest")
        parts.append(f"{_fmt_items(g)} ({', '.join(note) or 'connected both ways only indirectly'})")
    msg = (
        f"comparison graph is not strongly connected ({n_comp} groups), so the maximum-likelihood "
        f"strengths do not exist; use alpha > 0 or collect comparisons across groups."
    )
    if parts:
        more = f" and {len(observed_groups) - 5} more" if len(observed_groups) > 5 else ""
        msg += " Groups: " + "; ".join(parts) + more + "."
    if unobserved.size:
        msg += f" Items in no comparison: {_fmt_items(unobserved)}."
    raise DisconnectedComparisonsError(msg, groups=groups, unobserved=unobserved)


# --------------------------------------------------------------------------------------------
# Objective, derivatives and Newton solver


class _Problem:
    """Penalised NLL on aggregated data, in θ (n items) and, with ties, η = log ν."""

    def __init__(self, agg: _Aggregate, alpha: float):
        self.agg = agg
        self.n = agg.n_items
        self.alpha = alpha
        self.has_ties = agg.ties > 0
        self._upper = None  # sparse upper-triangular adjacency (edge weights), built lazily

    def _edge_sums(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per item sums of an edge quantity over pairs where the item is ``a`` / is ``b``."""
        upper = self._upper_with(values)
        ones = self._ones
        return upper @ ones, upper.T @ ones

    def _upper_with(self, values: np.ndarray):
        """Sparse upper-triangular n×n matrix with ``values`` at (a, b); structure built once."""
        if self._upper is None:
            agg = self.agg
            indptr = np.zeros(self.n + 1, dtype=np.int64)
            np.cumsum(np.bincount(agg.a, minlength=self.n), out=indptr[1:])
            idx_dtype = np.int32 if agg.a.size < 2**31 - 1 else np.int64
            self._upper = scipy.sparse.csr_matrix(
                (values.astype(float), agg.b.astype(idx_dtype), indptr.astype(idx_dtype)),
                shape=(self.n, self.n),
            )
            self._ones = np.ones(self.n)
        else:
            self._upper.data = values
        return self._upper

    def evaluate(self, theta: np.ndarray, eta: float, derivatives: bool = True):
        """Objective and (optionally) gradient and Hessian pieces at (θ, η).

        Per pair with d = θ_a − θ_b and D = e^{d/2} + e^{−d/2} + ν the term is
        count·log D; with s = e^{−|d|} everything is evaluated in overflow-free scaled form.
        """
        agg = self.agg
        d = theta[agg.a]
        d -= theta[agg.b]
        ad = np.abs(d)
        s = np.exp(-ad)
        if self.has_ties:
            nu = np.exp(eta)
            nus = nu * np.exp(-0.5 * ad)  # ν e^{−|d|/2}
            dprime = 1.0 + s + nus  # D · e^{−|d|/2}
        else:
            nus = None
            dprime = 1.0 + s
        obj = 0.5 * float(agg.count @ ad) + float(agg.count @ np.log(dprime))
        obj -= 0.5 * float(agg.net @ theta)
        if self.has_ties:
            obj -= agg.ties * eta
        if self.alpha:
            obj += 0.5 * self.alpha * float(theta @ theta)
        if not derivatives:
            return obj, None
        # f'(d) = sinh(d/2)/D ; f''(d) = (1 + ν cosh(d/2)/2)/D².
        inv = np.divide(agg.count, dprime)  # count / D'
        cfp = np.copysign(1.0 - s, d)
        cfp *= 0.5
        cfp *= inv  # count · f'
        ga, gb = self._edge_sums(cfp)
        grad = ga - gb
        grad -= 0.5 * agg.net
        if self.alpha:
            grad += self.alpha * theta
        if self.has_ties:
            cprime = 0.5 * (1.0 + s)
            hw = (s + 0.5 * nus * cprime) * inv / dprime
        else:
            hw = s * inv
            hw /= dprime  # count · f'' = Laplacian edge weights
        da, db = self._edge_sums(hw)
        deg = da + db
        deg += self.alpha
        out = {"grad": grad, "hw": hw, "deg": deg}
        if self.has_ties:
            # ∂f/∂η = ν/D ; ∂²f/∂d∂η = −sinh(d/2)·ν/D² ; ∂²f/∂η² = 2 cosh(d/2)·ν/D².
            sh = np.sign(d) * 0.5 * (1.0 - s)
            out["g_eta"] = float(inv @ nus) - agg.ties
            mixed = -sh * nus * inv / dprime
            ma, mb = self._edge_sums(mixed)
            out["h_theta_eta"] = ma - mb
            out["h_eta_eta"] = float(inv @ (2.0 * cprime * nus / dprime))
        return obj, out

    # Linear algebra on the θ block H = L(hw) + alpha·I -------------------------------------

    def dense_hessian(self, hw: np.ndarray, deg: np.ndarray) -> np.ndarray:
        n = self.n
        agg = self.agg
        h = np.bincount(agg.a * n + agg.b, weights=-hw, minlength=n * n).reshape(n, n)
        h += h.T
        h[np.diag_indices(n)] = deg
        return h

    def _matvec_factory(self, hw: np.ndarray, deg: np.ndarray):
        upper = self._upper_with(hw)
        upper_t = upper.T  # CSC view, no copy

        def matvec(x):
            y = deg * x
            y -= upper @ x
            y -= upper_t @ x
            return y

        return matvec

    def solve_theta(self, hw, deg, rhs_list, rtol):
        """Solve H x = r for each r (each r ⟂ 1 when alpha == 0); return solutions."""
        n = self.n
        if n <= _DENSE_MAX_ITEMS:
            h = self.dense_hessian(hw, deg)
            c = float(deg.mean()) or 1.0
            h += c / n  # (H + c·11ᵀ/n)⁻¹ r = H⁺ r for r ⟂ 1
            cf = scipy.linalg.cho_factor(h, check_finite=False)
            if self.alpha == 0:
                rhs_list = [r - r.mean() for r in rhs_list]
            return [scipy.linalg.cho_solve(cf, r, check_finite=False) for r in rhs_list]
        matvec = self._matvec_factory(hw, deg)
        dinv = 1.0 / np.where(deg > 0, deg, 1.0)
        project = self.alpha == 0  # H is singular with null space 1: keep residuals ⟂ 1
        return [_pcg(matvec, r, dinv, rtol, maxiter=max(500, n // 10), project=project) for r in rhs_list]


def _pcg(matvec, b, dinv, rtol, maxiter, project):
    """Jacobi-preconditioned conjugate gradients.

    With ``project`` the system is the singular Laplacian (null space 1): the right-hand side and
    residuals are kept orthogonal to 1 so that rounding cannot excite the null space.
    """
    x = np.zeros_like(b)
    r = b - b.mean() if project else b.copy()
    bnorm = float(np.linalg.norm(b))
    if bnorm == 0.0:
        return x
    target = rtol * bnorm
    z = dinv * r
    p = z.copy()
    rz = float(r @ z)
    for _ in range(maxiter):
        ap = matvec(p)
        pap = float(p @ ap)
        if pap <= 0:
            break
        step = rz / pap
        x += step * p
        r -= step * ap
        if project:
            r -= r.mean()
        if float(np.linalg.norm(r)) <= target:
            break
        z = dinv * r
        rz_new = float(r @ z)
        p *= rz_new / rz
        p += z
        rz = rz_new
    return x


def _initial_strengths(problem: _Problem) -> np.ndarray:
    """Starting point: smoothed log-odds of each item's win share (saves Newton iterations)."""
    agg = problem.agg
    games = np.bincount(agg.a, weights=agg.count, minlength=problem.n)
    games += np.bincount(agg.b, weights=agg.count, minlength=problem.n)
    wins = 0.5 * (games + agg.net)  # ties count half
    theta = np.log((wins + 0.5) / (games - wins + 0.5))
    theta -= theta.mean()
    return theta


def _newton(problem: _Problem, max_iter: int, tol: float):
    n = problem.n
    theta = _initial_strengths(problem)
    eta = 0.0  # log ν (unused without ties)
    obj, der = problem.evaluate(theta, eta)
    for it in range(1, max_iter + 1):
        g = der["grad"]
        gnorm = float(np.max(np.abs(g))) if n else 0.0
        if problem.has_ties:
            gnorm = max(gnorm, abs(der["g_eta"]))
        # Inexact Newton: forcing term → 0 as the gradient vanishes (superlinear convergence).
        rtol = min(0.1, max(gnorm, 1e-14) ** 0.5, 1e-3 if it > 1 else 0.1) if n > _DENSE_MAX_ITEMS else 0.0
        rtol = max(rtol, 1e-13)
        if problem.has_ties:
            x, y = problem.solve_theta(der["hw"], der["deg"], [g, der["h_theta_eta"]], rtol)
            h = der["h_theta_eta"]
            schur = der["h_eta_eta"] - float(h @ y)
            if schur <= 0:
                schur = max(der["h_eta_eta"], 1e-12)
                y = np.zeros_like(y)
            d_eta = -(der["g_eta"] - float(h @ x)) / schur
            d_theta = -(x + y * d_eta)
        else:
            (x,) = problem.solve_theta(der["hw"], der["deg"], [g], rtol)
            d_theta = -x
            d_eta = 0.0
        if problem.alpha == 0:
            d_theta -= d_theta.mean()
        slope = float(g @ d_theta) + (der["g_eta"] * d_eta if problem.has_ties else 0.0)
        if not np.isfinite(slope):
            raise ConvergenceError("non-finite Newton direction")
        if slope >= 0:  # not a descent direction (inexact solve): fall back to scaled gradient
            d_theta = -g / np.where(der["deg"] > 0, der["deg"], 1.0)
            d_eta = -der["g_eta"] / max(der["h_eta_eta"], 1e-12) if problem.has_ties else 0.0
            slope = float(g @ d_theta) + (der["g_eta"] * d_eta if problem.has_ties else 0.0)
        step = 1.0
        for _ in range(60):
            t_theta = theta + step * d_theta
            t_eta = eta + step * d_eta
            t_obj, t_der = problem.evaluate(t_theta, t_eta)
            if t_obj <= obj + 1e-4 * step * slope or (
                abs(t_obj - obj) <= 1e-12 * max(1.0, abs(obj)) and step == 1.0
            ):
                break
            step *= 0.5
        else:
            raise ConvergenceError("line search failed to decrease the objective")
        move = step * max(float(np.max(np.abs(d_theta))) if n else 0.0, abs(d_eta))
        theta, eta, obj, der = t_theta, t_eta, t_obj, t_der
        if step == 1.0 and move <= tol:
            return theta, eta, obj, der, it
    raise ConvergenceError(
        f"Newton's method did not converge to tol={tol} in max_iter={max_iter} iterations"
    )


def _standard_errors(problem: _Problem, der) -> np.ndarray:
    n = problem.n
    h = problem.dense_hessian(der["hw"], der["deg"])
    if problem.has_ties:
        v = der["h_theta_eta"]
        h -= np.outer(v, v) / der["h_eta_eta"]  # profile out η (Schur complement); v ⟂ 1
    c = float(np.mean(np.diag(h))) or 1.0
    h += c / n
    chol, info = scipy.linalg.lapack.dpotrf(h, lower=False, overwrite_a=True)
    if info != 0:
        raise ConvergenceError("observed information is not positive definite; cannot compute SE")
    inv, info = scipy.linalg.lapack.dpotri(chol, lower=False, overwrite_c=True)
    if info != 0:
        raise ConvergenceError("could not invert the observed information")
    var = np.diag(inv) - 1.0 / (n * (problem.alpha + c))
    return np.sqrt(np.maximum(var, 0.0))


def bt_objective(
    strengths, winners, losers, n_items: int, *, tied=None, weights=None, alpha: float = 0.0, tie_param=None
) -> float:
    """Penalised negative log-likelihood of the model at given strengths (natural log).

    Same model and arguments as :func:`fit_bt`; ``tie_param`` is ν (required iff there are ties).
    """
    winners, losers, tied, weights = _validate(winners, losers, n_items, tied, weights, alpha)
    agg = _aggregate(winners, losers, n_items, tied, weights)
    problem = _Problem(agg, alpha)
    theta = np.asarray(strengths, dtype=float)
    if theta.shape != (n_items,):
        raise ValueError(f"strengths must have shape ({n_items},), got {theta.shape}")
    eta = 0.0
    if problem.has_ties:
        if tie_param is None or tie_param <= 0:
            raise ValueError("tie_param must be > 0 when there are ties")
        eta = float(np.log(tie_param))
    obj, _ = problem.evaluate(theta, eta, derivatives=False)
    return obj


def _validate(winners, losers, n_items, tied, weights, alpha):
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    n_items = int(n_items)
    alpha = float(alpha)
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    winners = _as_index_array("winners", winners, n_items)
    losers = _as_index_array("losers", losers, n_items)
    if winners.shape != losers.shape:
        raise ValueError(
            f"winners and losers must have the same length, got {winners.size} and {losers.size}"
        )
    same = winners == losers
    if same.any():
        raise ValueError(f"winners and losers must differ in every row (row {int(np.argmax(same))})")
    if tied is not None:
        tied = np.asarray(tied)
        if tied.shape != winners.shape:
            raise ValueError(f"tied must have shape {winners.shape}, got {tied.shape}")
        if tied.dtype != bool:
            if tied.dtype.kind in "iu" and np.isin(tied, (0, 1)).all():
                tied = tied.astype(bool)
            else:
                raise ValueError(f"tied must be a boolean array, got dtype {tied.dtype}")
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        if weights.shape != winners.shape:
            raise ValueError(f"weights must have shape {winners.shape}, got {weights.shape}")
        if not np.all(np.isfinite(weights)):
            raise ValueError("weights must be finite (no NaN or inf)")
        if np.any(weights < 0):
            raise ValueError("weights must be non-negative")
    return winners, losers, tied, weights


def fit_bt(
    winners,
    losers,
    n_items: int,
    *,
    tied=None,
    weights=None,
    alpha: float = 0.0,
    max_iter: int = 100,
    tol: float = 1e-8,
    compute_se: bool = True,
) -> BTFit:
    """Fit Bradley–Terry strengths (Davidson ties) by maximum likelihood or MAP.

    Parameters
    ----------
    winners, losers : array_like of int, shape (m,)
        Item indices in ``[0, n_items)``, one row per comparison. For a tied row the order of the
        two items is irrelevant.
    n_items : int
        Number of items. Items that appear in no comparison need ``alpha > 0``.
    tied : array_like of bool, shape (m,), optional
        Rows that were ties. With at least one tie the Davidson tie parameter ν is estimated.
    weights : array_like of float, shape (m,), optional
        Non-negative weight per row (a row of weight 2 equals that row twice); e.g.
        :func:`decay_weights`. Rows of weight 0 are ignored.
    alpha : float, default 0
        Prior precision: adds ``(alpha/2)·Σθ²`` to the negative log-likelihood (θ ~ N(0, 1/alpha)).
        With ``alpha == 0`` the comparison graph must be strongly connected.
    max_iter : int, default 100
        Maximum number of Newton iterations.
    tol : float, default 1e-8
        Convergence when a full Newton step moves no coordinate (θ in logits, log ν) by more than
        ``tol``; Newton's quadratic convergence leaves an error of order ``tol²``.
    compute_se : bool, default True
        Compute standard errors and 95 % CIs (dense, ``O(n_items³)``; see module docstring).

    Returns
    -------
    BTFit
        Strengths θ (logits, mean zero), their SEs and 95 % CIs, ν, log-likelihood.

    Raises
    ------
    ValueError
        Invalid input (the message names the argument).
    DisconnectedComparisonsError
        ``alpha == 0`` and the maximum-likelihood estimate does not exist.
    ConvergenceError
        Newton's method did not converge, or the estimates run off to infinity (with ties, some
        quasi-separated data pass the connectivity check yet have no finite maximum-likelihood
        estimate, e.g. two items where one won twice and tied once).
    """
    winners, losers, tied, weights = _validate(winners, losers, n_items, tied, weights, alpha)
    n_items = int(n_items)
    alpha = float(alpha)
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    tol = float(tol)
    if not np.isfinite(tol) or tol <= 0:
        raise ValueError(f"tol must be a positive number, got {tol!r}")

    agg = _aggregate(winners, losers, n_items, tied, weights)
    if alpha == 0:
        _check_identifiable(agg)
        if agg.ties > 0 and agg.ties >= agg.count.sum():
            raise DisconnectedComparisonsError(
                "every comparison is a tie, so the tie parameter ν has no finite estimate; "
                "collect some decided comparisons",
                groups=[np.arange(n_items)],
                unobserved=np.array([], dtype=np.int64),
            )
    elif agg.ties > 0 and agg.ties >= agg.count.sum():
        raise ValueError("every comparison is a tie: the tie parameter ν has no finite estimate")
    problem = _Problem(agg, alpha)
    theta, eta, obj, der, n_iter = _newton(problem, max_iter, tol)
    theta = theta - theta.mean() if theta.size else theta
    if not np.all(np.isfinite(theta)) or not np.isfinite(obj):
        raise ConvergenceError("fit produced non-finite values")
    spread = float(np.max(np.abs(theta[agg.a] - theta[agg.b]))) if agg.a.size else 0.0
    if spread > _MAX_SPREAD or abs(eta) > _MAX_LOG_TIE:
        # The objective only flattened out: estimates are running off to infinity. With the tie
        # parameter estimated this happens for quasi-separated data that pass the connectivity
        # check (e.g. two items, one never lost: two wins and a tie).
        raise ConvergenceError(
            f"estimates diverge (a compared pair {spread:.0f} logits apart, log ν = {eta:.1f}): "
            "the maximum-likelihood estimate does not exist for these data; use alpha > 0"
        )
    if alpha > 0:
        # The MAP is mean-zero already (Σ∇ = alpha·Σθ); re-evaluate after centring for exactness.
        obj, _ = problem.evaluate(theta, eta, derivatives=False)
    penalty = 0.5 * alpha * float(theta @ theta)
    se = ci_low = ci_high = None
    if compute_se:
        se = _standard_errors(problem, der)
        ci_low = theta - Z_95 * se
        ci_high = theta + Z_95 * se
    return BTFit(
        strengths=theta,
        se=se,
        ci_low=ci_low,
        ci_high=ci_high,
        tie_param=float(np.exp(eta)) if problem.has_ties else None,
        log_likelihood=-(obj - penalty),
        objective=obj,
        n_iter=n_iter,
        converged=True,
    )
