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

Standard errors
---------------
They come from the observed information (Laplace approximation) at the optimum under the
mean-zero constraint ``Σ θ_i = 0``: the covariance of ``θ`` is ``P S⁺ P`` where ``S`` is the
Hessian of the penalised negative log-likelihood in ``θ`` with ``log ν`` profiled out (Schur
complement), ``S⁺`` its (pseudo-)inverse and ``P = I − 11ᵀ/n`` the centring projection. Only the
diagonal is needed. ``compute_se`` chooses how it is computed (``True`` = ``"auto"``: ``"dense"``
up to 1,500 items, ``"bounded"`` above):

``"dense"`` — exact: ``diag((S + c·11ᵀ/n)⁻¹) − 1/(n(alpha + c))`` by a dense Cholesky factorisation
and inversion (``c`` = mean of ``diag(S)``; ``S·1 = alpha·1`` makes the correction exact).
``O(n³)`` time and ``8·n²`` bytes: ~0.2 s at 1,500 items, 10–50 s at 10,000 on 2 cores.

``"bounded"`` — every SE within ``se_rtol`` (default 0.5 %) of the exact one, certified per item.
Scale by ``D = diag(L) + alpha`` (``L`` the weighted Laplacian of the θ block) and deflate: ``B = D^{-1/2} S_P D^{-1/2} + u uᵀ`` with
``S_P = S − alpha·11ᵀ/n`` (null vector 1) and ``u ∝ D^{1/2}1``, so that the covariance is
``P G P`` with ``G = D^{-1/2} B⁻¹ D^{-1/2}``: ``var_i = G_ii − 2 (G1)_i / n + 1ᵀG1 / n²``. The
spectrum of ``B`` lies in ``[a, b] ⊂ (0, 2]``. For any vector ``x`` with true residual
``r = e_i − B x``::

    (B⁻¹)_ii = x_i + xᵀr + rᵀB⁻¹r,        ‖r‖²/b ≤ rᵀB⁻¹r ≤ ‖r‖²/a,

so every ``x`` gives a lower and an upper bound on ``(B⁻¹)_ii``; ``G1`` (one CG solve) is bounded
the same way. The SE returned is the midpoint of the resulting interval for ``√var_i``, accepted
only when the interval's half-width is at most ``se_rtol`` times its lower end (that ratio, maxed
over items, is ``BTFit.se_error_bound``). ``x`` is tried in this order, each step only for the
items not yet certified: (1) ``x = e_i / B_ii``, O(edges) for all items at once; (2) the
Galerkin solution in ``span{e_i, A e_i}`` (``A`` the scaled off-diagonal weights; needs ``A²``,
used when it has at most 2.5·10⁸ walks); (3) conjugate gradients on ``B x = e_i`` for blocks of
items, certified on the true residual; (4) exact: a sparse LU factorisation (SuperLU, minimum
degree) of the grounded Laplacian (or of ``L + alpha·I``) and one solve per item, or the dense
inversion when fill-in makes that cheaper (≤ 16,000 items). With 1,000,000 comparisons over
10,000 items step (1) certifies every item (~0.1 s, bound ~0.2 %); chain- and grid-like graphs,
whose spectral gap is tiny, go to step (4).

``a`` and a sharper ``b`` come from 30, 60 or 120 Lanczos steps (full reorthogonalisation,
Gaussian start from a fixed seed, so a fit is reproducible) and the Kuczyński–Woźniakowski bound
(SIAM J. Matrix Anal. Appl. 13(4), 1992): after ``k`` steps on a positive semi-definite matrix,
``P(θ_max < (1 − ε) λ_max) ≤ 1.648·√n·exp(−√ε·(2k − 1))``. Applied to ``B`` and to ``b·I − B``
with ``ε`` set so that each probability is at most 1e-9/6, ``[a, b]`` holds the spectrum (and so
every certificate holds) except with probability 1e-9 over the random start. The bounds are
exact-arithmetic statements; rounding adds errors of order 1e-13 relative.

This module is pure numpy/scipy and must not import Django.
"""

from __future__ import annotations

import copy
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
    se_method : str or None
        How ``se`` was computed: ``"dense"`` (exact) or ``"bounded"`` (certified bounds, with exact
        sparse solves where the bounds were not tight enough); ``None`` without SEs.
    se_error_bound : float or None
        Certified bound on ``max_i |se_i − exact_i| / exact_i`` (``0.0``: exact up to rounding). For
        ``"bounded"`` it holds unless the randomised spectral bounds failed, which happens with
        probability at most 1e-9 (module docstring).
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
    se_method: str | None = None
    se_error_bound: float | None = None


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
        self._direct = False  # Newton systems by sparse factorisation (set once CG stalls)

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
        half_abs = 0.5 * float(agg.count @ ad)
        log_term = float(agg.count @ np.log(dprime))
        net_term = 0.5 * float(agg.net @ theta)
        obj = half_abs + log_term - net_term
        if self.has_ties:
            obj -= agg.ties * eta
        if self.alpha:
            obj += 0.5 * self.alpha * float(theta @ theta)
        if not derivatives:
            return obj, None
        # The sum cancels (e.g. 30,000 wins to 1: two terms of 1.5e5 leave an objective of ~10),
        # so its rounding error scales with the size of the terms, not of the result.
        scale = half_abs + log_term + 0.5 * float(np.abs(agg.net) @ np.abs(theta))
        if self.has_ties:
            scale += agg.ties * abs(eta)
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
        out = {"grad": grad, "hw": hw, "deg": deg, "rounding": 16.0 * np.finfo(float).eps * scale}
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
        if not self._direct:
            matvec = self._matvec_factory(hw, deg)
            dinv = 1.0 / np.where(deg > 0, deg, 1.0)
            project = self.alpha == 0  # H is singular with null space 1: keep residuals ⟂ 1
            out = [_pcg(matvec, r, dinv, rtol, maxiter=max(500, n // 10), project=project) for r in rhs_list]
            if all(ok for _, ok in out):
                return [x for x, _ in out]
            # CG stalls on graphs with a tiny spectral gap (long chains, grids): their Laplacians
            # have little fill-in, so a sparse factorisation is cheap. Use it from now on.
            self._direct = True
        solve = _SparseFactor(self, hw, deg).solve
        solutions = [solve(r) for r in rhs_list]
        if self.alpha == 0:
            solutions = [x - x.mean() for x in solutions]
        return solutions


class _SparseFactor:
    """Sparse LU (SuperLU, minimum degree on AᵀA + A) of the θ block ``H = L + alpha·I``.

    With ``alpha == 0`` H is singular (null space 1), so the Laplacian is grounded at its
    highest-degree item g (row and column g removed): the inverse Γ of the rest, with a zero row
    and column g, is a generalised inverse of L (``L⁺ = P Γ P``); for r ⟂ 1, ``Γ r`` solves
    ``L x = r`` up to a multiple of 1.
    """

    def __init__(self, problem: _Problem, hw: np.ndarray, deg: np.ndarray):
        import scipy.sparse.linalg

        n = problem.n
        upper = problem._upper_with(hw)
        lap = (scipy.sparse.diags(deg) - upper - upper.T).tocsc()
        self.keep = np.ones(n, dtype=bool)
        if problem.alpha == 0:
            self.keep[int(np.argmax(deg))] = False
            lap = lap[self.keep][:, self.keep].tocsc()
        self.position = np.cumsum(self.keep) - 1
        self.size = int(self.keep.sum())
        self.lu = scipy.sparse.linalg.splu(
            lap, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
        )

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """Γ·rhs (alpha == 0) or H⁻¹·rhs, for full-length right-hand side(s)."""
        out = np.zeros_like(rhs, dtype=float)
        out[self.keep] = self.lu.solve(np.ascontiguousarray(rhs[self.keep], dtype=float))
        return out

    def diagonal(self, items: np.ndarray, block: int) -> np.ndarray:
        """Γ_ii (or (H⁻¹)_ii) for ``items``: one triangular solve pair per item, in blocks."""
        out = np.zeros(items.size)
        sel = np.flatnonzero(self.keep[items])
        for start in range(0, sel.size, block):
            chunk = sel[start : start + block]
            rows = self.position[items[chunk]]
            rhs = np.zeros((self.size, chunk.size))
            rhs[rows, np.arange(chunk.size)] = 1.0
            out[chunk] = self.lu.solve(rhs)[rows, np.arange(chunk.size)]
        return out


def _pcg(matvec, b, dinv, rtol, maxiter, project):
    """Jacobi-preconditioned conjugate gradients; returns the solution and whether it converged.

    With ``project`` the system is the singular Laplacian (null space 1): the right-hand side and
    residuals are kept orthogonal to 1 so that rounding cannot excite the null space.
    """
    x = np.zeros_like(b)
    r = b - b.mean() if project else b.copy()
    bnorm = float(np.linalg.norm(b))
    if bnorm == 0.0:
        return x, True
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
            return x, True
        z = dinv * r
        rz_new = float(r @ z)
        p *= rz_new / rz
        p += z
        rz = rz_new
    return x, False


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
            # A full step that changes the objective by no more than its rounding error is taken:
            # near the optimum the decrease is below what the cancelling sum can resolve.
            flat = max(1e-12 * max(1.0, abs(obj)), der["rounding"], t_der["rounding"])
            if t_obj <= obj + 1e-4 * step * slope or (abs(t_obj - obj) <= flat and step == 1.0):
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


# --------------------------------------------------------------------------------------------
# Standard errors (see the module docstring, "Standard errors")

SE_METHODS = ("auto", "dense", "bounded")
_SE_DENSE_MAX_ITEMS = 1500  # compute_se="auto": exact dense SEs up to this many items, bounded above
_SE_BOUNDED_MIN_ITEMS = 64  # "bounded" on fewer items than this is the exact dense computation
_SE_FAIL_PROB = 1e-9  # probability (over the random Lanczos start) that a spectral bound is wrong
_LANCZOS_CHECKPOINTS = (30, 60, 120)  # Lanczos steps tried in turn while the bounds are too loose
_KW_CONST = 1.648  # Kuczyński & Woźniakowski (1992), Theorem 4.2(a)
_LOCAL_MAX_PATHS = 250_000_000  # two-step local bounds when A² has at most this many walks (~4 s)
_CG_MAX_ITER = 400  # block CG iterations per item before the exact sparse solve takes over
_EXACT_BLOCK = 256  # right-hand sides per sparse triangular solve
_SE_DENSE_FALLBACK_MAX = 16_000  # the exact fallback may use the dense inversion up to this size (2 GB)


@dataclass(frozen=True)
class _SEResult:
    se: np.ndarray
    method: str
    error_bound: float  # certified max relative error of se (0.0: exact up to rounding)


def _dense_variances(problem: _Problem, der) -> np.ndarray:
    """Exact diag(P S⁺ P) by a dense Cholesky factorisation and inversion: O(n³), 8·n² bytes."""
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
    return np.diag(inv) - 1.0 / (n * (problem.alpha + c))


class _ScaledInformation:
    """``B = D^{-1/2} (S_P) D^{-1/2} + u uᵀ``: the Jacobi-scaled, deflated information matrix.

    ``S_P = L + alpha·(I − 11ᵀ/n) − v vᵀ/h`` is the information in θ restricted to the mean-zero
    subspace (L: weighted Laplacian, v, h: the η coupling when there are ties); its null vector
    ``1`` becomes ``u = D^{1/2}1/‖D^{1/2}1‖`` after scaling by ``D = diag(L) + alpha``, and is given
    eigenvalue 1. ``B = I − A + Z·diag(C)·Zᵀ`` with ``A`` the scaled off-diagonal weights (sparse,
    zero diagonal) and ``Z`` at most three dense columns. The spectrum of ``B`` is that of the scaled
    ``S_P`` on ``u⊥`` together with 1, inside ``(0, 2]``.
    """

    def __init__(self, problem: _Problem, der):
        n = problem.n
        agg = problem.agg
        self.n = n
        deg = der["deg"]
        self.sd = sd = 1.0 / np.sqrt(deg)
        self.edge_values = der["hw"] * sd[agg.a] * sd[agg.b]
        upper = problem._upper_with(der["hw"])
        self.upper = scipy.sparse.csr_matrix((self.edge_values, upper.indices, upper.indptr), shape=(n, n))
        self.upper_t = self.upper.T
        cols, coef = [], []
        if problem.alpha:
            cols.append(sd)
            coef.append(-problem.alpha / n)
        if problem.has_ties:
            cols.append(sd * der["h_theta_eta"])
            coef.append(-1.0 / der["h_eta_eta"])
        u = np.sqrt(deg)
        cols.append(u / np.linalg.norm(u))
        coef.append(1.0)
        self.z = np.column_stack(cols)
        self.c = np.asarray(coef)
        self.agg = agg

    def matvec(self, x: np.ndarray) -> np.ndarray:
        y = x - self.upper @ x
        y -= self.upper_t @ x
        zx = self.z.T @ x
        y += self.z @ (self.c[:, None] * zx if x.ndim == 2 else self.c * zx)
        return y

    def a_matvec(self, x: np.ndarray) -> np.ndarray:
        return self.upper @ x + self.upper_t @ x

    def two_step_paths(self) -> int:
        """Number of length-2 walks in the comparison graph (the work and size of A²)."""
        deg = np.diff(self.upper.indptr) + np.bincount(self.upper.indices, minlength=self.n)
        return int(deg.astype(np.int64) @ deg)

    def local_moments(self, order: int) -> tuple[np.ndarray, np.ndarray]:
        """``M[p, i] = (A^p)_ii`` for p ≤ 2·order and ``W[p, i] = (A^p Z)_i`` for p ≤ order."""
        agg, n = self.agg, self.n
        moments = np.zeros((2 * order + 1, n))
        moments[0] = 1.0
        sq = self.edge_values**2
        moments[2] = np.bincount(agg.a, weights=sq, minlength=n) + np.bincount(agg.b, weights=sq, minlength=n)
        w = [self.z]
        for _ in range(order):
            w.append(self.a_matvec(w[-1]))
        if order >= 2:
            full = (self.upper + self.upper_t).tocsr()
            rows = max(1, int(n * 4_000_000 / max(self.two_step_paths(), 1)))  # A² in row blocks
            for start in range(0, n, rows):
                a2 = (full[start : start + rows] @ full).tocsr()
                moments[3, start : start + rows] = np.asarray(
                    a2.multiply(full[start : start + rows]).sum(axis=1)
                ).ravel()
                moments[4, start : start + rows] = np.asarray(a2.multiply(a2).sum(axis=1)).ravel()
        return moments, np.stack(w)

    def local_bounds(self, items: np.ndarray, order: int, moments, w):
        """Galerkin approximation of ``B⁻¹ e_i`` in span{e_i, A e_i, …, A^{order−1} e_i}.

        Returns ``x_i + xᵀr`` and ``‖r‖²`` (r = e_i − Bx, the true residual, from moments).
        """
        k = order
        m = moments[:, items]  # (2k+1, t)
        wi = w[:, items, :]  # (k+1, t, r)
        cw = wi * self.c  # C w_p
        ztz = self.z.T @ self.z
        jl = np.add.outer(np.arange(k), np.arange(k))
        lr = np.einsum("jtr,ltr->tjl", wi[:k], cw[:k])  # w_jᵀ C w_l
        gram = np.moveaxis(m[jl] - m[jl + 1], -1, 0) + lr  # VᵀBV
        g = m[:k].T  # (t, k): e_iᵀ A^j e_i
        if k == 2:
            # An item without comparisons (alpha > 0) has A e_i = 0: keep x in span{e_i}.
            alone = m[2] <= 1e-300
            gram[alone, 0, 1] = gram[alone, 1, 0] = 0.0
            gram[alone, 1, 1] = 1.0
        coef = np.linalg.solve(gram, g[..., None])[..., 0]
        base = 2.0 * np.einsum("tj,tj->t", g, coef) - np.einsum("tj,tjl,tl->t", coef, gram, coef)
        h = (m[:k] - m[1 : k + 1]).T + np.einsum("tr,jtr->tj", cw[0], wi[:k])  # (B A^j e_i)_i
        dw = wi[:k] - wi[1 : k + 1]
        quad = (
            np.moveaxis(m[jl] - 2.0 * m[jl + 1] + m[jl + 2], -1, 0)
            + np.einsum("jtr,ltr->tjl", dw, cw[:k])
            + np.einsum("jtr,ltr->tjl", cw[:k], dw)
            + np.einsum("jtr,rs,lts->tjl", cw[:k], ztz, cw[:k])
        )  # (BV)ᵀ(BV)
        lin = 2.0 * np.einsum("tj,tj->t", coef, h)
        qq = np.einsum("tj,tjl,tl->t", coef, quad, coef)
        rnorm2 = 1.0 - lin + qq
        slack = 1e-13 * (1.0 + np.abs(lin) + np.abs(qq))  # rounding in the cancelling sum
        return base, np.maximum(rnorm2, 0.0) + slack


class _Lanczos:
    """Lanczos with full reorthogonalisation from a seeded Gaussian start, extendable."""

    def __init__(self, matvec, n: int, max_steps: int, seed: int = 0):
        self.matvec = matvec
        self.n = n
        self.q = np.empty((min(max_steps, n) + 1, n))
        start = np.random.default_rng(seed).standard_normal(n)
        self.q[0] = start / np.linalg.norm(start)
        self.alphas: list[float] = []
        self.betas: list[float] = []
        self.exhausted = False

    @property
    def steps(self) -> int:
        return len(self.alphas)

    def extend(self, steps: int) -> tuple[float, float]:
        """Run up to ``steps`` steps in all; return the extreme Ritz values."""
        steps = min(steps, self.q.shape[0] - 1)
        while self.steps < steps and not self.exhausted:
            j = self.steps
            w = self.matvec(self.q[j])
            self.alphas.append(float(self.q[j] @ w))
            basis = self.q[: j + 1]
            for _ in range(2):  # classical Gram–Schmidt twice: orthogonal to working precision
                w -= basis.T @ (basis @ w)
            beta = float(np.linalg.norm(w))
            if beta <= 1e-10 * max(abs(self.alphas[-1]), 1.0):
                self.exhausted = True  # invariant subspace: the Ritz values are eigenvalues
                break
            self.betas.append(beta)
            self.q[j + 1] = w / beta
        k = self.steps
        ritz = scipy.linalg.eigvalsh_tridiagonal(np.array(self.alphas), np.array(self.betas[: k - 1]))
        return float(ritz[0]), float(ritz[-1])


def _kw_relative_error(n: int, steps: int, fail_prob: float) -> float:
    """ε with P(θ_max < (1 − ε)·λ_max) ≤ fail_prob after ``steps`` Lanczos steps (random start).

    Kuczyński & Woźniakowski (1992): for a positive semi-definite n×n matrix and a start vector
    uniform on the sphere, that probability is at most 1.648·√n·exp(−√ε·(2k − 1)).
    """
    if steps < 1:
        return 1.0
    return float((np.log(_KW_CONST * np.sqrt(n) / fail_prob) / (2 * steps - 1)) ** 2)


def _spectral_bounds(lanczos: _Lanczos, steps: int, fail_prob: float) -> tuple[float, float]:
    """[a, b] containing the spectrum of B except with probability ``fail_prob``."""
    theta_min, theta_max = lanczos.extend(steps)
    eps = _kw_relative_error(lanczos.n, lanczos.steps, fail_prob / 2)
    if eps >= 1.0:
        return 0.0, 2.0
    b = min(2.0, theta_max / (1.0 - eps))  # λ_max(B) ≤ 2 always (module docstring)
    a = b - (b - theta_min) / (1.0 - eps)  # the same bound for λ_max(b·I − B) = b − λ_min(B)
    return a, b


def _cg(matvec, rhs: np.ndarray, rtol: float, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain CG for one SPD system; returns the solution and its true residual."""
    x = np.zeros_like(rhs)
    r = rhs.copy()
    p = r.copy()
    rr = float(r @ r)
    target = (rtol * float(np.linalg.norm(rhs))) ** 2
    for _ in range(max_iter):
        if rr <= target:
            break
        q = matvec(p)
        step = rr / float(p @ q)
        x += step * p
        r -= step * q
        rr_new = float(r @ r)
        p *= rr_new / rr
        p += r
        rr = rr_new
    return x, rhs - matvec(x)


class _VarianceBounds:
    """Turns bounds on ``(B⁻¹)_ii`` into bounds on the variance ``(P S_P⁺ P)_ii`` and on the SE.

    With ``G = D^{-1/2} B⁻¹ D^{-1/2}`` (a generalised inverse of ``S_P``), the constrained covariance
    is ``P G P``: ``var_i = G_ii − 2 (G1)_i / n + 1ᵀG1 / n²``. ``G1 = D^{-1/2} z`` with ``B z = s``,
    ``s = D^{-1/2} 1``, is solved once by CG; its error enters the bounds through the true residual.
    """

    def __init__(self, op: _ScaledInformation, a: float, b: float, solved=None):
        n = op.n
        self.op, self.a, self.b, self.n = op, a, b, n
        s = op.sd
        # z does not depend on [a, b]: solved once, reused when the bounds are sharpened.
        self.solved = z, r = solved if solved is not None else _cg(op.matvec, s, rtol=1e-13, max_iter=1000)
        rnorm2 = float(r @ r)
        self.z_err = np.sqrt(rnorm2) / a  # ‖z − ẑ‖₂ ≤ ‖r‖ / λ_min(B)
        base = float(s @ z) + float(z @ r)  # sᵀB⁻¹s = sᵀẑ + ẑᵀr + rᵀB⁻¹r
        self.stz_lo, self.stz_hi = base + rnorm2 / b, base + rnorm2 / a
        self.z = z

    def se(self, items: np.ndarray, v_lo: np.ndarray, v_hi: np.ndarray):
        """SE estimates (midpoint of the certified interval) and their relative error bounds."""
        n, sd = self.n, self.op.sd[items]
        z = self.z[items]
        var_lo = v_lo * sd**2 - 2.0 * sd * (z + self.z_err) / n + self.stz_lo / n**2
        var_hi = v_hi * sd**2 - 2.0 * sd * (z - self.z_err) / n + self.stz_hi / n**2
        se_lo = np.sqrt(np.maximum(var_lo, 0.0))
        se_hi = np.sqrt(np.maximum(var_hi, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.where(se_lo > 0, (se_hi - se_lo) / (2.0 * se_lo), np.inf)
        return 0.5 * (se_lo + se_hi), err


def _block_cg_bounds(op, bounds: _VarianceBounds, items, rtol, max_iter, out_se, out_err) -> np.ndarray:
    """Certify ``(B⁻¹)_ii`` for ``items`` by CG on ``B x = e_i`` (many items at once).

    For any x with true residual r = e_i − Bx: ``(B⁻¹)_ii = x_i + xᵀr + rᵀB⁻¹r`` and
    ``‖r‖²/b ≤ rᵀB⁻¹r ≤ ‖r‖²/a``. Returns the items not certified within ``max_iter`` iterations.
    """
    n = op.n
    a, b = bounds.a, bounds.b
    block = int(max(16, min(256, 4_000_000 // max(n, 1))))
    left = []
    for start in range(0, items.size, block):
        idx = items[start : start + block]
        k = idx.size
        cols = np.arange(k)
        x = np.zeros((n, k))
        r = np.zeros((n, k))
        r[idx, cols] = 1.0
        p = r.copy()
        rr = np.ones(k)
        active = np.arange(k)  # columns still iterating (positions in idx)
        for it in range(1, max_iter + 1):
            q = op.matvec(p)
            pq = np.einsum("ij,ij->j", p, q)
            step = np.divide(rr, pq, out=np.zeros_like(rr), where=pq > 0)
            x += p * step
            r -= q * step
            rr_new = np.einsum("ij,ij->j", r, r)
            p *= np.divide(rr_new, rr, out=np.zeros_like(rr), where=rr > 0)
            p += r
            rr = rr_new
            if it % 4 and it != max_iter:
                continue
            ii = idx[active]
            base = x[ii, np.arange(active.size)] + np.einsum("ij,ij->j", x, r)
            _, err = bounds.se(ii, base + rr / b, base + rr / a)
            done = err <= 0.5 * rtol
            if not done.any():
                continue
            # Confirm on the true residual (the recursive one drifts by rounding).
            sel = np.flatnonzero(done)
            e = np.zeros((n, sel.size))
            e[ii[sel], np.arange(sel.size)] = 1.0
            xs = x[:, sel]
            rt = e - op.matvec(xs)
            base = xs[ii[sel], np.arange(sel.size)] + np.einsum("ij,ij->j", xs, rt)
            rt2 = np.einsum("ij,ij->j", rt, rt)
            se, err = bounds.se(ii[sel], base + rt2 / b, base + rt2 / a)
            ok = err <= rtol
            out_se[ii[sel[ok]]] = se[ok]
            out_err[ii[sel[ok]]] = err[ok]
            keep = np.ones(active.size, dtype=bool)
            keep[sel[ok]] = False
            if not keep.all():
                active = active[keep]
                x, r, p, rr = x[:, keep], r[:, keep], p[:, keep], rr[keep]
            if active.size == 0:
                break
        left.append(idx[active])
    return np.concatenate(left) if left else np.array([], dtype=np.int64)


def _exact_sparse_variances(problem: _Problem, der, items: np.ndarray) -> np.ndarray:
    """Exact ``(P S⁺ P)_ii`` for ``items`` by a sparse LU factorisation (:class:`_SparseFactor`).

    ``alpha == 0``: ``L⁺ = PΓP`` with Γ the grounded inverse, so
    ``(L⁺)_ii = Γ_ii − 2 (Γ1)_i / n + 1ᵀΓ1 / n²``. ``alpha > 0``: ``H = L + alpha·I`` is invertible
    and ``P H⁻¹ P = H⁻¹ − 11ᵀ/(n·alpha)`` on the diagonal. Ties: Sherman–Morrison,
    ``S_P⁺ = H_P⁺ + y yᵀ/(h − vᵀy)`` with ``y = H_P⁺ v``. Cost: one factorisation plus one solve
    per item (blocks of right-hand sides); when fill-in makes that dearer than the dense inversion
    (and n ≤ 16,000) the dense inversion is used.
    """
    n, alpha = problem.n, problem.alpha
    factor = _SparseFactor(problem, der["hw"], der["deg"])
    # One triangular solve pair per item (SuperLU, ~1 GFlop/s) against the dense inversion (~n³
    # flops at ~10 GFlop/s): with heavy fill-in (dense clusters) the dense inversion is faster.
    if n <= _SE_DENSE_FALLBACK_MAX and 2.0 * (factor.lu.L.nnz + factor.lu.U.nnz) * items.size > n**3 / 10:
        return _dense_variances(problem, der)[items]
    var = factor.diagonal(items, _EXACT_BLOCK)
    if alpha == 0:
        g1 = factor.solve(np.ones(n))
        var += -2.0 * g1[items] / n + g1.sum() / n**2
    else:
        var -= 1.0 / (n * alpha)
    if problem.has_ties:
        v = der["h_theta_eta"]
        y = factor.solve(v)
        if alpha == 0:
            y -= y.mean()
        var += y[items] ** 2 / (der["h_eta_eta"] - float(v @ y))
    return var


def _bounded_standard_errors(problem: _Problem, der, rtol: float) -> _SEResult:
    n = problem.n
    if n < _SE_BOUNDED_MIN_ITEMS:
        return _SEResult(np.sqrt(np.maximum(_dense_variances(problem, der), 0.0)), "dense", 0.0)
    op = _ScaledInformation(problem, der)
    se = np.full(n, np.nan)
    err = np.full(n, np.inf)
    fail = _SE_FAIL_PROB / len(_LANCZOS_CHECKPOINTS)  # union bound over the checkpoints tried
    lanczos = _Lanczos(op.matvec, n, _LANCZOS_CHECKPOINTS[-1])
    orders = (1, 2) if op.two_step_paths() <= _LOCAL_MAX_PATHS else (1,)
    moments, w = op.local_moments(1)
    todo = np.arange(n)
    bounds = None
    for steps in _LANCZOS_CHECKPOINTS:
        theta_min, theta_max = lanczos.extend(steps)
        a, b = _spectral_bounds(lanczos, steps, fail)
        if a <= 0:
            continue
        bounds = _VarianceBounds(op, a, b, None if bounds is None else bounds.solved)
        # Sharper [a, b] would not help much: a is close to the smallest Ritz value, or no more steps.
        sharp = a >= 0.8 * theta_min or lanczos.exhausted or steps == _LANCZOS_CHECKPOINTS[-1]
        for order in orders:
            if todo.size == 0:
                break
            if order > moments.shape[0] // 2:
                if not sharp:
                    # Would the one-step bounds certify most items with [a, b] at the Ritz values?
                    # Then more Lanczos steps are cheaper than forming A².
                    ideal = copy.copy(bounds)
                    ideal.a, ideal.b = theta_min, theta_max
                    base, rnorm2 = op.local_bounds(todo, 1, moments, w)
                    e = ideal.se(todo, base + rnorm2 / theta_max, base + rnorm2 / theta_min)[1]
                    if np.mean(e <= rtol) >= 0.5:
                        break
                moments, w = op.local_moments(order)
            base, rnorm2 = op.local_bounds(todo, order, moments, w)
            est, e = bounds.se(todo, base + rnorm2 / b, base + rnorm2 / a)
            ok = e <= rtol
            se[todo[ok]], err[todo[ok]] = est[ok], e[ok]
            todo = todo[~ok]
        if todo.size == 0 or sharp:
            break
    if todo.size and bounds is not None:
        kappa = bounds.b / bounds.a
        rate = (np.sqrt(kappa) - 1.0) / (np.sqrt(kappa) + 1.0)
        needed = np.log(4.0 * kappa / rtol) / max(-2.0 * np.log(rate), 1e-12)
        if needed <= _CG_MAX_ITER:
            todo = _block_cg_bounds(
                op, bounds, todo, rtol, int(min(_CG_MAX_ITER, 2 * needed + 10)), se, err
            )
    if todo.size:
        var = _exact_sparse_variances(problem, der, todo)
        se[todo] = np.sqrt(np.maximum(var, 0.0))
        err[todo] = 0.0
    return _SEResult(se, "bounded", float(err.max()) if n else 0.0)


def _se_method(compute_se) -> str | None:
    if compute_se is None or compute_se is False:
        return None
    if compute_se is True:
        return "auto"
    if isinstance(compute_se, str) and compute_se in SE_METHODS:
        return compute_se
    raise ValueError(f"compute_se must be True, False or one of {SE_METHODS}, got {compute_se!r}")


def _standard_errors(problem: _Problem, der, method: str, rtol: float) -> _SEResult:
    if method == "auto":
        method = "dense" if problem.n <= _SE_DENSE_MAX_ITEMS else "bounded"
    if method == "dense":
        return _SEResult(np.sqrt(np.maximum(_dense_variances(problem, der), 0.0)), "dense", 0.0)
    return _bounded_standard_errors(problem, der, rtol)


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
    if winners.size == 0:
        raise ValueError("winners and losers hold no comparisons: there is nothing to fit")
    if weights is not None and not np.any(weights > 0):
        raise ValueError("weights are all zero: no comparison counts, so there is nothing to fit")
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
    compute_se: bool | str = True,
    se_rtol: float = 5e-3,
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
    compute_se : bool or {"auto", "dense", "bounded"}, default True
        Standard errors and 95 % CIs (module docstring, "Standard errors"). ``True`` is ``"auto"``:
        exact dense for up to 1,500 items, ``"bounded"`` above. ``"dense"``: exact, ``O(n_items³)``
        time and ``8·n_items²`` bytes at any size. ``"bounded"``: every SE within ``se_rtol``
        (relative) of the exact one, certified per item; fast on well-connected data, exact sparse
        solves where the graph is chain-like. ``False``: no SEs.
    se_rtol : float, default 5e-3
        Largest relative SE error the ``"bounded"`` method may certify (``0 < se_rtol ≤ 0.01``).

    Returns
    -------
    BTFit
        Strengths θ (logits, mean zero), their SEs and 95 % CIs, ν, log-likelihood.

    Raises
    ------
    ValueError
        Invalid input (the message names the argument), including no comparisons at all (empty
        ``winners``/``losers``, or every weight zero), whatever ``alpha``.
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
    se_method = _se_method(compute_se)
    se_rtol = float(se_rtol)
    if not (0 < se_rtol <= 0.01):
        raise ValueError(f"se_rtol must be in (0, 0.01], got {se_rtol!r}")

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
    se = ci_low = ci_high = se_bound = None
    if se_method is not None:
        result = _standard_errors(problem, der, se_method, se_rtol)
        se, se_method, se_bound = result.se, result.method, result.error_bound
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
        se_method=se_method,
        se_error_bound=se_bound,
    )
