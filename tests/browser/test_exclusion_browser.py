"""A researcher excludes a rater on the raters page, giving the tasks the rater answered to other raters (the
option is ticked by default), in Chromium."""

import uuid

import pytest

from annotator import selectors, services
from annotator.models import Task
from tests.browser.conftest import log_in
from tests.conftest import ready_rater

pytestmark = pytest.mark.django_db(transaction=True)


def test_researcher_excludes_a_rater_and_their_tasks_go_to_others(live_server, page, shots, project, researcher):
    spammer = ready_rater(project)
    answered = []
    for _ in range(2):
        assignment = services.assignment_next(rater=spammer)
        services.judgment_create(rater=spammer, assignment_id=assignment.pk, choice="left",
                                 idempotency_key=uuid.uuid4(), response_time_ms=250,
                                 instruction_version_id=spammer.acknowledged_instruction_id)
        answered.append(assignment.task_id)
    assert all(n == 1 for n in Task.objects.filter(pk__in=answered).values_list("n_assigned", flat=True))

    log_in(page, live_server, researcher)
    page.goto(f"{live_server.url}/projects/{project.slug}/raters/")
    page.click("td.exclusion summary")
    box = page.locator("td.exclusion input[name=release_places]")
    assert box.is_checked()
    page.fill(f"#reason-{spammer.public_id}", "Answered left every time in a quarter of a second")
    page.screenshot(path=str(shots / "raters-exclude-form.png"), full_page=True)
    with page.expect_navigation():
        page.click("td.exclusion button[type=submit]")
    assert "2 places of tasks they held or answered went back to other raters" in page.content()
    page.screenshot(path=str(shots / "raters-excluded.png"), full_page=True)
    assert all(n == 0 for n in Task.objects.filter(pk__in=answered).values_list("n_assigned", flat=True))
    newcomer = ready_rater(project)  # is offered the tasks again
    assert set(answered) <= set(selectors.tasks_available_to(rater=newcomer).values_list("pk", flat=True))
