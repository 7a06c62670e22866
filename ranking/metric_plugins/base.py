"""The metric plugin interface: what a plugin declares, how it finds its weights, how it scores.

A *metric plugin* is a class that declares, as class attributes,

* ``name`` — a stable identifier (``[a-z0-9_]+``) stored with every score;
* ``version`` — bumped whenever a change could alter a score (preprocessing, weights, formula);
* ``kind`` — :class:`Kind`: ``item`` (one score per image), ``pair`` (one score per image pair) or
  ``set`` (one score per set of images, e.g. per source model);
* ``direction`` — :class:`Direction`: whether higher or lower is better, or ``none`` for a descriptive
  quantity such as the aspect ratio;
* ``dimension`` — :class:`Dimension`: the quality it claims to measure;
* ``description`` — one or two sentences with the definition and the reference;
* ``weights`` — :class:`WeightsFile` entries, paths relative to the plugin's weights folder;
* ``weights_subdir`` — the plugin's folder inside the shared weights directory (see below);
* ``needs_prompts`` — whether :meth:`ItemMetric.score` needs one prompt per image;
* ``uses_device`` — whether the plugin runs a torch model (and so honours ``device``).

Weights are never downloaded. The app passes ``weights_dir`` (settings ``PREFLAB_WEIGHTS_DIR``); a plugin
looks for ``weights_dir / weights_subdir / <file>``. A plugin-specific folder can be given instead with
``plugin_dir``; then files are looked for directly in it. A plugin whose files are absent is *unavailable*:
:meth:`MetricPlugin.availability` lists the full paths it expected, and constructing it raises
:class:`WeightsMissingError` naming them.

Devices: ``device="auto"`` (the default) picks ``"cuda"`` when torch sees a GPU and ``"cpu"`` otherwise;
``"cpu"``, ``"cuda"`` and ``"cuda:N"`` are accepted as given. Plugins that run no model ignore it.

Images are PIL images or numpy arrays: ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA (alpha
dropped), with values on the 0–255 scale (any integer or float dtype). See :func:`as_rgb_array`.

This module imports neither Django nor torch (torch is imported only when a device is resolved).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "Availability",
    "Dimension",
    "Direction",
    "ItemMetric",
    "Kind",
    "MetricPlugin",
    "PairMetric",
    "ProgressCallback",
    "SetMetric",
    "WeightsFile",
    "WeightsMissingError",
    "as_pil_rgb",
    "as_rgb_array",
    "resolve_device",
    "skip_random_init",
]

#: Called with the fraction of the work done, a float in [0, 1]; the last call is with 1.0.
ProgressCallback = Callable[[float], None]

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class Kind(StrEnum):
    """What one score is attached to."""

    ITEM = "item"
    PAIR = "pair"
    SET = "set"


class Direction(StrEnum):
    """Which way is better."""

    HIGHER = "higher"
    LOWER = "lower"
    #: Descriptive quantity (aspect ratio): neither direction is better.
    NONE = "none"


class Dimension(StrEnum):
    """The quality a metric claims to measure (the Likert dimensions of the rich-feedback task and more)."""

    AESTHETICS = "aesthetics"
    ALIGNMENT = "alignment"
    PLAUSIBILITY = "plausibility"
    OVERALL = "overall"
    TECHNICAL = "technical"
    COLOUR = "colour"
    DIVERSITY = "diversity"
    FIDELITY = "fidelity"


class WeightsMissingError(FileNotFoundError):
    """A plugin was constructed although some of its weights files are absent.

    ``missing`` holds the full paths that were looked for (for each absent file, the first of its
    accepted names).
    """

    def __init__(self, plugin: str, missing: Sequence[str]):
        self.plugin = plugin
        self.missing = tuple(missing)
        super().__init__(f"metric plugin {plugin!r} needs weights files that are absent: {', '.join(self.missing)}")


@dataclass(frozen=True)
class WeightsFile:
    """One file a plugin needs, relative to its weights folder.

    Attributes
    ----------
    path : str
        The file name, relative (may contain ``/``), e.g. ``"model.safetensors"``.
    alternatives : tuple of str
        Other accepted names for the same content (e.g. ``"pytorch_model.bin"``); the first that exists
        is used.
    note : str
        Where the file comes from (publisher and original file name), for docs/metric-weights.md and error pages.
    """

    path: str
    alternatives: tuple[str, ...] = ()
    note: str = ""

    def __post_init__(self):
        for p in (self.path, *self.alternatives):
            if not p or Path(p).is_absolute() or ".." in Path(p).parts:
                raise ValueError(f"weights file path must be a relative path inside the weights folder, got {p!r}")

    def find(self, folder: Path) -> Path | None:
        """The first existing candidate inside ``folder``, or ``None``."""
        for p in (self.path, *self.alternatives):
            candidate = folder / p
            if candidate.is_file():
                return candidate
        return None


@dataclass(frozen=True)
class Availability:
    """Whether a plugin can run with the given weights location.

    Attributes
    ----------
    name, version, kind, direction, dimension, description, needs_prompts :
        Copied from the plugin class, so a listing can be rendered from this object alone.
    available : bool
        True when every weights file (and every optional package the plugin imports) is present.
    weights_dir : str or None
        The folder the plugin's files were looked for in (``None`` for a plugin without weights).
    expected : tuple of str
        Full paths of every file the plugin wants (the primary name of each); paths relative to the weights
        directory when none is configured.
    missing : tuple of str
        The files of ``expected`` that are absent.
    reason : str
        Empty when available; otherwise a sentence saying what is absent.
    """

    name: str
    version: str
    kind: Kind
    direction: Direction
    dimension: Dimension
    description: str
    needs_prompts: bool
    available: bool
    weights_dir: str | None
    expected: tuple[str, ...]
    missing: tuple[str, ...]
    reason: str = ""


def resolve_device(device: str = "auto") -> str:
    """Resolve a device string for torch.

    Parameters
    ----------
    device : str
        ``"auto"`` (CUDA when ``torch.cuda.is_available()``, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns
    -------
    str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises
    ------
    ValueError
        If ``device`` is none of the above, or CUDA is asked for and torch sees no GPU.
    """
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if device == "cpu":
        return device
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but torch sees no CUDA device")
    return device


# ----------------------------------------------------------------------------------------------------
# image coercion
# ----------------------------------------------------------------------------------------------------


def as_rgb_array(image: Any, *, name: str = "image") -> np.ndarray:
    """An image as a float64 RGB array on the 0–255 scale.

    Parameters
    ----------
    image : PIL.Image.Image or array_like
        A PIL image (any mode; converted with ``Image.convert("RGB")``, which drops alpha) or an array of
        shape ``(H, W)`` (grey, copied to three channels), ``(H, W, 3)`` or ``(H, W, 4)`` (alpha dropped)
        with values in [0, 255].
    name : str
        How the argument is called in error messages (e.g. ``"images[3]"``).

    Returns
    -------
    ndarray of float64, shape (H, W, 3)

    Raises
    ------
    ValueError
        On another shape, an empty image, non-finite values or values outside [0, 255].
    """
    if _is_pil(image):
        arr = np.asarray(image.convert("RGB"), dtype=np.float64)
    else:
        try:
            arr = np.asarray(image, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a PIL image or a numeric array, got {type(image).__name__}") from None
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        elif arr.ndim == 3 and arr.shape[2] in (3, 4):
            arr = arr[:, :, :3]
        else:
            raise ValueError(f"{name} must have shape (H, W), (H, W, 3) or (H, W, 4), got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite")
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(f"{name} values must lie in [0, 255], got [{arr.min():g}, {arr.max():g}]")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    return arr


def as_pil_rgb(image: Any, *, name: str = "image"):
    """An image as an 8-bit RGB PIL image (arrays are rounded to the nearest integer).

    Parameters and errors as :func:`as_rgb_array`.
    """
    from PIL import Image

    if _is_pil(image):
        if image.width == 0 or image.height == 0:
            raise ValueError(f"{name} must not be empty")
        return image if image.mode == "RGB" else image.convert("RGB")
    arr = as_rgb_array(image, name=name)
    return Image.fromarray(np.rint(arr).astype(np.uint8), mode="RGB")


def _is_pil(image: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a project dependency
        return False
    return isinstance(image, Image.Image)


# ----------------------------------------------------------------------------------------------------
# the plugin base classes
# ----------------------------------------------------------------------------------------------------


class MetricPlugin(abc.ABC):
    """Base class of every metric plugin (see the module docstring for the declared attributes).

    Parameters
    ----------
    weights_dir : str or path, optional
        The shared weights directory; the plugin's files are looked for in ``weights_dir / weights_subdir``.
    plugin_dir : str or path, optional
        A folder holding this plugin's files directly; overrides ``weights_dir``.
    device : str
        See :func:`resolve_device`. Ignored by plugins that run no model.

    Raises
    ------
    WeightsMissingError
        If a weights file is absent (the message names every expected full path).
    ValueError
        On a bad ``device``.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    kind: ClassVar[Kind]
    direction: ClassVar[Direction]
    dimension: ClassVar[Dimension]
    description: ClassVar[str]
    weights: ClassVar[tuple[WeightsFile, ...]] = ()
    weights_subdir: ClassVar[str] = ""
    needs_prompts: ClassVar[bool] = False
    uses_device: ClassVar[bool] = False
    default_batch_size: ClassVar[int] = 16

    def __init__(self, *, weights_dir=None, plugin_dir=None, device: str = "auto"):
        self.folder = self.weights_folder(weights_dir=weights_dir, plugin_dir=plugin_dir)
        status = self.availability(weights_dir=weights_dir, plugin_dir=plugin_dir)
        if not status.available:
            if status.missing:
                raise WeightsMissingError(self.name, status.missing)
            raise RuntimeError(f"metric plugin {self.name!r} cannot run: {status.reason}")
        self.device = resolve_device(device) if self.uses_device else "cpu"

    # -- declarations -------------------------------------------------------------------------------

    @classmethod
    def weights_folder(cls, *, weights_dir=None, plugin_dir=None) -> Path | None:
        """The folder the plugin's files are looked for in, or ``None`` when it needs no weights.

        Raises
        ------
        ValueError
            If the plugin needs weights and neither ``weights_dir`` nor ``plugin_dir`` is given.
        """
        if plugin_dir is not None:
            return Path(plugin_dir)
        if not cls.weights:
            return None
        if weights_dir is None:
            raise ValueError(
                f"weights_dir (or plugin_dir) is required for metric plugin {cls.name!r}, which needs weights files"
            )
        return Path(weights_dir) / cls.weights_subdir

    @classmethod
    def expected_paths(cls, *, weights_dir=None, plugin_dir=None) -> tuple[str, ...]:
        """Full paths of every weights file the plugin wants (primary names)."""
        folder = cls.weights_folder(weights_dir=weights_dir, plugin_dir=plugin_dir)
        if folder is None:
            return ()
        return tuple(str(folder / w.path) for w in cls.weights)

    @classmethod
    def resolve_weights(cls, folder: Path) -> dict[str, Path]:
        """Map each declared primary name to the existing file found for it (absent ones are left out)."""
        found = {}
        for w in cls.weights:
            path = w.find(folder)
            if path is not None:
                found[w.path] = path
        return found

    @classmethod
    def missing_requirements(cls) -> str:
        """A sentence naming a missing optional package, or ``""``. Overridden by plugins that import one."""
        return ""

    @classmethod
    def availability(cls, *, weights_dir=None, plugin_dir=None) -> Availability:
        """Whether the plugin can run, and which files it expects and lacks. Never raises for absent files."""
        folder = None
        expected: tuple[str, ...] = ()
        missing: tuple[str, ...] = ()
        reason = cls.missing_requirements()
        if cls.weights:
            if weights_dir is None and plugin_dir is None:
                expected = tuple(w.path for w in cls.weights)
                missing = expected
                reason = reason or "no weights directory is configured (PREFLAB_WEIGHTS_DIR)"
            else:
                folder = cls.weights_folder(weights_dir=weights_dir, plugin_dir=plugin_dir)
                expected = tuple(str(folder / w.path) for w in cls.weights)
                missing = tuple(str(folder / w.path) for w in cls.weights if w.find(folder) is None)
                if missing and not reason:
                    reason = f"{len(missing)} of {len(expected)} weights files are absent"
        return Availability(
            name=cls.name,
            version=cls.version,
            kind=cls.kind,
            direction=cls.direction,
            dimension=cls.dimension,
            description=cls.description,
            needs_prompts=cls.needs_prompts,
            available=not missing and not reason,
            weights_dir=None if folder is None else str(folder),
            expected=expected,
            missing=missing,
            reason=reason,
        )

    @classmethod
    def check_declaration(cls) -> None:
        """Raise ``TypeError`` if a class attribute is missing or malformed (the registry calls this)."""
        for attr in ("name", "version", "kind", "direction", "dimension", "description"):
            if not getattr(cls, attr, None):
                raise TypeError(f"metric plugin {cls.__name__} must declare {attr!r}")
        if not _NAME_RE.match(cls.name):
            raise TypeError(f"metric plugin name must match [a-z][a-z0-9_]*, got {cls.name!r}")
        Kind(cls.kind), Direction(cls.direction), Dimension(cls.dimension)
        if not all(isinstance(w, WeightsFile) for w in cls.weights):
            raise TypeError(f"metric plugin {cls.name!r}: weights must be WeightsFile entries")

    # -- batching -----------------------------------------------------------------------------------

    def _batch_size(self, batch_size: int | None) -> int:
        if batch_size is None:
            return self.default_batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        return int(batch_size)


def _check_prompts(prompts, n: int, *, required: bool, name: str = "prompts") -> list[str] | None:
    if prompts is None:
        if required:
            raise ValueError(f"{name} are required: give one prompt per image")
        return None
    if isinstance(prompts, str):
        raise ValueError(f"{name} must be a sequence of strings (one per image), not a single string")
    prompts = list(prompts)
    if len(prompts) != n:
        raise ValueError(f"{name} must have one prompt per image: got {len(prompts)} prompts for {n} images")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise ValueError(f"{name}[{i}] must be a string, got {type(p).__name__}")
    return prompts


def _run_batches(n: int, batch_size: int, progress: ProgressCallback | None, fn) -> np.ndarray:
    """Call ``fn(start, stop)`` on consecutive slices, concatenate, report progress after each."""
    if progress is not None and not callable(progress):
        raise ValueError("progress must be a callable taking the fraction done, or None")
    out = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        values = np.asarray(fn(start, stop), dtype=np.float64)
        if values.shape[0] != stop - start:
            raise RuntimeError(f"batch returned {values.shape[0]} rows for {stop - start} inputs")
        out.append(values)
        if progress is not None:
            progress(stop / n)
    if not out:
        if progress is not None:
            progress(1.0)
        return np.empty((0,), dtype=np.float64)
    return np.concatenate(out, axis=0)


class ItemMetric(MetricPlugin):
    """One score per image. Subclasses implement :meth:`score_batch`."""

    kind = Kind.ITEM

    def score(self, images: Sequence, prompts: Sequence[str] | None = None, *, batch_size: int | None = None,
              progress: ProgressCallback | None = None) -> np.ndarray:
        """Score images (with their prompts when the plugin needs them).

        Parameters
        ----------
        images : sequence of PIL images or arrays
            See :func:`as_rgb_array`.
        prompts : sequence of str, optional
            One per image; required when ``needs_prompts`` is true, ignored otherwise.
        batch_size : int, optional
            Images per model call (default ``default_batch_size``). The result does not depend on it beyond
            floating-point reduction order.
        progress : callable, optional
            Called after each batch with the fraction of images done (last call 1.0).

        Returns
        -------
        ndarray of float64, shape (n_images,)

        Raises
        ------
        ValueError
            On a bad image, missing or miscounted prompts, or a bad ``batch_size``.
        """
        images = list(images)
        prompts = _check_prompts(prompts, len(images), required=self.needs_prompts)
        size = self._batch_size(batch_size)

        def run(start, stop):
            batch = images[start:stop]
            return self.score_batch(batch, None if prompts is None else prompts[start:stop], offset=start)

        return _run_batches(len(images), size, progress, run)

    @abc.abstractmethod
    def score_batch(self, images: Sequence, prompts: Sequence[str] | None, *, offset: int = 0) -> np.ndarray:
        """Scores of one batch; ``offset`` is the index of ``images[0]`` in the whole call (for messages)."""


class PairMetric(MetricPlugin):
    """One score per pair of images ``(a[i], b[i])``. Subclasses implement :meth:`score_pair_batch`."""

    kind = Kind.PAIR

    def score_pairs(self, images_a: Sequence, images_b: Sequence, prompts: Sequence[str] | None = None, *,
                    batch_size: int | None = None, progress: ProgressCallback | None = None) -> np.ndarray:
        """Score pairs; arguments as :meth:`ItemMetric.score` with two equally long image sequences.

        Returns
        -------
        ndarray of float64, shape (n_pairs,)
        """
        images_a, images_b = list(images_a), list(images_b)
        if len(images_a) != len(images_b):
            raise ValueError(
                f"images_a and images_b must have the same length, got {len(images_a)} and {len(images_b)}"
            )
        prompts = _check_prompts(prompts, len(images_a), required=self.needs_prompts)
        size = self._batch_size(batch_size)

        def run(start, stop):
            return self.score_pair_batch(
                images_a[start:stop], images_b[start:stop], None if prompts is None else prompts[start:stop],
                offset=start,
            )

        return _run_batches(len(images_a), size, progress, run)

    @abc.abstractmethod
    def score_pair_batch(self, images_a: Sequence, images_b: Sequence, prompts: Sequence[str] | None, *,
                         offset: int = 0) -> np.ndarray:
        """Scores of one batch of pairs."""


class SetMetric(MetricPlugin):
    """One score per set of images (e.g. all images of one source model).

    A set metric works on image features from a feature extractor (``feature_plugin``, e.g. CLIP image
    embeddings): :meth:`score_features` takes features the app may have cached, :meth:`score_sets`
    computes them from images first. Metrics that compare a set with a reference set (FID, KID, CMMD)
    need ``reference``; ``needs_reference`` says so.
    """

    kind = Kind.SET
    #: Name of the registered feature extractor whose embeddings this metric is computed on.
    feature_plugin: ClassVar[str] = ""
    needs_reference: ClassVar[bool] = False

    @abc.abstractmethod
    def score_features(self, features: Mapping[str, np.ndarray], reference: np.ndarray | None = None
                       ) -> dict[str, float]:
        """One value per set from feature arrays of shape ``(n_k, d)``."""

    def score_sets(self, images_by_set: Mapping[str, Sequence], reference_images: Sequence | None = None, *,
                   batch_size: int | None = None, progress: ProgressCallback | None = None) -> dict[str, float]:
        """Embed every set (and the reference, for metrics that use one) with the feature extractor, then
        :meth:`score_features`.

        ``progress`` receives the fraction of all images embedded so far.
        """
        if self.needs_reference and reference_images is None:
            raise ValueError(f"reference_images are required by set metric {self.name!r}")
        groups = [(key, list(imgs)) for key, imgs in images_by_set.items()]
        if reference_images is not None and self.needs_reference:
            groups.append((None, list(reference_images)))
        total = sum(len(imgs) for _, imgs in groups)
        extractor = self.make_extractor()
        features: dict[str, np.ndarray] = {}
        reference = None
        done = 0
        for key, imgs in groups:
            embedded = extractor.embed(
                imgs, batch_size=batch_size, progress=_sub_progress(progress, done, len(imgs), total)
            )
            done += len(imgs)
            if key is None:
                reference = embedded
            else:
                features[key] = embedded
        if progress is not None:
            progress(1.0)
        return self.score_features(features, reference)

    def make_extractor(self):  # pragma: no cover - every concrete set metric overrides it
        """The feature extractor, built from the same weights folder and device as this plugin."""
        raise NotImplementedError  # set by concrete set metrics


def _sub_progress(progress: ProgressCallback | None, base: int, n: int, total: int) -> ProgressCallback | None:
    """Map a sub-task's fraction (of ``n`` items starting at item ``base``) onto the whole (``total`` items)."""
    if progress is None or total == 0:
        return None

    def report(fraction: float) -> None:
        progress(min((base + fraction * n) / total, 1.0))

    return report


def skip_random_init():
    """A context in which transformers models are built without random initialisation.

    Used where every parameter is then loaded from a checkpoint (and the loaders check that none is left
    unset): initialising a ViT-H/14 at random first would cost seconds of CPU for nothing. Falls back to a
    no-op context when the installed transformers has no ``no_init_weights``.
    """
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # pragma: no cover - other transformers versions
        import contextlib

        return contextlib.nullcontext()
    return no_init_weights()
