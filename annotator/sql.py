"""Hand-written SQL for the requests raters send most: the answer + next-task exchange.

On that path, building a query with the ORM costs more Python than the database spends running it (the
rater with its project and flow state, the locked assignment, the task claim: about half of the web
process's CPU per answer, measured in ``bench/bench_http.py``'s docstring). The statements here are written
once; their column lists come from the models, their parameters go through the fields' own preparation
(``get_db_prep_value``/``get_db_prep_save``) and their rows come back as model instances with the values the
ORM would give (its converters are applied, ``Model.from_db`` builds them). Each function states the ORM
query it stands for; ``tests/integration/test_hot_sql.py`` checks them against those queries.

They run on PostgreSQL and SQLite. Row locks (``FOR UPDATE OF``, ``SKIP LOCKED``) are used where the
database has them (PostgreSQL); SQLite serialises writers with its ``IMMEDIATE`` transactions. On PostgreSQL
they are prepared once per connection (:func:`prepared_cursor`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, NotSupportedError, connections, models

from annotator.models import (
    Assignment,
    AssignmentState,
    CheckKind,
    ConsentVersion,
    Demographics,
    InstructionVersion,
    Item,
    Project,
    Rater,
    Task,
)


class Columns:
    """A model's concrete columns (or the named ones) under a table alias: the SELECT list, and the instance
    built from a row's slice with the ORM's converters applied (per connection, cached)."""

    def __init__(self, model: type[models.Model], alias: str, names: Sequence[str] | None = None):
        self.model = model
        self.alias = alias
        fields = model._meta.concrete_fields
        if names is not None:
            fields = [f for f in fields if f.attname in names or f.name in names]
        self.fields = list(fields)
        self.attnames = [f.attname for f in self.fields]
        self.width = len(self.fields)
        self._select: dict[str, str] = {}
        self._converters: dict[str, list] = {}  # per database alias: they depend on its settings only

    def select(self, connection) -> str:
        found = self._select.get(connection.vendor)
        if found is None:
            qn = connection.ops.quote_name
            found = self._select[connection.vendor] = ", ".join(f"{qn(self.alias)}.{qn(f.column)}" for f in self.fields)
        return found

    def _converters_for(self, connection) -> list:
        found = self._converters.get(connection.alias)
        if found is None:
            found = []
            for i, field in enumerate(self.fields):
                col = field.get_col(self.alias)
                funcs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                if funcs:
                    found.append((i, col, funcs))
            self._converters[connection.alias] = found
        return found

    def build(self, row: Sequence, start: int, connection) -> models.Model | None:
        """The instance in ``row[start:start + width]`` (None when its primary key is NULL: an outer join's
        missing row)."""
        values = list(row[start:start + self.width])
        if values[0] is None and self.fields[0].primary_key:
            return None
        for i, col, funcs in self._converters_for(connection):
            value = values[i]
            for func in funcs:
                value = func(value, col, connection)
            values[i] = value
        return self.model.from_db(connection.alias, self.attnames, values)


def _build_all(row: Sequence, connection, *groups: Columns) -> tuple[list, Sequence]:
    """The instances of the row's consecutive column groups, and the values after them."""
    built, at = [], 0
    for group in groups:
        built.append(group.build(row, at, connection))
        at += group.width
    return built, row[at:]


def _table(model: type[models.Model], connection) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _prep(model: type[models.Model], name: str, value, connection):
    return model._meta.get_field(name).get_db_prep_value(value, connection, prepared=False)


def _lock(connection, *, of: str, skip_locked: bool = False) -> str:
    """``FOR UPDATE OF <alias> [SKIP LOCKED]`` where the database has row locks, else nothing."""
    features = connection.features
    if not features.has_select_for_update:
        return ""
    clause = " FOR UPDATE"
    if features.has_select_for_update_of:
        clause += f" OF {connection.ops.quote_name(of)}"
    if skip_locked and features.has_select_for_update_skip_locked:
        clause += " SKIP LOCKED"
    return clause


_STATEMENTS: dict[tuple, str] = {}


def _statement(connection, key: tuple, build: Callable[[Callable[[str], str]], str]) -> str:
    """The SQL text called ``key`` on this database, built once per process by ``build(quote_name)``."""
    full_key = (connection.alias, *key)
    sql = _STATEMENTS.get(full_key)
    if sql is None:
        sql = _STATEMENTS[full_key] = build(connection.ops.quote_name)
    return sql


def prepared_cursor(connection):
    """A cursor for these statements. On PostgreSQL with ``settings.PREFLAB_PREPARE_THRESHOLD`` (default 5), one
    that binds parameters on the server, so psycopg prepares a statement once it ran that many times on the
    connection: these statements repeat with every answer, and are then parsed and planned once per connection.
    Every other query keeps Django's client-side binding (which has no limit on the number of parameters;
    server-side binding allows 65,535). It is Django's cursor wrapper around it: errors come as Django's, and
    queries are logged (and counted in tests) like any."""
    threshold = settings.PREFLAB_PREPARE_THRESHOLD
    if connection.vendor != "postgresql" or not threshold:
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor  # PostgreSQL only

    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold != threshold:
        raw.prepare_threshold = threshold  # client-side binding cursors (the ORM's) never prepare
    with connection.wrap_database_errors:
        cursor = ServerBindingCursor(raw)
    return connection.make_debug_cursor(cursor) if connection.queries_logged else connection.make_cursor(cursor)


def _plan_changed(exc: NotSupportedError) -> bool:
    """PostgreSQL's "cached plan must not change result type" (SQLSTATE 0A000, which other "not supported"
    errors share, hence the message too)."""
    cause = exc.__cause__
    message = getattr(getattr(cause, "diag", None), "message_primary", None) or ""
    return getattr(cause, "sqlstate", None) == "0A000" and message.startswith("cached plan must not change")


def _run(sql: str, params: Sequence, connection, result: Callable):
    """``result(cursor)`` after running ``sql`` on a :func:`prepared_cursor`.

    A statement prepared before a migration changed the type of a column it returns is refused by PostgreSQL
    ("cached plan must not change result type"), outside a transaction every time for as long as the connection
    lives (a rollback makes psycopg prepare afresh). Then the connection is renewed at the end of the request
    (Django closes it once ``close_at`` has passed) and, outside a transaction, the statement runs once more
    unprepared; inside one the transaction is already aborted, so the error goes up (that request fails).
    """
    try:
        with prepared_cursor(connection) as cursor:
            cursor.execute(sql, params)
            return result(cursor)
    except NotSupportedError as exc:
        if not _plan_changed(exc):
            raise
        connection.close_at = time.monotonic()
        if connection.in_atomic_block:
            raise
    with connection.cursor() as cursor:  # client-side binding: never prepared
        cursor.execute(sql, params)
        return result(cursor)


def one(sql: str, params: Sequence, connection) -> tuple | None:
    """The first row of ``sql`` (see :func:`_run`)."""
    return _run(sql, params, connection, lambda cursor: cursor.fetchone())


def _execute(sql: str, params: Sequence, connection) -> int:
    return _run(sql, params, connection, lambda cursor: cursor.rowcount)


# The rater of a session ------------------------------------------------------------------------------

_RATER = Columns(Rater, "r")
_PROJECT = Columns(Project, "p")


def rater_with_project(*, rater_ids: Sequence[int], project_id: int | None = None, slug: str | None = None,
                       flow_state: bool = False, connection=None) -> Rater | None:
    """The rater among ``rater_ids`` of the project ``project_id`` (or called ``slug``), its project loaded;
    with ``flow_state`` also ``flow_current_consent``, ``flow_current_instructions`` and ``flow_demographics``.

    The ORM query it stands for: ``Rater.objects.select_related("project").filter(pk__in=rater_ids,
    project__slug=slug)`` (or ``project_id=``), annotated with the newest consent and instruction versions'
    ids and whether demographics exist, ``.first()``.
    """
    connection = connection or connections[DEFAULT_DB_ALIAS]
    if not rater_ids or (project_id is None) == (slug is None):
        return None
    def build(qn):
        sql = [f"SELECT {_RATER.select(connection)}, {_PROJECT.select(connection)}"]
        if flow_state:
            sql.append(
                f", (SELECT c.{qn('id')} FROM {_table(ConsentVersion, connection)} c"
                f" WHERE c.{qn('project_id')} = r.{qn('project_id')} ORDER BY c.{qn('version')} DESC LIMIT 1)"
                f", (SELECT i.{qn('id')} FROM {_table(InstructionVersion, connection)} i"
                f" WHERE i.{qn('project_id')} = r.{qn('project_id')} ORDER BY i.{qn('version')} DESC LIMIT 1)"
                f", EXISTS (SELECT 1 FROM {_table(Demographics, connection)} d"
                f" WHERE d.{qn('rater_id')} = r.{qn('id')})"
            )
        sql.append(f" FROM {_table(Rater, connection)} r JOIN {_table(Project, connection)} p"
                   f" ON p.{qn('id')} = r.{qn('project_id')}"
                   f" WHERE r.{qn('id')} IN ({', '.join(['%s'] * len(rater_ids))})"
                   + (f" AND p.{qn('slug')} = %s" if slug is not None else f" AND r.{qn('project_id')} = %s")
                   + f" ORDER BY r.{qn('id')} LIMIT 1")
        return "".join(sql)

    sql = _statement(connection, ("rater", len(rater_ids), slug is None, flow_state), build)
    row = one(sql, [*rater_ids, slug if slug is not None else project_id], connection)
    if row is None:
        return None
    (rater, project), extra = _build_all(row, connection, _RATER, _PROJECT)
    Rater.project.field.set_cached_value(rater, project)
    if flow_state:
        consent, instructions, demographics = extra
        rater.flow_current_consent = consent
        rater.flow_current_instructions = instructions
        rater.flow_demographics = bool(demographics)
    return rater


# An answer -------------------------------------------------------------------------------------------

_ASSIGNMENT = Columns(Assignment, "a")
_TASK = Columns(Task, "t")
_LEFT_ITEM = Columns(Item, "li")


def assignment_for_answer(*, assignment_id: int, rater: Rater, answer_model: type[models.Model],
                          key: uuid.UUID, connection=None) -> Assignment | None:
    """The rater's assignment ``assignment_id`` with its task and left image, its row locked (only its own
    row: ``FOR UPDATE OF``), annotated with ``replayed_id`` (the ``answer_model`` row stored under ``key``,
    or None) and ``current_instructions_id`` (the project's newest instruction version); None when it is
    not the rater's.

    The ORM query it stands for: ``Assignment.objects.select_for_update(of=("self",)).select_related("task",
    "left_item").filter(pk=assignment_id, rater=rater, project_id=rater.project_id)`` annotated with those
    two subqueries, ``.first()``.
    """
    connection = connection or connections[DEFAULT_DB_ALIAS]
    def build(qn):
        return (
            f"SELECT {_ASSIGNMENT.select(connection)}, {_TASK.select(connection)}, {_LEFT_ITEM.select(connection)}"
            f", (SELECT x.{qn('id')} FROM {_table(answer_model, connection)} x"
            f" WHERE x.{qn('idempotency_key')} = %s LIMIT 1)"
            f", (SELECT i.{qn('id')} FROM {_table(InstructionVersion, connection)} i"
            f" WHERE i.{qn('project_id')} = a.{qn('project_id')} ORDER BY i.{qn('version')} DESC LIMIT 1)"
            f" FROM {_table(Assignment, connection)} a"
            f" JOIN {_table(Task, connection)} t ON t.{qn('id')} = a.{qn('task_id')}"
            f" JOIN {_table(Item, connection)} li ON li.{qn('id')} = a.{qn('left_item_id')}"
            f" WHERE a.{qn('id')} = %s AND a.{qn('rater_id')} = %s AND a.{qn('project_id')} = %s"
            + _lock(connection, of="a")
        )

    sql = _statement(connection, ("assignment", answer_model), build)
    row = one(sql, [_prep(answer_model, "idempotency_key", key, connection), assignment_id, rater.pk,
                    rater.project_id], connection)
    if row is None:
        return None
    (assignment, task, left_item), extra = _build_all(row, connection, _ASSIGNMENT, _TASK, _LEFT_ITEM)
    Assignment.task.field.set_cached_value(assignment, task)
    Assignment.left_item.field.set_cached_value(assignment, left_item)
    assignment.replayed_id, assignment.current_instructions_id = extra
    return assignment


def assignment_answered(*, assignment_id: int, at: datetime, connection=None) -> None:
    """``Assignment.objects.filter(pk=assignment_id).update(state=ANSWERED, answered_at=at)``."""
    connection = connection or connections[DEFAULT_DB_ALIAS]
    sql = _statement(connection, ("answered",), lambda qn: (
        f"UPDATE {_table(Assignment, connection)} SET {qn('state')} = %s, {qn('answered_at')} = %s"
        f" WHERE {qn('id')} = %s"))
    _execute(sql, [AssignmentState.ANSWERED.value, _prep(Assignment, "answered_at", at, connection), assignment_id],
             connection)


def counters_add(*, model: type[Task] | type[Rater], pk: int, connection=None, **added: int) -> None:
    """``model.objects.filter(pk=pk).update(name=F(name) + n, ...)`` for the counters in ``added``."""
    connection = connection or connections[DEFAULT_DB_ALIAS]
    def build(qn):
        columns = [qn(model._meta.get_field(name).column) for name in added]
        return (f"UPDATE {_table(model, connection)} SET {', '.join(f'{c} = {c} + %s' for c in columns)}"
                f" WHERE {qn('id')} = %s")

    _execute(_statement(connection, ("counters", model, *added), build), [*added.values(), pk], connection)


def insert(obj: models.Model, *, ignore_conflicts: bool = False, connection=None) -> bool:
    """Insert the unsaved ``obj`` (every concrete field but its automatic primary key, as ``obj.save()``
    prepares them: ``pre_save`` fills ``auto_now_add``) and set its primary key, in one statement
    (``INSERT … RETURNING``). With ``ignore_conflicts`` a row that would break a unique constraint is not
    inserted (``ON CONFLICT DO NOTHING``) and False is returned — no savepoint needed, the transaction goes
    on. No signals are sent (PrefLab has no receivers on these models)."""
    connection = connection or connections[DEFAULT_DB_ALIAS]
    model = type(obj)
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    sql = _statement(connection, ("insert", model, ignore_conflicts), lambda qn: (
        f"INSERT INTO {_table(model, connection)} ({', '.join(qn(f.column) for f in fields)})"
        f" VALUES ({', '.join(['%s'] * len(fields))})"
        + (" ON CONFLICT DO NOTHING" if ignore_conflicts else "")
        + f" RETURNING {qn(model._meta.pk.column)}"))
    row = one(sql, values, connection)
    if row is None:
        return False
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = connection.alias
    return True


# The next task ---------------------------------------------------------------------------------------

_CLAIM_TASK = Columns(Task, "t", ("id", "kind", "check_kind", "check_instruction", "item_a", "item_b"))
_ITEM_SHOWN = ("id", "project", "prompt", "width", "height")
_CLAIM_ITEM_A = Columns(Item, "ia", _ITEM_SHOWN)
_CLAIM_ITEM_B = Columns(Item, "ib", _ITEM_SHOWN)


def task_to_claim(*, rater: Rater, slots_default: int, skip_locked: bool,
                  connection=None) -> Task | None:
    """The task the rater is handed next, its row locked (skipping rows others hold with ``skip_locked``),
    with the shown fields of its images (``item_a``, ``item_b``) loaded; None when none is available.

    The ORM query it stands for (:func:`annotator.selectors.tasks_available_to`):
    ``tasks_available_to(rater=rater).order_by("n_assigned", "shuffle_key").select_for_update(skip_locked=…,
    of=("self",)).select_related("item_a", "item_b").only(…).first()``.
    """
    connection = connection or connections[DEFAULT_DB_ALIAS]
    pooled = rater.pool_id is not None

    def build(qn):
        item = _table(Item, connection)
        return (
            f"SELECT {_CLAIM_TASK.select(connection)}, {_CLAIM_ITEM_A.select(connection)}"
            f", {_CLAIM_ITEM_B.select(connection)}"
            f" FROM {_table(Task, connection)} t"
            f" JOIN {item} ia ON ia.{qn('id')} = t.{qn('item_a_id')}"
            f" LEFT OUTER JOIN {item} ib ON ib.{qn('id')} = t.{qn('item_b_id')}"
            f" WHERE t.{qn('project_id')} = %s AND t.{qn('pool_id')} {'= %s' if pooled else 'IS NULL'}"
            f" AND t.{qn('is_active')} = %s AND t.{qn('check_kind')} = %s"
            f" AND t.{qn('n_assigned')} < COALESCE(t.{qn('max_raters')}, %s)"
            f" AND NOT EXISTS (SELECT 1 FROM {_table(Assignment, connection)} x"
            f" WHERE x.{qn('task_id')} = t.{qn('id')} AND x.{qn('rater_id')} = %s AND x.{qn('is_repeat')} = %s)"
            f" ORDER BY t.{qn('n_assigned')} ASC, t.{qn('shuffle_key')} ASC LIMIT 1"
            + _lock(connection, of="t", skip_locked=skip_locked)
        )

    sql = _statement(connection, ("claim", pooled, skip_locked), build)
    params = [rater.project_id, *([rater.pool_id] if pooled else []), True, CheckKind.NONE.value, slots_default,
              rater.pk, False]
    row = one(sql, params, connection)
    if row is None:
        return None
    (task, item_a, item_b), _ = _build_all(row, connection, _CLAIM_TASK, _CLAIM_ITEM_A, _CLAIM_ITEM_B)
    Task.item_a.field.set_cached_value(task, item_a)
    Task.item_b.field.set_cached_value(task, item_b)
    return task


def task_slot_take(*, task_id: int, slots_default: int, connection=None) -> bool:
    """Take one place of the task if it has one left: ``Task.objects.filter(pk=task_id,
    n_assigned__lt=task_slots(project)).update(n_assigned=F("n_assigned") + 1)``; True if taken."""
    connection = connection or connections[DEFAULT_DB_ALIAS]
    sql = _statement(connection, ("slot",), lambda qn: (
        f"UPDATE {_table(Task, connection)} SET {qn('n_assigned')} = {qn('n_assigned')} + 1"
        f" WHERE {qn('id')} = %s AND {qn('n_assigned')} < COALESCE({qn('max_raters')}, %s)"))
    return bool(_execute(sql, [task_id, slots_default], connection))


_RIGHT_ITEM = Columns(Item, "ri")


def assignment_open(*, rater_id: int, connection=None) -> Assignment | None:
    """The rater's open assignment with its task and both images, or None: ``Assignment.objects.filter(
    rater_id=rater_id, state=OPEN).select_related("task", "left_item", "right_item").first()`` (a rater holds
    at most one; a constraint says so)."""
    connection = connection or connections[DEFAULT_DB_ALIAS]

    def build(qn):
        item = _table(Item, connection)
        return (
            f"SELECT {_ASSIGNMENT.select(connection)}, {_TASK.select(connection)}, {_LEFT_ITEM.select(connection)}"
            f", {_RIGHT_ITEM.select(connection)}"
            f" FROM {_table(Assignment, connection)} a"
            f" JOIN {_table(Task, connection)} t ON t.{qn('id')} = a.{qn('task_id')}"
            f" JOIN {item} li ON li.{qn('id')} = a.{qn('left_item_id')}"
            f" LEFT OUTER JOIN {item} ri ON ri.{qn('id')} = a.{qn('right_item_id')}"
            f" WHERE a.{qn('rater_id')} = %s AND a.{qn('state')} = %s ORDER BY a.{qn('id')} LIMIT 1"
        )

    row = one(_statement(connection, ("open",), build), [rater_id, AssignmentState.OPEN.value], connection)
    if row is None:
        return None
    (assignment, task, left_item, right_item), _ = _build_all(row, connection, _ASSIGNMENT, _TASK, _LEFT_ITEM,
                                                              _RIGHT_ITEM)
    Assignment.task.field.set_cached_value(assignment, task)
    Assignment.left_item.field.set_cached_value(assignment, left_item)
    Assignment.right_item.field.set_cached_value(assignment, right_item)
    return assignment
