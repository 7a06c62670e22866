"""Automated metric scores: import (all or nothing, by line), versions, computation on workers with real
plugins, the metrics page, the item page, the API, the commands and who may do what."""

import hashlib
import io
import json
import math

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotator import services as annotator_services
from annotator.errors import InvalidInput
from annotator.imports import Upload
from ranking import jobs, loaders, selectors, tasks
from ranking.metric_plugins import Dimension, Direction, SetMetric, register
from ranking.metric_plugins.brisque import brisque_score
from ranking.metric_plugins.classical import aspect_ratio, colourfulness, laplacian_variance, megapixels
from ranking.metric_plugins.registry import unregister
from ranking.models import Metric, MetricRun, MetricScore, MetricSetScore
from ranking.services import metric_runs
from ranking.services.metric_scores import ScoresRejected, metric_scores_import
from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db

OFFLINE = ["colourfulness", "sharpness_laplacian_var", "resolution_mp", "aspect_ratio", "brisque"]


def textured_png(seed: int, width: int, height: int) -> bytes:
    """A noisy colour gradient (BRISQUE needs texture; the classical metrics need colour and edges)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, np.full_like(x, 40 * (seed % 5))], axis=2)
    noise = rng.normal(0, 12 + 6 * seed, size=(height, width, 3))
    arr = np.clip(base + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def textured_item(project, *, seed: int, width: int = 64, height: int = 48, model: str = "model-a"):
    data = textured_png(seed, width, height)
    return ItemFactory(project=project, _data=data, width=width, height=height, source_model=model,
                       original_name=f"img{seed}.png", prompt=f"prompt {seed % 2}")


@pytest.fixture
def scored(researcher):
    """A project with 6 textured images of two source models (different sizes and noise)."""
    project = annotator_services.project_create(owner=researcher, name="Metrics", overlap=1)
    sizes = [(64, 48), (48, 64), (80, 40), (64, 64), (72, 48), (56, 56)]
    items = [textured_item(project, seed=i, width=w, height=h, model="model-a" if i % 2 == 0 else "model-b")
             for i, (w, h) in enumerate(sizes)]
    return project, items


@pytest.fixture
def weights_dir(settings, tmp_path):
    settings.PREFLAB_WEIGHTS_DIR = tmp_path / "weights"
    settings.PREFLAB_WEIGHTS_DIR.mkdir()
    return settings.PREFLAB_WEIGHTS_DIR


def upload(text: str, name: str = "scores.csv") -> Upload:
    data = text.encode()
    return Upload(name=name, stream=io.BytesIO(data), size=len(data))


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def newest(project, metric_name: str) -> dict[int, float]:
    metric = selectors.metric_lookup(project=project, name=metric_name)
    data = loaders.metric_values(project=project, metric=metric)
    return dict(zip(data.item_ids.tolist(), data.values.tolist()))


def stored_counts() -> tuple[int, int, int, int]:
    return (Metric.objects.count(), MetricRun.objects.count(), MetricScore.objects.count(),
            MetricSetScore.objects.count())


# ------------------------------------------------------------------------------------------------
# Import
# ------------------------------------------------------------------------------------------------


def test_csv_import_by_file_name_stores_one_run_with_every_score(scored):
    project, items = scored
    rows = ["item,metric,value"] + [f"{it.original_name},aesthetic,{i / 3}" for i, it in enumerate(items)] \
        + [f"{it.original_name},clip_like,{-i}" for i, it in enumerate(items[:4])]
    run = metric_scores_import(project=project, upload=upload("\n".join(rows) + "\n"), create=True,
                               direction="higher", dimension="aesthetics")
    assert run.status == "succeeded" and run.source == "imported" and run.file_name == "scores.csv"
    assert run.counts["rows"] == 10 and run.counts["items"] == 6
    assert run.counts["metrics"] == {"aesthetic v1": 6, "clip_like v1": 4}
    assert run.params["item_column"] == "file"
    aesthetic = Metric.objects.get(name="aesthetic")
    assert aesthetic.project == project and aesthetic.dimension == "aesthetics" and aesthetic.kind == "item"
    assert {m.name for m in run.metrics.all()} == {"aesthetic", "clip_like"}
    assert newest(project, "aesthetic") == {it.pk: pytest.approx(i / 3, abs=0) for i, it in enumerate(items)}
    assert newest(project, "clip_like") == {it.pk: -i for i, it in enumerate(items[:4])}


def test_jsonl_import_by_id_and_csv_by_sha256(scored):
    project, items = scored
    lines = [json.dumps({"item": it.pk, "metric": "m", "value": 0.5 + i}) for i, it in enumerate(items)]
    run = metric_scores_import(project=project, upload=upload("\n".join(lines), "s.jsonl"), create=True)
    assert run.params == {"create": True, "format": "jsonl", "item_column": "id"}
    assert newest(project, "m") == {it.pk: 0.5 + i for i, it in enumerate(items)}
    # the sha256 column (upper case accepted), a version column naming the existing version, CRLF lines
    text = "sha256,metric,version,value\r\n" + "".join(f"{it.sha256.upper()},m,1,{7 + i}\r\n" for i, it in enumerate(items))
    run2 = metric_scores_import(project=project, upload=upload(text))
    assert run2.params["item_column"] == "sha256" and Metric.objects.filter(name="m").count() == 1
    assert newest(project, "m") == {it.pk: 7 + i for i, it in enumerate(items)}


def test_a_bad_file_is_refused_with_every_problem_by_line_and_nothing_is_stored(scored):
    project, items = scored
    metric_scores_import(project=project, upload=upload(f"item,metric,value\n{items[0].pk},known,1\n"), create=True)
    before = stored_counts()
    a, b, c = items[0].original_name, items[1].original_name, items[2].original_name
    text = "\n".join([
        "item,metric,value",
        f"{a},known,1.5",           # 2 fine
        "nope.png,known,2",         # 3 unknown image
        f"{b},known,inf",           # 4 not finite
        f"{c},known,NaN",           # 5 not finite
        f"{items[3].original_name},known,abc",  # 6 not a number
        f"{items[4].original_name},known,",     # 7 empty
        f"{a},known,3",             # 8 duplicate of line 2
        f"{b},unknown_metric,1",    # 9 unknown metric (no create)
        f"{items[5].original_name},known,1e999",  # 10 overflows to infinity
    ]) + "\n"
    with pytest.raises(ScoresRejected) as exc:
        metric_scores_import(project=project, upload=upload(text))
    problems = exc.value.problems
    assert [line for line, _ in problems] == [3, 4, 5, 6, 7, 8, 9, 10]
    text_of = dict(problems)
    assert "unknown image" in text_of[3] and "nope.png" in text_of[3]
    assert text_of[4] == "value 'inf' is not finite" and text_of[5] == "value 'NaN' is not finite"
    assert text_of[6] == "value 'abc' is not a number" and text_of[7] == "value is empty"
    assert "duplicate row: line 2" in text_of[8]
    assert "unknown metric 'unknown_metric'" in text_of[9]
    assert "not finite" in text_of[10]
    assert exc.value.as_dict()["error"]["code"] == "import_rejected"
    assert exc.value.as_dict()["error"]["problems"][0] == {"line": 3, "message": text_of[3]}
    assert stored_counts() == before


def test_line_numbers_count_blank_lines_and_structural_problems_are_refused(scored):
    project, items = scored
    before = stored_counts()
    text = f"item,metric,value\n\n{items[0].pk},m,1\n\n{items[0].pk},m,2\n"
    with pytest.raises(ScoresRejected) as exc:
        metric_scores_import(project=project, upload=upload(text), create=True)
    assert exc.value.problems == [(5, f"duplicate row: line 3 already scores image '{items[0].pk}' on this metric")]
    with pytest.raises(ScoresRejected) as exc:
        metric_scores_import(project=project, upload=upload(f"item,metric,value\n{items[0].pk},m\n"), create=True)
    assert exc.value.problems == [(2, "expected 3 columns, found 2")]
    with pytest.raises(ScoresRejected) as exc:
        metric_scores_import(project=project, upload=upload("image,score\nx,1\n"), create=True)
    assert exc.value.problems[0][1].startswith("no image column")
    assert (1, "no 'metric' column") in exc.value.problems and (1, "no 'value' column") in exc.value.problems
    with pytest.raises(ScoresRejected):
        metric_scores_import(project=project, upload=upload(""), create=True)
    jsonl = f'{{"item": {items[0].pk}, "metric": "m", "value": 1}}\n\n{{"item": 1, "metric": "m"\n' \
            f'{{"item": "{items[1].original_name}", "metric": "m", "value": [1]}}\n'
    with pytest.raises(ScoresRejected) as exc:
        metric_scores_import(project=project, upload=upload(jsonl, "s.jsonl"), create=True)
    assert [line for line, _ in exc.value.problems] == [3, 4]
    assert "not valid JSON" in exc.value.problems[0][1] and "'value' must be a number" in exc.value.problems[1][1]
    assert stored_counts() == before


def test_ambiguous_file_names_and_set_level_metrics_are_refused(scored, weights_dir):
    project, items = scored
    items[1].original_name = items[0].original_name
    items[1].save(update_fields=["original_name"])
    with pytest.raises(ScoresRejected) as exc:
        metric_scores_import(project=project, upload=upload(f"file,metric,value\n{items[0].original_name},m,1\n"),
                             create=True)
    assert "matches several images" in exc.value.problems[0][1]
    Metric.objects.create(project=project, name="per_model", kind="set")
    with pytest.raises(ScoresRejected) as exc:
        metric_scores_import(project=project, upload=upload(f"item,metric,value\n{items[2].pk},per_model,1\n"))
    assert exc.value.problems == [(2, "metric 'per_model' is set-level, not per image")]


def test_scores_are_versioned_and_the_newest_run_wins(scored, client):
    project, items = scored
    first = metric_scores_import(project=project, create=True, upload=upload(
        "item,metric,value\n" + "".join(f"{it.pk},m,{i}\n" for i, it in enumerate(items))))
    second = metric_scores_import(project=project, upload=upload(
        "item,metric,value\n" + "".join(f"{it.pk},m,{100 + i}\n" for i, it in enumerate(items[:2]))))
    assert second.pk > first.pk
    assert newest(project, "m") == {**{it.pk: i for i, it in enumerate(items)},
                                    items[0].pk: 100, items[1].pk: 101}
    assert MetricScore.objects.filter(metric__name="m").count() == 8  # nothing overwritten
    assert selectors.metric_coverage(project=project) == {Metric.objects.get(name="m").pk: 6}
    # a new version is a new metric; without a version the newest version is meant
    metric_scores_import(project=project, create=True, upload=upload(f"item,metric,version,value\n{items[0].pk},m,2,-1\n"))
    assert selectors.metric_lookup(project=project, name="m").version == "2"
    assert newest(project, "m") == {items[0].pk: -1}
    assert selectors.metric_lookup(project=project, name="m", version="1").scores.count() == 8
    with pytest.raises(ScoresRejected) as exc:
        metric_scores_import(project=project, upload=upload(f"item,metric,version,value\n{items[0].pk},m,3,1\n"))
    assert exc.value.problems == [(2, "unknown metric 'm' version '3' (import with create to add it)")]
    # the item page lists the newest value of each metric and the earlier runs' values
    client.force_login(project.owner)
    page = client.get(reverse("annotator:item_detail", args=[project.slug, items[0].pk])).content.decode()
    assert 'id="item-metric-scores"' in page and "100.0000" in page and "0.0000" in page and "-1.0000" in page
    assert f"#{second.pk}" in page and f"(#{first.pk})" in page


def test_the_database_refuses_non_finite_values(scored):
    project, items = scored
    run = MetricRun.objects.create(project=project, source="imported", status="succeeded")
    metric = Metric.objects.create(project=project, name="x")
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(IntegrityError), transaction.atomic():
            MetricScore.objects.create(run=run, metric=metric, item=items[0], value=bad)


def test_a_plugin_metric_name_imports_into_the_plugins_global_metric(scored):
    project, items = scored
    run = metric_scores_import(project=project, create=True,
                               upload=upload(f"item,metric,value\n{items[0].pk},brisque,12.5\n"))
    metric = run.metrics.get()
    assert metric.project is None and metric.plugin == "brisque" and metric.direction == "lower"


# ------------------------------------------------------------------------------------------------
# Computation on the workers
# ------------------------------------------------------------------------------------------------


def test_computation_runs_real_plugins_on_the_images_and_stores_their_scores(scored, enqueued,
                                                                              django_capture_on_commit_callbacks):
    project, items = scored
    with django_capture_on_commit_callbacks(execute=True):
        run = metric_runs.metric_run_request(project=project, metrics=OFFLINE, batch_size=4)
    assert enqueued == [("ranking.metric_run_execute", run.pk)] and run.status == "queued"
    tasks.metric_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.progress == 1.0 and run.cutoff_item_id == items[-1].pk and run.source == "computed"
    assert run.counts["images"] == 6 and run.counts["device"] == "cpu"
    images = {it.pk: Image.open(io.BytesIO(textured_png(i, it.width, it.height))).convert("RGB")
              for i, it in enumerate(items)}
    expected = {"colourfulness": colourfulness, "sharpness_laplacian_var": laplacian_variance,
                "resolution_mp": megapixels, "aspect_ratio": aspect_ratio, "brisque": brisque_score}
    for name, function in expected.items():
        want = {pk: function(img) for pk, img in images.items()}
        finite = {pk: v for pk, v in want.items() if math.isfinite(v)}
        assert newest(project, name) == pytest.approx(finite, rel=1e-12), name
        assert run.counts["scores"][name] == len(finite) and run.counts["undefined"][name] == 6 - len(finite)
    assert len(newest(project, "brisque")) >= 5  # textured images: BRISQUE is defined
    metric = Metric.objects.get(name="colourfulness")
    assert metric.project is None and metric.plugin == "colourfulness" and metric.dimension == "colour"
    assert "No weights" in metric.weights


def test_a_redelivered_or_concurrent_message_computes_once(scored, enqueued):
    project, _ = scored
    run = metric_runs.metric_run_request(project=project, metrics=["colourfulness"])
    held = jobs.job_claim(kind="metric_run", job_id=run.pk, owner="worker-1")  # a first worker holds the lease
    assert held is not None
    tasks.metric_run_execute(run.pk)  # the same message delivered to a second worker: dropped
    assert MetricScore.objects.count() == 0 and MetricRun.objects.get(pk=run.pk).lease_owner == "worker-1"
    MetricRun.objects.filter(pk=run.pk).update(status="queued", lease_owner="", lease_expires_at=None)
    tasks.metric_run_execute(run.pk)
    run.refresh_from_db()
    finished, ids = run.finished_at, sorted(MetricScore.objects.values_list("pk", flat=True))
    assert run.status == "succeeded" and len(ids) == 6
    tasks.metric_run_execute(run.pk)  # finished: a no-op
    run.refresh_from_db()
    assert run.finished_at == finished and sorted(MetricScore.objects.values_list("pk", flat=True)) == ids
    # a recompute is a new run whose scores are the newest; the earlier ones stay
    again = metric_runs.metric_run_compute_now(project=project, metrics=["colourfulness"])
    assert again.status == "succeeded" and MetricScore.objects.count() == 12
    assert set(selectors.metric_scores_newest(project=project).values_list("run_id", flat=True)) == {again.pk}


def test_unavailable_plugins_are_listed_with_the_files_they_want_and_refused(scored, weights_dir, client, enqueued):
    project, _ = scored
    statuses = {s.name: s for s in selectors.metric_plugins()}
    assert {"colourfulness", "brisque", "niqe", "laion_aesthetic_v2", "fid_clip_l14"} <= set(statuses)
    niqe = statuses["niqe"]
    assert not niqe.available and str(weights_dir / "niqe" / "niqe_pris_params.npz") in niqe.missing
    with pytest.raises(InvalidInput) as exc:
        metric_runs.metric_run_request(project=project, metrics=["niqe"])
    assert exc.value.code == "plugin_unavailable" and str(weights_dir / "niqe" / "niqe_pris_params.npz") in exc.value.message
    with pytest.raises(InvalidInput, match="unknown metric plugin"):
        metric_runs.metric_run_request(project=project, metrics=["no_such_metric"])
    assert MetricRun.objects.count() == 0 and enqueued == []
    client.force_login(project.owner)
    page = client.get(reverse("ranking:metrics", args=[project.slug])).content.decode()
    for name, status in statuses.items():
        assert f'data-plugin="{name}"' in page
        for path in status.missing:
            assert path in page
    assert page.count('<button type="submit">Compute</button>') == sum(
        s.available and s.kind == "item" for s in statuses.values())
    # the weights appear: the plugin becomes available (a file named as the listing says)
    (weights_dir / "niqe").mkdir()
    np.savez(weights_dir / "niqe" / "niqe_pris_params.npz", mu_pris_param=np.zeros(36), cov_pris_param=np.eye(36))
    assert {s.name: s for s in selectors.metric_plugins()}["niqe"].available


class MeanColourSpread(SetMetric):
    """A test set metric on real features: the spread of the images' mean colours."""

    name = "test_mean_colour_spread"
    version = "1"
    direction = Direction.HIGHER
    dimension = Dimension.DIVERSITY
    description = "Mean distance of each image's mean RGB colour from the set's mean (test plugin)."

    class Extractor:
        def embed(self, images, *, batch_size=None, progress=None):
            return np.array([np.asarray(img, dtype=float).reshape(-1, 3).mean(axis=0) for img in images])

    def make_extractor(self):
        return self.Extractor()

    def score_features(self, features, reference=None):
        return {k: float(np.linalg.norm(f - f.mean(axis=0), axis=1).mean()) for k, f in features.items()}


@pytest.fixture
def set_plugin():
    register(MeanColourSpread)
    yield MeanColourSpread
    unregister(MeanColourSpread.name)


def test_set_metrics_get_one_value_per_source_model(scored, set_plugin, client):
    project, items = scored
    run = metric_runs.metric_run_compute_now(project=project, metrics=[set_plugin.name, "resolution_mp"])
    assert run.status == "succeeded", run.error
    rows = {s.set_name: s for s in MetricSetScore.objects.filter(run=run)}
    assert set(rows) == {"model-a", "model-b"} and rows["model-a"].n_items == 3
    feats = {m: np.array([np.asarray(Image.open(io.BytesIO(textured_png(i, it.width, it.height))).convert("RGB"),
                                     dtype=float).reshape(-1, 3).mean(axis=0)
                          for i, it in enumerate(items) if it.source_model == m]) for m in ("model-a", "model-b")}
    for model, f in feats.items():
        assert rows[model].value == pytest.approx(float(np.linalg.norm(f - f.mean(axis=0), axis=1).mean()))
    assert run.counts["sets"][set_plugin.name] == {"model-a": 3, "model-b": 3}
    client.force_login(project.owner)
    page = client.get(reverse("ranking:metrics", args=[project.slug])).content.decode()
    assert 'id="set-metric-table"' in page and "model-a" in page and f"{rows['model-b'].value:.4f}" in page


class MeanColourDistance(MeanColourSpread):
    """A test set metric against a reference: distance between the set's and the reference's mean colour."""

    name = "test_mean_colour_distance"
    direction = Direction.LOWER
    needs_reference = True

    def score_features(self, features, reference=None):
        assert reference is not None
        return {k: float(np.linalg.norm(f.mean(axis=0) - reference.mean(axis=0))) for k, f in features.items()}


def test_set_metrics_against_a_reference_set_of_the_project(scored, client):
    project, items = scored
    register(MeanColourDistance)
    try:
        with pytest.raises(InvalidInput) as refused:  # the reference must be named, and must exist
            metric_runs.metric_run_compute_now(project=project, metrics=[MeanColourDistance.name])
        assert refused.value.field == "reference_set"
        with pytest.raises(InvalidInput, match="no-such-model"):
            metric_runs.metric_run_compute_now(project=project, metrics=[MeanColourDistance.name],
                                               reference_set="no-such-model")
        run = metric_runs.metric_run_compute_now(project=project, metrics=[MeanColourDistance.name],
                                                 reference_set="model-a")
    finally:
        unregister(MeanColourDistance.name)
    assert run.status == "succeeded", run.error
    rows = {s.set_name: s.value for s in MetricSetScore.objects.filter(run=run)}
    assert set(rows) == {"model-b"}  # the reference set is not scored against itself
    feats = {m: np.array([np.asarray(Image.open(io.BytesIO(textured_png(i, it.width, it.height))).convert("RGB"),
                                     dtype=float).reshape(-1, 3).mean(axis=0)
                          for i, it in enumerate(items) if it.source_model == m]) for m in ("model-a", "model-b")}
    assert rows["model-b"] == pytest.approx(float(np.linalg.norm(feats["model-b"].mean(axis=0)
                                                                 - feats["model-a"].mean(axis=0))))


# ------------------------------------------------------------------------------------------------
# Pages
# ------------------------------------------------------------------------------------------------


def test_metrics_page_shows_coverage_distribution_runs_and_progress(scored, client, enqueued):
    project, items = scored
    metric_scores_import(project=project, create=True, upload=upload(
        "item,metric,value\n" + "".join(f"{it.pk},aesthetic,{i}\n" for i, it in enumerate(items[:4]))))
    metric_runs.metric_run_compute_now(project=project, metrics=["colourfulness"])
    pending = metric_runs.metric_run_request(project=project, metrics=["aspect_ratio"])
    client.force_login(project.owner)
    response = client.get(reverse("ranking:metrics", args=[project.slug]))
    page = response.content.decode()
    assert response.status_code == 200
    assert f'href="/projects/{project.slug}/metrics/" class="active"' in page  # in the project navigation
    assert 'data-metric="aesthetic"' in page and "4 / 6" in page and 'data-metric="colourfulness"' in page
    assert "6 / 6" in page and page.count('class="hist"') == 2 and "imported" in page and "computed" in page
    status_url = reverse("ranking:metric_run_status", args=[project.slug, pending.pk])
    assert f'data-job-status-url="{status_url}" data-status="queued"' in page and "poll.js" in page
    assert client.get(status_url).json() == {"id": pending.pk, "status": "queued", "progress": 0.0, "error": ""}
    assert 'id="metric-import"' in page and "Download newest scores (CSV)" in page
    assert 'id="metric-runs"' in page


def test_page_upload_and_compute_buttons(scored, client, enqueued, django_capture_on_commit_callbacks):
    project, items = scored
    client.force_login(project.owner)
    url = reverse("ranking:metrics_import", args=[project.slug])
    good = io.BytesIO(("item,metric,value\n" + "".join(f"{it.original_name},a,{i}\n" for i, it in enumerate(items))).encode())
    good.name = "a.csv"
    response = client.post(url, {"file": good, "create": "on", "direction": "lower", "dimension": "overall"})
    assert response.status_code == 302 and MetricScore.objects.count() == 6
    assert Metric.objects.get(name="a").direction == "lower"
    bad = io.BytesIO(f"item,metric,value\n{items[0].pk},a,1\nmissing.png,a,2\n".encode())
    bad.name = "b.csv"
    response = client.post(url, {"file": bad, "direction": "higher"})
    page = response.content.decode()
    assert response.status_code == 400 and 'id="import-problems"' in page
    assert "<td>3</td><td>unknown image: no item id &#x27;missing.png&#x27; in this project</td>" in page
    assert MetricScore.objects.count() == 6 and MetricRun.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("ranking:metrics_compute", args=[project.slug]), {"metric": "sharpness_laplacian_var"})
    assert response.status_code == 302
    run = MetricRun.objects.get(source="computed")
    assert enqueued == [("ranking.metric_run_execute", run.pk)]
    response = client.post(reverse("ranking:metrics_compute", args=[project.slug]), {"metric": "niqe"}, follow=True)
    assert "unavailable" in response.content.decode() and MetricRun.objects.count() == 2


def test_scores_download_has_every_images_newest_scores(scored, client):
    project, items = scored
    metric_scores_import(project=project, create=True, upload=upload(
        "item,metric,value\n" + "".join(f"{it.pk},a,{i}\n" for i, it in enumerate(items))))
    second = metric_scores_import(project=project, upload=upload(f"item,metric,value\n{items[0].pk},a,0.25\n"))
    client.force_login(project.owner)
    response = client.get(reverse("ranking:metric_scores_csv", args=[project.slug]))
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "item_id,sha256,file,source_model,metric,version,value,run,source,scored_at"
    assert len(lines) == 7
    first_row = lines[1].split(",")
    assert first_row[:8] == [str(items[0].pk), items[0].sha256, items[0].original_name, "model-a", "a", "1", "0.25",
                             str(second.pk)]


# ------------------------------------------------------------------------------------------------
# API
# ------------------------------------------------------------------------------------------------


def test_api_import_list_scores_and_request_a_computation(scored, enqueued, django_capture_on_commit_callbacks):
    project, items = scored
    api = token_client(project.owner)
    data = io.BytesIO(("item,metric,value\n" + "".join(f"{it.sha256},api_m,{i}\n" for i, it in enumerate(items))).encode())
    data.name = "api.csv"
    response = api.post(reverse("api_metric_import", args=[project.slug]), {"file": data, "create": "true"},
                        format="multipart")
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]
    assert response.json()["counts"]["rows"] == 6 and response.json()["metrics"][0]["name"] == "api_m"
    bad = io.BytesIO(f"item,metric,value\n{items[0].pk},api_m,oops\n".encode())
    bad.name = "bad.csv"
    response = api.post(reverse("api_metric_import", args=[project.slug]), {"file": bad}, format="multipart")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "import_rejected" and error["field"] == "file"
    assert error["problems"] == [{"line": 2, "message": "value 'oops' is not a number"}]
    response = api.post(reverse("api_metric_import", args=[project.slug]), {}, format="multipart")
    assert response.status_code == 400 and response.json()["error"]["field"] == "file"

    metrics = api.get(reverse("api_metrics", args=[project.slug])).json()
    assert metrics == [{**metrics[0], "name": "api_m", "scope": "project", "n_scored": 6, "n_items": 6,
                        "coverage": 1.0, "newest_run": run_id}]
    url = reverse("api_metric_scores", args=[project.slug])
    page = api.get(url, {"metric": "api_m", "page_size": 4}).json()
    assert len(page["results"]) == 4 and page["next"]
    rest = api.get(page["next"]).json()
    values = [r["value"] for r in page["results"] + rest["results"]]
    assert sorted(values) == [0, 1, 2, 3, 4, 5] and rest["next"] is None
    assert page["results"][0]["source"] == "imported" and page["results"][0]["run"] == run_id
    assert api.get(url, {"metric": "nope"}).status_code == 404
    assert api.get(url, {"run": "x"}).json()["error"]["field"] == "run"
    assert len(api.get(url, {"item": items[0].pk}).json()["results"]) == 1

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(reverse("api_metric_runs", args=[project.slug]), {"metrics": ["aspect_ratio"]},
                            format="json")
    assert response.status_code == 201 and response.json()["status"] == "queued"
    computed = response.json()["id"]
    assert enqueued == [("ranking.metric_run_execute", computed)]
    tasks.metric_run_execute(computed)
    status = api.get(reverse("api_metric_run", args=[project.slug, computed])).json()
    assert status["status"] == "succeeded" and status["progress"] == 1.0 and status["counts"]["scores"] == {"aspect_ratio": 6}
    response = api.post(reverse("api_metric_runs", args=[project.slug]), {"metrics": ["bogus"]}, format="json")
    assert response.status_code == 400 and response.json()["error"]["field"] == "metrics"
    response = api.post(reverse("api_metric_runs", args=[project.slug]), {"metrics": []}, format="json")
    assert response.status_code == 400
    assert [r["id"] for r in api.get(reverse("api_metric_runs", args=[project.slug])).json()] == [computed, run_id]


# ------------------------------------------------------------------------------------------------
# Permissions: viewers read, researchers write, others see nothing
# ------------------------------------------------------------------------------------------------


def _csv_file():
    f = io.BytesIO(b"item,metric,value\n1,m,1\n")
    f.name = "p.csv"
    return f


API_READS = [("api_metrics", {}), ("api_metric_scores", {}), ("api_metric_runs", {})]
API_WRITES = [("api_metric_import", lambda: {"file": _csv_file(), "create": "true"}, "multipart"),
              ("api_metric_runs", lambda: {"metrics": ["colourfulness"]}, "json")]
PAGE_READS = ["ranking:metrics", "ranking:metric_scores_csv"]
PAGE_WRITES = [("ranking:metrics_import", lambda: {"file": _csv_file(), "create": "on", "direction": "higher"}),
               ("ranking:metrics_compute", lambda: {"metric": "colourfulness"})]


@pytest.fixture
def actors(scored):
    project, _ = scored
    viewer, outsider = UserFactory(), UserFactory()
    annotator_services.membership_set(project=project, user=viewer, role="viewer")
    other = annotator_services.project_create(owner=outsider, name="Other", overlap=1)
    run = MetricRun.objects.create(project=project, source="imported", status="succeeded")
    return project, viewer, outsider, other, run


@pytest.mark.parametrize(("name", "params"), API_READS)
def test_api_reads_members_only(actors, name, params):
    project, viewer, outsider, _, _ = actors
    url = reverse(name, args=[project.slug])
    assert APIClient().get(url).status_code == 401
    assert token_client(outsider).get(url).status_code == 404
    assert token_client(viewer).get(url).status_code == 200


@pytest.mark.parametrize(("name", "body", "fmt"), API_WRITES)
def test_api_writes_researchers_only(actors, name, body, fmt):
    project, viewer, outsider, _, _ = actors
    url = reverse(name, args=[project.slug])
    assert APIClient().post(url, body(), format=fmt).status_code == 401
    response = token_client(outsider).post(url, body(), format=fmt)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    response = token_client(viewer).post(url, body(), format=fmt)
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert MetricRun.objects.count() == 1 and Metric.objects.count() == 0


def test_run_status_is_for_members_of_its_project(actors, client):
    project, viewer, outsider, other, run = actors
    api_url = reverse("api_metric_run", args=[project.slug, run.pk])
    assert APIClient().get(api_url).status_code == 401
    assert token_client(outsider).get(api_url).status_code == 404
    assert token_client(viewer).get(api_url).status_code == 200
    # a run of another project is not found through a project one is a member of
    assert token_client(outsider).get(reverse("api_metric_run", args=[other.slug, run.pk])).status_code == 404
    page_url = reverse("ranking:metric_run_status", args=[project.slug, run.pk])
    assert client.get(page_url).status_code == 302
    client.force_login(outsider)
    assert client.get(page_url).status_code == 404
    assert client.get(reverse("ranking:metric_run_status", args=[other.slug, run.pk])).status_code == 404


@pytest.mark.parametrize("name", PAGE_READS)
def test_pages_read_members_only(actors, client, name):
    project, viewer, outsider, _, _ = actors
    url = reverse(name, args=[project.slug])
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.force_login(viewer)
    response = client.get(url)
    assert response.status_code == 200
    if name == "ranking:metrics":  # viewers see no upload form and no compute buttons
        page = response.content.decode()
        assert 'id="metric-import"' not in page and ">Compute</button>" not in page


@pytest.mark.parametrize(("name", "body"), PAGE_WRITES)
def test_pages_write_researchers_only(actors, client, name, body):
    project, viewer, outsider, _, _ = actors
    url = reverse(name, args=[project.slug])
    response = client.post(url, body())
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(outsider)
    assert client.post(url, body()).status_code == 404
    client.force_login(viewer)
    assert client.post(url, body()).status_code == 403
    assert MetricRun.objects.count() == 1 and Metric.objects.count() == 0


# ------------------------------------------------------------------------------------------------
# Commands, the demo, the task
# ------------------------------------------------------------------------------------------------


def test_metrics_import_command(scored, tmp_path):
    project, items = scored
    good = tmp_path / "s.jsonl"
    good.write_text("\n".join(json.dumps({"file": it.original_name, "metric": "cmd", "value": i})
                              for i, it in enumerate(items)))
    out = io.StringIO()
    call_command("metrics_import", project.slug, str(good), "--create", "--dimension", "aesthetics", stdout=out)
    assert "Imported 6 scores of 6 images" in out.getvalue()
    assert Metric.objects.get(name="cmd").dimension == "aesthetics"
    bad = tmp_path / "bad.csv"
    bad.write_text(f"item,metric,value\n{items[0].pk},cmd,1\n{items[0].pk},cmd,2\n{items[1].pk},other,1\n")
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing was imported: 2 problem"):
        call_command("metrics_import", project.slug, str(bad), stderr=err)
    assert "bad.csv:3: duplicate row: line 2" in err.getvalue() and "bad.csv:4: unknown metric 'other'" in err.getvalue()
    assert MetricRun.objects.count() == 1
    with pytest.raises(CommandError, match="No project"):
        call_command("metrics_import", "nope", str(good))


def test_metrics_compute_command_queues_or_runs_in_process(scored, enqueued, django_capture_on_commit_callbacks):
    project, _ = scored
    out = io.StringIO()
    call_command("metrics_compute", project.slug, "--metric", "colourfulness", "--metric", "aspect_ratio", "--sync",
                 stdout=out)
    run = MetricRun.objects.get()
    assert run.status == "succeeded" and "colourfulness: 6, aspect_ratio: 6" in out.getvalue()
    assert enqueued == []  # in process: never published
    with django_capture_on_commit_callbacks(execute=True):
        call_command("metrics_compute", project.slug, "--metric", "resolution_mp", stdout=out)
    queued = MetricRun.objects.exclude(pk=run.pk).get()
    assert queued.status == "queued" and enqueued == [("ranking.metric_run_execute", queued.pk)]
    with pytest.raises(CommandError, match="unavailable"):
        call_command("metrics_compute", project.slug, "--metric", "niqe")
    listing = io.StringIO()
    call_command("metrics_compute", "--list", stdout=listing)
    assert "niqe" in listing.getvalue() and "missing" in listing.getvalue()


def test_demo_seed_computes_the_offline_metrics_once():
    call_command("seed_demo", stdout=io.StringIO())
    out = io.StringIO()
    call_command("seed_demo_metrics", "--base-url", "http://127.0.0.1:9999", stdout=out)
    assert "http://127.0.0.1:9999/projects/demo/metrics/" in out.getvalue()
    from annotator.models import Project

    demo = Project.objects.get(slug="demo")
    coverage = selectors.metric_coverage(project=demo)
    for name in OFFLINE:
        assert coverage[Metric.objects.get(name=name).pk] == demo.items.count() == 20, name
    runs = MetricRun.objects.count()
    call_command("seed_demo_metrics", stdout=io.StringIO())
    assert MetricRun.objects.count() == runs  # already there: nothing recomputed


def test_task_name_and_time_limits():
    from config import settings as production

    assert tasks.metric_run_execute.name == "ranking.metric_run_execute"
    assert tasks.metric_run_execute.acks_late and tasks.metric_run_execute.reject_on_worker_lost
    assert tasks.metric_run_execute.max_retries == 3
    visibility = 3600
    if str(production.CELERY_BROKER_URL).startswith("redis"):
        visibility = production.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert tasks.metric_run_execute.soft_time_limit < tasks.metric_run_execute.time_limit < visibility
    assert jobs.KINDS["metric_run"].task_name == tasks.metric_run_execute.name


def test_sha256_of_textured_items_is_the_stored_file():
    """The fixture's helper really makes items whose stored file is the image the test scores."""
    project = annotator_services.project_create(owner=UserFactory(), name="Fixture", overlap=1)
    item = textured_item(project, seed=3, width=40, height=30)
    with item.image.open("rb") as f:
        data = f.read()
    assert hashlib.sha256(data).hexdigest() == item.sha256 and data == textured_png(3, 40, 30)
