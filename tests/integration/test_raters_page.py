"""The raters page and its CSV: pseudonymous ids, crowd ids (researchers only), answers, time spent."""

import csv
import io
import uuid

import pytest
from django.urls import reverse

from annotator import selectors, services
from annotator.views import RATER_CSV_COLUMNS
from tests.conftest import ready_rater
from tests.factories import ItemFactory, RaterFactory, UserFactory
from tests.integration.test_rater_flow import join_url

pytestmark = pytest.mark.django_db


def answer_n(rater, n, response_time_ms=1500):
    for _ in range(n):
        assignment = services.assignment_next(rater=rater)
        services.judgment_create(rater=rater, assignment_id=assignment.pk, choice="left",
                                 idempotency_key=uuid.uuid4(), response_time_ms=response_time_ms,
                                 instruction_version_id=rater.acknowledged_instruction_id)
        rater.refresh_from_db()


@pytest.fixture
def crowd(project):
    """A Prolific rater with two answers (1.5 s each), an invited rater who declined consent."""
    worker = ready_rater(project, prolific_pid="PID0001", study_id="STUDY9", session_id="SESS3", source="prolific")
    answer_n(worker, 2)
    decliner = RaterFactory(project=project)
    services.rater_consent_decline(rater=decliner, consent_version_id=project.consent_versions.get().pk)
    return worker, decliner


def csv_rows(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_researcher_sees_every_rater_with_crowd_ids_answers_and_time(client, researcher, project, crowd):
    worker, decliner = crowd
    client.force_login(researcher)
    response = client.get(reverse("annotator:raters", args=[project.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    for text in (worker.public_id, "PID0001", "STUDY9", "SESS3", decliner.public_id, "declined consent", "3.0 s"):
        assert text in html
    rows = {r.public_id: r for r in response.context["rows"]}
    assert rows[worker.public_id].n_answers == 2 and rows[worker.public_id].time_on_tasks_s == 3.0
    assert rows[worker.public_id].elapsed_s is not None and rows[worker.public_id].status == "answering"
    assert rows[decliner.public_id].status == "declined" and rows[decliner.public_id].elapsed_s is None


def test_the_csv_lists_every_rater_for_payment_decisions(client, researcher, project, crowd):
    worker, decliner = crowd
    client.force_login(researcher)
    response = client.get(reverse("annotator:raters_csv", args=[project.slug]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="{project.slug}-raters.csv"' in response["Content-Disposition"]
    rows = csv_rows(response)
    assert tuple(rows[0]) == RATER_CSV_COLUMNS
    by_id = {r["rater"]: r for r in rows}
    assert set(by_id) == {worker.public_id, decliner.public_id}
    mine = by_id[worker.public_id]
    assert (mine["prolific_pid"], mine["study_id"], mine["session_id"]) == ("PID0001", "STUDY9", "SESS3")
    assert (mine["answers"], mine["time_on_tasks_s"], mine["decision"], mine["bonus"]) == ("2", "3.0", "", "")
    assert by_id[decliner.public_id]["status"] == "declined" and by_id[decliner.public_id]["consent_declined_at"]


def test_time_on_tasks_adds_up_annotations_too(researcher):
    project = services.project_create(owner=researcher, name="Both kinds", overlap=1)
    for _ in range(2):
        ItemFactory(project=project, prompt="a red apple")
    services.consent_version_create(project=project, text="ok")
    services.instruction_version_create(project=project, text="go", created_by=researcher)
    services.tasks_generate_within_prompt(project=project)
    services.project_feedback_update(project=project, checklist=[{"id": "q", "question": "ok?"}])
    services.tasks_generate_single(project=project, kind="checklist")
    rater = ready_rater(project)
    while (a := services.assignment_next(rater=rater)) is not None:
        if a.task.kind == "pairwise":
            services.judgment_create(rater=rater, assignment_id=a.pk, choice="left", idempotency_key=uuid.uuid4(),
                                     response_time_ms=1000, instruction_version_id=rater.acknowledged_instruction_id)
        else:
            services.annotation_create(rater=rater, assignment_id=a.pk, idempotency_key=uuid.uuid4(),
                                       checklist={"q": True}, response_time_ms=250,
                                       instruction_version_id=rater.acknowledged_instruction_id)
        rater.refresh_from_db()
    (row,) = selectors.rater_rows(raters=[rater])
    assert row.n_answers == 3 and row.time_on_tasks_s == 1.5


def test_search_finds_a_rater_by_crowd_id(client, researcher, project, crowd):
    worker, _ = crowd
    client.force_login(researcher)
    page = client.get(reverse("annotator:raters", args=[project.slug]), {"q": "PID0001"})
    assert [r.public_id for r in page.context["rows"]] == [worker.public_id]
    none = client.get(reverse("annotator:raters", args=[project.slug]), {"q": "nobody"})
    assert none.context["rows"] == [] and "No rater matches" in none.content.decode()


def test_a_rater_who_joined_by_crowd_link_is_listed(client, researcher, project):
    client.get(join_url(project, PROLIFIC_PID="PIDX", STUDY_ID="S1", SESSION_ID="Z2"))
    client.force_login(researcher)
    assert "PIDX" in client.get(reverse("annotator:raters", args=[project.slug])).content.decode()


def test_viewers_see_raters_but_not_crowd_ids_or_the_csv(client, project, crowd):
    worker, _ = crowd
    viewer = UserFactory()
    services.membership_set(project=project, user=viewer, role="viewer")
    client.force_login(viewer)
    page = client.get(reverse("annotator:raters", args=[project.slug]))
    assert page.status_code == 200
    html = page.content.decode()
    assert worker.public_id in html
    assert "PID0001" not in html and "STUDY9" not in html and "raters.csv" not in html
    assert page.context["rows"][0].n_answers == 2
    assert client.get(reverse("annotator:raters", args=[project.slug]), {"q": "PID0001"}).context["rows"] == []
    assert client.get(reverse("annotator:raters_csv", args=[project.slug])).status_code == 403


def test_raters_pages_refuse_non_members_and_anonymous_users(client, project, crowd):
    for name in ("annotator:raters", "annotator:raters_csv"):
        response = client.get(reverse(name, args=[project.slug]))
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
    client.force_login(UserFactory())
    for name in ("annotator:raters", "annotator:raters_csv"):
        assert client.get(reverse(name, args=[project.slug])).status_code == 404


def test_a_rater_session_cannot_see_the_raters_page(client, project, crowd):
    client.get(join_url(project))  # an anonymous rater's session
    response = client.get(reverse("annotator:raters", args=[project.slug]))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
