"""Hardening (issue 13): each refusal is tried, and answered in the documented JSON error shape."""

import uuid

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.integration.test_rater_flow import join_url, walk_to_tasks

pytestmark = pytest.mark.django_db


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def error_of(response, status: int) -> dict:
    """The response's error body, after checking its status and the documented shape."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    assert isinstance(body["error"]["message"], str)
    assert "ErrorDetail" not in response.content.decode() and "Traceback" not in response.content.decode()
    return body["error"]


def nested(depth: int) -> str:
    return '{"assignment": ' + "[" * depth + "]" * depth + "}"


# 1. Every error answers in the JSON shape ----------------------------------------------------------------


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_from_a_rater_is_a_400(client, project, depth):
    client.get(join_url(project))
    walk_to_tasks(client, project)
    response = client.post(reverse("rater:api_judgments", args=[project.slug]), nested(depth),
                           content_type="application/json")
    assert error_of(response, 400)["code"] == "invalid_json"


def test_deeply_nested_json_to_the_researcher_api_is_a_400(researcher, project):
    response = token_client(researcher).generic("PATCH", reverse("api_project", args=[project.slug]),
                                                 nested(1_000), content_type="application/json")
    assert error_of(response, 400)["code"] == "invalid_json"


def test_json_nested_past_the_depth_limit_is_refused_before_the_serializers(researcher, project):
    body = '{"name": "x", "pairwise_flags": ' + "[" * 200 + "]" * 200 + "}"
    response = token_client(researcher).generic("PATCH", reverse("api_project", args=[project.slug]), body,
                                                 content_type="application/json")
    assert error_of(response, 400)["code"] == "invalid_json"


def test_malformed_json_is_invalid_json(researcher, project):
    response = token_client(researcher).generic("PATCH", reverse("api_project", args=[project.slug]), "{",
                                                 content_type="application/json")
    assert error_of(response, 400)["code"] == "invalid_json"


@pytest.mark.parametrize("value", [2**31, 2**31 - 1 + 10, 2**63, 10**30])
def test_tasks_per_rater_beyond_a_32_bit_column_names_the_field(researcher, project, value):
    client = token_client(researcher)
    response = client.patch(reverse("api_project", args=[project.slug]), {"tasks_per_rater": value}, format="json")
    assert error_of(response, 400)["field"] == "tasks_per_rater"
    response = client.post(reverse("api_projects"), {"name": "Big", "tasks_per_rater": value}, format="json")
    assert error_of(response, 400)["field"] == "tasks_per_rater"


@pytest.mark.parametrize("value", [2**31, 2**63, 10**30, -1])
def test_response_time_beyond_range_names_the_field(client, project, value):
    client.get(join_url(project))
    walk_to_tasks(client, project)
    body = client.get(reverse("rater:api_next", args=[project.slug])).json()
    response = client.post(reverse("rater:api_judgments", args=[project.slug]), {
        "assignment": body["assignment"]["id"], "choice": "left", "idempotency_key": str(uuid.uuid4()),
        "instruction_version": body["instruction_version"], "response_time_ms": value},
        content_type="application/json")
    assert error_of(response, 400)["field"] == "response_time_ms"


@pytest.mark.parametrize("value", [2**63, 10**30, -(2**63) - 5])
def test_huge_ids_are_not_found_or_refused_never_a_500(client, project, value):
    client.get(join_url(project))
    walk_to_tasks(client, project)
    body = client.get(reverse("rater:api_next", args=[project.slug])).json()
    response = client.post(reverse("rater:api_judgments", args=[project.slug]), {
        "assignment": value, "choice": "left", "idempotency_key": str(uuid.uuid4()),
        "instruction_version": body["instruction_version"]}, content_type="application/json")
    assert response.status_code in (400, 404)
    error_of(response, response.status_code)


@pytest.mark.parametrize(("params", "field"), [
    ({"random_state": "abc"}, "random_state"),
    ({"random_state": 1.5}, "random_state"),
    ({"random_state": True}, "random_state"),
    ({"random_state": -1}, "random_state"),
    ({"random_state": 2**32}, "random_state"),
    ({"random_state": [1]}, "random_state"),
    ({"holdout_fraction": "0.1"}, "holdout_fraction"),
    ({"holdout_fraction": True}, "holdout_fraction"),
])
def test_hierarchical_fit_parameters_name_the_field(researcher, project, params, field):
    response = token_client(researcher).post(reverse("api_fits", args=[project.slug]),
                                             {"model": "hbt", "params": params}, format="json")
    assert error_of(response, 400)["field"] == field


def test_nested_validation_errors_are_plain_strings(researcher, project):
    response = token_client(researcher).post(reverse("api_tasks_generate", args=[project.slug]),
                                             {"strategy": "pairs", "pairs": [["a", "b"], ["c"]]}, format="json")
    error = error_of(response, 400)
    assert error["field"] == "pairs"
    assert "[" not in error["message"] and "pairs" in error["message"]


def test_unhandled_exception_on_the_api_is_a_json_500(researcher, project, monkeypatch):
    from annotator import selectors

    def boom(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(selectors, "project_progress", boom)
    client = token_client(researcher)
    client.raise_request_exception = False
    response = client.get(reverse("api_progress", args=[project.slug]))
    error = error_of(response, 500)
    assert error["code"] == "server_error" and "secret internals" not in response.content.decode()


@pytest.mark.parametrize("path", ["/api/no-such-endpoint/", "/r/no-such-project/api/nothing/"])
def test_unknown_api_paths_are_a_json_404(client, path):
    error = error_of(client.get(path), 404)
    assert error["code"] == "not_found"


def test_pages_outside_the_api_keep_html_errors(client):
    response = client.get("/projects/no-such-page-at-all/x/y/")
    assert response.status_code == 404 and not response["Content-Type"].startswith("application/json")


# 6. Idempotency keys are canonical UUID text --------------------------------------------------------------

CANONICAL = "11111111-2222-4333-8444-555555555555"


@pytest.mark.parametrize("key", [
    CANONICAL.translate(str.maketrans("0123456789", "０１２３４５６７８９")),  # full-width digits
    "{" + CANONICAL + "}",
    "urn:uuid:" + CANONICAL,
    CANONICAL.replace("-", ""),
    "١١١١١١١١-٢٢٢٢-٤٣٣٣-٨٤٤٤-٥٥٥٥٥٥٥٥٥٥٥٥",  # Arabic-Indic digits
])
def test_only_canonical_uuid_text_is_an_idempotency_key(client, project, key):
    client.get(join_url(project))
    walk_to_tasks(client, project)
    body = client.get(reverse("rater:api_next", args=[project.slug])).json()
    answer = {"assignment": body["assignment"]["id"], "choice": "left",
              "instruction_version": body["instruction_version"]}
    response = client.post(reverse("rater:api_judgments", args=[project.slug]), {**answer, "idempotency_key": key},
                           content_type="application/json")
    assert error_of(response, 400)["field"] == "idempotency_key"
    response = client.post(reverse("rater:api_judgments", args=[project.slug]),
                           {**answer, "idempotency_key": CANONICAL.upper()}, content_type="application/json")
    assert response.status_code == 201 and response.json()["idempotency_key"] == CANONICAL


@pytest.mark.parametrize("key", [CANONICAL.replace("1", "１"), CANONICAL + "\n", " " + CANONICAL,
                                 11111111222243338444555555555555, ["x"]])
def test_every_answer_kind_parses_keys_the_same_way(key):
    """Judgments, annotations and rank answers all go through answer_create's key parsing. (Over HTTP the
    serializers' CharField trims surrounding whitespace before the service sees the key.)"""
    from annotator.errors import InvalidInput
    from annotator.services.answers import idempotency_key_parse

    with pytest.raises(InvalidInput) as exc:
        idempotency_key_parse(key)
    assert exc.value.field == "idempotency_key"
    assert idempotency_key_parse(CANONICAL) == idempotency_key_parse(CANONICAL.upper()) == uuid.UUID(CANONICAL)


# 5. Content-Security-Policy and Permissions-Policy on every response ----------------------------------------


@pytest.mark.parametrize("path", ["/accounts/login/", "/api/schema/", "/api/no-such-endpoint/", "/projects/nope/x/y/"])
def test_every_response_carries_csp_and_permissions_policy(client, path):
    response = client.get(path)
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]


def test_templates_hold_no_inline_script():
    from pathlib import Path

    templates = Path(__file__).resolve().parents[2] / "templates"
    for template in templates.rglob("*.html"):
        text = template.read_text()
        for tag in text.split("<script")[1:]:
            assert "src=" in tag.split(">")[0], f"inline <script> in {template}"
        assert " onclick=" not in text and " onload=" not in text and "javascript:" not in text, template


def test_a_body_over_the_memory_limit_is_a_json_413(researcher, project, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = token_client(researcher).generic("PATCH", reverse("api_project", args=[project.slug]),
                                                 '{"description": "' + "x" * 2000 + '"}',
                                                 content_type="application/json")
    assert error_of(response, 413)["code"] == "too_large"
