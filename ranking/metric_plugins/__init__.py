"""Automated image metrics as plugins: declarations, availability, batched scoring. No Django import.

Public API::

    from ranking.metric_plugins import list_plugins, create_plugin

    for status in list_plugins(weights_dir=settings.PREFLAB_WEIGHTS_DIR):
        status.name, status.available, status.missing      # never raises for absent weights
    plugin = create_plugin("laion_aesthetic_v2", weights_dir=..., device="auto")
    scores = plugin.score(images, prompts, batch_size=16, progress=lambda f: ...)

Item plugins return one float per image (:meth:`ItemMetric.score`), set plugins one float per named set
(:meth:`SetMetric.score_sets` / :meth:`SetMetric.score_features`). ``docs/metric-weights.md`` lists the
files every plugin expects. torch and transformers are imported only when a model plugin is constructed.
"""

from .base import (
    Availability,
    Dimension,
    Direction,
    ItemMetric,
    Kind,
    MetricPlugin,
    PairMetric,
    SetMetric,
    WeightsFile,
    WeightsMissingError,
    as_pil_rgb,
    as_rgb_array,
    resolve_device,
)
from .registry import create_plugin, get_plugin_class, list_plugins, plugin_names, register

__all__ = [
    "Availability",
    "Dimension",
    "Direction",
    "ItemMetric",
    "Kind",
    "MetricPlugin",
    "PairMetric",
    "SetMetric",
    "WeightsFile",
    "WeightsMissingError",
    "as_pil_rgb",
    "as_rgb_array",
    "create_plugin",
    "get_plugin_class",
    "list_plugins",
    "plugin_names",
    "register",
    "resolve_device",
]
