"""Repeat assignments: a share of a rater's stream re-shows a pair they answered, sides swapped.

Repeats measure intra-rater consistency; they take no overlap slot, do not count towards
``tasks_per_rater``, and are left out of fits and of every between-rater statistic.
"""

import random
import uuid

import pytest
from django.urls import reverse

from annotator import selectors, services
from annotator.errors import InvalidInput
from annotator.forms import ProjectForm
from annotator.models import Assignment, Judgment, Task
from ranking import loaders, presenters
from ranking.core import agreement, pairwise
from ranking.services import agreement_reports, fit_runs
from tests.conftest import ready_rater
from tests.factories import ItemFactory
from tests.integration.test_permissions import token_client
from tests.integration.test_reports import intra_rater

pytestmark = pytest.mark.django_db


def repeat_project(researcher, *, n_items, overlap, repeat_rate, tasks_per_rater=0):
    project = services.project_create(owner=researcher, name=f"R{uuid.uuid4().hex[:6]}", overlap=overlap,
                                      repeat_rate=repeat_rate, tasks_per_rater=tasks_per_rater)
    for _ in range(n_items):
        ItemFactory(project=project, prompt="a boat")
    services.instruction_version_create(project=project, text="Pick one.", created_by=researcher)
    services.tasks_generate_within_prompt(project=project, random_state=0)
    return project


def answer_all(rater, choose):
    """Answer until nothing is left; ``choose(assignment)`` → choice. Returns the assignments in order."""
    stream = []
    while (a := services.assignment_next(rater=rater)) is not None:
        services.judgment_create(rater=rater, assignment_id=a.pk, choice=choose(a), idempotency_key=uuid.uuid4(),
                                 instruction_version_id=rater.acknowledged_instruction_id)
        stream.append(a)
    return stream


def prefer_lower_id(a):
    return "left" if a.left_item_id < a.right_item_id else "right"


def test_repeats_come_at_the_rate_swapped_spaced_and_once_each(researcher):
    project = repeat_project(researcher, n_items=20, overlap=1, repeat_rate=0.2)  # 190 tasks
    rater = ready_rater(project)
    stream = answer_all(rater, prefer_lower_id)
    repeats = [a for a in stream if a.is_repeat]
    n_new = len(stream) - len(repeats)
    assert n_new == 190  # every task once: repeats never crowd out a new task
    # Each step after the first three is a repeat with probability 0.2: expected share ≈ 0.2 (SD ≈ 0.026).
    assert 0.12 <= len(repeats) / len(stream) <= 0.28
    position = {a.pk: i for i, a in enumerate(stream)}
    for r in repeats:
        original = r.repeat_of
        assert original.rater_id == rater.pk and not original.is_repeat and original.task_id == r.task_id
        assert (r.left_item_id, r.right_item_id) == (original.right_item_id, original.left_item_id)
        assert position[r.pk] - position[original.pk] >= 4  # at least 3 other tasks in between
    assert len({r.repeat_of_id for r in repeats}) == len(repeats)  # each assignment repeated at most once
    assert all(not a.is_repeat for a in stream[:4])
    # Nothing new is left, so no repeat is served either, though unrepeated answers remain.
    assert Assignment.objects.filter(rater=rater, is_repeat=False, repeat__isnull=True).exists()
    assert services.assignment_next(rater=rater) is None
    assert not Task.objects.filter(project=project).exclude(n_assigned=1, n_judgments=1).exists()
    rater.refresh_from_db()
    assert (rater.n_judgments, rater.n_repeats) == (len(stream), len(repeats))
    assert selectors.rater_progress(rater=rater) == {"done": len(stream), "total": len(stream)}


def test_the_stream_follows_the_seeded_draws(researcher):
    project = repeat_project(researcher, n_items=8, overlap=1, repeat_rate=0.3)  # 28 tasks
    rater = ready_rater(project)
    stream = answer_all(rater, prefer_lower_id)
    repeated, n_new = set(), 0
    for i, a in enumerate(stream):
        # The draw is seeded by (rater id, answers so far): the same rater state, the same decision.
        drawn = random.Random(f"{rater.pk}:{i}").random() < 0.3
        eligible = any(not b.is_repeat and b.pk not in repeated for b in stream[:max(i - 3, 0)])
        assert a.is_repeat == (drawn and eligible and n_new < 28), i
        if a.is_repeat:
            repeated.add(a.repeat_of_id)
        else:
            n_new += 1


def test_repeats_take_no_overlap_slot(researcher):
    project = repeat_project(researcher, n_items=8, overlap=2, repeat_rate=0.5)  # 28 tasks × 2 slots
    first, second, third = (ready_rater(project) for _ in range(3))
    first_stream = answer_all(first, prefer_lower_id)
    assert sum(a.is_repeat for a in first_stream) >= 1
    second_stream = answer_all(second, lambda a: "left")
    assert len({a.task_id for a in second_stream if not a.is_repeat}) == 28  # full overlap for the others
    assert answer_all(third, prefer_lower_id) == []
    for task in Task.objects.filter(project=project):
        assert (task.n_assigned, task.n_judgments) == (2, 2)
        assert Judgment.objects.filter(task=task, is_repeat=False).count() == 2


def test_repeats_do_not_count_towards_tasks_per_rater(researcher, monkeypatch):
    # The repeat draw is seeded by the rater's id; fix the seed so the stream (and its repeats) never
    # depends on which ids earlier tests used.
    real = random.Random
    monkeypatch.setattr("annotator.services.assignments.random.Random",
                        lambda seed: real(f"fixed:{str(seed).split(':')[-1]}"))
    project = repeat_project(researcher, n_items=8, overlap=1, repeat_rate=0.5, tasks_per_rater=10)
    rater = ready_rater(project)
    stream = answer_all(rater, prefer_lower_id)
    n_repeats = sum(a.is_repeat for a in stream)
    assert len(stream) - n_repeats == 10 and n_repeats >= 1
    rater.refresh_from_db()
    assert selectors.rater_progress(rater=rater) == {"done": 10 + n_repeats, "total": 10 + n_repeats}


def test_an_expired_repeat_gives_no_slot_back(researcher):
    from datetime import timedelta

    project = repeat_project(researcher, n_items=8, overlap=1, repeat_rate=0.5)
    rater = ready_rater(project)
    while True:
        a = services.assignment_next(rater=rater)
        if a.is_repeat:
            break
        services.judgment_create(rater=rater, assignment_id=a.pk, choice="left", idempotency_key=uuid.uuid4(),
                                 instruction_version_id=rater.acknowledged_instruction_id)
    before = Task.objects.get(pk=a.task_id).n_assigned
    assert services.assignments_expire(older_than=timedelta(0)) == 1
    assert Task.objects.get(pk=a.task_id).n_assigned == before == 1


def test_intra_rater_consistency_equals_a_hand_count_and_repeats_stay_out_of_fits_and_opinions(researcher, client):
    project = repeat_project(researcher, n_items=8, overlap=2, repeat_rate=0.5)
    steady, flipper = ready_rater(project), ready_rater(project)
    steady_stream = answer_all(steady, prefer_lower_id)  # the same image every time: consistent
    flipper_stream = answer_all(flipper, lambda a: "left")  # always the left side: sides swap, so never
    n_steady = sum(a.is_repeat for a in steady_stream)
    n_flip = sum(a.is_repeat for a in flipper_stream)
    assert n_steady >= 5 and n_flip >= 5  # P(fewer) is negligible at rate 0.5 over 28 tasks

    result = intra_rater(project)
    assert (result["n_repeated"], result["n_consistent"]) == (n_steady + n_flip, n_steady)
    assert result["consistent_share"] == pytest.approx(n_steady / (n_steady + n_flip))
    low, high = agreement.wilson_interval(n_steady, n_steady + n_flip)
    assert result["wilson"] == pytest.approx([low, high])
    by_rater = {r["rater"]: r for r in result["raters"]}
    assert (by_rater[flipper.public_id]["n_repeated"], by_rater[flipper.public_id]["n_consistent"]) == (n_flip, 0)
    assert by_rater[flipper.public_id]["wilson"] == pytest.approx(list(agreement.wilson_interval(0, n_flip)))
    assert (by_rater[steady.public_id]["n_repeated"], by_rater[steady.public_id]["consistent_share"]) == (n_steady, 1)
    assert [r["rater"] for r in result["low"]] == [flipper.public_id]

    # Opinions per pair and kappa see exactly the two first answers of each pair.
    rows = loaders.pairwise_rows(project=project)
    assert rows.n == 56
    opinions = pairwise.pair_opinions(rows=rows, item_names={}, limit=100)
    assert all(p["n"] == 2 for p in opinions["rows"]) and opinions["n_pairs"] == 28
    assert pairwise.pairwise_agreement(rows=rows, with_ci=False)["fleiss_kappa"]["m"] == 2

    # Fits leave repeats out by default; asking for them includes them.
    cutoff = Judgment.objects.filter(project=project).latest("id").pk
    data = loaders.comparison_data(project_id=project.pk, cutoff_judgment_id=cutoff,
                                   params=fit_runs.validate_params(model="bt", params={}))
    repeat_ids = set(Judgment.objects.filter(project=project, is_repeat=True).values_list("id", flat=True))
    assert len(repeat_ids) == n_steady + n_flip
    assert data.judgment_ids.size == 56 and not repeat_ids & set(data.judgment_ids.tolist())
    params = fit_runs.validate_params(model="bt", params={"include_repeats": True})
    assert loaders.comparison_data(project_id=project.pk, cutoff_judgment_id=cutoff,
                                   params=params).judgment_ids.size == 56 + len(repeat_ids)

    # The stored report carries it, and the page shows it.
    computed = agreement_reports.agreement_compute(project=project)
    assert computed["intra_rater"]["n_consistent"] == n_steady
    view = presenters.agreement_view(result=computed)
    assert view["intra_rater"]["low"][0]["rater"] == flipper.public_id
    agreement_reports.agreement_report_compute_now(project=project)
    client.force_login(researcher)
    page = client.get(reverse("ranking_reports:agreement", args=[project.slug])).content.decode()
    assert f"{n_steady + n_flip} pairs answered twice by the same rater (2 raters)" in page
    assert f"<code>{flipper.public_id}</code> · low consistency" in page
    sheet = client.get(reverse("ranking_reports:datasheet_md", args=[project.slug])).content.decode()
    assert f"over {n_steady + n_flip} repeated pairs, 2 raters; 1 with low consistency" in sheet


def test_intra_rater_consistency_counts_ties_both_times_as_the_same(researcher):
    project = repeat_project(researcher, n_items=8, overlap=1, repeat_rate=0.5)
    rater = ready_rater(project)
    stream = answer_all(rater, lambda a: "tie")
    result = intra_rater(project)
    assert result["n_repeated"] == result["n_consistent"] == sum(a.is_repeat for a in stream) > 0


def test_no_repeats_when_the_rate_is_zero(project, rater):
    stream = answer_all(rater, prefer_lower_id)
    assert len(stream) == 6 and not any(a.is_repeat for a in stream)
    assert intra_rater(project)["n_repeated"] == 0


@pytest.mark.parametrize("bad", [-0.1, 0.51, 1, "0.2", True])
def test_repeat_rate_is_validated_with_the_field_named(researcher, bad):
    with pytest.raises(InvalidInput) as err:
        services.project_create(owner=researcher, name="Bad rate", repeat_rate=bad)
    assert err.value.field == "repeat_rate"
    project = services.project_create(owner=researcher, name="Good rate", slug=f"g{uuid.uuid4().hex[:6]}")
    with pytest.raises(InvalidInput) as err:
        services.project_update(project=project, repeat_rate=bad)
    assert err.value.field == "repeat_rate"


def test_repeat_rate_in_the_form_and_the_api(researcher, client):
    form = ProjectForm(data={"name": "Form", "overlap": 3, "tasks_per_rater": 0, "repeat_rate": 0.7})
    assert not form.is_valid() and "repeat_rate" in form.errors
    client.force_login(researcher)
    response = client.post(reverse("annotator:project_create"),
                           {"name": "Via form", "overlap": 3, "tasks_per_rater": 0, "repeat_rate": 0.25})
    assert response.status_code == 302
    project = researcher.owned_projects.get(name="Via form")
    assert project.repeat_rate == 0.25
    api = token_client(researcher)
    response = api.patch(reverse("api_project", args=[project.slug]), {"repeat_rate": 0.6}, format="json")
    assert response.status_code == 400 and response.json()["error"]["field"] == "repeat_rate"
    response = api.patch(reverse("api_project", args=[project.slug]), {"repeat_rate": 0.1}, format="json")
    assert response.status_code == 200 and response.json()["repeat_rate"] == 0.1
    project.refresh_from_db()
    assert project.repeat_rate == 0.1


def test_the_export_marks_repeat_answers(researcher):
    import io

    import pyarrow.parquet as pq

    from annotator.exports import judgments_export

    project = repeat_project(researcher, n_items=8, overlap=1, repeat_rate=0.5)
    stream = answer_all(ready_rater(project), prefer_lower_id)
    out = io.BytesIO()
    judgments_export(project=project, fmt="parquet", out=out)
    rows = pq.read_table(io.BytesIO(out.getvalue())).to_pylist()
    assert len(rows) == len(stream)
    repeat_tasks = [r["task_id"] for r in rows if r["is_repeat"]]
    assert repeat_tasks == [a.task_id for a in stream if a.is_repeat] and repeat_tasks
