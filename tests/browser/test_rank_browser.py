"""A rater ranks images in real Chromium: one task by keyboard (with a tie), one by drag and drop."""

import random

import pytest

from annotator import services
from annotator.demo import PROMPTS, render_demo_image
from annotator.models import RankAnswer, Rater
from tests.factories import ItemFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def study():
    owner = UserFactory()
    project = services.project_create(owner=owner, name="Rank study", overlap=1, tasks_per_rater=2)
    rng = random.Random(4)
    for model_index in range(3):
        for _ in range(2):
            ItemFactory(project=project, prompt=PROMPTS[0][0], width=384, height=384,
                        _data=render_demo_image(0, model_index, rng))
    services.consent_version_create(project=project, text="You agree to take part.")
    services.instruction_version_create(project=project, text="Put the images in order, **best first**.",
                                        created_by=owner)
    services.tasks_generate_rank(project=project, k=5, n_tasks=2, random_state=1)
    return project


def shown_ids(page) -> list[int]:
    return [int(i) for i in page.eval_on_selector_all("#rank-list li", "els => els.map(e => e.dataset.id)")]


def wait_ready(page, done: int) -> None:
    page.wait_for_function(f"document.getElementById('progress-text').textContent.startsWith('{done} of')")
    page.wait_for_function("document.getElementById('rank-app').dataset.state === 'ready'")


def drag(page, source_id: int, target_id: int, *, before: bool) -> None:
    """Drag a card with the mouse (pointer events) onto the left or right part of another card."""
    src = page.locator(f'#rank-list li[data-id="{source_id}"]').bounding_box()
    dst = page.locator(f'#rank-list li[data-id="{target_id}"]').bounding_box()
    page.mouse.move(src["x"] + src["width"] / 2, src["y"] + src["height"] / 2)
    page.mouse.down()
    x = dst["x"] + dst["width"] * (0.25 if before else 0.75)
    page.mouse.move(x, dst["y"] + dst["height"] / 2, steps=12)
    page.mouse.up()


def test_rank_by_keyboard_and_by_drag_and_drop(live_server, page, study, tmp_path):
    page.goto(f"{live_server.url}/join/{study.slug}/{study.join_token}/")
    page.click("#consent-agree")
    page.click("#demographics-continue")
    page.check("#ack")
    page.click("#instructions-continue")

    # Task 1, keys only: 5 → ← ← ← ← makes the fifth image best; 3 = ties the third with the second; Enter.
    wait_ready(page, 0)
    a, b, c, d, e = first_shown = shown_ids(page)
    page.screenshot(path=str(tmp_path / "rater-rank.png"))
    page.keyboard.press("5")
    for _ in range(4):
        page.keyboard.press("ArrowLeft")
    assert shown_ids(page) == [e, a, b, c, d]
    page.keyboard.press("3")
    page.keyboard.press("=")
    assert page.inner_text(f'#rank-list li[data-id="{b}"] .rank-place').strip() == "2nd ="
    page.screenshot(path=str(tmp_path / "rater-rank-tie.png"))
    page.keyboard.press("Enter")

    # Task 2, the pointer only: drag the last image to the front, then the (new) second one to the end.
    wait_ready(page, 1)
    f, g, h, i, j = second_shown = shown_ids(page)
    drag(page, j, f, before=True)
    assert shown_ids(page) == [j, f, g, h, i]
    drag(page, f, i, before=False)
    assert shown_ids(page) == [j, g, h, i, f]
    page.click("#rank-submit")
    page.wait_for_url(f"**/r/{study.slug}/done/")
    assert page.inner_text("#completion-code") == study.completion_code

    rater = Rater.objects.get(project=study)
    answers = list(RankAnswer.objects.filter(rater=rater).order_by("id"))
    assert [x.shown_order for x in answers] == [first_shown, second_shown]
    assert answers[0].ranking == [[e], [a, b], [c], [d]] and answers[0].has_ties
    assert answers[1].ranking == [[j], [g], [h], [i], [f]] and not answers[1].has_ties
    current = study.instruction_versions.get(version=1)
    assert all(x.instruction_version_id == current.pk and x.response_time_ms >= 0 for x in answers)
    assert rater.completed_at is not None


def test_ties_are_not_offered_when_the_project_has_none(live_server, page, study):
    services.project_update(project=study, allow_tie=False)
    page.goto(f"{live_server.url}/join/{study.slug}/{study.join_token}/")
    page.click("#consent-agree")
    page.click("#demographics-continue")
    page.check("#ack")
    page.click("#instructions-continue")
    wait_ready(page, 0)
    assert page.is_hidden("#tie-hint")
    assert page.locator("#rank-list li button", has_text="=").count() == 0
    order = shown_ids(page)
    page.keyboard.press("2")
    page.keyboard.press("=")  # does nothing
    assert "=" not in page.inner_text("#rank-list")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    wait_ready(page, 1)
    answer = RankAnswer.objects.get()
    assert answer.ranking == [[order[0]], [order[2]], [order[1]], [order[3]], [order[4]]]
