"""BRISQUE no-reference image quality (Mittal, Moorthy & Bovik, IEEE TIP 21(12), 2012), numpy/scipy only.

The score is an ε-SVR with an RBF kernel on 36 natural-scene-statistics features. PrefLab evaluates the
regression model shipped with the ``brisque`` PyPI package (``brisque/models/svm.txt``, a libsvm model with
770 support vectors, γ = 0.05, and ``brisque/models/normalize.pickle``, the per-feature min/max used to scale
features to [−1, 1]; the ``image-quality`` package ships byte-identical files). The package does not say on
which database the model was trained. Because an SVR is only meaningful on the features it was trained on,
the features here follow that package's formulation exactly (it differs in details from the MATLAB
release), and the test suite checks the result against the package's own computation:

* grey = ``0.2125·R + 0.7154·G + 0.0721·B`` on values scaled to [0, 1] (scikit-image ``rgb2gray``);
* local mean μ and deviation σ = sqrt(|μ² − (w ∗ I²)|) with a 7×7 Gaussian window ``w`` (σ_w = 7/6,
  normalised to sum 1) and zero padding; MSCN = (I − μ) / (σ + 1/255);
* pairwise products of neighbouring MSCN coefficients: horizontal, vertical, main and secondary diagonal;
* an asymmetric generalised Gaussian fit by moment matching (the shape α solves
  Γ(2/α)² / (Γ(1/α)Γ(3/α)) = R̂); features: for MSCN (α, (σ_l² + σ_r²)/2), for each product
  (α, η, σ_l², σ_r²) with η = (σ_r − σ_l)·sqrt(Γ(1/α)/Γ(3/α))·Γ(2/α)/Γ(1/α) — 18 features;
* the same 18 on the image downscaled by 1/2 with bicubic interpolation (a = −0.75, half-pixel centres,
  replicated borders, output size rounded half to even: OpenCV ``resize(fx=0.5, INTER_CUBIC)``);
* score = Σ_i c_i exp(−γ‖x − s_i‖²) − ρ on the scaled features x.

Lower is better; typical natural images score 0–100 (values outside that range occur). An image whose
statistics are undefined (e.g. a constant image, where a product has no negative values) scores NaN.

Imports no Django and no torch. The model files are read from the installed ``brisque`` package without
importing it (its module needs OpenCV; PrefLab does not).
"""

from __future__ import annotations

import importlib.util
import io
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage, optimize, special

from .base import Dimension, Direction, ItemMetric, as_rgb_array

__all__ = [
    "BrisqueMetric",
    "BrisqueModel",
    "brisque_features",
    "brisque_score",
    "load_brisque_model",
    "resize_half_bicubic",
]

_GREY = np.array([0.2125, 0.7154, 0.0721])  # scikit-image rgb2gray (Rec. 709 luma)
_C = 1.0 / 255.0
_MIN_SIDE = 16


@dataclass(frozen=True)
class BrisqueModel:
    """An RBF ε-SVR and its feature scaling.

    Attributes
    ----------
    support_vectors : ndarray, shape (n_sv, 36)
    coefficients : ndarray, shape (n_sv,)
    gamma, rho : float
        Kernel ``exp(−gamma‖x − s‖²)``; prediction ``Σ c_i K(x, s_i) − rho``.
    feature_min, feature_max : ndarray, shape (36,)
        Features are scaled by ``−1 + 2(f − min)/(max − min)`` before the SVR.
    source : str
        Where the model was read from.
    """

    support_vectors: np.ndarray
    coefficients: np.ndarray
    gamma: float
    rho: float
    feature_min: np.ndarray
    feature_max: np.ndarray
    source: str = ""

    def predict(self, features: np.ndarray) -> np.ndarray:
        """SVR output for unscaled features of shape ``(n, 36)`` → ``(n,)``."""
        f = np.atleast_2d(np.asarray(features, dtype=np.float64))
        x = -1.0 + 2.0 * (f - self.feature_min) / (self.feature_max - self.feature_min)
        d2 = (
            np.sum(x * x, axis=1)[:, None]
            + np.sum(self.support_vectors**2, axis=1)[None, :]
            - 2.0 * x @ self.support_vectors.T
        )
        d2 = np.maximum(d2, 0.0)
        return np.exp(-self.gamma * d2) @ self.coefficients - self.rho


def _package_model_dir() -> Path | None:
    spec = importlib.util.find_spec("brisque")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    if (folder / "svm.txt").is_file() and (folder / "normalize.pickle").is_file():
        return folder
    return None


class _ListsOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global: the scaling file holds only a dict of float lists."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a BRISQUE scaling file")


def _parse_libsvm_model(text: str, n_features: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    lines = text.splitlines()
    header = {}
    i = 0
    while i < len(lines) and lines[i].strip() != "SV":
        key, _, value = lines[i].strip().partition(" ")
        header[key] = value
        i += 1
    if header.get("svm_type") != "epsilon_svr" or header.get("kernel_type") != "rbf":
        raise ValueError(
            f"BRISQUE model must be an epsilon_svr with an rbf kernel, got {header.get('svm_type')!r}/"
            f"{header.get('kernel_type')!r}"
        )
    coefs, rows = [], []
    for line in lines[i + 1:]:
        parts = line.split()
        if not parts:
            continue
        coefs.append(float(parts[0]))
        row = np.zeros(n_features)
        for item in parts[1:]:
            idx, _, val = item.partition(":")
            row[int(idx) - 1] = float(val)
        rows.append(row)
    if len(rows) != int(header.get("total_sv", len(rows))):
        raise ValueError("BRISQUE model: number of support vectors does not match total_sv")
    return np.array(rows), np.array(coefs), float(header["gamma"]), float(header["rho"])


@lru_cache(maxsize=4)
def load_brisque_model(folder: str | None = None) -> BrisqueModel:
    """Read the SVR and the scaling (``svm.txt`` and ``normalize.pickle``).

    Parameters
    ----------
    folder : str, optional
        A folder with those two files; by default the installed ``brisque`` package's ``models/`` folder.

    Raises
    ------
    FileNotFoundError
        If the files are absent (and the ``brisque`` package is not installed).
    """
    path = Path(folder) if folder is not None else _package_model_dir()
    if path is None:
        raise FileNotFoundError("the BRISQUE model ships with the 'brisque' package (pip install brisque==0.2.0)")
    svm_file, scale_file = path / "svm.txt", path / "normalize.pickle"
    for f in (svm_file, scale_file):
        if not f.is_file():
            raise FileNotFoundError(f"BRISQUE model file is absent: {f}")
    scale = _ListsOnlyUnpickler(io.BytesIO(scale_file.read_bytes())).load()
    fmin = np.asarray(scale["min_"], dtype=np.float64)
    fmax = np.asarray(scale["max_"], dtype=np.float64)
    sv, coef, gamma, rho = _parse_libsvm_model(svm_file.read_text(), n_features=fmin.size)
    return BrisqueModel(sv, coef, gamma, rho, fmin, fmax, source=str(path))


# ----------------------------------------------------------------------------------------------------
# features
# ----------------------------------------------------------------------------------------------------


def _cubic_weights(t: float, a: float = -0.75) -> np.ndarray:
    """Keys cubic convolution weights for taps at offsets −1, 0, 1, 2 from floor(x), t = x − floor(x)."""
    d = np.array([1.0 + t, t, 1.0 - t, 2.0 - t])
    w = np.where(
        d <= 1.0,
        (a + 2.0) * d**3 - (a + 3.0) * d**2 + 1.0,
        a * d**3 - 5.0 * a * d**2 + 8.0 * a * d - 4.0 * a,
    )
    return w


def _half_axis(img: np.ndarray, axis: int) -> np.ndarray:
    n = img.shape[axis]
    m = int(np.rint(n * 0.5))  # round half to even, as OpenCV's cvRound of n·fx
    src = 2.0 * np.arange(m) + 0.5  # (dst + 0.5) / 0.5 − 0.5
    base = np.floor(src).astype(np.int64)
    w = _cubic_weights(0.5)
    out = 0.0
    for k, wk in zip(range(-1, 3), w):
        idx = np.clip(base + k, 0, n - 1)
        out = out + wk * np.take(img, idx, axis=axis)
    return out


def resize_half_bicubic(grey: np.ndarray) -> np.ndarray:
    """Downscale by 1/2 as OpenCV ``cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=INTER_CUBIC)``.

    Bicubic (a = −0.75) with half-pixel centres, replicated borders and no antialiasing; the output size is
    ``round_half_even(n / 2)`` on each axis.
    """
    g = np.asarray(grey, dtype=np.float64)
    return _half_axis(_half_axis(g, 1), 0)


def _gaussian_1d(n: int = 7, sigma: float = 7.0 / 6.0) -> np.ndarray:
    x = np.arange(n) - n // 2
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()  # the 2-D window g gᵀ is the normalised 7×7 Gaussian


def _mscn(img: np.ndarray) -> np.ndarray:
    g = _gaussian_1d()

    def blur(a):
        a = ndimage.correlate1d(a, g, axis=0, mode="constant", cval=0.0)
        return ndimage.correlate1d(a, g, axis=1, mode="constant", cval=0.0)

    mu = blur(img)
    sigma = np.sqrt(np.abs(mu * mu - blur(img * img)))
    return (img - mu) / (sigma + _C)


def _phi(alpha):
    return np.exp(2.0 * special.gammaln(2.0 / alpha) - special.gammaln(1.0 / alpha) - special.gammaln(3.0 / alpha))


_ALPHA_LO, _ALPHA_HI = 0.05, 20.0


def _aggd(x: np.ndarray) -> tuple[float, float, float, float]:
    """(α, η, σ_l, σ_r) of the asymmetric generalised Gaussian fit; NaNs when undefined."""
    x = x.ravel()
    neg, pos = x[x < 0], x[x >= 0]
    if neg.size == 0 or pos.size == 0:
        return (np.nan,) * 4
    left = np.sqrt(np.mean(neg * neg))
    right = np.sqrt(np.mean(pos * pos))
    mean_sq = np.mean(x * x)
    if right == 0 or mean_sq == 0:
        return (np.nan,) * 4
    r_hat = np.mean(np.abs(x)) ** 2 / mean_sq
    gam = left / right
    big_r = r_hat * (gam**3 + 1.0) * (gam + 1.0) / (gam**2 + 1.0) ** 2
    f_lo, f_hi = _phi(_ALPHA_LO) - big_r, _phi(_ALPHA_HI) - big_r
    if f_lo >= 0:
        alpha = _ALPHA_LO
    elif f_hi <= 0:
        alpha = _ALPHA_HI
    else:
        alpha = optimize.brentq(lambda a: _phi(a) - big_r, _ALPHA_LO, _ALPHA_HI, xtol=1e-14, rtol=1e-15)
    const = np.sqrt(special.gamma(1.0 / alpha) / special.gamma(3.0 / alpha))
    eta = (right - left) * const * special.gamma(2.0 / alpha) / special.gamma(1.0 / alpha)
    return float(alpha), float(eta), float(left), float(right)


def _scale_features(img: np.ndarray) -> list[float]:
    m = _mscn(img)
    alpha, _eta, left, right = _aggd(m)
    feats = [alpha, (left**2 + right**2) / 2.0]
    for prod in (
        m[:, :-1] * m[:, 1:],  # horizontal
        m[:-1, :] * m[1:, :],  # vertical
        m[:-1, :-1] * m[1:, 1:],  # main diagonal
        m[1:, :-1] * m[:-1, 1:],  # secondary diagonal
    ):
        alpha, eta, left, right = _aggd(prod)
        feats += [alpha, eta, left**2, right**2]
    return feats


def brisque_features(image) -> np.ndarray:
    """The 36 BRISQUE features of one image (18 at full size, 18 at half size).

    Parameters
    ----------
    image : PIL image or array_like
        RGB or grey, values 0–255; at least 16 pixels on each side.

    Returns
    -------
    ndarray of float64, shape (36,)
        NaN entries where a fit is undefined.
    """
    rgb = as_rgb_array(image)
    if min(rgb.shape[:2]) < _MIN_SIDE:
        raise ValueError(f"image must be at least {_MIN_SIDE}×{_MIN_SIDE} pixels for BRISQUE, got {rgb.shape[1]}×{rgb.shape[0]}")
    grey = (rgb / 255.0) @ _GREY
    half = resize_half_bicubic(grey)
    return np.array(_scale_features(grey) + _scale_features(half), dtype=np.float64)


def brisque_score(image, *, model: BrisqueModel | None = None) -> float:
    """BRISQUE score of one image (lower is better); NaN when a feature is undefined."""
    model = model or load_brisque_model()
    f = brisque_features(image)
    if not np.all(np.isfinite(f)):
        return float("nan")
    return float(model.predict(f)[0])


class BrisqueMetric(ItemMetric):
    name = "brisque"
    version = "1"
    direction = Direction.LOWER
    dimension = Dimension.TECHNICAL
    description = (
        "BRISQUE (Mittal et al. 2012): RBF ε-SVR on 36 MSCN natural-scene-statistics features, using the model "
        "shipped with the 'brisque' package (features as that package computes them). Lower is better; "
        "NaN for images with undefined statistics (e.g. constant images)."
    )
    default_batch_size = 32

    @classmethod
    def missing_requirements(cls) -> str:
        if _package_model_dir() is None:
            return "the BRISQUE model ships with the 'brisque' package, which is not installed (pip install brisque==0.2.0)"
        return ""

    def __init__(self, *, weights_dir=None, plugin_dir=None, device: str = "auto"):
        super().__init__(weights_dir=weights_dir, plugin_dir=plugin_dir, device=device)
        self.model = load_brisque_model(None if plugin_dir is None else str(plugin_dir))

    @classmethod
    def availability(cls, *, weights_dir=None, plugin_dir=None):
        status = super().availability(weights_dir=weights_dir, plugin_dir=plugin_dir)
        if plugin_dir is not None:
            # a plugin-specific folder replaces the packaged model: it must hold both files
            folder = Path(plugin_dir)
            expected = (str(folder / "svm.txt"), str(folder / "normalize.pickle"))
            missing = tuple(p for p in expected if not Path(p).is_file())
            from dataclasses import replace

            return replace(
                status, available=not missing, weights_dir=str(folder), expected=expected, missing=missing,
                reason=f"{len(missing)} of 2 BRISQUE model files are absent" if missing else "",
            )
        return status

    def score_batch(self, images: Sequence, prompts=None, *, offset: int = 0) -> np.ndarray:
        feats = np.empty((len(images), self.model.feature_min.size))
        for i, image in enumerate(images):
            try:
                feats[i] = brisque_features(image)
            except ValueError as exc:
                raise ValueError(f"images[{offset + i}]: {exc}") from None
        out = np.full(len(images), np.nan)
        ok = np.all(np.isfinite(feats), axis=1)
        if ok.any():
            out[ok] = self.model.predict(feats[ok])
        return out
