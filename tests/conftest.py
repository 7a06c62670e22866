import logging

import pytest
from django.db import connection

from annotator import services
from tests.factories import ItemFactory, RaterFactory, UserFactory


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters and cached progress totals must not leak between tests (ids can repeat)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def enqueued(monkeypatch):
    """(task name, job id) of every job handed to the broker (the true boundary), instead of a real broker."""
    from ranking import jobs

    sent = []
    monkeypatch.setattr(jobs, "broker_send",
                        lambda *, task_name, job_id, countdown=None: sent.append((task_name, job_id)))
    return sent


@pytest.fixture
def researcher(db):
    return UserFactory()


@pytest.fixture
def project(researcher):
    """A project with 4 items on one prompt, consent, instructions and all 6 pairs as tasks."""
    project = services.project_create(owner=researcher, name="Apples", overlap=2)
    for _ in range(4):
        ItemFactory(project=project, prompt="a red apple")
    services.consent_version_create(project=project, text="You agree to take part.")
    services.instruction_version_create(project=project, text="Pick the **better** image.", created_by=researcher)
    services.tasks_generate_within_prompt(project=project, random_state=0)
    return project


def ready_rater(project, **kwargs):
    """A rater who consented, answered demographics and acknowledged the current instructions."""
    from annotator import selectors

    rater = RaterFactory(project=project, **kwargs)
    consent = selectors.consent_current(project=project)
    if consent:
        services.rater_consent(rater=rater, consent_version_id=consent.pk)
    services.demographics_submit(rater=rater, age_band="25-34")
    instruction = selectors.instruction_current(project=project)
    services.rater_acknowledge_instructions(rater=rater, instruction_version_id=instruction.pk)
    return rater


@pytest.fixture
def rater(project):
    return ready_rater(project)


def run_concurrently(threads, caplog) -> int:
    """Start ``threads`` and wait for them; returns how many answers were tried again after a deadlock meanwhile
    (:func:`annotator.services.answers.answer_create` logs each retry)."""
    with caplog.at_level(logging.WARNING, logger="annotator.services.answers"):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return sum("deadlock" in record.getMessage() for record in caplog.records)


requires_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL row locking (set DATABASE_URL; CI does)"
)
