"""Assignment policy: fewest judgments first, never twice, overlap k, and no over-filling under races."""

import threading
import uuid
from collections import Counter

import pytest
from django.db import connection

from annotator import services
from annotator.models import Assignment, Task
from tests.conftest import ready_rater, requires_postgres, run_concurrently
from tests.factories import ItemFactory


@pytest.mark.django_db
def test_never_the_same_task_twice_and_overlap_respected(project):
    # 6 tasks × overlap 2 = 12 slots; 4 raters each take up to everything available.
    seen = Counter()
    for _ in range(4):
        rater = ready_rater(project)
        mine = []
        while (a := services.assignment_next(rater=rater)) is not None:
            mine.append(a.task_id)
            services.judgment_create(rater=rater, assignment_id=a.pk, choice="left", idempotency_key=uuid.uuid4(),
                                     instruction_version_id=rater.acknowledged_instruction_id)
        assert len(mine) == len(set(mine)), "a rater got the same task twice"
        seen.update(mine)
    assert sum(seen.values()) == 12
    assert all(n == 2 for n in seen.values())
    assert all(t.n_judgments == 2 for t in Task.objects.filter(project=project))


@pytest.mark.django_db
def test_fewest_judgments_first(project):
    first = ready_rater(project)
    a = services.assignment_next(rater=first)
    second = ready_rater(project)
    b = services.assignment_next(rater=second)
    assert a.task_id != b.task_id  # an untouched task is preferred to a half-filled one


@pytest.mark.django_db
def test_left_right_order_is_randomised_per_assignment(researcher):
    project = services.project_create(owner=researcher, name="Order", overlap=60)
    x, y = ItemFactory(project=project), ItemFactory(project=project)
    services.instruction_version_create(project=project, text="Choose.", created_by=researcher)
    services.tasks_generate_within_prompt(project=project)
    lefts = Counter(services.assignment_next(rater=ready_rater(project)).left_item_id for _ in range(60))
    assert set(lefts) == {x.pk, y.pk}
    assert min(lefts.values()) >= 15  # P(< 15 of 60 on one side) ≈ 6e-5


@pytest.mark.django_db
def test_tasks_per_rater_limit(project):
    project.tasks_per_rater = 2
    project.save(update_fields=["tasks_per_rater"])
    rater = ready_rater(project)
    for _ in range(2):
        a = services.assignment_next(rater=rater)
        services.judgment_create(rater=rater, assignment_id=a.pk, choice="tie", idempotency_key=uuid.uuid4(),
                                 instruction_version_id=rater.acknowledged_instruction_id)
    assert services.assignment_next(rater=rater) is None


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_raters_racing_for_the_last_slot(researcher):
    project = services.project_create(owner=researcher, name="Race", overlap=1)
    ItemFactory(project=project)
    ItemFactory(project=project)
    services.instruction_version_create(project=project, text="Choose.", created_by=researcher)
    services.tasks_generate_within_prompt(project=project)  # one task, one slot
    raters = [ready_rater(project) for _ in range(8)]
    barrier = threading.Barrier(len(raters))
    results, errors = [], []

    def claim(rater):
        try:
            barrier.wait()
            results.append(services.assignment_next(rater=rater))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(r,)) for r in raters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(1 for r in results if r is not None) == 1
    assert Assignment.objects.filter(project=project).count() == 1
    assert Task.objects.get(project=project).n_assigned == 1


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_same_key_submitted_concurrently_is_stored_once(researcher):
    from annotator.models import Judgment

    project = services.project_create(owner=researcher, name="Dup", overlap=1)
    ItemFactory(project=project)
    ItemFactory(project=project)
    services.instruction_version_create(project=project, text="Choose.", created_by=researcher)
    services.tasks_generate_within_prompt(project=project)
    rater = ready_rater(project)
    assignment = services.assignment_next(rater=rater)
    key = uuid.uuid4()
    barrier = threading.Barrier(6)
    outcomes, errors = [], []

    def send():
        try:
            barrier.wait()
            outcomes.append(services.judgment_create(
                rater=rater, assignment_id=assignment.pk, choice="left", idempotency_key=key,
                instruction_version_id=rater.acknowledged_instruction_id)[1])
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert outcomes.count(True) == 1
    assert Judgment.objects.filter(idempotency_key=key).count() == 1


@pytest.mark.django_db
def test_abandoned_assignment_is_expired_and_a_late_answer_still_counts(researcher):
    from datetime import timedelta

    from annotator.models import Judgment

    project = services.project_create(owner=researcher, name="Walk away", overlap=1)
    ItemFactory(project=project)
    ItemFactory(project=project)
    services.instruction_version_create(project=project, text="Choose.", created_by=researcher)
    services.tasks_generate_within_prompt(project=project)
    leaver, other = ready_rater(project), ready_rater(project)
    abandoned = services.assignment_next(rater=leaver)
    assert services.assignment_next(rater=other) is None  # the only slot is taken
    assert services.assignments_expire(older_than=timedelta(minutes=30)) == 0  # not old yet
    assert services.assignments_expire(older_than=timedelta(0)) == 1
    abandoned.refresh_from_db()
    assert abandoned.state == "expired"
    taken = services.assignment_next(rater=other)
    assert taken is not None and taken.task_id == abandoned.task_id
    for rater, assignment in ((other, taken), (leaver, abandoned)):
        services.judgment_create(rater=rater, assignment_id=assignment.pk, choice="left",
                                 idempotency_key=uuid.uuid4(), instruction_version_id=rater.acknowledged_instruction_id)
    task = Task.objects.get(pk=abandoned.task_id)
    assert (task.n_judgments, task.n_assigned) == (2, 2)  # the late answer is kept, over the overlap by one
    assert Judgment.objects.filter(task=task).count() == 2


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_raters_answering_shared_images_concurrently_never_deadlock(researcher, caplog):
    """16 raters answer pairs of the same 5 images at once; only assignment rows are locked for an answer, and no
    answer had to be tried again after a deadlock (a retry would hide one from the raters, not from this test)."""
    from django.test.utils import CaptureQueriesContext

    from annotator.models import Judgment

    project = services.project_create(owner=researcher, name="Shared", overlap=16)
    for _ in range(5):
        ItemFactory(project=project, prompt="p")
    services.instruction_version_create(project=project, text="Choose.", created_by=researcher)
    services.tasks_generate_within_prompt(project=project)  # 10 pairs, each wanted by all 16 raters
    raters = [ready_rater(project) for _ in range(16)]
    barrier = threading.Barrier(len(raters))
    errors, stored = [], []

    def answer_all(rater):
        try:
            barrier.wait()
            while (a := services.assignment_next(rater=rater)) is not None:
                services.judgment_create(rater=rater, assignment_id=a.pk, choice="left" if a.pk % 2 else "right",
                                         idempotency_key=uuid.uuid4(),
                                         instruction_version_id=rater.acknowledged_instruction_id)
                stored.append(a.pk)
        except Exception as exc:  # a deadlock would surface here as OperationalError
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=answer_all, args=(r,)) for r in raters]
    retries = run_concurrently(threads, caplog)
    assert not errors, errors
    assert retries == 0
    # Every rater got every pair (never "nothing left" while other raters held the open tasks' rows),
    # and every answer is stored once and counted on its task.
    assert len(stored) == 16 * 10 == Judgment.objects.filter(project=project).count()
    assert all(t.n_judgments == 16 for t in Task.objects.filter(project=project))
    # The lock an answer takes names the assignment table only.
    ItemFactory(project=project, prompt="p")
    services.tasks_generate_within_prompt(project=project)  # the new image's pairs: free places again
    extra = ready_rater(project)
    a = services.assignment_next(rater=extra)
    with CaptureQueriesContext(connection) as queries:
        services.judgment_create(rater=extra, assignment_id=a.pk, choice="tie", idempotency_key=uuid.uuid4(),
                                 instruction_version_id=extra.acknowledged_instruction_id)
    locks = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    # (annotator.sql.assignment_for_answer: the assignment table is aliased "a", the lock names that alias only)
    assert locks and all('FROM "annotator_assignment" a ' in sql and sql.endswith('FOR UPDATE OF "a"')
                         for sql in locks), locks
