"""The rater flow over HTTP with Django's test client: join, consent, demographics, instructions, tasks."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotator.exports import COLUMNS
from annotator.forms import DemographicsForm
from annotator.models import DEMOGRAPHIC_FIELDS, Demographics, Judgment, Rater, Task, demographic_field_label

pytestmark = pytest.mark.django_db


def join_url(project, **params):
    url = reverse("join", args=[project.slug, project.join_token])
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url


def walk_to_tasks(client, project):
    consent = project.consent_versions.first()
    assert client.post(reverse("rater:consent", args=[project.slug]),
                       {"decision": "agree", "consent_version": consent.pk}).status_code == 302
    assert client.post(reverse("rater:demographics", args=[project.slug]),
                       {"country": "prefer_not", "age_band": "prefer_not", "expertise": "artist"}).status_code == 302
    instruction = project.instruction_versions.first()
    response = client.post(reverse("rater:instructions", args=[project.slug]),
                           {"acknowledge": "yes", "instruction_version": instruction.pk})
    assert response.status_code == 302


def test_full_flow_to_completion(client, project):
    response = client.get(join_url(project, PROLIFIC_PID="p123", STUDY_ID="s1", SESSION_ID="x9"))
    assert response.status_code == 302
    rater = Rater.objects.get(prolific_pid="p123")
    assert (rater.study_id, rater.session_id, rater.source) == ("s1", "x9", "prolific")
    assert client.get(reverse("rater:flow", args=[project.slug])).url.endswith("/consent/")
    walk_to_tasks(client, project)
    assert Demographics.objects.get(rater=rater).expertise == "artist"
    for _ in range(3):  # overlap 2 over 6 tasks: this rater may do all 6
        body = client.get(reverse("rater:api_next", args=[project.slug])).json()
        assert body["status"] == "task"
        response = client.post(reverse("rater:api_judgments", args=[project.slug]), {
            "assignment": body["assignment"]["id"], "choice": "right", "idempotency_key": str(uuid.uuid4()),
            "instruction_version": body["instruction_version"], "response_time_ms": 900,
        }, content_type="application/json")
        assert response.status_code == 201, response.content
    assert Judgment.objects.filter(rater=rater).count() == 3


def test_same_prolific_pid_resumes(client, project):
    client.get(join_url(project, PROLIFIC_PID="same"))
    other_browser = type(client)()
    other_browser.get(join_url(project, PROLIFIC_PID="same"))
    assert Rater.objects.filter(prolific_pid="same").count() == 1


def test_bad_join_token_is_refused(client, project):
    response = client.get(reverse("join", args=[project.slug, "wrong-token"]))
    assert response.status_code == 404
    assert Rater.objects.count() == 0


def test_bad_prolific_id_is_refused(client, project):
    response = client.get(join_url(project, PROLIFIC_PID="<script>"))
    assert response.status_code == 400
    assert Rater.objects.count() == 0


def test_unacknowledged_instructions_block_tasks(client, project):
    client.get(join_url(project))
    response = client.post(reverse("rater:instructions", args=[project.slug]),
                           {"instruction_version": project.instruction_versions.first().pk})
    assert response.status_code == 200
    assert b"Please confirm" in response.content
    body = client.get(reverse("rater:api_next", args=[project.slug])).json()
    assert body == {"status": "blocked", "step": "consent"}


def test_submit_returns_named_field_errors(client, project):
    client.get(join_url(project))
    walk_to_tasks(client, project)
    body = client.get(reverse("rater:api_next", args=[project.slug])).json()
    response = client.post(reverse("rater:api_judgments", args=[project.slug]), {
        "assignment": body["assignment"]["id"], "choice": "sideways", "idempotency_key": str(uuid.uuid4()),
        "instruction_version": body["instruction_version"]}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "choice"
    response = client.post(reverse("rater:api_judgments", args=[project.slug]), {
        "assignment": body["assignment"]["id"], "choice": "left",
        "instruction_version": body["instruction_version"]}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "idempotency_key"
    assert Judgment.objects.count() == 0


def test_completion_page_shows_code(client, project):
    project.tasks_per_rater = 1
    project.save(update_fields=["tasks_per_rater"])
    client.get(join_url(project))
    walk_to_tasks(client, project)
    body = client.get(reverse("rater:api_next", args=[project.slug])).json()
    client.post(reverse("rater:api_judgments", args=[project.slug]), {
        "assignment": body["assignment"]["id"], "choice": "left", "idempotency_key": str(uuid.uuid4()),
        "instruction_version": body["instruction_version"]}, content_type="application/json")
    assert client.get(reverse("rater:api_next", args=[project.slug])).json()["status"] == "done"
    page = client.get(reverse("rater:done", args=[project.slug]))
    assert project.completion_code in page.content.decode()


def test_completion_is_recorded_by_the_last_answer(client, project):
    project.tasks_per_rater = 1
    project.save(update_fields=["tasks_per_rater"])
    client.get(join_url(project))
    walk_to_tasks(client, project)
    body = client.get(reverse("rater:api_next", args=[project.slug])).json()
    assert Rater.objects.get().completed_at is None
    response = client.post(reverse("rater:api_judgments", args=[project.slug]), {
        "assignment": body["assignment"]["id"], "choice": "left", "idempotency_key": str(uuid.uuid4()),
        "instruction_version": body["instruction_version"]}, content_type="application/json")
    assert response.json()["next"]["status"] == "done"
    completed_at = Rater.objects.get().completed_at
    assert completed_at is not None
    assert project.completion_code in client.get(reverse("rater:done", args=[project.slug])).content.decode()
    assert Rater.objects.get().completed_at == completed_at


def test_the_rater_pages_write_nothing_on_get(client, project):
    """GETs hand out the open assignment at most; the done page shows the code and records nothing."""
    project.tasks_per_rater = 1
    project.save(update_fields=["tasks_per_rater"])
    client.get(join_url(project))
    walk_to_tasks(client, project)
    body = client.get(reverse("rater:api_next", args=[project.slug])).json()
    client.post(reverse("rater:api_judgments", args=[project.slug]), {  # one answer earns the completion code
        "assignment": body["assignment"]["id"], "choice": "left", "idempotency_key": str(uuid.uuid4()),
        "instruction_version": body["instruction_version"]}, content_type="application/json")
    Task.objects.update(n_assigned=project.overlap)  # other raters hold every slot: nothing left for this one
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("rater:api_next", args=[project.slug])).json()["status"] == "done"
        assert client.get(reverse("rater:task", args=[project.slug])).url == reverse("rater:done", args=[project.slug])
        assert project.completion_code in client.get(reverse("rater:done", args=[project.slug])).content.decode()
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert writes == []


def test_demographic_fields_have_one_definition():
    assert DEMOGRAPHIC_FIELDS == ("country", "languages", "age_band", "gender", "expertise", "colour_vision",
                                  "device")
    assert [demographic_field_label(f) for f in DEMOGRAPHIC_FIELDS] == [
        "Country", "Languages", "Age band", "Gender", "Expertise", "Colour vision", "Device"]
    with pytest.raises(ValueError, match="not a demographic field"):
        demographic_field_label("rater")
    assert tuple(DemographicsForm().fields) == DEMOGRAPHIC_FIELDS
    assert tuple(name for name, _, _ in COLUMNS if name.startswith("rater_")) == tuple(
        f"rater_{f}" for f in DEMOGRAPHIC_FIELDS)


def test_completion_redirect(client, project):
    project.tasks_per_rater = 1
    project.completion_redirect_url = "https://platform.example/submissions/complete"
    project.save(update_fields=["tasks_per_rater", "completion_redirect_url"])
    client.get(join_url(project))
    walk_to_tasks(client, project)
    body = client.get(reverse("rater:api_next", args=[project.slug])).json()
    client.post(reverse("rater:api_judgments", args=[project.slug]), {
        "assignment": body["assignment"]["id"], "choice": "left", "idempotency_key": str(uuid.uuid4()),
        "instruction_version": body["instruction_version"]}, content_type="application/json")
    response = client.get(reverse("rater:done", args=[project.slug]))
    assert response.status_code == 302
    assert response.url == f"https://platform.example/submissions/complete?cc={project.completion_code}"


def test_script_in_instructions_is_neutralised(client, project, researcher):
    from annotator import services

    services.instruction_version_create(project=project, text="Hi <script>alert(1)</script> **bold** "
                                        "[x](javascript:alert(2))", created_by=researcher)
    client.get(join_url(project))
    page = client.get(reverse("rater:instructions", args=[project.slug])).content.decode()
    assert "<script>alert(1)" not in page
    assert "javascript:" not in page
    assert "<strong>bold</strong>" in page


def test_submit_acknowledgement_carries_the_next_task(client, project):
    client.get(join_url(project))
    walk_to_tasks(client, project)
    body = client.get(reverse("rater:api_next", args=[project.slug])).json()
    answer = {"assignment": body["assignment"]["id"], "choice": "left", "idempotency_key": str(uuid.uuid4()),
              "instruction_version": body["instruction_version"]}
    first = client.post(reverse("rater:api_judgments", args=[project.slug]), answer,
                        content_type="application/json")
    assert first.status_code == 201
    following = first.json()["next"]
    assert following["status"] == "task" and following["assignment"]["id"] != body["assignment"]["id"]
    assert following["progress"]["done"] == 1
    replay = client.post(reverse("rater:api_judgments", args=[project.slug]), answer,
                         content_type="application/json")
    assert replay.status_code == 200
    assert replay.json()["next"]["assignment"]["id"] == following["assignment"]["id"]  # the same open task
    assert Judgment.objects.count() == 1
