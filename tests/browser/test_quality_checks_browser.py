"""Quality checks in real Chromium: a rater meets an attention check, fails it and is screened out; the
researcher makes checks and sees the result on the checks page."""


import pytest

from annotator import services
from annotator.models import Judgment, Rater, Task
from tests.browser.conftest import log_in
from tests.factories import ItemFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

def test_an_attention_check_is_shown_scored_and_a_failing_rater_screened_out(live_server, page, shots):
    owner = UserFactory(username="quinn")
    project = services.project_create(owner=owner, name="Checked study", overlap=2)
    items = [ItemFactory(project=project, prompt="a red bicycle", width=64, height=48) for _ in range(8)]
    services.consent_version_create(project=project, text="You agree to take part.")
    services.instruction_version_create(project=project, text="Choose the **better** image.", created_by=owner)
    services.tasks_generate_within_prompt(project=project, random_state=3)  # 28 tasks
    services.project_update(project=project, check_rate=0.5, check_fail_limit=1)
    services.check_create(project=project, kind="attention", left_item_id=items[0].pk, right_item_id=items[1].pk,
                          answer="right", instruction="Attention check: choose the image on the right.")

    # The researcher's checks page.
    log_in(page, live_server, owner)
    page.goto(f"{live_server.url}/projects/{project.slug}/checks/")
    page.select_option("#id_kind", "gold")
    page.select_option("#id_left_item", str(items[2].pk))
    page.select_option("#id_right_item", str(items[3].pk))
    page.select_option("#id_answer", "left")
    page.click("#check-create")
    assert "Made gold pair" in page.inner_text(".messages")
    gold = Task.objects.get(project=project, check_kind="gold")
    # retired at once: its sides are drawn at random, so a rater who always presses ← could fail it (and be
    # screened out) before the attention check this test is about
    services.check_retire(project=project, check_id=gold.pk)
    page.context.clear_cookies()

    # A rater answers (left) until the attention check comes, then fails it.
    page.goto(f"{live_server.url}/join/{project.slug}/{project.join_token}/")
    page.click("#consent-agree")
    page.click("#demographics-continue")
    page.check("#ack")
    page.click("#instructions-continue")
    for i in range(28):
        page.wait_for_function(f"document.getElementById('progress-text').textContent.startsWith('{i} of')")
        page.wait_for_function("document.getElementById('status').textContent === ''")
        if page.is_visible("#check-instruction"):
            break
        page.keyboard.press("ArrowLeft")
    else:
        pytest.fail("no attention check was shown")
    assert page.inner_text("#check-instruction") == "Attention check: choose the image on the right."
    page.screenshot(path=str(shots / "rater_attention_check.png"))
    page.keyboard.press("ArrowLeft")  # the wrong side
    page.wait_for_url(f"**/r/{project.slug}/done/")
    assert "no more tasks for you" in page.inner_text("main")
    assert project.completion_code not in page.content()

    rater = Rater.objects.get(project=project)
    assert rater.excluded_at is not None and rater.excluded_reason.startswith("Screened out: failed 1 of")
    assert Judgment.objects.filter(rater=rater, is_check=True, check_passed=False).count() == 1

    # Back to the researcher: the checks page reports it.
    log_in(page, live_server, owner)
    page.goto(f"{live_server.url}/projects/{project.slug}/checks/")
    assert page.inner_text("#checks-screened-out") == "1"
    page.screenshot(path=str(shots / "researcher_checks_page.png"), full_page=True)
