"""Agreement report: heatmap agreement per point kind and per-image Likert histograms (rich feedback)."""

import json
import uuid

import numpy as np
import pytest
from django.urls import reverse

from annotator import services
from ranking import loaders, presenters
from ranking.services import agreement_reports
from tests.conftest import ready_rater
from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db

SCORES = {"plausibility": 4, "alignment": 3, "aesthetics": 5, "overall": 4}
SPOT = {"x": 0.5, "y": 0.5, "kind": "artifact"}
# (rater, image) -> (points, overall score). Image 0: raters 0 and 1 mark the same spot, rater 2 nothing
# (correlation 1 for the two who marked, undefined for the third: mean 1). Image 1: only rater 0 marks a
# misalignment, nobody an artifact (undefined for both kinds: fewer than two raters' maps vary).
ANSWERS = {
    (0, 0): ([SPOT], 2), (1, 0): ([dict(SPOT)], 4), (2, 0): ([], 5),
    (0, 1): ([{"x": 0.2, "y": 0.3, "kind": "misalignment"}], 3), (1, 1): ([], 3), (2, 1): ([], 4),
}


@pytest.fixture
def rich_project(researcher):
    project = services.project_create(owner=researcher, name="Heat", overlap=3)
    for name in ("first.png", "second.png"):
        ItemFactory(project=project, prompt="a cat on a mat", width=80, height=40, original_name=name)
    services.consent_version_create(project=project, text="You agree.")
    services.instruction_version_create(project=project, text="Mark problems.", created_by=researcher)
    assert services.tasks_generate_single(project=project, kind="rich", random_state=0) == 2
    return project


def answer_all(project, answers=ANSWERS, n_raters=3):
    items = list(project.items.order_by("id"))
    position = {item.pk: k for k, item in enumerate(items)}
    for r in range(n_raters):
        rater = ready_rater(project)
        while (assignment := services.assignment_next(rater=rater)) is not None:
            points, overall = answers[(r, position[assignment.left_item_id])]
            services.annotation_create(
                rater=rater, assignment_id=assignment.pk, idempotency_key=uuid.uuid4(),
                instruction_version_id=rater.acknowledged_instruction_id, points=points, misaligned_words=[],
                scores={**SCORES, "overall": overall}, checklist=None)
    return items


def test_heatmap_agreement_per_kind_on_a_hand_made_case(rich_project):
    answer_all(rich_project)
    result = agreement_reports.agreement_compute(project=rich_project)
    json.dumps(result)  # stored as JSON
    heat = {h["kind"]: h for h in result["rich_images"]["heatmaps"]}
    artifact = heat["artifact"]
    assert artifact["n_images"] == 2 and artifact["n_defined"] == 1 and artifact["share_defined"] == 0.5
    assert artifact["mean"] == pytest.approx(1.0) and artifact["median"] == pytest.approx(1.0)
    assert [b["n"] for b in artifact["histogram"]] == [0] * 9 + [1]  # the bin 0.8–1.0
    assert artifact["histogram"][0]["low"] == -1.0 and artifact["histogram"][-1]["high"] == 1.0
    assert artifact["marked_share"] == 0.5 and artifact["n_rich_images"] == 2
    misalignment = heat["misalignment"]
    assert misalignment["n_images"] == 2 and misalignment["n_defined"] == 0 and misalignment["share_defined"] == 0
    assert misalignment["mean"] is None and misalignment["median"] is None
    assert misalignment["marked_share"] == 0.5


def test_heatmap_correlation_on_disjoint_marks_is_negative_and_batched(rich_project, django_assert_max_num_queries):
    far = {"x": 0.1, "y": 0.1, "kind": "artifact"}
    answers = dict(ANSWERS)
    answers[(2, 0)] = ([far], 5)  # third rater marks elsewhere: correlation below 1
    answer_all(rich_project, answers)
    rows = list(loaders.rich_feedback_batches(project=rich_project, batch_size=1))
    assert [item.original_name for item, _ in rows] == ["first.png", "second.png"]
    value = rows[0][1].heatmap_agreement["artifact"]
    assert -1 < value < 1
    heat = agreement_reports.rich_image_agreement(project=rich_project)["heatmaps"]
    assert heat[0]["mean"] == pytest.approx(value)
    with django_assert_max_num_queries(4):  # item ids, then one items + one annotations query per batch
        list(loaders.rich_feedback_batches(project=rich_project, batch_size=200))


def test_likert_histograms_per_image_equal_a_hand_count_and_sort_by_controversy(rich_project):
    first, second = answer_all(rich_project)
    result = agreement_reports.agreement_compute(project=rich_project)
    overall = next(d for d in result["rich_images"]["likert_images"] if d["name"] == "overall")
    rows = {r["item_id"]: r for r in overall["opinions"]["controversy"]["rows"]}
    a, b = rows[first.pk], rows[second.pk]
    assert a["counts"] == [0, 1, 0, 1, 1] and a["text"] == "1×2, 1×4, 1×5" and a["n"] == 3
    assert a["mean"] == pytest.approx(11 / 3) and a["spread"] == 3
    assert a["sd"] == pytest.approx(np.std([2, 4, 5], ddof=1))
    assert b["counts"] == [0, 0, 2, 1, 0] and b["text"] == "2×3, 1×4" and b["spread"] == 1
    assert [r["item_id"] for r in overall["opinions"]["controversy"]["rows"]] == [first.pk, second.pk]
    assert [r["item_id"] for r in overall["opinions"]["agreement"]["rows"]] == [second.pk, first.pk]
    assert overall["spread_counts"] == {"n_multi": 2, "zero": 0, "one": 1, "two_plus": 1}
    aesthetics = next(d for d in result["rich_images"]["likert_images"] if d["name"] == "aesthetics")
    assert all(r["counts"] == [0, 0, 0, 0, 3] and r["spread"] == 0
               for r in aesthetics["opinions"]["controversy"]["rows"])
    view = presenters.agreement_view(result=result, sort="agreement")
    assert next(d for d in view["likert_images"] if d["name"] == "overall")["opinions"]["rows"][0]["item_id"] == second.pk


def test_agreement_page_shows_both_sections_to_members_only(rich_project, researcher, client):
    first, _ = answer_all(rich_project)
    url = reverse("ranking_reports:agreement", args=[rich_project.slug])
    client.force_login(UserFactory())
    agreement_reports.agreement_report_compute_now(project=rich_project)  # as the Compute button does
    assert client.get(url).status_code == 404
    client.force_login(researcher)
    response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Heatmaps: inter-rater agreement" in page and "No rich-feedback heatmaps yet" not in page
    assert "Likert opinions per image" in page and "n = 3: 1×2, 1×4, 1×5" in page
    assert reverse("annotator:item_detail", args=[rich_project.slug, first.pk]) in page
    assert page.index("n = 3: 1×2, 1×4, 1×5") < page.index("n = 3: 2×3, 1×4")  # controversy first
    sheet = client.get(reverse("ranking_reports:datasheet_md", args=[rich_project.slug])).content.decode()
    assert "Heatmap agreement (artifact)" in sheet and "mean 1.000" in sheet
    assert "Overall per image: 2 images scored" in sheet or "per image: 2 images scored" in sheet
    data = json.loads(client.get(reverse("ranking_reports:datasheet_json", args=[rich_project.slug])).content)
    assert {h["kind"] for h in data["agreement"]["heatmaps"]} == {"artifact", "misalignment"}
    assert data["agreement"]["likert_images"]


def test_without_rich_feedback_the_page_says_so(project, researcher, client):
    agreement_reports.agreement_report_compute_now(project=project)
    client.force_login(researcher)
    page = client.get(reverse("ranking_reports:agreement", args=[project.slug])).content.decode()
    assert "No rich-feedback heatmaps yet" in page and "No Likert scores per image yet" in page
    assert agreement_reports.agreement_compute(project=project)["rich_images"] == {"n_images": 0, "heatmaps": [],
                                                                       "likert_images": []}
