"""A real Celery worker process (not eager mode) runs fits requested through the API.

The worker uses the same broker as the tests (Redis in CI via CELERY_BROKER_URL, otherwise the
filesystem transport) and the test database.
"""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotator import services as annotator_services
from ranking.models import FitRun, ItemScore
from ranking.tasks import fit_run_execute
from tests.conftest import ready_rater
from tests.factories import ItemFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def worker_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] or ""
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PREFLAB_VAR_DIR": str(settings.VAR_DIR),
        "DEBUG": "0",
    }
    with open(tmp_path / "worker.log", "w") as log:  # the worker keeps its own copy of the descriptor
        proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
                                 "--loglevel=INFO", "--without-heartbeat", "--without-gossip", "--without-mingle"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while "ready." not in (tmp_path / "worker.log").read_text():
        assert proc.poll() is None, (tmp_path / "worker.log").read_text()
        assert time.monotonic() < deadline, "the Celery worker did not start within 60 s"
        time.sleep(0.2)
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    print((tmp_path / "worker.log").read_text()[-3000:])


def wait_for(run_id: int, timeout: float = 90.0) -> FitRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = FitRun.objects.get(pk=run_id)
        if run.status in ("succeeded", "failed", "superseded"):
            return run
        time.sleep(0.3)
    raise AssertionError(f"fit {run_id} still {FitRun.objects.get(pk=run_id).status} after {timeout} s")


def test_fit_requested_through_api_runs_on_the_worker_once(worker, researcher, settings):
    settings.PREFLAB_AUTO_FIT_DELAY_S = 3600  # keep automatic fits out of the way of this test
    project = annotator_services.project_create(owner=researcher, name="Worker", overlap=3)
    for _ in range(4):
        ItemFactory(project=project, prompt="p")
    annotator_services.instruction_version_create(project=project, text="Choose.", created_by=researcher)
    annotator_services.tasks_generate_within_prompt(project=project)
    for _ in range(3):
        rater = ready_rater(project)
        while (a := annotator_services.assignment_next(rater=rater)) is not None:
            annotator_services.judgment_create(rater=rater, assignment_id=a.pk, choice="left",
                                               idempotency_key=uuid.uuid4(),
                                               instruction_version_id=rater.acknowledged_instruction_id)
    FitRun.objects.filter(project=project).update(status="superseded")

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=researcher).key}")
    response = api.post(reverse("api_fits", args=[project.slug]), {"model": "bt", "params": {"alpha": 0.05}},
                        format="json")
    assert response.status_code == 201
    run_id = response.json()["id"]
    fit_run_execute.delay(run_id)  # the same message a second time
    run = wait_for(run_id)
    assert run.status == "succeeded", run.error
    assert ItemScore.objects.filter(fit=run).count() == 4
    finished = run.finished_at

    # A sentinel fit queued after the duplicate: once it is done, the duplicate has been consumed.
    sentinel = api.post(reverse("api_fits", args=[project.slug]), {"model": "bt"}, format="json").json()["id"]
    assert wait_for(sentinel).status == "succeeded"
    run.refresh_from_db()
    assert run.finished_at == finished
    assert ItemScore.objects.filter(fit=run).count() == 4


def test_agreement_report_recomputed_from_the_page_runs_on_the_worker_once(worker, researcher, client, settings,
                                                                          monkeypatch):
    from ranking.models import AgreementReport
    from ranking.services import agreement_reports
    from ranking.tasks import agreement_report_execute

    settings.PREFLAB_AUTO_FIT_DELAY_S = 3600  # keep automatic fits out of the way of this test
    monkeypatch.setattr(agreement_reports, "SYNC_COMPUTE_LIMIT", 0)  # as a large project: on the worker
    project = annotator_services.project_create(owner=researcher, name="Worker report", overlap=3)
    for _ in range(4):
        ItemFactory(project=project, prompt="p")
    annotator_services.instruction_version_create(project=project, text="Choose.", created_by=researcher)
    annotator_services.tasks_generate_within_prompt(project=project)
    for _ in range(3):
        rater = ready_rater(project)
        while (a := annotator_services.assignment_next(rater=rater)) is not None:
            annotator_services.judgment_create(rater=rater, assignment_id=a.pk, choice="left",
                                               idempotency_key=uuid.uuid4(),
                                               instruction_version_id=rater.acknowledged_instruction_id)
    client.force_login(researcher)
    assert client.post(reverse("ranking_reports:agreement_recompute", args=[project.slug])).status_code == 302
    (report,) = AgreementReport.objects.filter(project=project)
    agreement_report_execute.delay(report.pk)  # the same message a second time
    status_url = reverse("ranking_reports:agreement_report_status", args=[project.slug, report.pk])
    deadline = time.monotonic() + 90
    while (status := client.get(status_url).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"report still {status['status']}"
        time.sleep(0.3)
    assert status["status"] == "succeeded" and status["progress"] == 1.0, status
    report.refresh_from_db()
    assert report.result["pairwise"]["n_judgments"] == 18
    page = client.get(reverse("ranking_reports:agreement", args=[project.slug])).content.decode()
    assert f"Report #{report.pk}, computed" in page
    assert AgreementReport.objects.filter(project=project).count() == 1
