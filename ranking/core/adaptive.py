"""Adaptive pair selection: choose the next comparisons where they tell the most.

Every judgment costs money, so the next batch of pairs is drawn where one more comparison shrinks
the uncertainty of the strengths most, and re-planned as judgments arrive (refit, then plan again).
The targets are either items (images) or groups of them (source models: a pair of models is chosen
first, then two images of those models by :func:`model_pairs_to_items`).

Model
-----
Strengths ``θ`` (logits) follow the Bradley–Terry model with Davidson ties (``ranking.core.bt``):
with ``d = θ_i − θ_j`` and ``D = e^{d/2} + e^{−d/2} + ν``, ``P(i beats j) = e^{d/2}/D``,
``P(tie) = ν/D``, ``P(j beats i) = e^{−d/2}/D``. The current fit is summarised by a Gaussian
(Laplace) approximation ``θ ~ N(θ̂, Σ)``. One comparison of ``i`` with ``j`` adds the Fisher
information ``I(d) = (1 + (ν/2)·cosh(d/2)) / D²`` (:func:`comparison_information`; ``p(1 − p)``
without ties, observed = expected because the log-likelihood is linear in the outcome) along the
direction ``u = e_i − e_j``. Write ``v_ij = uᵀΣu = Σ_ii + Σ_jj − 2Σ_ij`` for the variance of the
pair's difference.

Rules (the weight of a candidate pair, before the floor)
--------------------------------------------------------
``"ci_reduction"`` (the Chatbot Arena rule, Chiang et al. 2024, §5): the expected reduction of the
pair's 95 % CI width from one more comparison. By Sherman–Morrison along ``u`` the variance after
it is ``v' = v − I v² / (1 + I v) = v / (1 + I v)``, so the weight is
``2 z (√v − √v')`` in logits (z = 1.959964). Arena's own formula
``√(σ²/n) − √(σ²/(n + 1))`` for a pair compared ``n`` times is the special case ``v = σ²/n``,
``I = 1/σ²``; here ``v`` also counts the indirect evidence through other items.

``"information_gain"`` (BALD, Houlsby et al. 2011): the mutual information, in nats, between the
outcome ``Y`` of one more comparison (win / tie / loss) and ``θ`` under the Gaussian approximation,
``H(E_d[p(d)]) − E_d[H(p(d))]`` with ``d ~ N(d̂, v)``, computed by 40-point Gauss–Hermite
quadrature. It is the expected drop in the entropy of ``θ``'s posterior (equivalently the expected
KL divergence from the prior to the posterior) from one more outcome; it favours pairs whose
outcome is uncertain *because* ``θ`` is uncertain, not because the pair is a coin flip. For small
``v`` it is ``≈ I·v / 2``, the entropy drop ``½ log(1 + I v)`` of the Laplace posterior.

``"uniform"``: every candidate weight 1 (the baseline).

Both adaptive rules are increasing in ``v`` and in ``I`` (close pairs, ``d ≈ 0``, carry the most
information), so they favour uncertain, close and rarely compared pairs; ``ci_reduction`` grows like
``I·v^{3/2}`` and so chases the largest uncertainties harder than ``information_gain`` (``≈ I·v/2``).

No pair starves
---------------
After the rule, every candidate's weight is raised to at least ``floor × (mean weight over the
candidates)``. With ``c`` candidates each draw then picks any given pair with probability at least
``floor / ((1 + floor)·c)``, so over repeated batches every pair keeps being compared (and a poor
fit cannot lock the design out of the pairs that would reveal it).

Covariance input
----------------
``cov`` is the ``(n, n)`` covariance of the strengths (e.g. :func:`strength_covariance`), or a 1-D
array of standard errors (``BTFit.se``): then ``Σ`` is taken as diagonal and, since the direct
comparisons alone bound the variance of the difference, ``v_ij = min(se_i² + se_j²,
1 / (counts_ij · I_ij))``. ``counts`` is the symmetric ``(n, n)`` matrix of comparisons so far (ties
included).

This module is pure numpy/scipy and must not import Django.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.special
from scipy.sparse.csgraph import connected_components

from ranking.core.bt import Z_95

__all__ = [
    "RULES",
    "PairPlan",
    "all_pairs",
    "comparison_information",
    "model_pairs_to_items",
    "pair_counts",
    "pair_weights",
    "plan_pairs",
    "strength_covariance",
]

RULES = ("ci_reduction", "information_gain", "uniform")

_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(40)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()  # expectation over a standard normal
_CHUNK = 1 << 16  # candidate pairs per quadrature block (keeps memory at ~40 × 65,536 doubles)


@dataclass(frozen=True)
class PairPlan:
    """Result of :func:`plan_pairs`.

    Attributes
    ----------
    pairs : numpy.ndarray of int, shape (k, 2)
        The pairs to compare next, each row ``i < j``, in draw order; distinct unless drawn with
        ``replace=True``.
    weights : numpy.ndarray of float, shape (c,)
        Sampling weight of every candidate (after the floor), aligned with ``candidates``; the
        draw probability is ``weights / weights.sum()``. Units: logits of 95 % CI width
        (``"ci_reduction"``), nats (``"information_gain"``), 1 (``"uniform"``).
    candidates : numpy.ndarray of int, shape (c, 2)
        The pairs considered, each row ``i < j``.
    rule : str
        The rule that produced ``weights``.
    """

    pairs: np.ndarray
    weights: np.ndarray
    candidates: np.ndarray
    rule: str

    @property
    def probabilities(self) -> np.ndarray:
        """Probability of each candidate in one draw (``weights`` normalised)."""
        return self.weights / self.weights.sum()


# --------------------------------------------------------------------------------------------
# Validation


def _check_strengths(strengths) -> np.ndarray:
    theta = np.asarray(strengths, dtype=float)
    if theta.ndim != 1:
        raise ValueError(f"strengths must be a 1-D array, got shape {theta.shape}")
    if theta.size < 2:
        raise ValueError(f"need at least 2 items to form a pair, got {theta.size}")
    if not np.all(np.isfinite(theta)):
        raise ValueError("strengths must be finite (no NaN or inf)")
    return theta


def _check_tie_param(tie_param) -> float:
    if tie_param is None:
        return 0.0
    nu = float(tie_param)
    if not np.isfinite(nu) or nu < 0:
        raise ValueError(f"tie_param must be a finite number >= 0 (or None), got {tie_param!r}")
    return nu


def _check_cov(cov, n: int) -> np.ndarray:
    arr = np.asarray(cov, dtype=float)
    if arr.ndim == 1:
        if arr.shape != (n,):
            raise ValueError(f"cov as standard errors must have shape ({n},), got {arr.shape}")
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError("standard errors must be finite and >= 0")
        return arr
    if arr.shape != (n, n):
        raise ValueError(f"cov must have shape ({n}, {n}) or ({n},) for standard errors, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("cov must be finite (no NaN or inf)")
    scale = max(float(np.abs(np.diag(arr)).max()), np.finfo(float).tiny)
    if np.abs(arr - arr.T).max() > 1e-8 * scale:
        raise ValueError("cov must be symmetric")
    if np.any(np.diag(arr) < 0):
        raise ValueError("cov must have a non-negative diagonal (variances)")
    return arr


def _check_counts(counts, n: int, name: str = "counts"):
    if scipy.sparse.issparse(counts):
        mat = scipy.sparse.csr_matrix(counts, dtype=float)
        if mat.shape != (n, n):
            raise ValueError(f"{name} must have shape ({n}, {n}), got {mat.shape}")
        data = mat.data
        asym = abs(mat - mat.T).max() if mat.nnz else 0.0
    else:
        mat = np.asarray(counts, dtype=float)
        if mat.shape != (n, n):
            raise ValueError(f"{name} must have shape ({n}, {n}), got {mat.shape}")
        data = mat
        asym = np.abs(mat - mat.T).max()
    if not np.all(np.isfinite(data)) or np.any(data < 0):
        raise ValueError(f"{name} must be finite and >= 0")
    if asym > 0:
        raise ValueError(f"{name} must be symmetric (counts[i, j] = counts[j, i] = comparisons of i with j)")
    return mat


def _lookup(mat, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    if scipy.sparse.issparse(mat):
        return np.asarray(mat[i, j], dtype=float).ravel()
    return mat[i, j]


def _check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    return rule


def _check_floor(floor) -> float:
    value = float(floor)
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"floor must be in [0, 1], got {floor!r}")
    return value


def _check_candidates(candidates, n: int) -> np.ndarray:
    if candidates is None:
        return all_pairs(n)
    arr = np.asarray(candidates)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"candidates must have shape (c, 2), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("candidates is empty: there is no pair to choose from")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"candidates must hold integer item indices, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= n:
        raise ValueError(f"candidates must be item indices in [0, {n}), found [{arr.min()}, {arr.max()}]")
    lo = np.minimum(arr[:, 0], arr[:, 1]).astype(np.int64)
    hi = np.maximum(arr[:, 0], arr[:, 1]).astype(np.int64)
    same = lo == hi
    if same.any():
        raise ValueError(f"candidates must pair two different items (row {int(np.argmax(same))})")
    keys = lo * n + hi
    uniq, counts = np.unique(keys, return_counts=True)
    if uniq.size != keys.size:
        dup = int(uniq[np.argmax(counts > 1)])
        raise ValueError(f"candidates must be distinct unordered pairs; ({dup // n}, {dup % n}) repeats")
    return np.column_stack([lo, hi])


# --------------------------------------------------------------------------------------------
# Building blocks


def all_pairs(n_items: int) -> np.ndarray:
    """All unordered pairs ``i < j`` of ``n_items`` items, shape ``(n(n−1)/2, 2)``, row-major order."""
    if isinstance(n_items, bool) or not isinstance(n_items, numbers.Integral) or n_items < 2:
        raise ValueError(f"n_items must be an integer >= 2, got {n_items!r}")
    i, j = np.triu_indices(int(n_items), 1)
    return np.column_stack([i, j]).astype(np.int64)


def pair_counts(first, second, n_items: int, *, weights=None) -> np.ndarray:
    """Symmetric ``(n_items, n_items)`` matrix of comparisons per pair (ties included).

    ``first``/``second`` are the two items of each comparison (winner/loser order is irrelevant);
    ``weights`` optionally counts a row that many times.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, numbers.Integral) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    a = np.asarray(first, dtype=np.int64).ravel()
    b = np.asarray(second, dtype=np.int64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"first and second must have the same length, got {a.size} and {b.size}")
    if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n_items):
        raise ValueError(f"item indices must be in [0, {n_items})")
    if np.any(a == b):
        raise ValueError("a comparison must involve two different items")
    w = None if weights is None else np.asarray(weights, dtype=float).ravel()
    if w is not None and w.shape != a.shape:
        raise ValueError(f"weights must have shape {a.shape}, got {w.shape}")
    n = int(n_items)
    out = np.bincount(a * n + b, weights=w, minlength=n * n).reshape(n, n).astype(float)
    return out + out.T


def comparison_information(diff, tie_param=None) -> np.ndarray:
    """Fisher information about ``d = θ_i − θ_j`` from one Davidson comparison at ``d = diff``.

    ``I(d) = (1 + (ν/2) cosh(d/2)) / (2 cosh(d/2) + ν)²``; without ties (``ν = 0``) this is
    ``p(1 − p)`` with ``p = 1/(1 + e^{−d})``. Units: 1/logit². Overflow-free for any ``d``.
    """
    nu = _check_tie_param(tie_param)
    d = np.abs(np.asarray(diff, dtype=float))
    s = np.exp(-d)  # everything scaled by e^{-|d|/2}
    half = np.exp(-0.5 * d)
    dprime = 1.0 + s + nu * half  # D · e^{-|d|/2}
    return (s + 0.25 * nu * half * (1.0 + s)) / dprime**2


def strength_covariance(strengths, counts, *, tie_param=None, alpha: float = 0.0) -> np.ndarray:
    """Laplace covariance ``P F⁺ P`` of the strengths from the comparisons so far, shape ``(n, n)``.

    ``F = Σ_{i<j} counts_ij · I(θ_i − θ_j) · (e_i − e_j)(e_i − e_j)ᵀ + alpha·I`` is the Fisher
    information (plus the Gaussian prior precision of ``fit_bt``'s ``alpha``) and
    ``P = I − 11ᵀ/n`` the centring projection (strengths are mean-zero). Without ties this is the
    covariance whose diagonal ``fit_bt`` reports as ``se²``; with ties ``ν`` is held fixed here,
    whereas ``fit_bt`` profiles it out (its SEs are then slightly larger). Dense, ``O(n³)``.

    Raises
    ------
    ValueError
        Invalid input, or ``alpha == 0`` and the comparison graph (pairs with ``counts > 0``) is
        not connected (the information is singular: some differences are not identified).
    """
    theta = _check_strengths(strengths)
    n = theta.size
    nu = _check_tie_param(tie_param)
    alpha = float(alpha)
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    c = _check_counts(counts, n)
    c = c.toarray() if scipy.sparse.issparse(c) else c
    w = c * comparison_information(theta[:, None] - theta[None, :], nu)
    np.fill_diagonal(w, 0.0)
    f = -w
    f[np.diag_indices(n)] = w.sum(axis=1) + alpha
    if alpha == 0:
        n_comp, _ = connected_components(scipy.sparse.csr_matrix(w > 0), directed=False)
        if n_comp > 1:
            raise ValueError(
                f"the comparison graph has {n_comp} separate groups, so the information about the "
                "strengths is singular; pass alpha > 0 (a prior) or compare across the groups"
            )
    shift = float(np.diag(f).mean()) or 1.0
    chol = scipy.linalg.cho_factor(f + shift / n, check_finite=False)
    cov = scipy.linalg.cho_solve(chol, np.eye(n), check_finite=False) - 1.0 / (n * (alpha + shift))
    return 0.5 * (cov + cov.T)


def _pair_variances(cov: np.ndarray, counts, i, j, info) -> np.ndarray:
    if cov.ndim == 1:
        var = cov[i] ** 2 + cov[j] ** 2
        direct = _lookup(counts, i, j) * info
        with np.errstate(divide="ignore"):
            bound = np.where(direct > 0, 1.0 / np.where(direct > 0, direct, 1.0), np.inf)
        var = np.minimum(var, bound)
    else:
        var = cov[i, i] + cov[j, j] - 2.0 * cov[i, j]
    return np.maximum(var, 0.0)


def _outcome_probabilities(d: np.ndarray, nu: float):
    """P(i wins), P(tie), P(j wins) at d = θ_i − θ_j, overflow-free."""
    ad = np.abs(d)
    s = np.exp(-ad)
    tie = nu * np.exp(-0.5 * ad)
    denom = 1.0 + s + tie
    big, small = 1.0 / denom, s / denom
    pos = d >= 0
    return np.where(pos, big, small), tie / denom, np.where(pos, small, big)


def _mutual_information(d_hat: np.ndarray, var: np.ndarray, nu: float) -> np.ndarray:
    out = np.empty(d_hat.size)
    for start in range(0, d_hat.size, _CHUNK):
        sl = slice(start, start + _CHUNK)
        d = d_hat[sl, None] + np.sqrt(var[sl])[:, None] * _GH_NODES[None, :]
        probs = _outcome_probabilities(d, nu)
        mean_entropy = sum(scipy.special.entr(p) for p in probs) @ _GH_WEIGHTS
        marginal_entropy = sum(scipy.special.entr(p @ _GH_WEIGHTS) for p in probs)
        out[sl] = np.maximum(marginal_entropy - mean_entropy, 0.0)
    out[var <= 0] = 0.0  # no doubt about d: exactly nothing to learn (not rounding noise)
    return out


def _raw_weights(theta, cov, counts, cand, rule, nu) -> np.ndarray:
    if rule == "uniform":
        return np.ones(cand.shape[0])
    i, j = cand[:, 0], cand[:, 1]
    d_hat = theta[i] - theta[j]
    info = comparison_information(d_hat, nu)
    var = _pair_variances(cov, counts, i, j, info)
    if rule == "ci_reduction":
        var_after = var / (1.0 + info * var)  # Sherman–Morrison along e_i − e_j
        return 2.0 * Z_95 * (np.sqrt(var) - np.sqrt(var_after))
    return _mutual_information(d_hat, var, nu)


def _apply_floor(raw: np.ndarray, floor: float) -> np.ndarray:
    mean = float(raw.mean())
    if not mean > 0:  # nothing to learn anywhere (all variances zero): fall back to uniform
        return np.ones_like(raw)
    return np.maximum(raw, floor * mean)


# --------------------------------------------------------------------------------------------
# Public API


def pair_weights(
    strengths,
    cov,
    counts,
    *,
    rule: str = "ci_reduction",
    tie_param=None,
    floor: float = 0.05,
    candidates=None,
) -> np.ndarray:
    """Sampling weight of every candidate pair under ``rule`` (module docstring), floor applied.

    Parameters
    ----------
    strengths : array_like of float, shape (n,)
        Current estimates θ̂ (logits), e.g. ``BTFit.strengths``.
    cov : array_like of float, shape (n, n) or (n,)
        Covariance of the strengths (logits²), e.g. :func:`strength_covariance`; or 1-D standard
        errors (``BTFit.se``), taken as a diagonal covariance tightened by the direct comparisons.
    counts : array_like or scipy.sparse matrix, shape (n, n)
        Symmetric comparisons so far per pair (:func:`pair_counts`).
    rule : {"ci_reduction", "information_gain", "uniform"}
    tie_param : float, optional
        Davidson ν (``BTFit.tie_param``); ``None`` or 0 for plain Bradley–Terry.
    floor : float in [0, 1], default 0.05
        Every candidate gets at least ``floor × mean weight`` so that no pair starves.
    candidates : array_like of int, shape (c, 2), optional
        The pairs to weigh (each unordered pair once); default :func:`all_pairs` ``(n)``.

    Returns
    -------
    numpy.ndarray of float, shape (c,)
        Weights aligned with ``candidates`` (rows normalised to ``i < j``); all ``> 0`` when
        ``floor > 0``; all 1 when every raw weight is zero (nothing left to learn). Units: logits of expected 95 %
        CI-width reduction (``"ci_reduction"``), nats (``"information_gain"``), 1 (``"uniform"``).
    """
    theta = _check_strengths(strengths)
    n = theta.size
    rule = _check_rule(rule)
    nu = _check_tie_param(tie_param)
    floor = _check_floor(floor)
    cov = _check_cov(cov, n)
    counts = _check_counts(counts, n)
    cand = _check_candidates(candidates, n)
    return _apply_floor(_raw_weights(theta, cov, counts, cand, rule, nu), floor)


def plan_pairs(
    strengths,
    cov,
    counts,
    k: int,
    *,
    rule: str = "ci_reduction",
    candidates=None,
    floor: float = 0.05,
    tie_param=None,
    replace: bool = False,
    random_state=None,
) -> PairPlan:
    """Draw the next ``k`` pairs to compare, with probability ∝ :func:`pair_weights`.

    Pairs are drawn without replacement (successive sampling: each draw ∝ the weights of the pairs
    not drawn yet), so the ``k`` pairs are distinct; ``replace=True`` draws them independently
    (a pair may repeat, as in Chatbot Arena's per-battle sampling — useful for model-level targets
    with few model pairs). Re-plan after each batch of judgments (refit, new ``cov``, plan again).

    Parameters
    ----------
    strengths, cov, counts, rule, tie_param, floor, candidates
        As in :func:`pair_weights`; ``candidates`` restricts the choice (e.g. only cross-model
        image pairs).
    k : int
        Number of pairs, ``0 ≤ k ≤ c`` (any ``k ≥ 0`` with ``replace=True``).
    replace : bool, default False
        Draw with replacement.
    random_state : None, int, numpy.random.Generator or SeedSequence
        Seed of the draw (same seed and inputs, same plan).

    Returns
    -------
    PairPlan

    Raises
    ------
    ValueError
        Invalid input, or ``k`` larger than the number of candidates (without replacement).
    """
    theta = _check_strengths(strengths)
    n = theta.size
    cand = _check_candidates(candidates, n)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    k = int(k)
    if not replace and k > cand.shape[0]:
        raise ValueError(
            f"k={k} distinct pairs requested but there are only {cand.shape[0]} candidate pairs; "
            "lower k or pass replace=True"
        )
    weights = pair_weights(theta, cov, counts, rule=rule, tie_param=tie_param, floor=floor, candidates=cand)
    rng = np.random.default_rng(random_state)
    p = weights / weights.sum()
    if replace:
        chosen = rng.choice(cand.shape[0], size=k, replace=True, p=p)
    else:
        positive = np.flatnonzero(weights > 0)
        if positive.size >= k:
            chosen = rng.choice(cand.shape[0], size=k, replace=False, p=p)
        else:  # floor == 0 left too few pairs with weight: take them all, then the rest at random
            zero = np.flatnonzero(weights <= 0)
            chosen = np.concatenate(
                [rng.permutation(positive), rng.choice(zero, k - positive.size, replace=False)]
            )
    return PairPlan(pairs=cand[chosen].copy(), weights=weights, candidates=cand, rule=rule)


def model_pairs_to_items(model_pairs, item_models, counts_items=None, *, random_state=None) -> np.ndarray:
    """Turn each chosen ``(model_a, model_b)`` pair into one concrete ``(item_a, item_b)`` pair.

    ``item_a`` is an image of ``model_a`` and ``item_b`` one of ``model_b``. Each is the least
    compared image of its model so far (fewest comparisons in total); ``item_b`` is further
    preferred among equals by fewest direct comparisons with ``item_a``; remaining ties are broken
    at random. Pairs are resolved in order and each choice counts for the next ones, so a model pair
    that repeats in one batch gets different images.

    Parameters
    ----------
    model_pairs : array_like of int, shape (k, 2)
        Model indices (e.g. ``PairPlan.pairs`` of a model-level plan); the two must differ.
    item_models : array_like of int, shape (n_items,)
        The model (index ``≥ 0``) of each item.
    counts_items : array_like, shape (n_items, n_items) or (n_items,), optional
        Symmetric comparisons so far per item pair (:func:`pair_counts`), or just the total number
        of comparisons per item; default none yet.
    random_state : None, int, numpy.random.Generator or SeedSequence

    Returns
    -------
    numpy.ndarray of int, shape (k, 2)
        Item pairs; column 0 holds images of ``model_pairs[:, 0]``, column 1 of ``model_pairs[:, 1]``.

    Raises
    ------
    ValueError
        Invalid input, or a model in ``model_pairs`` has no images.
    """
    models = np.asarray(item_models)
    if models.ndim != 1 or models.size == 0:
        raise ValueError(f"item_models must be a non-empty 1-D array, got shape {models.shape}")
    if models.dtype.kind not in "iu" or models.min() < 0:
        raise ValueError("item_models must hold non-negative integer model indices")
    n = models.size
    mp = np.asarray(model_pairs)
    if mp.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if mp.ndim != 2 or mp.shape[1] != 2:
        raise ValueError(f"model_pairs must have shape (k, 2), got {mp.shape}")
    if mp.dtype.kind not in "iu" or mp.min() < 0:
        raise ValueError("model_pairs must hold non-negative integer model indices")
    same = mp[:, 0] == mp[:, 1]
    if same.any():
        raise ValueError(f"model_pairs must pair two different models (row {int(np.argmax(same))})")
    if counts_items is None:
        totals, direct = np.zeros(n), None
    elif np.ndim(counts_items) == 1:
        totals = np.asarray(counts_items, dtype=float).copy()
        if totals.shape != (n,) or not np.all(np.isfinite(totals)) or np.any(totals < 0):
            raise ValueError(f"counts_items as totals must be finite, >= 0, shape ({n},)")
        direct = None
    else:
        direct = _check_counts(counts_items, n, "counts_items")
        direct = direct.toarray() if scipy.sparse.issparse(direct) else direct.copy()
        totals = direct.sum(axis=1)
    n_models = int(max(models.max(), mp.max())) + 1
    order = np.argsort(models, kind="stable")
    bounds = np.searchsorted(models[order], np.arange(n_models + 1))
    images = [order[bounds[m] : bounds[m + 1]] for m in range(n_models)]
    missing = [int(m) for m in np.unique(mp) if images[m].size == 0]
    if missing:
        raise ValueError(f"model(s) {missing} have no images, so no item pair can be formed for them")
    rng = np.random.default_rng(random_state)
    out = np.empty(mp.shape, dtype=np.int64)
    for row, (ma, mb) in enumerate(mp):
        ia, ib = images[ma], images[mb]
        a = ia[np.lexsort((rng.random(ia.size), totals[ia]))[0]]
        second = np.zeros(ib.size) if direct is None else direct[a, ib]
        b = ib[np.lexsort((rng.random(ib.size), second, totals[ib]))[0]]
        out[row] = a, b
        totals[a] += 1
        totals[b] += 1
        if direct is not None:
            direct[a, b] += 1
            direct[b, a] += 1
    return out
