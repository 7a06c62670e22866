"""Prolific: the signed, deduplicated webhook of submission status changes, and releasing the places of
participants who returned, timed out or were rejected."""

import json
import time
import uuid
from types import SimpleNamespace

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotator import services
from annotator.errors import InvalidInput
from annotator.models import Assignment, AssignmentState, ProlificEvent, Rater, RaterExclusion, Task
from annotator.services.prolific import (
    prolific_signature,
    rater_places_release,
    raters_places_release,
    raters_releasable,
)
from ranking import loaders
from tests.conftest import ready_rater
from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET = "whsec_0123456789abcdef"


@pytest.fixture
def study(project):
    services.project_update(project=project, prolific_webhook_secret=SECRET)
    return project


def crowd_rater(project, pid: str) -> Rater:
    return ready_rater(project, source="prolific", prolific_pid=pid)


def answer_all(rater, n: int) -> None:
    for _ in range(n):
        assignment = services.assignment_next(rater=rater)
        assert assignment is not None
        services.judgment_create(rater=rater, assignment_id=assignment.pk, choice="left",
                                 idempotency_key=uuid.uuid4(), response_time_ms=2000,
                                 instruction_version_id=rater.acknowledged_instruction_id)
        rater.refresh_from_db()


def call(project, payload, *, event_id="evt-1", secret=SECRET, timestamp=None, body=None, signature=None):
    body = json.dumps(payload).encode() if body is None else body
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    signature = prolific_signature(secret=secret, timestamp=timestamp, body=body) if signature is None else signature
    headers = {"X-Prolific-Request-Signature": signature, "X-Prolific-Request-Timestamp": timestamp,
               "X-Event-ID": event_id}
    return APIClient().post(reverse("api_prolific_webhook", args=[project.slug]), data=body,
                            content_type="application/json", headers=headers)


def status_change(pid: str, status: str) -> dict:
    return {"event_type": "submission.status.change", "resource_id": "sub-" + pid, "participant_id": pid,
            "status": status}


def test_signature_is_base64_hmac_sha256_of_timestamp_and_body():
    # worked by hand: HMAC-SHA256 of key "key" over "1700000000{}", base64
    import base64
    import hashlib
    import hmac
    expected = base64.b64encode(hmac.new(b"key", b"1700000000{}", hashlib.sha256).digest()).decode()
    assert prolific_signature(secret="key", timestamp="1700000000", body=b"{}") == expected
    assert prolific_signature(secret="key", timestamp="1700000001", body=b"{}") != expected


def test_a_signed_status_change_is_recorded_on_the_rater(study):
    rater = crowd_rater(study, "PID_A")
    response = call(study, status_change("PID_A", "RETURNED"))
    assert response.status_code == 200, response.content
    assert response.json()["duplicate"] is False
    assert "RETURNED recorded" in response.json()["outcome"]
    rater.refresh_from_db()
    assert rater.crowd_status == "RETURNED" and rater.crowd_status_at is not None
    event = ProlificEvent.objects.get(project=study, event_id="evt-1")
    assert event.rater_id == rater.pk and event.status == "RETURNED" and event.payload["participant_id"] == "PID_A"


def test_a_retried_event_is_applied_once(study):
    rater = crowd_rater(study, "PID_A")
    assert call(study, status_change("PID_A", "RETURNED")).status_code == 200
    # the same event id again (Prolific retries), even with another body: answered as a duplicate, nothing changes
    again = call(study, status_change("PID_A", "APPROVED"))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    rater.refresh_from_db()
    assert rater.crowd_status == "RETURNED"
    assert ProlificEvent.objects.filter(project=study).count() == 1
    # a new event id is a new event
    assert call(study, status_change("PID_A", "APPROVED"), event_id="evt-2").json()["duplicate"] is False
    rater.refresh_from_db()
    assert rater.crowd_status == "APPROVED"


def test_a_captured_call_resent_under_a_new_event_id_is_a_duplicate(study):
    """The signature covers timestamp + body, not X-Event-ID: the same signed request under another id is a
    replay (within the 5-minute window) and changes nothing."""
    rater = crowd_rater(study, "PID_A")
    timestamp = str(int(time.time()))
    assert call(study, status_change("PID_A", "APPROVED"), timestamp=timestamp).json()["duplicate"] is False
    assert call(study, status_change("PID_A", "RETURNED"), event_id="evt-2").json()["duplicate"] is False
    replay = call(study, status_change("PID_A", "APPROVED"), timestamp=timestamp, event_id="evt-forged")
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    rater.refresh_from_db()
    assert rater.crowd_status == "RETURNED"
    assert not ProlificEvent.objects.filter(event_id="evt-forged").exists()


@pytest.mark.parametrize("tamper", ["wrong_secret", "body_changed", "no_signature", "stale", "future", "bad_ts"])
def test_unsigned_tampered_or_replayed_calls_are_refused_and_nothing_is_stored(study, tamper):
    rater = crowd_rater(study, "PID_A")
    payload = status_change("PID_A", "RETURNED")
    body = json.dumps(payload).encode()
    now = int(time.time())
    kwargs = {
        "wrong_secret": {"secret": "another_secret_0123456789"},
        "body_changed": {"signature": prolific_signature(secret=SECRET, timestamp=str(now), body=body + b" "),
                         "timestamp": str(now)},
        "no_signature": {"signature": ""},
        "stale": {"timestamp": str(now - 301)},
        "future": {"timestamp": str(now + 301)},
        "bad_ts": {"timestamp": "yesterday"},
    }[tamper]
    response = call(study, payload, body=body, **kwargs)
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] in {"signature_invalid", "signature_missing", "signature_stale"}
    assert error["message"]
    assert not ProlificEvent.objects.exists()
    rater.refresh_from_db()
    assert rater.crowd_status == ""


def test_a_project_without_a_secret_refuses_every_call(project):
    crowd_rater(project, "PID_A")
    response = call(project, status_change("PID_A", "RETURNED"), secret="")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "signature_invalid"
    assert not ProlificEvent.objects.exists()


def test_the_webhook_does_not_tell_which_projects_exist_or_take_calls(study):
    """A signed call for a slug no project has, for a project without a secret and for a project whose secret
    it was not signed with get the same answer: 403, the same code and the same words."""
    unhooked = services.project_create(owner=study.owner, name="No webhook")
    answers = [call(study, status_change("PID_A", "RETURNED"), secret="another_secret_0123456789"),
               call(unhooked, status_change("PID_A", "RETURNED")),
               call(SimpleNamespace(slug="no-such-project"), status_change("PID_A", "RETURNED"))]
    assert not unhooked.prolific_webhook_secret and study.prolific_webhook_secret
    assert [r.status_code for r in answers] == [403, 403, 403]
    assert answers[0].json() == answers[1].json() == answers[2].json()
    assert answers[0].json()["error"]["code"] == "signature_invalid"
    assert not ProlificEvent.objects.exists()


@pytest.mark.parametrize("body,field", [(b"not json", "body"), (b"[1, 2]", "body"),
                                        (json.dumps({"event_type": "x", "status": 5}).encode(), "status")])
def test_a_signed_but_malformed_body_is_400_naming_the_problem(study, body, field):
    response = call(study, None, body=body)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert not ProlificEvent.objects.exists()


def test_a_missing_event_id_is_400(study):
    response = call(study, status_change("PID_A", "RETURNED"), event_id="")
    assert response.status_code == 400 and response.json()["error"]["field"] == "X-Event-ID"


def test_unknown_participants_and_other_events_are_stored_and_change_nothing(study):
    rater = crowd_rater(study, "PID_A")
    r1 = call(study, status_change("PID_NOBODY", "RETURNED"), event_id="e1")
    r2 = call(study, {"event_type": "study.status.change", "status": "COMPLETED"}, event_id="e2")
    assert r1.status_code == r2.status_code == 200
    assert "no rater" in r1.json()["outcome"] and "ignored" in r2.json()["outcome"]
    rater.refresh_from_db()
    assert rater.crowd_status == ""
    assert ProlificEvent.objects.filter(project=study).count() == 2


def test_a_participant_of_another_project_is_not_touched(study, researcher):
    other = services.project_create(owner=researcher, name="Other")
    stranger = Rater.objects.create(project=other, source="prolific", prolific_pid="PID_A", public_id="r-other")
    call(study, status_change("PID_A", "RETURNED"))
    stranger.refresh_from_db()
    assert stranger.crowd_status == ""


def test_releasing_gives_back_open_and_answered_places_and_excludes_the_participant(study, researcher):
    gone = crowd_rater(study, "PID_GONE")
    answer_all(gone, 2)
    open_assignment = services.assignment_next(rater=gone)
    assert open_assignment is not None
    held = list(Assignment.objects.filter(rater=gone).values_list("task_id", flat=True))
    before = dict(Task.objects.filter(pk__in=held).values_list("pk", "n_assigned"))
    call(study, status_change("PID_GONE", "RETURNED"))
    assert list(raters_releasable(project=study).values_list("pk", flat=True)) == [gone.pk]

    result = raters_places_release(project=study, by_user=researcher)
    assert result == {"raters": 1, "places": 3, "unknown": [], "already": 0}
    after = dict(Task.objects.filter(pk__in=held).values_list("pk", "n_assigned"))
    assert all(after[pk] == before[pk] - 1 for pk in held)
    open_assignment.refresh_from_db()
    assert open_assignment.state == AssignmentState.EXPIRED
    gone.refresh_from_db()
    assert gone.places_released_at is not None and gone.excluded_at is not None
    assert "RETURNED" in gone.excluded_reason
    assert RaterExclusion.objects.filter(rater=gone, action="exclude", created_by=researcher).count() == 1
    # their answers stay stored but are left out of fits
    assert gone.judgments.count() == 2
    assert not loaders.judgments_upto(project=study).filter(rater=gone).exists()
    # the places are handed to someone else; the released participant gets nothing more
    assert services.assignment_next(rater=gone) is None
    # releasing again does nothing
    assert raters_places_release(project=study, by_user=researcher)["raters"] == 0
    assert rater_places_release(rater=gone, by_user=researcher) == 0
    assert RaterExclusion.objects.filter(rater=gone).count() == 1


def test_a_released_place_goes_to_the_next_rater(researcher):
    # one pair, overlap 1: once the participant who returned holds it, a newcomer finds nothing, until release
    project = services.project_create(owner=researcher, name="One pair", overlap=1)
    for _ in range(2):
        ItemFactory(project=project, prompt="a cat")
    services.consent_version_create(project=project, text="You agree.")
    services.instruction_version_create(project=project, text="Pick one.", created_by=researcher)
    services.tasks_generate_within_prompt(project=project, random_state=0)
    gone = crowd_rater(project, "PID_GONE")
    answer_all(gone, 1)
    newcomer = crowd_rater(project, "PID_NEW")
    assert services.assignment_next(rater=newcomer) is None
    result = raters_places_release(project=project, by_user=researcher, participant_ids=["PID_GONE", "PID_NONE"])
    assert result == {"raters": 1, "places": 1, "unknown": ["PID_NONE"], "already": 0}
    assert services.assignment_next(rater=newcomer) is not None


def test_release_by_ids_refuses_an_empty_list(study, researcher):
    with pytest.raises(InvalidInput) as error:
        raters_places_release(project=study, by_user=researcher, participant_ids=["  ", ""])
    assert error.value.field == "participant_ids"


def test_the_raters_page_shows_the_webhook_and_releases_by_status(client, study, researcher):
    gone = crowd_rater(study, "PID_GONE")
    answer_all(gone, 1)
    call(study, status_change("PID_GONE", "TIMED-OUT"))
    client.force_login(researcher)
    page = client.get(reverse("annotator:raters", args=[study.slug]))
    html = page.content.decode()
    assert page.status_code == 200
    assert f"/api/hooks/prolific/{study.slug}/" in html and "A secret is set" in html
    assert SECRET not in html  # the secret is never shown back
    assert "TIMED-OUT" in html and "Release the places of 1 participant " in html
    response = client.post(reverse("annotator:places_release", args=[study.slug]), {"by_status": "1"}, follow=True)
    assert response.status_code == 200
    assert "Released the places of 1 participant" in response.content.decode()
    gone.refresh_from_db()
    assert gone.places_released_at is not None


def test_the_raters_page_sets_and_clears_the_secret(client, project, researcher):
    client.force_login(researcher)
    url = reverse("annotator:prolific_settings", args=[project.slug])
    short = client.post(url, {"prolific_webhook_secret": "short"})
    assert short.status_code == 400 and "16–128" in short.content.decode()
    project.refresh_from_db()
    assert project.prolific_webhook_secret == ""
    assert client.post(url, {"prolific_webhook_secret": SECRET}).status_code == 302
    project.refresh_from_db()
    assert project.prolific_webhook_secret == SECRET
    assert client.post(url, {"clear": "1"}).status_code == 302
    project.refresh_from_db()
    assert project.prolific_webhook_secret == ""


def test_the_api_takes_the_secret_but_never_returns_it(project, researcher):
    api = APIClient()
    api.force_authenticate(researcher)
    response = api.patch(reverse("api_project", args=[project.slug]), {"prolific_webhook_secret": SECRET},
                         format="json")
    assert response.status_code == 200
    assert "prolific_webhook_secret" not in response.json()
    assert response.json()["prolific_webhook_configured"] is True
    bad = api.patch(reverse("api_project", args=[project.slug]), {"prolific_webhook_secret": "has space in it x"},
                    format="json")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "prolific_webhook_secret"


@pytest.mark.parametrize("who", ["viewer", "stranger", "anonymous"])
def test_only_researchers_set_the_secret_or_release_places(client, study, researcher, who):
    gone = crowd_rater(study, "PID_GONE")
    answer_all(gone, 1)
    call(study, status_change("PID_GONE", "REJECTED"))
    if who == "viewer":
        viewer = UserFactory()
        services.membership_set(project=study, user=viewer, role="viewer")
        client.force_login(viewer)
        page = client.get(reverse("annotator:raters", args=[study.slug])).content.decode()
        assert "Release places" not in page and "/api/hooks/prolific/" not in page
    elif who == "stranger":
        client.force_login(UserFactory())
    release = client.post(reverse("annotator:places_release", args=[study.slug]), {"by_status": "1"})
    secret = client.post(reverse("annotator:prolific_settings", args=[study.slug]),
                         {"prolific_webhook_secret": "attacker_secret_0123456789"})
    expected = {"viewer": 403, "stranger": 404, "anonymous": 302}[who]
    assert release.status_code == secret.status_code == expected
    gone.refresh_from_db()
    study.refresh_from_db()
    assert gone.places_released_at is None and gone.excluded_at is None
    assert study.prolific_webhook_secret == SECRET
