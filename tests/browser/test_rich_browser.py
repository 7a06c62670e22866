"""Rich feedback in real Chromium: a rater marks points, words and scores; the researcher sees the overlay."""

import os
import shutil

import pytest

from annotator import services
from annotator.models import Annotation
from tests.factories import ItemFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("PREFLAB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
PROMPT = "A blue bird, sitting on a wooden fence."  # tokens: A blue bird sitting on a wooden fence


@pytest.fixture(scope="module", autouse=True)
def rich_allow_sync_orm():
    """Playwright's sync API runs an event loop in this thread; the test's ORM calls are still sync.

    Set only while this module runs, so that later tests (e.g. ``check --deploy`` in a subprocess)
    do not inherit DJANGO_ALLOW_ASYNC_UNSAFE.
    """
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if before is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture(scope="module")
def rich_browser(request):
    # Only one Playwright sync session can run in a thread: reuse the shared browser when a conftest
    # provides one, else start our own.
    try:
        shared = request.getfixturevalue("browser")
    except pytest.FixtureLookupError:
        shared = None
    if shared is not None:
        yield shared
        return
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def rich_page(rich_browser):
    context = rich_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def rich_study():
    owner = UserFactory(username="researcher-rich")
    project = services.project_create(owner=owner, name="Rich browser", overlap=3, tasks_per_rater=1)
    ItemFactory(project=project, prompt=PROMPT, width=400, height=300)
    services.consent_version_create(project=project, text="You agree to take part.")  # raters join only with one
    services.instruction_version_create(project=project, text="Mark what is wrong.", created_by=owner)
    services.tasks_generate_single(project=project, kind="rich")
    return project


def _join(page, live_server, project):
    page.goto(f"{live_server.url}/join/{project.slug}/{project.join_token}/")
    page.click("#consent-agree")
    page.click("#demographics-continue")
    page.check("#ack")
    page.click("#instructions-continue")
    page.wait_for_selector("#rich-app[data-state=ready]")


def test_rater_marks_points_words_and_scores(live_server, rich_page, rich_study):
    page = rich_page
    _join(page, live_server, rich_study)
    box = page.locator("#rich-img").bounding_box()
    assert box["width"] > 100 and box["height"] > 75

    def at(fx, fy):
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    page.mouse.click(*at(0.25, 0.30))          # artifact (the default kind)
    page.mouse.click(*at(0.70, 0.60))          # artifact, removed below
    page.keyboard.press("m")
    page.mouse.click(*at(0.50, 0.80))          # misalignment
    assert page.locator("#rich-overlay .point").count() == 3
    disk = page.locator("#rich-overlay .artifact .disk").first
    assert float(disk.get_attribute("r")) == pytest.approx(0.05 * box["height"], abs=0.5)
    page.mouse.click(*at(0.70, 0.60))          # on the second point's centre: removes it
    assert page.locator("#rich-overlay .point").count() == 2
    page.mouse.click(*at(0.10, 0.10))          # one more, then Ctrl+Z takes it back
    page.keyboard.press("Control+z")
    assert page.locator("#rich-overlay .point").count() == 2
    page.click('#prompt-words .word[data-index="6"]')  # "wooden"
    assert page.get_attribute('#prompt-words .word[data-index="6"]', "aria-pressed") == "true"

    for key, score in (("p", "4"), ("t", "2"), ("e", "5")):
        page.keyboard.press(key)
        page.keyboard.press(score)
    page.keyboard.press("Enter")               # "overall" not set yet: refused in the page
    assert "Please set every score" in page.inner_text("#status")
    assert Annotation.objects.count() == 0
    page.screenshot(path="/tmp/rich-rater.png", full_page=True)
    page.keyboard.press("o")
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/r/{rich_study.slug}/done/")

    annotation = Annotation.objects.get()
    points = sorted(annotation.points, key=lambda p: p["kind"])
    assert [p["kind"] for p in points] == ["artifact", "misalignment"]
    tol_x, tol_y = 1 / box["width"], 1 / box["height"]  # within one displayed pixel
    for p, (fx, fy) in zip(points, [(0.25, 0.30), (0.50, 0.80)]):
        assert abs(p["x"] - fx) <= tol_x and abs(p["y"] - fy) <= tol_y, p
    assert annotation.misaligned_words == [6]
    assert annotation.scores == {"plausibility": 4, "alignment": 2, "aesthetics": 5, "overall": 3}
    assert annotation.response_time_ms is not None

    # The researcher's item page shows the consolidated overlay.
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "researcher-rich")
    page.fill("#id_password", "pw-for-tests-only")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/projects/{rich_study.slug}/items/{annotation.item_id}/")
    page.wait_for_function("document.getElementById('heat-artifact').complete "
                           "&& document.getElementById('heat-artifact').naturalWidth > 0")
    assert page.evaluate("document.getElementById('heat-artifact').naturalWidth") == 400
    assert page.is_visible("#heat-artifact") and page.is_visible("#heat-misalignment")
    page.uncheck('.layer-toggle[data-kind="misalignment"]')
    assert not page.is_visible("#heat-misalignment")
    page.check("#show-raw")
    assert page.locator("#raw-points circle").count() == 2
    assert "wooden" in page.inner_text("#voted-prompt")
    assert "3" in page.inner_text("#score-table")
    page.check('.layer-toggle[data-kind="misalignment"]')
    page.screenshot(path="/tmp/rich-item.png", full_page=True)
    page.goto(f"{live_server.url}/projects/{rich_study.slug}/feedback/")
    assert page.inner_text("#share-artifact") == "100%"
    page.screenshot(path="/tmp/rich-project.png", full_page=True)


def test_checklist_answered_by_keys(live_server, rich_page):
    owner = UserFactory()
    project = services.project_create(owner=owner, name="Checklist browser", overlap=1, tasks_per_rater=1)
    ItemFactory(project=project, prompt="two dogs", width=200, height=150)
    services.consent_version_create(project=project, text="You agree to take part.")
    services.instruction_version_create(project=project, text="Answer each question.", created_by=owner)
    services.project_feedback_update(project=project, checklist=[
        {"id": "count", "dimension": "alignment", "question": "Are there exactly two dogs?", "required": True},
        {"id": "hands", "dimension": "fidelity", "question": "Are all limbs plausible?", "required": True},
    ])
    services.tasks_generate_single(project=project, kind="checklist")
    page = rich_page
    page.goto(f"{live_server.url}/join/{project.slug}/{project.join_token}/")
    page.click("#consent-agree")
    page.click("#demographics-continue")
    page.check("#ack")
    page.click("#instructions-continue")
    page.wait_for_selector("#checklist-app[data-state=ready]")
    page.keyboard.press("y")
    page.keyboard.press("Enter")               # one question left: refused in the page
    assert "Please answer every question" in page.inner_text("#status")
    page.keyboard.press("n")
    page.screenshot(path="/tmp/rich-checklist.png", full_page=True)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/r/{project.slug}/done/")
    assert Annotation.objects.get().answers == {"count": True, "hands": False}


def test_touch_taps_add_and_remove_points(live_server, rich_browser, rich_study):
    context = rich_browser.new_context(viewport={"width": 800, "height": 900}, has_touch=True, is_mobile=True)
    try:
        page = context.new_page()
        _join(page, live_server, rich_study)
        box = page.locator("#rich-img").bounding_box()
        x, y = box["x"] + 0.4 * box["width"], box["y"] + 0.5 * box["height"]
        page.touchscreen.tap(x, y)
        assert page.locator("#rich-overlay .artifact").count() == 1
        cx = float(page.locator("#rich-overlay .centre").get_attribute("cx"))
        assert abs(cx - 0.4 * box["width"]) <= 1
        page.touchscreen.tap(x, y)
        assert page.locator("#rich-overlay .point").count() == 0
    finally:
        context.close()
