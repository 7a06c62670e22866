"""Agreement report and datasheet: statistics on hand-made and simulated judgments, pages, permissions."""

import json
import uuid

import numpy as np
import pytest
from django.urls import reverse

from annotator import selectors, services
from annotator.models import Judgment, demographic_field_label
from ranking import loaders, presenters
from ranking.core import agreement, pairwise
from ranking.models import DEFAULT_ALPHA
from ranking.services import agreement_reports
from tests.factories import ItemFactory, RaterFactory, UserFactory

pytestmark = pytest.mark.django_db


def intra_rater(project):
    """Intra-rater consistency of the project's repeats, as the agreement report computes it."""
    return pairwise.intra_rater_consistency(repeats=loaders.repeat_pairs(project=project),
                                            public_ids=loaders.public_ids(project=project),
                                            repeat_rate=project.repeat_rate)


def group_breakdown(project, rows, field="expertise", item_names=None):
    """The report's group breakdown of ``rows`` by a demographic field."""
    return pairwise.group_breakdown(rows=rows, groups_by_rater=loaders.rater_groups(project=project, field=field),
                                    field=field, field_label=demographic_field_label(field),
                                    labels=loaders.demographic_labels(field=field), item_names=item_names or {},
                                    alpha=DEFAULT_ALPHA)


def datasheet_build(project):
    """The datasheet computed now from all current data (no stored report)."""
    return presenters.datasheet_view(result=agreement_reports.agreement_compute(project=project), project=project)


def make_rater(project, prolific_pid="", **demographics):
    rater = RaterFactory(project=project, prolific_pid=prolific_pid)
    consent = selectors.consent_current(project=project)
    if consent:
        services.rater_consent(rater=rater, consent_version_id=consent.pk)
    services.demographics_submit(rater=rater, **demographics)
    services.rater_acknowledge_instructions(rater=rater, instruction_version_id=selectors.instruction_current(
        project=project).pk)
    rater.refresh_from_db()
    return rater


def judge_all(rater, choose, limit=None):
    """Answer the rater's assignments until none are left; ``choose(left_id, right_id)`` → choice."""
    n = 0
    while limit is None or n < limit:
        assignment = services.assignment_next(rater=rater)
        if assignment is None:
            break
        services.judgment_create(rater=rater, assignment_id=assignment.pk, idempotency_key=uuid.uuid4(),
                                 choice=choose(assignment.left_item_id, assignment.right_item_id),
                                 instruction_version_id=rater.acknowledged_instruction_id)
        n += 1
    return n


def prefer(order):
    """Always choose the item that comes first in ``order`` (ids)."""
    rank = {item_id: i for i, item_id in enumerate(order)}
    return lambda left, right: "left" if rank[left] < rank[right] else "right"


def noisy_bt(theta_by_id, rng):
    def choose(left, right):
        p_left = 1 / (1 + np.exp(-(theta_by_id[left] - theta_by_id[right])))
        return "left" if rng.random() < p_left else "right"
    return choose


def new_project(researcher, n_items, overlap):
    project = services.project_create(owner=researcher, name=f"P{uuid.uuid4().hex[:6]}", overlap=overlap)
    items = [ItemFactory(project=project, prompt="a cat") for _ in range(n_items)]
    services.consent_version_create(project=project, text="You agree.")
    services.instruction_version_create(project=project, text="Pick the *nicer* one.", created_by=researcher)
    services.tasks_generate_within_prompt(project=project, random_state=0)
    return project, items


def test_pair_shares_and_wilson_interval_on_a_hand_made_pair(researcher, client):
    project, (a, b) = new_project(researcher, 2, overlap=10)
    for i in range(10):
        winner = a.pk if i < 7 else b.pk
        judge_all(make_rater(project), lambda left, right, w=winner: "left" if left == w else "right")
    rows = loaders.pairwise_rows(project=project)
    opinions = pairwise.pair_opinions(rows=rows, item_names={})
    (pair,) = opinions["rows"]
    assert (pair["n"], pair["n_a"], pair["n_b"], pair["n_tie"]) == (10, 7, 3, 0)
    assert pair["share_a"] == pytest.approx(0.7) and pair["majority_share"] == pytest.approx(0.7)
    assert pair["wilson_a"] == pytest.approx([0.396778, 0.892209], abs=2e-6)  # Wilson (1927), z = 1.96
    summary = pairwise.pairwise_agreement(rows=rows, with_ci=False)
    assert summary["mean_majority_share"] == pytest.approx(0.7)
    assert summary["fleiss_kappa"]["m"] == 10 and summary["fleiss_kappa"]["n_pairs"] == 1
    assert intra_rater(project)["n_repeated"] == 0
    agreement_reports.agreement_report_compute_now(project=project)  # as the Compute button does
    client.force_login(researcher)
    page = client.get(reverse("ranking_reports:agreement", args=[project.slug]))
    assert page.status_code == 200
    assert "70% preferred A, 30% B, n = 10" in page.content.decode()
    assert "40%–89%" in page.content.decode()


def test_controversy_sort_puts_even_splits_first(researcher):
    project, items = new_project(researcher, 3, overlap=4)
    ids = [i.pk for i in items]
    # Pair (0,1): 2–2; pair (0,2) and (1,2): unanimous.
    for k in range(4):
        def choose(left, right, k=k):
            pair = {left, right}
            winner = (ids[0] if k < 2 else ids[1]) if pair == {ids[0], ids[1]} else min(pair, key=ids.index)
            return "left" if left == winner else "right"
        judge_all(make_rater(project), choose)
    rows = loaders.pairwise_rows(project=project)
    first = pairwise.pair_opinions(rows=rows, item_names={}, sort="controversy")["rows"][0]
    assert {first["item_a_id"], first["item_b_id"]} == {ids[0], ids[1]}
    assert pairwise.pair_opinions(rows=rows, item_names={}, sort="agreement")["rows"][0]["majority_share"] == 1.0


def test_cyclic_rater_is_detected(project):
    ids = list(project.items.order_by("id").values_list("id", flat=True))
    beats = {(ids[0], ids[1]), (ids[1], ids[2]), (ids[2], ids[0])}  # a cycle; ids[3] loses to everyone

    def cyclic(left, right):
        if (left, right) in beats or right == ids[3]:
            return "left"
        return "right"

    cyc = make_rater(project)
    assert judge_all(cyc, cyclic) == 6
    fair = make_rater(project)
    judge_all(fair, prefer(ids))
    quality = pairwise.rater_quality(rows=loaders.pairwise_rows(project=project),
                                     public_ids={cyc.pk: cyc.public_id, fair.pk: fair.public_id}, alpha=DEFAULT_ALPHA)
    by_id = {r["rater"]: r for r in quality["raters"]}
    assert (by_id[cyc.public_id]["n_triads"], by_id[cyc.public_id]["n_cyclic"]) == (4, 1)
    assert (by_id[fair.public_id]["n_triads"], by_id[fair.public_id]["n_cyclic"]) == (4, 0)
    assert quality["n_cyclic"] == 1 and quality["n_triads"] == 8


def _two_group_project(researcher, *, reverse_second: bool, seed: int):
    """6 images, 15 pairs; 12 artists and 12 laypeople judge every pair under a noisy BT model."""
    project, items = new_project(researcher, 6, overlap=40)
    rng = np.random.default_rng(seed)
    theta = {item.pk: s for item, s in zip(items, np.linspace(-1.5, 1.5, len(items)))}
    flipped = {k: -v for k, v in theta.items()}
    for k in range(24):
        group = "artist" if k % 2 == 0 else "layperson"
        rater = make_rater(project, expertise=group, country="FR" if k % 3 else "DE")
        judge_all(rater, noisy_bt(flipped if (reverse_second and group == "layperson") else theta, rng))
    return project, items


def test_lr_test_detects_groups_that_rank_in_reverse(researcher):
    project, _ = _two_group_project(researcher, reverse_second=True, seed=1)
    small = make_rater(project, expertise="photographer")
    judge_all(small, lambda left, right: "tie", limit=3)
    rows = loaders.pairwise_rows(project=project)
    result = group_breakdown(project, rows)
    lr = result["lr_test"]
    assert lr["df"] == 5 and lr["n_common"] == 6
    assert lr["p"] < 0.01
    groups = {g["value"]: g for g in result["groups"]}
    assert groups["photographer"]["too_small"] and groups["photographer"]["n_judgments"] == 3
    assert not groups["artist"]["too_small"] and groups["artist"]["n_raters"] == 12
    assert sorted(lr["groups"]) == ["Artist", "Layperson"]  # the small group is reported, not tested
    # Strengths per group point in opposite directions.
    top = result["strength_table"]
    assert len(top) == 6 and all(len(row["groups"]) == len(result["groups"]) for row in top)


def test_lr_test_finds_nothing_when_groups_agree(researcher, monkeypatch):
    # Left/right sides are drawn with `secrets`; seed them too so that this null case is deterministic
    # (the test's calibration over many null simulations is in tests/unit/test_consistency.py).
    sides = np.random.default_rng(2)
    monkeypatch.setattr("annotator.services.assignments.secrets.randbelow", lambda n: int(sides.integers(n)))
    project, _ = _two_group_project(researcher, reverse_second=False, seed=2)
    rows = loaders.pairwise_rows(project=project)
    lr = group_breakdown(project, rows)["lr_test"]
    assert lr["p"] > 0.05


def test_outlier_rater_is_flagged_not_dropped(researcher):
    project, items = new_project(researcher, 6, overlap=10)
    ids = [i.pk for i in items]
    for _ in range(6):
        judge_all(make_rater(project), prefer(ids))
    contrarian = make_rater(project)
    judge_all(contrarian, prefer(ids[::-1]))
    quality = pairwise.rater_quality(rows=loaders.pairwise_rows(project=project),
                                     public_ids=loaders.public_ids(project=project), alpha=DEFAULT_ALPHA)
    flagged = [r for r in quality["raters"] if r["flagged"]]
    assert [r["rater"] for r in flagged] == [contrarian.public_id]
    assert flagged[0]["loo_agreement"] == 0.0 and flagged[0]["bt_agreement"] == 0.0
    assert len(quality["raters"]) == 7


def test_datasheet_counts_versions_and_no_external_ids(researcher, client):
    project, items = new_project(researcher, 4, overlap=4)
    ids = [i.pk for i in items]
    first = make_rater(project, prolific_pid="PIDSECRET0001", country="DE", gender="woman")
    judge_all(first, prefer(ids), limit=4)
    services.instruction_version_create(project=project, text="Now pick the **sharper** one.", created_by=researcher)
    second = make_rater(project, prolific_pid="PIDSECRET0002", gender="prefer_not")
    judge_all(second, prefer(ids), limit=3)
    RaterFactory(project=project, prolific_pid="PIDSECRET0003")  # joined, never answered demographics
    agreement_reports.datasheet_note_update(project=project, limitations="Only *two* raters.")

    agreement_reports.agreement_report_compute_now(project=project)  # as the Compute button does
    client.force_login(researcher)
    response = client.get(reverse("ranking_reports:datasheet_json", args=[project.slug]))
    assert response.status_code == 200
    body = response.content.decode()
    sheet = json.loads(body)
    assert sheet["counts"]["items"] == 4 and sheet["counts"]["judgments"] == 7
    assert sheet["counts"]["raters_joined"] == 3 and sheet["counts"]["raters_with_judgments"] == 2
    versions = {v["version"]: v for v in sheet["instruction_versions"]}
    assert (versions[1]["n_judgments"], versions[2]["n_judgments"]) == (4, 3)
    assert versions[1]["in_force_until"] == versions[2]["in_force_from"] and versions[2]["in_force_until"] is None
    assert "sharper" in versions[2]["text"]
    assert sheet["consent_versions"][0]["n_raters_consented"] == 2
    gender = {c["label"]: c["n"] for c in next(f for f in sheet["demographics"] if f["field"] == "gender")["counts"]}
    assert gender == {"Woman": 1, "Prefer not to say": 1, "Not answered": 1}
    assert sheet["collection_period"]["first_judgment"] and sheet["limitations"] == "Only *two* raters."
    assert "expertise" in sheet["group_differences"]
    markdown = client.get(reverse("ranking_reports:datasheet_md", args=[project.slug])).content.decode()
    page = client.get(reverse("ranking_reports:datasheet", args=[project.slug])).content.decode()
    for text in (body, markdown, page):
        assert "PIDSECRET" not in text
        assert first.public_id not in text  # the datasheet shows raters only in aggregate
    assert "judgments made under it: 4" in markdown and "Now pick the **sharper** one." in markdown
    assert "<strong>sharper</strong>" in page


def test_instruction_script_is_not_rendered(researcher, client):
    project, _ = new_project(researcher, 2, overlap=1)
    services.instruction_version_create(project=project, text="<script>alert(1)</script> Hi", created_by=researcher)
    agreement_reports.agreement_report_compute_now(project=project)  # as the Compute button does
    client.force_login(researcher)
    page = client.get(reverse("ranking_reports:datasheet", args=[project.slug])).content.decode()
    assert "<script>alert(1)</script>" not in page


def test_empty_project_renders_and_says_so(project, client, researcher):
    agreement_reports.agreement_report_compute_now(project=project)  # as the Compute button does
    client.force_login(researcher)
    page = client.get(reverse("ranking_reports:agreement", args=[project.slug])).content.decode()
    assert "No judgments yet." in page and "No Likert data yet" in page
    assert "Not measured: this project's repeat rate is 0" in page


URLS = ["ranking_reports:agreement", "ranking_reports:datasheet", "ranking_reports:datasheet_md",
        "ranking_reports:datasheet_json"]


@pytest.mark.parametrize("name", URLS)
def test_pages_for_members_only(project, researcher, client, name):
    judge_all(make_rater(project), lambda left, right: "left")
    url = reverse(name, args=[project.slug])
    assert client.get(url).status_code == 302  # anonymous: to the login page
    agreement_reports.agreement_report_compute_now(project=project)  # as the Compute button does
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    viewer = UserFactory()
    services.membership_set(project=project, user=viewer, role="viewer")
    client.force_login(viewer)
    assert client.get(url).status_code == 200
    client.force_login(researcher)
    assert client.get(url).status_code == 200


def test_viewer_cannot_edit_limitations(project, client):
    viewer = UserFactory()
    services.membership_set(project=project, user=viewer, role="viewer")
    client.force_login(viewer)
    url = reverse("ranking_reports:datasheet", args=[project.slug])
    assert client.post(url, {"limitations": "hijack"}).status_code == 403
    assert datasheet_build(project)["limitations"] == ""


def test_researcher_saves_limitations(project, client, researcher):
    client.force_login(researcher)
    url = reverse("ranking_reports:datasheet", args=[project.slug])
    assert client.post(url, {"limitations": "Raters were students."}).status_code == 302
    assert "Raters were students." in client.get(url).content.decode()
    assert Judgment.objects.count() == 0


CHECKS = [{"id": "hands_ok", "dimension": "fidelity", "question": "Are the hands right?", "required": True}]


def test_likert_and_checklist_agreement_from_annotations(researcher, client):
    project = services.project_create(owner=researcher, name="Scores", overlap=3)
    items = [ItemFactory(project=project, prompt="a dog") for _ in range(6)]
    services.instruction_version_create(project=project, text="Score it.", created_by=researcher)
    services.project_feedback_update(project=project, checklist=CHECKS)
    services.tasks_generate_single(project=project, kind="rich", random_state=0)
    services.tasks_generate_single(project=project, kind="checklist", random_state=0)
    quality = {item.pk: q for item, q in zip(items, [1, 2, 3, 4, 5, 3])}
    noisy = {items[0].pk, items[1].pk}  # raters disagree by one point on these two
    submitted: dict[int, list[int]] = {}
    for r in range(3):
        rater = make_rater(project)
        while (assignment := services.assignment_next(rater=rater)) is not None:
            item_id = assignment.left_item_id
            if assignment.task.kind == "rich":
                score = quality[item_id] + (r % 2 if item_id in noisy else 0)
                submitted.setdefault(item_id, []).append(score)
                kwargs = {"scores": {d: score for d in ("plausibility", "alignment", "aesthetics", "overall")}}
            else:
                kwargs = {"checklist": {"hands_ok": quality[item_id] >= 3}}
            services.annotation_create(rater=rater, assignment_id=assignment.pk, idempotency_key=uuid.uuid4(),
                                       instruction_version_id=rater.acknowledged_instruction_id, **kwargs)
    rich = agreement_reports.rich_agreement(project=project)
    overall = next(d for d in rich["likert"] if d["name"] == "overall")
    matrix = np.array([submitted[item.pk] for item in sorted(items, key=lambda i: i.pk)], dtype=float)
    expected = agreement.icc(matrix)
    assert overall["k"] == 3 and overall["n_targets_icc"] == 6
    assert overall["icc1"]["value"] == pytest.approx(expected["ICC1"].value, abs=1e-12)
    assert overall["icc1k"]["value"] == pytest.approx(expected["ICC1k"].value, abs=1e-12)
    assert overall["shares"]["within_one"] == 1.0 and overall["shares"]["perfect"] == pytest.approx(4 / 6)
    (check,) = rich["checklist"]
    assert check["yes_rate"] == pytest.approx(4 / 6) and check["kappa"] == pytest.approx(1.0)
    agreement_reports.agreement_report_compute_now(project=project)  # as the Compute button does
    client.force_login(researcher)
    page = client.get(reverse("ranking_reports:agreement", args=[project.slug])).content.decode()
    assert "ICC(1,1)" in page and "Are the hands right?" in page and "No Likert data yet" not in page
