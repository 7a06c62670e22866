"""Fits in the app: execution, idempotency, supersession, coalescing, results, API and pages."""

import uuid

import numpy as np
import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotator import services as annotator_services
from annotator.errors import InvalidInput
from ranking import selectors, tasks
from ranking.core.bt import fit_bt
from ranking.loaders import comparison_data
from ranking.models import FitRun, ItemScore, RaterItemOffset
from ranking.services import fit_runs
from tests.conftest import ready_rater
from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def judged(researcher, monkeypatch):
    """6 items with a true order (item 0 best) judged by 8 raters over all 15 pairs.

    Left/right sides are drawn with `secrets`; they are seeded here too, so the simulated study is
    the same on every run.
    """
    sides = np.random.default_rng(1)
    monkeypatch.setattr("annotator.services.assignments.secrets.randbelow", lambda n: int(sides.integers(n)))
    project = annotator_services.project_create(owner=researcher, name="Judged", overlap=8)
    items = [ItemFactory(project=project, prompt="p") for _ in range(6)]
    annotator_services.instruction_version_create(project=project, text="Choose.", created_by=researcher)
    annotator_services.tasks_generate_within_prompt(project=project, random_state=0)
    rank = {item.pk: i for i, item in enumerate(items)}
    rng = np.random.default_rng(0)
    for _ in range(8):
        rater = ready_rater(project)
        while (a := annotator_services.assignment_next(rater=rater)) is not None:
            gap = rank[a.right_item_id] - rank[a.left_item_id]  # > 0: left is better
            p_left = 1 / (1 + np.exp(-0.8 * gap))
            choice = "tie" if rng.random() < 0.1 else ("left" if rng.random() < p_left else "right")
            annotator_services.judgment_create(rater=rater, assignment_id=a.pk, choice=choice,
                                               idempotency_key=uuid.uuid4(),
                                               instruction_version_id=rater.acknowledged_instruction_id)
    FitRun.objects.filter(project=project).delete()  # automatic requests made while judging
    return project, items


def test_bt_fit_runs_and_matches_the_core(judged):
    project, items = judged
    run = fit_runs.fit_run_request(project=project, params={"alpha": 0.01})
    tasks.fit_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.progress == 1.0
    assert run.summary["n_comparisons"] == 8 * 15
    assert run.summary["n_components"] == 1
    rows = selectors.leaderboard(fit=run)
    assert [r.item_id for r in rows][:2] == [items[0].pk, items[1].pk]
    data = comparison_data(project_id=project.pk, cutoff_judgment_id=run.cutoff_judgment_id, params=run.params)
    direct = fit_bt(data.winners, data.losers, len(data.item_ids), tied=data.tied, alpha=0.01)
    stored = {s.item_id: s.strength for s in ItemScore.objects.filter(fit=run)}
    np.testing.assert_allclose([stored[i] for i in data.item_ids], direct.strengths, atol=1e-9)
    assert all(r.ci_low < r.strength < r.ci_high for r in rows)
    assert sum(r.wins + r.losses + r.ties for r in rows) == pytest.approx(2 * 8 * 15)


def test_repeated_delivery_is_a_no_op(judged):
    project, _ = judged
    run = fit_runs.fit_run_request(project=project)
    tasks.fit_run_execute(run.pk)
    run.refresh_from_db()
    finished, scores = run.finished_at, list(ItemScore.objects.filter(fit=run).values_list("pk", flat=True))
    tasks.fit_run_execute(run.pk)
    run.refresh_from_db()
    assert run.finished_at == finished
    assert list(ItemScore.objects.filter(fit=run).values_list("pk", flat=True)) == scores


def test_missing_run_is_a_no_op():
    tasks.fit_run_execute(987654)
    assert not FitRun.objects.exists() and not ItemScore.objects.exists()


def test_older_automatic_run_is_superseded(judged):
    project, _ = judged
    old = FitRun.objects.create(project=project, model="bt", automatic=True, status="queued")
    new = FitRun.objects.create(project=project, model="bt", automatic=True, status="running")
    tasks.fit_run_execute(old.pk)
    old.refresh_from_db()
    assert old.status == "superseded"
    assert not ItemScore.objects.filter(fit=old).exists()
    assert new.pk > old.pk


def test_disconnected_data_fails_with_a_named_reason(researcher):
    project = annotator_services.project_create(owner=researcher, name="Disconnected", overlap=1)
    _a, _b = ItemFactory(project=project, prompt="x"), ItemFactory(project=project, prompt="x")
    annotator_services.instruction_version_create(project=project, text="Choose.", created_by=researcher)
    annotator_services.tasks_generate_within_prompt(project=project)
    rater = ready_rater(project)
    assignment = annotator_services.assignment_next(rater=rater)
    annotator_services.judgment_create(rater=rater, assignment_id=assignment.pk, choice="left",
                                       idempotency_key=uuid.uuid4(),
                                       instruction_version_id=rater.acknowledged_instruction_id)
    run = fit_runs.fit_run_request(project=project, params={"alpha": 0.0})
    tasks.fit_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == "failed"
    assert "never" in run.error.lower() or "connected" in run.error.lower()


def test_time_decay_weights_recent_judgments(judged):
    project, _ = judged
    run = fit_runs.fit_run_request(project=project, params={"half_life_days": 30})
    tasks.fit_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.params["half_life_days"] == 30.0


@pytest.mark.parametrize(("params", "field"), [
    ({"alpha": -1}, "alpha"), ({"half_life_days": 0}, "half_life_days"), ({"ties": "maybe"}, "ties"),
    ({"surprise": 1}, "surprise"), ({"demographic_field": "shoe_size", "demographic_value": "x"}, "demographic_field"),
])
def test_bad_fit_parameters_are_refused(judged, params, field):
    project, _ = judged
    with pytest.raises(InvalidInput) as exc:
        fit_runs.fit_run_request(project=project, params=params)
    assert exc.value.field == field
    assert not FitRun.objects.filter(project=project).exists()


def test_hierarchical_fit_stores_sparse_personal_offsets(judged):
    project, _items = judged
    run = fit_runs.fit_run_request(project=project, model="hbt", params={"tau": 0.5})
    tasks.fit_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.summary["predictive"]["n_test"] > 0
    judged_pairs = set()
    from annotator.models import Judgment

    for rater_id, left, right in Judgment.objects.filter(project=project).values_list("rater_id", "left_item_id",
                                                                                       "right_item_id"):
        judged_pairs |= {(rater_id, left), (rater_id, right)}
    stored = set(RaterItemOffset.objects.filter(fit=run).values_list("rater_id", "item_id"))
    assert stored == judged_pairs
    rater = RaterItemOffset.objects.filter(fit=run).first().rater
    rows = selectors.personal_ranking(fit=run, rater=rater)
    assert {r["personal_rank"] for r in rows} == set(range(1, len(rows) + 1))


def test_sweep_refits_stale_projects(judged, django_capture_on_commit_callbacks):
    project, _ = judged
    with django_capture_on_commit_callbacks(execute=False):
        assert fit_runs.fit_sweep() == 1
    assert FitRun.objects.filter(project=project, status="queued", automatic=True).count() == 1
    with django_capture_on_commit_callbacks(execute=False):
        assert fit_runs.fit_sweep() == 0  # one is already pending


def test_task_names_are_stable():
    assert tasks.fit_run_execute.name == "ranking.fit_run_execute"
    assert tasks.fit_sweep.name == "ranking.fit_sweep"
    assert tasks.jobs_sweep.name == "ranking.jobs_sweep"
    assert tasks.fit_run_execute.acks_late and tasks.fit_run_execute.reject_on_worker_lost
    assert tasks.fit_run_execute.max_retries == 3


def test_time_limits_stay_below_the_visibility_timeout_and_the_lease_is_renewed_often(settings):
    """A message is redelivered only after its task could have finished; a lease outlives several beats."""
    from config import settings as production

    visibility = 3600  # the Redis default we set (PREFLAB_VISIBILITY_TIMEOUT_S)
    if str(production.CELERY_BROKER_URL).startswith("redis"):
        visibility = production.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    job_tasks = [t for name, t in vars(tasks).items() if hasattr(t, "time_limit") and name.endswith(("_execute", "_sweep"))]
    assert len(job_tasks) >= 5  # fits, agreement reports, calibration reports, metric runs, sweeps
    for task in job_tasks:
        assert task.soft_time_limit < task.time_limit < visibility, task.name
    assert production.PREFLAB_JOB_HEARTBEAT_S * 3 <= production.PREFLAB_JOB_LEASE_S
    assert production.PREFLAB_JOB_REPUBLISH_AFTER_S > production.PREFLAB_AUTO_FIT_DELAY_S


def test_fit_api_and_pages(judged, client):
    project, _ = judged
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=project.owner).key}")
    response = api.post(reverse("api_fits", args=[project.slug]), {"model": "bt", "params": {"alpha": 0.1}},
                        format="json")
    assert response.status_code == 201
    run_id = response.json()["id"]
    tasks.fit_run_execute(run_id)
    body = api.get(reverse("api_fit_scores", args=[project.slug, run_id])).json()
    assert len(body["results"]) == 6 and {"strength", "elo", "ci_low"} <= set(body["results"][0])
    client.force_login(project.owner)
    page = client.get(reverse("ranking:leaderboard", args=[project.slug]))
    assert page.status_code == 200 and b"Bradley" in page.content
    assert client.get(reverse("ranking:fits", args=[project.slug])).status_code == 200
    outsider = UserFactory()
    client.force_login(outsider)
    assert client.get(reverse("ranking:leaderboard", args=[project.slug])).status_code == 404
    assert client.get(reverse("ranking:fit_status", args=[project.slug, run_id])).status_code == 404
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=outsider).key}")
    assert other.get(reverse("api_fit_scores", args=[project.slug, run_id])).status_code == 404
    assert other.post(reverse("api_fits", args=[project.slug]), {"model": "bt"}, format="json").status_code == 404


def test_every_item_of_a_large_project_gets_a_confidence_interval(researcher):
    """The leaderboard shows a CI for every item at any size (it once stopped above 5,000 items): 6,000 images on a
    ring of comparisons with random chords, about 12,000 judgments stored in bulk, fitted by the worker's task."""
    from django.utils import timezone

    from annotator.models import Assignment, Item, Judgment, Task

    n = 6_000
    project = annotator_services.project_create(owner=researcher, name="Large", overlap=1)
    instructions = annotator_services.instruction_version_create(project=project, text="Choose.",
                                                                 created_by=researcher)
    rater = ready_rater(project)
    items = Item.objects.bulk_create([
        Item(project=project, image=f"items/large/{i}.png", original_name=f"{i:04d}.png", prompt="p", width=8,
             height=8, image_format="PNG", sha256=f"{i:064x}") for i in range(n)])
    rng = np.random.default_rng(0)
    pairs = {(i, (i + 1) % n) for i in range(n)} | {tuple(rng.choice(n, 2, replace=False)) for _ in range(n)}
    pairs = sorted({(min(p), max(p)) for p in pairs})
    tasks_ = Task.objects.bulk_create([Task(project=project, item_a=items[a], item_b=items[b], n_assigned=1,
                                            n_judgments=1) for a, b in pairs])
    now = timezone.now()
    assignments = Assignment.objects.bulk_create([
        Assignment(task=t, rater=rater, project=project, left_item_id=t.item_a_id, right_item_id=t.item_b_id,
                   state="answered", answered_at=now) for t in tasks_])
    lower_wins = rng.random(len(pairs)) < 0.7  # the lower-numbered image is better
    Judgment.objects.bulk_create([
        Judgment(project=project, task=t, assignment=a, rater=rater, instruction_version=instructions,
                 left_item_id=t.item_a_id, right_item_id=t.item_b_id, choice="left" if won else "right",
                 winner_id=t.item_a_id if won else t.item_b_id, loser_id=t.item_b_id if won else t.item_a_id,
                 shown_at=now)
        for t, a, won in zip(tasks_, assignments, lower_wins, strict=True)])
    FitRun.objects.filter(project=project).delete()
    run = fit_runs.fit_run_request(project=project)
    tasks.fit_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    rows = selectors.leaderboard(fit=run)
    assert len(rows) == n
    assert all(r.se is not None and 0 < r.se < np.inf and r.ci_low < r.strength < r.ci_high for r in rows)
    strengths = {r.item_id: r.strength for r in rows}
    trend = np.corrcoef(np.arange(n), [strengths[item.pk] for item in items])[0, 1]
    assert trend < -0.3, trend  # the order the judgments follow comes out (lower-numbered images stronger)
