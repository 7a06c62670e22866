"""Fuzzing the OpenAPI schema with schemathesis: no 5xx, and every answer as documented.

What it covers, and its bounds (it runs in CI, on a 2-core machine, in about a minute):

- every operation of the researcher API (``/api/projects/…``) and of the rater API (``/r/<slug>/api/…``)
  in the schema that drf-spectacular builds, called in-process through the WSGI application;
- as a researcher who owns a project with items, consent, instructions and tasks (token auth), and as
  a rater who joined it (session cookie and CSRF token); ``{slug}`` is fixed to that project and
  ``{item_id}`` to one of its items, so requests reach the views instead of stopping at a 404;
- ``MAX_EXAMPLES`` generated cases per operation (schemathesis's coverage phase adds its boundary cases);
- checks: no server error, status code documented, content type documented, body conforms to the
  documented schema (error bodies included: ``#/components/schemas/Error``).

Not covered: the browser pages, the schema and docs endpoints themselves, multipart uploads' file
contents (the upload tests try archives and images), and sequences of calls (no stateful testing).
"""

from __future__ import annotations

import copy

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis import checks as sc

from annotator.permissions import SESSION_RATERS
from config.wsgi import application
from tests.conftest import ready_rater

MAX_EXAMPLES = 20

CHECKS = [sc.not_a_server_error, sc.status_code_conformance, sc.content_type_conformance,
          sc.response_schema_conformance]


def _api_schema() -> dict:
    """The schema drf-spectacular serves at /api/schema/, less the schema and docs endpoints."""
    raw = copy.deepcopy(SchemaGenerator().get_schema(request=None, public=True))
    raw["paths"] = {path: operations for path, operations in raw["paths"].items()
                    if not path.startswith(("/api/schema", "/api/docs"))}
    return raw


schema = schemathesis.openapi.from_dict(_api_schema())
schema.app = application


@pytest.fixture
def credentials(project, researcher):
    """Headers and cookies that authenticate both sides: the researcher's token, a joined rater's session."""
    rater = ready_rater(project)
    browser = Client()
    session = browser.session
    session[SESSION_RATERS] = {str(project.pk): rater.pk}
    session.save()
    browser.get(f"/r/{project.slug}/task/")  # sets the CSRF cookie
    csrf = browser.cookies["csrftoken"].value
    headers = {"Authorization": f"Token {Token.objects.create(user=researcher).key}", "X-CSRFToken": csrf,
               "Referer": "https://localhost/"}
    cookies = {"sessionid": browser.cookies["sessionid"].value, "csrftoken": csrf}
    # As Django's test client does around each request (and so only after the client's last one): the
    # WSGI handler's request signals must not close the connection that holds the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield headers, cookies, {"slug": project.slug, "item_id": project.items.first().pk}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_answers_as_documented(case, credentials):
    headers, cookies, path_parameters = credentials
    case.path_parameters = {**(case.path_parameters or {}), **path_parameters}
    case.call_and_validate(headers={**(case.headers or {}), **headers}, cookies=cookies, checks=CHECKS)
