"""Set-level statistics on image features: diversity, Fréchet distance, KID and CMMD (numpy + scipy only).

Every function takes feature arrays of shape ``(n, d)`` — one row per image, e.g. CLIP image embeddings —
and returns plain floats. Which feature extractor produced them is the caller's business and belongs in the
metric's name: FID is defined on Inception-v3 pool features (Heusel et al. 2017); PrefLab computes the same
Fréchet distance on the features it has (CLIP ViT-L/14 image embeddings) and calls it ``fid_clip_l14``,
whose values are not comparable with published Inception FIDs.

* **Diversity** — mean pairwise cosine distance ``1 − cos(x_i, x_j)`` over unordered pairs ``i < j`` of
  one set; its complement, the mean pairwise cosine similarity, is the usual "CLIP self-similarity".
* **Fréchet distance** between the Gaussians ``N(μ_1, Σ_1)`` and ``N(μ_2, Σ_2)`` fitted to two sets
  (sample means, covariances with ``ddof=1``):
  ``‖μ_1 − μ_2‖² + Tr(Σ_1 + Σ_2 − 2 (Σ_1 Σ_2)^{1/2})`` with ``scipy.linalg.sqrtm``.
* **KID** (Bińkowski et al., "Demystifying MMD GANs", ICLR 2018): the unbiased estimator of MMD² with the
  cubic polynomial kernel ``k(x, y) = (xᵀy / d + 1)³``, averaged over ``n_subsets`` random subsets of
  ``subset_size`` rows drawn without replacement from each set (defaults 100 × 1000, as the authors' code);
  the mean and standard deviation over subsets are returned. Unbiased: its expectation is 0 when both sets
  come from one distribution, so single values can be negative.
* **CMMD** (Jayasumana et al., "Rethinking FID", CVPR 2024): MMD² with the Gaussian RBF kernel
  ``k(x, y) = exp(−‖x − y‖² / (2σ²))``, ``σ = 10``, reported ×1000. The authors compute it on L2-normalised
  CLIP ViT-L/14@336px embeddings with the plug-in (V-statistic) estimator, i.e. the means of the full kernel
  matrices including their diagonals; that is the default here (``unbiased=False``).

Imports no Django and no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

__all__ = [
    "CMMD_SCALE",
    "CMMD_SIGMA",
    "KIDResult",
    "cmmd",
    "diversity",
    "feature_statistics",
    "fid_from_features",
    "frechet_distance",
    "kid",
    "mean_pairwise_cosine_similarity",
    "mmd2_rbf",
    "polynomial_kernel",
]

CMMD_SIGMA = 10.0
CMMD_SCALE = 1000.0


def _features(x, name: str, *, min_rows: int = 1) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n, d), got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} rows, got {arr.shape[0]}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one feature column")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _same_dim(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{name_a} and {name_b} must have the same feature dimension, got {a.shape[1]} and {b.shape[1]}")


def _unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"{name} has an all-zero row: its cosine is undefined")
    return x / norms


# ----------------------------------------------------------------------------------------------------
# diversity
# ----------------------------------------------------------------------------------------------------


def mean_pairwise_cosine_similarity(features) -> float:
    """Mean of ``cos(x_i, x_j)`` over the ``n(n−1)/2`` unordered pairs of distinct rows.

    Parameters
    ----------
    features : array_like, shape (n, d), n >= 2
        Rows must be non-zero.
    """
    x = _unit_rows(_features(features, "features", min_rows=2), "features")
    n = x.shape[0]
    s = x.sum(axis=0)
    # Σ_{i≠j} cos = ‖Σ x_i‖² − Σ ‖x_i‖² = ‖s‖² − n  (rows are unit vectors)
    return float((s @ s - n) / (n * (n - 1)))


def diversity(features) -> float:
    """Mean pairwise cosine distance ``1 − cos`` within one set (higher = more diverse), in [0, 2]."""
    return 1.0 - mean_pairwise_cosine_similarity(features)


# ----------------------------------------------------------------------------------------------------
# Fréchet distance
# ----------------------------------------------------------------------------------------------------


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean (``(d,)``) and covariance (``(d, d)``, ``ddof=1``) of a set of at least 2 rows."""
    x = _features(features, "features", min_rows=2)
    return x.mean(axis=0), np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])


def frechet_distance(mu1, sigma1, mu2, sigma2, *, eps: float = 1e-6) -> float:
    """Fréchet (2-Wasserstein²) distance between two Gaussians.

    ``‖μ_1 − μ_2‖² + Tr(Σ_1) + Tr(Σ_2) − 2 Tr((Σ_1 Σ_2)^{1/2})``.

    Parameters
    ----------
    mu1, mu2 : array_like, shape (d,)
    sigma1, sigma2 : array_like, shape (d, d)
        Symmetric positive semi-definite covariances.
    eps : float
        If the matrix square root is not finite (singular product), ``eps·I`` is added to both covariances
        and it is retried (as common FID code does).

    Returns
    -------
    float
        Non-negative up to rounding; tiny negative values from rounding are returned as 0.

    Raises
    ------
    ValueError
        On mismatched shapes, or if the square root has a significant imaginary part.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64)), np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,):
        raise ValueError(f"mu1 and mu2 must be vectors of one length, got shapes {mu1.shape} and {mu2.shape}")
    if s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"sigma1 and sigma2 must have shape ({d}, {d}), got {s1.shape} and {s2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.all(np.isfinite(covmean)):
        offset = eps * np.eye(d)
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"matrix square root has an imaginary part of {np.abs(covmean.imag).max():.3g}")
        covmean = covmean.real
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def fid_from_features(features_a, features_b) -> float:
    """Fréchet distance between Gaussian fits of two feature sets (each at least 2 rows)."""
    a = _features(features_a, "features_a", min_rows=2)
    b = _features(features_b, "features_b", min_rows=2)
    _same_dim(a, b, "features_a", "features_b")
    mu1, s1 = feature_statistics(a)
    mu2, s2 = feature_statistics(b)
    return frechet_distance(mu1, s1, mu2, s2)


# ----------------------------------------------------------------------------------------------------
# KID
# ----------------------------------------------------------------------------------------------------


def polynomial_kernel(x, y) -> np.ndarray:
    """``(x yᵀ / d + 1)³`` for row sets ``x`` (n, d) and ``y`` (m, d)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _mmd2_unbiased(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    m, n = k_xx.shape[0], k_yy.shape[0]
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return float(sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * k_xy.sum() / (m * n))


@dataclass(frozen=True)
class KIDResult:
    """KID as the mean and standard deviation (``ddof=0``) over subsets, and the subsets' values."""

    mean: float
    std: float
    values: np.ndarray
    subset_size: int


def kid(features_a, features_b, *, n_subsets: int = 100, subset_size: int = 1000, random_state=None) -> KIDResult:
    """Kernel Inception Distance on the given features (unbiased MMD², cubic polynomial kernel).

    Parameters
    ----------
    features_a, features_b : array_like, shapes (n_a, d) and (n_b, d), each n >= 2
    n_subsets : int
        Number of random subset pairs.
    subset_size : int
        Rows per subset, drawn without replacement; reduced to ``min(n_a, n_b)`` when larger.
    random_state : int, numpy Generator or None

    Returns
    -------
    KIDResult
    """
    a = _features(features_a, "features_a", min_rows=2)
    b = _features(features_b, "features_b", min_rows=2)
    _same_dim(a, b, "features_a", "features_b")
    for name, value in (("n_subsets", n_subsets), ("subset_size", subset_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if subset_size < 2:
        raise ValueError(f"subset_size must be at least 2, got {subset_size}")
    m = min(subset_size, a.shape[0], b.shape[0])
    rng = np.random.default_rng(random_state)
    values = np.empty(n_subsets)
    for s in range(n_subsets):
        x = a[rng.choice(a.shape[0], m, replace=False)]
        y = b[rng.choice(b.shape[0], m, replace=False)]
        values[s] = _mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y))
    return KIDResult(mean=float(values.mean()), std=float(values.std()), values=values, subset_size=m)


# ----------------------------------------------------------------------------------------------------
# CMMD
# ----------------------------------------------------------------------------------------------------


def _sq_dists(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d2 = np.sum(x * x, axis=1)[:, None] + np.sum(y * y, axis=1)[None, :] - 2.0 * x @ y.T
    return np.maximum(d2, 0.0)


def mmd2_rbf(features_a, features_b, *, sigma: float = CMMD_SIGMA, unbiased: bool = False) -> float:
    """MMD² with the Gaussian kernel ``exp(−‖x − y‖² / (2σ²))``.

    ``unbiased=False`` (default) is the V-statistic: means of the full ``K_xx``, ``K_yy``, ``K_xy``
    (diagonals included), as the CMMD reference code. ``unbiased=True`` drops the diagonals of ``K_xx`` and
    ``K_yy``.
    """
    a = _features(features_a, "features_a", min_rows=2 if unbiased else 1)
    b = _features(features_b, "features_b", min_rows=2 if unbiased else 1)
    _same_dim(a, b, "features_a", "features_b")
    try:
        sigma = float(sigma)
    except (TypeError, ValueError):
        raise ValueError(f"sigma must be a positive number, got {sigma!r}") from None
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma must be a positive finite number, got {sigma!r}")
    gamma = 1.0 / (2.0 * sigma * sigma)
    k_xx = np.exp(-gamma * _sq_dists(a, a))
    k_yy = np.exp(-gamma * _sq_dists(b, b))
    k_xy = np.exp(-gamma * _sq_dists(a, b))
    if unbiased:
        return _mmd2_unbiased(k_xx, k_yy, k_xy)
    return float(k_xx.mean() + k_yy.mean() - 2.0 * k_xy.mean())


def cmmd(features_a, features_b, *, sigma: float = CMMD_SIGMA, scale: float = CMMD_SCALE,
         normalise: bool = True) -> float:
    """CMMD = ``scale`` × MMD²_RBF(σ) between two embedding sets (Jayasumana et al. 2024).

    Parameters
    ----------
    features_a, features_b : array_like, shapes (n_a, d), (n_b, d)
    sigma : float
        RBF bandwidth (10 in the paper).
    scale : float
        Reporting factor (1000 in the paper).
    normalise : bool
        L2-normalise every row first (the reference code's CLIP embeddings are unit vectors).
    """
    a = _features(features_a, "features_a")
    b = _features(features_b, "features_b")
    if normalise:
        a, b = _unit_rows(a, "features_a"), _unit_rows(b, "features_b")
    return float(scale) * mmd2_rbf(a, b, sigma=sigma, unbiased=False)
