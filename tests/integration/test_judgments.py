"""Judgment submission: idempotency, validation, append-only storage, counters."""

import uuid

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from annotator import selectors, services
from annotator.errors import Conflict, InvalidInput, NotFound
from annotator.models import Assignment, Judgment, Task
from ranking.models import FitRun
from tests.conftest import ready_rater, requires_postgres

pytestmark = pytest.mark.django_db


def submit(rater, assignment, choice="left", key=None, **kwargs):
    return services.judgment_create(
        rater=rater,
        assignment_id=assignment.pk,
        choice=choice,
        idempotency_key=key or uuid.uuid4(),
        instruction_version_id=kwargs.pop("instruction_version_id", rater.acknowledged_instruction_id),
        **kwargs,
    )


def test_choice_is_stored_in_terms_of_items(rater):
    assignment = services.assignment_next(rater=rater)
    judgment, created = submit(rater, assignment, "right", response_time_ms=1234)
    assert created
    assert judgment.winner_id == assignment.right_item_id
    assert judgment.loser_id == assignment.left_item_id
    assert (judgment.left_item_id, judgment.right_item_id) == (assignment.left_item_id, assignment.right_item_id)
    assert judgment.instruction_version_id == rater.acknowledged_instruction_id
    assert judgment.response_time_ms == 1234
    assignment.refresh_from_db()
    assert assignment.state == "answered"
    assert Task.objects.get(pk=assignment.task_id).n_judgments == 1


def test_tie_has_no_winner(rater):
    assignment = services.assignment_next(rater=rater)
    judgment, _ = submit(rater, assignment, "tie")
    assert judgment.is_tie and judgment.winner_id is None and judgment.loser_id is None


def test_retry_with_same_key_stores_once(rater):
    assignment = services.assignment_next(rater=rater)
    key = uuid.uuid4()
    first, created1 = submit(rater, assignment, "left", key=key)
    again, created2 = submit(rater, assignment, "left", key=key)
    assert (created1, created2) == (True, False)
    assert again.pk == first.pk
    assert Judgment.objects.count() == 1
    assert Task.objects.get(pk=assignment.task_id).n_judgments == 1


def test_key_reused_for_another_assignment_is_refused(project, rater):
    a1 = services.assignment_next(rater=rater)
    key = uuid.uuid4()
    submit(rater, a1, key=key)
    a2 = services.assignment_next(rater=rater)
    with pytest.raises(Conflict) as exc:
        submit(rater, a2, key=key)
    assert exc.value.field == "idempotency_key"
    assert Judgment.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        ({"choice": "up"}, InvalidInput, "choice"),
        ({"choice": ""}, InvalidInput, "choice"),
        ({"key": "not-a-uuid"}, InvalidInput, "idempotency_key"),
        ({"response_time_ms": -5}, InvalidInput, "response_time_ms"),
        ({"flags": ["made-up"]}, InvalidInput, "flags"),
    ],
)
def test_bad_input_is_refused_and_nothing_stored(rater, change, error, field):
    assignment = services.assignment_next(rater=rater)
    kwargs = {"choice": "left", **change}
    with pytest.raises(error) as exc:
        submit(rater, assignment, **kwargs)
    assert exc.value.field == field
    assert Judgment.objects.count() == 0
    assignment.refresh_from_db()
    assert assignment.state == "open"


def test_missing_key_is_refused(rater):
    assignment = services.assignment_next(rater=rater)
    with pytest.raises(InvalidInput) as exc:
        services.judgment_create(rater=rater, assignment_id=assignment.pk, choice="left", idempotency_key=None,
                                 instruction_version_id=rater.acknowledged_instruction_id)
    assert exc.value.field == "idempotency_key"


def test_second_answer_to_same_assignment_is_refused(rater):
    assignment = services.assignment_next(rater=rater)
    submit(rater, assignment, "left")
    with pytest.raises(Conflict) as exc:
        submit(rater, assignment, "right")
    assert exc.value.code == "already_answered"
    assert Judgment.objects.count() == 1


def test_answer_to_someone_elses_assignment_is_refused(project, rater):
    other = ready_rater(project)
    theirs = services.assignment_next(rater=other)
    with pytest.raises(NotFound) as exc:
        submit(rater, theirs, "left")
    assert exc.value.field == "assignment"
    assert Judgment.objects.count() == 0


def test_stale_instruction_version_is_refused(project, rater, researcher):
    assignment = services.assignment_next(rater=rater)
    old = rater.acknowledged_instruction_id
    services.instruction_version_create(project=project, text="New rules: prefer realism.", created_by=researcher)
    with pytest.raises(Conflict) as exc:
        submit(rater, assignment, "left", instruction_version_id=old)
    assert exc.value.code == "instructions_changed"
    assert selectors.rater_next_step(rater=rater) == "instructions"
    assert Judgment.objects.count() == 0


def test_judgment_requests_one_coalesced_refit(project, rater, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for _ in range(3):
            assignment = services.assignment_next(rater=rater)
            submit(rater, assignment)
    assert FitRun.objects.filter(project=project, status="queued", automatic=True).count() == 1
    assert len(callbacks) == 1


@requires_postgres
def test_judgments_are_append_only_in_the_database(rater):
    assignment = services.assignment_next(rater=rater)
    judgment, _ = submit(rater, assignment)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Judgment.objects.filter(pk=judgment.pk).update(choice="right")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM annotator_judgment WHERE id = %s", [judgment.pk])
    assert Judgment.objects.get(pk=judgment.pk).choice == "left"


def test_open_assignment_is_stable_on_reload(rater):
    first = services.assignment_next(rater=rater)
    again = services.assignment_next(rater=rater)
    assert first.pk == again.pk
    assert (first.left_item_id, first.right_item_id) == (again.left_item_id, again.right_item_id)
    assert Assignment.objects.filter(rater=rater).count() == 1


@requires_postgres
def test_shown_instructions_cannot_be_edited_or_deleted_in_the_database(project, rater):
    version = rater.acknowledged_instruction
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        type(version).objects.filter(pk=version.pk).update(text="rewritten history")
    with pytest.raises(DatabaseError, match="cannot be deleted"), transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM annotator_instructionversion WHERE id = %s", [version.pk])
    version.refresh_from_db()
    assert version.text == "Pick the **better** image."
