"""Calibration reports in the app: computed from judgments and metric scores, pages, API, permissions."""

import uuid

import numpy as np
import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotator import services as annotator_services
from ranking import tasks
from ranking.core import calibration as cal
from ranking.models import CalibrationReport, FitRun, Metric, MetricRun, MetricScore
from ranking.services import agreement_reports, calibration_reports, fit_runs
from tests.conftest import ready_rater
from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(researcher, monkeypatch):
    """8 images on 2 prompts with a true order; 10 raters judge every within-prompt pair (12 pairs);
    two metrics: 'good' follows the true order with a little noise, 'noise' does not."""
    sides = np.random.default_rng(1)
    monkeypatch.setattr("annotator.services.assignments.secrets.randbelow", lambda n: int(sides.integers(n)))
    project = annotator_services.project_create(owner=researcher, name="Calibrated", overlap=10)
    items = [ItemFactory(project=project, prompt=f"prompt {k % 2}") for k in range(8)]
    annotator_services.instruction_version_create(project=project, text="Choose.", created_by=researcher)
    annotator_services.tasks_generate_within_prompt(project=project, random_state=0)
    quality = {item.pk: -0.6 * k for k, item in enumerate(items)}  # item 0 best
    rng = np.random.default_rng(0)
    for _ in range(10):
        rater = ready_rater(project)
        while (a := annotator_services.assignment_next(rater=rater)) is not None:
            p_left = 1 / (1 + np.exp(-(quality[a.left_item_id] - quality[a.right_item_id])))
            choice = "tie" if rng.random() < 0.1 else ("left" if rng.random() < p_left else "right")
            annotator_services.judgment_create(rater=rater, assignment_id=a.pk, choice=choice,
                                               idempotency_key=uuid.uuid4(),
                                               instruction_version_id=rater.acknowledged_instruction_id)
    FitRun.objects.filter(project=project).delete()
    run = MetricRun.objects.create(project=project, source="imported", status="succeeded")
    good = Metric.objects.create(project=project, name="good", direction="higher", dimension="overall")
    noise = Metric.objects.create(project=project, name="noise", direction="lower", dimension="aesthetics")
    for item in items:
        MetricScore.objects.create(run=run, metric=good, item=item, value=quality[item.pk] + rng.normal(scale=0.1))
        MetricScore.objects.create(run=run, metric=noise, item=item, value=float(rng.normal()))
    return project, items


def test_report_ranks_the_metric_that_follows_the_raters_first_and_matches_the_core(study, client, researcher,
                                                                                    enqueued):
    project, _ = study
    client.force_login(researcher)
    page_url = reverse("ranking:calibration", args=[project.slug])
    assert "No calibration report yet" in client.get(page_url).content.decode()
    assert not CalibrationReport.objects.exists()  # a GET writes nothing
    assert client.post(reverse("ranking:calibration_compute", args=[project.slug])).status_code == 302
    (report,) = CalibrationReport.objects.all()
    assert report.status == "succeeded", report.error
    assert enqueued == []  # small: computed in the request
    rows = {m["name"]: m for m in report.result["metrics"]}
    assert rows["good"]["pairwise"]["headline"] > rows["noise"]["pairwise"]["headline"]
    assert report.result["n_judgments"] == 10 * 12
    # The stored accuracy is the core's on the same judgments (all images are scored).
    from annotator.models import Judgment

    judged = Judgment.objects.filter(project=project).order_by("id").values_list(
        "task__item_a_id", "task__item_b_id", "winner_id", "is_tie")
    score = {s.item_id: s.value for s in MetricScore.objects.filter(metric__name="good")}
    y = np.array([0 if t else (1 if w == a else -1) for a, b, w, t in judged])
    d = np.array([score[a] - score[b] for a, b, w, t in judged])
    assert rows["good"]["pairwise"]["accuracy"]["acc_eq"] == pytest.approx(cal.pairwise_accuracy(y, d))
    page = client.get(page_url).content.decode()
    assert f"Report #{report.pk}, computed" in page and 'id="metric-table"' in page
    assert page.index('href="#metric-good"') < page.index('href="#metric-noise"')  # sorted by accuracy
    assert "lower is better" in page  # the noise metric's direction is shown
    by_name = client.get(page_url + "?sort=name").content.decode()
    assert by_name.index('href="#metric-good"') < by_name.index('href="#metric-noise"')


def test_a_successful_fit_queues_an_automatic_report_and_the_datasheet_shows_it(study, client, researcher,
                                                                                enqueued,
                                                                                django_capture_on_commit_callbacks):
    project, _ = study
    run = fit_runs.fit_run_request(project=project)
    tasks.fit_run_execute(run.pk)
    (report,) = CalibrationReport.objects.filter(project=project)
    assert report.automatic and report.status == "queued"
    tasks.calibration_report_execute(report.pk)
    report.refresh_from_db()
    assert report.status == "succeeded" and report.result["fit_id"] == run.pk
    good = next(m for m in report.result["metrics"] if m["name"] == "good")
    assert good["signals"]["bt"]["tau_b"] > 0.5  # the metric ranks the images like the fit
    tasks.calibration_report_execute(report.pk)  # a second delivery changes nothing
    report.refresh_from_db()
    assert report.attempts == 1
    agreement_reports.agreement_report_compute_now(project=project)
    client.force_login(researcher)
    sheet = client.get(reverse("ranking_reports:datasheet", args=[project.slug])).content.decode()
    assert "Which automated metrics agree with these raters" in sheet and f"calibration report #{report.pk}" in sheet
    markdown = client.get(reverse("ranking_reports:datasheet_md", args=[project.slug])).content.decode()
    assert "| good v1 | overall |" in markdown


def test_without_metric_scores_a_fit_queues_no_report(researcher, enqueued):
    project = annotator_services.project_create(owner=researcher, name="No metrics", overlap=2)
    calibration_reports.calibration_report_after_new_data(project_id=project.pk)
    assert not CalibrationReport.objects.exists()


def test_permissions_on_page_compute_status_and_api(study, client, researcher, enqueued):
    project, _ = study
    report = calibration_reports.calibration_report_compute_now(project=project)
    page = reverse("ranking:calibration", args=[project.slug])
    compute = reverse("ranking:calibration_compute", args=[project.slug])
    status = reverse("ranking:calibration_report_status", args=[project.slug, report.pk])
    api_url = reverse("api_calibration", args=[project.slug])
    assert client.get(page).status_code == 302 and client.post(compute).status_code == 302  # to the login page
    assert CalibrationReport.objects.count() == 1
    outsider = UserFactory()
    client.force_login(outsider)
    assert client.get(page).status_code == 404 and client.get(status).status_code == 404
    assert client.post(compute).status_code == 404
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=outsider).key}")
    assert api.get(api_url).status_code == 404 and api.post(api_url).status_code == 404
    viewer = UserFactory()
    annotator_services.membership_set(project=project, user=viewer, role="viewer")
    client.force_login(viewer)
    assert client.get(page).status_code == 200 and "Recompute" not in client.get(page).content.decode()
    assert client.get(status).json()["status"] == "succeeded"
    assert client.post(compute).status_code == 403
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=viewer).key}")
    body = api.get(api_url).json()
    assert body["latest"]["id"] == report.pk and body["pending"] is None
    assert {m["name"] for m in body["latest"]["result"]["metrics"]} == {"good", "noise"}
    assert api.post(api_url).status_code == 403
    assert CalibrationReport.objects.count() == 1 and enqueued == []
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=researcher).key}")
    response = api.post(api_url)
    assert response.status_code == 202 and response.json()["status"] == "queued"
    other = annotator_services.project_create(owner=researcher, name="Other", overlap=1)
    client.force_login(researcher)
    assert client.get(reverse("ranking:calibration_report_status", args=[other.slug, report.pk])).status_code == 404


def test_task_name_is_stable():
    task = tasks.calibration_report_execute
    assert task.name == "ranking.calibration_report_execute"
    assert task.acks_late and task.reject_on_worker_lost and task.ignore_result and task.max_retries == 3


def test_an_import_of_scores_queues_an_automatic_report_in_its_transaction(study, enqueued,
                                                                           django_capture_on_commit_callbacks):
    import io

    from annotator.imports import Upload
    from ranking.services import metric_scores

    project, items = study
    data = "item,metric,value\n" + "".join(f"{item.pk},imported_metric,{k}\n" for k, item in enumerate(items))
    with django_capture_on_commit_callbacks(execute=True):
        metric_scores.metric_scores_import(project=project, create=True, upload=Upload(
            name="scores.csv", stream=io.BytesIO(data.encode()), size=len(data)))
    (report,) = CalibrationReport.objects.filter(project=project)
    assert report.automatic and report.status == "queued"
    assert ("ranking.calibration_report_execute", report.pk) in enqueued
