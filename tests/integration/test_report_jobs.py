"""Stored agreement reports: the Celery task, idempotency, coalescing, cut-offs, pages and permissions."""

import json

import numpy as np
import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.urls import reverse

from annotator import services
from annotator.models import DEMOGRAPHIC_FIELDS, Judgment
from ranking import jobs, loaders, tasks
from ranking.core import pairwise
from ranking.core.ratings import OPINION_SORTS
from ranking.models import DEFAULT_ALPHA, AgreementReport
from ranking.services import agreement_reports
from ranking.services.agreement_reports import report_jsonable
from tests.factories import UserFactory
from tests.integration.test_reports import (
    datasheet_build,
    group_breakdown,
    judge_all,
    make_rater,
    new_project,
    noisy_bt,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch):
    """Report ids handed to the broker (the true boundary), instead of a real broker."""
    ids = []
    monkeypatch.setattr(jobs, "broker_send", lambda *, task_name, job_id, countdown=None: ids.append(job_id))
    return ids


@pytest.fixture
def judged(researcher):
    """6 images, 15 pairs; 12 raters in two expertise groups judge under a noisy BT model (with ties)."""
    project, items = new_project(researcher, 6, overlap=14)  # room for two more raters per pair
    rng = np.random.default_rng(3)
    theta = {item.pk: s for item, s in zip(items, np.linspace(-1.0, 1.0, len(items)))}
    bt = noisy_bt(theta, rng)
    for k in range(12):
        rater = make_rater(project, expertise="artist" if k % 2 else "layperson", country="FR" if k % 3 else "DE")
        judge_all(rater, lambda left, right: "tie" if rng.random() < 0.1 else bt(left, right))
    return project


def _claim(report):
    """What a first worker does with the report: take its lease (and nothing else yet)."""
    return jobs.job_claim(kind="agreement_report", job_id=report.pk, owner="worker-1")


def _request(project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return agreement_reports.agreement_report_request(project=project)


def test_task_stores_exactly_what_the_compute_functions_return(judged, client, researcher, enqueued,
                                                               django_capture_on_commit_callbacks):
    project = judged
    report = _request(project, django_capture_on_commit_callbacks)
    assert enqueued == [report.pk] and report.status == "queued"
    tasks.agreement_report_execute(report.pk)
    report.refresh_from_db()
    assert report.status == "succeeded", report.error
    assert report.progress == 1.0 and report.started_at <= report.finished_at
    assert report.cutoff_judgment_id == Judgment.objects.filter(project=project).latest("id").pk
    stored = report.result
    assert json.loads(json.dumps(stored, allow_nan=False)) == stored  # strict JSON, as PostgreSQL's jsonb wants

    # Section by section, the stored report is what the existing functions return, made JSON data.
    rows = loaders.pairwise_rows(project=project)
    names = loaders.item_names(project=project)
    assert stored["pairwise"] == report_jsonable(pairwise.pairwise_agreement(rows=rows))
    assert stored["pairwise"]["n_judgments"] == 12 * 15 and stored["pairwise"]["fleiss_kappa"]["value"] is not None
    for sort in OPINION_SORTS:
        assert stored["opinions"][sort] == report_jsonable(
            pairwise.pair_opinions(rows=rows, item_names=names, sort=sort))
    assert stored["quality"] == report_jsonable(
        pairwise.rater_quality(rows=rows, public_ids=loaders.public_ids(project=project), alpha=DEFAULT_ALPHA))
    for field in DEMOGRAPHIC_FIELDS:
        assert stored["groups"][field] == report_jsonable(group_breakdown(project, rows, field=field, item_names=names))
    assert stored["groups"]["expertise"]["lr_test"]["statistic"] is not None
    assert stored["rich"] == report_jsonable(agreement_reports.rich_agreement(project=project))

    # Pages and downloads read the stored report.
    client.force_login(researcher)
    page = client.get(reverse("ranking_reports:agreement", args=[project.slug]) + "?field=country").content.decode()
    assert f"Report #{report.pk}, computed" in page and "No new data since." in page and "Groups: Country" in page
    sheet = client.get(reverse("ranking_reports:datasheet_json", args=[project.slug])).json()
    direct = json.loads(json.dumps(datasheet_build(project), cls=DjangoJSONEncoder))
    assert sheet.pop("report")["id"] == report.pk
    assert sheet.pop("generated_at") and direct.pop("generated_at")
    assert sheet.pop("metric_agreement") is None  # no calibration report in this project
    assert sheet.pop("model_ranking") is None  # no BT fit of several source models in this project
    assert sheet == direct
    assert list(sheet["group_differences"]) == list(DEMOGRAPHIC_FIELDS)
    markdown = client.get(reverse("ranking_reports:datasheet_md", args=[project.slug])).content.decode()
    assert f"report #{report.pk}: judgments up to #{report.cutoff_judgment_id}" in markdown
    assert AgreementReport.objects.filter(project=project).count() == 1  # no page computed another


def test_second_delivery_is_a_no_op(judged, enqueued, django_capture_on_commit_callbacks):
    report = _request(judged, django_capture_on_commit_callbacks)
    tasks.agreement_report_execute(report.pk)
    report.refresh_from_db()
    finished, cutoff = report.finished_at, report.cutoff_judgment_id
    rater = make_rater(judged)  # new data after the report; a repeated message must not recompute
    assert judge_all(rater, lambda left, right: "left", limit=2) == 2
    tasks.agreement_report_execute(report.pk)
    report.refresh_from_db()
    assert (report.finished_at, report.cutoff_judgment_id, report.status) == (finished, cutoff, "succeeded")
    tasks.agreement_report_execute(987654)  # gone: nothing to do


def test_running_report_is_left_to_its_worker(judged, enqueued, django_capture_on_commit_callbacks):
    report = _request(judged, django_capture_on_commit_callbacks)
    assert _claim(report) is not None  # a first worker took it
    tasks.agreement_report_execute(report.pk)  # a duplicate delivery meanwhile: its lease is live
    report.refresh_from_db()
    assert report.status == "running" and report.result == {} and report.lease_owner == "worker-1"


def test_requests_coalesce_onto_the_queued_report(judged, enqueued, django_capture_on_commit_callbacks):
    first = _request(judged, django_capture_on_commit_callbacks)
    second = _request(judged, django_capture_on_commit_callbacks)
    assert second.pk == first.pk and enqueued == [first.pk]
    _claim(first)  # running now: its cut-off is fixed, so a new request queues a new report
    third = _request(judged, django_capture_on_commit_callbacks)
    assert third.pk != first.pk and enqueued == [first.pk, third.pk]
    assert AgreementReport.objects.filter(project=judged, status="queued").count() == 1


def test_report_uses_data_up_to_its_cutoff_and_the_page_counts_the_rest(judged, client, researcher, enqueued,
                                                                       monkeypatch,
                                                                       django_capture_on_commit_callbacks):
    report = _request(judged, django_capture_on_commit_callbacks)
    compute = agreement_reports.agreement_compute

    def late_data_then_compute(**kwargs):  # the claim fixed the cut-offs; then new judgments arrive
        assert judge_all(make_rater(judged), lambda left, right: "left", limit=3) == 3
        return compute(**kwargs)

    monkeypatch.setattr(agreement_reports, "agreement_compute", late_data_then_compute)
    tasks.agreement_report_execute(report.pk)
    report.refresh_from_db()
    assert report.result["pairwise"]["n_judgments"] == 12 * 15 == report.result["counts"]["judgments"]
    assert sum(v["n_judgments"] for v in report.result["instruction_versions"]) == 12 * 15
    client.force_login(researcher)
    page = client.get(reverse("ranking_reports:agreement", args=[judged.slug])).content.decode()
    assert "3 new judgments since this report." in page


def test_failure_is_recorded_with_its_reason(judged, enqueued, monkeypatch, client, researcher,
                                             django_capture_on_commit_callbacks):
    ok = agreement_reports.agreement_report_compute_now(project=judged)
    report = _request(judged, django_capture_on_commit_callbacks)

    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(agreement_reports, "agreement_compute", broken)
    with pytest.raises(RuntimeError):
        tasks.agreement_report_execute(report.pk)
    report.refresh_from_db()
    assert report.status == "failed" and report.error == "RuntimeError: disk on fire"
    client.force_login(researcher)
    page = client.get(reverse("ranking_reports:agreement", args=[judged.slug])).content.decode()
    assert f"Report #{report.pk} failed: RuntimeError: disk on fire" in page
    assert f"Report #{ok.pk}, computed" in page  # the last good report is still shown


def test_large_project_waits_for_the_worker_with_a_progress_bar(judged, client, researcher, monkeypatch, enqueued,
                                                                 django_capture_on_commit_callbacks):
    monkeypatch.setattr(agreement_reports, "SYNC_COMPUTE_LIMIT", 100)  # 180 judgments: "large"
    client.force_login(researcher)
    url = reverse("ranking_reports:agreement", args=[judged.slug])
    page = client.get(url).content.decode()
    assert "No agreement report yet." in page and ">Compute</button>" in page
    assert not AgreementReport.objects.exists()
    assert client.get(reverse("ranking_reports:datasheet_json", args=[judged.slug])).status_code == 404
    datasheet_url = reverse("ranking_reports:datasheet", args=[judged.slug])
    assert client.post(datasheet_url, {"limitations": "Students only."}).status_code == 302
    assert "Students only." in client.get(datasheet_url).content.decode()  # editable before any report
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("ranking_reports:agreement_recompute", args=[judged.slug]),
                               {"next": "datasheet"})
    assert response.status_code == 302 and response["Location"].endswith("/datasheet/")
    (report,) = AgreementReport.objects.all()
    assert enqueued == [report.pk]
    status_url = reverse("ranking_reports:agreement_report_status", args=[judged.slug, report.pk])
    page = client.get(url).content.decode()
    assert f'data-job-status-url="{status_url}"' in page and "is <span class=\"status\">queued</span>" in page
    assert client.get(status_url).json() == {"id": report.pk, "status": "queued", "progress": 0.0, "error": ""}
    tasks.agreement_report_execute(report.pk)
    assert client.get(status_url).json()["status"] == "succeeded"
    page = client.get(url).content.decode()
    assert f"Report #{report.pk}, computed" in page and "data-job-status-url" not in page
    sheet = client.get(reverse("ranking_reports:datasheet", args=[judged.slug])).content.decode()
    assert f"from report #{report.pk}" in sheet


def test_pages_never_write_and_a_small_project_computes_at_once_on_request(project, client, researcher, enqueued):
    client.force_login(researcher)
    for name in ("agreement", "datasheet"):
        page = client.get(reverse(f"ranking_reports:{name}", args=[project.slug])).content.decode()
        assert "No agreement report yet." in page
    assert client.get(reverse("ranking_reports:datasheet_json", args=[project.slug])).status_code == 404
    assert not AgreementReport.objects.exists()  # a GET writes nothing
    response = client.post(reverse("ranking_reports:agreement_recompute", args=[project.slug]),
                           {"next": "datasheet"})
    assert response.status_code == 302 and enqueued == []  # small: computed in the request, not queued
    (report,) = AgreementReport.objects.filter(project=project)
    assert report.status == "succeeded" and report.cutoff_judgment_id is None and report.attempts == 1
    page = client.get(reverse("ranking_reports:datasheet", args=[project.slug])).content.decode()
    assert f"from report #{report.pk}" in page
    client.get(reverse("ranking_reports:agreement", args=[project.slug]))
    assert AgreementReport.objects.filter(project=project).count() == 1


def test_permissions_on_status_and_recompute(project, researcher, client, enqueued,
                                            django_capture_on_commit_callbacks):
    report = agreement_reports.agreement_report_compute_now(project=project)
    status_url = reverse("ranking_reports:agreement_report_status", args=[project.slug, report.pk])
    recompute_url = reverse("ranking_reports:agreement_recompute", args=[project.slug])
    page_url = reverse("ranking_reports:agreement", args=[project.slug])
    assert client.get(status_url).status_code == 302  # anonymous: to the login page
    assert client.post(recompute_url).status_code == 302
    client.force_login(UserFactory())  # not a member
    assert client.get(page_url).status_code == 404
    assert client.get(status_url).status_code == 404
    assert client.post(recompute_url).status_code == 404
    viewer = UserFactory()
    services.membership_set(project=project, user=viewer, role="viewer")
    client.force_login(viewer)
    assert client.get(status_url).json()["status"] == "succeeded"
    assert client.post(recompute_url).status_code == 403
    assert "Recompute" not in client.get(page_url).content.decode()
    assert AgreementReport.objects.count() == 1 and enqueued == []
    other, _ = new_project(researcher, 2, overlap=1)  # a report id of another project is not found here
    other_report = agreement_reports.agreement_report_compute_now(project=other)
    client.force_login(researcher)
    assert client.get(reverse("ranking_reports:agreement_report_status",
                              args=[project.slug, other_report.pk])).status_code == 404
    assert client.get(recompute_url).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(recompute_url).status_code == 302
    assert enqueued == []  # a small project's report is computed in the request
    assert AgreementReport.objects.filter(project=project, status="succeeded").count() == 2


def test_task_name_is_stable():
    task = tasks.agreement_report_execute
    assert task.name == "ranking.agreement_report_execute"
    assert task.acks_late and task.reject_on_worker_lost and task.ignore_result
    assert task.max_retries == 3 and task.soft_time_limit < task.time_limit
