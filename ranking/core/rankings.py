"""Rankings of k items: Plackett–Luce (Davidson–Luce ties) by Newton's method, rank breaking, rank statistics.

Data
----
A rank task shows a rater a set of k images and records them best → worst. One ranking is a
sequence of *groups*, best first; a group is an item index or a sequence of item indices that share
one position (a tie). ``[3, 0, 5, 1]``, ``[[3], [0], [5], [1]]`` and ``[3, [0], 5, [1]]`` are the same
ranking; ``[[3], [0, 5], [1]]`` puts 3 first, ties 0 with 5, and 1 last. Rankings may have different
lengths (at least 2 items each).

*Partial (top-m) rankings* are given with ``shown``: one entry per ranking, ``None`` for a complete
ranking or the set of items that were shown. The items shown but not ranked are known to be worse
than every ranked item and unordered among themselves. ``rankings=[[4, 2]], shown=[[1, 2, 3, 4]]``
says "4 best, then 2, then 1 and 3 in an unknown order".

Model
-----
Every item ``i`` has a strength ``θ_i`` (natural-log scale, "logits"); write ``π_i = exp(θ_i)``. A
ranking is read as a sequence of choices (Plackett 1975, Luce 1959): the best group is chosen from
the set ``R`` of all items shown, the next one from what is left, and so on; with no ties::

    P(i chosen first from R) = π_i / Σ_{j ∈ R} π_j

A choice from a single remaining item has probability 1, and a top-m ranking contributes its m
choices only, which is exactly the probability of the event "these m groups first, in this order",
summed over every ordering (and tie pattern) of the unranked rest.

Ties follow the Davidson–Luce model (Firth, Kosmidis & Turner 2019, "Davidson–Luce model for
multi-item choice with ties", arXiv:1909.07123; the model of the R package PlackettLuce, Turner et al.
2020, Computational Statistics 35:1027–1057). The group ``G`` (of size ``g``) chosen from ``R`` has::

    P(G chosen from R) = δ_g (Π_{i ∈ G} π_i)^(1/g) / Σ_{t ∈ T} δ_t Σ_{H ⊆ R, |H| = t} (Π_{i ∈ H} π_i)^(1/t)

with ``δ_1 = 1`` and one tie parameter ``δ_t > 0`` per tie order ``t ≥ 2`` in ``T``. Why this model:
it is a proper probability model of rankings with ties (so top-m rankings with ties are handled
exactly, as above); it is exactly the Davidson (1970) model that ``ranking.core.bt`` fits when
k = 2 (``δ_2 = ν``); without ties it is Plackett–Luce; and its negative log-likelihood is convex in
``(θ, log δ)`` (a log-sum-exp of linear functions), so Newton's method applies. The usual
alternatives — Breslow's or Efron's approximation of the "average over the group's orderings"
likelihood — are not probability models, so partial rankings with ties have no exact likelihood
under them. ``T`` is the set of tie sizes that occur in the data: for a tie order that never occurs
the maximum-likelihood ``δ_t`` is 0 (it only enlarges denominators), which is what leaving it out
means; the denominator then enumerates every subset of ``R`` of a size in ``{1} ∪ T``. Without ties
the model is plain Plackett–Luce and the tie parameters are absent.

Each ranking carries a non-negative weight (a ranking of weight 2 counts as the same ranking twice).
``alpha`` adds ``(alpha / 2) · Σ θ_i²`` to the negative log-likelihood (prior ``θ_i ~ N(0, 1/alpha)``:
MAP instead of ML); the tie parameters have no prior. Strengths are reported centred to mean zero
(the likelihood is invariant to adding a constant to every ``θ_i``; the MAP is mean-zero anyway).

Method
------
Every choice is expanded into its list of alternatives (the subsets ``H`` of ``R`` above, one per
item without ties); an alternative's score is linear in the parameters ``x = (θ, log δ)`` through a
sparse design matrix ``X`` (entries ``1/t`` on its items and 1 on its tie order). The penalised
negative log-likelihood is ``Σ_c w_c [log Σ_{a ∈ c} exp(X_a x) − X_{chosen(c)} x] + (alpha/2)|θ|²``;
its gradient is ``Xᵀ(w p) − Xᵀ(w 1_chosen)`` and its Hessian ``Xᵀ diag(w p) X − Σ_c w_c μ_c μ_cᵀ``
(``p`` the choice probabilities, ``μ_c`` the mean feature vector of choice ``c``), assembled with
sparse products (without ties: one dense k×k block per ranking, scattered once). Newton's method
with a backtracking line search, started from the smoothed log-ratio of how often each item was
chosen to how often it would be at equal strengths, solves each system by a dense Cholesky
factorisation (up to ``_DENSE_MAX_PARAMS`` parameters) or by conjugate gradients with the Hessian
applied matrix-free. With ``alpha == 0`` the Hessian is singular along
the shift of all ``θ`` (``(1, …, 1, 0, …, 0)``); that direction is removed from every system.

Existence (``alpha == 0``): the MLE exists only if the directed graph with an edge from every item
not chosen to every item chosen in some choice (both ways within a tied group) is strongly connected
(Hunter 2004, Annals of Statistics 32:384–406, Assumption 1 for Plackett–Luce), and every item was
shown at least once. Otherwise :class:`~ranking.core.bt.DisconnectedComparisonsError` lists the groups.
With ties, some quasi-separated data pass that check and still have no finite MLE (e.g. a tie order
that occurs at every opportunity); the fit then stops with :class:`ConvergenceError`.

Standard errors come from the observed information at the optimum under ``Σ θ_i = 0``: with ``H``
the Hessian in ``θ`` after profiling out ``log δ`` (Schur complement), the covariance of ``θ`` is
``P H⁻ P`` (``P = I − 11ᵀ/n``), computed exactly as ``diag((H + c·11ᵀ/n)⁻¹) − 1/(n(alpha + c))``
(``H·1 = alpha·1``); dense, ``O(n_items³)`` time, ``8·n_items²`` bytes. 95 % Wald intervals
``θ ∓ 1.959964·SE``.

Cost: ``Σ_c (number of alternatives of c)`` rows in ``X``; without ties that is ``Σ_c |R_c|``, about
``k²/2`` per ranking of k items. With ties of order up to ``t`` a choice from ``r`` items has
``Σ_{s ∈ {1} ∪ T, s ≤ r} C(r, s)`` alternatives (at most ``2^r − 1``; 1,023 for r = 10).

Rank breaking and rank statistics
---------------------------------
:func:`rank_breaking` turns rankings into weighted pairwise comparisons for ``ranking.core.bt.fit_bt``
(weights explained there); :func:`kendall_tau_exact` is Kendall's τ with the exact permutation
p-value for small untied samples; :func:`top_k_overlap` is the share of a top-k list recovered.

This module is pure numpy/scipy and must not import Django.
"""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse
from scipy.sparse.csgraph import connected_components

from ranking.core.bt import DisconnectedComparisonsError
from ranking.core.errors import ConvergenceError

__all__ = [
    "ConvergenceError",
    "DisconnectedComparisonsError",
    "KendallTau",
    "PLFit",
    "fit_plackett_luce",
    "kendall_tau_exact",
    "pl_objective",
    "rank_breaking",
    "top_k_overlap",
]

Z_95 = 1.959963984540054  # two-sided 95 % normal quantile

_DENSE_MAX_PARAMS = 3000  # up to this many parameters Newton systems are solved densely
# A fitted choice whose alternatives are this far apart (P < 1e-15) or |log δ| this large means
# divergence, not a fit (same thresholds as ranking.core.bt).
_MAX_SPREAD = 35.0
_MAX_LOG_TIE = 25.0
_EXACT_MAX_N = 60  # kendall_tau_exact: exact null distribution up to this n in method="auto"
_EXACT_LIMIT_N = 200  # ... and at most this n when method="exact" is forced


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class PLFit:
    """Result of :func:`fit_plackett_luce`.

    Attributes
    ----------
    strengths : numpy.ndarray, shape (n_items,)
        θ, natural-log scale (logits), centred to mean zero. Without ties ``exp(θ_i − θ_j)`` is the
        odds of ``i`` being ranked above ``j`` in a complete ranking of any set holding both.
    se : numpy.ndarray or None
        Standard errors of ``strengths`` (same units) from the observed information under the
        mean-zero constraint (tie parameters profiled out); ``None`` when ``compute_se=False``.
    ci_low, ci_high : numpy.ndarray or None
        95 % Wald intervals ``strengths ∓ 1.959964 · se``.
    tie_params : dict of int to float, or None
        Davidson–Luce ``δ_t`` (dimensionless) for each tie order ``t ≥ 2`` present in the data;
        ``None`` when the data hold no ties.
    log_likelihood : float
        Weighted log-likelihood (natural log) at the estimate, without the prior term.
    objective : float
        Penalised negative log-likelihood ``-log_likelihood + (alpha/2)·Σθ²`` (what is minimised).
    n_iter : int
        Newton iterations performed.
    n_choices : int
        Number of choices with more than one alternative (the terms of the likelihood).
    converged : bool
        Always ``True`` for a returned fit (non-convergence raises :class:`ConvergenceError`).
    """

    strengths: np.ndarray
    se: np.ndarray | None
    ci_low: np.ndarray | None
    ci_high: np.ndarray | None
    tie_params: dict[int, float] | None
    log_likelihood: float
    objective: float
    n_iter: int
    n_choices: int
    converged: bool


@dataclass(frozen=True)
class KendallTau:
    """Result of :func:`kendall_tau_exact`; unpacks as ``tau, p_value = result``.

    Attributes
    ----------
    tau : float
        Kendall's τ (τ_b when there are ties; equal to τ_a without ties), in [−1, 1].
    p_value : float
        Two-sided p-value of the test of independence.
    method : str
        ``"exact"`` (exact permutation distribution, no ties) or ``"asymptotic"`` (normal
        approximation with the tie-corrected variance).
    n : int
        Number of observations.
    """

    tau: float
    p_value: float
    method: str
    n: int

    def __iter__(self):
        yield self.tau
        yield self.p_value


# --------------------------------------------------------------------------------------------
# Parsing rankings


@dataclass(frozen=True)
class _Rankings:
    """Validated rankings laid out flat: each ranking's ranked items in order, then its unranked rest."""

    n_items: int
    items: np.ndarray  # flat item indices
    offsets: np.ndarray  # (n_rankings + 1,) start of each ranking in ``items``
    weights: np.ndarray  # (n_rankings,)
    g_rank: np.ndarray  # per ranked group: ranking index
    g_start: np.ndarray  # per ranked group: position of its first item in ``items``
    g_size: np.ndarray  # per ranked group: number of items (≥ 2 is a tie)
    g_rem: np.ndarray  # per ranked group: items still unranked when it is chosen (incl. itself)
    g_next: np.ndarray  # per ranked group: size of the next ranked group, or of the unranked rest if last


def _is_index(value) -> bool:
    return type(value) is int or (isinstance(value, numbers.Integral) and not isinstance(value, bool))


def _check_n_items(n_items) -> int:
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    return int(n_items)


def _ranking_groups(r: int, ranking, items: list, sizes: list) -> int:
    """Append ranking ``r``'s items and group sizes; return its number of groups."""
    # Fast paths: a plain list/tuple of ints, or a 1-D integer array (no ties).
    if type(ranking) in (list, tuple) and ranking and all(type(e) is int for e in ranking):
        items.extend(ranking)
        sizes.extend([1] * len(ranking))
        return len(ranking)
    if isinstance(ranking, np.ndarray) and ranking.ndim == 1 and ranking.dtype.kind in "iu" and ranking.size:
        items.extend(ranking.tolist())
        sizes.extend([1] * ranking.size)
        return ranking.size
    if isinstance(ranking, (set, frozenset)):
        raise ValueError(f"rankings[{r}] is a set: a ranking must be ordered (best first)")
    if isinstance(ranking, (str, bytes)) or _is_index(ranking) or not hasattr(ranking, "__iter__"):
        raise ValueError(
            f"rankings[{r}] must be a sequence of item indices or of groups of item indices, "
            f"got {type(ranking).__name__}"
        )
    n_groups = 0
    for element in ranking:
        if _is_index(element):
            items.append(int(element))
            sizes.append(1)
        else:
            if isinstance(element, (str, bytes)) or not hasattr(element, "__iter__"):
                raise ValueError(
                    f"rankings[{r}] holds {element!r}: expected an item index or a group of item indices"
                )
            members = list(element)
            if not members:
                raise ValueError(f"rankings[{r}] has an empty group")
            for m in members:
                if not _is_index(m):
                    raise ValueError(f"rankings[{r}] holds {m!r} in a group: item indices must be integers")
                items.append(int(m))
            sizes.append(len(members))
        n_groups += 1
    if n_groups == 0:
        raise ValueError(f"rankings[{r}] ranks no items")
    return n_groups


def _first_duplicate(rank_of: np.ndarray, values: np.ndarray, width: int):
    """(ranking, item) of the first item listed twice within one ranking, or None."""
    if values.size < 2:
        return None
    key = np.sort(rank_of * width + values)
    dup = np.flatnonzero(key[1:] == key[:-1])
    if dup.size == 0:
        return None
    k = int(key[dup[0]])
    return k // width, k % width


def _parse_rankings(rankings, n_items, shown, weights, name="rankings") -> _Rankings:
    if isinstance(rankings, (str, bytes)) or not hasattr(rankings, "__iter__"):
        raise ValueError(f"{name} must be a sequence of rankings")
    rankings = list(rankings)
    n_rank = len(rankings)
    items: list[int] = []
    sizes: list[int] = []
    groups_per = np.empty(n_rank, dtype=np.int64)
    for r, ranking in enumerate(rankings):
        groups_per[r] = _ranking_groups(r, ranking, items, sizes)
    ranked = np.asarray(items, dtype=np.int64)
    g_size = np.asarray(sizes, dtype=np.int64)
    g_rank = np.repeat(np.arange(n_rank), groups_per)
    n_ranked = np.bincount(g_rank, weights=g_size, minlength=n_rank).astype(np.int64)
    r_of_ranked = np.repeat(np.arange(n_rank), n_ranked)

    if shown is None:
        rest = np.zeros(0, dtype=np.int64)
        r_of_rest = np.zeros(0, dtype=np.int64)
        shown_items = None
    else:
        if isinstance(shown, (str, bytes)) or not hasattr(shown, "__iter__"):
            raise ValueError("shown must be a sequence with one entry (None or a set of items) per ranking")
        shown = list(shown)
        if len(shown) != n_rank:
            raise ValueError(
                f"shown must have one entry per ranking: {len(shown)} entries for {n_rank} rankings"
            )
        s_items: list[int] = []
        s_count = np.zeros(n_rank, dtype=np.int64)
        for r, entry in enumerate(shown):
            if entry is None:
                continue
            if isinstance(entry, (str, bytes)) or not hasattr(entry, "__iter__"):
                raise ValueError(f"shown[{r}] must be None or a collection of item indices")
            members = list(entry)
            for m in members:
                if not _is_index(m):
                    raise ValueError(f"shown[{r}] holds {m!r}: item indices must be integers")
            s_items.extend(int(m) for m in members)
            s_count[r] = len(members)
        shown_items = np.asarray(s_items, dtype=np.int64)
        r_of_shown = np.repeat(np.arange(n_rank), s_count)
        has_shown = np.zeros(n_rank, dtype=bool)
        has_shown[[r for r, e in enumerate(shown) if e is not None]] = True

    # Range checks (before anything is used as an index).
    all_items = ranked if shown_items is None else np.concatenate([ranked, shown_items])
    if n_items is None:
        if all_items.size and all_items.min() < 0:
            bad = int(np.argmax(all_items < 0))
            raise ValueError(f"item indices must be >= 0, found {int(all_items[bad])}")
        width = int(all_items.max()) + 1 if all_items.size else 1
    else:
        width = n_items
        out = (ranked < 0) | (ranked >= n_items)
        if out.any():
            k = int(np.argmax(out))
            raise ValueError(
                f"rankings[{int(r_of_ranked[k])}] contains item {int(ranked[k])}, "
                f"outside [0, n_items={n_items})"
            )
        if shown_items is not None:
            out = (shown_items < 0) | (shown_items >= n_items)
            if out.any():
                k = int(np.argmax(out))
                raise ValueError(
                    f"shown[{int(r_of_shown[k])}] contains item {int(shown_items[k])}, "
                    f"outside [0, n_items={n_items})"
                )
    dup = _first_duplicate(r_of_ranked, ranked, width)
    if dup is not None:
        raise ValueError(f"rankings[{dup[0]}] lists item {dup[1]} more than once")

    if shown_items is not None:
        dup = _first_duplicate(r_of_shown, shown_items, width)
        if dup is not None:
            raise ValueError(f"shown[{dup[0]}] lists item {dup[1]} more than once")
        key_ranked = r_of_ranked * width + ranked
        key_shown = r_of_shown * width + shown_items
        # Rankings with a shown set: every ranked item must be in it.
        constrained = has_shown[r_of_ranked]
        missing = constrained & ~np.isin(key_ranked, key_shown)
        if missing.any():
            k = int(np.argmax(missing))
            raise ValueError(
                f"rankings[{int(r_of_ranked[k])}] ranks item {int(ranked[k])}, which is not in "
                f"shown[{int(r_of_ranked[k])}]"
            )
        is_rest = ~np.isin(key_shown, key_ranked)
        rest_key = np.sort(key_shown[is_rest])
        r_of_rest = rest_key // width
        rest = rest_key - r_of_rest * width
    n_rest = np.bincount(r_of_rest, minlength=n_rank).astype(np.int64)
    length = n_ranked + n_rest
    short = np.flatnonzero(length < 2)
    if short.size:
        r = int(short[0])
        raise ValueError(
            f"rankings[{r}] has fewer than 2 items ({int(length[r])}"
            + (" shown" if shown is not None and has_shown[r] else "")
            + "): a ranking needs at least 2"
        )

    if weights is None:
        w = np.ones(n_rank)
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (n_rank,):
            raise ValueError(f"weights must have shape ({n_rank},) (one per ranking), got {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite (no NaN or inf)")
        if np.any(w < 0):
            raise ValueError(f"weights must be non-negative (weights[{int(np.argmax(w < 0))}] < 0)")

    # Lay out each ranking: ranked items (in order) then the unranked rest (ascending).
    offsets = np.zeros(n_rank + 1, dtype=np.int64)
    np.cumsum(length, out=offsets[1:])
    flat = np.empty(int(offsets[-1]), dtype=np.int64)
    ranked_start = np.zeros(n_rank + 1, dtype=np.int64)
    np.cumsum(n_ranked, out=ranked_start[1:])
    ranked_pos = offsets[r_of_ranked] + (np.arange(ranked.size) - ranked_start[r_of_ranked])
    flat[ranked_pos] = ranked
    if rest.size:
        rest_start = np.zeros(n_rank + 1, dtype=np.int64)
        np.cumsum(n_rest, out=rest_start[1:])
        rest_pos = offsets[r_of_rest] + n_ranked[r_of_rest] + (np.arange(rest.size) - rest_start[r_of_rest])
        flat[rest_pos] = rest

    within = np.cumsum(g_size) - g_size - ranked_start[g_rank]
    g_start = offsets[g_rank] + within
    g_rem = offsets[g_rank + 1] - g_start
    last = np.r_[g_rank[1:] != g_rank[:-1], True] if g_rank.size else np.zeros(0, dtype=bool)
    g_next = np.where(last, g_rem - g_size, np.r_[g_size[1:], 0] if g_size.size else g_size)
    return _Rankings(
        n_items=width,
        items=flat,
        offsets=offsets,
        weights=w,
        g_rank=g_rank,
        g_start=g_start,
        g_size=g_size,
        g_rem=g_rem,
        g_next=g_next,
    )


# --------------------------------------------------------------------------------------------
# Choices and their alternatives


_COMBOS: dict[tuple[int, int], np.ndarray] = {}


def _combos(r: int, t: int) -> np.ndarray:
    """All t-subsets of range(r) in lexicographic order (the first is 0..t-1), shape (C(r,t), t)."""
    key = (r, t)
    if key not in _COMBOS:
        _COMBOS[key] = np.array(list(itertools.combinations(range(r), t)), dtype=np.int64).reshape(-1, t)
    return _COMBOS[key]


class _Design:
    """The choices of a set of rankings, each expanded into its alternatives (rows of ``X``).

    Parameters are ``x = (θ_0..θ_{n-1}, log δ_t for t in orders[1:])``.
    """

    def __init__(self, data: _Rankings, orders: list[int]):
        n = data.n_items
        self.n = n
        self.orders = orders  # sorted, orders[0] == 1
        self.n_params = n + len(orders) - 1
        tie_col = {t: n + k - 1 for k, t in enumerate(orders) if t > 1}
        keep = (data.g_rem >= 2) & (data.weights[data.g_rank] > 0)
        ev_start_item = data.g_start[keep]
        ev_r = data.g_rem[keep]
        ev_s = data.g_size[keep]
        self.ev_rank = data.g_rank[keep]
        self.ev_w = data.weights[self.ev_rank]
        self.ev_r = ev_r
        self.ev_s = ev_s
        self.ev_first = ev_start_item
        self.items = data.items
        n_ev = ev_r.size
        self.n_events = n_ev
        # Alternatives per choice and the offset of each order's block within a choice.
        r_values = np.unique(ev_r)
        n_alt_of_r = {}
        base_of_r = {}
        for r in r_values.tolist():
            base, tot = {}, 0
            for t in orders:
                if t <= r:
                    base[t] = tot
                    tot += math.comb(r, t)
            n_alt_of_r[r] = tot
            base_of_r[r] = base
        ev_nalt = np.zeros(n_ev, dtype=np.int64)
        chosen_base = np.zeros(n_ev, dtype=np.int64)
        for r in r_values.tolist():
            sel = ev_r == r
            ev_nalt[sel] = n_alt_of_r[r]
            for t, b in base_of_r[r].items():
                chosen_base[sel & (ev_s == t)] = b
        self.ev_ptr = np.zeros(n_ev + 1, dtype=np.int64)
        np.cumsum(ev_nalt, out=self.ev_ptr[1:])
        self.n_alts = int(self.ev_ptr[-1])
        self.chosen = self.ev_ptr[:-1] + chosen_base
        self.alt_event = np.repeat(np.arange(n_ev), ev_nalt)

        rows, cols, vals = [], [], []
        for r in r_values.tolist():
            sel = np.flatnonzero(ev_r == r)
            first = ev_start_item[sel]
            for t, b in base_of_r[r].items():
                comb = _combos(r, t)  # (nc, t)
                nc = comb.shape[0]
                alt_rows = self.ev_ptr[sel][:, None] + b + np.arange(nc)[None, :]  # (ne, nc)
                alt_items = data.items[first[:, None, None] + comb[None, :, :]]  # (ne, nc, t)
                rows.append(np.repeat(alt_rows.ravel(), t))
                cols.append(alt_items.ravel())
                vals.append(np.full(alt_items.size, 1.0 / t))
                if t > 1:
                    rows.append(alt_rows.ravel())
                    cols.append(np.full(alt_rows.size, tie_col[t], dtype=np.int64))
                    vals.append(np.ones(alt_rows.size))
        if rows:
            rows_a, cols_a, vals_a = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        else:
            rows_a = cols_a = np.zeros(0, dtype=np.int64)
            vals_a = np.zeros(0)
        self.X = scipy.sparse.csr_matrix((vals_a, (rows_a, cols_a)), shape=(self.n_alts, self.n_params))
        self.X.sort_indices()
        self.XT = self.X.T.tocsr()
        # Without ties every alternative is one item: X is a one-hot row per alternative, and the
        # products below reduce to indexing and bincount.
        self.simple = len(orders) == 1
        self.alt_item = self.X.indices if self.simple else None
        self._offsets = data.offsets
        self._blocks = None  # built on the first dense Hessian (tie-free data only)
        self.w_alt = self.ev_w[self.alt_event]
        chosen_w = np.zeros(self.n_alts)
        chosen_w[self.chosen] = self.ev_w
        self.b = self.XT @ chosen_w  # Σ_c w_c X_chosen(c)

    # Objective and derivatives --------------------------------------------------------------

    def evaluate(self, x: np.ndarray, alpha: float, derivatives: bool = True):
        theta = x[: self.n]
        obj = 0.5 * alpha * float(theta @ theta)
        if self.n_events == 0:
            if not derivatives:
                return obj, None, None
            grad = np.zeros_like(x)
            grad[: self.n] = alpha * theta
            return obj, grad, np.zeros(0)
        s = x[self.alt_item] if self.simple else self.X @ x
        starts = self.ev_ptr[:-1]
        mx = np.maximum.reduceat(s, starts)
        e = np.exp(s - mx[self.alt_event])
        tot = np.add.reduceat(e, starts)
        lse = mx + np.log(tot)
        obj += float(self.ev_w @ (lse - s[self.chosen]))
        if not derivatives:
            return obj, None, None
        p = e / tot[self.alt_event]
        grad = self._xt(self.w_alt * p)
        grad -= self.b
        grad[: self.n] += alpha * theta
        return obj, grad, p

    def _xt(self, v: np.ndarray) -> np.ndarray:
        """Xᵀ v for a vector over alternatives."""
        if self.simple:
            return np.bincount(self.alt_item, weights=v, minlength=self.n_params)
        return self.XT @ v

    def _means(self, p: np.ndarray):
        """Sparse (n_events × n_params) matrix of each choice's mean feature vector μ_c."""
        if self.simple:
            return scipy.sparse.csr_matrix(
                (p, self.alt_item, self.ev_ptr), shape=(self.n_events, self.n_params)
            )
        ep = scipy.sparse.csr_matrix(
            (p, np.arange(self.n_alts), self.ev_ptr), shape=(self.n_events, self.n_alts)
        )
        return (ep @ self.X).tocsr()

    def hessian(self, p: np.ndarray, alpha: float) -> np.ndarray:
        """Dense Hessian of the penalised NLL: Xᵀ diag(w p) X − Σ_c w_c μ_c μ_cᵀ + alpha on θ."""
        h = np.zeros((self.n_params, self.n_params))
        if self.n_events:
            if self.simple:
                h[np.diag_indices(self.n_params)] += self._xt(self.w_alt * p)
                h -= self._outer_sum_by_ranking(p)
            else:
                xs = self.X.multiply((self.w_alt * p)[:, None]).tocsr()
                h += (self.XT @ xs).toarray()
                m = self._means(p)
                mw = m.multiply(self.ev_w[:, None]).tocsr()
                h -= (m.T @ mw).toarray()
        idx = np.arange(self.n)
        h[idx, idx] += alpha
        return h

    def _outer_sum_by_ranking(self, p: np.ndarray) -> np.ndarray:
        """Dense Σ_c w_c p_c p_cᵀ for tie-free data, one L×L block per ranking of L items.

        Without ties the choices of one ranking are its stages 0..m−1 and choice ``c`` has the items
        at positions ``c..L−1`` as alternatives, so the ranking's contribution is ``Pᵀ diag(w) P``
        with ``P`` (m × L) its choice probabilities (0 left of the diagonal): batched per (L, m)
        and scattered once into the dense matrix (faster than sparse products).
        """
        k = self.n_params
        if self._blocks is None:
            ranks, first_ev, m = np.unique(self.ev_rank, return_index=True, return_counts=True)
            length = self._offsets[ranks + 1] - self._offsets[ranks]
            shapes = np.unique(np.stack([length, m], axis=1), axis=0)
            blocks, keys = [], []
            for lv, mv in shapes.tolist():
                sel = np.flatnonzero((length == lv) & (m == mv))
                c = np.arange(mv)[:, None]
                j = np.arange(lv)[None, :]
                valid = j >= c
                gather = self.ev_ptr[first_ev[sel][:, None, None] + c[None]] + np.where(valid, j - c, 0)[None]
                gather = np.where(valid[None], gather, self.n_alts)  # index of an appended 0
                items = self.items[self._offsets[ranks[sel]][:, None] + np.arange(lv)[None, :]]
                keys.append((items[:, :, None] * k + items[:, None, :]).ravel())
                blocks.append((gather, self.ev_w[first_ev[sel]][:, None, None]))
            self._blocks = (blocks, np.concatenate(keys))
        blocks, keys = self._blocks
        p_ext = np.append(p, 0.0)
        vals = []
        for gather, w in blocks:
            pm = p_ext[gather]  # (rankings, m, L)
            vals.append(np.matmul((pm * w).transpose(0, 2, 1), pm).ravel())
        return np.bincount(keys, weights=np.concatenate(vals), minlength=k * k).reshape(k, k)

    def hessian_operator(self, p: np.ndarray, alpha: float):
        """(matvec, diagonal) of the Hessian, matrix-free (for many items)."""
        wp = self.w_alt * p
        m = self._means(p)
        mt = m.T.tocsr()
        w = self.ev_w
        n = self.n
        x2 = self.X.multiply(self.X)
        diag = x2.T @ wp - m.multiply(m).T @ w
        diag[:n] += alpha

        def matvec(v):
            out = self.XT @ (wp * (self.X @ v)) - mt @ (w * (m @ v))
            out[:n] += alpha * v[:n]
            return out

        return matvec, np.asarray(diag).ravel()

    def spread(self, theta: np.ndarray) -> float:
        """Largest gap (logits) between the strongest and weakest item shown in one choice."""
        if self.n_events == 0:
            return 0.0
        ev, item, _ = self.entries()
        starts = np.flatnonzero(np.r_[True, ev[1:] != ev[:-1]])
        v = theta[item]
        return float(np.max(np.maximum.reduceat(v, starts) - np.minimum.reduceat(v, starts)))

    # Existence ------------------------------------------------------------------------------

    def entries(self):
        """Per (choice, shown item) entry: choice index, item, whether it is in the chosen group."""
        counts = self.ev_r
        ev = np.repeat(np.arange(self.n_events), counts)
        start = np.zeros(self.n_events + 1, dtype=np.int64)
        np.cumsum(counts, out=start[1:])
        offset = np.arange(int(start[-1])) - start[ev]
        item = self.items[self.ev_first[ev] + offset]
        return ev, item, offset < self.ev_s[ev]


def _fmt_items(items: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(int(i)) for i in items[:limit])
    more = f", … ({items.size} items)" if items.size > limit else ""
    return f"[{shown}{more}]"


def _check_identifiable(design: _Design) -> None:
    """Raise DisconnectedComparisonsError if the Plackett–Luce MLE does not exist (alpha == 0)."""
    n = design.n
    ev, item, chosen = design.entries()
    seen = np.zeros(n, dtype=bool)
    seen[item] = True
    # One hub node per choice: every item not chosen -> hub -> every chosen item; chosen items of a
    # tie also -> hub (so tied items reach each other). Reachability among items is that of the
    # graph with an edge from every item not chosen to every item chosen.
    hub = n + ev
    tie = chosen & (design.ev_s[ev] > 1)
    src = np.concatenate([item[~chosen], hub[chosen], item[tie]])
    dst = np.concatenate([hub[~chosen], item[chosen], hub[tie]])
    size = n + design.n_events
    graph = scipy.sparse.csr_matrix((np.ones(src.size, dtype=np.int8), (src, dst)), shape=(size, size))
    _, labels_all = connected_components(graph, directed=True, connection="strong")
    labels_items = labels_all[:n]
    _, labels = np.unique(labels_items, return_inverse=True)
    n_comp = int(labels.max()) + 1 if n else 0
    if n_comp <= 1 and seen.all():
        return
    unobserved = np.flatnonzero(~seen)
    sizes = np.bincount(labels, minlength=n_comp)
    order = np.argsort(-sizes, kind="stable")
    members = np.argsort(labels, kind="stable")
    bounds = np.r_[0, np.cumsum(sizes)]
    groups = [members[bounds[c] : bounds[c + 1]] for c in order]
    # Which groups were ever chosen over / passed over for an item of another group.
    lab = labels[item]
    big = n_comp + 1
    ch_min = np.full(design.n_events, big)
    ch_max = np.full(design.n_events, -1)
    np.minimum.at(ch_min, ev[chosen], lab[chosen])
    np.maximum.at(ch_max, ev[chosen], lab[chosen])
    ot_min = np.full(design.n_events, big)
    ot_max = np.full(design.n_events, -1)
    np.minimum.at(ot_min, ev[~chosen], lab[~chosen])
    np.maximum.at(ot_max, ev[~chosen], lab[~chosen])
    lost_out = np.zeros(n_comp, dtype=bool)
    won_out = np.zeros(n_comp, dtype=bool)
    nc = ~chosen
    lost_out[lab[nc][(ch_min[ev[nc]] != lab[nc]) | (ch_max[ev[nc]] != lab[nc])]] = True
    ch_lab, ch_ev = lab[chosen], ev[chosen]
    # (a choice of everything still unranked, a tie of all of R, has no item passed over: no edge)
    beat_other = (ot_max[ch_ev] >= 0) & ((ot_min[ch_ev] != ch_lab) | (ot_max[ch_ev] != ch_lab))
    won_out[ch_lab[beat_other]] = True
    observed_groups = [c for c in order if seen[members[bounds[c]]]]
    parts = []
    for c in observed_groups[:5]:
        g = members[bounds[c] : bounds[c + 1]]
        note = []
        if not lost_out[c]:
            note.append("never ranked below the rest")
        if not won_out[c]:
            note.append("never ranked above the rest")
        parts.append(f"{_fmt_items(g)} ({', '.join(note) or 'connected both ways only indirectly'})")
    if len(observed_groups) > 1:
        msg = (
            f"the rankings split the items into {len(observed_groups)} groups that are not ranked against "
            f"each other both ways, so the maximum-likelihood strengths do not exist; use alpha > 0 or "
            f"collect rankings across groups."
        )
        more = f" and {len(observed_groups) - 5} more" if len(observed_groups) > 5 else ""
        msg += " Groups: " + "; ".join(parts) + more + "."
    else:
        msg = (
            "some items are in no ranking (of positive weight), so their maximum-likelihood strengths "
            "do not exist; use alpha > 0 or pass only the items that were ranked."
        )
    if unobserved.size:
        msg += f" Items in no ranking: {_fmt_items(unobserved)}."
    raise DisconnectedComparisonsError(msg, groups=groups, unobserved=unobserved)


# --------------------------------------------------------------------------------------------
# Newton's method


def _pcg(matvec, b, dinv, rtol, maxiter, null):
    """Jacobi-preconditioned conjugate gradients; ``null`` (unit vector or None) is projected out."""
    x = np.zeros_like(b)
    r = b - null * (null @ b) if null is not None else b.copy()
    bnorm = float(np.linalg.norm(r))
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
        if null is not None:
            r -= null * (null @ r)
        if float(np.linalg.norm(r)) <= target:
            break
        z = dinv * r
        rz_new = float(r @ z)
        p *= rz_new / rz
        p += z
        rz = rz_new
    return x


def _newton_direction(design: _Design, p, grad, alpha, gnorm, it):
    n, k = design.n, design.n_params
    null = None
    if alpha == 0:
        null = np.zeros(k)
        null[:n] = 1.0 / math.sqrt(n)
        grad = grad - null * (null @ grad)
    if k <= _DENSE_MAX_PARAMS:
        h = design.hessian(p, alpha)
        if null is not None:
            c = float(np.mean(np.diag(h)[:n])) or 1.0
            h += c * np.outer(null, null)
        for ridge in (0.0, 1e-10, 1e-7):
            try:
                hh = h + ridge * float(np.max(np.diag(h))) * np.eye(k) if ridge else h
                cf = scipy.linalg.cho_factor(hh, check_finite=False)
                return -scipy.linalg.cho_solve(cf, grad, check_finite=False)
            except np.linalg.LinAlgError:
                continue
        raise ConvergenceError("the Hessian is not positive definite; the strengths are not identifiable")
    matvec, diag = design.hessian_operator(p, alpha)
    dinv = 1.0 / np.where(diag > 0, diag, 1.0)
    rtol = max(min(0.1, max(gnorm, 1e-14) ** 0.5, 1e-3 if it > 1 else 0.1), 1e-13)
    return -_pcg(matvec, grad, dinv, rtol, maxiter=max(500, k // 10), null=null)


def _initial_params(design: _Design) -> np.ndarray:
    """Start: θ_i = log((chosen_i + ½) / (expected_i + ½)), the smoothed ratio of how often item i
    was chosen to how often it would be if all alternatives were equally likely (saves Newton
    iterations); log δ = 0."""
    n = design.n
    x = np.zeros(design.n_params)
    if design.n_events:
        n_alt = np.diff(design.ev_ptr)
        expected = design._xt(design.w_alt / n_alt[design.alt_event])[:n]
        x[:n] = np.log((design.b[:n] + 0.5) / (expected + 0.5))
        x[:n] -= x[:n].mean()
    return x


def _newton(design: _Design, alpha: float, max_iter: int, tol: float):
    n = design.n
    x = _initial_params(design)
    obj, grad, p = design.evaluate(x, alpha)
    for it in range(1, max_iter + 1):
        gnorm = float(np.max(np.abs(grad))) if grad.size else 0.0
        d = _newton_direction(design, p, grad, alpha, gnorm, it)
        if alpha == 0:
            d[:n] -= d[:n].mean()
        slope = float(grad @ d)
        if not np.isfinite(slope):
            raise ConvergenceError("non-finite Newton direction")
        if slope >= 0:  # inexact solve: fall back to the (centred) gradient direction
            d = -grad.copy()
            if alpha == 0:
                d[:n] -= d[:n].mean()
            slope = float(grad @ d)
        if slope == 0.0:
            return x, obj, p, it
        step = 1.0
        for _ in range(60):
            x_new = x + step * d
            obj_new, grad_new, p_new = design.evaluate(x_new, alpha)
            if obj_new <= obj + 1e-4 * step * slope or (
                step == 1.0 and abs(obj_new - obj) <= 1e-12 * max(1.0, abs(obj))
            ):
                break
            step *= 0.5
        else:
            raise ConvergenceError("line search failed to decrease the objective")
        move = step * float(np.max(np.abs(d)))
        x, obj, grad, p = x_new, obj_new, grad_new, p_new
        if step == 1.0 and move <= tol:
            return x, obj, p, it
    raise ConvergenceError(f"Newton's method did not converge to tol={tol} in max_iter={max_iter} iterations")


def _standard_errors(design: _Design, p: np.ndarray, alpha: float) -> np.ndarray:
    n = design.n
    h = design.hessian(p, alpha)
    ht = h[:n, :n]
    if design.n_params > n:  # profile out log δ (Schur complement); its columns are ⟂ 1
        he = h[n:, n:]
        hte = h[:n, n:]
        ht = ht - hte @ np.linalg.solve(he, hte.T)
    c = float(np.mean(np.diag(ht))) or 1.0
    ht = ht + c / n
    try:
        chol = scipy.linalg.cholesky(ht, lower=False, check_finite=False)
    except np.linalg.LinAlgError as exc:
        raise ConvergenceError("observed information is not positive definite; cannot compute SE") from exc
    inv_chol = scipy.linalg.solve_triangular(chol, np.eye(n), lower=False, check_finite=False)
    var = np.einsum("ij,ij->i", inv_chol, inv_chol) - 1.0 / (n * (alpha + c))
    return np.sqrt(np.maximum(var, 0.0))


# --------------------------------------------------------------------------------------------
# Public API: Plackett–Luce


def _check_alpha(alpha) -> float:
    alpha = float(alpha)
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    return alpha


def _observed_orders(data: _Rankings) -> list[int]:
    keep = (data.g_rem >= 2) & (data.weights[data.g_rank] > 0)
    return [1, *sorted(int(t) for t in np.unique(data.g_size[keep]) if t > 1)]


def pl_objective(
    strengths,
    rankings,
    n_items: int,
    *,
    shown=None,
    weights=None,
    alpha: float = 0.0,
    tie_params: dict[int, float] | None = None,
) -> float:
    """Penalised negative log-likelihood of the (Davidson–)Plackett–Luce model at given parameters.

    Same model and arguments as :func:`fit_plackett_luce`. ``tie_params`` maps each tie order
    ``t ≥ 2`` to ``δ_t > 0``; it must cover every tie order in the data and may add others (an
    order listed here enters every denominator even if it does not occur in the data).

    Returns
    -------
    float
        ``-Σ w log P(ranking) + (alpha/2)·Σθ²`` (natural log).
    """
    n_items = _check_n_items(n_items)
    alpha = _check_alpha(alpha)
    data = _parse_rankings(rankings, n_items, shown, weights)
    theta = np.asarray(strengths, dtype=float)
    if theta.shape != (n_items,):
        raise ValueError(f"strengths must have shape ({n_items},), got {theta.shape}")
    needed = _observed_orders(data)[1:]
    given = {} if tie_params is None else dict(tie_params)
    for t, d in given.items():
        if not _is_index(t) or t < 2:
            raise ValueError(f"tie_params keys must be tie orders >= 2, got {t!r}")
        if not np.isfinite(d) or d <= 0:
            raise ValueError(f"tie_params[{t}] must be a positive number, got {d!r}")
    missing = [t for t in needed if t not in given]
    if missing:
        raise ValueError(f"the data hold ties of order {missing}: tie_params must give δ for them")
    orders = [1, *sorted(int(t) for t in given)]
    design = _Design(data, orders)
    x = np.concatenate([theta, np.log([given[t] for t in orders[1:]])])
    obj, _, _ = design.evaluate(x, alpha, derivatives=False)
    return obj


def fit_plackett_luce(
    rankings,
    n_items: int,
    *,
    shown=None,
    weights=None,
    alpha: float = 0.0,
    max_iter: int = 100,
    tol: float = 1e-8,
    compute_se: bool = True,
) -> PLFit:
    """Fit Plackett–Luce strengths (Davidson–Luce ties) by maximum likelihood or MAP.

    Parameters
    ----------
    rankings : sequence of rankings
        One ranking per rank task, best first. A ranking is a sequence whose elements are item
        indices in ``[0, n_items)`` or groups (sequences) of item indices tied at one position,
        e.g. ``[3, [0, 5], 1]``. Lengths may differ; each ranking covers at least 2 items
        (counting ``shown``).
    n_items : int
        Number of items. Items in no ranking need ``alpha > 0``.
    shown : sequence, optional
        One entry per ranking: ``None`` (the ranking is complete) or the collection of items that
        were shown, a superset of the ranked ones. Shown items left unranked are taken to be worse
        than every ranked item and unordered among themselves (top-m rankings).
    weights : array_like of float, shape (n_rankings,), optional
        Non-negative weight per ranking (a ranking of weight 2 equals that ranking twice), e.g.
        ``ranking.core.bt.decay_weights``. Rankings of weight 0 are ignored.
    alpha : float, default 0
        Prior precision: adds ``(alpha/2)·Σθ²`` to the negative log-likelihood (θ ~ N(0, 1/alpha)).
        Note: choix's ``opt_rankings(alpha=a)`` adds ``a·Σθ²``, i.e. equals ``alpha = 2a`` here;
        choix's ``ilsr_rankings(alpha=…)`` is a different (Markov-chain) regularisation.
    max_iter : int, default 100
        Maximum number of Newton iterations.
    tol : float, default 1e-8
        Convergence when a full Newton step moves no parameter (θ in logits, log δ) by more than
        ``tol``; Newton's quadratic convergence leaves an error of order ``tol²``.
    compute_se : bool, default True
        Compute standard errors and 95 % CIs (dense, ``O(n_items³)``; see module docstring).

    Returns
    -------
    PLFit
        Strengths θ (logits, mean zero), SEs and 95 % CIs, tie parameters δ_t, log-likelihood.

    Raises
    ------
    ValueError
        Invalid input (the message names the ranking and the problem: an item listed twice, an
        index out of range, a ranking of fewer than 2 items, a negative weight, …).
    DisconnectedComparisonsError
        ``alpha == 0`` and the maximum-likelihood estimate does not exist (groups listed).
    ConvergenceError
        Newton's method did not converge, or the estimates run off to infinity.
    """
    n_items = _check_n_items(n_items)
    alpha = _check_alpha(alpha)
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    tol = float(tol)
    if not np.isfinite(tol) or tol <= 0:
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    data = _parse_rankings(rankings, n_items, shown, weights)
    orders = _observed_orders(data)
    design = _Design(data, orders)
    if alpha == 0:
        _check_identifiable(design)
    x, obj, p, n_iter = _newton(design, alpha, max_iter, tol)
    x[:n_items] -= x[:n_items].mean()  # the MAP (alpha > 0) is mean-zero already, up to rounding
    theta = x[:n_items].copy()
    if not np.all(np.isfinite(x)) or not np.isfinite(obj):
        raise ConvergenceError("fit produced non-finite values")
    eta = x[n_items:]
    if eta.size and np.max(np.abs(eta)) > _MAX_LOG_TIE:
        t = orders[1 + int(np.argmax(np.abs(eta)))]
        raise ConvergenceError(
            f"the tie parameter δ_{t} diverges (log δ_{t} = {float(eta[orders.index(t) - 1]):.1f}): ties of "
            f"{t} items occur at nearly every opportunity, so the tie model has no "
            "finite estimate for these data"
        )
    spread = design.spread(theta)
    if spread > _MAX_SPREAD:
        raise ConvergenceError(
            f"estimates diverge (items shown in one choice {spread:.0f} logits apart): the "
            "maximum-likelihood estimate does not exist for these data; use alpha > 0"
        )
    obj, _, p = design.evaluate(x, alpha)  # at the centred estimate, for exactness
    penalty = 0.5 * alpha * float(theta @ theta)
    se = ci_low = ci_high = None
    if compute_se:
        se = _standard_errors(design, p, alpha)
        ci_low = theta - Z_95 * se
        ci_high = theta + Z_95 * se
    tie_params = {t: float(np.exp(e)) for t, e in zip(orders[1:], eta)} if len(orders) > 1 else None
    return PLFit(
        strengths=theta,
        se=se,
        ci_low=ci_low,
        ci_high=ci_high,
        tie_params=tie_params,
        log_likelihood=-(obj - penalty),
        objective=obj,
        n_iter=n_iter,
        n_choices=design.n_events,
        converged=True,
    )


# --------------------------------------------------------------------------------------------
# Rank breaking


def _block_pairs(first_a, size_a, first_b, size_b):
    """All (a, b) flat positions with a in [first_a, first_a+size_a), b in [first_b, first_b+size_b)."""
    out_a, out_b, owner = [], [], []
    shapes = np.unique(np.stack([size_a, size_b], axis=1), axis=0) if size_a.size else np.zeros((0, 2), int)
    for sa, sb in shapes.tolist():
        if sa == 0 or sb == 0:
            continue
        sel = np.flatnonzero((size_a == sa) & (size_b == sb))
        ga, gb = np.meshgrid(np.arange(sa), np.arange(sb), indexing="ij")
        out_a.append((first_a[sel, None] + ga.ravel()[None, :]).ravel())
        out_b.append((first_b[sel, None] + gb.ravel()[None, :]).ravel())
        owner.append(np.repeat(sel, sa * sb))
    return out_a, out_b, owner


def _tie_pairs(first, size):
    """All unordered pairs of flat positions within each group of size ≥ 2."""
    out_a, out_b, owner = [], [], []
    for s in np.unique(size).tolist():
        if s < 2:
            continue
        sel = np.flatnonzero(size == s)
        comb = _combos(s, 2)
        out_a.append((first[sel, None] + comb[None, :, 0]).ravel())
        out_b.append((first[sel, None] + comb[None, :, 1]).ravel())
        owner.append(np.repeat(sel, comb.shape[0]))
    return out_a, out_b, owner


def rank_breaking(rankings, *, method: str = "full", shown=None, weights=None, n_items: int | None = None):
    """Break rankings into weighted pairwise comparisons for ``ranking.core.bt.fit_bt``.

    A ranking is read as its sequence of choices (module docstring): at each step a group ``G`` is
    chosen from the ``r`` items still unranked, ``R``.

    - ``method="full"``: every item of ``G`` beats every other item of ``R`` and every pair within
      ``G`` is a tie; each of these pairs gets weight ``w / (r − 1)`` (``w`` the ranking's weight),
      so a choice of one item out of ``r`` adds up to weight 1 and a complete ranking of k untied
      items to ``k − 1``. Why this is sound: under Plackett–Luce, conditionally on ``R``, the pairs
      a choice produces are unbiased Bradley–Terry comparisons — for ``i, j ∈ R``,
      ``P(i chosen)·π_j/(π_i + π_j) = P(j chosen)·π_i/(π_i + π_j)`` — so the Bradley–Terry score
      equations of the broken pairs are unbiased for any weights fixed by the step (here by ``r``),
      and the BT fit of fully broken complete *and top-m* rankings is a consistent (composite
      likelihood) estimate of the Plackett–Luce strengths (cf. Azari Soufiani, Chen, Parkes & Xia
      2013, "Generalized method-of-moments for rank aggregation", NeurIPS, on consistent breakings;
      Khetan & Oh 2016, "Data-driven rank breaking for efficient rank aggregation", JMLR 17,
      arXiv:1601.05495, on weighting pairs by the position they come from). The weight
      ``1/(r − 1)`` down-weights the many dependent pairs of an early choice.
    - ``method="adjacent"``: only the items of consecutive groups are compared (and the last ranked
      group with every unranked shown item), plus the ties within each group, each pair with
      weight ``w``. Adjacent breaking is *not* consistent for Plackett–Luce (Azari Soufiani et al.
      2013): it is kept for comparison.

    The pairs of one ranking are dependent, so the standard errors of a BT fit on broken pairs are
    too small; use :func:`fit_plackett_luce` for inference. Tied pairs are Davidson ties in
    ``fit_bt``; that pairwise tie model is not the marginal of the Davidson–Luce model (no
    consistency claim with ties).

    Parameters
    ----------
    rankings, shown, weights
        As in :func:`fit_plackett_luce`.
    method : {"full", "adjacent"}, default "full"
    n_items : int, optional
        If given, item indices are checked to lie in ``[0, n_items)``.

    Returns
    -------
    winners, losers : numpy.ndarray of int64, shape (m,)
        For a tied row the order of the two items carries no meaning.
    tied : numpy.ndarray of bool, shape (m,)
    weights : numpy.ndarray of float, shape (m,)
        Positive; rankings of weight 0 produce no rows.
    """
    if method not in ("full", "adjacent"):
        raise ValueError(f'method must be "full" or "adjacent", got {method!r}')
    if n_items is not None:
        n_items = _check_n_items(n_items)
    data = _parse_rankings(rankings, n_items, shown, weights)
    w_group = data.weights[data.g_rank]
    live = np.flatnonzero((w_group > 0) & (data.g_rem >= 2))
    first = data.g_start[live]
    size = data.g_size[live]
    if method == "full":
        scale = w_group[live] / (data.g_rem[live] - 1)
        a, b, own = _block_pairs(first, size, first + size, data.g_rem[live] - size)
    else:
        scale = w_group[live]
        a, b, own = _block_pairs(first, size, first + size, data.g_next[live])
    ta, tb, town = _tie_pairs(first, size)
    n_dec = sum(x.size for x in a)
    pos_a = np.concatenate([*a, *ta]) if (a or ta) else np.zeros(0, dtype=np.int64)
    pos_b = np.concatenate([*b, *tb]) if (b or tb) else np.zeros(0, dtype=np.int64)
    owner = np.concatenate([*own, *town]) if (own or town) else np.zeros(0, dtype=np.int64)
    tied = np.zeros(pos_a.size, dtype=bool)
    tied[n_dec:] = True
    return data.items[pos_a], data.items[pos_b], tied, scale[owner].astype(float)


# --------------------------------------------------------------------------------------------
# Kendall's τ and top-k overlap


def _count_inversions(y: np.ndarray) -> int:
    """Number of pairs i < j with y[i] > y[j] (y integer, 0 ≤ y < len(y)); O(n log² n)."""
    n = y.size
    total = 0
    pos = np.arange(n, dtype=np.int64)
    width = 1
    while width < n:
        block = pos // (2 * width)
        left = (pos % (2 * width)) < width
        lk = np.sort(block[left] * n + y[left])
        rb = block[~left]
        rk = rb * n + y[~left]
        end = np.searchsorted(lk, (rb + 1) * n, side="left")
        total += int((end - np.searchsorted(lk, rk, side="right")).sum())
        width *= 2
    return total


def _dense_ranks(v: np.ndarray) -> np.ndarray:
    _, inv = np.unique(v, return_inverse=True)
    return inv.astype(np.int64).ravel()


def _mahonian_cdf(n: int, c: int) -> float:
    """P(D ≤ c) for D the number of inversions of a uniformly random permutation of n items.

    Mahonian numbers by dynamic programming in exact integer arithmetic: inserting item j into a
    permutation of j − 1 items adds 0..j−1 inversions, so I_j(d) = Σ_{i=0}^{min(d, j−1)} I_{j−1}(d − i);
    only d ≤ c is needed.
    """
    counts = [1] + [0] * c  # n = 1: one permutation, no inversion
    for j in range(2, n + 1):
        prefix = list(itertools.accumulate(counts))
        counts = [prefix[d] - (prefix[d - j] if d >= j else 0) for d in range(c + 1)]
    return sum(counts) / math.factorial(n)  # exact integers; true division rounds once


def kendall_tau_exact(x, y, *, method: str = "auto") -> KendallTau:
    """Kendall's τ between two paired samples with a two-sided test of independence.

    Without ties and with ``n ≤ 60`` (``method="auto"``) the p-value is exact: under independence
    the number of discordant pairs ``D`` is the number of inversions of a uniformly random
    permutation (Mahonian distribution, computed exactly), and ``p = min(1, 2·P(D ≤ min(d, T − d)))``
    with ``T = n(n−1)/2`` — the same two-sided rule as ``scipy.stats.kendalltau(method="exact")``.
    With ties, or for larger ``n``, τ_b is returned with the normal approximation of the statistic
    ``S = concordant − discordant`` using the tie-corrected variance (Kendall 1970)::

        var S = [n(n−1)(2n+5) − Σ t(t−1)(2t+5) − Σ u(u−1)(2u+5)] / 18
                + Σ t(t−1) Σ u(u−1) / (2n(n−1)) + Σ t(t−1)(t−2) Σ u(u−1)(u−2) / (9n(n−1)(n−2))

    (``t``, ``u`` the sizes of tied groups in ``x`` and ``y``); ``result.method`` says which was used.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        Paired scores or ranks (any real numbers; larger means "more"), ``n ≥ 2``; no NaN.
    method : {"auto", "exact", "asymptotic"}, default "auto"
        ``"exact"`` raises ``ValueError`` when there are ties (or n > 200).

    Returns
    -------
    KendallTau
        ``tau``, ``p_value``, ``method``, ``n``; unpacks as ``tau, p_value``.
    """
    if method not in ("auto", "exact", "asymptotic"):
        raise ValueError(f'method must be "auto", "exact" or "asymptotic", got {method!r}')
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(f"x and y must be 1-D, got shapes {x.shape} and {y.shape}")
    if x.size != y.size:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    n = x.size
    if n < 2:
        raise ValueError(f"Kendall's τ needs at least 2 observations, got {n}")
    for name, v in (("x", x), ("y", y)):
        if v.dtype.kind not in "biuf":
            raise ValueError(f"{name} must be numeric, got dtype {v.dtype}")
        if v.dtype.kind == "f" and np.isnan(v).any():
            raise ValueError(f"{name} contains NaN")
    rx = _dense_ranks(x)
    ry = _dense_ranks(y)

    def tie_stats(ranks):
        cnt = np.bincount(ranks).astype(np.int64)
        cnt = cnt[cnt > 1]
        return (
            int((cnt * (cnt - 1) // 2).sum()),
            int((cnt * (cnt - 1) * (cnt - 2)).sum()),
            int((cnt * (cnt - 1) * (2 * cnt + 5)).sum()),
        )

    tot = n * (n - 1) // 2
    xtie, x0, x1 = tie_stats(rx)
    ytie, y0, y1 = tie_stats(ry)
    for name, t in (("x", xtie), ("y", ytie)):
        if t == tot:
            raise ValueError(f"{name} is constant: Kendall's τ is undefined")
    joint = rx * (int(ry.max()) + 1) + ry
    ntie = tie_stats(_dense_ranks(joint))[0]
    # Sort by (x, y); discordant pairs are the strict inversions of y in that order.
    order = np.lexsort((ry, rx))
    dis = _count_inversions(ry[order])
    s = tot - xtie - ytie + ntie - 2 * dis  # concordant − discordant
    tau = s / math.sqrt((tot - xtie) * (tot - ytie))
    tau = min(1.0, max(-1.0, tau))
    ties = xtie > 0 or ytie > 0
    if method == "exact":
        if ties:
            raise ValueError("the exact p-value needs data without ties; use method='asymptotic'")
        if n > _EXACT_LIMIT_N:
            raise ValueError(f"the exact p-value is limited to n <= {_EXACT_LIMIT_N}, got n = {n}")
    use_exact = method == "exact" or (method == "auto" and not ties and n <= _EXACT_MAX_N)
    if use_exact:
        c = min(dis, tot - dis)
        p = min(1.0, 2.0 * _mahonian_cdf(n, c))
        return KendallTau(tau=float(tau), p_value=float(p), method="exact", n=n)
    m = n * (n - 1.0)
    var = (m * (2 * n + 5) - x1 - y1) / 18.0 + (2.0 * xtie * ytie) / m
    if n > 2:
        var += x0 * y0 / (9.0 * m * (n - 2))
    z = s / math.sqrt(var)
    p = math.erfc(abs(z) / math.sqrt(2.0))
    return KendallTau(tau=float(tau), p_value=float(min(1.0, p)), method="asymptotic", n=n)


def top_k_overlap(human_order, metric_order, k: int) -> float:
    """Share of the human top-k that the metric also puts in its top-k: ``|top_k(h) ∩ top_k(m)| / k``.

    Parameters
    ----------
    human_order, metric_order : sequence of hashable
        Item identifiers, best first (e.g. items sorted by decreasing strength / metric score);
        no identifier may repeat within one order. The two orders may cover different items.
    k : int
        ``1 ≤ k ≤ min(len(human_order), len(metric_order))``.

    Returns
    -------
    float
        In ``[0, 1]``; 1 when the two top-k sets coincide (order within the top k is ignored).
    """
    human = list(human_order)
    metric = list(metric_order)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k > min(len(human), len(metric)):
        raise ValueError(f"k = {k} exceeds the length of an order (human {len(human)}, metric {len(metric)})")
    for name, order in (("human_order", human), ("metric_order", metric)):
        if len(set(order)) != len(order):
            raise ValueError(f"{name} lists an item more than once")
    return len(set(human[:k]) & set(metric[:k])) / k
