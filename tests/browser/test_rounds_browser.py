"""A staff member runs a calibration round in real Chromium: drafts it on the rounds page, starts it, reads the
instructions, ranks its five images by keyboard into the true order, computes the result, applies the gate
change it proposes with a reason, and finds the new threshold and the reason (with the round) on the gates page.

Screenshots go to ``/tmp/round-shots/`` (or ``PREFLAB_SCREENSHOT_DIR`` when it is set).
"""

import os
import random
from pathlib import Path

import pytest

from annotator import services
from annotator.demo import PROMPTS, render_demo_image
from annotator.models import RankAnswer
from ranking.models import (
    CalibrationRound,
    GateChange,
    GateProposal,
    Metric,
    MetricGate,
    MetricRun,
    MetricScore,
)
from ranking.services import gates as gate_services
from tests.factories import ItemFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-only"  # tests.factories.UserFactory's
N_IMAGES = 20
REASON = "Round 1 of the browser test: the humans split the sample here."


@pytest.fixture
def shots() -> Path:
    folder = Path(os.environ.get("PREFLAB_SCREENSHOT_DIR") or "/tmp/round-shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def archive():
    """20 demo images of one prompt with a known quality (0, −1, …, −19: the first is best; the better ones are
    drawn by the cleaner 'model'); metric 'good' is the quality, 'bad' its reverse; a gate on 'good' at −18.5
    passes all but the worst image, so any sample's bottom half holds images the gate passes."""
    owner = UserFactory()
    staff = UserFactory(is_staff=True, username="sam")
    project = services.project_create(owner=owner, name="Round archive", overlap=1)
    rng = random.Random(7)
    items = [ItemFactory(project=project, prompt=PROMPTS[0][0], source_model=f"model-{k * 3 // N_IMAGES}",
                         original_name=f"apple-{k:02d}.png", width=384, height=384,
                         _data=render_demo_image(0, k * 3 // N_IMAGES, rng))
             for k in range(N_IMAGES)]
    services.consent_version_create(project=project, text="You agree to take part.")
    services.instruction_version_create(project=project, text="Put the images in order, **best first**.",
                                        created_by=owner)
    quality = {item.pk: float(-k) for k, item in enumerate(items)}
    run = MetricRun.objects.create(project=project, source="imported", status="succeeded")
    good = Metric.objects.create(project=project, name="good", direction="higher")
    bad = Metric.objects.create(project=project, name="bad", direction="higher")
    for item in items:
        MetricScore.objects.create(run=run, metric=good, item=item, value=quality[item.pk])
        MetricScore.objects.create(run=run, metric=bad, item=item, value=-quality[item.pk])
    gate = gate_services.gate_create(project=project, metric=good, threshold=-18.5, user=staff,
                                     reason="Start loose.")
    return project, staff, quality, gate


def log_in(page, live_server, user):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/projects/")


def shown_ids(page) -> list[int]:
    return [int(i) for i in page.eval_on_selector_all("#rank-list li", "els => els.map(e => e.dataset.id)")]


def rank_by_keyboard(page, target: list[int]) -> None:
    """Selection sort with the keys only: for each place p, select the image that belongs there by its slot
    number (1–9) and move it left with ← until it reaches p."""
    for place, wanted in enumerate(target):
        slot = shown_ids(page).index(wanted)  # 0-based, ≥ place
        page.keyboard.press(str(slot + 1))
        for _ in range(slot - place):
            page.keyboard.press("ArrowLeft")
        assert shown_ids(page)[: place + 1] == target[: place + 1]


def test_staff_run_a_round_in_the_browser_and_apply_its_proposal(live_server, page, archive, shots, enqueued):
    project, staff, quality, gate = archive
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server, staff)

    # The rounds page: draft a round of five images, uniform, ranked by staff.
    page.goto(f"{live_server.url}/projects/{project.slug}/rounds/")
    assert "No rounds yet." in page.inner_text("body")
    page.fill("#round-form [name=sample_size]", "5")
    page.select_option("#round-form [name=sampling]", "uniform")
    page.select_option("#round-form [name=raters]", "staff")
    page.fill("#round-form [name=note]", "Browser round.")
    page.screenshot(path=str(shots / "rounds.png"), full_page=True)
    page.click("#round-form button[type=submit]")
    page.wait_for_url(f"**/projects/{project.slug}/rounds/1/")
    round_ = CalibrationRound.objects.get()
    assert round_.status == "draft" and round_.sample_size == 5 and round_.created_by_id == staff.pk

    # Start it: the sample is drawn and frozen.
    page.click("#start-round")
    page.wait_for_selector("#rank-round")
    round_.refresh_from_db()
    assert round_.status == "started" and len(round_.item_ids) == 5
    truth = sorted(round_.item_ids, key=lambda i: -quality[i])
    assert "Rank this round" in page.inner_text("#rank-round")

    # Rank: the instructions first, then the five images, by keyboard only.
    page.click("#rank-round")
    page.wait_for_selector("#start-ranking")
    assert "best first" in page.inner_text(".instructions")
    page.click("#start-ranking")
    page.wait_for_function("document.getElementById('rank-app').dataset.state === 'ready'")
    shown = shown_ids(page)
    assert sorted(shown) == sorted(round_.item_ids)
    rank_by_keyboard(page, truth)
    assert shown_ids(page) == truth
    page.screenshot(path=str(shots / "round-rank.png"), full_page=True)
    page.keyboard.press("Enter")
    # Nothing left for this rater: back to the round page.
    page.wait_for_url(f"**/projects/{project.slug}/rounds/1/")
    page.wait_for_selector("#compute-round")
    answer = RankAnswer.objects.get()
    assert answer.ranking == [[i] for i in truth] and answer.shown_order == shown
    assert answer.task.pool_id == round_.pool_id
    assert page.inner_text("#n-rankings") == "1"

    # Compute the result in the request: the consensus, the metrics, the gate's proposal.
    page.click("#compute-round")
    page.wait_for_selector("#round-metrics")
    body = page.text_content("body")  # not inner_text: the headings are upper-cased by the style sheet
    assert "Human consensus" in body and "Kendall" in body
    consensus = [name.strip() for name in page.locator(".round-items li .item-name").all_inner_texts()]
    names = dict(project.items.values_list("id", "original_name"))
    assert consensus == [names[i] for i in truth]
    good_row = page.locator("#round-metrics tbody tr", has_text="good")
    assert good_row.locator("td").nth(2).inner_text().strip() == "1.000"
    bad_row = page.locator("#round-metrics tbody tr", has_text="bad")
    assert bad_row.locator("td").nth(2).inner_text().strip() == "-1.000"
    proposal = GateProposal.objects.get(gate=gate, round=round_)
    assert proposal.status == "pending" and proposal.current_threshold == -18.5
    row = page.locator(f'#round-proposals tr[data-proposal="{proposal.pk}"]')
    assert row.count() == 1 and "Pending" in row.inner_text()
    page.screenshot(path=str(shots / "round-result.png"), full_page=True)

    # Apply it, with a reason.
    row.locator("form", has=page.locator(".apply-proposal")).locator("input[name=reason]").fill(REASON)
    row.locator(".apply-proposal").click()
    page.wait_for_url(f"**/projects/{project.slug}/rounds/1/")
    page.wait_for_selector(".messages li.success")
    assert "applied" in page.inner_text(".messages li.success")
    proposal.refresh_from_db()
    gate.refresh_from_db()
    assert proposal.status == "applied" and gate.threshold == proposal.threshold != -18.5
    # the new threshold separates the humans' top half from the rest of the sample
    result = round_.results.filter(status="succeeded").latest("id").result
    good = set(result["human_good"])
    assert 0 < len(good) < 5
    assert max(quality[i] for i in truth if i not in good) < gate.threshold <= min(quality[i] for i in good)

    # The gates page: the new threshold, and the change in the history with its reason and round.
    page.goto(f"{live_server.url}/projects/{project.slug}/gates/")
    threshold_text = page.inner_text(f'#gates-table tr[data-gate="{gate.pk}"] td.threshold')
    assert "-18.5" not in threshold_text
    assert float(threshold_text.replace("≥", "").strip()) == pytest.approx(gate.threshold, abs=1e-6)
    history = page.locator("#gate-history tbody tr", has_text=REASON)
    assert history.count() == 1
    cells = history.locator("td").all_inner_texts()
    assert cells[4].strip() == str(round_.number) and cells[5].strip() == REASON
    assert "-18.5" in cells[2] and cells[3].strip() == "sam"
    change = GateChange.objects.get(gate=gate, action="threshold")
    assert (change.round_id, change.changed_by_id, change.reason) == (round_.pk, staff.pk, REASON)
    assert MetricGate.objects.get().threshold == gate.threshold
    page.screenshot(path=str(shots / "gates.png"), full_page=True)
    assert errors == []
