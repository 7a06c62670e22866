"""Writes of metric definitions: a plugin's global metric, a project's own imported metric.

A metric's identity is (project, name, version); a built-in plugin's metric is global (no project) and
carries the plugin's declarations (kind, direction, dimension, description, where its weights come
from). Scores live in :mod:`ranking.services.metric_scores` (imports) and
:mod:`ranking.services.metric_runs` (computations).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import IntegrityError, transaction

from annotator.errors import InvalidInput
from annotator.models import Project
from ranking.metric_plugins import Availability, get_plugin_class
from ranking.models import Metric, MetricDirection, MetricKind

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+\-/ ]{0,99}$")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-+]{0,39}$")


def plugin_provenance(status: Availability) -> str:
    """Where a plugin's weights come from, as stored on its metric."""
    cls = get_plugin_class(status.name)
    if not cls.weights:
        if status.name == "brisque":
            return "The SVM model shipped with the PyPI package brisque==0.2.0 (svm.txt, normalize.pickle)."
        return "No weights: a closed-form image statistic."
    lines = [f"{w.path} ({w.note})" if w.note else w.path for w in cls.weights]
    return f"Files under {status.weights_dir}: " + "; ".join(lines)


def metric_for_plugin(*, name: str) -> Metric:
    """The global metric of a registered plugin at its current version (created on first use)."""
    cls = get_plugin_class(name)
    status = cls.availability(weights_dir=settings.PREFLAB_WEIGHTS_DIR)
    defaults = {"kind": str(cls.kind), "direction": str(cls.direction), "dimension": str(cls.dimension),
                "description": cls.description, "weights": plugin_provenance(status), "plugin": cls.name}
    metric = Metric.objects.filter(project=None, name=cls.name, version=cls.version).first()
    if metric is not None:
        return metric
    try:
        with transaction.atomic():
            return Metric.objects.create(project=None, name=cls.name, version=cls.version, **defaults)
    except IntegrityError:  # created concurrently
        return Metric.objects.get(project=None, name=cls.name, version=cls.version)


def metric_create_imported(*, project: Project, name: str, version: str, direction: str = MetricDirection.HIGHER,
                           dimension: str = "", file_name: str = "") -> Metric:
    """A metric first seen in an imported file (``create=True``): the plugin's global metric when a plugin of
    that name and version exists, else a new metric of the project."""
    if not NAME_RE.match(name):
        raise InvalidInput(f"Metric name {name!r} is not allowed (letters, digits, _ . : + - / and spaces, "
                           "at most 100 characters).", field="metric")
    if not VERSION_RE.match(version):
        raise InvalidInput(f"Metric version {version!r} is not allowed (letters, digits, _ . - +, at most 40).",
                           field="version")
    if direction not in MetricDirection.values:
        raise InvalidInput(f"direction must be one of {', '.join(MetricDirection.values)}.", field="direction")
    try:
        cls = get_plugin_class(name)
    except ValueError:
        cls = None
    if cls is not None and cls.version == version and cls.kind == MetricKind.ITEM:
        return metric_for_plugin(name=name)
    return Metric.objects.create(
        project=project, name=name, version=version, kind=MetricKind.ITEM, direction=direction,
        dimension=dimension[:40], description=f"Imported scores (first file: {file_name})." if file_name else "",
        weights="Imported: computed outside PrefLab.")
