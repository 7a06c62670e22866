"""Rank tasks: generation, the rater's ranking (the answer rules of every answer), and rankings in the fits."""

import random
import uuid
from collections import Counter
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from scipy.stats import kendalltau

from annotator import services
from annotator.errors import Conflict, InvalidInput, NotFound
from annotator.models import Assignment, Item, RankAnswer, Rater, Task, TaskItem
from annotator.permissions import SESSION_RATERS
from ranking import tasks as ranking_tasks
from ranking.core.bt import fit_bt
from ranking.core.rankings import rank_breaking
from ranking.loaders import comparison_data
from ranking.models import FitRun, ItemScore
from ranking.services import fit_runs
from tests.conftest import ready_rater, requires_postgres
from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rank_project(researcher):
    """8 images of one prompt (and 2 of another), consent, instructions and 6 rank tasks of 4 images."""
    project = services.project_create(owner=researcher, name="Fruit", overlap=2)
    for _ in range(8):
        ItemFactory(project=project, prompt="a bowl of fruit")
    for _ in range(2):
        ItemFactory(project=project, prompt="a lighthouse")
    services.consent_version_create(project=project, text="You agree to take part.")
    services.instruction_version_create(project=project, text="Order them, best first.", created_by=researcher)
    assert services.tasks_generate_rank(project=project, k=4, n_tasks=6, same_prompt=True, random_state=0) == 6
    return project


def task_items(task_id):
    return list(TaskItem.objects.filter(task_id=task_id).order_by("position").values_list("item_id", flat=True))


def submit(rater, assignment, ranking=None, key=None, **kwargs):
    return services.rank_answer_create(
        rater=rater,
        assignment_id=assignment.pk,
        ranking=[[i] for i in assignment.shown_order] if ranking is None else ranking,
        idempotency_key=key or uuid.uuid4(),
        instruction_version_id=kwargs.pop("instruction_version_id", rater.acknowledged_instruction_id),
        **kwargs,
    )


# Generation --------------------------------------------------------------------------------------------


def test_rank_tasks_are_distinct_balanced_sets_of_k_images(rank_project):
    tasks = list(Task.objects.filter(project=rank_project, kind="rank"))
    assert len(tasks) == 6
    fruit = set(rank_project.items.filter(prompt="a bowl of fruit").values_list("id", flat=True))
    sets = []
    for task in tasks:
        members = task_items(task.pk)
        assert members == sorted(members) and len(set(members)) == 4  # canonical order: by id, positions 0..3
        assert task.item_a_id == members[0] and task.item_b_id is None
        assert set(members) <= fruit  # same_prompt
        sets.append(frozenset(members))
    assert len(set(sets)) == 6
    shown = Counter(i for s in sets for i in s)
    assert set(shown) == fruit and max(shown.values()) - min(shown.values()) <= 1  # 24 places over 8 images: 3 each
    again = services.tasks_generate_rank(project=rank_project, k=4, n_tasks=100, same_prompt=True, random_state=1)
    assert again == 70 - 6  # every other 4-set of the 8 images, none repeated
    assert Task.objects.filter(project=rank_project, kind="rank").count() == 70
    assert services.tasks_generate_rank(project=rank_project, k=4, n_tasks=5, same_prompt=True) == 0


def test_retired_images_are_left_out_and_their_rank_tasks_stop(rank_project):
    item = Item.objects.get(pk=task_items(Task.objects.filter(kind="rank").first().pk)[0])
    services.item_retire(item=item)
    assert not Task.objects.filter(kind="rank", task_items__item=item, is_active=True).exists()
    services.tasks_generate_rank(project=rank_project, k=3, n_tasks=20, random_state=2)
    new = Task.objects.filter(kind="rank", task_items__item=item).count()
    assert new == Task.objects.filter(kind="rank", task_items__item=item, is_active=False).count()
    services.item_restore(item=item)
    assert Task.objects.filter(kind="rank", task_items__item=item, is_active=True).exists()


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"k": 2, "n_tasks": 1}, "k"), ({"k": 11, "n_tasks": 1}, "k"), ({"k": True, "n_tasks": 1}, "k"),
    ({"k": "4", "n_tasks": 1}, "k"), ({"k": 4, "n_tasks": 0}, "n_tasks"),
    ({"k": 3, "n_tasks": 1, "same_prompt": True, "overlap": 0}, "overlap"),
])
def test_bad_rank_generation_is_refused(rank_project, kwargs, field):
    before = Task.objects.count()
    with pytest.raises(InvalidInput) as exc:
        services.tasks_generate_rank(project=rank_project, **kwargs)
    assert exc.value.field == field
    assert Task.objects.count() == before


def test_too_few_images_for_k_is_refused(researcher):
    project = services.project_create(owner=researcher, name="Few")
    for prompt in "aabbc":
        ItemFactory(project=project, prompt=prompt)
    with pytest.raises(InvalidInput, match="at least 3 images sharing a prompt") as exc:
        services.tasks_generate_rank(project=project, k=3, n_tasks=2, same_prompt=True)
    assert exc.value.field == "k" and not Task.objects.exists()
    assert services.tasks_generate_rank(project=project, k=5, n_tasks=3) == 1  # only one set of all five


def test_tasks_page_makes_rank_tasks(rank_project, researcher, client):
    client.force_login(researcher)
    url = f"/projects/{rank_project.slug}/tasks/"
    made = client.post(url, {"strategy": "rank", "k": "3", "n_tasks": "4"}, follow=True)
    assert made.status_code == 200 and "Created 4 new rank task(s)." in made.content.decode()
    assert "10 rank tasks" in made.content.decode()
    refused = client.post(url, {"strategy": "rank", "n_tasks": "4"})
    assert refused.status_code == 400 and "need k" in refused.content.decode()
    assert client.post(url, {"strategy": "rank", "k": "12", "n_tasks": "4"}).status_code == 400
    assert Task.objects.filter(kind="rank").count() == 10


# Answers -----------------------------------------------------------------------------------------------


def test_a_ranking_is_stored_with_the_shown_order(rank_project):
    rater = ready_rater(rank_project)
    assignment = services.assignment_next(rater=rater)
    assert assignment.task.kind == "rank"
    assert sorted(assignment.shown_order) == task_items(assignment.task_id)
    assert assignment.left_item_id == assignment.shown_order[0] and assignment.right_item_id is None
    a, b, c, d = assignment.shown_order
    answer, created = submit(rater, assignment, [c, [a, d], b], response_time_ms=4321)
    assert created
    answer.refresh_from_db()
    assert answer.ranking == [[c], [a, d], [b]] and answer.has_ties and answer.n_items == 4
    assert answer.shown_order == assignment.shown_order and answer.response_time_ms == 4321
    assert answer.instruction_version_id == rater.acknowledged_instruction_id
    assignment.refresh_from_db()
    assert assignment.state == "answered"
    assert Task.objects.get(pk=assignment.task_id).n_judgments == 1
    assert Rater.objects.get(pk=rater.pk).n_judgments == 1
    assert FitRun.objects.filter(project=rank_project, automatic=True, status="queued").exists()  # a refit


def test_the_shown_order_is_drawn_per_assignment(researcher):
    project = services.project_create(owner=researcher, name="One task", overlap=12)
    for _ in range(6):
        ItemFactory(project=project, prompt="p")
    services.instruction_version_create(project=project, text="Rank.", created_by=researcher)
    services.tasks_generate_rank(project=project, k=6, n_tasks=1)
    orders = {tuple(services.assignment_next(rater=ready_rater(project)).shown_order) for _ in range(12)}
    assert len(orders) > 1  # 720 orders: 12 equal draws happen with probability 720^-11


@pytest.mark.parametrize(("ranking", "message"), [
    ("1,2,3,4", "non-empty list"),
    ([], "non-empty list"),
    ([[]], "place 1 is an empty group"),
    (["x", "y", "z", "w"], "whole numbers"),
    ([True, 2, 3, 4], "whole numbers"),
    ([{"id": 1}], "whole numbers"),
    (list(range(1, 12)), "more than 10 images"),
    ("duplicate", "twice"),
    ("unknown", "which this task does not show"),
    ("missing", "leaves out image"),
])
def test_a_ranking_that_is_not_a_permutation_is_refused_and_nothing_stored(rank_project, ranking, message):
    rater = ready_rater(rank_project)
    assignment = services.assignment_next(rater=rater)
    shown = assignment.shown_order
    other = Item.objects.exclude(pk__in=shown).first().pk
    ranking = {"duplicate": [shown[0], shown[1], shown[2], shown[0]], "unknown": [*shown[:3], other],
               "missing": shown[:3]}.get(ranking, ranking) if isinstance(ranking, str) else ranking
    with pytest.raises(InvalidInput, match=message) as exc:
        submit(rater, assignment, ranking)
    assert exc.value.field == "ranking"
    assert not RankAnswer.objects.exists()
    assignment.refresh_from_db()
    assert assignment.state == "open"
    assert Task.objects.get(pk=assignment.task_id).n_judgments == 0
    assert Rater.objects.get(pk=rater.pk).n_judgments == 0


def test_ties_are_refused_when_the_project_has_none(rank_project):
    services.project_update(project=rank_project, allow_tie=False)
    rater = ready_rater(rank_project)
    assignment = services.assignment_next(rater=rater)
    a, b, c, d = assignment.shown_order
    with pytest.raises(InvalidInput, match="no ties") as exc:
        submit(rater, assignment, [[a, b], c, d])
    assert exc.value.field == "ranking" and not RankAnswer.objects.exists()
    answer, created = submit(rater, assignment, [d, c, b, a])
    assert created and not answer.has_ties and answer.ranking == [[d], [c], [b], [a]]


def test_retry_with_the_same_key_stores_once(rank_project):
    rater = ready_rater(rank_project)
    assignment = services.assignment_next(rater=rater)
    key = uuid.uuid4()
    first, created = submit(rater, assignment, key=key)
    again, created_again = submit(rater, assignment, key=key)
    assert (created, created_again) == (True, False) and again.pk == first.pk
    assert RankAnswer.objects.count() == 1 and Task.objects.get(pk=assignment.task_id).n_judgments == 1
    with pytest.raises(Conflict) as exc:  # a new key for an answered assignment
        submit(rater, assignment)
    assert exc.value.code == "already_answered"
    following = services.assignment_next(rater=rater)
    with pytest.raises(Conflict) as exc:  # the same key for another answer
        submit(rater, following, key=key)
    assert exc.value.field == "idempotency_key" and RankAnswer.objects.count() == 1


def test_someone_elses_assignment_is_not_found(rank_project):
    rater, other = ready_rater(rank_project), ready_rater(rank_project)
    theirs = services.assignment_next(rater=other)
    with pytest.raises(NotFound) as exc:
        submit(rater, theirs)
    assert exc.value.field == "assignment" and not RankAnswer.objects.exists()


def test_changed_instructions_are_a_conflict(rank_project, researcher):
    rater = ready_rater(rank_project)
    assignment = services.assignment_next(rater=rater)
    old = rater.acknowledged_instruction_id
    services.instruction_version_create(project=rank_project, text="New rules.", created_by=researcher)
    with pytest.raises(Conflict) as exc:
        submit(rater, assignment, instruction_version_id=old)
    assert exc.value.code == "instructions_changed" and not RankAnswer.objects.exists()


def test_answers_of_another_kind_are_refused(rank_project):
    rater = ready_rater(rank_project)
    assignment = services.assignment_next(rater=rater)
    with pytest.raises(InvalidInput) as exc:
        services.judgment_create(rater=rater, assignment_id=assignment.pk, choice="left",
                                 idempotency_key=uuid.uuid4(), instruction_version_id=rater.acknowledged_instruction_id)
    assert exc.value.field == "assignment"
    services.tasks_generate_within_prompt(project=rank_project)
    services.project_update(project=rank_project, overlap=1)
    submit(rater, assignment)
    pairwise_rater = ready_rater(rank_project)
    while (pair := services.assignment_next(rater=pairwise_rater)).task.kind != "pairwise":
        submit(pairwise_rater, pair)
    with pytest.raises(InvalidInput, match="not a rank task"):
        submit(pairwise_rater, pair, [pair.left_item_id, pair.right_item_id])


@requires_postgres
def test_rank_answers_are_append_only_in_the_database(rank_project):
    rater = ready_rater(rank_project)
    answer, _ = submit(rater, services.assignment_next(rater=rater))
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        RankAnswer.objects.filter(pk=answer.pk).update(ranking=[])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM annotator_rankanswer WHERE id = %s", [answer.pk])


def test_excluded_raters_rankings_are_counted_up_to_the_cutoff(rank_project, researcher):
    from annotator.services.quality import rater_exclude
    from ranking import loaders

    rater = ready_rater(rank_project)
    stored = []
    for _ in range(3):
        answer, _ = submit(rater, services.assignment_next(rater=rater))
        stored.append(answer.pk)
    assert loaders.exclusions(project=rank_project)["n_rankings"] == 0  # nobody excluded
    rater_exclude(rater=rater, by_user=researcher, reason="ranked at random")
    assert loaders.exclusions(project=rank_project)["n_rankings"] == 3
    assert loaders.exclusions(project=rank_project, cutoff_ranking_id=stored[1])["n_rankings"] == 2


def test_rank_task_over_http(rank_project, client):
    rater = ready_rater(rank_project)
    session = client.session
    session[SESSION_RATERS] = {str(rank_project.pk): rater.pk}
    session.save()
    slug = rank_project.slug
    page = client.get(f"/r/{slug}/task/")
    assert page.status_code == 200 and b"rank-app" in page.content
    body = client.get(f"/r/{slug}/api/next/").json()
    a = body["assignment"]
    assert a["kind"] == "rank" and a["allow_tie"] is True and a["prompt"] == "a bowl of fruit"
    shown = [item["id"] for item in a["items"]]
    assert shown == Assignment.objects.get(pk=a["id"]).shown_order
    for item in a["items"]:
        assert client.get(item["image"]).status_code == 200  # every image of the task is visible to its rater
    outside = Item.objects.exclude(pk__in=shown).first()
    assert client.get(f"/r/{slug}/image/{outside.pk}/").status_code == 404
    payload = {"assignment": a["id"], "idempotency_key": str(uuid.uuid4()),
               "instruction_version": body["instruction_version"], "ranking": shown[:3], "response_time_ms": 900}
    bad = client.post(f"/r/{slug}/api/rankings/", payload, content_type="application/json")
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "ranking" and f"leaves out image {shown[3]}" in bad.json()["error"]["message"]
    assert not RankAnswer.objects.exists()
    payload["ranking"] = [[shown[2]], [shown[0], shown[3]], [shown[1]]]
    ok = client.post(f"/r/{slug}/api/rankings/", payload, content_type="application/json")
    assert ok.status_code == 201 and ok.json()["ranking"] == payload["ranking"]
    assert ok.json()["next"]["status"] == "task"
    replay = client.post(f"/r/{slug}/api/rankings/", payload, content_type="application/json")
    assert replay.status_code == 200 and replay.json()["id"] == ok.json()["id"]
    assert RankAnswer.objects.get().ranking == payload["ranking"]


# Rankings in the fits ----------------------------------------------------------------------------------

TRUE_STRENGTH = np.linspace(2.0, -2.0, 8)  # item i of the study: strength TRUE_STRENGTH[i] (item 0 best)


@pytest.fixture
def pl_study(researcher, monkeypatch):
    """A simulated Plackett–Luce study: 8 images, 30 rank tasks of 4, each ranked by 4 raters (120 rankings).

    The shown orders are drawn with the system's random source; seeded here, so that the simulated
    study (and whether its two best images come out in their true order) is the same on every run.
    """
    shuffles = random.Random(11)
    monkeypatch.setattr("annotator.services.ranks.secrets.SystemRandom", lambda: shuffles)
    project = services.project_create(owner=researcher, name="PL study", overlap=4)
    items = [ItemFactory(project=project, prompt="p") for _ in range(8)]
    services.instruction_version_create(project=project, text="Rank.", created_by=researcher)
    services.tasks_generate_rank(project=project, k=4, n_tasks=30, random_state=5)
    strength = {item.pk: TRUE_STRENGTH[i] for i, item in enumerate(items)}
    rng = np.random.default_rng(7)
    for _ in range(12):
        rater = ready_rater(project)
        for _ in range(10):
            assignment = services.assignment_next(rater=rater)
            if assignment is None:
                break
            shown = assignment.shown_order
            noisy = [strength[i] + rng.gumbel() for i in shown]  # Gumbel-max: a Plackett–Luce draw
            submit(rater, assignment, [shown[j] for j in np.argsort(noisy)[::-1]])
    assert RankAnswer.objects.filter(project=project).count() == 120
    return project, items


def test_a_fit_with_rankings_recovers_the_order_and_equals_bt_on_the_broken_pairs(pl_study):
    project, items = pl_study
    run = fit_runs.fit_run_request(project=project, params={"alpha": 0.01})
    ranking_tasks.fit_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.cutoff_judgment_id is None and run.cutoff_ranking_id == RankAnswer.objects.latest("id").pk
    assert run.summary["n_rankings"] == 120 and run.summary["n_ranking_pairs"] == 120 * 6
    fitted = dict(ItemScore.objects.filter(fit=run).values_list("item_id", "strength"))
    estimate = [fitted[item.pk] for item in items]
    assert kendalltau(estimate, TRUE_STRENGTH).statistic >= 0.85
    assert max(fitted, key=fitted.get) == items[0].pk

    item_ids = sorted(fitted)
    index = {item_id: i for i, item_id in enumerate(item_ids)}
    rankings = [[[index[i] for i in group] for group in r]
                for r in RankAnswer.objects.filter(project=project).order_by("id").values_list("ranking", flat=True)]
    winners, losers, tied, weights = rank_breaking(rankings, method="full", n_items=len(item_ids))
    assert not tied.any() and np.allclose(np.unique(weights), [1 / 3, 1 / 2, 1])  # choices out of 4, 3, 2
    direct = fit_bt(winners, losers, len(item_ids), weights=weights, alpha=0.01)
    assert np.allclose([fitted[i] for i in item_ids], direct.strengths, atol=1e-6)


def test_rankings_can_be_left_out_and_the_cutoff_holds(pl_study):
    project, _ = pl_study
    with pytest.raises(InvalidInput) as exc:
        fit_runs.fit_run_request(project=project, params={"include_rankings": "yes"})
    assert exc.value.field == "include_rankings"
    assert "include_rankings" not in fit_runs.validate_params(model="bt", params={})
    without = fit_runs.fit_run_request(project=project, params={"include_rankings": False})
    ranking_tasks.fit_run_execute(without.pk)
    without.refresh_from_db()
    assert without.status == "failed" and "no judgments or rankings" in without.error
    assert without.cutoff_ranking_id is None

    run = fit_runs.fit_run_request(project=project)
    ranking_tasks.fit_run_execute(run.pk)
    run.refresh_from_db()
    # A ranking stored after the fit is not part of what its stored cut-off loads.
    services.tasks_generate_rank(project=project, k=3, n_tasks=1, random_state=9)
    late = ready_rater(project)
    while (assignment := services.assignment_next(rater=late)).task.task_items.count() != 3:
        submit(late, assignment)
    submit(late, assignment)
    data = comparison_data(project_id=project.pk, cutoff_judgment_id=run.cutoff_judgment_id,
                           cutoff_ranking_id=run.cutoff_ranking_id, params=run.params)
    assert len(data.ranking_ids) == 120 and data.ranking_ids.max() == run.cutoff_ranking_id
    assert RankAnswer.objects.filter(project=project).count() > 120


def test_ranking_pairs_are_weighted_by_breaking_times_decay_and_ties_can_be_ignored(pl_study):
    project, _ = pl_study
    cutoff = RankAnswer.objects.filter(project=project).latest("id").pk
    plain = comparison_data(project_id=project.pk, cutoff_judgment_id=None, cutoff_ranking_id=cutoff, params={})
    assert plain.from_ranking.all() and np.isclose(plain.weights.sum(), 120 * 3)  # k − 1 per ranking of k
    newest = RankAnswer.objects.filter(project=project).latest("id").submitted_at
    now = newest + timedelta(days=10)
    decayed = comparison_data(project_id=project.pk, cutoff_judgment_id=None, cutoff_ranking_id=cutoff,
                              params={"half_life_days": 10.0}, now=now)
    ages = np.array([(now - t).total_seconds() / 86400
                     for t in RankAnswer.objects.filter(project=project).values_list("submitted_at", flat=True)])
    decay = 2 ** (-ages / 10)
    # Each ranking's pairs carry its decay 2^(−age/10) times their breaking weight 1/(r − 1):
    ratio = decayed.weights / plain.weights
    assert np.all(np.isclose(ratio[:, None], decay[None, :], rtol=0, atol=1e-12).any(axis=1))
    assert np.isclose(decayed.weights.sum(), 3 * decay.sum())  # k − 1 = 3 per ranking, times its decay
    assert np.all(ratio <= 0.5 + 1e-12)  # at least ten days old: at most half

    # With a tie in one ranking, its tied pair is a Davidson tie; ties="ignore" drops it.
    rater = ready_rater(project)
    services.tasks_generate_rank(project=project, k=3, n_tasks=1, random_state=11)
    while (assignment := services.assignment_next(rater=rater)).task.task_items.count() != 3:
        submit(rater, assignment)
    a, b, c = assignment.shown_order
    tied_answer, _ = submit(rater, assignment, [[a, b], c])
    both = comparison_data(project_id=project.pk, cutoff_judgment_id=None, cutoff_ranking_id=tied_answer.pk,
                           params={})
    ignored = comparison_data(project_id=project.pk, cutoff_judgment_id=None, cutoff_ranking_id=tied_answer.pk,
                              params={"ties": "ignore"})
    assert both.tied.sum() == 1 and not ignored.tied.any() and len(both.winners) == len(ignored.winners) + 1


def test_judgments_and_rankings_are_fitted_together(pl_study):
    project, _ = pl_study
    services.project_update(project=project, overlap=1)
    services.tasks_generate_within_prompt(project=project, random_state=0)
    rater = ready_rater(project)
    judged = 0
    while judged < 10 and (assignment := services.assignment_next(rater=rater)) is not None:
        if assignment.task.kind == "pairwise":
            winner = min(assignment.left_item_id, assignment.right_item_id)  # the lower id is the better item
            services.judgment_create(rater=rater, assignment_id=assignment.pk,
                                     choice="left" if assignment.left_item_id == winner else "right",
                                     idempotency_key=uuid.uuid4(),
                                     instruction_version_id=rater.acknowledged_instruction_id)
            judged += 1
        else:
            submit(rater, assignment)
    run = fit_runs.fit_run_request(project=project, params={"half_life_days": 30})
    ranking_tasks.fit_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.summary["n_judgments"] == 10 and run.summary["n_rankings"] >= 120
    assert run.summary["n_comparisons"] == 10 + run.summary["n_ranking_pairs"]


def test_the_sweep_refits_projects_with_new_rankings(pl_study, django_capture_on_commit_callbacks):
    project, _ = pl_study
    FitRun.objects.filter(status="queued").delete()
    with django_capture_on_commit_callbacks(execute=False):
        assert fit_runs.fit_sweep() == 1  # rankings, never fitted
    run = FitRun.objects.get(project=project, status="queued")
    ranking_tasks.fit_run_execute(run.pk)
    with django_capture_on_commit_callbacks(execute=False):
        assert fit_runs.fit_sweep() == 0  # fitted up to the newest ranking
    services.tasks_generate_rank(project=project, k=3, n_tasks=1, random_state=13)
    rater = ready_rater(project)
    while (assignment := services.assignment_next(rater=rater)).task.task_items.count() != 3:
        submit(rater, assignment)
    submit(rater, assignment)
    FitRun.objects.filter(status="queued").delete()  # the refit the answers asked for
    with django_capture_on_commit_callbacks(execute=False):
        assert fit_runs.fit_sweep() == 1


def test_viewers_cannot_make_rank_tasks(rank_project, client):
    viewer = UserFactory()
    services.membership_set(project=rank_project, user=viewer, role="viewer")
    client.force_login(viewer)
    response = client.post(f"/projects/{rank_project.slug}/tasks/", {"strategy": "rank", "k": "3", "n_tasks": "2"})
    assert response.status_code == 403 and Task.objects.filter(kind="rank").count() == 6


def test_rank_tasks_over_the_researcher_api(rank_project, researcher):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(researcher)
    url = f"/api/projects/{rank_project.slug}/tasks/generate/"
    made = api.post(url, {"strategy": "rank", "k": 5, "n_tasks": 3, "random_state": 1}, format="json")
    assert made.status_code == 201 and made.json() == {"created": 3}
    refused = api.post(url, {"strategy": "rank", "k": 5}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "n_tasks"
    bad_k = api.post(url, {"strategy": "rank", "k": 1, "n_tasks": 3}, format="json")
    assert bad_k.status_code == 400 and bad_k.json()["error"]["field"] == "k"
    assert Task.objects.filter(kind="rank").count() == 9
