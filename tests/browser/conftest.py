"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright against the live test server."""

import os
import shutil
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the tests' ORM calls are still sync.
# (Subprocesses that must not inherit this, such as `check --deploy`, drop it from their environment.)
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("PREFLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make test` (it installs Debian's chromium) "
                    "or set PREFLAB_CHROMIUM.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    # Playwright's string waits (wait_for_function) evaluate in the page, which our Content-Security-Policy
    # forbids ('unsafe-eval'); these tests drive the pages, tests/browser/test_csp_browser.py checks the CSP.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


PASSWORD = "pw-for-tests-only"  # tests.factories.UserFactory's


def log_in(page, live_server, user) -> None:
    """Log ``user`` in through the login page (their factory password) and wait for the projects list."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/projects/")


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where a test saves its screenshots: ``PREFLAB_SCREENSHOT_DIR`` when set, else the test's tmp folder."""
    folder = Path(os.environ.get("PREFLAB_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
