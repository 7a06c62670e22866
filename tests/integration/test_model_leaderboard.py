"""The model-level leaderboard (stored with every BT fit) and adaptive pair selection, through the app."""

import csv
import io
import uuid

import numpy as np
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotator import services as annotator_services
from annotator.models import Task
from ranking.core.model_bt import fit_model_bt
from ranking.models import FitRun
from ranking.services import adaptive_pairs, fit_runs
from tests.conftest import ready_rater
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db

MODEL_QUALITY = {"model-a": 1.0, "model-b": 0.0, "model-c": -1.0}


@pytest.fixture
def arena(researcher, monkeypatch):
    """3 source models × 6 images on 3 prompts; model-a's images are the largest. 8 raters judge all
    within-prompt pairs by a BT model on the models' quality plus a little image noise."""
    sides = np.random.default_rng(2)
    monkeypatch.setattr("annotator.services.assignments.secrets.randbelow", lambda n: int(sides.integers(n)))
    project = annotator_services.project_create(owner=researcher, name="Arena", overlap=8)
    rng = np.random.default_rng(0)
    quality = {}
    for model, q in MODEL_QUALITY.items():
        size = {"model-a": 64, "model-b": 48, "model-c": 32}[model]
        for k in range(6):
            side = size + 8 * (k % 2)  # sizes vary within a model too, so size and model can be told apart
            item = ItemFactory(project=project, prompt=f"prompt {k % 3}", source_model=model, width=side, height=side)
            quality[item.pk] = q + rng.normal(scale=0.2)
    annotator_services.instruction_version_create(project=project, text="Choose.", created_by=researcher)
    annotator_services.tasks_generate_within_prompt(project=project, random_state=0)
    for _ in range(8):
        rater = ready_rater(project)
        while (a := annotator_services.assignment_next(rater=rater)) is not None:
            p_left = 1 / (1 + np.exp(-(quality[a.left_item_id] - quality[a.right_item_id])))
            choice = "tie" if rng.random() < 0.08 else ("left" if rng.random() < p_left else "right")
            annotator_services.judgment_create(rater=rater, assignment_id=a.pk, choice=choice,
                                               idempotency_key=uuid.uuid4(),
                                               instruction_version_id=rater.acknowledged_instruction_id)
    FitRun.objects.filter(project=project).delete()
    return project, quality


def _fit(project):
    run = fit_runs.fit_run_request(project=project)
    fit_runs.fit_run_execute(fit_run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


def test_a_fit_stores_the_model_ranking_with_every_interval(arena, enqueued):
    project, _ = arena
    run = _fit(project)
    ranking = run.summary["model_ranking"]
    rows = ranking["plain"]["rows"]
    assert [r["model"] for r in rows] == ["model-a", "model-b", "model-c"]
    assert [r["rank"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert r["ci_low"] < r["strength"] < r["ci_high"]
        assert r["boot_ci_low"] <= r["boot_ci_high"]
        assert 1 <= r["rank_low"] <= r["rank"] <= r["rank_high"] <= 3
    assert ranking["n_prompts"] == 3 and ranking["n_comparisons"] > 0
    # style control: size varies with the model, so the style fit exists and reports its coefficients
    assert ranking["style"] is not None and ranking["style"]["coef"][0]["name"] == "log megapixels"
    observed = np.array(ranking["win_rates"]["observed"], dtype=float)
    assert observed[0, 2] > 0.5 > observed[2, 0]


def test_leaderboard_page_csv_api_and_datasheet_show_it(arena, client, researcher, enqueued):
    project, _ = arena
    run = _fit(project)
    client.force_login(researcher)
    page = client.get(reverse("ranking:leaderboard", args=[project.slug])).content.decode()
    assert 'id="model-leaderboard"' in page and 'data-model="model-a"' in page and 'id="win-rates"' in page
    body = client.get(reverse("ranking:model_leaderboard_csv", args=[project.slug])).content.decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["model"] for r in rows] == ["model-a", "model-b", "model-c"]
    assert float(rows[0]["strength"]) == pytest.approx(run.summary["model_ranking"]["plain"]["rows"][0]["strength"])
    api = APIClient()
    api.force_authenticate(researcher)
    data = api.get(f"/api/projects/{project.slug}/models/").json()
    assert data["fit_id"] == run.pk and data["model_ranking"]["models"] == ["model-a", "model-b", "model-c"]
    outsider = APIClient()
    from tests.factories import UserFactory

    outsider.force_authenticate(UserFactory())
    assert outsider.get(f"/api/projects/{project.slug}/models/").status_code == 404


def test_the_stored_ranking_is_the_core_fit_of_the_cross_model_comparisons(arena, enqueued):
    project, _ = arena
    run = _fit(project)
    from ranking import loaders

    data = loaders.comparison_data(project_id=project.pk, cutoff_judgment_id=run.cutoff_judgment_id,
                                   params={"ties": "davidson"})
    attrs = loaders.item_attributes(item_ids=data.item_ids)
    a, b = attrs.model[data.winners], attrs.model[data.losers]
    cross = a != b
    fit = fit_model_bt(a[cross], b[cross], np.where(data.tied[cross], 0.5, 1.0), 3,
                       groups=attrs.prompt[data.winners][cross], alpha=run.params["alpha"], n_bootstrap=0)
    stored = {r["model"]: r["strength"] for r in run.summary["model_ranking"]["plain"]["rows"]}
    assert [stored[m] for m in attrs.model_names] == pytest.approx(list(fit.strengths), abs=1e-8)


def test_style_control_is_skipped_with_a_reason_when_size_and_model_coincide(arena, enqueued):
    project, _ = arena
    for item in project.items.all():
        side = {"model-a": 64, "model-b": 48, "model-c": 32}[item.source_model]
        type(item).objects.filter(pk=item.pk).update(width=side, height=side)
    ranking = _fit(project).summary["model_ranking"]
    assert ranking["plain"]["rows"][0]["model"] == "model-a"
    assert ranking["style"] is None and ranking["style_note"].startswith("not possible here")


def test_one_source_model_gives_no_model_ranking(researcher, client, enqueued):
    project = annotator_services.project_create(owner=researcher, name="One model", overlap=2)
    for _ in range(4):
        ItemFactory(project=project, prompt="p", source_model="only")
    annotator_services.instruction_version_create(project=project, text="Choose.", created_by=researcher)
    annotator_services.tasks_generate_within_prompt(project=project, random_state=0)
    rater = ready_rater(project)
    while (a := annotator_services.assignment_next(rater=rater)) is not None:
        annotator_services.judgment_create(rater=rater, assignment_id=a.pk, choice="left",
                                           idempotency_key=uuid.uuid4(),
                                           instruction_version_id=rater.acknowledged_instruction_id)
    run = _fit(project)
    assert run.summary["model_ranking"] is None
    client.force_login(researcher)
    assert client.get(reverse("ranking:model_leaderboard_csv", args=[project.slug])).status_code == 404


# ------------------------------------------------------------------------------------------------
# Adaptive pairs
# ------------------------------------------------------------------------------------------------


def test_adaptive_pairs_need_a_fit(researcher):
    project = annotator_services.project_create(owner=researcher, name="New")
    for _ in range(4):
        ItemFactory(project=project)
    api = APIClient()
    api.force_authenticate(researcher)
    response = api.post(f"/api/projects/{project.slug}/tasks/generate/", {"strategy": "adaptive", "budget": 3},
                        format="json")
    assert response.status_code == 400 and "fit" in response.json()["error"]["message"]
    assert not Task.objects.filter(project=project).exists()
    response = api.post(f"/api/projects/{project.slug}/tasks/generate/", {"strategy": "adaptive"}, format="json")
    assert response.status_code == 400 and "budget" in str(response.json())


@pytest.mark.parametrize("target", ["items", "models"])
def test_adaptive_pairs_are_new_pairs_planned_from_the_fit(arena, enqueued, target):
    project, _ = arena
    _fit(project)
    before = set(Task.objects.filter(project=project).values_list("item_a_id", "item_b_id"))
    made = annotator_services.tasks_generate(project=project, strategy="adaptive", budget=10, target=target,
                                             random_state=1)
    after = set(Task.objects.filter(project=project).values_list("item_a_id", "item_b_id"))
    new = after - before
    assert 1 <= made == len(new) <= 10
    models = dict(project.items.values_list("pk", "source_model"))
    if target == "items":
        assert made == 10
    else:  # model-level pairs join images of two different models
        assert all(models[a] != models[b] for a, b in new)


def test_adaptive_batches_are_planned_after_fits_when_places_run_low(arena, enqueued, django_capture_on_commit_callbacks):
    project, _ = arena
    annotator_services.project_update(project=project, adaptive_batch=5, adaptive_target="items")
    assert adaptive_pairs.open_places(project=project) == 0  # every place of the first tasks was taken
    n_tasks = Task.objects.filter(project=project).count()
    with django_capture_on_commit_callbacks(execute=True):
        _fit(project)
    assert Task.objects.filter(project=project).count() == n_tasks + 5
    assert adaptive_pairs.open_places(project=project) == 5 * project.overlap
    with django_capture_on_commit_callbacks(execute=True):
        _fit(project)  # enough open places now: nothing more
    assert Task.objects.filter(project=project).count() == n_tasks + 5
