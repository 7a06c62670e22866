"""Consistency of pairwise choices: intransitive triads per rater and group differences in BT.

Pure numpy/scipy (no Django import); ``ranking.reports`` calls these with arrays built from
stored judgments.

Functions
---------
triad_counts      per rater: triads (three items with all three pairs decided by that rater) and
                  how many of them are cyclic (a > b > c > a)
group_lr_test     likelihood-ratio test of one pooled Bradley–Terry model against one per group
nominal_alpha_from_counts  Krippendorff's nominal alpha from a unit × category count table (fast)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse, stats

from ranking.core.bt import fit_bt

__all__ = ["GroupLRTest", "TriadCounts", "group_lr_test", "nominal_alpha_from_counts", "triad_counts"]


@dataclass(frozen=True)
class TriadCounts:
    """Per rater (index ``0..n_raters-1``): complete triads and cyclic ones among them.

    Attributes
    ----------
    n_triads : numpy.ndarray of int, shape (n_raters,)
        Sets of three items for which the rater decided all three pairs.
    n_cyclic : numpy.ndarray of int, shape (n_raters,)
        Of those, the intransitive ones (each item beat exactly one other).
    """

    n_triads: np.ndarray
    n_cyclic: np.ndarray


def triad_counts(winners, losers, raters, *, n_raters: int) -> TriadCounts:
    r"""Count complete and cyclic triads of each rater's decided choices.

    Parameters
    ----------
    winners, losers : array_like of int, shape (m,)
        Item indices of decided comparisons (ties left out by the caller: a tie neither makes nor
        breaks a cycle, so a triad containing one is not complete).
    raters : array_like of int, shape (m,)
        Rater index of each row, in ``[0, n_raters)``.
    n_raters : int

    Returns
    -------
    TriadCounts

    Notes
    -----
    Each (rater, item) becomes one node of a directed graph with an edge winner → loser, so
    triangles can only form within one rater's choices.  With ``A`` the adjacency matrix and
    ``U = A + Aᵀ`` (binarised), the number of triangles through node *i* is
    :math:`\tfrac12 \sum_j (U^2)_{ij} U_{ji}` and the number of directed 3-cycles through it is
    :math:`\sum_j (A^2)_{ij} A_{ji}`; summing over a rater's nodes counts each triad 3 times.
    A pair the rater decided both ways (only possible if they saw it twice) is not a decided edge.
    Sparse products: cost grows with the number of 2-paths, not with ``n_items²``.
    """
    w = np.asarray(winners, dtype=np.int64)
    lo = np.asarray(losers, dtype=np.int64)
    r = np.asarray(raters, dtype=np.int64)
    if not (w.shape == lo.shape == r.shape) or w.ndim != 1:
        raise ValueError("winners, losers and raters must be 1-D arrays of the same length")
    if w.size and (r.min() < 0 or r.max() >= n_raters):
        raise ValueError("raters must lie in [0, n_raters)")
    n_triads = np.zeros(n_raters, dtype=np.int64)
    n_cyclic = np.zeros(n_raters, dtype=np.int64)
    if w.size == 0:
        return TriadCounts(n_triads=n_triads, n_cyclic=n_cyclic)
    keys, node = np.unique(np.concatenate([np.stack([r, w], 1), np.stack([r, lo], 1)]), axis=0,
                           return_inverse=True)
    node = node.ravel()
    m = w.size
    src, dst = node[:m], node[m:]
    n_nodes = keys.shape[0]
    a = sparse.coo_matrix((np.ones(m), (src, dst)), shape=(n_nodes, n_nodes)).tocsr()
    a.data[:] = 1.0  # repeated identical choices count once
    both = a.multiply(a.T)  # decided both ways: not a decided edge
    a = (a - both).tocsr()
    a.eliminate_zeros()
    u = ((a + a.T) > 0).astype(float).tocsr()
    tri_per_node = np.asarray((u @ u).multiply(u).sum(axis=1)).ravel() / 2
    cyc_per_node = np.asarray((a @ a).multiply(a.T).sum(axis=1)).ravel()
    node_rater = keys[:, 0]
    n_triads = np.rint(np.bincount(node_rater, weights=tri_per_node, minlength=n_raters) / 3).astype(np.int64)
    n_cyclic = np.rint(np.bincount(node_rater, weights=cyc_per_node, minlength=n_raters) / 3).astype(np.int64)
    return TriadCounts(n_triads=n_triads, n_cyclic=n_cyclic)


@dataclass(frozen=True)
class GroupLRTest:
    """Result of :func:`group_lr_test`.

    Attributes
    ----------
    statistic : float
        LR = 2·(Σ_g LL_g − LL_pooled), natural-log likelihoods, clipped at 0.
    df : int
        (n_groups − 1)·(n_common − 1).
    p : float
        Upper tail of χ²(df) at ``statistic``.
    n_common : int
        Items compared (in decided comparisons) within every group; only comparisons between two
        such items enter the test.
    n_comparisons : numpy.ndarray of int, shape (n_groups,)
        Comparisons of each group used.
    common_items : numpy.ndarray of int
        The indices of the common items (into the caller's item index).
    group_strengths : numpy.ndarray, shape (n_groups, n_common)
        Per-group BT strengths (logits, mean zero over the common items).
    pooled_strengths : numpy.ndarray, shape (n_common,)
    """

    statistic: float
    df: int
    p: float
    n_common: int
    n_comparisons: np.ndarray
    common_items: np.ndarray
    group_strengths: np.ndarray
    pooled_strengths: np.ndarray


def group_lr_test(winners, losers, groups, *, n_groups: int, alpha: float = 0.01) -> GroupLRTest:
    r"""Do groups rank items differently?  Pooled BT against one BT per group.

    Parameters
    ----------
    winners, losers : array_like of int, shape (m,)
        Decided comparisons (the caller leaves ties out: with ties each model would also carry a
        Davidson tie parameter, adding ``n_groups − 1`` degrees of freedom).
    groups : array_like of int, shape (m,)
        Group index of each row in ``[0, n_groups)`` (the group of the rater who made it).
    n_groups : int
        At least 2.
    alpha : float, default 0.01
        Weak Gaussian prior precision of every fit (keeps groups whose comparison graph is not
        strongly connected fittable).  The log-likelihoods compared exclude the prior term, so with
        ``alpha > 0`` the statistic is evaluated at MAP rather than ML estimates; for small
        ``alpha`` the difference is negligible next to the χ² quantiles.

    Returns
    -------
    GroupLRTest

    Notes
    -----
    Items are restricted (iteratively, until stable) to those with at least one comparison against
    another retained item in every group; the null model has ``n_common − 1`` free strengths, the
    alternative ``n_groups·(n_common − 1)``, so ``df = (n_groups − 1)(n_common − 1)``.  This assumes
    every group's comparison graph over the common items is connected; where it is not, the
    effective df is smaller and the test is conservative.

    Raises
    ------
    ValueError
        Fewer than 2 groups, no comparisons, indices that are not integers, negative item indices,
        group indices outside ``[0, n_groups)``, or fewer than 2 items compared within every group.
    """
    if isinstance(n_groups, bool) or not isinstance(n_groups, (int, np.integer)) or n_groups < 2:
        raise ValueError(f"n_groups must be an integer >= 2 (the test needs at least 2 groups), got {n_groups!r}")
    w = _index_array("winners", winners)
    lo = _index_array("losers", losers)
    g = _index_array("groups", groups)
    if not (w.shape == lo.shape == g.shape):
        raise ValueError("winners, losers and groups must have the same length")
    if w.size == 0:
        raise ValueError("winners and losers hold no comparisons; nothing to test")
    for name, arr in (("winners", w), ("losers", lo)):
        if arr.min() < 0:
            raise ValueError(f"{name} must be item indices >= 0, found {int(arr.min())}")
    if g.min() < 0 or g.max() >= n_groups:
        raise ValueError(f"groups must lie in [0, n_groups={n_groups}), found values in [{g.min()}, {g.max()}]")
    n_items = int(max(w.max(initial=-1), lo.max(initial=-1)) + 1)
    keep_item = np.ones(n_items, dtype=bool)
    while True:
        rows = keep_item[w] & keep_item[lo]
        seen = np.zeros((n_groups, n_items), dtype=bool)
        seen[g[rows], w[rows]] = True
        seen[g[rows], lo[rows]] = True
        new_keep = seen.all(axis=0)
        if np.array_equal(new_keep, keep_item):
            break
        keep_item = new_keep
    common = np.flatnonzero(keep_item)
    if common.size < 2:
        raise ValueError("fewer than 2 items were compared within every group; nothing to test")
    index = np.full(n_items, -1, dtype=np.int64)
    index[common] = np.arange(common.size)
    rows = keep_item[w] & keep_item[lo]
    cw, cl, cg = index[w[rows]], index[lo[rows]], g[rows]
    pooled = fit_bt(cw, cl, common.size, alpha=alpha, compute_se=False)
    group_ll = 0.0
    strengths = np.zeros((n_groups, common.size))
    counts = np.bincount(cg, minlength=n_groups)
    for k in range(n_groups):
        sel = cg == k
        fit = fit_bt(cw[sel], cl[sel], common.size, alpha=alpha, compute_se=False)
        group_ll += fit.log_likelihood
        strengths[k] = fit.strengths
    statistic = max(0.0, 2.0 * (group_ll - pooled.log_likelihood))
    df = (n_groups - 1) * (common.size - 1)
    return GroupLRTest(statistic=float(statistic), df=int(df), p=float(stats.chi2.sf(statistic, df)),
                       n_common=int(common.size), n_comparisons=counts, common_items=common,
                       group_strengths=strengths, pooled_strengths=pooled.strengths)


def _index_array(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of integer indices, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        whole = arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
        if not whole:
            raise ValueError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def nominal_alpha_from_counts(counts) -> float:
    r"""Krippendorff's alpha (nominal) from a (n_units, n_categories) table of value counts.

    The same number as ``agreement.krippendorff_alpha(data, "nominal")`` for the ratings the table
    counts (alpha depends on each unit's values only, not on who gave them), in O(n_units ·
    n_categories) — cheap enough to bootstrap.  Units with fewer than two values are ignored.

    :math:`o_{cc} = \sum_u n_{uc}(n_{uc}-1)/(m_u-1)`, :math:`n_c = \sum_u n_{uc}`,
    :math:`\alpha = 1 - (n-1)\,(n - \sum_c o_{cc}) / (n^2 - \sum_c n_c^2)`.

    Raises
    ------
    ValueError
        ``counts`` not a 2-D table of non-negative whole numbers, no unit with two values, or every
        pairable value in one category (alpha is 0/0).
    """
    t = np.asarray(counts, dtype=float)
    if t.ndim != 2:
        raise ValueError(f"counts must be a (n_units, n_categories) table, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t < 0) or np.any(t != np.round(t)):
        raise ValueError("counts must be non-negative whole numbers (how many values fell in each category)")
    m = t.sum(axis=1)
    t, m = t[m >= 2], m[m >= 2]
    if t.shape[0] == 0:
        raise ValueError("no unit has two or more values")
    n_c = t.sum(axis=0)
    n = n_c.sum()
    agree = np.sum(t * (t - 1) / (m - 1)[:, None])
    expected = n * n - np.sum(n_c**2)
    if expected <= 0:
        raise ValueError("every value is in one category; alpha is undefined")
    return float(1 - (n - 1) * (n - agree) / expected)
