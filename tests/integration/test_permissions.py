"""Permission matrix: every forbidden access is tried and refused (403/404)."""

import uuid

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotator import services
from annotator.models import Judgment
from annotator.permissions import SESSION_RATERS
from tests.conftest import ready_rater
from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def rater_client(rater) -> APIClient:
    client = APIClient(enforce_csrf_checks=False)
    session = client.session
    session[SESSION_RATERS] = {str(rater.project_id): rater.pk}
    session.save()
    return client


RESEARCHER_ENDPOINTS = [
    ("get", "api_project", {}),
    ("patch", "api_project", {"name": "x"}),
    ("get", "api_items", {}),
    ("get", "api_instructions", {}),
    ("post", "api_instructions", {"text": "hijack"}),
    ("get", "api_tasks", {}),
    ("post", "api_tasks_generate", {"strategy": "within_prompt"}),
    ("get", "api_judgments", {}),
    ("get", "api_raters", {}),
    ("get", "api_progress", {}),
    ("get", "api_consent", {}),
]


@pytest.mark.parametrize(("method", "name", "body"), RESEARCHER_ENDPOINTS)
def test_researcher_of_another_project_gets_404(project, method, name, body):
    outsider = UserFactory()
    services.project_create(owner=outsider, name="Their own")
    response = getattr(token_client(outsider), method)(reverse(name, args=[project.slug]), body, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "project"


@pytest.mark.parametrize(("method", "name", "body"), RESEARCHER_ENDPOINTS)
def test_anonymous_gets_401(project, method, name, body):
    response = getattr(APIClient(), method)(reverse(name, args=[project.slug]), body, format="json")
    assert response.status_code in (401, 403)


@pytest.mark.parametrize(("method", "name", "body"), [e for e in RESEARCHER_ENDPOINTS if e[0] != "get"])
def test_viewer_cannot_change_the_project(project, method, name, body):
    viewer = UserFactory()
    services.membership_set(project=project, user=viewer, role="viewer")
    response = getattr(token_client(viewer), method)(reverse(name, args=[project.slug]), body, format="json")
    assert response.status_code == 403


def test_viewer_can_read(project):
    viewer = UserFactory()
    services.membership_set(project=project, user=viewer, role="viewer")
    assert token_client(viewer).get(reverse("api_progress", args=[project.slug])).status_code == 200


@pytest.mark.parametrize(("method", "name", "body"), RESEARCHER_ENDPOINTS)
def test_rater_session_cannot_reach_researcher_endpoints(project, rater, method, name, body):
    response = getattr(rater_client(rater), method)(reverse(name, args=[project.slug]), body, format="json")
    assert response.status_code in (401, 403, 404)


def test_researcher_pages_refuse_non_members(client, project):
    outsider = UserFactory()
    client.force_login(outsider)
    for name in ("annotator:project_detail", "annotator:items", "annotator:instructions", "annotator:tasks"):
        assert client.get(reverse(name, args=[project.slug])).status_code == 404
    item = project.items.first()
    assert client.get(reverse("annotator:item_image", args=[project.slug, item.pk])).status_code == 404


def test_viewer_cannot_post_on_pages(client, project):
    viewer = UserFactory()
    services.membership_set(project=project, user=viewer, role="viewer")
    client.force_login(viewer)
    response = client.post(reverse("annotator:instructions", args=[project.slug]), {"text": "changed"})
    assert response.status_code == 403
    assert project.instruction_versions.count() == 1


def test_rater_cannot_answer_another_raters_assignment(project, rater):
    other = ready_rater(project)
    theirs = services.assignment_next(rater=other)
    response = rater_client(rater).post(reverse("rater:api_judgments", args=[project.slug]), {
        "assignment": theirs.pk, "choice": "left", "idempotency_key": str(uuid.uuid4()),
        "instruction_version": rater.acknowledged_instruction_id}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "assignment"
    assert Judgment.objects.count() == 0


def test_rater_never_sees_others_answers(project, rater):
    other = ready_rater(project)
    a = services.assignment_next(rater=other)
    services.judgment_create(rater=other, assignment_id=a.pk, choice="left", idempotency_key=uuid.uuid4(),
                             instruction_version_id=other.acknowledged_instruction_id)
    body = rater_client(rater).get(reverse("rater:api_next", args=[project.slug])).json()
    text = str(body)
    assert "winner" not in text and "choice" not in text and other.public_id not in text


def test_rater_cannot_see_images_outside_their_assignments(project, rater):
    client = rater_client(rater)
    a = services.assignment_next(rater=rater)
    others = project.items.exclude(pk__in=[a.left_item_id, a.right_item_id])
    assert client.get(reverse("rater:image", args=[project.slug, a.left_item_id])).status_code == 200
    for item in others:
        assert client.get(reverse("rater:image", args=[project.slug, item.pk])).status_code == 404


def test_rater_of_one_project_cannot_use_another(project, rater, researcher):
    second = services.project_create(owner=researcher, name="Second")
    item = ItemFactory(project=second)
    client = rater_client(rater)
    assert client.get(reverse("rater:api_next", args=[second.slug])).status_code == 403
    assert client.get(reverse("rater:image", args=[second.slug, item.pk])).status_code == 404


def test_rater_api_requires_joining(project):
    response = APIClient().get(reverse("rater:api_next", args=[project.slug]))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_joined"


def test_rater_submit_requires_csrf(project, rater):
    client = APIClient(enforce_csrf_checks=True)
    session = client.session
    session[SESSION_RATERS] = {str(project.pk): rater.pk}
    session.save()
    a = services.assignment_next(rater=rater)
    response = client.post(reverse("rater:api_judgments", args=[project.slug]), {
        "assignment": a.pk, "choice": "left", "idempotency_key": str(uuid.uuid4()),
        "instruction_version": rater.acknowledged_instruction_id}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf"
    assert Judgment.objects.count() == 0
