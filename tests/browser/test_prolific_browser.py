"""A researcher sets the Prolific webhook secret on the raters page, Prolific reports a returned participant
(a signed call to the live server), and the researcher releases the participant's places, in Chromium."""

import json
import time
import urllib.request
import uuid

import pytest

from annotator import services
from annotator.models import Rater
from annotator.services.prolific import prolific_signature
from tests.browser.conftest import log_in
from tests.conftest import ready_rater
from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec_browser_test_0123456789"


def signed_call(url: str, payload: dict, event_id: str) -> dict:
    body = json.dumps(payload).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Event-ID": event_id, "X-Prolific-Request-Timestamp": timestamp,
        "X-Prolific-Request-Signature": prolific_signature(secret=SECRET, timestamp=timestamp, body=body)})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_researcher_connects_the_webhook_and_releases_places(live_server, page, shots):
    owner = UserFactory()
    project = services.project_create(owner=owner, name="Crowd study", overlap=1)
    for _ in range(4):
        ItemFactory(project=project, prompt="a red apple")
    services.consent_version_create(project=project, text="You agree to take part.")
    services.instruction_version_create(project=project, text="Pick the better image.", created_by=owner)
    services.tasks_generate_within_prompt(project=project, random_state=0)
    gone = ready_rater(project, source="prolific", prolific_pid="5f0a1b2c3d4e5f6a7b8c9d0e")
    stays = ready_rater(project, source="prolific", prolific_pid="6a7b8c9d0e1f2a3b4c5d6e7f")
    for rater in (gone, stays):
        assignment = services.assignment_next(rater=rater)
        services.judgment_create(rater=rater, assignment_id=assignment.pk, choice="left",
                                 idempotency_key=uuid.uuid4(), response_time_ms=1800,
                                 instruction_version_id=rater.acknowledged_instruction_id)

    log_in(page, live_server, owner)
    page.goto(f"{live_server.url}/projects/{project.slug}/raters/")
    assert "No secret is set" in page.inner_text("#prolific-webhook-state")
    hook_url = page.input_value("#prolific-webhook-url")
    assert hook_url == f"{live_server.url}/api/hooks/prolific/{project.slug}/"
    page.fill("#prolific-secret", SECRET)
    page.click("#prolific form button[type=submit]:not([name])")
    page.wait_for_url(f"{live_server.url}/projects/{project.slug}/raters/#prolific")
    assert "A secret is set" in page.inner_text("#prolific-webhook-state")

    receipt = signed_call(hook_url, {"event_type": "submission.status.change", "resource_id": "sub-1",
                                     "participant_id": gone.prolific_pid, "status": "RETURNED"}, "evt-1")
    assert receipt["duplicate"] is False
    assert signed_call(hook_url, {"event_type": "submission.status.change", "participant_id": stays.prolific_pid,
                                  "status": "AWAITING REVIEW"}, "evt-2")["duplicate"] is False
    page.reload()
    assert "RETURNED" in page.inner_text("#prolific-statuses")
    assert gone.prolific_pid in page.inner_text("#prolific-events")
    page.screenshot(path=str(shots / "raters-prolific.png"), full_page=True)

    with page.expect_navigation():
        page.click("#release-by-status button")
    assert "Released the places of 1 participant (1 place given back" in page.content()
    page.screenshot(path=str(shots / "raters-prolific-released.png"), full_page=True)
    gone.refresh_from_db()
    stays.refresh_from_db()
    assert gone.places_released_at is not None and gone.excluded_at is not None
    assert stays.places_released_at is None and stays.excluded_at is None
    assert Rater.objects.filter(project=project, excluded_at__isnull=False).count() == 1
