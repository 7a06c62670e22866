"""A rater arrives by a crowd-platform link and does the whole flow in real Chromium."""

import pytest

from annotator import services
from annotator.models import Judgment, Rater
from tests.factories import ItemFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def study():
    owner = UserFactory()
    project = services.project_create(owner=owner, name="Browser study", overlap=2, tasks_per_rater=3)
    for _ in range(4):
        ItemFactory(project=project, prompt="a lighthouse at dusk", width=64, height=48)
    services.consent_version_create(project=project, text="You agree to take part.")
    services.instruction_version_create(project=project, text="Choose the **better** image.", created_by=owner)
    services.tasks_generate_within_prompt(project=project, random_state=3)
    return project


def test_rater_flow_with_keyboard(live_server, page, study, tmp_path):
    url = (f"{live_server.url}/join/{study.slug}/{study.join_token}/"
           "?PROLIFIC_PID=pid42&STUDY_ID=st7&SESSION_ID=se9")
    page.goto(url)
    page.click("#consent-agree")
    page.select_option("#id_age_band", "25-34")
    page.select_option("#id_expertise", "photographer")
    page.fill("#id_country", "prefer_not")
    page.click("#demographics-continue")
    page.check("#ack")
    page.click("#instructions-continue")

    keys = ["ArrowLeft", "ArrowRight", "ArrowDown"]
    seen = []
    for i, key in enumerate(keys):
        page.wait_for_function(f"document.getElementById('progress-text').textContent.startsWith('{i} of')")
        page.wait_for_function("document.getElementById('status').textContent === ''")
        seen.append((page.get_attribute("#left-img", "src"), page.get_attribute("#right-img", "src")))
        if i == 0:
            page.screenshot(path=str(tmp_path / "pairwise.png"))
        page.keyboard.press(key)
    page.wait_for_url(f"**/r/{study.slug}/done/")
    assert page.inner_text("#completion-code") == study.completion_code

    rater = Rater.objects.get(prolific_pid="pid42")
    assert (rater.study_id, rater.session_id) == ("st7", "se9")
    assert rater.completed_at is not None  # recorded when the last answer was stored
    assert rater.demographics.expertise == "photographer"
    judgments = list(Judgment.objects.filter(rater=rater).order_by("id"))
    assert [j.choice for j in judgments] == ["left", "right", "tie"]
    current = study.instruction_versions.get(version=1)
    for j, (left_src, right_src) in zip(judgments, seen):
        assert left_src.endswith(f"/image/{j.left_item_id}/") and right_src.endswith(f"/image/{j.right_item_id}/")
        assert j.instruction_version_id == current.pk
        assert j.response_time_ms is not None and j.response_time_ms >= 0
    assert (judgments[0].winner_id, judgments[0].loser_id) == (judgments[0].left_item_id, judgments[0].right_item_id)
    assert (judgments[1].winner_id, judgments[1].loser_id) == (judgments[1].right_item_id, judgments[1].left_item_id)
    assert judgments[2].is_tie


def test_new_instructions_are_shown_before_the_next_task(live_server, page, study):
    page.goto(f"{live_server.url}/join/{study.slug}/{study.join_token}/")
    page.click("#consent-agree")
    page.click("#demographics-continue")
    page.check("#ack")
    page.click("#instructions-continue")
    page.wait_for_function("document.getElementById('progress-text').textContent.startsWith('0 of')")
    page.wait_for_function("document.getElementById('status').textContent === ''")
    services.instruction_version_create(project=study, text="Version two: prefer realism.",
                                        created_by=study.owner)
    page.keyboard.press("ArrowLeft")
    page.wait_for_url(f"**/r/{study.slug}/instructions/")
    assert "Version two" in page.inner_text("main")
    assert "changed" in page.inner_text("main")
    assert Judgment.objects.count() == 0


def test_a_refused_answer_is_reported_and_nothing_is_stored(live_server, page, study):
    services.project_update(project=study, pairwise_flags=["both bad"])
    page.goto(f"{live_server.url}/join/{study.slug}/{study.join_token}/")
    page.click("#consent-agree")
    page.click("#demographics-continue")
    page.check("#ack")
    page.click("#instructions-continue")
    # ready: the pair is shown and keys are taken (the status line is also empty before the first load starts)
    page.wait_for_selector("#pairwise-app[data-state=ready]")
    page.check("#flags input[type=checkbox]")
    services.project_update(project=study, pairwise_flags=[])  # the flag is withdrawn while the page is open
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Not saved')")
    assert "Unknown flag 'both bad'" in page.inner_text("#status")
    assert page.get_attribute("#status", "class") == "center error"
    assert page.get_attribute("#left", "class") == "choice"  # the highlight of the refused choice is gone
    assert Judgment.objects.count() == 0
