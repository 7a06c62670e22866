"""Calibration rounds and metric gates in the app: staff only, sampling, ranking, results, proposals, history,
crowd links, schedules, drift across rounds, exports."""

import csv
import io
import uuid

import numpy as np
import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from rest_framework.test import APIClient
from scipy import stats

from annotator import selectors as annotator_selectors
from annotator import services as annotator_services
from annotator.models import RankAnswer, Rater, Task
from ranking import loaders, selectors, tasks
from ranking.models import (
    CalibrationRound,
    FitRun,
    GateChange,
    GateProposal,
    Metric,
    MetricGate,
    MetricRun,
    MetricScore,
    RoundResult,
    RoundSchedule,
)
from ranking.services import fit_runs
from ranking.services import gates as gate_services
from ranking.services import rounds as round_services
from tests.conftest import ready_rater
from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True)


@pytest.fixture
def archive(researcher):
    """20 images (two source models) with a known quality; metric 'good' follows it, 'bad' reverses it, 'noise'
    is unrelated; a study with consent, instructions and pairwise tasks."""
    project = annotator_services.project_create(owner=researcher, name="Archive", overlap=2)
    items = [ItemFactory(project=project, prompt=f"p{k % 4}", source_model=f"model-{k % 2}") for k in range(20)]
    annotator_services.consent_version_create(project=project, text="I agree.", created_by=researcher)
    annotator_services.instruction_version_create(project=project, text="Best first.", created_by=researcher)
    annotator_services.tasks_generate_within_prompt(project=project, random_state=0)
    rng = np.random.default_rng(3)
    quality = {item.pk: float(-k) for k, item in enumerate(items)}  # items[0] best
    run = MetricRun.objects.create(project=project, source="imported", status="succeeded")
    metrics = {name: Metric.objects.create(project=project, name=name, direction="higher")
               for name in ("good", "bad", "noise")}
    for item in items:
        MetricScore.objects.create(run=run, metric=metrics["good"], item=item, value=quality[item.pk])
        MetricScore.objects.create(run=run, metric=metrics["bad"], item=item, value=-quality[item.pk])
        MetricScore.objects.create(run=run, metric=metrics["noise"], item=item, value=float(rng.normal()))
    return project, items, quality, metrics


def _rank_true_order(rater, quality):
    assignment = annotator_services.assignment_next(rater=rater)
    order = sorted(assignment.shown_order, key=lambda i: -quality[i])
    answer, _ = annotator_services.rank_answer_create(
        rater=rater, assignment_id=assignment.pk, ranking=order, idempotency_key=uuid.uuid4(),
        instruction_version_id=annotator_selectors.instruction_current(project=rater.project).pk)
    return answer


def _started_round(project, staff, **kwargs):
    round_ = round_services.round_create(project=project, user=staff, seed=5, **kwargs)
    return round_services.round_start(round_=round_)


def _staff_rater(round_, user):
    rater = round_services.round_rater(round_=round_, user=user)
    annotator_services.rater_acknowledge_instructions(
        rater=rater, instruction_version_id=annotator_selectors.instruction_current(project=round_.project).pk)
    return rater


# ------------------------------------------------------------------------------------------------
# Staff only
# ------------------------------------------------------------------------------------------------

PAGE_GETS = ["ranking:rounds", "ranking:gates", "ranking:gate_decisions_csv"]
ROUND_GETS = ["ranking:round", "ranking:round_rank", "ranking:round_status"]
ROUND_POSTS = ["ranking:round_start", "ranking:round_close", "ranking:round_delete", "ranking:round_compute",
               "ranking:round_rank"]


@pytest.mark.parametrize("who", ["owner", "viewer", "outsider"])
def test_every_round_and_gate_page_refuses_non_staff(archive, staff, client, who, enqueued):
    project, *_ = archive
    round_ = _started_round(project, staff)
    gate = gate_services.gate_create(project=project, metric=Metric.objects.get(name="good"), threshold=-5.0,
                                     user=staff)
    user = {"owner": project.owner, "outsider": UserFactory()}.get(who)
    if who == "viewer":
        user = UserFactory()
        annotator_services.membership_add(project=project, user_reference=user.username, role="viewer")
    client.force_login(user)
    for name in PAGE_GETS:
        assert client.get(reverse(name, args=[project.slug])).status_code == 403, name
    for name in ROUND_GETS:
        assert client.get(reverse(name, args=[project.slug, round_.number])).status_code == 403, name
    for name in ROUND_POSTS:
        assert client.post(reverse(name, args=[project.slug, round_.number])).status_code == 403, name
    assert client.post(reverse("ranking:rounds", args=[project.slug]), {"sample_size": 5}).status_code == 403
    assert client.post(reverse("ranking:gate_threshold", args=[project.slug, gate.pk]),
                       {"threshold": 1, "reason": "x"}).status_code == 403
    api = APIClient()
    api.force_authenticate(user)
    for url in (f"/api/projects/{project.slug}/rounds/", f"/api/projects/{project.slug}/rounds/1/",
                f"/api/projects/{project.slug}/gates/", f"/api/projects/{project.slug}/gates/history/"):
        response = api.get(url)
        assert response.status_code == 403 and "staff" in response.json()["error"]["message"], url
    assert api.post(f"/api/projects/{project.slug}/rounds/", {"sample_size": 5}, format="json").status_code == 403
    assert api.post(f"/api/projects/{project.slug}/rounds/1/close/").status_code == 403
    assert CalibrationRound.objects.count() == 1 and MetricGate.objects.get().threshold == -5.0
    assert CalibrationRound.objects.get().status == "started"
    assert "Rounds" not in client.get(reverse("annotator:project_detail", args=[project.slug])).content.decode() \
        or who == "outsider"


def test_anonymous_is_sent_to_log_in_and_the_api_refuses(archive, client):
    project, *_ = archive
    response = client.get(reverse("ranking:rounds", args=[project.slug]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert APIClient().get(f"/api/projects/{project.slug}/rounds/").status_code in (401, 403)


# ------------------------------------------------------------------------------------------------
# Creating and starting
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("payload", "field"), [
    ({"sample_size": 2}, "sample_size"),
    ({"sample_size": 11}, "sample_size"),
    ({"sampling": "near_threshold"}, "gate"),
    ({"raters": "panel"}, "panel"),
    ({"raters": "panel", "panel": ["nobody-by-that-name"]}, "panel"),
    ({"raters": "crowd", "n_raters": 0}, "n_raters"),
    ({"sampling": "sideways"}, "sampling"),
])
def test_bad_rounds_are_refused_with_the_field_named_and_nothing_stored(archive, staff, payload, field):
    project, *_ = archive
    api = APIClient()
    api.force_authenticate(staff)
    response = api.post(f"/api/projects/{project.slug}/rounds/", payload, format="json")
    assert response.status_code == 400
    assert field in str(response.json()), response.json()
    assert not CalibrationRound.objects.exists()


def test_a_panel_of_non_staff_is_refused(archive, staff):
    project, *_ = archive
    api = APIClient()
    api.force_authenticate(staff)
    plain = UserFactory()
    response = api.post(f"/api/projects/{project.slug}/rounds/", {"raters": "panel", "panel": [plain.username]},
                        format="json")
    assert response.status_code == 400 and "must be staff" in str(response.json())
    assert not CalibrationRound.objects.exists()


@pytest.mark.parametrize("sampling", ["uniform", "stratified", "disagreement", "near_threshold"])
def test_starting_draws_the_sample_and_freezes_the_round(archive, staff, sampling, enqueued):
    project, items, quality, metrics = archive
    gate = gate_services.gate_create(project=project, metric=metrics["good"], threshold=-9.5, user=staff)
    round_ = round_services.round_create(project=project, user=staff, sample_size=6, sampling=sampling,
                                         gate=gate if sampling == "near_threshold" else None, seed=1)
    assert round_.status == "draft" and round_.item_ids == [] and round_.number == 1
    round_ = round_services.round_start(round_=round_)
    ids = round_.item_ids
    assert round_.status == "started" and len(ids) == 6 and len(set(ids)) == 6
    assert set(ids) <= {i.pk for i in items}
    task = Task.objects.get(pool=round_.pool)
    assert task.kind == "rank" and task.pool_id == round_.pool_id
    if sampling == "stratified":
        sources = [next(i.source_model for i in items if i.pk == pk) for pk in ids]
        assert sources.count("model-0") == sources.count("model-1") == 3
    if sampling == "near_threshold":  # the six scores nearest −9.5: −7 … −12
        assert sorted(quality[i] for i in ids) == [-12.0, -11.0, -10.0, -9.0, -8.0, -7.0]
    with pytest.raises(Exception, match="frozen"):
        round_services.round_start(round_=round_)
    with pytest.raises(Exception, match="kept"):
        round_services.round_delete_draft(round_=round_)
    again = round_services.round_create(project=project, user=staff, sample_size=6, sampling=sampling,
                                        gate=gate if sampling == "near_threshold" else None, seed=1)
    assert round_services.round_sample(round_=again) == ids  # reproducible from the seed


def test_disagreement_sampling_needs_two_metrics(researcher, staff):
    project = annotator_services.project_create(owner=researcher, name="Bare")
    for _ in range(5):
        ItemFactory(project=project)
    round_ = round_services.round_create(project=project, user=staff, sample_size=4, sampling="disagreement")
    with pytest.raises(Exception, match="at least two metrics"):
        round_services.round_start(round_=round_)
    assert CalibrationRound.objects.get().status == "draft"


# ------------------------------------------------------------------------------------------------
# Ranking: a pool apart from the study
# ------------------------------------------------------------------------------------------------


def test_round_tasks_and_study_tasks_never_mix(archive, staff, enqueued):
    project, _items, quality, _ = archive
    round_ = _started_round(project, staff, sample_size=5)
    participant = ready_rater(project)
    seen = set()
    while (a := annotator_services.assignment_next(rater=participant)) is not None:
        assert a.task.pool_id is None
        seen.add(a.task_id)
        annotator_services.judgment_create(rater=participant, assignment_id=a.pk, choice="left",
                                           idempotency_key=uuid.uuid4(),
                                           instruction_version_id=participant.acknowledged_instruction_id)
    assert seen and Task.objects.get(pool=round_.pool).pk not in seen
    rater = _staff_rater(round_, staff)
    assert rater.pool_id == round_.pool_id and rater.source == "staff"
    assert annotator_selectors.rater_next_step(rater=rater) == "task"  # staff skip consent and demographics
    FitRun.objects.filter(project=project).delete()
    answer = _rank_true_order(rater, quality)
    assert answer.task.pool_id == round_.pool_id
    assert annotator_services.assignment_next(rater=rater) is None  # nothing else for a round's rater
    # the round's ranking asks for a round result, not a refit of the study; it stays out of the study's data
    assert RoundResult.objects.filter(round=round_, status="queued").exists()
    assert not FitRun.objects.filter(project=project).exists()
    assert loaders.latest_ranking_id(project_id=project.pk) is None
    # nor does the periodic sweep refit the study for it: fitted up to its newest judgment, it is up to date
    run = fit_runs.fit_run_request(project=project)
    tasks.fit_run_execute(run.pk)
    assert FitRun.objects.get(pk=run.pk).status == "succeeded"
    assert fit_runs.fit_sweep() == 0
    progress = annotator_selectors.project_progress(project=project)
    assert progress.n_raters == 1 and progress.n_tasks == Task.objects.filter(project=project, pool=None).count()
    assert round_services.round_rater(round_=round_, user=staff).pk == rater.pk  # one rater per staff member


def test_a_panel_round_is_ranked_only_by_its_panel(archive, staff, client, enqueued):
    project, *_ = archive
    other = UserFactory(is_staff=True)
    round_ = _started_round(project, staff, raters="panel", panel=[staff])
    client.force_login(other)
    response = client.get(reverse("ranking:round_rank", args=[project.slug, round_.number]))
    assert response.status_code == 302
    assert not Rater.objects.filter(pool=round_.pool).exists()
    with pytest.raises(Exception, match="not on this round's panel"):
        round_services.round_rater(round_=round_, user=other)


def test_staff_rank_page_shows_instructions_then_the_rank_task(archive, staff, client, enqueued):
    project, *_ = archive
    round_ = _started_round(project, staff, sample_size=4)
    client.force_login(staff)
    url = reverse("ranking:round_rank", args=[project.slug, round_.number])
    page = client.get(url)
    assert page.status_code == 200 and "Best first." in page.content.decode()
    instruction = annotator_selectors.instruction_current(project=project)
    assert client.post(url, {"instruction_version": instruction.pk}).status_code == 302
    page = client.get(url).content.decode()
    assert 'id="rank-app"' in page and reverse("ranking:round", args=[project.slug, round_.number]) in page
    # the rater API of the session serves the round's task; a ranking that is not a permutation is refused
    nxt = client.get(reverse("rater:api_next", args=[project.slug])).json()
    shown = [i["id"] for i in nxt["assignment"]["items"]]
    assert sorted(shown) == sorted(round_.item_ids)
    submit = reverse("rater:api_rankings", args=[project.slug])
    bad = client.post(submit, {"assignment": nxt["assignment"]["id"], "ranking": shown[:-1],
                               "idempotency_key": str(uuid.uuid4()), "instruction_version": instruction.pk},
                      content_type="application/json")
    assert bad.status_code == 400 and "leaves out" in bad.json()["error"]["message"]
    good = client.post(submit, {"assignment": nxt["assignment"]["id"], "ranking": shown,
                                "idempotency_key": str(uuid.uuid4()), "instruction_version": instruction.pk},
                       content_type="application/json")
    assert good.status_code == 201 and RankAnswer.objects.count() == 1


def test_crowd_raters_join_by_the_round_link_and_get_only_its_task(archive, staff, client, enqueued):
    project, *_ = archive
    round_ = _started_round(project, staff, sample_size=4, raters="crowd", n_raters=1)
    client.force_login(staff)
    page = client.get(reverse("ranking:round", args=[project.slug, round_.number])).content.decode()
    assert round_.pool.join_token in page
    crowd = client.__class__()
    response = crowd.get(reverse("join", args=[project.slug, round_.pool.join_token]))
    assert response.status_code == 302
    rater = Rater.objects.get(pool=round_.pool)
    assert rater.source == "invite"
    assert annotator_selectors.rater_next_step(rater=rater) == "consent"  # crowd raters are participants
    assignment = annotator_services.assignment_next(rater=rater)
    assert assignment.task.pool_id == round_.pool_id
    late = client.__class__()
    full = late.get(reverse("join", args=[project.slug, round_.pool.join_token]))
    assert full.status_code == 409 and "full" in full.content.decode()
    assert Rater.objects.filter(pool=round_.pool).count() == 1
    round_services.round_close(round_=round_)
    closed = client.__class__()
    assert "not accepting" in closed.get(reverse("join", args=[project.slug, round_.pool.join_token])).content.decode()


# ------------------------------------------------------------------------------------------------
# Results, proposals, gate history
# ------------------------------------------------------------------------------------------------


def test_result_consensus_metrics_and_gates(archive, staff, enqueued):
    project, _items, quality, metrics = archive
    # the gate passes the top 15 of 20 images: in a sample, humans' bottom half includes passing images
    gate = gate_services.gate_create(project=project, metric=metrics["good"], threshold=-14.5, user=staff,
                                     reason="Start loose.")
    round_ = _started_round(project, staff, sample_size=8)
    for user in (staff, UserFactory(is_staff=True), UserFactory(is_staff=True)):
        _rank_true_order(_staff_rater(round_, user), quality)
    result = round_services.round_result_compute_now(round_=round_)
    assert result.status == "succeeded", result.error
    content = result.result
    assert content["n_rankings"] == 3 and content["n_items"] == 8
    truth = sorted(round_.item_ids, key=lambda i: -quality[i])
    assert [row["id"] for row in content["items"]] == truth
    by_name = {m["name"]: m for m in content["metrics"]}
    assert by_name["good"]["tau_b"] == pytest.approx(1.0) and by_name["good"]["accuracy"] == pytest.approx(1.0)
    assert by_name["bad"]["tau_b"] == pytest.approx(-1.0) and by_name["bad"]["top_k_overlap"] == 0.0
    strengths = {row["id"]: row["strength"] for row in content["items"]}
    noise = dict(MetricScore.objects.filter(metric=metrics["noise"]).values_list("item_id", "value"))
    tau, p = stats.kendalltau([strengths[i] for i in round_.item_ids], [noise[i] for i in round_.item_ids],
                              method="exact")
    assert by_name["noise"]["tau_b"] == pytest.approx(tau) and by_name["noise"]["p_value"] == pytest.approx(p)
    assert by_name["noise"]["p_method"] == "exact"
    (gate_row,) = content["gates"]
    bottom = set(truth[4:])
    assert set(gate_row["false_pass"]) == {i for i in bottom if quality[i] >= -14.5}
    assert gate_row["false_fail"] == []
    proposal = GateProposal.objects.get(gate=gate, round=round_)
    assert proposal.status == "pending" and proposal.current_threshold == -14.5
    top_low, bottom_high = min(quality[i] for i in truth[:4]), max(quality[i] for i in truth[4:])
    assert bottom_high < proposal.threshold < top_low  # separates the humans' top half from the rest
    assert proposal.ci_low <= proposal.threshold <= proposal.ci_high
    assert proposal.agreement_proposed == 1.0 and proposal.agreement_current < 1.0
    # applying it changes the gate, with who, when, why and the round in the history
    gate_services.proposal_apply(proposal=proposal, user=staff, reason="Round 1 says so.")
    gate.refresh_from_db()
    assert gate.threshold == proposal.threshold
    change = GateChange.objects.filter(gate=gate, action="threshold").get()
    assert (change.old_threshold, change.new_threshold, change.round_id, change.changed_by_id, change.reason) == (
        -14.5, proposal.threshold, round_.pk, staff.pk, "Round 1 says so.")
    with pytest.raises(Exception, match="already applied"):
        gate_services.proposal_apply(proposal=proposal, user=staff)
    # a second result with the new threshold proposes nothing
    round_services.round_result_compute_now(round_=round_)
    assert GateProposal.objects.filter(gate=gate, status="pending").count() == 0


def test_rejecting_needs_a_reason_and_is_kept_in_the_history(archive, staff, client, enqueued):
    project, _items, quality, metrics = archive
    gate = gate_services.gate_create(project=project, metric=metrics["good"], threshold=-14.5, user=staff)
    round_ = _started_round(project, staff, sample_size=8)
    _rank_true_order(_staff_rater(round_, staff), quality)
    round_services.round_result_compute_now(round_=round_)
    proposal = GateProposal.objects.get(gate=gate)
    client.force_login(staff)
    url = reverse("ranking:proposal_reject", args=[project.slug, proposal.pk])
    client.post(url, {"reason": "  "})
    proposal.refresh_from_db()
    assert proposal.status == "pending"
    client.post(url, {"reason": "One rater is not enough."})
    proposal.refresh_from_db()
    gate.refresh_from_db()
    assert proposal.status == "rejected" and gate.threshold == -14.5
    rejection = GateChange.objects.get(gate=gate, action="rejected")
    assert rejection.reason == "One rater is not enough." and rejection.round_id == round_.pk
    page = client.get(reverse("ranking:gates", args=[project.slug])).content.decode()
    assert "One rater is not enough." in page and "Proposal rejected" in page


def test_manual_threshold_changes_need_a_reason_and_history_is_append_only(archive, staff):
    project, _items, _quality, metrics = archive
    gate = gate_services.gate_create(project=project, metric=metrics["good"], threshold=-3.0, user=staff)
    with pytest.raises(Exception, match="Say why"):
        gate_services.gate_set_threshold(gate=gate, threshold=-4.0, user=staff, reason="")
    with pytest.raises(Exception, match="finite"):
        gate_services.gate_set_threshold(gate=gate, threshold=float("nan"), user=staff, reason="x")
    gate_services.gate_set_threshold(gate=gate, threshold=-4.0, user=staff, reason="Too strict.")
    assert [c.action for c in GateChange.objects.filter(gate=gate).order_by("id")] == ["created", "threshold"]
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            GateChange.objects.filter(gate=gate).update(reason="rewritten")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            GateChange.objects.filter(gate=gate).delete()


def test_gate_api_and_decisions_export(archive, staff, client):
    project, _items, quality, _metrics = archive
    api = APIClient()
    api.force_authenticate(staff)
    response = api.post(f"/api/projects/{project.slug}/gates/", {"metric": "good", "threshold": -9.5}, format="json")
    assert response.status_code == 201 and response.json()["direction"] == "higher"
    assert api.post(f"/api/projects/{project.slug}/gates/", {"metric": "good", "threshold": -1},
                    format="json").status_code == 409
    assert api.post(f"/api/projects/{project.slug}/gates/", {"metric": "nope", "threshold": 1},
                    format="json").status_code == 400
    gate_id = response.json()["id"]
    bad = api.post(f"/api/projects/{project.slug}/gates/{gate_id}/threshold/", {"threshold": 1}, format="json")
    assert bad.status_code == 400 and "reason" in str(bad.json())
    client.force_login(staff)
    body = b"".join(client.get(reverse("ranking:gate_decisions_csv", args=[project.slug])).streaming_content)
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert len(rows) == 20
    for row in rows:
        expected = "pass" if quality[int(row["item_id"])] >= -9.5 else "fail"
        assert row["good:overall:pass"] == expected
    history = api.get(f"/api/projects/{project.slug}/gates/history/").json()
    assert [h["action"] for h in history] == ["created"]


# ------------------------------------------------------------------------------------------------
# Pages, drift across rounds, schedules
# ------------------------------------------------------------------------------------------------


def test_pages_run_a_round_end_to_end(archive, staff, client, enqueued):
    project, _items, quality, metrics = archive
    # a gate that fails every image: whatever six images the round's random seed draws, a better threshold exists
    # and is proposed (with -14.5, a draw whose bottom half all lie below it proposed nothing, ~13% of seeds)
    gate_services.gate_create(project=project, metric=metrics["good"], threshold=0.5, user=staff)
    client.force_login(staff)
    response = client.post(reverse("ranking:rounds", args=[project.slug]),
                           {"sample_size": 6, "sampling": "uniform", "raters": "staff", "n_raters": 3})
    assert response.status_code == 302
    round_ = CalibrationRound.objects.get()
    detail = reverse("ranking:round", args=[project.slug, round_.number])
    assert "Start: draw the sample" in client.get(detail).content.decode()
    client.post(reverse("ranking:round_start", args=[project.slug, round_.number]))
    round_.refresh_from_db()
    assert round_.status == "started"
    _rank_true_order(_staff_rater(round_, staff), quality)
    client.post(reverse("ranking:round_compute", args=[project.slug, round_.number]))
    page = client.get(detail).content.decode()
    assert "Human consensus" in page and "Kendall" in page and 'id="round-proposals"' in page
    listing = client.get(reverse("ranking:rounds", args=[project.slug])).content.decode()
    assert "Round 1" in listing and "Agreement across rounds" in listing
    # each metric's drift chart names its rounds on the x-axis
    assert listing.count('text-anchor="middle" font-size="10">1</text>') == len(metrics)


def test_drift_across_rounds_pools_and_alarms(archive, staff, enqueued, settings):
    project, _items, quality, metrics = archive
    settings.PREFLAB_ROUND_ALARM_BASELINE = 5

    def one_round():
        round_ = _started_round(project, staff, sample_size=6)
        _rank_true_order(_staff_rater(round_, staff), quality)
        assert round_services.round_result_compute_now(round_=round_).status == "succeeded"

    for _ in range(5):
        one_round()
    drift = {d["name"]: d for d in selectors.rounds_drift(project=project)}
    assert [r["number"] for r in drift["good"]["rounds"]] == [1, 2, 3, 4, 5]
    assert drift["good"]["pooled"]["estimate"] == pytest.approx(1.0)
    assert drift["good"]["alarm"] is None  # five baseline rounds: nothing tested yet
    assert drift["bad"]["pooled"]["estimate"] == pytest.approx(0.0, abs=1e-9)
    # an accuracy's interval stays within [0, 1] (a normal interval around 0 or 1 would not)
    assert drift["bad"]["pooled"]["ci_low"] == 0.0 < drift["bad"]["pooled"]["ci_high"]
    assert drift["good"]["pooled"]["ci_low"] < drift["good"]["pooled"]["ci_high"] == 1.0
    # the metric drifts: a new run of 'good' scores turns it against the humans; the next rounds alarm
    run = MetricRun.objects.create(project=project, source="imported", status="succeeded")
    MetricScore.objects.bulk_create([MetricScore(run=run, metric=metrics["good"], item_id=i, value=-q)
                                     for i, q in quality.items()])
    one_round()
    one_round()
    good = {d["name"]: d for d in selectors.rounds_drift(project=project)}["good"]
    assert [r["accuracy"] for r in good["rounds"]][-2:] == [0.0, 0.0]
    assert good["alarm"]["alarm_at"] == 6
    assert good["pooled"]["estimate"] < 5 / 7  # below the plain mean of the seven rounds: recent ones weigh more


def test_schedule_makes_rounds_when_due(archive, staff, enqueued):
    project, _items, _quality, _metrics = archive
    schedule = round_services.round_schedule_set(project=project, user=staff, every_n_images=3, every_days=None,
                                                 sample_size=4)
    assert schedule.last_item_count == 20
    assert round_services.rounds_schedule_due() == []
    for _ in range(3):
        ItemFactory(project=project)
    (made,) = round_services.rounds_schedule_due()
    assert made.status == "started" and made.schedule_id == schedule.pk and len(made.item_ids) == 4
    assert round_services.rounds_schedule_due() == []  # not again until 3 more images
    with pytest.raises(Exception, match="every_n_images or every_days"):
        round_services.round_schedule_set(project=project, user=staff, every_n_images=None, every_days=None)
    RoundSchedule.objects.filter(pk=schedule.pk).update(every_n_images=None, every_days=1,
                                                        last_round_at="2020-01-01T00:00:00Z")
    assert len(round_services.rounds_schedule_due()) == 1


def test_a_metric_that_scores_every_image_alike_has_no_tau_and_the_result_still_succeeds(archive, staff, enqueued):
    project, items, quality, _ = archive
    run = MetricRun.objects.create(project=project, source="imported", status="succeeded")
    flat = Metric.objects.create(project=project, name="flat", direction="higher")
    MetricScore.objects.bulk_create([MetricScore(run=run, metric=flat, item=item, value=1.0) for item in items])
    round_ = _started_round(project, staff, sample_size=5)
    _rank_true_order(_staff_rater(round_, staff), quality)
    result = round_services.round_result_compute_now(round_=round_)
    assert result.status == "succeeded", result.error
    row = next(m for m in result.result["metrics"] if m["name"] == "flat")
    assert row["tau_b"] is None and row["p_value"] is None and row["accuracy"] == 0.5
