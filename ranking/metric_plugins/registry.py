"""The registry of metric plugins: every built-in plugin, its availability, and construction by name.

``list_plugins(weights_dir=...)`` returns one :class:`~ranking.metric_plugins.base.Availability` per
registered plugin, in registration order, whether or not it can run: a plugin whose weights are absent is
listed with ``available=False`` and the full paths it expects (``expected``, ``missing``); nothing is hidden
and nothing is loaded. ``create_plugin(name, ...)`` constructs one (loading its model).

Imports neither Django nor torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .base import Availability, Kind, MetricPlugin

__all__ = ["create_plugin", "get_plugin_class", "list_plugins", "plugin_names", "register"]

_REGISTRY: dict[str, type[MetricPlugin]] = {}


def register(cls: type[MetricPlugin]) -> type[MetricPlugin]:
    """Add a plugin class (usable as a decorator). Raises ``TypeError`` on a malformed declaration or a
    ``ValueError`` if another class already has the name."""
    if not (isinstance(cls, type) and issubclass(cls, MetricPlugin)):
        raise TypeError(f"only MetricPlugin subclasses can be registered, got {cls!r}")
    cls.check_declaration()
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"a metric plugin named {cls.name!r} is already registered ({existing.__qualname__})")
    _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a plugin (for tests that register temporary plugins)."""
    _REGISTRY.pop(name, None)


def plugin_names(*, kind: Kind | str | None = None) -> list[str]:
    """Names of the registered plugins, in registration order, optionally of one ``kind``."""
    wanted = None if kind is None else Kind(kind)
    return [name for name, cls in _REGISTRY.items() if wanted is None or cls.kind == wanted]


def get_plugin_class(name: str) -> type[MetricPlugin]:
    """The class registered under ``name``. Raises ``ValueError`` naming the known plugins otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown metric plugin {name!r}; known: {', '.join(_REGISTRY)}") from None


def list_plugins(*, weights_dir=None, plugin_dirs: Mapping[str, object] | None = None,
                 kind: Kind | str | None = None, names: Iterable[str] | None = None) -> list[Availability]:
    """Availability of every registered plugin (or of ``names``), never raising for absent weights.

    Parameters
    ----------
    weights_dir : str or path, optional
        The shared weights directory (settings ``PREFLAB_WEIGHTS_DIR``).
    plugin_dirs : mapping of plugin name to folder, optional
        Plugin-specific folders overriding ``weights_dir`` for those plugins.
    kind : {"item", "pair", "set"}, optional
        Only plugins of this kind.
    names : iterable of str, optional
        Only these plugins (each must be registered).
    """
    plugin_dirs = dict(plugin_dirs or {})
    for key in plugin_dirs:
        get_plugin_class(key)
    selected = plugin_names(kind=kind) if names is None else [get_plugin_class(n).name for n in names]
    return [
        _REGISTRY[name].availability(weights_dir=weights_dir, plugin_dir=plugin_dirs.get(name))
        for name in selected
    ]


def create_plugin(name: str, *, weights_dir=None, plugin_dir=None, device: str = "auto") -> MetricPlugin:
    """Construct the plugin ``name`` (loads its weights).

    Raises
    ------
    ValueError
        For an unknown name or a bad device.
    WeightsMissingError
        If weights files are absent (names every expected path).
    """
    return get_plugin_class(name)(weights_dir=weights_dir, plugin_dir=plugin_dir, device=device)


def _register_builtins() -> None:
    from . import brisque, classical, clip_models, hpsv2, image_reward, niqe, set_plugins

    for cls in (
        classical.ColourfulnessMetric,
        classical.SharpnessMetric,
        classical.ResolutionMetric,
        classical.AspectRatioMetric,
        brisque.BrisqueMetric,
        niqe.NiqeMetric,
        clip_models.ClipScoreMetric,
        clip_models.ClipScoreL14Metric,
        clip_models.LaionAestheticMetric,
        clip_models.PickScoreMetric,
        hpsv2.Hpsv2Metric,
        hpsv2.Hpsv21Metric,
        image_reward.ImageRewardMetric,
        set_plugins.ClipDiversityMetric,
        set_plugins.FidClipMetric,
        set_plugins.KidClipMetric,
        set_plugins.CmmdClipMetric,
    ):
        register(cls)


_register_builtins()
