"""Rich feedback (RichHF-18K protocol) and checklists: submission rules, tokenisation, consolidation, API."""

import uuid

import numpy as np
import pytest
from django.db import IntegrityError, connection, transaction
from django.db.utils import DatabaseError
from django.urls import reverse
from rest_framework.test import APIClient

from annotator import services
from annotator.consolidation import item_feedback, map_size, project_feedback_summary
from annotator.errors import Conflict, InvalidInput, NotFound
from annotator.feedback import prompt_tokens
from annotator.models import Annotation, Assignment, Task
from tests.conftest import ready_rater, requires_postgres
from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db

PROMPT = 'A cat, "sitting" on a red mat.'  # tokens: A cat sitting on a red mat (7)
SCORES = {"plausibility": 4, "alignment": 3, "aesthetics": 5, "overall": 4}
CHECKLIST = [
    {"id": "hands_ok", "dimension": "fidelity", "question": "Are the hands anatomically correct?", "required": True},
    {"id": "matches_count", "dimension": "alignment", "question": "Is the number of objects right?",
     "required": True},
    {"id": "pleasing", "dimension": "aesthetics", "question": "Is it pleasing?", "required": False},
]


@pytest.fixture
def rich_project(researcher):
    project = services.project_create(owner=researcher, name="Rich", overlap=3)
    for _ in range(2):
        ItemFactory(project=project, prompt=PROMPT, width=40, height=20)
    services.consent_version_create(project=project, text="You agree.")
    services.instruction_version_create(project=project, text="Mark problems.", created_by=researcher)
    assert services.tasks_generate_single(project=project, kind="rich", random_state=0) == 2
    return project


@pytest.fixture
def checklist_project(researcher):
    project = services.project_create(owner=researcher, name="Checks", overlap=2)
    ItemFactory(project=project, prompt="two dogs")
    services.instruction_version_create(project=project, text="Answer the questions.", created_by=researcher)
    services.project_feedback_update(project=project, checklist=CHECKLIST)
    services.tasks_generate_single(project=project, kind="checklist")
    return project


def annotate(rater, assignment, key=None, **kwargs):
    values = {"points": [], "misaligned_words": [], "scores": dict(SCORES), "checklist": None}
    values.update(kwargs)
    return services.annotation_create(
        rater=rater, assignment_id=assignment.pk, idempotency_key=key or uuid.uuid4(),
        instruction_version_id=values.pop("instruction_version_id", rater.acknowledged_instruction_id), **values,
    )


# Tokenisation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("prompt", "tokens"), [
    (PROMPT, ["A", "cat", "sitting", "on", "a", "red", "mat"]),
    ("A photo of a dog; it's running: fast!", ["A", "photo", "of", "a", "dog", "it's", "running", "fast"]),
    ("Why?  Two   cats...and a dog", ["Why", "Two", "cats", "and", "a", "dog"]),
    ("and\ta dog", ["and\ta", "dog"]),  # RichHF splits on plain spaces only (stored prompts are normalised)
    ("a well-known (old) café", ["a", "well-known", "(old)", "café"]),
    ("", []),
    (' , . ? ! " : ; ', []),
])
def test_prompt_tokens_follow_the_richhf_split(prompt, tokens):
    assert prompt_tokens(prompt) == tokens


# Submission ------------------------------------------------------------------------------------------


def test_rich_annotation_is_stored(rich_project):
    rater = ready_rater(rich_project)
    assignment = services.assignment_next(rater=rater)
    assert assignment.task.kind == "rich" and assignment.right_item_id is None
    points = [{"x": 0.25, "y": 0.5, "kind": "artifact"}, {"x": 1, "y": 0, "kind": "misalignment"}]
    _, created = annotate(rater, assignment, points=points, misaligned_words=[5, 2, 5], response_time_ms=900)
    assert created
    stored = Annotation.objects.get()
    assert stored.points == [{"x": 0.25, "y": 0.5, "kind": "artifact"}, {"x": 1.0, "y": 0.0, "kind": "misalignment"}]
    assert stored.misaligned_words == [2, 5]
    assert stored.scores == SCORES
    assert stored.item_id == assignment.left_item_id and stored.kind == "rich"
    assert stored.instruction_version_id == rater.acknowledged_instruction_id
    assignment.refresh_from_db()
    assert assignment.state == "answered"
    assert Task.objects.get(pk=assignment.task_id).n_judgments == 1
    rater.refresh_from_db()
    assert rater.n_judgments == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"points": [{"x": 1.01, "y": 0.5, "kind": "artifact"}]}, "points"),
    ({"points": [{"x": 0.5, "y": -0.1, "kind": "artifact"}]}, "points"),
    ({"points": [{"x": 0.5, "y": 0.5, "kind": "blur"}]}, "points"),
    ({"points": [{"x": "0.5", "y": 0.5, "kind": "artifact"}]}, "points"),
    ({"points": [{"x": 0.5, "y": 0.5}]}, "points"),
    ({"misaligned_words": [7]}, "misaligned_words"),
    ({"misaligned_words": [-1]}, "misaligned_words"),
    ({"misaligned_words": ["cat"]}, "misaligned_words"),
    ({"scores": {**SCORES, "overall": 6}}, "scores"),
    ({"scores": {**SCORES, "overall": 0}}, "scores"),
    ({"scores": {**SCORES, "overall": 3.5}}, "scores"),
    ({"scores": {k: v for k, v in SCORES.items() if k != "aesthetics"}}, "scores"),
    ({"scores": {**SCORES, "sharpness": 3}}, "scores"),
    ({"checklist": {"hands_ok": True}}, "checklist"),
    ({"response_time_ms": -1}, "response_time_ms"),
    ({"key": "not-a-uuid"}, "idempotency_key"),
])
def test_bad_rich_input_is_refused_and_nothing_stored(rich_project, change, field):
    rater = ready_rater(rich_project)
    assignment = services.assignment_next(rater=rater)
    with pytest.raises(InvalidInput) as exc:
        annotate(rater, assignment, **change)
    assert exc.value.field == field
    assert Annotation.objects.count() == 0
    assignment.refresh_from_db()
    assert assignment.state == "open"
    assert Task.objects.get(pk=assignment.task_id).n_judgments == 0


def test_retry_with_the_same_key_stores_once(rich_project):
    rater = ready_rater(rich_project)
    assignment = services.assignment_next(rater=rater)
    key = uuid.uuid4()
    first, created1 = annotate(rater, assignment, key=key)
    again, created2 = annotate(rater, assignment, key=key)
    assert (created1, created2) == (True, False) and first.pk == again.pk
    assert Annotation.objects.count() == 1
    assert Task.objects.get(pk=assignment.task_id).n_judgments == 1


def test_second_answer_is_refused(rich_project):
    rater = ready_rater(rich_project)
    assignment = services.assignment_next(rater=rater)
    annotate(rater, assignment)
    with pytest.raises(Conflict) as exc:
        annotate(rater, assignment)
    assert exc.value.code == "already_answered"


def test_another_raters_assignment_is_refused(rich_project):
    rater, other = ready_rater(rich_project), ready_rater(rich_project)
    theirs = services.assignment_next(rater=other)
    with pytest.raises(NotFound) as exc:
        annotate(rater, theirs)
    assert exc.value.field == "assignment"
    assert Annotation.objects.count() == 0


def test_stale_instructions_are_refused(rich_project, researcher):
    rater = ready_rater(rich_project)
    assignment = services.assignment_next(rater=rater)
    old = rater.acknowledged_instruction_id
    services.instruction_version_create(project=rich_project, text="New rules.", created_by=researcher)
    with pytest.raises(Conflict) as exc:
        annotate(rater, assignment, instruction_version_id=old)
    assert exc.value.code == "instructions_changed"
    assert Annotation.objects.count() == 0


def test_pairwise_judgment_on_a_rich_assignment_is_refused(rich_project):
    rater = ready_rater(rich_project)
    assignment = services.assignment_next(rater=rater)
    with pytest.raises(InvalidInput) as exc:
        services.judgment_create(rater=rater, assignment_id=assignment.pk, choice="left",
                                 idempotency_key=uuid.uuid4(), instruction_version_id=rater.acknowledged_instruction_id)
    assert exc.value.field == "assignment"


def test_single_item_tasks_are_unique_and_generation_is_idempotent(rich_project):
    assert services.tasks_generate_single(project=rich_project, kind="rich") == 0
    item = rich_project.items.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.create(project=rich_project, kind="rich", item_a=item)
    with pytest.raises(InvalidInput) as exc:
        services.tasks_generate_single(project=rich_project, kind="pairwise")
    assert exc.value.field == "kind"


def test_each_item_goes_to_overlap_raters(rich_project):
    raters = [ready_rater(rich_project) for _ in range(4)]
    for r in raters[:3]:
        for _ in range(2):
            annotate(r, services.assignment_next(rater=r))
    assert services.assignment_next(rater=raters[3]) is None
    assert set(Task.objects.values_list("n_judgments", flat=True)) == {3}


@requires_postgres
def test_annotations_are_append_only_in_the_database(rich_project):
    rater = ready_rater(rich_project)
    annotation, _ = annotate(rater, services.assignment_next(rater=rater))
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Annotation.objects.filter(pk=annotation.pk).update(scores={})
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM annotator_annotation WHERE id = %s", [annotation.pk])


# Checklists ------------------------------------------------------------------------------------------


def test_checklist_answers_are_stored(checklist_project):
    rater = ready_rater(checklist_project)
    assignment = services.assignment_next(rater=rater)
    assert assignment.task.kind == "checklist"
    annotation, _ = services.annotation_create(
        rater=rater, assignment_id=assignment.pk, idempotency_key=uuid.uuid4(),
        instruction_version_id=rater.acknowledged_instruction_id,
        checklist={"hands_ok": False, "matches_count": True})
    assert annotation.answers == {"hands_ok": False, "matches_count": True}
    assert annotation.kind == "checklist" and annotation.scores == {} and annotation.points == []


@pytest.mark.parametrize(("change", "field"), [
    ({"checklist": {"hands_ok": True}}, "checklist"),  # a required answer missing
    ({"checklist": {"hands_ok": True, "matches_count": True, "made_up": True}}, "checklist"),
    ({"checklist": {"hands_ok": "yes", "matches_count": True}}, "checklist"),
    ({"checklist": {"hands_ok": True, "matches_count": True}, "scores": SCORES}, "scores"),
    ({"checklist": {"hands_ok": True, "matches_count": True},
      "points": [{"x": 0.1, "y": 0.1, "kind": "artifact"}]}, "points"),
])
def test_bad_checklist_input_is_refused(checklist_project, change, field):
    rater = ready_rater(checklist_project)
    assignment = services.assignment_next(rater=rater)
    with pytest.raises(InvalidInput) as exc:
        services.annotation_create(rater=rater, assignment_id=assignment.pk, idempotency_key=uuid.uuid4(),
                                   instruction_version_id=rater.acknowledged_instruction_id, **change)
    assert exc.value.field == field
    assert Annotation.objects.count() == 0


def test_checklist_tasks_need_questions(rich_project):
    with pytest.raises(InvalidInput) as exc:
        services.tasks_generate_single(project=rich_project, kind="checklist")
    assert exc.value.field == "checklist"


@pytest.mark.parametrize(("settings_", "field"), [
    ({"likert_dimensions": []}, "likert_dimensions"),
    ({"likert_dimensions": [{"name": "Bad Name"}]}, "likert_dimensions"),
    ({"likert_dimensions": [{"name": "a1", "key": "x"}, {"name": "a2", "key": "x"}]}, "likert_dimensions"),
    ({"checklist": [{"id": "q", "question": ""}]}, "checklist"),
    ({"checklist": [{"id": "q", "question": "ok?"}, {"id": "q", "question": "again?"}]}, "checklist"),
    ({"checklist": "not a list"}, "checklist"),
])
def test_feedback_settings_are_validated(rich_project, settings_, field):
    with pytest.raises(InvalidInput) as exc:
        services.project_feedback_update(project=rich_project, **settings_)
    assert exc.value.field == field


def test_custom_dimensions_are_what_a_rater_must_score(rich_project):
    services.project_feedback_update(project=rich_project, likert_dimensions=[
        {"name": "realism", "label": "Realism", "low": "fake", "high": "real", "key": "r"}])
    rater = ready_rater(rich_project)
    assignment = services.assignment_next(rater=rater)
    with pytest.raises(InvalidInput):
        annotate(rater, assignment)  # the four default scores are now unknown dimensions
    annotation, _ = annotate(rater, assignment, scores={"realism": 2})
    assert annotation.scores == {"realism": 2}


# Consolidation ---------------------------------------------------------------------------------------


def test_two_of_three_raters_marking_a_spot_gives_two_thirds(rich_project):
    item = rich_project.items.order_by("id").first()
    spot = {"x": 0.5, "y": 0.5, "kind": "artifact"}
    answers = [([spot], [1], 2), ([dict(spot, x=0.52)], [1, 3], 4), ([], [], 3)]
    for points, words, overall in answers:
        rater = ready_rater(rich_project)
        while True:
            assignment = services.assignment_next(rater=rater)
            if assignment.left_item_id == item.pk:
                break
            annotate(rater, assignment)
        annotate(rater, assignment, points=points, misaligned_words=words, scores={**SCORES, "overall": overall})
    fb = item_feedback(item=item)
    assert fb.n_raters == 3
    assert (fb.map_height, fb.map_width) == (20, 40) == map_size(height=20, width=40)
    heat = fb.heatmaps["artifact"]
    assert heat.shape == (20, 40)
    assert heat[10, 20] == pytest.approx(2 / 3)
    assert heat[0, 0] == 0 and heat.max() == pytest.approx(2 / 3)
    assert not fb.heatmaps["misalignment"].any()
    assert fb.word_vote_share[1] == pytest.approx(2 / 3) and fb.word_majority[1]
    assert fb.word_vote_share[3] == pytest.approx(1 / 3) and not fb.word_majority[3]
    overall = next(s for s in fb.scores if s["name"] == "overall")
    assert overall["mean"] == pytest.approx(3.0) and overall["std"] == pytest.approx(1.0)
    assert sorted(overall["per_rater"].values()) == [2, 3, 4]
    assert fb.heatmap_agreement["artifact"] is not None
    summary = project_feedback_summary(project=rich_project)
    assert summary.share_with_artifact == pytest.approx(1 / 2)  # one of the two annotated images
    hist = next(h for h in summary.score_histograms if h["name"] == "overall")
    assert dict(hist["counts"])["4"] == 1 + 2  # one from this item, two default-scored answers elsewhere


def test_map_size_keeps_aspect_and_caps_the_longer_side():
    assert map_size(height=512, width=512) == (512, 512)
    assert map_size(height=1024, width=2048) == (256, 512)
    assert map_size(height=20, width=40) == (20, 40)


# Researcher API --------------------------------------------------------------------------------------


def _annotated(rich_project):
    rater = ready_rater(rich_project)
    assignment = services.assignment_next(rater=rater)
    annotate(rater, assignment, points=[{"x": 0.5, "y": 0.5, "kind": "artifact"}], misaligned_words=[1])
    return assignment.left_item, rater


def test_item_feedback_api_for_members(rich_project, researcher):
    item, rater = _annotated(rich_project)
    client = APIClient()
    client.force_authenticate(researcher)
    body = client.get(f"/api/projects/{rich_project.slug}/items/{item.pk}/feedback/").json()
    assert body["n_raters"] == 1
    assert body["raters"][0]["rater"] == rater.public_id
    assert body["misaligned_words"][1] == {"index": 1, "word": "cat", "vote_share": 1.0, "majority": True}
    assert body["heatmaps"]["artifact"]["max"] == 1.0
    png = client.get(body["heatmap_urls"]["artifact"]["png"])
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    npy = client.get(body["heatmap_urls"]["artifact"]["npy"])
    import io
    heat = np.load(io.BytesIO(b"".join(npy.streaming_content) if npy.streaming else npy.content))
    assert heat.shape == (item.height, item.width) and heat.max() == 1.0
    page = client.get(f"/api/projects/{rich_project.slug}/feedback/").json()
    assert [r["item"] for r in page["results"]] == [item.pk]


def test_item_feedback_api_refuses_non_members(rich_project):
    item, _ = _annotated(rich_project)
    client = APIClient()
    client.force_authenticate(UserFactory())
    for url in (f"/api/projects/{rich_project.slug}/items/{item.pk}/feedback/",
                f"/api/projects/{rich_project.slug}/feedback/",
                f"/api/projects/{rich_project.slug}/items/{item.pk}/heatmaps/artifact/png/"):
        assert client.get(url).status_code == 404, url
    assert APIClient().get(f"/api/projects/{rich_project.slug}/feedback/").status_code in (401, 403)


def test_rater_next_task_and_submit_over_http(rich_project, client):
    rater = ready_rater(rich_project)
    from annotator.permissions import SESSION_RATERS

    session = client.session
    session[SESSION_RATERS] = {str(rich_project.pk): rater.pk}
    session.save()
    page = client.get(f"/r/{rich_project.slug}/task/")
    assert page.status_code == 200 and b"rich-app" in page.content
    body = client.get(f"/r/{rich_project.slug}/api/next/").json()
    a = body["assignment"]
    assert a["kind"] == "rich" and a["tokens"][1] == "cat" and len(a["dimensions"]) == 4
    payload = {"assignment": a["id"], "idempotency_key": str(uuid.uuid4()),
               "instruction_version": body["instruction_version"],
               "points": [{"x": 0.2, "y": 0.3, "kind": "misalignment"}], "misaligned_words": [0],
               "scores": {**SCORES, "overall": 9}}
    bad = client.post(f"/r/{rich_project.slug}/api/annotations/", payload, content_type="application/json")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "scores"
    payload["scores"] = SCORES
    ok = client.post(f"/r/{rich_project.slug}/api/annotations/", payload, content_type="application/json")
    assert ok.status_code == 201
    assert Annotation.objects.get().points == [{"x": 0.2, "y": 0.3, "kind": "misalignment"}]
    assert Assignment.objects.get(pk=a["id"]).state == "answered"


# Researcher pages ------------------------------------------------------------------------------------


def test_item_page_shows_votes_scores_and_overlays_to_members_only(rich_project, researcher, client):
    item, rater = _annotated(rich_project)
    client.force_login(UserFactory())
    assert client.get(f"/projects/{rich_project.slug}/items/{item.pk}/").status_code == 404
    client.force_login(researcher)
    page = client.get(f"/projects/{rich_project.slug}/items/{item.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"/api/projects/{rich_project.slug}/items/{item.pk}/heatmaps/artifact/overlay/" in html
    assert rater.public_id in html
    assert 'style="background: rgba(49, 130, 206, 1.00)" title="1 of 1 raters: not shown correctly">cat</span>' in html
    overlay = client.get(f"/api/projects/{rich_project.slug}/items/{item.pk}/heatmaps/artifact/overlay/")
    assert overlay.status_code == 200 and overlay["Content-Type"] == "image/png"


def test_prompt_script_is_escaped_on_the_item_page(researcher, client):
    project = services.project_create(owner=researcher, name="XSS")
    item = ItemFactory(project=project, prompt="<script>alert(1)</script> cat")
    client.force_login(researcher)
    html = client.get(f"/projects/{project.slug}/items/{item.pk}/").content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_settings_page_edits_scores_and_checklist_and_feedback_page_makes_tasks(rich_project, researcher, client):
    from tests.integration.test_study_settings import formset_post

    client.force_login(researcher)
    settings_url = f"/projects/{rich_project.slug}/settings/"
    assert client.get(settings_url).status_code == 200
    bad = client.post(settings_url, formset_post("likert", [{"name": "Bad Name", "label": "x", "key": "b"}]))
    assert bad.status_code == 400 and "Lower-case letters" in bad.content.decode()
    ok = client.post(settings_url, formset_post("likert", [
        {"name": "realism", "label": "Realism", "low": "fake", "high": "real", "key": "r"}]))
    assert ok.status_code == 302
    ok = client.post(settings_url, formset_post("checklist", CHECKLIST))
    assert ok.status_code == 302
    rich_project.refresh_from_db()
    assert [d["name"] for d in rich_project.likert_dimensions] == ["realism"]
    assert rich_project.checklist == CHECKLIST
    url = f"/projects/{rich_project.slug}/feedback/"
    assert "Realism" in client.get(url).content.decode()
    made = client.post(url, {"kind": "checklist", "overlap": "2"})
    assert made.status_code == 302
    assert Task.objects.filter(project=rich_project, kind="checklist").count() == 2
    viewer = UserFactory()
    services.membership_set(project=rich_project, user=viewer, role="viewer")
    client.force_login(viewer)
    assert client.post(url, {"kind": "rich"}).status_code == 403


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_same_key_submitted_concurrently_is_stored_once(researcher):
    import threading

    project = services.project_create(owner=researcher, name="Dup rich", overlap=1)
    ItemFactory(project=project, prompt=PROMPT)
    services.instruction_version_create(project=project, text="Mark.", created_by=researcher)
    services.tasks_generate_single(project=project, kind="rich")
    rater = ready_rater(project)
    assignment = services.assignment_next(rater=rater)
    key = uuid.uuid4()
    barrier = threading.Barrier(6)
    outcomes, errors = [], []

    def send():
        try:
            barrier.wait()
            outcomes.append(annotate(rater, assignment, key=key)[1])
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert outcomes.count(True) == 1
    assert Annotation.objects.filter(idempotency_key=key).count() == 1
    assert Task.objects.get(project=project).n_judgments == 1


def test_project_feedback_api_queries_do_not_grow_with_items(django_assert_max_num_queries, researcher):
    """The paged project record loads all annotations of a page in one query (no N+1)."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    project = services.project_create(owner=researcher, name="Many items", overlap=1)
    for _ in range(12):
        ItemFactory(project=project, prompt="a red apple")
    services.instruction_version_create(project=project, text="Mark problems.", created_by=researcher)
    services.tasks_generate_single(project=project, kind="rich")
    rater = ready_rater(project)
    while (a := services.assignment_next(rater=rater)) is not None:
        services.annotation_create(rater=rater, assignment_id=a.pk, idempotency_key=uuid.uuid4(),
                                   instruction_version_id=rater.acknowledged_instruction_id,
                                   points=[{"x": 0.5, "y": 0.5, "kind": "artifact"}], misaligned_words=[1],
                                   scores={d["name"]: 3 for d in project.likert_dimensions}, checklist={})
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=researcher).key}")
    with django_assert_max_num_queries(8):
        body = client.get(reverse("api_project_feedback", args=[project.slug])).json()
    assert len(body["results"]) == 12
    assert all(r["n_raters"] == 1 and r["heatmaps"]["artifact"]["max"] == 1.0 for r in body["results"])
    assert all(r["misaligned_words"][1]["majority"] for r in body["results"])


def test_the_feedback_page_says_no_data_yet_on_empty_score_histograms(rich_project, researcher, client):
    """Before any rating each score histogram says so (its bars were all zero high, an empty frame)."""
    client.force_login(researcher)
    page = client.get(reverse("annotator:feedback", args=[rich_project.slug])).content.decode()
    n_histograms = len(rich_project.likert_dimensions)
    assert n_histograms >= 1 and page.count("No data yet") == n_histograms
