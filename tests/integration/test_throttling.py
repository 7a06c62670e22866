"""Joining and submitting are rate-limited per client / per rater."""

import uuid

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from annotator.models import Judgment, Rater
from tests.integration.test_rater_flow import join_url, walk_to_tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def tight_rates(monkeypatch):
    cache.clear()
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES",
                        {**api_settings.DEFAULT_THROTTLE_RATES, "join": "2/minute", "judgment_submit": "2/minute"})
    yield
    cache.clear()


def test_join_is_throttled(client, project, tight_rates):
    for i in range(2):
        assert client.get(join_url(project, PROLIFIC_PID=f"p{i}")).status_code == 302
    response = client.get(join_url(project, PROLIFIC_PID="p3"))
    assert response.status_code == 429
    assert Rater.objects.count() == 2


def test_submit_is_throttled_per_rater(client, project, tight_rates):
    client.get(join_url(project))
    walk_to_tasks(client, project)
    statuses = []
    for _ in range(3):
        body = client.get(reverse("rater:api_next", args=[project.slug])).json()
        response = client.post(reverse("rater:api_judgments", args=[project.slug]), {
            "assignment": body["assignment"]["id"], "choice": "left", "idempotency_key": str(uuid.uuid4()),
            "instruction_version": body["instruction_version"]}, content_type="application/json")
        statuses.append(response.status_code)
    assert statuses == [201, 201, 429]
    assert Judgment.objects.count() == 2
