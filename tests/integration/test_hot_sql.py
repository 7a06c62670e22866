"""The hand-written statements of the rater hot path (annotator.sql) against the ORM queries they stand for:
the same rows, the same Python values, the same choice of the next task in every state that rule has."""

import random
import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from annotator import selectors, services, sql
from annotator.models import (
    Annotation,
    Assignment,
    AssignmentState,
    Item,
    Judgment,
    Project,
    RankAnswer,
    Rater,
    Task,
)
from tests.conftest import ready_rater, requires_postgres
from tests.factories import ItemFactory, RaterFactory

pytestmark = pytest.mark.django_db


def _values(obj):
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_rows_come_back_with_the_values_the_orm_gives(project, rater):
    """Every concrete field, JSON, datetimes, UUIDs and NULLs included."""
    project.pairwise_flags = ["nsfw", "broken image"]
    project.save()
    assignment = services.rater_next(rater=rater).assignment
    Assignment.objects.filter(pk=assignment.pk).update(shown_order=[3, 1, 2])
    found = sql.rater_with_project(rater_ids=[rater.pk], slug=project.slug)
    assert _values(found) == _values(Rater.objects.get(pk=rater.pk))
    assert _values(found.project) == _values(Project.objects.get(pk=project.pk))
    assert found.project.pairwise_flags == ["nsfw", "broken image"]
    with transaction.atomic():
        locked = sql.assignment_for_answer(assignment_id=assignment.pk, rater=rater, answer_model=Judgment,
                                           key=uuid.uuid4())
    stored = Assignment.objects.select_related("task", "left_item").get(pk=assignment.pk)
    assert _values(locked) == _values(stored) and locked.shown_order == [3, 1, 2]
    assert locked.shown_at == stored.shown_at and locked.shown_at.tzinfo is not None
    assert _values(locked.task) == _values(stored.task)
    assert _values(locked.left_item) == _values(stored.left_item)


def test_the_session_rater_is_found_as_the_orm_finds_it(project, rater):
    other = services.project_create(owner=project.owner, name="Pears", overlap=2)
    newcomer = RaterFactory(project=project)  # no consent, no demographics, no instructions read
    for who in (rater, newcomer):
        for flow in (False, True):
            by_slug = sql.rater_with_project(rater_ids=[who.pk, 10**9], slug=project.slug, flow_state=flow)
            by_id = sql.rater_with_project(rater_ids=[who.pk], project_id=project.pk, flow_state=flow)
            assert by_slug.pk == by_id.pk == who.pk and by_slug.project.slug == project.slug
            if flow:
                assert (by_slug.flow_current_consent, by_slug.flow_current_instructions) == (
                    selectors.consent_current(project=project).pk, selectors.instruction_current(project=project).pk)
                assert by_slug.flow_demographics is (who == rater)
                assert selectors.rater_next_step(rater=by_slug) == selectors.rater_next_step(
                    rater=Rater.objects.get(pk=who.pk))
    assert sql.rater_with_project(rater_ids=[rater.pk], slug=other.slug) is None
    assert sql.rater_with_project(rater_ids=[rater.pk], project_id=other.pk) is None
    assert sql.rater_with_project(rater_ids=[], slug=project.slug) is None


def test_the_locked_assignment_reads_the_replay_and_the_current_instructions(project, rater):
    assignment = services.rater_next(rater=rater).assignment
    key = uuid.uuid4()
    with transaction.atomic():
        found = sql.assignment_for_answer(assignment_id=assignment.pk, rater=rater, answer_model=Judgment, key=key)
    assert found.replayed_id is None
    assert found.current_instructions_id == selectors.instruction_current(project=project).pk
    judgment, created = services.judgment_create(rater=rater, assignment_id=assignment.pk, choice="left",
                                                 idempotency_key=key, instruction_version_id=found.current_instructions_id)
    assert created
    with transaction.atomic():
        again = sql.assignment_for_answer(assignment_id=assignment.pk, rater=rater, answer_model=Judgment, key=key)
    assert again.replayed_id == judgment.pk and again.state == AssignmentState.ANSWERED
    someone = ready_rater(project)
    with transaction.atomic():
        assert sql.assignment_for_answer(assignment_id=assignment.pk, rater=someone, answer_model=Judgment,
                                         key=key) is None


def _orm_choice(rater):
    task = (selectors.tasks_available_to(rater=rater).order_by("n_assigned", "shuffle_key")
            .values_list("pk", flat=True).first())
    return task


def test_the_claimed_task_is_the_first_the_availability_rule_gives(project, researcher):
    """Random states of a project — full tasks, own max_raters, retired images, tasks a rater had, quality
    checks, a pool — and the hand-written claim picks what tasks_available_to(...) ordered picks, every time."""
    for _ in range(4):
        ItemFactory(project=project, prompt="a green pear")
    services.tasks_generate_random(project=project, budget=20, random_state=1)
    items = list(Item.objects.filter(project=project).values_list("pk", flat=True))
    services.check_create(project=project, kind="gold", left_item_id=items[0], right_item_id=items[1],
                          answer="left")
    pool = services.pool_create_rank(project=project, label="top 3", item_ids=items[:3], max_raters=2)
    raters = [ready_rater(project) for _ in range(3)]
    pooled = ready_rater(project)
    Rater.objects.filter(pk=pooled.pk).update(pool=pool)
    pooled.refresh_from_db()
    rng = random.Random(7)
    tasks = list(Task.objects.filter(project=project, check_kind=""))
    compared = 0
    for _ in range(25):
        task = rng.choice(tasks)
        change = rng.randrange(4)
        if change == 0:
            Task.objects.filter(pk=task.pk).update(n_assigned=rng.randrange(0, 4))
        elif change == 1:
            Task.objects.filter(pk=task.pk).update(max_raters=rng.choice([None, 1, 3]))
        elif change == 2:
            Task.objects.filter(pk=task.pk).update(is_active=rng.random() < 0.7)
        else:
            Task.objects.filter(pk=task.pk).update(shuffle_key=rng.randrange(10))
        for who in [*raters, pooled]:
            who.refresh_from_db()
            with transaction.atomic():
                claimed = sql.task_to_claim(rater=who, slots_default=project.overlap, skip_locked=True)
            assert (claimed.pk if claimed else None) == _orm_choice(who)
            compared += claimed is not None
        # one rater is handed the first task (so "never a task this rater had" is exercised too)
        services.rater_next(rater=raters[0])
        open_one = selectors.assignment_open(rater=raters[0])
        if open_one is not None:
            Assignment.objects.filter(pk=open_one.pk).update(state=AssignmentState.EXPIRED)
    assert compared > 20


def test_a_claimed_task_carries_the_images_the_payload_shows(project, rater):
    with transaction.atomic():
        task = sql.task_to_claim(rater=rater, slots_default=project.overlap, skip_locked=False)
    assert task.item_a.prompt == "a red apple" and task.item_b.width == 32 and task.item_b.height == 24
    assert task.item_a.project_id == project.pk


def test_a_full_task_takes_no_more_places(project):
    task = Task.objects.filter(project=project).first()
    assert sql.task_slot_take(task_id=task.pk, slots_default=project.overlap)
    assert sql.task_slot_take(task_id=task.pk, slots_default=project.overlap)
    assert not sql.task_slot_take(task_id=task.pk, slots_default=project.overlap)  # overlap 2
    Task.objects.filter(pk=task.pk).update(max_raters=3)
    assert sql.task_slot_take(task_id=task.pk, slots_default=project.overlap)
    assert Task.objects.get(pk=task.pk).n_assigned == 3


def test_insert_stores_what_create_stores(project, rater):
    task = Task.objects.filter(project=project).first()
    before = timezone.now()
    made = Assignment(task=task, rater=rater, project=project, left_item_id=task.item_b_id,
                      right_item_id=task.item_a_id, shown_order=[1, 2])
    assert sql.insert(made)
    assert made.pk and not made._state.adding
    stored = Assignment.objects.get(pk=made.pk)
    assert _values(stored) == _values(made)
    assert stored.shown_at >= before and stored.state == AssignmentState.OPEN and stored.shown_order == [1, 2]


def test_insert_ignoring_conflicts_leaves_the_transaction_usable(project, rater):
    first, second = Task.objects.filter(project=project)[:2]
    with transaction.atomic():
        assert sql.insert(Assignment(task=first, rater=rater, project=project, left_item_id=first.item_a_id,
                                     right_item_id=first.item_b_id))
        # one open assignment per rater: a second one is not inserted, and nothing is rolled back
        clash = Assignment(task=second, rater=rater, project=project, left_item_id=second.item_a_id,
                           right_item_id=second.item_b_id)
        assert not sql.insert(clash, ignore_conflicts=True) and clash.pk is None
        sql.counters_add(model=Task, pk=first.pk, n_assigned=1, n_judgments=2)
    assert Assignment.objects.filter(rater=rater).count() == 1
    assert Task.objects.filter(pk=first.pk).values_list("n_assigned", "n_judgments").get() == (1, 2)


def test_answered_sets_state_and_time(project, rater):
    assignment = services.rater_next(rater=rater).assignment
    at = timezone.now() - timedelta(seconds=5)
    sql.assignment_answered(assignment_id=assignment.pk, at=at)
    stored = Assignment.objects.get(pk=assignment.pk)
    assert stored.state == AssignmentState.ANSWERED and stored.answered_at == at


def test_the_open_assignment_is_found_as_the_orm_finds_it(project, rater):
    assert sql.assignment_open(rater_id=rater.pk) is None
    opened = services.rater_next(rater=rater).assignment
    found = sql.assignment_open(rater_id=rater.pk)
    stored = (Assignment.objects.filter(rater=rater, state=AssignmentState.OPEN)
              .select_related("task", "left_item", "right_item").get())
    assert found.pk == opened.pk
    for a, b in ((found, stored), (found.task, stored.task), (found.left_item, stored.left_item),
                 (found.right_item, stored.right_item)):
        assert _values(a) == _values(b)
    # a one-image task: no right image
    Assignment.objects.filter(pk=opened.pk).update(state=AssignmentState.EXPIRED)
    services.tasks_generate_single(project=project, kind="rich")
    single = Task.objects.filter(project=project, kind="rich").first()
    Task.objects.filter(project=project).exclude(pk=single.pk).update(is_active=False)
    assert services.rater_next(rater=rater).assignment.task_id == single.pk
    found = sql.assignment_open(rater_id=rater.pk)
    assert found.task_id == single.pk and found.right_item is None and found.right_item_id is None


@requires_postgres
def test_postgresql_prepares_the_hot_statements_and_nothing_else(project, rater):
    """settings.PREFLAB_PREPARE_THRESHOLD (default 5): the hand-written statements bind parameters on the server and
    one that ran that many times on a connection is prepared; the ORM keeps client-side binding, so a query with
    more than the 65,535 parameters server-side binding allows still runs."""
    from django.conf import settings
    from django.db import connection

    threshold = settings.PREFLAB_PREPARE_THRESHOLD
    assert threshold >= 1

    def prepared():
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            return [row[0] for row in cursor.fetchall()]

    for _ in range(threshold + 1):
        assert sql.rater_with_project(rater_ids=[rater.pk], slug=project.slug, flow_state=True).pk == rater.pk
        assert Item.objects.filter(project=project).count() == 4
    statements = prepared()
    assert any('FROM "annotator_rater" r JOIN "annotator_project" p' in statement for statement in statements)
    assert not any('"annotator_item"' in statement for statement in statements)  # the ORM's query: not prepared
    assert Item.objects.filter(pk__in=range(1, 70_001)).count() == 4


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_statement_prepared_before_a_column_changed_type_runs_again_and_the_connection_is_renewed():
    """After a migration (another connection) changes the type of a column a prepared statement returns,
    PostgreSQL refuses that statement on this connection ("cached plan must not change result type"). Outside a
    transaction it runs once more unprepared; inside one the error goes up; either way the connection is closed at
    the end of the request, so the next one prepares afresh."""
    import psycopg
    from django.conf import settings
    from django.db import NotSupportedError, close_old_connections, connection

    table = f"hot_sql_probe_{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    migrate = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                              password=db["PASSWORD"] or None, dbname=db["NAME"], autocommit=True)  # as `migrate`
    try:
        migrate.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, v integer)")
        migrate.execute(f"INSERT INTO {table} VALUES (1, 7)")
        probe = f"SELECT v FROM {table} WHERE id = %s"
        connection.close()  # a new connection, whatever the tests before left open
        for _ in range(settings.PREFLAB_PREPARE_THRESHOLD + 2):
            assert sql.one(probe, [1], connection) == (7,)
        connection.close_at = None  # (the connection's own time limit, CONN_MAX_AGE, is not what is tested)
        migrate.execute(f"ALTER TABLE {table} ALTER COLUMN v TYPE text")
        assert connection.close_at is None
        assert sql.one(probe, [1], connection) == ("7",)  # unprepared, with the new type
        assert connection.close_at is not None
        close_old_connections()  # Django, at the end of the request: the connection is closed
        assert connection.connection is None
        for _ in range(settings.PREFLAB_PREPARE_THRESHOLD + 2):  # prepared afresh on the next connection
            assert sql.one(probe, [1], connection) == ("7",)
        connection.close_at = None
        migrate.execute(f"ALTER TABLE {table} ALTER COLUMN v TYPE bigint USING v::bigint")
        with pytest.raises(NotSupportedError, match="cached plan"), transaction.atomic():
            sql.one(probe, [1], connection)
        assert connection.close_at is not None
        close_old_connections()
        assert connection.connection is None
        assert sql.one(probe, [1], connection) == (7,)
    finally:
        connection.close()
        migrate.execute(f"DROP TABLE IF EXISTS {table}")
        migrate.close()


@pytest.mark.parametrize("answer", [
    Judgment(pk=41, idempotency_key=uuid.UUID("3f2b8c1e-5a4d-4e6f-9b7a-1c2d3e4f5a6b"), assignment_id=7,
             choice="tie"),
    Annotation(pk=42, idempotency_key=uuid.uuid4(), assignment_id=8, kind="checklist"),
    RankAnswer(pk=43, idempotency_key=uuid.uuid4(), assignment_id=9, ranking=[[3], [1, 2]]),
])
def test_the_answer_receipt_is_what_the_documented_serializer_returns(answer):
    from annotator.serializers import (
        RaterAnnotationSerializer,
        RaterJudgmentSerializer,
        RaterRankAnswerSerializer,
        rater_answer_receipt,
    )

    answer.submitted_at = timezone.now().replace(microsecond=123456)
    serializer = {Judgment: RaterJudgmentSerializer, Annotation: RaterAnnotationSerializer,
                  RankAnswer: RaterRankAnswerSerializer}[type(answer)]
    documented = serializer(answer).data
    receipt = rater_answer_receipt(answer)
    assert receipt == documented and list(receipt) == list(documented)
