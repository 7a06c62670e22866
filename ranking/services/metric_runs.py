"""Computing metric scores with the metric plugins, as a job on the workers (or in-process with ``sync``).

A request names plugins (:mod:`ranking.metric_plugins`); it is refused when a plugin is unknown, its
weights are absent (the refusal names the files), or it cannot run per project (pair metrics, set
metrics that need a reference set). The run's metrics are the plugins' global
:class:`~ranking.models.Metric` rows at their current versions.

Executing goes through :func:`ranking.jobs.job_run` (lease, heartbeat, results stored in the
transaction that marks the run succeeded), so a message delivered twice computes once. The worker
scores every image of the project up to the run's cut-off (the newest item when it started), loading
``IMAGE_CHUNK`` images at a time from Django storage with Pillow and running every requested plugin on
each chunk in batches (CUDA when torch sees a GPU: the plugins decide). Item metrics give one score per
image; set metrics one value per source model. A value the plugin leaves undefined (NaN, e.g. BRISQUE
on a flat image) is not stored and is counted in the run's ``counts["undefined"]``.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from PIL import Image

from annotator.errors import InvalidInput
from annotator.models import Item, Project
from ranking import jobs
from ranking.metric_plugins import Kind, WeightsMissingError, create_plugin, get_plugin_class
from ranking.models import JobStatus, Metric, MetricRun, MetricSetScore, MetricSource
from ranking.services import calibration_reports, metric_scores
from ranking.services import metrics as metric_services

log = logging.getLogger(__name__)

KIND = jobs.job_kind_register(name="metric_run", model=MetricRun, task_name="ranking.metric_run_execute")
IMAGE_CHUNK = 64  # images decoded and held at a time
DEVICE = "auto"  # CUDA when torch sees a GPU, else CPU (plugins without a model ignore it)


# ------------------------------------------------------------------------------------------------
# Requests
# ------------------------------------------------------------------------------------------------


def plugins_check(*, names: list[str], reference_set: str | None = None) -> list[str]:
    """The requested plugin names, de-duplicated, each known, available here and computable per project.

    Set metrics that compare each set with a reference (FID, KID, CMMD) need ``reference_set``: the
    source model whose images are the reference (e.g. real photographs uploaded with model "reference").
    """
    clean = list(dict.fromkeys(n.strip() for n in names if n and n.strip()))
    if not clean:
        raise InvalidInput("Name at least one metric to compute.", field="metrics")
    for name in clean:
        try:
            cls = get_plugin_class(name)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="metrics") from None
        status = cls.availability(weights_dir=settings.PREFLAB_WEIGHTS_DIR)
        if not status.available:
            wanted = f" Missing: {', '.join(status.missing)}." if status.missing else ""
            raise InvalidInput(f"Metric {name} is unavailable here: {status.reason}.{wanted} "
                               "See docs/metric-weights.md.", field="metrics", code="plugin_unavailable")
        if cls.kind == Kind.PAIR:
            raise InvalidInput(f"Metric {name} scores pairs of images; pair metrics are not computed per project.",
                               field="metrics")
        if cls.kind == Kind.SET and getattr(cls, "needs_reference", False) and not reference_set:
            raise InvalidInput(f"Metric {name} compares each set with a reference set of images: name the source "
                               "model whose images are the reference (reference_set).", field="reference_set")
    return clean


def _run_create(*, project: Project, names: list[str], user=None, batch_size: int | None = None,
                published: bool = False, reference_set: str | None = None) -> MetricRun:
    reference_set = (reference_set or "").strip() or None
    names = plugins_check(names=names, reference_set=reference_set)
    if reference_set is not None and not Item.objects.filter(project=project, source_model=reference_set,
                                                             retired_at__isnull=True).exists():
        raise InvalidInput(f"No image of the project has the source model {reference_set!r} (the reference set).",
                           field="reference_set")
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool)
                                   or not 1 <= batch_size <= 1024):
        raise InvalidInput("batch_size must be a whole number from 1 to 1024.", field="batch_size")
    if not Item.objects.filter(project=project).exists():
        raise InvalidInput("The project has no images to score yet.", field="metrics")
    with transaction.atomic():
        metrics = [metric_services.metric_for_plugin(name=name) for name in names]
        run = MetricRun.objects.create(
            project=project, source=MetricSource.COMPUTED, requested_by=user,
            params={"plugins": names, "batch_size": batch_size, "device": DEVICE, "reference_set": reference_set},
            published_at=timezone.now() if published else None)
        run.metrics.set(metrics)
        if not published:
            jobs.job_publish_on_commit(run)
    return run


def metric_run_request(*, project: Project, metrics: list[str], user=None, batch_size: int | None = None,
                       reference_set: str | None = None) -> MetricRun:
    """Ask the workers to compute ``metrics`` (plugin names) for every image of the project."""
    return _run_create(project=project, names=metrics, user=user, batch_size=batch_size, reference_set=reference_set)


def metric_run_compute_now(*, project: Project, metrics: list[str], user=None, batch_size: int | None = None,
                           reference_set: str | None = None) -> MetricRun:
    """Compute in this process, through the same lifecycle as a worker (claimed, leased, finished): for
    commands run by hand and the demo seed. A failure is recorded on the run exactly as on a worker."""
    run = _run_create(project=project, names=metrics, user=user, batch_size=batch_size, published=True,
                      reference_set=reference_set)
    metric_run_execute(metric_run_id=run.pk)
    run.refresh_from_db()
    return run


def metric_run_seed(*, project: Project, metrics: list[str]) -> MetricRun | None:
    """Compute, in this process, those of ``metrics`` that are available here and that the project has no
    computed scores of yet (the demo seed; safe to run again). None when there is nothing to do."""
    have = set(MetricRun.objects.filter(project=project, source=MetricSource.COMPUTED, status=JobStatus.SUCCEEDED)
               .values_list("metrics__name", flat=True))
    wanted = [name for name in metrics if name not in have
              and get_plugin_class(name).availability(weights_dir=settings.PREFLAB_WEIGHTS_DIR).available]
    if not wanted or not Item.objects.filter(project=project).exists():
        return None
    return metric_run_compute_now(project=project, metrics=wanted)


# ------------------------------------------------------------------------------------------------
# Execution
# ------------------------------------------------------------------------------------------------


def _prepare(run: MetricRun) -> bool:
    """Under the claim's lock: fix the cut-off (the newest image when the run starts)."""
    run.cutoff_item_id = Item.objects.filter(project_id=run.project_id).aggregate(m=Max("id"))["m"]
    return True


def metric_run_execute(*, metric_run_id: int) -> None:
    """Compute one MetricRun (the Celery task's body). Idempotent; see :func:`ranking.jobs.job_run`."""
    jobs.job_run(kind=KIND.name, job_id=metric_run_id, body=_compute, prepare=_prepare)


def _load(name: str) -> Image.Image:
    with default_storage.open(name, "rb") as f, Image.open(f) as img:
        return img.convert("RGB")


def _plugins(run: MetricRun) -> list[tuple[Metric, object]]:
    by_name = {(m.plugin or m.name): m for m in run.metrics.all()}
    out = []
    for name in run.params.get("plugins", []):
        metric = by_name.get(name)
        cls = get_plugin_class(name)
        if metric is None or metric.version != cls.version:
            raise InvalidInput(f"Metric {name} is now version {cls.version}, not the version this run asked for; "
                               "request a new computation.", field="metrics")
        try:
            plugin = create_plugin(name, weights_dir=settings.PREFLAB_WEIGHTS_DIR, device=run.params.get("device", DEVICE))
        except WeightsMissingError as exc:
            raise InvalidInput(str(exc), field="metrics") from None
        out.append((metric, plugin))
    return out


def _compute(run: MetricRun, lease: jobs.Lease) -> jobs.Outcome:
    t0 = time.perf_counter()
    if run.cutoff_item_id is None:
        raise InvalidInput("The project has no images to score.", field="metrics")
    items = list(Item.objects.filter(project_id=run.project_id, id__lte=run.cutoff_item_id).order_by("id")
                 .values_list("id", "image", "prompt", "source_model"))
    plugins = _plugins(run)
    batch_size = run.params.get("batch_size")
    item_plugins = [(m, p) for m, p in plugins if m.kind != Kind.SET]
    set_plugins = [(m, p, p.make_extractor()) for m, p in plugins if m.kind == Kind.SET]
    values: dict[int, list[np.ndarray]] = {m.pk: [] for m, _ in item_plugins}
    features: dict[int, dict[str, list[np.ndarray]]] = {m.pk: {} for m, _, _ in set_plugins}
    scored_ids: list[np.ndarray] = []
    skipped: list[int] = []
    steps = max(len(items) * len(plugins), 1)
    done = 0
    for start in range(0, len(items), IMAGE_CHUNK):
        chunk = []
        for item_id, name, prompt, source_model in items[start:start + IMAGE_CHUNK]:
            try:
                chunk.append((item_id, _load(name), prompt, source_model))
            except (OSError, Image.DecompressionBombError) as exc:
                log.warning("metric run %s: image %s unreadable: %s", run.pk, item_id, exc)
                skipped.append(item_id)
        done += (len(items[start:start + IMAGE_CHUNK]) - len(chunk)) * len(plugins)
        if not chunk:
            continue
        ids, images, prompts, sets = zip(*chunk)
        scored_ids.append(np.array(ids, dtype=np.int64))
        for metric, plugin in item_plugins:
            values[metric.pk].append(plugin.score(list(images), list(prompts) if plugin.needs_prompts else None,
                                                  batch_size=batch_size))
            done += len(chunk)
            lease.progress(0.05 + 0.9 * done / steps)
        for metric, _, extractor in set_plugins:
            embedded = extractor.embed(list(images), batch_size=batch_size)
            for row, set_name in zip(embedded, sets):
                features[metric.pk].setdefault(set_name, []).append(row)
            done += len(chunk)
            lease.progress(0.05 + 0.9 * done / steps)
    item_ids = np.concatenate(scored_ids) if scored_ids else np.empty(0, dtype=np.int64)
    counts: dict = {"images": len(items), "skipped_unreadable": len(skipped), "skipped_ids": skipped[:20],
                    "scores": {}, "undefined": {}, "sets": {}}
    rows_metric, rows_item, rows_value = [], [], []
    for metric, _ in item_plugins:
        v = np.concatenate(values[metric.pk]) if values[metric.pk] else np.empty(0)
        ok = np.isfinite(v)
        rows_metric.append(np.full(int(ok.sum()), metric.pk, dtype=np.int64))
        rows_item.append(item_ids[ok])
        rows_value.append(v[ok])
        counts["scores"][metric.name] = int(ok.sum())
        counts["undefined"][metric.name] = int((~ok).sum())
    set_rows = []
    reference_name = run.params.get("reference_set")
    for metric, plugin, _ in set_plugins:
        by_set = {key: np.vstack(rows) for key, rows in features[metric.pk].items()}
        reference = None
        if getattr(plugin, "needs_reference", False):
            reference = by_set.pop(reference_name, None)
            if reference is None:
                raise InvalidInput(f"No readable image of the reference set {reference_name!r}.",
                                   field="reference_set")
        result = plugin.score_features(by_set, reference) if by_set else {}
        for key, value in result.items():
            if np.isfinite(value):
                set_rows.append(MetricSetScore(run=run, metric=metric, set_name=key, n_items=len(by_set[key]),
                                               value=float(value)))
        counts["sets"][metric.name] = {key: len(rows) for key, rows in by_set.items()}
        counts["undefined"][metric.name] = sum(1 for v in result.values() if not np.isfinite(v))
    counts["seconds"] = round(time.perf_counter() - t0, 3)
    counts["device"] = next((getattr(p, "device", "cpu") for _, p in plugins), "cpu")

    def store(job: MetricRun) -> None:
        if rows_metric:
            metric_scores.scores_write(run=job, metric_ids=np.concatenate(rows_metric),
                                       item_ids=np.concatenate(rows_item), values=np.concatenate(rows_value))
        MetricSetScore.objects.bulk_create(set_rows)
        calibration_reports.calibration_report_after_new_data(project_id=job.project_id)

    return jobs.Outcome(store=store, fields={"counts": counts})
