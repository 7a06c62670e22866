"""Closed-form image statistics that need no weights: colourfulness, sharpness, resolution, aspect ratio.

Definitions (all on the 0–255 sRGB values, no gamma linearisation):

* **Colourfulness** — Hasler & Süsstrunk, "Measuring colourfulness in natural images", SPIE 5007, 2003,
  the metric M^(3) of their Table 2: with opponent components ``rg = R − G`` and
  ``yb = 0.5·(R + G) − B`` over all pixels,
  ``M = σ_rgyb + 0.3·μ_rgyb`` where ``σ_rgyb = sqrt(σ_rg² + σ_yb²)`` and ``μ_rgyb = sqrt(μ_rg² + μ_yb²)``
  (population standard deviations, ``ddof=0``). A grey image scores 0. Unbounded above; the paper's
  scale puts "not colourful" at 0, "moderately" at ≈ 33, "extremely colourful" at ≈ 109.
* **Sharpness** — variance of the Laplacian of the grey image (Pech-Pacheco et al., ICPR 2000). Grey is the
  ITU-R BT.601 luma ``Y = 0.299·R + 0.587·G + 0.114·B`` in float64 (not rounded to 8 bits). The Laplacian is
  the 4-neighbour kernel ``[[0, 1, 0], [1, −4, 1], [0, 1, 0]]`` with mirrored borders that do not repeat the
  edge pixel (OpenCV ``BORDER_REFLECT_101``, numpy ``mode="reflect"``); the score is the population variance
  over all pixels. This equals ``cv2.Laplacian(Y, cv2.CV_64F).var()`` on the float grey image. Units:
  grey-level² per pixel²; the value depends on the image scale (downsampling a sharp image raises it), so
  compare images of similar resolution.
* **Resolution** — ``width · height / 10⁶`` megapixels.
* **Aspect ratio** — ``width / height`` (descriptive; no direction is better).

Pure numpy; imports no Django.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Dimension, Direction, ItemMetric, as_rgb_array

__all__ = [
    "LAPLACIAN_KERNEL",
    "AspectRatioMetric",
    "ColourfulnessMetric",
    "ResolutionMetric",
    "SharpnessMetric",
    "aspect_ratio",
    "colourfulness",
    "grey_bt601",
    "laplacian",
    "laplacian_variance",
    "megapixels",
]

#: The 4-neighbour Laplacian kernel (OpenCV ``cv2.Laplacian`` with ``ksize=1``).
LAPLACIAN_KERNEL = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])

_BT601 = np.array([0.299, 0.587, 0.114])


def colourfulness(image) -> float:
    """Hasler–Süsstrunk colourfulness M^(3) of one image.

    Parameters
    ----------
    image : PIL image or array_like
        See :func:`ranking.metric_plugins.base.as_rgb_array` (values 0–255).

    Returns
    -------
    float
        ``σ_rgyb + 0.3·μ_rgyb`` on the 0–255 scale; 0 for any grey image.
    """
    rgb = as_rgb_array(image)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = np.sqrt(rg.var() + yb.var())
    mu = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(sigma + 0.3 * mu)


def grey_bt601(image) -> np.ndarray:
    """BT.601 luma ``0.299·R + 0.587·G + 0.114·B`` as float64, shape ``(H, W)``, 0–255 scale."""
    return as_rgb_array(image) @ _BT601


def laplacian(grey) -> np.ndarray:
    """4-neighbour Laplacian with reflect-101 borders (as ``cv2.Laplacian(grey, cv2.CV_64F)``).

    Parameters
    ----------
    grey : array_like, shape (H, W)

    Returns
    -------
    ndarray of float64, shape (H, W)
    """
    g = np.asarray(grey, dtype=np.float64)
    if g.ndim != 2 or g.size == 0:
        raise ValueError(f"grey must be a non-empty 2-D array, got shape {g.shape}")
    # numpy "reflect" mirrors about the edge pixel without repeating it (= OpenCV BORDER_REFLECT_101);
    # an axis of length 1 has nothing to mirror, so it is edge-padded (its second difference is then 0).
    mode_rows = "reflect" if g.shape[0] > 1 else "edge"
    p = np.pad(g, ((1, 1), (0, 0)), mode=mode_rows)
    mode_cols = "reflect" if g.shape[1] > 1 else "edge"
    p = np.pad(p, ((0, 0), (1, 1)), mode=mode_cols)
    return p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4.0 * p[1:-1, 1:-1]


def laplacian_variance(image) -> float:
    """Sharpness: population variance of :func:`laplacian` of the BT.601 grey image (see module docstring)."""
    return float(laplacian(grey_bt601(image)).var())


def megapixels(image) -> float:
    """``width · height / 10⁶``."""
    w, h = _size(image)
    return w * h / 1e6


def aspect_ratio(image) -> float:
    """``width / height``."""
    w, h = _size(image)
    return w / h


def _size(image) -> tuple[int, int]:
    size = getattr(image, "size", None)
    if isinstance(size, tuple) and len(size) == 2 and hasattr(image, "mode"):  # PIL: (width, height)
        w, h = size
    else:
        shape = np.shape(image)
        if len(shape) not in (2, 3):
            raise ValueError(f"image must have shape (H, W) or (H, W, C), got shape {shape}")
        h, w = shape[0], shape[1]
    if w == 0 or h == 0:
        raise ValueError(f"image must not be empty, got width {w} and height {h}")
    return int(w), int(h)


class _PerImage(ItemMetric):
    """An item metric computed image by image with a pure function."""

    default_batch_size = 64

    @staticmethod
    def compute(image) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def score_batch(self, images: Sequence, prompts=None, *, offset: int = 0) -> np.ndarray:
        out = np.empty(len(images), dtype=np.float64)
        for i, image in enumerate(images):
            try:
                out[i] = self.compute(image)
            except ValueError as exc:
                raise ValueError(f"images[{offset + i}]: {exc}") from None
        return out


class ColourfulnessMetric(_PerImage):
    name = "colourfulness"
    version = "1"
    direction = Direction.HIGHER
    dimension = Dimension.COLOUR
    description = (
        "Hasler & Süsstrunk (2003) colourfulness M3 = σ_rgyb + 0.3·μ_rgyb on rg = R−G, yb = 0.5(R+G)−B "
        "(0–255 sRGB values). 0 for grey images; higher means more colourful."
    )
    compute = staticmethod(colourfulness)


class SharpnessMetric(_PerImage):
    name = "sharpness_laplacian_var"
    version = "1"
    direction = Direction.HIGHER
    dimension = Dimension.TECHNICAL
    description = (
        "Variance of the 4-neighbour Laplacian (reflect-101 borders) of the BT.601 luma in float64, at the "
        "image's native resolution; equals cv2.Laplacian(gray, CV_64F).var(). Higher means sharper."
    )
    compute = staticmethod(laplacian_variance)


class ResolutionMetric(_PerImage):
    name = "resolution_mp"
    version = "1"
    direction = Direction.HIGHER
    dimension = Dimension.TECHNICAL
    description = "Resolution in megapixels: width × height / 10⁶."
    compute = staticmethod(megapixels)


class AspectRatioMetric(_PerImage):
    name = "aspect_ratio"
    version = "1"
    direction = Direction.NONE
    dimension = Dimension.TECHNICAL
    description = "Aspect ratio width / height (descriptive: neither direction is better)."
    compute = staticmethod(aspect_ratio)
