"""Rater quality flags (position bias, too fast, straight-lining) and reversible exclusion of a rater."""

import csv
import io
import uuid

import numpy as np
import pytest
from django.db import DatabaseError, transaction
from django.urls import reverse

from annotator import selectors, services
from annotator.consolidation import item_feedback, project_feedback_summary
from annotator.errors import Conflict, InvalidInput
from annotator.models import Assignment, AssignmentState, Rater, RaterExclusion, Task
from annotator.services.quality import rater_exclude, rater_include, rater_places_release
from annotator.views import RATER_CSV_COLUMNS
from ranking import loaders
from ranking.models import FitRun
from ranking.services import agreement_reports
from tests.conftest import ready_rater, requires_postgres
from tests.factories import ItemFactory, RaterFactory, UserFactory
from tests.integration.test_permissions import rater_client

pytestmark = pytest.mark.django_db

N_ANSWERS = 30


def answer(rater, n, *, choose, response_time_ms):
    """Answer ``n`` pairwise tasks; ``choose(k)`` → "left" / "right" / "tie" for the k-th answer."""
    for k in range(n):
        assignment = services.assignment_next(rater=rater)
        assert assignment is not None
        services.judgment_create(rater=rater, assignment_id=assignment.pk, choice=choose(k),
                                 idempotency_key=uuid.uuid4(), response_time_ms=response_time_ms,
                                 instruction_version_id=rater.acknowledged_instruction_id)
        rater.refresh_from_db()


@pytest.fixture
def study(researcher):
    """12 images (66 pairs, overlap 3); a planted rater who always presses left in 300 ms and two fair raters
    (left or right by a seeded coin, 2.5 s per answer), 30 answers each."""
    project = services.project_create(owner=researcher, name="Quality", overlap=3)
    for _ in range(12):
        ItemFactory(project=project, prompt="a red apple")
    services.consent_version_create(project=project, text="You agree to take part.")
    services.instruction_version_create(project=project, text="Pick the better image.", created_by=researcher)
    services.tasks_generate_within_prompt(project=project, random_state=0)
    planted = ready_rater(project)
    answer(planted, N_ANSWERS, choose=lambda k: "left", response_time_ms=300)
    fair = []
    for seed in (1, 2):
        rater = ready_rater(project)
        coin = np.random.default_rng(seed).random(N_ANSWERS)
        answer(rater, N_ANSWERS, choose=lambda k, coin=coin: "left" if coin[k] < 0.5 else "right",
               response_time_ms=2500)
        fair.append(rater)
    return project, planted, fair


def fit_judgment_ids(project) -> set[int]:
    data = loaders.comparison_data(project_id=project.pk, cutoff_judgment_id=loaders.latest_judgment_id(
        project_id=project.pk), params={})
    return set(data.judgment_ids.tolist())


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def exclusion_url(project, rater):
    return reverse("annotator:rater_exclusion", args=[project.slug, rater.public_id])


# Flags ------------------------------------------------------------------------------------------------


def test_the_planted_always_left_fast_rater_is_flagged_and_the_fair_ones_not(study):
    project, planted, fair = study
    quality = selectors.rater_quality_by_rater(project=project)
    q = quality[planted.pk]
    assert q.flag_codes == ("position_bias", "too_fast")
    assert (q.left_picks, q.n_decisive, q.n_fast, q.n_timed) == (N_ANSWERS, N_ANSWERS, N_ANSWERS, N_ANSWERS)
    assert q.position_p == pytest.approx(2 * 0.5 ** N_ANSWERS)
    assert "left 100% of 30" in q.flags[0].detail and "100% of 30 answers under 800 ms" in q.flags[1].detail
    for rater in fair:
        assert not quality[rater.pk].flagged and quality[rater.pk].n_decisive == N_ANSWERS


def test_ties_and_repeats_are_left_out_of_the_position_test(researcher):
    project = services.project_create(owner=researcher, name="Ties", overlap=1, repeat_rate=0.5)
    for _ in range(8):
        ItemFactory(project=project, prompt="a red apple")
    services.consent_version_create(project=project, text="ok")
    services.instruction_version_create(project=project, text="go", created_by=researcher)
    services.tasks_generate_within_prompt(project=project, random_state=0)
    rater = ready_rater(project)
    k = 0
    while (assignment := services.assignment_next(rater=rater)) is not None:
        services.judgment_create(rater=rater, assignment_id=assignment.pk, choice="tie" if k % 3 == 0 else "left",
                                 idempotency_key=uuid.uuid4(), response_time_ms=1000,
                                 instruction_version_id=rater.acknowledged_instruction_id)
        rater.refresh_from_db()
        k += 1
    assert rater.n_repeats > 0
    firsts = rater.judgments.filter(is_repeat=False)
    q = selectors.rater_quality_by_rater(project=project)[rater.pk]
    assert q.n_decisive == firsts.filter(is_tie=False).count() and q.left_picks == q.n_decisive
    assert q.n_timed == firsts.count()


def test_a_straight_liner_on_likert_scores_is_flagged(researcher):
    project = services.project_create(owner=researcher, name="Scores", overlap=3)
    for _ in range(12):
        ItemFactory(project=project, prompt="a dog")
    services.consent_version_create(project=project, text="ok")
    services.instruction_version_create(project=project, text="Score it.", created_by=researcher)
    services.tasks_generate_single(project=project, kind="rich", random_state=0)
    dims = ("plausibility", "alignment", "aesthetics", "overall")
    raters = [ready_rater(project) for _ in range(3)]
    rng = np.random.default_rng(0)
    for r, rater in enumerate(raters):
        while (assignment := services.assignment_next(rater=rater)) is not None:
            values = [3] * 4 if r == 0 else rng.integers(1, 6, 4).tolist()
            services.annotation_create(rater=rater, assignment_id=assignment.pk, idempotency_key=uuid.uuid4(),
                                       scores=dict(zip(dims, values, strict=True)), response_time_ms=4000,
                                       instruction_version_id=rater.acknowledged_instruction_id)
    quality = selectors.rater_quality_by_rater(project=project)
    liner = quality[raters[0].pk]
    assert liner.flag_codes == ("straight_lining",)
    assert (liner.n_likert, liner.n_identical, liner.likert_sd) == (12, 12, 0.0)
    assert not quality[raters[1].pk].flagged and not quality[raters[2].pk].flagged


# Exclusion --------------------------------------------------------------------------------------------


def test_excluding_leaves_the_raters_judgments_out_of_fits_and_including_restores_them(study, researcher):
    project, planted, _ = study
    everything = fit_judgment_ids(project)
    planted_ids = set(planted.judgments.values_list("id", flat=True))
    assert planted_ids <= everything
    FitRun.objects.filter(project=project).update(status="succeeded")  # the judgments' refit has run

    rater_exclude(rater=planted, by_user=researcher, reason="position bias: always left")
    assert planted.excluded_at is not None
    assert fit_judgment_ids(project) == everything - planted_ids
    rows = loaders.pairwise_rows(project=project)
    assert planted.pk not in rows.rater_ids.tolist() and rows.n == 2 * N_ANSWERS
    assert loaders.judgments_upto(project=project).count() == 2 * N_ANSWERS
    assert planted.pk not in loaders.rater_groups(project=project, field="age_band")
    assert FitRun.objects.filter(project=project, status="queued", automatic=True).exists()  # refit asked for

    FitRun.objects.filter(project=project).update(status="succeeded")
    rater_include(rater=planted, by_user=researcher, reason="checked: the left images were better")
    assert planted.excluded_at is None
    assert fit_judgment_ids(project) == everything
    assert loaders.pairwise_rows(project=project).n == 3 * N_ANSWERS
    assert FitRun.objects.filter(project=project, status="queued", automatic=True).exists()
    history = list(RaterExclusion.objects.filter(rater=planted).order_by("id").values_list("action", "reason",
                                                                                           "created_by"))
    assert history == [("exclude", "position bias: always left", researcher.pk),
                       ("include", "checked: the left images were better", researcher.pk)]


def test_excluded_raters_annotations_are_left_out_too(researcher):
    project = services.project_create(owner=researcher, name="Scores", overlap=2)
    for _ in range(4):
        ItemFactory(project=project, prompt="a dog")
    services.consent_version_create(project=project, text="ok")
    services.instruction_version_create(project=project, text="Score it.", created_by=researcher)
    services.tasks_generate_single(project=project, kind="rich", random_state=0)
    raters = [ready_rater(project) for _ in range(2)]
    for rater in raters:
        while (assignment := services.assignment_next(rater=rater)) is not None:
            services.annotation_create(rater=rater, assignment_id=assignment.pk, idempotency_key=uuid.uuid4(),
                                       scores=dict.fromkeys(("plausibility", "alignment", "aesthetics", "overall"), 4),
                                       instruction_version_id=rater.acknowledged_instruction_id)
    assert loaders.annotations_upto(project=project).count() == 8
    rater_exclude(rater=raters[0], by_user=researcher, reason="did not read the prompts")
    assert loaders.annotations_upto(project=project).count() == 4
    likert, _ = loaders.rich_ratings(project=project)
    assert likert["overall"].values.size == 4
    assert sum(fb.n_raters for _, fb in loaders.rich_feedback_batches(project=project)) == 4
    # the researcher's item pages, heatmap files and feedback API consolidate the included raters only
    item = project.items.first()
    assert [a.rater for a in item_feedback(item=item, project=project).answers] == [raters[1].public_id]
    assert project_feedback_summary(project=project).n_annotations == 4


def test_a_late_answer_after_exclusion_takes_no_place_back(study, researcher):
    _, planted, _ = study
    held = services.assignment_next(rater=planted)
    before = Task.objects.filter(pk=held.task_id).values_list("n_assigned", "n_judgments").get()
    rater_exclude(rater=planted, by_user=researcher, reason="always left")
    # the page was still open: the answer comes in after the exclusion gave the task back
    services.judgment_create(rater=planted, assignment_id=held.pk, choice="left", idempotency_key=uuid.uuid4(),
                             instruction_version_id=planted.acknowledged_instruction_id, response_time_ms=900)
    after = Task.objects.filter(pk=held.task_id).values_list("n_assigned", "n_judgments").get()
    assert after == (before[0] - 1, before[1])  # stored (append-only), but no place taken, no vote counted
    assert Rater.objects.get(pk=planted.pk).n_judgments == N_ANSWERS + 1


def test_a_reason_is_required(study, researcher):
    _, planted, _ = study
    for reason in ("", "   ", None):
        with pytest.raises(InvalidInput) as refused:
            rater_exclude(rater=planted, by_user=researcher, reason=reason)
        assert refused.value.field == "reason"
    assert not RaterExclusion.objects.exists()
    planted.refresh_from_db()
    assert planted.excluded_at is None


def test_the_page_refuses_an_exclusion_without_a_reason_with_400(client, study, researcher):
    project, planted, _ = study
    client.force_login(researcher)
    response = client.post(exclusion_url(project, planted), {"action": "exclude", "reason": " "})
    assert response.status_code == 400
    assert "Give a reason" in response.content.decode()
    assert not RaterExclusion.objects.exists()


def test_excluding_twice_or_including_an_included_rater_is_a_conflict(study, researcher):
    _, planted, fair = study
    rater_exclude(rater=planted, by_user=researcher, reason="spam")
    with pytest.raises(Conflict):
        rater_exclude(rater=planted, by_user=researcher, reason="again")
    with pytest.raises(Conflict):
        rater_include(rater=fair[0], by_user=researcher, reason="was never out")
    assert RaterExclusion.objects.count() == 1


def test_a_reason_is_kept_on_one_line(study, researcher):
    _, planted, _ = study
    entry = rater_exclude(rater=planted, by_user=researcher, reason="  always\n left,\tfast  ")
    assert entry.reason == planted.excluded_reason == "always left, fast"


@requires_postgres
def test_exclusion_history_is_append_only_on_postgres(study, researcher):
    _, planted, _ = study
    entry = rater_exclude(rater=planted, by_user=researcher, reason="always left")
    for change in (lambda: RaterExclusion.objects.filter(pk=entry.pk).update(reason="rewritten"),
                   lambda: RaterExclusion.objects.filter(pk=entry.pk).delete()):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            change()
    assert RaterExclusion.objects.get(pk=entry.pk).reason == "always left"


# No further tasks -------------------------------------------------------------------------------------


def test_an_excluded_rater_gets_no_further_task_and_their_open_one_goes_back(study, researcher):
    project, planted, _ = study
    held = services.assignment_next(rater=planted)
    task_assigned = Task.objects.get(pk=held.task_id).n_assigned
    rater_exclude(rater=planted, by_user=researcher, reason="always left")
    held.refresh_from_db()
    assert held.state == AssignmentState.EXPIRED
    assert Task.objects.get(pk=held.task_id).n_assigned == task_assigned - 1
    planted.refresh_from_db()
    assert services.assignment_next(rater=planted) is None
    assert services.rater_next(rater=planted).status == "done"
    assert not Assignment.objects.filter(rater=planted, state=AssignmentState.OPEN).exists()
    client = rater_client(planted)
    assert client.get(f"/r/{project.slug}/api/next/").json()["status"] == "done"
    assert client.get(reverse("rater:task", args=[project.slug])).url == reverse("rater:done", args=[project.slug])
    done = client.get(reverse("rater:done", args=[project.slug]))
    # excluded before finishing: the session has ended, and the completion code is not handed out
    assert done.status_code == 200 and "Your session has ended" in done.content.decode()
    assert project.completion_code not in done.content.decode()
    assert Rater.objects.get(pk=planted.pk).n_judgments == N_ANSWERS
    assert Rater.objects.get(pk=planted.pk).completed_at is None


def test_a_rater_excluded_after_finishing_still_sees_the_completion_code(researcher):
    project = services.project_create(owner=researcher, name="Short", overlap=1)
    for _ in range(3):
        ItemFactory(project=project, prompt="a red apple")
    services.consent_version_create(project=project, text="You agree.")
    services.instruction_version_create(project=project, text="Pick.", created_by=researcher)
    services.tasks_generate_within_prompt(project=project, random_state=0)
    rater = ready_rater(project)
    answer(rater, 3, choose=lambda k: "left", response_time_ms=2000)
    assert services.rater_next_after_answer(rater=rater).status == "done"  # as the last answer's request does
    rater.refresh_from_db()
    assert rater.completed_at is not None
    client = rater_client(rater)
    rater_exclude(rater=rater, by_user=researcher, reason="reviewed after the study")
    done = client.get(reverse("rater:done", args=[project.slug]))
    assert project.completion_code in done.content.decode()  # they did the work before the decision


def test_excluding_with_places_released_gives_the_answered_tasks_to_other_raters(study, researcher):
    project, planted, _ = study
    answered = list(Assignment.objects.filter(rater=planted, state=AssignmentState.ANSWERED, is_repeat=False)
                    .values_list("task_id", flat=True))
    assert answered
    held = services.assignment_next(rater=planted)
    before = dict(Task.objects.filter(pk__in=[*answered, held.task_id]).values_list("pk", "n_assigned"))
    rater_exclude(rater=planted, by_user=researcher, reason="always left", release_places=True)
    after = dict(Task.objects.filter(pk__in=before).values_list("pk", "n_assigned"))
    assert all(after[pk] == before[pk] - 1 for pk in before)  # each answered task, and the open one
    newcomer = ready_rater(project)  # is offered every task the excluded rater answered (overlap 3)
    assert set(answered) <= set(selectors.tasks_available_to(rater=newcomer).values_list("pk", flat=True))
    planted.refresh_from_db()
    assert planted.excluded_at is not None and planted.places_released_at is not None
    assert Rater.objects.get(pk=planted.pk).n_judgments == N_ANSWERS  # the answers stay stored
    # included again and excluded again: the places are not given back twice, but a task answered meanwhile is
    rater_include(rater=planted, by_user=researcher, reason="mistake")
    planted.refresh_from_db()
    meanwhile = services.assignment_next(rater=planted)
    services.judgment_create(rater=planted, assignment_id=meanwhile.pk, choice="left", idempotency_key=uuid.uuid4(),
                             instruction_version_id=planted.acknowledged_instruction_id)
    claimed = Task.objects.get(pk=meanwhile.task_id).n_assigned
    entry = rater_exclude(rater=planted, by_user=researcher, reason="after all", release_places=True)
    assert entry.places_given_back == 1
    assert Task.objects.get(pk=meanwhile.task_id).n_assigned == claimed - 1
    assert all(Task.objects.get(pk=pk).n_assigned == after[pk] for pk in before if pk != meanwhile.task_id)


def test_a_late_answer_while_excluded_is_not_given_back_again(study, researcher):
    """Excluding gives the open task's place back; the rater's late answer to it takes none; releasing the
    rater's places later must not give that place back a second time."""
    _, planted, _ = study
    held = services.assignment_next(rater=planted)
    rater_exclude(rater=planted, by_user=researcher, reason="always left")
    after_exclusion = Task.objects.get(pk=held.task_id).n_assigned
    services.judgment_create(rater=planted, assignment_id=held.pk, choice="left", idempotency_key=uuid.uuid4(),
                             instruction_version_id=planted.acknowledged_instruction_id)
    assert Task.objects.get(pk=held.task_id).n_assigned == after_exclusion  # the late answer took no place
    answered = Assignment.objects.filter(rater=planted, state=AssignmentState.ANSWERED, is_repeat=False).count()
    assert rater_places_release(rater=planted, by_user=researcher) == answered - 1
    assert Task.objects.get(pk=held.task_id).n_assigned == after_exclusion
    assert rater_places_release(rater=planted, by_user=researcher) == 0  # nothing held any more


def test_a_refused_exclusion_gives_no_place_back(study, researcher):
    _, planted, _ = study
    rater_exclude(rater=planted, by_user=researcher, reason="always left")
    before = list(Task.objects.order_by("pk").values_list("n_assigned", flat=True))
    with pytest.raises(Conflict):
        rater_exclude(rater=planted, by_user=researcher, reason="again", release_places=True)
    assert list(Task.objects.order_by("pk").values_list("n_assigned", flat=True)) == before
    assert Rater.objects.get(pk=planted.pk).places_released_at is None


def test_the_page_gives_places_back_only_when_asked(client, planted_and_url, researcher):
    project, planted, url = planted_and_url
    client.force_login(researcher)
    page = client.get(reverse("annotator:raters", args=[project.slug])).content.decode()
    assert 'name="release_places" checked' in page
    total = sum(Task.objects.values_list("n_assigned", flat=True))
    assert client.post(url, {"action": "exclude", "reason": "always left"}).status_code == 302
    assert sum(Task.objects.values_list("n_assigned", flat=True)) == total  # no open task, none asked
    client.post(url, {"action": "include", "reason": "mistake"})
    places = Assignment.objects.filter(rater=planted, state=AssignmentState.ANSWERED, is_repeat=False).count()
    response = client.post(url, {"action": "exclude", "reason": "always left", "release_places": "on"}, follow=True)
    assert f"{places} places of tasks they held or answered went back to other raters" in response.content.decode()
    assert places and sum(Task.objects.values_list("n_assigned", flat=True)) == total - places


def test_an_included_rater_gets_tasks_again(study, researcher):
    _, planted, _ = study
    rater_exclude(rater=planted, by_user=researcher, reason="always left")
    rater_include(rater=planted, by_user=researcher, reason="mistake")
    planted.refresh_from_db()
    assert services.assignment_next(rater=planted) is not None


# Permissions ------------------------------------------------------------------------------------------


@pytest.fixture
def planted_and_url(study):
    project, planted, _ = study
    return project, planted, exclusion_url(project, planted)


def test_a_researcher_member_can_exclude_and_include(client, planted_and_url):
    project, planted, url = planted_and_url
    colleague = UserFactory()
    services.membership_set(project=project, user=colleague, role="researcher")
    client.force_login(colleague)
    response = client.post(url, {"action": "exclude", "reason": "always left"})
    assert response.status_code == 302 and response.url == reverse("annotator:raters", args=[project.slug])
    planted.refresh_from_db()
    assert planted.excluded_reason == "always left"
    assert client.post(url, {"action": "include", "reason": "ok after all"}).status_code == 302
    assert list(RaterExclusion.objects.values_list("created_by", flat=True)) == [colleague.pk, colleague.pk]


def test_a_viewer_is_refused_with_403(client, planted_and_url):
    project, _, url = planted_and_url
    viewer = UserFactory()
    services.membership_set(project=project, user=viewer, role="viewer")
    client.force_login(viewer)
    assert client.post(url, {"action": "exclude", "reason": "x"}).status_code == 403
    assert not RaterExclusion.objects.exists()


def test_an_outsider_is_refused_with_404(client, planted_and_url):
    _, _, url = planted_and_url
    outsider = UserFactory()
    services.project_create(owner=outsider, name="Their own")
    client.force_login(outsider)
    assert client.post(url, {"action": "exclude", "reason": "x"}).status_code == 404
    assert not RaterExclusion.objects.exists()


def test_anonymous_and_a_rater_session_are_sent_to_log_in(client, planted_and_url):
    _, planted, url = planted_and_url
    for who in (client, rater_client(planted)):
        response = who.post(url, {"action": "exclude", "reason": "x"})
        assert response.status_code == 302 and "login" in response.url
    assert not RaterExclusion.objects.exists()


def test_a_rater_of_another_project_is_not_found(client, planted_and_url, researcher):
    project, _, _ = planted_and_url
    stranger = RaterFactory(project=services.project_create(owner=researcher, name="Other"))
    client.force_login(researcher)
    response = client.post(reverse("annotator:rater_exclusion", args=[project.slug, stranger.public_id]),
                           {"action": "exclude", "reason": "x"})
    assert response.status_code == 404


def test_get_and_unknown_actions_are_refused(client, planted_and_url, researcher):
    _, _, url = planted_and_url
    client.force_login(researcher)
    assert client.get(url).status_code == 405
    assert client.post(url, {"action": "delete", "reason": "x"}).status_code == 400
    assert not RaterExclusion.objects.exists()


def test_csrf_is_enforced(planted_and_url, researcher):
    from django.test import Client

    _, _, url = planted_and_url
    client = Client(enforce_csrf_checks=True)
    client.force_login(researcher)
    assert client.post(url, {"action": "exclude", "reason": "x"}).status_code == 403
    assert not RaterExclusion.objects.exists()


# Pages ------------------------------------------------------------------------------------------------


def test_the_raters_page_shows_the_flags_and_the_exclusion(client, study, researcher):
    project, planted, fair = study
    client.force_login(researcher)
    page = client.get(reverse("annotator:raters", args=[project.slug]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Position bias" in html and "left 100% of 30 decisive answers" in html and "Too fast" in html
    assert "1</strong> rater flagged" in html
    assert html.count('name="action" value="exclude"') == 3
    rows = {r.public_id: r for r in page.context["rows"]}
    assert rows[planted.public_id].quality.flagged and not rows[fair[0].public_id].quality.flagged

    client.post(exclusion_url(project, planted), {"action": "exclude", "reason": "always left in 300 ms"})
    html = client.get(reverse("annotator:raters", args=[project.slug])).content.decode()
    assert "always left in 300 ms" in html and ">excluded<" in html and 'value="include"' in html
    assert "Exclusion decisions" in html and researcher.get_username() in html


def test_viewers_see_flags_but_no_exclusion_form(client, study):
    project, _, _ = study
    viewer = UserFactory()
    services.membership_set(project=project, user=viewer, role="viewer")
    client.force_login(viewer)
    html = client.get(reverse("annotator:raters", args=[project.slug])).content.decode()
    assert "Position bias" in html and 'name="action"' not in html


def test_the_csv_has_the_quality_and_exclusion_columns(client, study, researcher):
    project, planted, fair = study
    rater_exclude(rater=planted, by_user=researcher, reason="always left, too fast")
    client.force_login(researcher)
    rows = csv_rows(client.get(reverse("annotator:raters_csv", args=[project.slug])))
    assert tuple(rows[0]) == RATER_CSV_COLUMNS
    for column in ("left_share", "position_p_holm", "fast_share", "quality_flags", "excluded", "excluded_reason"):
        assert column in RATER_CSV_COLUMNS
    by_id = {r["rater"]: r for r in rows}
    mine = by_id[planted.public_id]
    assert (mine["quality_flags"], mine["excluded"], mine["excluded_reason"]) == (
        "position_bias too_fast", "yes", "always left, too fast")
    assert (mine["decisive_answers"], mine["left_share"], mine["fast_share"]) == ("30", "1.000", "1.000")
    assert float(mine["position_p_holm"]) < 1e-7 and "Position bias: left 100%" in mine["quality_reasons"]
    assert by_id[fair[0].public_id]["excluded"] == "no" and by_id[fair[0].public_id]["quality_flags"] == ""
    assert (mine["decision"], mine["bonus"]) == ("", "")


def test_agreement_page_and_datasheet_say_who_is_flagged_and_how_many_were_excluded(client, study, researcher):
    project, planted, _ = study
    rater_exclude(rater=planted, by_user=researcher, reason="always left, too fast")
    agreement_reports.agreement_report_compute_now(project=project)
    client.force_login(researcher)
    page = client.get(reverse("ranking_reports:agreement", args=[project.slug])).content.decode()
    assert "Rater quality flags" in page and planted.public_id in page
    assert reverse("annotator:raters", args=[project.slug]) in page
    assert "1 rater excluded" in page
    sheet = client.get(reverse("ranking_reports:datasheet", args=[project.slug])).content.decode()
    assert "1 rater excluded" in sheet and "always left, too fast" in sheet
    assert planted.public_id not in sheet  # raters only in aggregate
    markdown = client.get(reverse("ranking_reports:datasheet_md", args=[project.slug])).content.decode()
    assert "- Excluded raters: 1; their 30 pairwise judgments" in markdown
    assert "  - always left, too fast (1 rater)" in markdown
    counts = client.get(reverse("ranking_reports:datasheet_json", args=[project.slug])).json()
    assert counts["exclusions"]["n_raters"] == 1 and counts["counts"]["judgments"] == 2 * N_ANSWERS


def test_the_judgments_api_marks_an_excluded_raters_judgments(study, researcher):
    from rest_framework.test import APIClient

    project, planted, fair = study
    rater_exclude(rater=planted, by_user=researcher, reason="always left")
    client = APIClient()
    client.force_authenticate(researcher)
    url = reverse("api_judgments", args=[project.slug])
    flags: dict[str, set[bool]] = {}
    while url:
        page = client.get(url).json()
        for row in page["results"]:
            flags.setdefault(row["rater"], set()).add(row["excluded_rater"])
        url = page.get("next")
    assert flags[planted.public_id] == {True}
    assert all(flags[r.public_id] == {False} for r in fair)


def test_a_rater_excluded_before_finishing_is_listed_as_stopped(study, researcher):
    _, planted, fair = study
    rater_exclude(rater=planted, by_user=researcher, reason="always left")
    rows = {r.public_id: r for r in selectors.rater_rows(raters=Rater.objects.filter(project=planted.project))}
    assert rows[planted.public_id].status == "excluded" and rows[fair[0].public_id].status == "answering"
    assert selectors.RATER_STATUSES["excluded"] == "stopped (excluded)"
