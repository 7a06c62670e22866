"""Dataset export: Parquet and CSV round trips, streaming by pages, and who may download."""

import csv
import io
import json
import uuid
from datetime import UTC

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from annotator import selectors, services
from annotator.exports import COLUMNS, judgments_export
from annotator.models import Assignment, Judgment
from annotator.services.quality import rater_exclude
from tests.conftest import ready_rater
from tests.factories import RaterFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRETS = ("PIDSECRET4242", "STUDYSECRET77", "SESSIONSECRET9")


def answer_all(rater, choices=("left", "right", "tie"), flags=()):
    """The rater answers every task open to them, cycling through ``choices``."""
    n = 0
    while (assignment := services.assignment_next(rater=rater)) is not None:
        services.judgment_create(
            rater=rater, assignment_id=assignment.pk, choice=choices[n % len(choices)],
            idempotency_key=uuid.uuid4(), instruction_version_id=rater.acknowledged_instruction_id,
            response_time_ms=1000 + n, flags=flags if n % 2 == 0 else (),
        )
        n += 1
    return n


@pytest.fixture
def judged(project, rater):
    """Judgments from three raters: one with full demographics and Prolific ids, one with none at all."""
    project.pairwise_flags = ["both bad"]
    project.save(update_fields=["pairwise_flags"])
    rater.project.refresh_from_db()
    answer_all(rater)
    crowd = ready_rater(project, prolific_pid=SECRETS[0], study_id=SECRETS[1], session_id=SECRETS[2],
                        source="prolific")
    services.demographics_submit(rater=crowd, country="Portugal", languages="pt, en", age_band="35-44",
                                 gender="prefer_not", expertise="photographer", colour_vision="typical",
                                 device="desktop")
    answer_all(crowd, choices=("right", "tie"), flags=["both bad"])
    # Answers under a newer instruction version, from a rater who skipped the demographics form.
    services.instruction_version_create(project=project, text="Prefer realism.", created_by=project.owner)
    quiet = RaterFactory(project=project)
    services.rater_consent(rater=quiet, consent_version_id=selectors.consent_current(project=project).pk)
    services.rater_acknowledge_instructions(
        rater=quiet, instruction_version_id=selectors.instruction_current(project=project).pk)
    project.overlap = 3
    project.save(update_fields=["overlap"])
    quiet.project.refresh_from_db()
    answer_all(quiet, choices=("left",))
    # an excluded rater's answers are exported, flagged (releases and fits leave them out)
    rater_exclude(rater=quiet, by_user=project.owner, reason="Too fast.")
    return project


def expected_rows(project):
    rows = []
    for j in (Judgment.objects.filter(project=project).order_by("id")
              .select_related("rater", "left_item", "right_item", "instruction_version")):
        demographics = getattr(j.rater, "demographics", None)

        def d(name, demographics=demographics):
            return getattr(demographics, name) if demographics else None

        rows.append({
            "judgment_id": j.pk, "submitted_at": j.submitted_at, "shown_at": j.shown_at,
            "rater": j.rater.public_id, "task_id": j.task_id,
            "left_item_id": j.left_item_id, "left_item_sha256": j.left_item.sha256,
            "left_item_name": j.left_item.original_name,
            "right_item_id": j.right_item_id, "right_item_sha256": j.right_item.sha256,
            "right_item_name": j.right_item.original_name,
            "choice": j.choice, "winner_id": j.winner_id, "loser_id": j.loser_id, "is_tie": j.is_tie,
            "is_repeat": j.is_repeat, "excluded_rater": j.rater.excluded_at is not None,
            "instruction_version": j.instruction_version.version, "response_time_ms": j.response_time_ms,
            "flags": j.flags,
            **{f"rater_{name}": d(name) for name in
               ("country", "languages", "age_band", "gender", "expertise", "colour_vision", "device")},
        })
    return rows


def parquet_rows(data: bytes) -> list[dict]:
    rows = pq.read_table(io.BytesIO(data)).to_pylist()
    for row in rows:
        row["flags"] = json.loads(row["flags"])
    return rows


def export_bytes(project, fmt, **kwargs) -> bytes:
    out = io.BytesIO()
    judgments_export(project=project, fmt=fmt, out=out, **kwargs)
    return out.getvalue()


def test_parquet_round_trip_equals_the_database(judged):
    expected = expected_rows(judged)
    assert len(expected) >= 12
    data = export_bytes(judged, "parquet")
    table = pq.read_table(io.BytesIO(data))
    assert table.column_names == [name for name, _, _ in COLUMNS]
    assert str(table.schema.field("submitted_at").type) == "timestamp[us, tz=UTC]"
    assert parquet_rows(data) == expected
    assert {r["excluded_rater"] for r in expected} == {True, False}


def test_exported_outcomes_follow_the_choice(judged):
    rows = parquet_rows(export_bytes(judged, "parquet"))
    assert {r["choice"] for r in rows} == {"left", "right", "tie"}
    for r in rows:
        if r["choice"] == "tie":
            assert r["is_tie"] and r["winner_id"] is None and r["loser_id"] is None
        elif r["choice"] == "left":
            assert (r["winner_id"], r["loser_id"]) == (r["left_item_id"], r["right_item_id"])
        else:
            assert (r["winner_id"], r["loser_id"]) == (r["right_item_id"], r["left_item_id"])
    assert {r["instruction_version"] for r in rows} == {1, 2}
    assert ["both bad"] in [r["flags"] for r in rows] and [] in [r["flags"] for r in rows]
    expertise = {r["rater_expertise"] for r in rows}
    assert expertise == {"", "photographer", None}  # blank answer, an answer, no form at all
    assert all(r["submitted_at"].tzinfo is not None and r["submitted_at"].utcoffset().total_seconds() == 0
               for r in rows)


def test_csv_round_trip_equals_the_database(judged):
    expected = expected_rows(judged)
    text = export_bytes(judged, "csv").decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [name for name, _, _ in COLUMNS]
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected):
        assert int(got["judgment_id"]) == want["judgment_id"]
        assert got["rater"] == want["rater"]
        assert got["choice"] == want["choice"]
        assert got["winner_id"] == ("" if want["winner_id"] is None else str(want["winner_id"]))
        assert got["is_tie"] == ("true" if want["is_tie"] else "false")
        assert got["excluded_rater"] == ("true" if want["excluded_rater"] else "false")
        assert int(got["instruction_version"]) == want["instruction_version"]
        assert json.loads(got["flags"]) == want["flags"]
        assert got["left_item_sha256"] == want["left_item_sha256"]
        assert got["rater_expertise"] == (want["rater_expertise"] or "")
        stamp = want["submitted_at"].astimezone(UTC)
        assert got["submitted_at"].startswith(stamp.strftime("%Y-%m-%d %H:%M:%S"))
        assert got["submitted_at"].endswith("Z")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_prolific_ids_never_appear(judged, fmt):
    data = export_bytes(judged, fmt)
    for secret in SECRETS:
        assert secret.encode() not in data
    assert b"prolific" not in data.lower()


def test_pages_by_id_and_constant_query_count(judged):
    n = Judgment.objects.filter(project=judged).count()
    with CaptureQueriesContext(connection) as queries:
        data = export_bytes(judged, "parquet", page_rows=5)
    pages = -(-n // 5) + (1 if n % 5 == 0 else 0)  # a full last page needs one more (empty) query
    assert len([q for q in queries.captured_queries if "annotator_judgment" in q["sql"]]) == pages
    assert all("OFFSET" not in q["sql"].upper() for q in queries.captured_queries)
    parquet = pq.ParquetFile(io.BytesIO(data))
    assert parquet.metadata.num_row_groups == -(-n // 5)
    assert parquet_rows(data) == expected_rows(judged)


def test_since_id_exports_only_newer_judgments(judged):
    ids = list(Judgment.objects.filter(project=judged).order_by("id").values_list("id", flat=True))
    out = io.BytesIO()
    report = judgments_export(project=judged, fmt="parquet", out=out, since_id=ids[4])
    assert (report.n_rows, report.last_id) == (len(ids) - 5, ids[-1])
    assert [r["judgment_id"] for r in parquet_rows(out.getvalue())] == ids[5:]


def test_other_projects_judgments_are_not_exported(judged, researcher):
    other = services.project_create(owner=researcher, name="Pears", overlap=1)
    assert export_bytes(other, "parquet") and pq.read_table(io.BytesIO(export_bytes(other, "parquet"))).num_rows == 0
    assert export_bytes(other, "csv").decode().strip() == ",".join(f'"{n}"' for n, _, _ in COLUMNS)


def test_management_command_writes_the_file(judged, tmp_path):
    out = tmp_path / "judgments.parquet"
    stdout = io.StringIO()
    call_command("export_judgments", judged.slug, "--format", "parquet", "--out", str(out), stdout=stdout)
    assert parquet_rows(out.read_bytes()) == expected_rows(judged)
    assert f"Wrote {Judgment.objects.filter(project=judged).count()} judgments" in stdout.getvalue()


# Download endpoint --------------------------------------------------------------------------------


def url(project, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/projects/{project.slug}/judgments/export/" + (f"?{query}" if query else "")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_member_downloads_the_export(judged, researcher, fmt):
    client = APIClient()
    client.force_login(researcher)
    response = client.get(url(judged, **{"as": fmt}), HTTP_ACCEPT="*/*")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith(f'attachment; filename="{judged.slug}-judgments-')
    assert response["Content-Disposition"].endswith(f'.{fmt}"')
    data = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(data)
    if fmt == "parquet":
        assert response["Content-Type"] == "application/vnd.apache.parquet"
        assert parquet_rows(data) == expected_rows(judged)
    else:
        assert response["Content-Type"].startswith("text/csv")
        assert len(list(csv.DictReader(io.StringIO(data.decode())))) == len(expected_rows(judged))
    for secret in SECRETS:
        assert secret.encode() not in data


def test_default_is_parquet_and_viewers_may_download(judged):
    viewer = UserFactory()
    services.membership_set(project=judged, user=viewer, role="viewer")
    client = APIClient()
    client.force_login(viewer)
    response = client.get(url(judged, since_id=0))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    assert len(parquet_rows(b"".join(response.streaming_content))) == len(expected_rows(judged))


def test_non_member_gets_404(judged):
    client = APIClient()
    client.force_login(UserFactory())
    response = client.get(url(judged))
    assert response.status_code == 404
    assert b"PAR1" not in response.content


def test_anonymous_is_refused(judged):
    assert APIClient().get(url(judged)).status_code in (401, 403)


@pytest.mark.parametrize(("params", "field"), [({"as": "xlsx"}, "as"), ({"since_id": "abc"}, "since_id")])
def test_bad_parameters_name_the_field(judged, researcher, params, field):
    client = APIClient()
    client.force_login(researcher)
    response = client.get(url(judged, **params))
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_timestamps_keep_every_microsecond_near_a_second_boundary(judged):
    """A time such as 12:00:03.999909 stays in second 03 (SQLite would round it up to 04 in strftime)."""
    from datetime import datetime

    from annotator.exports import EpochMicros

    moment = datetime(2026, 11, 22, 6, 37, 3, 999909, tzinfo=UTC)
    judgment = Judgment.objects.filter(project=judged).order_by("id").first()
    Assignment.objects.filter(pk=judgment.assignment_id).update(shown_at=moment)
    micros = Assignment.objects.filter(pk=judgment.assignment_id).annotate(
        us=EpochMicros("shown_at")).values_list("us", flat=True).get()
    assert micros == int(moment.timestamp()) * 1_000_000 + 999909
