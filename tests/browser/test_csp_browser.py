"""The Content-Security-Policy holds in real Chromium: the rater pairwise page and researcher pages load
and work with no CSP violation, and an inline script is refused."""

import re

import pytest
from playwright.sync_api import expect

from annotator import services
from annotator.models import Judgment
from tests.browser.test_study_setup_browser import log_in
from tests.factories import ItemFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs before any page script (Playwright injects it outside the page's CSP) and records every violation.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));
"""


@pytest.fixture
def watched(browser):
    """A page under the real CSP (no bypass, unlike the other browser tests' ``page``), with violations
    gathered from the console and from securitypolicyviolation events. Waits use locators, never
    ``wait_for_function`` (it evaluates strings, which the CSP refuses)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    page.add_init_script(RECORD_VIOLATIONS)

    def violations() -> list[str]:
        return console + page.evaluate("window.__csp || []")

    page.violations = violations
    yield page
    context.close()


@pytest.fixture
def study():
    owner = UserFactory()
    project = services.project_create(owner=owner, name="CSP study", overlap=2)
    for _ in range(3):
        ItemFactory(project=project, prompt="a red kite", width=64, height=48)
    services.consent_version_create(project=project, text="You agree to take part.")
    services.instruction_version_create(project=project, text="Choose the **better** image.", created_by=owner)
    services.tasks_generate_within_prompt(project=project, random_state=1)
    return project


def test_pages_load_and_work_without_csp_violations(live_server, watched, study):
    page = watched
    response = page.goto(f"{live_server.url}/join/{study.slug}/{study.join_token}/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.click("#consent-agree")
    page.select_option("#id_age_band", "25-34")
    page.select_option("#id_expertise", "photographer")
    page.fill("#id_country", "prefer_not")
    page.click("#demographics-continue")
    page.check("#ack")
    page.click("#instructions-continue")
    expect(page.locator("#progress-text")).to_have_text(re.compile(r"^0 of"))
    expect(page.locator("#status")).to_have_text("")
    assert page.evaluate("document.getElementById('left-img').naturalWidth") > 0  # the image loaded
    page.keyboard.press("ArrowLeft")  # the module script runs: an answer goes through
    expect(page.locator("#progress-text")).to_have_text(re.compile(r"^1 of"))
    assert Judgment.objects.count() == 1
    assert page.violations() == []

    owner = study.memberships.get().user
    log_in(page, live_server, owner)
    for path in (f"/projects/{study.slug}/", f"/projects/{study.slug}/fits/", "/api/docs/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert "camera=()" in response.headers["permissions-policy"]
        page.wait_for_load_state("networkidle")
        if path == "/api/docs/":  # Swagger UI started from its own script file, not an inline one
            page.wait_for_selector("#swagger-ui .opblock")
        assert page.violations() == [], path


def test_an_inline_script_is_refused(live_server, watched):
    page = watched
    page.goto(f"{live_server.url}/accounts/login/")
    with pytest.raises(Exception, match=r"(?i)content security policy|refused"):
        page.add_script_tag(content="window.__ran = true")
    assert page.evaluate("window.__ran === undefined")
    assert any("script-src" in v for v in page.violations())
