"""Running a study from the browser: settings, score and checklist editors, consent versions, opening
the study, the capacity check before consent, and a consent decline."""

import uuid
from html import unescape

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotator import selectors, services
from annotator.errors import InvalidInput
from annotator.models import ConsentVersion, Judgment, Project, Rater, Task
from tests.conftest import ready_rater, requires_postgres
from tests.factories import ItemFactory, UserFactory
from tests.integration.test_rater_flow import join_url, walk_to_tasks

pytestmark = pytest.mark.django_db


def formset_post(prefix: str, rows: list[dict], *, initial: int = 0) -> dict:
    """POST data of the settings page's ``prefix`` formset (likert or checklist) with ``rows`` in order.

    A row's ``ORDER`` defaults to its position; ``DELETE`` and ``required`` are checkboxes (sent when true).
    """
    data = {"form": prefix, f"{prefix}-TOTAL_FORMS": str(len(rows)), f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}
    for i, row in enumerate(rows):
        data[f"{prefix}-{i}-ORDER"] = str(row.get("ORDER", i + 1))
        for key, value in row.items():
            if key == "ORDER":
                continue
            if isinstance(value, bool):
                if value:
                    data[f"{prefix}-{i}-{key}"] = "on"
            else:
                data[f"{prefix}-{i}-{key}"] = value
    return data


STUDY = {"form": "study", "name": "Apples", "description": "", "overlap": "2", "tasks_per_rater": "0",
         "repeat_rate": "0", "allow_tie": "on", "effective_radius": "0.05", "completion_code": "DONE1",
         "completion_redirect_url": "", "no_places_code": "", "consent_declined_code": "", "is_open": "on",
         "adaptive_batch": "0", "adaptive_target": "items"}


def settings_url(project) -> str:
    return reverse("annotator:settings", args=[project.slug])


@pytest.fixture
def logged_in(client, researcher):
    client.force_login(researcher)
    return client


# The study settings form ----------------------------------------------------------------------------


def test_settings_page_saves_every_setting(logged_in, project):
    response = logged_in.post(settings_url(project), {
        **STUDY, "name": "Apples, second round", "description": "Round two.", "overlap": "5",
        "tasks_per_rater": "20", "repeat_rate": "0.1", "allow_tie": "", "effective_radius": "0.04",
        "completion_code": "C0MPLETE", "completion_redirect_url": "https://app.prolific.com/submissions/complete",
        "no_places_code": "NOPLACES", "consent_declined_code": "NOCONSENT", "is_open": "",
        "adaptive_batch": "25", "adaptive_target": "models"})
    assert response.status_code == 302 and response.url.endswith("/settings/#study")
    project.refresh_from_db()
    assert (project.name, project.description, project.overlap, project.tasks_per_rater) == (
        "Apples, second round", "Round two.", 5, 20)
    assert (project.repeat_rate, project.allow_tie, project.effective_radius) == (0.1, False, 0.04)
    assert (project.completion_code, project.completion_redirect_url) == (
        "C0MPLETE", "https://app.prolific.com/submissions/complete")
    assert (project.no_places_code, project.consent_declined_code, project.is_open) == ("NOPLACES", "NOCONSENT", False)
    assert (project.adaptive_batch, project.adaptive_target) == (25, "models")
    page = logged_in.get(settings_url(project)).content.decode()
    assert 'value="C0MPLETE"' in page and 'value="0.04"' in page


@pytest.mark.parametrize(("field", "value", "message"), [
    ("overlap", "0", "greater than or equal to 1"),
    ("overlap", "many", "Enter a whole number"),
    ("tasks_per_rater", "-1", "greater than or equal to 0"),
    ("repeat_rate", "0.9", "less than or equal to 0.5"),
    ("effective_radius", "0.9", "less than or equal to 0.5"),
    ("effective_radius", "0", "greater than or equal to 0.005"),
    ("completion_code", "", "This field is required"),
    ("completion_code", "two words", "letters, digits"),
    ("no_places_code", "<script>", "letters, digits"),
    ("completion_redirect_url", "javascript:alert(1)", "Enter a valid URL"),
    ("name", "", "This field is required"),
    ("adaptive_batch", "-1", "greater than or equal to 0"),
    ("adaptive_target", "pixels", "Select a valid choice"),
])
def test_bad_settings_are_refused_naming_the_field(logged_in, project, field, value, message):
    before = Project.objects.filter(pk=project.pk).values().get()
    response = logged_in.post(settings_url(project), {**STUDY, "overlap": "7", field: value})
    assert response.status_code == 400
    assert message in str(response.context["study"].errors[field])
    html = response.content.decode()
    label = response.context["study"][field].label
    assert f'href="#id_{field}">{label}</a>' in html  # the summary names the field and links to it
    assert Project.objects.filter(pk=project.pk).values().get() == before  # nothing stored (overlap 7 neither)


def test_service_refuses_bad_settings_naming_the_field(project):
    for fields, name in (({"effective_radius": 2.0}, "effective_radius"), ({"allow_tie": "yes"}, "allow_tie"),
                         ({"completion_code": "a b"}, "completion_code"), ({"tasks_per_rater": 1.5}, "tasks_per_rater"),
                         ({"completion_redirect_url": "ftp://x.org/"}, "completion_redirect_url"),
                         ({"owner": None}, "owner")):
        with pytest.raises(InvalidInput) as err:
            services.project_update(project=project, overlap=9, **fields)
        assert err.value.field == name
    project.refresh_from_db()
    assert project.overlap == 2


def test_unknown_settings_form_is_a_400(logged_in, project):
    assert logged_in.post(settings_url(project), {"form": "everything"}).status_code == 400


def test_api_patch_takes_the_new_settings(researcher, project):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=researcher).key}")
    url = reverse("api_project", args=[project.slug])
    response = client.patch(url, {"effective_radius": 0.7}, format="json")
    assert response.status_code == 400 and response.json()["error"]["field"] == "effective_radius"
    response = client.patch(url, {"allow_tie": False, "no_places_code": "FULL1", "effective_radius": 0.1},
                            format="json")
    assert response.status_code == 200
    assert (response.json()["allow_tie"], response.json()["no_places_code"]) == (False, "FULL1")


# Opening a study: consent and instructions first ------------------------------------------------------


def test_a_project_made_in_the_browser_starts_closed_and_opens_only_with_consent(logged_in, researcher):
    response = logged_in.post(reverse("annotator:project_create"), {"name": "Fresh", "overlap": 3,
                                                                    "tasks_per_rater": 0})
    assert response.status_code == 302
    project = Project.objects.get(name="Fresh")
    assert project.is_open is False
    services.instruction_version_create(project=project, text="Pick one.", created_by=researcher)
    refused = logged_in.post(settings_url(project), {**STUDY, "name": "Fresh", "is_open": "on"})
    assert refused.status_code == 400
    assert "cannot open to raters without a consent text" in str(refused.context["study"].errors["is_open"])
    project.refresh_from_db()
    assert project.is_open is False
    services.consent_version_create(project=project, text="You agree.")
    opened = logged_in.post(settings_url(project), {**STUDY, "name": "Fresh", "is_open": "on"})
    assert opened.status_code == 302
    project.refresh_from_db()
    assert project.is_open is True


def test_opening_needs_instructions_too(project, researcher):
    bare = services.project_create(owner=researcher, name="Bare", is_open=False)
    services.consent_version_create(project=bare, text="You agree.")
    with pytest.raises(InvalidInput) as err:
        services.project_update(project=bare, is_open=True)
    assert err.value.field == "is_open" and "instructions" in err.value.message


def test_a_rater_following_the_link_of_a_project_without_consent_is_told_it_is_not_open(client, researcher):
    project = services.project_create(owner=researcher, name="No consent")  # open by default (API)
    ItemFactory(project=project)
    ItemFactory(project=project)
    services.instruction_version_create(project=project, text="Pick one.", created_by=researcher)
    services.tasks_generate_within_prompt(project=project)
    response = client.get(join_url(project))
    assert response.status_code == 409
    assert "not open yet" in response.content.decode()
    assert Rater.objects.count() == 0
    researcher_client = type(client)()
    researcher_client.force_login(researcher)
    page = researcher_client.get(reverse("annotator:project_detail", args=[project.slug])).content.decode()
    assert "Raters cannot join until the project has a consent text" in page


def test_a_closed_project_refuses_raters(client, project):
    services.project_update(project=project, is_open=False)
    response = client.get(join_url(project))
    assert response.status_code == 409 and "not accepting participants" in response.content.decode()
    assert Rater.objects.count() == 0


# Score dimensions and checklist questions (formsets) --------------------------------------------------


DIMENSIONS = [
    {"name": "plausibility", "label": "Plausibility", "low": "implausible", "high": "plausible", "key": "p"},
    {"name": "aesthetics", "label": "Aesthetics", "low": "ugly", "high": "beautiful", "key": "e"},
    {"name": "overall", "label": "Overall", "low": "bad", "high": "good", "key": "o"},
]


def test_score_rows_are_added_removed_and_reordered(logged_in, project):
    services.project_feedback_update(project=project, likert_dimensions=DIMENSIONS)
    rows = [dict(DIMENSIONS[0], ORDER=3), dict(DIMENSIONS[1], DELETE=True), dict(DIMENSIONS[2], ORDER=1),
            {"name": "realism", "label": "Realism", "low": "", "high": "", "key": "R", "ORDER": 2},
            {"name": "", "label": "", "low": "", "high": "", "key": "", "ORDER": 5}]  # the blank row is ignored
    response = logged_in.post(settings_url(project), formset_post("likert", rows, initial=3))
    assert response.status_code == 302
    project.refresh_from_db()
    assert [(d["name"], d["key"]) for d in project.likert_dimensions] == [
        ("overall", "o"), ("realism", "r"), ("plausibility", "p")]


@pytest.mark.parametrize(("rows", "message"), [
    ([dict(DIMENSIONS[0]), dict(DIMENSIONS[1], key="p")], "Rows 1 and 2 have the same key 'p'"),
    ([dict(DIMENSIONS[0]), dict(DIMENSIONS[1], name="plausibility")], "Rows 1 and 2 have the same name"),
    ([dict(DIMENSIONS[0], DELETE=True)], "Keep at least one score dimension"),
])
def test_score_rows_with_clashes_are_refused(logged_in, project, rows, message):
    before = project.likert_dimensions
    response = logged_in.post(settings_url(project), formset_post("likert", rows))
    assert response.status_code == 400
    assert message in unescape(response.content.decode())
    project.refresh_from_db()
    assert project.likert_dimensions == before


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"key": "a"}, "key", "other than A, M, Y and N"),
    ({"key": "1"}, "key", "other than A, M, Y and N"),
    ({"name": "Has Spaces"}, "name", "Lower-case letters"),
    ({"label": ""}, "label", "This field is required"),
])
def test_a_bad_score_row_names_the_field(logged_in, project, change, field, message):
    response = logged_in.post(settings_url(project), formset_post("likert", [dict(DIMENSIONS[0], **change)]))
    assert response.status_code == 400
    assert message in str(response.context["likert"].forms[0].errors[field])


def test_checklist_rows_round_trip_and_clashes_are_refused(logged_in, project):
    questions = [
        {"id": "subject", "dimension": "alignment", "question": "Is the subject shown?", "required": True},
        {"id": "sharp", "dimension": "aesthetics", "question": "Is it sharp?", "required": False},
    ]
    assert logged_in.post(settings_url(project), formset_post("checklist", questions)).status_code == 302
    project.refresh_from_db()
    assert project.checklist == questions
    page = logged_in.get(settings_url(project)).content.decode()
    assert 'value="Is it sharp?"' in page
    clash = logged_in.post(settings_url(project), formset_post("checklist", [questions[0], dict(
        questions[1], id="subject")], initial=2))
    assert clash.status_code == 400
    assert "Rows 1 and 2 have the same id 'subject'" in unescape(clash.content.decode())
    emptied = logged_in.post(settings_url(project), formset_post("checklist", [
        dict(q, DELETE=True) for q in questions], initial=2))
    assert emptied.status_code == 302
    project.refresh_from_db()
    assert project.checklist == []


# Permissions -------------------------------------------------------------------------------------------


def test_viewer_sees_the_settings_but_cannot_change_them(client, project):
    viewer = UserFactory()
    services.membership_set(project=project, user=viewer, role="viewer")
    client.force_login(viewer)
    page = client.get(settings_url(project))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="save-study"' not in html and "disabled" in html
    for data in ({**STUDY, "overlap": "9"}, formset_post("likert", [DIMENSIONS[0]]),
                 formset_post("checklist", [{"id": "q", "dimension": "d", "question": "?"}])):
        assert client.post(settings_url(project), data).status_code == 403
    project.refresh_from_db()
    assert project.overlap == 2 and project.checklist == [] and len(project.likert_dimensions) == 4


def test_non_members_get_404_and_anonymous_users_the_login(client, project):
    for url in (settings_url(project), reverse("annotator:consent", args=[project.slug])):
        for response in (client.get(url), client.post(url, {**STUDY, "text": "x"})):
            assert response.status_code == 302 and response.url.startswith(reverse("login"))
    client.force_login(UserFactory())
    for url in (settings_url(project), reverse("annotator:consent", args=[project.slug])):
        assert client.get(url).status_code == 404
        assert client.post(url, {**STUDY, "text": "x"}).status_code == 404
    project.refresh_from_db()
    assert project.completion_code != "DONE1" and project.consent_versions.count() == 1


# The tie option ----------------------------------------------------------------------------------------


def test_without_the_tie_option_a_tie_is_refused_and_not_offered(client, project):
    services.project_update(project=project, allow_tie=False)
    rater = ready_rater(project)
    assignment = services.assignment_next(rater=rater)
    with pytest.raises(InvalidInput) as err:
        services.judgment_create(rater=rater, assignment_id=assignment.pk, choice="tie",
                                 idempotency_key=uuid.uuid4(), instruction_version_id=rater.acknowledged_instruction_id)
    assert err.value.field == "choice"
    assert Judgment.objects.count() == 0
    client.get(join_url(project))
    walk_to_tasks(client, project)
    body = client.get(reverse("rater:api_next", args=[project.slug])).json()
    assert body["assignment"]["allow_tie"] is False
    page = client.get(reverse("rater:task", args=[project.slug])).content.decode()
    assert '<div id="tie-row" hidden>' in page


# Consent versions --------------------------------------------------------------------------------------


def test_consent_page_saves_versions(logged_in, project):
    url = reverse("annotator:consent", args=[project.slug])
    assert logged_in.get(url).status_code == 200
    empty = logged_in.post(url, {"text": "   "})
    assert empty.status_code == 400 and "This field is required" in empty.content.decode()
    assert logged_in.post(url, {"text": "Version **two**."}).status_code == 302
    assert logged_in.post(url, {"text": "Version **two**."}).status_code == 302  # unchanged: no new version
    versions = list(project.consent_versions.order_by("version").values_list("version", "text"))
    assert versions == [(1, "You agree to take part."), (2, "Version **two**.")]
    assert project.consent_versions.get(version=2).created_by is not None
    assert "<strong>two</strong>" in logged_in.get(url).content.decode()


def test_viewer_cannot_write_consent(client, project):
    viewer = UserFactory()
    services.membership_set(project=project, user=viewer, role="viewer")
    client.force_login(viewer)
    url = reverse("annotator:consent", args=[project.slug])
    assert client.get(url).status_code == 200
    assert client.post(url, {"text": "changed"}).status_code == 403
    assert project.consent_versions.count() == 1


def test_a_new_consent_version_is_asked_again(client, project):
    client.get(join_url(project))
    walk_to_tasks(client, project)
    version = project.consent_versions.get()
    version.refresh_from_db()
    assert version.first_shown_at is not None
    services.consent_version_create(project=project, text="New terms.")
    assert client.get(reverse("rater:api_next", args=[project.slug])).json() == {"status": "blocked",
                                                                                 "step": "consent"}


@requires_postgres
def test_consent_versions_are_immutable_in_the_database(project, rater):
    version = rater.consent_version
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        ConsentVersion.objects.filter(pk=version.pk).update(text="rewritten history")
    with pytest.raises(DatabaseError, match="cannot be deleted"), transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM annotator_consentversion WHERE id = %s", [version.pk])
    version.refresh_from_db()
    assert version.text == "You agree to take part."


# Capacity: a latecomer to a full study ------------------------------------------------------------------


def fill_every_place(project) -> None:
    Task.objects.filter(project=project).update(n_assigned=project.overlap)


def test_a_latecomer_is_told_the_study_is_full_before_consent(client, project):
    fill_every_place(project)
    response = client.get(join_url(project))
    assert response.status_code == 409
    html = response.content.decode()
    assert "This study is full" in html and project.completion_code not in html
    assert Rater.objects.count() == 0  # nothing stored


def test_a_crowd_latecomer_is_sent_back_with_the_no_places_code(client, project):
    services.project_update(project=project, no_places_code="NOPLACES",
                            completion_redirect_url="https://app.prolific.com/submissions/complete?cc=OLD")
    fill_every_place(project)
    response = client.get(join_url(project, PROLIFIC_PID="late1", STUDY_ID="s", SESSION_ID="x"))
    assert response.status_code == 302
    assert response.url == "https://app.prolific.com/submissions/complete?cc=NOPLACES"
    assert Rater.objects.count() == 0


def test_without_a_completion_url_the_crowd_latecomer_is_shown_the_code(client, project):
    services.project_update(project=project, no_places_code="NOPLACES")
    fill_every_place(project)
    response = client.get(join_url(project, PROLIFIC_PID="late2"))
    assert response.status_code == 409
    assert "NOPLACES" in response.content.decode()
    assert "NOPLACES" not in client.get(join_url(project)).content.decode()  # an invite link gets no code


def test_a_rater_who_joined_before_the_study_filled_gets_no_completion_code(client, project):
    client.get(join_url(project, PROLIFIC_PID="early"))
    fill_every_place(project)
    flow = client.get(reverse("rater:flow", args=[project.slug]))
    assert flow.status_code == 200 and "This study is full" in flow.content.decode()
    consent = client.get(reverse("rater:consent", args=[project.slug]))
    assert "This study is full" in consent.content.decode()
    walk_to_tasks(client, project)  # even one who walks past the pages by posting them
    assert client.get(reverse("rater:api_next", args=[project.slug])).json()["status"] == "done"
    done = client.get(reverse("rater:done", args=[project.slug]))
    assert done.status_code == 200
    assert project.completion_code not in done.content.decode()
    assert "This study is full" in done.content.decode()


def answer(client, project, body, choice="left"):
    return client.post(reverse("rater:api_judgments", args=[project.slug]), {
        "assignment": body["assignment"]["id"], "choice": choice, "idempotency_key": str(uuid.uuid4()),
        "instruction_version": body["instruction_version"]}, content_type="application/json").json()


def test_a_rater_with_answers_still_gets_the_completion_code_when_the_study_fills(client, project):
    client.get(join_url(project))
    walk_to_tasks(client, project)
    following = answer(client, project, client.get(reverse("rater:api_next", args=[project.slug])).json())["next"]
    fill_every_place(project)  # the rater holds their second task; every other place is taken
    assert answer(client, project, following, "right")["next"]["status"] == "done"
    assert project.completion_code in client.get(reverse("rater:done", args=[project.slug])).content.decode()


def test_readiness_counts_only_places_of_images_in_the_study(project):
    assert selectors.project_readiness(project=project).accepting
    for item in project.items.all():
        services.item_retire(item=item)
    readiness = selectors.project_readiness(project=project)
    assert not readiness.has_places and not readiness.accepting


# Declining consent -------------------------------------------------------------------------------------


def test_a_crowd_participant_who_declines_is_sent_back_with_the_code(client, project):
    services.project_update(project=project, consent_declined_code="NOCONSENT",
                            completion_redirect_url="https://app.prolific.com/submissions/complete")
    client.get(join_url(project, PROLIFIC_PID="nope1"))
    version = project.consent_versions.get()
    response = client.post(reverse("rater:consent", args=[project.slug]),
                           {"decision": "decline", "consent_version": version.pk})
    assert response.status_code == 302
    assert response.url == "https://app.prolific.com/submissions/complete?cc=NOCONSENT"
    rater = Rater.objects.get(prolific_pid="nope1")
    assert rater.consent_declined_at is not None and rater.consent_version is None
    version.refresh_from_db()
    assert version.first_shown_at is not None
    assert not hasattr(rater, "demographics")  # nothing more was asked


def test_an_invited_rater_who_declines_is_thanked_without_a_code(client, project):
    services.project_update(project=project, consent_declined_code="NOCONSENT")
    client.get(join_url(project))
    response = client.post(reverse("rater:consent", args=[project.slug]),
                           {"decision": "decline", "consent_version": project.consent_versions.get().pk})
    assert response.status_code == 200
    html = response.content.decode()
    assert "You chose not to take part" in html and "NOCONSENT" not in html
    assert Rater.objects.get().consent_declined_at is not None
