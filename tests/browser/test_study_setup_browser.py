"""A whole study run from the browser in real Chromium: a researcher creates a project, writes consent and
instructions, uploads several files at once, makes tasks, sets the settings (with the score editor,
by keyboard), invites a viewer and opens the study; a crowd rater completes it; a latecomer finds it full.

Screenshots go to ``PREFLAB_SCREENSHOT_DIR`` when it is set (else to the test's temporary folder).
"""


import pytest

from annotator.models import Judgment, Membership, Project, Rater
from tests.browser.conftest import log_in
from tests.factories import UserFactory, png_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def success_message(page) -> str:
    return page.inner_text(".messages li.success")


def test_a_researcher_runs_a_whole_study_from_the_browser(live_server, browser, page, shots, tmp_path):
    researcher = UserFactory(username="rosa")
    UserFactory(username="vic", email="vic@example.org")
    log_in(page, live_server, researcher)

    # A new project, closed to raters until it is ready.
    page.click("text=New project")
    page.fill("#id_name", "Browser study")
    page.fill("#id_overlap", "1")
    page.click("button[type=submit]")
    page.wait_for_url("**/projects/browser-study/items/")
    project = Project.objects.get(slug="browser-study")
    assert project.is_open is False

    # Several files at once: three images and their manifest, in one file chooser.
    files = []
    for name, seed in (("a.png", 1), ("b.png", 2), ("c.png", 3)):
        (tmp_path / name).write_bytes(png_bytes(64, 48, seed=seed))
        files.append(str(tmp_path / name))
    (tmp_path / "manifest.csv").write_text(
        "file,prompt,model\na.png,a lighthouse at dusk,m1\nb.png,a lighthouse at dusk,m2\n"
        "c.png,a lighthouse at dusk,m3\n")
    files.append(str(tmp_path / "manifest.csv"))
    assert page.get_attribute("#id_files", "multiple") is not None
    page.set_input_files("#id_files", files)
    page.click("#upload")
    assert "Imported 3 image(s)" in success_message(page)
    assert sorted(project.items.values_list("source_model", flat=True)) == ["m1", "m2", "m3"]
    page.screenshot(path=str(shots / "images.png"), full_page=True)

    # Consent and instructions.
    page.click("nav.tabs >> text=Consent")
    page.fill("#id_text", "You agree that your answers are stored under a pseudonymous id.")
    page.click("#save-consent")
    assert "Saved as version 1" in success_message(page)
    page.screenshot(path=str(shots / "consent.png"), full_page=True)
    page.click("nav.tabs >> text=Instructions")
    page.fill("#id_text", "Choose the **better** image.")
    page.click("button[type=submit]")
    page.click("nav.tabs >> text=Tasks")
    page.click("button[type=submit]")
    assert "Created 3 new pairwise task(s)" in success_message(page)

    # Settings: the study form, then the score editor by keyboard.
    page.click("nav.tabs >> text=Settings")
    page.fill("#id_tasks_per_rater", "2")
    page.fill("#id_completion_code", "BROWSER1")
    page.fill("#id_no_places_code", "NOPLACES")
    page.fill("#id_overlap", "0")
    page.click("#save-study")
    assert "Overlap (raters per task)" in page.inner_text(".error-summary")  # the field is named
    page.screenshot(path=str(shots / "settings-errors.png"), full_page=True)
    page.fill("#id_overlap", "1")
    page.click("#save-study")
    assert "Saved the study settings" in success_message(page)

    page.focus('[data-add-row="likert"]')
    page.keyboard.press("Enter")                      # a new row; the focus moves to its name
    page.keyboard.type("realism")
    page.keyboard.press("Tab")
    page.keyboard.type("Realism")
    for _ in range(3):
        page.keyboard.press("Tab")
    page.keyboard.type("r")
    new_row = page.locator("#likert tr[data-row]").nth(4)
    new_row.locator("button[data-move='-1']").focus()
    page.keyboard.press("Enter")                      # one up: above "overall"
    assert page.locator("#likert tr[data-row]").nth(3).locator("input[name$='-name']").input_value() == "realism"
    page.locator("#likert tr[data-row]").first.locator("input[name$='-DELETE']").check()   # plausibility goes
    page.screenshot(path=str(shots / "settings-editing.png"), full_page=True)
    page.click("#save-likert")
    assert "Saved the scores" in success_message(page)
    page.click('[data-add-row="checklist"]')           # a checklist question
    page.keyboard.type("subject")
    page.keyboard.press("Tab")
    page.keyboard.type("alignment")
    page.keyboard.press("Tab")
    page.keyboard.type("Is the lighthouse shown?")
    page.click("#save-checklist")
    assert "Saved the checklist questions" in success_message(page)
    project.refresh_from_db()
    assert [d["name"] for d in project.likert_dimensions] == ["alignment", "aesthetics", "realism", "overall"]
    assert project.checklist == [{"id": "subject", "dimension": "alignment", "question": "Is the lighthouse shown?",
                                  "required": True}]
    assert (project.overlap, project.tasks_per_rater, project.completion_code) == (1, 2, "BROWSER1")

    # Team: a viewer, by email.
    page.click("nav.tabs >> text=Team")
    page.fill("#id_user", "vic@example.org")
    page.select_option("#id_role", "viewer")
    page.click("#add-member")
    assert "Added vic as viewer" in success_message(page)
    assert Membership.objects.get(project=project, user__username="vic").role == "viewer"
    page.screenshot(path=str(shots / "team.png"), full_page=True)

    # Open the study.
    page.click("nav.tabs >> text=Settings")
    page.check("#id_is_open")
    page.click("#save-study")
    assert "open — raters can join" in page.inner_text("#readiness")
    page.screenshot(path=str(shots / "settings.png"), full_page=True)
    project.refresh_from_db()
    assert project.is_open

    # A crowd rater completes it with the keyboard.
    rater_context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)  # see conftest.page
    try:
        rater = rater_context.new_page()
        rater.goto(f"{live_server.url}/join/{project.slug}/{project.join_token}/"
                   "?PROLIFIC_PID=pid77&STUDY_ID=st1&SESSION_ID=se1")
        rater.click("#consent-agree")
        rater.click("#demographics-continue")
        rater.check("#ack")
        rater.click("#instructions-continue")
        for i, key in enumerate(["ArrowLeft", "ArrowRight"]):
            rater.wait_for_function(f"document.getElementById('progress-text').textContent.startsWith('{i} of')")
            rater.wait_for_function("document.getElementById('status').textContent === ''")
            rater.keyboard.press(key)
        rater.wait_for_url(f"**/r/{project.slug}/done/")
        assert rater.inner_text("#completion-code") == "BROWSER1"
    finally:
        rater_context.close()
    assert Judgment.objects.filter(project=project, rater__prolific_pid="pid77").count() == 2

    # The raters page lists them with their crowd ids.
    page.click("nav.tabs >> text=Raters")
    assert "pid77" in page.inner_text("#raters-table")
    page.screenshot(path=str(shots / "raters.png"), full_page=True)

    # One task is left; a second rater takes it; a third finds the study full before any consent.
    for pid in ("pid78", "pid79"):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)  # see conftest.page
        try:
            latecomer = context.new_page()
            latecomer.goto(f"{live_server.url}/join/{project.slug}/{project.join_token}/?PROLIFIC_PID={pid}")
            if pid == "pid78":
                latecomer.click("#consent-agree")
                latecomer.click("#demographics-continue")
                latecomer.check("#ack")
                latecomer.click("#instructions-continue")
                latecomer.wait_for_function(
                    "document.getElementById('progress-text').textContent.startsWith('0 of')")
                latecomer.wait_for_function("document.getElementById('status').textContent === ''")
                latecomer.keyboard.press("ArrowDown")
                latecomer.wait_for_url(f"**/r/{project.slug}/done/")
            else:
                assert "This study is full" in latecomer.inner_text("main")
                assert "NOPLACES" in latecomer.inner_text("#return-code")
                assert latecomer.locator("#consent-agree").count() == 0
                latecomer.screenshot(path=str(shots / "rater-full.png"), full_page=True)
        finally:
            context.close()
    assert not Rater.objects.filter(prolific_pid="pid79").exists()

    # The viewer sees the settings, read-only.
    viewer_context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)  # see conftest.page
    try:
        viewer = viewer_context.new_page()
        log_in(viewer, live_server, Membership.objects.get(project=project, role="viewer").user)
        viewer.goto(f"{live_server.url}/projects/{project.slug}/settings/")
        assert viewer.locator("#id_overlap").is_disabled()
        assert viewer.locator("#save-study").count() == 0
    finally:
        viewer_context.close()

    # An image: describe it, then retire it (confirmed in a dialog); its judgment stays.
    page.goto(f"{live_server.url}/projects/{project.slug}/items/")
    page.click("figure:has-text('a.png') >> text=Edit")
    page.fill("#id_source_model", "model-one")
    page.fill("#id_metadata", '{"seed": 7}')
    page.click("#save-item")
    assert "Saved a.png" in success_message(page)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#retire-item")
    assert "Retired a.png" in success_message(page)
    page.screenshot(path=str(shots / "item-edit.png"), full_page=True)
    item = project.items.get(original_name="a.png")
    assert (item.source_model, item.metadata, item.retired_at is not None) == ("model-one", {"seed": 7}, True)
