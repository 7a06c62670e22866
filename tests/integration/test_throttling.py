"""Joining, submitting, next-task, login and the researcher API are rate-limited per client / rater / user,
and a client is its socket address unless the request came through a configured proxy."""

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
                        {**api_settings.DEFAULT_THROTTLE_RATES, "join": "2/minute", "judgment_submit": "2/minute",
                         "user": "2/minute", "login": "3/minute"})
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


def test_the_answer_throttle_counts_in_windows_and_says_when_to_retry(client, project, tight_rates, monkeypatch):
    """The rater throttles count per fixed window (constant work per request): the third answer in a minute is
    refused with Retry-After the rest of the window; once the window is over, answers are taken again."""
    from annotator.throttles import RaterThrottle

    clock = [1_000.0]
    monkeypatch.setattr(RaterThrottle, "timer", lambda self: clock[0])
    client.get(join_url(project))
    walk_to_tasks(client, project)

    def answer():
        body = client.get(reverse("rater:api_next", args=[project.slug])).json()
        return client.post(reverse("rater:api_judgments", args=[project.slug]), {
            "assignment": body["assignment"]["id"], "choice": "left", "idempotency_key": str(uuid.uuid4()),
            "instruction_version": body["instruction_version"]}, content_type="application/json")

    assert answer().status_code == 201
    clock[0] += 20
    assert answer().status_code == 201
    clock[0] += 10
    refused = answer()
    assert refused.status_code == 429 and int(refused["Retry-After"]) == 30
    clock[0] += 31  # the window that began at the first answer is over
    assert answer().status_code == 201
    assert Judgment.objects.count() == 3


# Proxy headers are believed only from configured proxies ------------------------------------------------


def test_a_spoofed_forwarded_for_does_not_bypass_the_join_throttle(client, project, tight_rates):
    statuses = [client.get(join_url(project, PROLIFIC_PID=f"p{i}"), HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code
                for i in range(5)]
    assert statuses == [302, 302, 429, 429, 429]
    assert Rater.objects.count() == 2


def test_a_configured_proxys_forwarded_for_is_honoured(client, project, tight_rates, settings):
    settings.PREFLAB_TRUSTED_PROXIES = ["127.0.0.0/8"]  # the test client's REMOTE_ADDR is 127.0.0.1
    # Three clients behind the proxy: each has its own allowance.
    for i in range(3):
        assert client.get(join_url(project, PROLIFIC_PID=f"p{i}"),
                          HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code == 302
    # One client inventing hops in front of the address the proxy appended is still that one client.
    statuses = [client.get(join_url(project, PROLIFIC_PID=f"q{i}"),
                           HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 198.51.100.7").status_code for i in range(3)]
    assert statuses == [302, 302, 429]


def test_forwarded_for_from_an_untrusted_address_is_ignored(settings):
    from django.test import RequestFactory

    from annotator.throttles import client_ip

    factory = RequestFactory()
    settings.PREFLAB_TRUSTED_PROXIES = ["10.0.0.0/8", "::1"]
    assert client_ip(factory.get("/", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="1.2.3.4")) == "198.51.100.1"
    assert client_ip(factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 10.0.0.3")) == "1.2.3.4"
    assert client_ip(factory.get("/", REMOTE_ADDR="::1", HTTP_X_FORWARDED_FOR="2001:db8::5")) == "2001:db8::5"
    assert client_ip(factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="not-an-ip")) == "10.0.0.2"
    assert client_ip(factory.get("/", REMOTE_ADDR="10.0.0.2")) == "10.0.0.2"
    settings.PREFLAB_TRUSTED_PROXIES = []
    assert client_ip(factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4")) == "10.0.0.2"


# Login: per-address throttle and per (username, address) lockout -----------------------------------------


@pytest.fixture
def login_user(db):
    from tests.factories import UserFactory

    user = UserFactory(username="ada")
    user.set_password("correct horse battery staple")
    user.save()
    return user


def _login(client, password, **extra):
    return client.post(reverse("login"), {"username": "ada", "password": password}, **extra)


def test_login_locks_the_username_and_address_out_after_failures(client, login_user, settings):
    settings.PREFLAB_LOGIN_MAX_FAILURES = 3
    assert [_login(client, "wrong").status_code for _ in range(2)] == [200, 200]
    assert _login(client, "wrong").status_code == 429  # the third failure locks
    response = _login(client, "correct horse battery staple")
    assert response.status_code == 429 and b"Too many failed attempts" in response.content
    assert "_auth_user_id" not in client.session
    # Another address is not locked out (the lock is per username and address) ...
    assert _login(client, "correct horse battery staple", REMOTE_ADDR="192.0.2.8").status_code == 302
    # ... and a spoofed X-Forwarded-For is not another address.
    other = type(client)()
    assert _login(other, "correct horse battery staple", HTTP_X_FORWARDED_FOR="192.0.2.9").status_code == 429


def test_a_successful_login_clears_the_failures(client, login_user, settings):
    settings.PREFLAB_LOGIN_MAX_FAILURES = 3
    assert [_login(client, "wrong").status_code for _ in range(2)] == [200, 200]
    assert _login(client, "correct horse battery staple").status_code == 302
    client.logout()
    assert [_login(client, "wrong").status_code for _ in range(2)] == [200, 200]  # counting starts again


def test_login_attempts_are_throttled_per_address(client, login_user, tight_rates):
    statuses = [client.post(reverse("login"), {"username": f"user{i}", "password": "x"}).status_code
                for i in range(4)]
    assert statuses == [200, 200, 200, 429]


# Next task and the researcher API ------------------------------------------------------------------------


def test_next_task_is_throttled_per_rater(client, project, tight_rates, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "next_task", "2/minute")
    client.get(join_url(project))
    walk_to_tasks(client, project)
    responses = [client.get(reverse("rater:api_next", args=[project.slug])) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[-1].json()["error"]["code"] == "throttled"


def test_researcher_api_is_throttled_per_user_in_the_json_shape(project, researcher, tight_rates):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=researcher).key}")
    responses = [api.get(reverse("api_progress", args=[project.slug]), HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
                 for i in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    error = responses[-1].json()["error"]
    assert error["code"] == "throttled" and "throttled" in error["message"].lower()
    assert int(responses[-1]["Retry-After"]) > 0
