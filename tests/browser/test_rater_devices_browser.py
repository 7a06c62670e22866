"""The rater pages on a phone (390×844, touch) and on a laptop (1440×900) in real Chromium, under the real CSP:
both pairwise images in view at once, touch labels instead of key hints, large images with a full-size view
that never answers, a key pressed while the next pair loads is reported (never used, never stored twice),
and the next rich-feedback image scrolled into view. Screenshots go to /tmp/shots-devices/."""

import io
import random
import re
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from annotator import services
from annotator.models import Annotation, Judgment
from tests.factories import ItemFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/shots-devices")
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}
LAPTOP = {"viewport": {"width": 1440, "height": 900}}
PROMPT = "a lighthouse at sunset over a calm sea"


def png(width: int, height: int, *, kind: str = "busy", seed: int = 0) -> bytes:
    """A white, a black or a busy picture (a gradient under many shapes, the point colours among them)."""
    if kind in ("white", "black"):
        img = Image.new("RGB", (width, height), (255, 255, 255) if kind == "white" else (0, 0, 0))
    else:
        rng = random.Random(seed)
        img = Image.new("RGB", (width, height))
        draw = ImageDraw.Draw(img)
        for y in range(height):
            draw.line([(0, y), (width, y)], fill=(40 + 160 * y // height, 90, 200 - 150 * y // height))
        for _ in range(60):
            x, y = rng.randrange(width), rng.randrange(height)
            r = rng.randrange(width // 40, width // 8)
            colour = rng.choice([(229, 62, 62), (49, 130, 206), (255, 255, 255), (10, 10, 10), (240, 200, 40)])
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x - r, y - r, x + r, y + r], fill=colour)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def shot(page, name: str, **kwargs) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), **kwargs)


@pytest.fixture
def pair_study():
    owner = UserFactory()
    project = services.project_create(owner=owner, name="Devices study", overlap=1, tasks_per_rater=3)
    for seed in range(4):
        ItemFactory(project=project, prompt=PROMPT, width=1200, height=900, _data=png(1200, 900, seed=seed))
    services.consent_version_create(project=project, text="You agree to take part.")
    services.instruction_version_create(project=project, text="Choose the **better** image.", created_by=owner)
    services.tasks_generate_within_prompt(project=project, random_state=5)
    return project


@pytest.fixture
def device(browser):
    """``device(PHONE)`` or ``device(LAPTOP)``: a page under the real CSP in a context of that kind."""
    contexts = []

    def open_page(kind):
        context = browser.new_context(**kind)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def join(page, live_server, project, app: str) -> None:
    page.goto(f"{live_server.url}/join/{project.slug}/{project.join_token}/")
    page.click("#consent-agree")
    page.click("#demographics-continue")
    page.check("#ack")
    page.click("#instructions-continue")
    expect(page.locator(f"#{app}")).to_have_attribute("data-state", "ready")


def inside(box, width: int, height: int) -> bool:
    return box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= width and box["y"] + box["height"] <= height


def shown_width(page, selector: str) -> float:
    """The width of the picture drawn in an <img> (object-fit: contain draws it inside the element's box)."""
    box = page.locator(selector).bounding_box()
    nw, nh = page.evaluate(f"[document.querySelector('{selector}').naturalWidth, "
                           f"document.querySelector('{selector}').naturalHeight]")
    return min(box["width"], box["height"] * nw / nh)


def src(page, img_id: str) -> str:
    return page.evaluate(f"document.getElementById('{img_id}').src")


def test_phone_pairwise_shows_both_images_at_once_and_a_tap_answers(live_server, device, pair_study):
    page = device(PHONE)
    join(page, live_server, pair_study, "pairwise-app")
    assert page.evaluate("window.scrollY") == 0
    for selector in ("#prompt", "#left-img", "#right-img", "button[data-choice=left]", "button[data-choice=right]",
                     "button[data-choice=tie]"):
        box = page.locator(selector).bounding_box()
        assert box and inside(box, 390, 844), (selector, box)
    left, right = page.locator("#left-img").bounding_box(), page.locator("#right-img").bounding_box()
    assert left["width"] > 150 and abs(left["y"] - right["y"]) < 1  # side by side, each about half the width
    expect(page.locator(".key-hints")).to_be_hidden()
    expect(page.locator("button[data-choice=left] .key-hint")).to_be_hidden()
    expect(page.locator(".touch-hints")).to_be_visible()
    shot(page, "phone-pairwise.png")

    page.locator("button[data-choice=left]").tap()
    expect(page.locator("#progress-text")).to_have_text(re.compile(r"^1 of"))
    judgment = Judgment.objects.get()
    assert judgment.choice == "left" and judgment.winner_id == judgment.left_item_id


def test_laptop_pairwise_images_are_large_and_zoom_to_full_size_without_answering(live_server, device, pair_study):
    page = device(LAPTOP)
    join(page, live_server, pair_study, "pairwise-app")
    for side in ("left", "right"):
        assert shown_width(page, f"#{side}-img") > 500, side
        assert inside(page.locator(f"button[data-choice={side}]").bounding_box(), 1440, 900)  # no scrolling
    expect(page.locator(".key-hints")).to_be_visible()
    expect(page.locator(".touch-hints")).to_be_hidden()
    shot(page, "laptop-pairwise.png")

    zoom, zoomed = page.locator("#zoom"), page.locator("#zoom-img")
    page.click("#left .zoom-button")
    expect(zoom).to_be_visible()
    expect(zoomed).to_have_js_property("src", src(page, "left-img"))
    expect(zoomed).to_have_js_property("naturalWidth", 1200)
    box = zoomed.bounding_box()
    assert (round(box["width"]), round(box["height"])) == (1200, 900)  # natural size: 1 image pixel per CSS pixel
    assert page.evaluate("document.getElementById('zoom').scrollHeight > innerHeight")  # taller than the window
    shot(page, "laptop-zoom.png")
    page.keyboard.press("ArrowRight")  # in the zoom: the other image, not an answer
    expect(zoomed).to_have_js_property("src", src(page, "right-img"))
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Escape")
    expect(zoom).to_be_hidden()

    page.keyboard.press("z")  # Z opens the left image, Z again closes
    expect(zoom).to_be_visible()
    page.keyboard.press("z")
    expect(zoom).to_be_hidden()
    page.click("#right-img")  # a click on an image zooms it; a click in the zoom closes it
    expect(zoomed).to_have_js_property("src", src(page, "right-img"))
    page.click("#zoom-img")
    expect(zoom).to_be_hidden()
    assert Judgment.objects.count() == 0
    expect(page.locator("#progress-text")).to_have_text(re.compile(r"^0 of"))

    page.keyboard.press("ArrowRight")  # with the zoom closed the keys answer again
    expect(page.locator("#progress-text")).to_have_text(re.compile(r"^1 of"))
    assert Judgment.objects.get().choice == "right"


def test_a_key_pressed_while_saving_or_loading_is_reported_and_stored_once(live_server, device, pair_study):
    page = device(LAPTOP)
    join(page, live_server, pair_study, "pairwise-app")
    app, notice = page.locator("#pairwise-app"), page.locator("#key-notice")
    expect(notice).to_be_hidden()
    held_posts, held_images = [], []
    page.route("**/api/judgments/", lambda route: held_posts.append(route))
    page.route("**/image/**", lambda route: held_images.append(route))

    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")  # a double press while the answer is being saved
    expect(app).to_have_attribute("data-state", "saving")
    expect(notice).to_have_text(re.compile("still being saved"))
    assert len(held_posts) == 1  # the second press sent nothing
    held_posts[0].continue_()
    page.unroute("**/api/judgments/")

    expect(app).to_have_attribute("data-state", "loading")  # the next pair's images are held back
    expect(page.locator("#status")).to_have_text("Loading the next pair…")
    page.keyboard.press("ArrowRight")
    expect(notice).to_have_text("Wait for the next pair — your key or tap was not used.")
    expect(notice).to_be_visible()
    page.locator("button[data-choice=tie]").click()  # a click is not used either
    assert Judgment.objects.count() == 1
    shot(page, "laptop-key-while-loading.png")

    for route in held_images:
        route.continue_()
    page.unroute("**/image/**")
    expect(app).to_have_attribute("data-state", "ready")
    expect(page.locator("#progress-text")).to_have_text(re.compile(r"^1 of"))
    expect(page.locator("#status")).to_have_text("")
    assert [j.choice for j in Judgment.objects.all()] == ["left"]


@pytest.fixture
def rich_study():
    owner = UserFactory()
    project = services.project_create(owner=owner, name="Rich devices", overlap=1, tasks_per_rater=3)
    names = {}
    for kind in ("white", "black", "busy"):
        item = ItemFactory(project=project, prompt="A blue bird, sitting on a wooden fence.", width=800, height=600,
                           _data=png(800, 600, kind=kind, seed=9))
        names[item.pk] = kind
    services.consent_version_create(project=project, text="You agree to take part.")
    services.instruction_version_create(project=project, text="Mark what is wrong.", created_by=owner)
    services.tasks_generate_single(project=project, kind="rich")
    project.names = names
    return project


def test_phone_rich_feedback_points_by_tap_and_the_next_image_scrolled_into_view(live_server, device, rich_study):
    page = device(PHONE)
    join(page, live_server, rich_study, "rich-app")
    expect(page.locator(".key-hints")).to_be_hidden()
    for done in range(3):
        box = page.locator("#rich-img").bounding_box()
        assert inside(box, 390, 844), box  # the whole image in view, as wide as the page allows
        assert box["width"] > 330 and box["height"] == pytest.approx(box["width"] * 0.75, abs=1.5)
        page.touchscreen.tap(box["x"] + 0.3 * box["width"], box["y"] + 0.3 * box["height"])
        page.locator(".kind-button.misalignment").tap()
        page.touchscreen.tap(box["x"] + 0.7 * box["width"], box["y"] + 0.6 * box["height"])
        page.locator(".kind-button.artifact").tap()
        expect(page.locator("#rich-overlay .point")).to_have_count(2)
        item_id = int(page.get_attribute("#rich-img", "src").rstrip("/").rsplit("/", 1)[1])
        shot(page, f"phone-rich-{rich_study.names[item_id]}.png")

        for row in range(4):
            page.locator(".likert").nth(row).locator('button[data-score="4"]').tap()
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        assert page.locator("#rich-img").bounding_box()["y"] < 0  # the image's top is off screen now
        page.locator("#rich-submit").tap()
        if done < 2:
            expect(page.locator("#progress-text")).to_have_text(re.compile(rf"^{done + 1} of"))
            expect(page.locator("#rich-app")).to_have_attribute("data-state", "ready")
            top = page.locator("#rich-img").bounding_box()["y"]
            assert 0 <= top < 844 - 100, top  # the next image scrolled into view
    page.wait_for_url(f"**/r/{rich_study.slug}/done/")
    annotations = list(Annotation.objects.all())
    assert len(annotations) == 3
    for a in annotations:
        assert sorted(p["kind"] for p in a.points) == ["artifact", "misalignment"]
        assert a.scores == {"plausibility": 4, "alignment": 4, "aesthetics": 4, "overall": 4}
