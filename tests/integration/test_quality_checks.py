"""Quality checks: gold pairs and attention checks mixed into raters' streams, scored, never counted as data.

A check is served at the project's check rate while a new task is left, at most once per rater; its answers
are scored (``Judgment.is_check`` / ``check_passed``) and left out of every fit, statistic, export and count; a
rater who fails ``check_fail_limit`` checks is screened out (excluded by PrefLab itself, no completion code).
"""

import csv
import io
import threading
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.db.models import F
from django.urls import reverse

from annotator import selectors, services
from annotator.errors import Conflict, InvalidInput, NotFound
from annotator.exports import judgments_export
from annotator.models import Assignment, Judgment, Rater, RaterExclusion, Task
from annotator.services.prolific import rater_places_release
from annotator.services.quality import rater_exclude, rater_include
from annotator.views import RATER_CSV_COLUMNS
from ranking import loaders
from ranking.models import FitRun
from ranking.services import agreement_reports, releases
from tests.conftest import ready_rater, requires_postgres, run_concurrently
from tests.factories import ItemFactory, UserFactory
from tests.integration.test_permissions import rater_client, token_client

pytestmark = pytest.mark.django_db


def make_project(researcher, *, n_items=6, overlap=1, check_rate=0.0, fail_limit=0, tasks_per_rater=0, **settings):
    project = services.project_create(owner=researcher, name=f"Q{uuid.uuid4().hex[:6]}", overlap=overlap,
                                      tasks_per_rater=tasks_per_rater)
    items = [ItemFactory(project=project, prompt="a cat") for _ in range(n_items)]
    services.consent_version_create(project=project, text="You agree.")
    services.instruction_version_create(project=project, text="Pick the better image.", created_by=researcher)
    services.tasks_generate_within_prompt(project=project, random_state=0)
    services.project_update(project=project, check_rate=check_rate, check_fail_limit=fail_limit, **settings)
    return project, items


def gold(project, left, right, answer="left"):
    return services.check_create(project=project, kind="gold", left_item_id=left.pk, right_item_id=right.pk,
                                 answer=answer)


def attention(project, left, right, answer="right", instruction="Attention check: choose the image on the right."):
    return services.check_create(project=project, kind="attention", left_item_id=left.pk, right_item_id=right.pk,
                                 answer=answer, instruction=instruction)


def submit(rater, assignment, choice, key=None):
    return services.judgment_create(rater=rater, assignment_id=assignment.pk, choice=choice,
                                    idempotency_key=key or uuid.uuid4(),
                                    instruction_version_id=rater.acknowledged_instruction_id)


def answer_all(rater, choose=lambda a: "left"):
    """Answer until nothing is left. Returns the assignments in order."""
    stream = []
    while (a := services.assignment_next(rater=rater)) is not None:
        submit(rater, a, choose(a))
        stream.append(a)
    return stream


def next_check(rater):
    """Answer normal tasks ("left") until the next assignment is a check; return that (open) check."""
    for _ in range(200):
        a = services.assignment_next(rater=rater)
        assert a is not None, "no check was served"
        if a.task.check_kind:
            return a
        submit(rater, a, "left")
    raise AssertionError("no check within 200 assignments")


def right_choice_for(a) -> str:
    """The side to press to give the check's expected answer, as shown to this rater."""
    task = a.task
    if task.check_answer == "tie":
        return "tie"
    expected = task.item_a_id if task.check_answer == "left" else task.item_b_id
    return "left" if a.left_item_id == expected else "right"


def wrong_choice_for(a) -> str:
    return "right" if right_choice_for(a) == "left" else "left"


# Serving ----------------------------------------------------------------------------------------------


def test_checks_come_at_the_rate_each_once_and_never_delay_completion(researcher):
    project, items = make_project(researcher, n_items=10, check_rate=0.3)  # 45 tasks
    checks = [gold(project, items[i], items[(i + k) % 10]) for k in (1, 2, 3) for i in range(10)]  # 30 checks
    rater = ready_rater(project)
    stream = answer_all(rater)
    served = [a for a in stream if a.task.check_kind]
    normal = [a for a in stream if not a.task.check_kind]
    assert len(normal) == 45  # every task once: checks never crowd out a task
    # each step is a check with probability 0.3 while one is left: expected share 0.3 (SD ≈ 0.06)
    assert 0.15 <= len(served) / len(stream) <= 0.45
    assert len({a.task_id for a in served}) == len(served)  # never the same check twice
    assert {a.task_id for a in served} <= {c.pk for c in checks}
    # nothing new is left: no check is served either, though unseen checks remain
    assert selectors.checks_unseen_by(rater=rater).exists()
    assert services.assignment_next(rater=rater) is None
    rater.refresh_from_db()
    assert (rater.n_judgments, rater.n_checks) == (len(stream), len(served))
    assert selectors.rater_progress(rater=rater) == {"done": len(stream), "total": len(stream)}


def test_a_rater_sees_each_check_at_most_once_even_when_only_checks_are_due(researcher):
    project, items = make_project(researcher, n_items=8, check_rate=0.5)  # 28 tasks
    checks = [gold(project, items[0], items[1]), attention(project, items[2], items[3])]
    rater = ready_rater(project)
    stream = answer_all(rater)
    served = [a.task_id for a in stream if a.task.check_kind]
    assert sorted(served) == sorted(c.pk for c in checks)  # 28 tasks at rate 0.5: both seen, once each
    assert Assignment.objects.filter(rater=rater, task__in=checks).count() == 2


def test_the_normal_selection_never_hands_out_a_check(researcher):
    project, items = make_project(researcher, n_items=5, check_rate=0.0)
    gold(project, items[0], items[1])
    attention(project, items[2], items[3])
    rater = ready_rater(project)
    stream = answer_all(rater)
    assert len(stream) == 10 and not any(a.task.check_kind for a in stream)
    assert not selectors.tasks_available_to(rater=rater).exists()


def test_a_gold_pair_is_shown_both_ways_an_attention_check_as_stored(researcher):
    project, items = make_project(researcher, n_items=4, overlap=16, check_rate=0.5)
    g = gold(project, items[0], items[1])
    a = attention(project, items[3], items[2])  # stored right-to-left by id: shown as stored
    sides = set()
    for _ in range(16):
        rater = ready_rater(project)
        for assignment in answer_all(rater):
            if assignment.task_id == g.pk:
                sides.add((assignment.left_item_id, assignment.right_item_id))
            if assignment.task_id == a.pk:
                assert (assignment.left_item_id, assignment.right_item_id) == (items[3].pk, items[2].pk)
    assert sides == {(items[0].pk, items[1].pk), (items[1].pk, items[0].pk)}


def test_checks_do_not_count_towards_tasks_per_rater(researcher):
    project, items = make_project(researcher, n_items=8, check_rate=0.5, tasks_per_rater=6)
    for i in range(6):
        gold(project, items[i], items[i + 1])
    rater = ready_rater(project)
    stream = answer_all(rater)
    assert sum(1 for a in stream if not a.task.check_kind) == 6
    assert any(a.task.check_kind for a in stream)
    rater.refresh_from_db()
    assert selectors.rater_progress(rater=rater) == {"done": len(stream), "total": len(stream)}


def test_a_retired_check_is_handed_to_no_new_rater_and_its_answers_are_kept(researcher):
    project, items = make_project(researcher, n_items=6, check_rate=0.5)
    check = gold(project, items[0], items[1])
    first = ready_rater(project)
    a = next_check(first)
    submit(first, a, right_choice_for(a))
    retired = services.check_retire(project=project, check_id=check.pk)
    assert retired.check_retired_at is not None
    with pytest.raises(Conflict):
        services.check_retire(project=project, check_id=check.pk)
    later = ready_rater(project)
    assert not any(x.task.check_kind for x in answer_all(later))
    assert Judgment.objects.filter(task=check, is_check=True, check_passed=True).count() == 1
    row = selectors.checks_of_project(project=project)[0]
    assert (row.n_shown, row.n_answered, row.n_passed) == (1, 1, 1)


def test_an_open_check_can_still_be_answered_after_it_is_retired(researcher):
    project, items = make_project(researcher, n_items=6, check_rate=0.5)
    check = attention(project, items[0], items[1])
    rater = ready_rater(project)
    a = next_check(rater)
    services.check_retire(project=project, check_id=check.pk)
    judgment, created = submit(rater, a, "right")
    assert created and judgment.is_check and judgment.check_passed


def test_retiring_and_restoring_an_image_leaves_a_retired_check_retired(researcher):
    project, items = make_project(researcher, n_items=4, check_rate=0.5)
    check = gold(project, items[0], items[1])
    services.check_retire(project=project, check_id=check.pk)
    services.item_retire(item=items[0])
    services.item_restore(item=items[0])
    rater = ready_rater(project)
    assert not selectors.checks_unseen_by(rater=rater).exists()


def test_a_tie_check_is_not_served_where_ties_are_turned_off(researcher):
    project, items = make_project(researcher, n_items=4, check_rate=0.5)
    gold(project, items[0], items[1], answer="tie")
    services.project_update(project=project, allow_tie=False)
    rater = ready_rater(project)
    assert not selectors.checks_unseen_by(rater=rater).exists()


# Scoring and screen-out -------------------------------------------------------------------------------


def test_answers_are_scored_in_terms_of_the_image_not_the_side(researcher):
    project, items = make_project(researcher, n_items=8, check_rate=0.5)
    for i in range(4):
        gold(project, items[2 * i], items[2 * i + 1], answer="right")
    rater = ready_rater(project)
    outcomes = []
    for want_pass in (True, False, True, False):
        a = next_check(rater)
        judgment, _ = submit(rater, a, right_choice_for(a) if want_pass else wrong_choice_for(a))
        expected = a.task.item_b_id
        assert judgment.winner_id == (expected if want_pass else a.task.item_a_id)
        outcomes.append((judgment.is_check, judgment.check_passed, judgment.is_repeat))
    assert outcomes == [(True, True, False), (True, False, False), (True, True, False), (True, False, False)]
    assert selectors.rater_check_counts(rater_ids=[rater.pk]) == {rater.pk: (4, 2)}
    assert Judgment.objects.filter(rater=rater, is_check=False).values_list("check_passed", flat=True).distinct()\
        .first() is None
    rater.refresh_from_db()
    assert rater.excluded_at is None  # no fail limit: nobody is screened out


def test_a_tie_answer_passes_a_tie_check_only(researcher):
    project, items = make_project(researcher, n_items=6, check_rate=0.5)
    gold(project, items[0], items[1], answer="tie")
    gold(project, items[2], items[3], answer="tie")
    rater = ready_rater(project)
    first = next_check(rater)
    assert submit(rater, first, "tie")[0].check_passed is True
    second = next_check(rater)
    assert submit(rater, second, "left")[0].check_passed is False


def test_a_check_answer_retried_is_stored_once_and_asks_for_no_refit(researcher):
    project, items = make_project(researcher, n_items=6, check_rate=0.5)
    gold(project, items[0], items[1])
    rater = ready_rater(project)
    a = next_check(rater)
    FitRun.objects.filter(project=project).delete()
    key = uuid.uuid4()
    first, created = submit(rater, a, "left", key=key)
    again, created_again = submit(rater, a, "left", key=key)
    assert created and not created_again and first.pk == again.pk
    assert Judgment.objects.filter(assignment=a).count() == 1
    assert not FitRun.objects.filter(project=project).exists()  # a check answer is not data: no refit


def test_failing_the_limit_screens_the_rater_out(researcher):
    project, items = make_project(researcher, n_items=10, check_rate=0.5, fail_limit=2)
    for i in range(5):
        attention(project, items[2 * i], items[2 * i + 1])
    rater = ready_rater(project)
    a = next_check(rater)
    submit(rater, a, right_choice_for(a))  # passed
    a = next_check(rater)
    submit(rater, a, wrong_choice_for(a))  # failed 1 of 2: below the limit
    rater.refresh_from_db()
    assert rater.excluded_at is None
    FitRun.objects.filter(project=project).update(status="succeeded")
    a = next_check(rater)
    held = dict(Task.objects.filter(assignments__rater=rater, assignments__is_repeat=False)
                .values_list("pk", "n_assigned"))
    submit(rater, a, wrong_choice_for(a))  # failed 2 of 3: screened out
    assert rater.excluded_at is not None  # the request's rater is updated in place
    # every task they were handed (the checks too: a check counts the raters it was handed to) has its place back
    assert dict(Task.objects.filter(pk__in=held).values_list("pk", "n_assigned")) == {
        pk: n - 1 for pk, n in held.items()}
    rater.refresh_from_db()
    assert rater.excluded_reason == "Screened out: failed 2 of 3 quality checks."
    assert rater.completed_at is None  # screened out is not finished (Progress counts no completion)
    entry = RaterExclusion.objects.get(rater=rater)
    assert (entry.action, entry.created_by_id) == ("exclude", None)
    assert selectors.rater_screened_out(rater=rater)
    assert services.assignment_next(rater=rater) is None
    assert FitRun.objects.filter(project=project, status="queued", automatic=True).exists()  # their data leaves
    assert rater.pk not in loaders.pairwise_rows(project=project).rater_ids.tolist()
    # a researcher including them again takes them back in (no longer "screened out")
    rater_include(rater=rater, by_user=researcher, reason="reviewed: the checks were unclear")
    assert not selectors.rater_screened_out(rater=rater)
    assert services.assignment_next(rater=rater) is not None


def _check_handed(rater, check):
    """An open assignment of ``check`` for ``rater``, as the check selection makes it (the test picks which)."""
    assignment = Assignment.objects.create(task=check, rater=rater, project=rater.project,
                                           left_item_id=check.item_a_id, right_item_id=check.item_b_id)
    Task.objects.filter(pk=check.pk).update(n_assigned=F("n_assigned") + 1)
    return Assignment.objects.select_related("task").get(pk=assignment.pk)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_raters_screened_out_at_once_over_shared_checks_are_both_stored(researcher, monkeypatch, caplog):
    """A answered check 2 and B check 1; then A fails check 1 and B check 2 at the same moment. Each answer's
    transaction holds its own check's row (counters) and then gives back the places of every task its rater
    answered, the other's check among them: a deadlock, which PostgreSQL breaks by aborting one. The aborted answer
    is tried again once the other committed: both are stored (201), both raters are out, every place is back."""
    from annotator.services import quality

    project, items = make_project(researcher, n_items=4, overlap=2, fail_limit=1)
    first, second = gold(project, items[0], items[1]), gold(project, items[2], items[3])
    a, b = ready_rater(project), ready_rater(project)
    for rater, check in ((a, second), (b, first)):
        done = _check_handed(rater, check)
        assert submit(rater, done, right_choice_for(done))[1]  # passed: holds its place
    open_a, open_b = _check_handed(a, first), _check_handed(b, second)
    assert dict(Task.objects.filter(pk__in=[first.pk, second.pk]).values_list("pk", "n_assigned")) == {
        first.pk: 2, second.pk: 2}

    give_back, barrier, local = quality._places_give_back, threading.Barrier(2, timeout=30), threading.local()

    def both_hold_their_check(*, rater):
        if not getattr(local, "met", False):  # the first try of each answer: wait until both hold their check row
            local.met = True
            barrier.wait()
        return give_back(rater=rater)

    monkeypatch.setattr(quality, "_places_give_back", both_hold_their_check)
    results, errors = {}, []

    def fail(rater, assignment):
        try:
            results[rater.pk] = submit(rater, assignment, wrong_choice_for(assignment))[1]
        except Exception as exc:  # an unhandled deadlock would surface here (a 500 over HTTP)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=fail, args=args) for args in ((a, open_a), (b, open_b))]
    retries = run_concurrently(threads, caplog)
    assert not errors, errors
    assert results == {a.pk: True, b.pk: True}
    # the cycle did close (PostgreSQL broke it by rolling one answer back), and that answer was tried again
    assert retries == 1
    assert Judgment.objects.filter(project=project, is_check=True).count() == 4
    assert Rater.objects.filter(pk__in=[a.pk, b.pk], excluded_at__isnull=False).count() == 2
    assert dict(Task.objects.filter(pk__in=[first.pk, second.pk]).values_list("pk", "n_assigned")) == {
        first.pk: 0, second.pk: 0}
    assert RaterExclusion.objects.filter(rater__in=[a, b]).count() == 2


def test_a_researcher_exclusion_is_not_a_screen_out(researcher):
    project, _ = make_project(researcher, n_items=4)
    rater = ready_rater(project)
    submit(rater, services.assignment_next(rater=rater), "left")
    rater_exclude(rater=rater, by_user=researcher, reason="too fast")
    assert not selectors.rater_screened_out(rater=rater)


def screened_out_over_http(client, project, pid="P1"):
    """Join as a crowd participant, answer over the rater API, fail checks until screened out; the last
    submission's body."""
    client.get(reverse("join", args=[project.slug, project.join_token]) + f"?PROLIFIC_PID={pid}")
    consent = project.consent_versions.first()
    client.post(reverse("rater:consent", args=[project.slug]), {"decision": "agree", "consent_version": consent.pk})
    client.post(reverse("rater:demographics", args=[project.slug]), {"age_band": "prefer_not"})
    client.post(reverse("rater:instructions", args=[project.slug]),
                {"acknowledge": "yes", "instruction_version": project.instruction_versions.first().pk})
    body = client.get(reverse("rater:api_next", args=[project.slug])).json()
    for _ in range(100):
        assert body["status"] == "task", body
        assignment = Assignment.objects.select_related("task").get(pk=body["assignment"]["id"])
        choice = wrong_choice_for(assignment) if assignment.task.check_kind else "left"
        response = client.post(reverse("rater:api_judgments", args=[project.slug]), {
            "assignment": assignment.pk, "choice": choice, "idempotency_key": str(uuid.uuid4()),
            "instruction_version": body["instruction_version"], "response_time_ms": 1500,
        }, content_type="application/json")
        assert response.status_code == 201, response.content
        assert set(response.json()) == {"id", "idempotency_key", "assignment", "choice", "submitted_at", "next"}
        body = response.json()["next"]
        if Rater.objects.get(prolific_pid=pid).excluded_at is not None:
            return body
    raise AssertionError("never screened out")


def test_a_screened_out_crowd_participant_is_sent_back_with_the_screened_out_code(client, researcher):
    project, items = make_project(researcher, n_items=10, check_rate=0.5, fail_limit=1,
                                  completion_redirect_url="https://app.prolific.com/submissions/complete",
                                  screened_out_code="SCREENED1")
    attention(project, items[0], items[1])
    body = screened_out_over_http(client, project)
    assert body["status"] == "done"
    response = client.get(reverse("rater:done", args=[project.slug]))
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.url).query)["cc"] == ["SCREENED1"]
    assert project.completion_code not in response.url
    # the task page sends them to the same place: no more tasks
    assert client.get(reverse("rater:task", args=[project.slug])).url.endswith("/done/")


def test_a_screened_out_rater_without_a_code_sees_a_message_and_no_completion_code(client, researcher):
    project, items = make_project(researcher, n_items=10, check_rate=0.5, fail_limit=1,
                                  completion_redirect_url="https://app.prolific.com/submissions/complete")
    gold(project, items[0], items[1])
    screened_out_over_http(client, project)
    response = client.get(reverse("rater:done", args=[project.slug]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "no more tasks for you" in page and project.completion_code not in page
    assert 'id="return-code"' not in page


def test_a_rater_who_finishes_without_failing_gets_the_completion_code(client, researcher):
    project, items = make_project(researcher, n_items=4, check_rate=0.5, fail_limit=1)
    gold(project, items[0], items[1])
    rater = ready_rater(project)
    answer_all(rater, choose=lambda a: right_choice_for(a) if a.task.check_kind else "left")
    client_for_rater = rater_client(rater)
    page = client_for_rater.get(reverse("rater:done", args=[project.slug])).content.decode()
    assert project.completion_code in page


# Never data -------------------------------------------------------------------------------------------


@pytest.fixture
def answered(researcher):
    """A project whose three raters answered everything, checks included (some failed)."""
    project, items = make_project(researcher, n_items=6, overlap=3, check_rate=0.4)
    for i in range(3):
        gold(project, items[2 * i], items[2 * i + 1])
    attention(project, items[0], items[5])
    raters = [ready_rater(project) for _ in range(3)]
    for rater in raters:
        answer_all(rater, choose=lambda a: "left")
    check_ids = set(Judgment.objects.filter(project=project, is_check=True).values_list("id", flat=True))
    assert check_ids, "the seeded streams serve checks"
    data_ids = set(Judgment.objects.filter(project=project, is_check=False).values_list("id", flat=True))
    assert len(data_ids) == 15 * 3
    return project, raters, check_ids, data_ids


def test_check_answers_are_left_out_of_fits_agreement_and_calibration(answered):
    project, _, _check_ids, data_ids = answered
    cutoff = loaders.latest_judgment_id(project_id=project.pk)
    fit = loaders.comparison_data(project_id=project.pk, cutoff_judgment_id=cutoff, params={"include_repeats": True})
    assert set(fit.judgment_ids.tolist()) == data_ids
    assert set(loaders.pairwise_rows(project=project).judgment_ids.tolist()) == data_ids
    assert set(loaders.judgments_upto(project=project).values_list("id", flat=True)) == data_ids
    calibration = loaders.calibration_data(project=project, cutoff_judgment_id=cutoff, cutoff_annotation_id=None,
                                           cutoff_metric_run_id=None)
    assert calibration.judgments.outcome.size == len(data_ids)
    quality = selectors.rater_quality_by_rater(project=project)
    assert sum(q.n_decisive for q in quality.values()) == len(data_ids)  # every data answer is decisive here


def test_check_answers_are_left_out_of_exports_releases_and_progress(answered):
    project, _raters, _check_ids, data_ids = answered
    out = io.BytesIO()
    report = judgments_export(project=project, fmt="csv", out=out)
    assert report.n_rows == len(data_ids)
    exported = {int(row["judgment_id"]) for row in csv.DictReader(io.StringIO(out.getvalue().decode()))}
    assert exported == data_ids
    assert releases.release_estimate(project=project)["judgments"] == len(data_ids)
    progress = selectors.project_progress(project=project)
    assert (progress.n_tasks, progress.n_judgments, progress.completion) == (15, len(data_ids), 1.0)
    assert not selectors.project_readiness(project=project).has_places  # checks are no places


def test_check_answers_are_left_out_of_the_api_lists(answered, researcher):
    project, _, _check_ids, data_ids = answered
    api = token_client(researcher)
    listed = api.get(reverse("api_judgments", args=[project.slug]) + "?page_size=500").json()
    assert {row["id"] for row in listed["results"]} == data_ids
    tasks = api.get(reverse("api_tasks", args=[project.slug]) + "?page_size=500").json()
    assert len(tasks["results"]) == 15


def test_the_datasheet_states_the_checks_and_counts_no_check_answer(answered, client, researcher):
    project, _, check_ids, data_ids = answered
    passed = Judgment.objects.filter(project=project, is_check=True, check_passed=True).count()
    agreement_reports.agreement_report_compute_now(project=project)
    client.force_login(researcher)
    sheet = client.get(reverse("ranking_reports:datasheet_json", args=[project.slug])).json()
    assert sheet["counts"]["judgments"] == len(data_ids) and sheet["counts"]["pairwise_tasks"] == 15
    qc = sheet["exclusions"]["quality_checks"]
    assert (qc["n_checks"], qc["n_gold"], qc["n_attention"], qc["n_answers"], qc["n_passed"]) == (
        4, 3, 1, len(check_ids), passed)
    assert qc["check_rate"] == 0.4
    page = client.get(reverse("ranking_reports:datasheet", args=[project.slug])).content.decode()
    assert "4 quality checks (3 gold pairs" in page and "check rate of 40" in page
    markdown = client.get(reverse("ranking_reports:datasheet_md", args=[project.slug])).content.decode()
    assert "- Quality checks: 4 (3 gold pairs" in markdown and "no automatic screen-out" in markdown


def test_the_datasheet_counts_screened_out_raters(client, researcher):
    project, items = make_project(researcher, n_items=10, check_rate=0.5, fail_limit=1)
    gold(project, items[0], items[1])
    rater = ready_rater(project)
    a = next_check(rater)
    submit(rater, a, wrong_choice_for(a))
    agreement_reports.agreement_report_compute_now(project=project)
    client.force_login(researcher)
    sheet = client.get(reverse("ranking_reports:datasheet", args=[project.slug])).content.decode()
    assert "1 rater excluded — 1 screened out by PrefLab (automatic)" in sheet
    assert "Screened out: failed 1 of 1 quality checks." in sheet
    assert "screened out: 1 rater" in sheet


def test_expiry_and_place_release_keep_a_checks_counters_consistent(researcher):
    project, items = make_project(researcher, n_items=6, check_rate=0.5)
    check = gold(project, items[0], items[1])
    rater = ready_rater(project)
    a = next_check(rater)
    assert Task.objects.get(pk=check.pk).n_assigned == 1
    from datetime import timedelta

    Assignment.objects.filter(pk=a.pk).update(shown_at=a.shown_at - timedelta(hours=5))
    services.assignments_expire(older_than=timedelta(hours=1))
    assert Task.objects.get(pk=check.pk).n_assigned == 0
    submit(rater, a, "left")  # a late answer is stored and scored, its place taken back
    assert Task.objects.get(pk=check.pk).n_assigned == 1
    assert rater_places_release(rater=rater, by_user=researcher) >= 1
    assert Task.objects.get(pk=check.pk).n_assigned == 0
    assert not selectors.checks_unseen_by(rater=rater).filter(pk=check.pk).exists()  # never shown again


# Rater API ---------------------------------------------------------------------------------------------


def test_the_rater_api_shows_a_gold_pair_like_any_task_and_an_attention_checks_instruction(researcher):
    project, items = make_project(researcher, n_items=6, check_rate=0.5)
    g = gold(project, items[0], items[1])
    attention(project, items[2], items[3], instruction="Attention check: choose the image on the right.")
    rater = ready_rater(project)
    api = rater_client(rater)
    url = reverse("rater:api_next", args=[project.slug])
    bodies = {}
    for _ in range(60):
        body = api.get(url).json()
        if body["status"] != "task":
            break
        assignment = Assignment.objects.select_related("task").get(pk=body["assignment"]["id"])
        kind = assignment.task.check_kind or "task"
        bodies.setdefault(kind, body["assignment"])
        submit(rater, assignment, "left")
    assert set(bodies) == {"task", "gold", "attention"}
    assert set(bodies["gold"]) == set(bodies["task"])
    assert bodies["gold"]["instruction"] is None and bodies["task"]["instruction"] is None
    assert bodies["attention"]["instruction"] == "Attention check: choose the image on the right."
    assert "check" not in str(bodies["gold"]).lower()  # nothing gives a gold pair away
    assert Assignment.objects.get(pk=bodies["gold"]["id"]).task_id == g.pk


# Researcher pages: settings, checks page, raters page --------------------------------------------------


def test_settings_take_the_check_rate_limit_and_code(client, researcher):
    project, _ = make_project(researcher)
    client.force_login(researcher)
    form = {"form": "study", "name": project.name, "overlap": 1, "tasks_per_rater": 0, "repeat_rate": 0,
            "adaptive_batch": 0, "adaptive_target": "items", "allow_tie": "on", "effective_radius": 0.05,
            "completion_code": "DONE1", "check_rate": 0.1, "check_fail_limit": 3, "screened_out_code": "SCR-1"}
    response = client.post(reverse("annotator:settings", args=[project.slug]), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    project.refresh_from_db()
    assert (project.check_rate, project.check_fail_limit, project.screened_out_code) == (0.1, 3, "SCR-1")
    bad = client.post(reverse("annotator:settings", args=[project.slug]), {**form, "check_rate": 0.9})
    assert bad.status_code == 400 and 'id="field-check_rate"' in bad.content.decode()
    project.refresh_from_db()
    assert project.check_rate == 0.1


@pytest.mark.parametrize("field,value", [("check_rate", 0.6), ("check_rate", -0.1), ("check_rate", True),
                                         ("check_fail_limit", -1), ("check_fail_limit", 1.5),
                                         ("screened_out_code", "not a code!")])
def test_bad_check_settings_are_refused_naming_the_field(researcher, field, value):
    project, _ = make_project(researcher)
    with pytest.raises(InvalidInput) as refused:
        services.project_update(project=project, **{field: value}, name="Changed")
    assert refused.value.field == field
    project.refresh_from_db()
    assert project.name != "Changed"


def test_the_api_reads_and_writes_the_check_settings(researcher):
    project, _ = make_project(researcher)
    api = token_client(researcher)
    url = reverse("api_project", args=[project.slug])
    response = api.patch(url, {"check_rate": 0.2, "check_fail_limit": 2, "screened_out_code": "X1"}, format="json")
    assert response.status_code == 200
    assert (response.json()["check_rate"], response.json()["check_fail_limit"],
            response.json()["screened_out_code"]) == (0.2, 2, "X1")
    bad = api.patch(url, {"check_rate": 0.8}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "check_rate"


def checks_url(project):
    return reverse("annotator:checks", args=[project.slug])


def test_a_researcher_makes_lists_and_retires_checks_on_the_page(client, researcher):
    project, items = make_project(researcher, n_items=6, check_rate=0.5)
    client.force_login(researcher)
    assert client.get(checks_url(project)).status_code == 200
    response = client.post(checks_url(project), {"kind": "gold", "left_item": items[0].pk,
                                                 "right_item": items[1].pk, "answer": "left"})
    assert response.status_code == 302
    response = client.post(checks_url(project), {
        "kind": "attention", "left_item": items[2].pk, "right_item": items[3].pk, "answer": "right",
        "instruction": "Attention check: choose the image on the right."})
    assert response.status_code == 302
    gold_check, attention_check = Task.objects.filter(project=project).exclude(check_kind="").order_by("id")
    assert (gold_check.check_kind, gold_check.item_a_id, gold_check.item_b_id, gold_check.check_answer) == (
        "gold", items[0].pk, items[1].pk, "left")
    assert attention_check.check_instruction == "Attention check: choose the image on the right."
    rater = ready_rater(project)
    answer_all(rater, choose=lambda a: right_choice_for(a) if a.task.check_kind else "left")
    page = client.get(checks_url(project)).content.decode()
    assert f'id="check-{gold_check.pk}"' in page and "Attention check: choose the image on the right." in page
    assert "100%" in page
    response = client.post(reverse("annotator:check_retire", args=[project.slug, gold_check.pk]))
    assert response.status_code == 302
    gold_check.refresh_from_db()
    assert gold_check.check_retired_at is not None
    assert "retired" in client.get(checks_url(project)).content.decode()


@pytest.mark.parametrize("posted,field", [
    ({"kind": "gold", "answer": "left", "same": True}, "right_item"),
    ({"kind": "attention", "answer": "right", "instruction": ""}, "instruction"),
    ({"kind": "gold", "answer": "left", "instruction": "Choose left"}, "instruction"),
    ({"kind": "sneaky", "answer": "left"}, "kind"),
    ({"kind": "gold", "answer": "up"}, "answer"),
    ({"kind": "gold", "answer": "left", "other_project": True}, "left_item"),
])
def test_bad_checks_are_refused_with_400_naming_the_field_and_nothing_stored(client, researcher, posted, field):
    project, items = make_project(researcher, n_items=4)
    _other, other_items = make_project(researcher, n_items=2)
    client.force_login(researcher)
    data = {"kind": posted["kind"], "answer": posted["answer"], "instruction": posted.get("instruction", ""),
            "left_item": (other_items[0] if posted.get("other_project") else items[0]).pk,
            "right_item": (items[0] if posted.get("same") else items[1]).pk}
    response = client.post(checks_url(project), data)
    assert response.status_code == 400
    assert f'id="field-{field}"' in response.content.decode()
    assert 'has-error" id="field-' + field in response.content.decode()
    assert not Task.objects.exclude(check_kind="").exists()


def test_the_service_refuses_bad_checks_naming_the_field(researcher):
    project, items = make_project(researcher, n_items=4)
    _other, other_items = make_project(researcher, n_items=2)
    services.project_update(project=project, allow_tie=False)
    services.item_retire(item=items[3])
    cases = [
        (dict(kind="gold", left_item_id=items[0].pk, right_item_id=items[0].pk, answer="left"), "right_item"),
        (dict(kind="gold", left_item_id=other_items[0].pk, right_item_id=items[1].pk, answer="left"), "left_item"),
        (dict(kind="gold", left_item_id=items[0].pk, right_item_id=items[3].pk, answer="left"), "right_item"),
        (dict(kind="gold", left_item_id="x", right_item_id=items[1].pk, answer="left"), "left_item"),
        (dict(kind="gold", left_item_id=items[0].pk, right_item_id=items[1].pk, answer="tie"), "answer"),
        (dict(kind="attention", left_item_id=items[0].pk, right_item_id=items[1].pk, answer="left",
              instruction="x" * 501), "instruction"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidInput) as refused:
            services.check_create(project=project, **kwargs)
        assert refused.value.field == field, kwargs
    with pytest.raises(NotFound):
        services.check_retire(project=project, check_id=Task.objects.filter(project=project).first().pk)
    assert not Task.objects.exclude(check_kind="").exists()


def test_viewers_see_the_checks_but_cannot_change_them(client, researcher):
    project, items = make_project(researcher, n_items=4)
    check = gold(project, items[0], items[1])
    viewer = UserFactory()
    services.membership_set(project=project, user=viewer, role="viewer")
    client.force_login(viewer)
    page = client.get(checks_url(project))
    assert page.status_code == 200
    assert f'id="check-{check.pk}"' in page.content.decode() and 'id="check-create"' not in page.content.decode()
    assert client.post(checks_url(project), {"kind": "gold", "left_item": items[2].pk, "right_item": items[3].pk,
                                             "answer": "left"}).status_code == 403
    assert client.post(reverse("annotator:check_retire", args=[project.slug, check.pk])).status_code == 403
    settings_post = client.post(reverse("annotator:settings", args=[project.slug]),
                                {"form": "study", "check_rate": 0.3})
    assert settings_post.status_code == 403
    assert token_client(viewer).patch(reverse("api_project", args=[project.slug]), {"check_rate": 0.3},
                                      format="json").status_code == 403
    check.refresh_from_db()
    project.refresh_from_db()
    assert check.check_retired_at is None and project.check_rate == 0.0
    assert Task.objects.exclude(check_kind="").count() == 1


def test_outsiders_and_anonymous_users_cannot_see_or_change_checks(client, researcher):
    project, items = make_project(researcher, n_items=4)
    check = gold(project, items[0], items[1])
    retire_url = reverse("annotator:check_retire", args=[project.slug, check.pk])
    create = {"kind": "gold", "left_item": items[2].pk, "right_item": items[3].pk, "answer": "left"}
    for response in (client.get(checks_url(project)), client.post(checks_url(project), create),
                     client.post(retire_url)):
        assert response.status_code == 302 and "login" in response.url
    client.force_login(UserFactory())
    assert client.get(checks_url(project)).status_code == 404
    assert client.post(checks_url(project), create).status_code == 404
    assert client.post(retire_url).status_code == 404
    # a rater's session is no researcher either
    rater = ready_rater(project)
    assert rater_client(rater).post(retire_url).status_code == 302
    check.refresh_from_db()
    assert check.check_retired_at is None and Task.objects.exclude(check_kind="").count() == 1


def test_a_check_of_another_project_cannot_be_retired(client, researcher):
    project, _items = make_project(researcher, n_items=4)
    other, other_items = make_project(UserFactory(), n_items=2)
    foreign = gold(other, other_items[0], other_items[1])
    client.force_login(researcher)
    response = client.post(reverse("annotator:check_retire", args=[project.slug, foreign.pk]), follow=True)
    assert "No quality check" in response.content.decode()
    foreign.refresh_from_db()
    assert foreign.check_retired_at is None


def test_the_raters_page_and_csv_show_checks_and_the_automatic_screen_out(client, researcher):
    project, items = make_project(researcher, n_items=10, check_rate=0.5, fail_limit=1)
    gold(project, items[0], items[1])
    attention(project, items[2], items[3])
    good, bad = ready_rater(project), ready_rater(project)
    a = next_check(good)
    submit(good, a, right_choice_for(a))
    a = next_check(bad)
    submit(bad, a, wrong_choice_for(a))
    client.force_login(researcher)
    page = client.get(reverse("annotator:raters", args=[project.slug])).content.decode()
    assert "1 of 1 passed (100%)" in page and "0 of 1 passed (0%)" in page
    assert "failed checks" in page and "screened out" in page
    assert "PrefLab (automatic)" in page and "Screened out: failed 1 of 1 quality checks." in page
    response = client.get(reverse("annotator:raters_csv", args=[project.slug]))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert tuple(rows[0]) == RATER_CSV_COLUMNS
    by_id = {row["rater"]: row for row in rows}
    assert (by_id[good.public_id]["checks_answered"], by_id[good.public_id]["checks_passed"],
            by_id[good.public_id]["check_pass_rate"], by_id[good.public_id]["failed_checks"],
            by_id[good.public_id]["screened_out"]) == ("1", "1", "1.000", "no", "no")
    assert (by_id[bad.public_id]["failed_checks"], by_id[bad.public_id]["screened_out"],
            by_id[bad.public_id]["status"], by_id[bad.public_id]["excluded"]) == ("yes", "yes", "screened_out", "yes")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the append-only trigger is PostgreSQL's")
def test_an_automatic_exclusion_is_append_only_like_any(researcher):
    from django.db import DatabaseError, transaction

    project, items = make_project(researcher, n_items=10, check_rate=0.5, fail_limit=1)
    gold(project, items[0], items[1])
    rater = ready_rater(project)
    a = next_check(rater)
    submit(rater, a, wrong_choice_for(a))
    with pytest.raises(DatabaseError), transaction.atomic():
        RaterExclusion.objects.filter(rater=rater).update(reason="rewritten")
    with pytest.raises(DatabaseError), transaction.atomic():
        Judgment.objects.filter(rater=rater, is_check=True).update(check_passed=True)


# Researcher API ----------------------------------------------------------------------------------------


def test_the_api_makes_lists_and_retires_checks(researcher):
    project, items = make_project(researcher, n_items=4, check_rate=0.5)
    api = token_client(researcher)
    url = reverse("api_checks", args=[project.slug])
    made = api.post(url, {"kind": "attention", "left_item": items[0].pk, "right_item": items[1].pk,
                          "answer": "right", "instruction": "Attention check: choose the image on the right."},
                    format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["kind"], body["left_item"], body["right_item"], body["answer"]) == (
        "attention", items[0].pk, items[1].pk, "right")
    assert body["retired_at"] is None and body["n_answered"] == 0 and body["pass_rate"] is None
    rater = ready_rater(project)
    check = next_check(rater)
    submit(rater, check, right_choice_for(check))
    listed = api.get(url).json()
    assert [(c["id"], c["n_shown"], c["n_answered"], c["n_passed"], c["pass_rate"]) for c in listed] == [
        (body["id"], 1, 1, 1, 1.0)]
    retired = api.post(reverse("api_check_retire", args=[project.slug, body["id"]]))
    assert retired.status_code == 200 and retired.json()["retired_at"] is not None
    again = api.post(reverse("api_check_retire", args=[project.slug, body["id"]]))
    assert again.status_code == 409 and again.json()["error"]["field"] == "check"


@pytest.mark.parametrize(("posted", "field"), [
    ({"kind": "silver", "answer": "left"}, "kind"),
    ({"kind": "gold", "answer": "up"}, "answer"),
    ({"kind": "gold", "answer": "left", "instruction": "Choose left."}, "instruction"),
    ({"kind": "attention", "answer": "left"}, "instruction"),
    ({"kind": "gold", "answer": "left", "left_item": "x"}, "left_item"),
])
def test_the_api_refuses_bad_checks_with_400_naming_the_field(researcher, posted, field):
    project, items = make_project(researcher, n_items=4)
    body = {"left_item": items[0].pk, "right_item": items[1].pk, **posted}
    response = token_client(researcher).post(reverse("api_checks", args=[project.slug]), body, format="json")
    assert response.status_code == 400 and response.json()["error"]["field"] == field, response.content
    assert not Task.objects.exclude(check_kind="").exists()


def test_the_api_lets_viewers_read_checks_and_no_one_else_change_them(researcher):
    from rest_framework.test import APIClient

    project, items = make_project(researcher, n_items=4)
    check = gold(project, items[0], items[1])
    url = reverse("api_checks", args=[project.slug])
    retire = reverse("api_check_retire", args=[project.slug, check.pk])
    create = {"kind": "gold", "left_item": items[2].pk, "right_item": items[3].pk, "answer": "left"}
    viewer = UserFactory()
    services.membership_set(project=project, user=viewer, role="viewer")
    as_viewer = token_client(viewer)
    assert [c["id"] for c in as_viewer.get(url).json()] == [check.pk]
    assert as_viewer.post(url, create, format="json").status_code == 403
    assert as_viewer.post(retire).status_code == 403
    outsider = token_client(UserFactory())
    assert outsider.get(url).status_code == 404 and outsider.post(retire).status_code == 404
    anonymous = APIClient()
    assert anonymous.get(url).status_code in (401, 403) and anonymous.post(retire).status_code in (401, 403)
    other, other_items = make_project(UserFactory(), n_items=2)
    foreign = gold(other, other_items[0], other_items[1])
    assert token_client(researcher).post(reverse("api_check_retire", args=[project.slug, foreign.pk])).status_code == 404
    check.refresh_from_db()
    foreign.refresh_from_db()
    assert check.check_retired_at is None and foreign.check_retired_at is None
    assert Task.objects.filter(project=project).exclude(check_kind="").count() == 1
