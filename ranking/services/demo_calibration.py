"""The metric-calibration demo: a project whose judgments come from simulated raters.

A newcomer's `make run` should show a calibration page with data. Real demo projects stay open for
the person trying PrefLab; this third one is filled once by simulated raters (pseudonyms start with
``SIMULATED``, and the project says so) who judge generated images by a hidden quality that mixes
colourfulness, sharpness and taste, so that some metrics agree with them and others do not. Then
the offline metrics, a Bradley–Terry fit and a calibration report are computed in this process,
through the same services (and job lifecycle) as in production.
"""

from __future__ import annotations

import io
import uuid

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from PIL import Image, ImageDraw, ImageFilter

from annotator import selectors as annotator_selectors
from annotator import services as annotator_services
from annotator.imports import Upload, items_import
from annotator.models import Judgment, Project
from ranking.models import CalibrationReport, CalibrationRound, FitRun
from ranking.services import calibration_reports, fit_runs, metric_runs

SLUG = "demo-calibration"
PROMPTS = ("a red bicycle leaning on a wall", "a lighthouse at dusk", "a bowl of lemons on a blue table",
           "a fox in the snow", "a paper boat on a puddle", "an old tram in the rain", "a cat asleep on a piano",
           "a field of sunflowers under a storm")
MODELS = ("model-a", "model-b", "model-c")
N_RATERS = 12
OFFLINE_METRICS = ["colourfulness", "sharpness_laplacian_var", "resolution_mp", "aspect_ratio", "brisque"]


def _image(rng: np.random.Generator, *, saturation: float, blur: float, size: int) -> bytes:
    base = rng.integers(0, 256, 3)
    grey = base.mean()
    colour = tuple(int(grey + saturation * (c - grey)) for c in base)
    img = Image.new("RGB", (size, size), colour)
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y = (int(v) for v in rng.integers(0, size, 2))
        r = int(rng.integers(8, size // 4))
        tone = rng.integers(0, 256, 3)
        fill = tuple(int(tone.mean() + saturation * (c - tone.mean())) for c in tone)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    if blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _project(owner) -> Project:
    project = annotator_services.project_create(
        owner=owner, name="Demo: metric calibration (simulated raters)", slug=SLUG, overlap=N_RATERS,
        description="Judgments by simulated raters (pseudonyms SIMULATED-…), so that the calibration page has "
                    "data: they prefer colourful, sharp images, with a taste of their own.")
    rng = np.random.default_rng(11)
    uploads, lines = [], ["file,prompt,model"]
    for p, prompt in enumerate(PROMPTS):
        for m in range(5):
            name = f"c{p}_{m}.png"
            data = _image(rng, saturation=float(rng.uniform(0.1, 1.0)), blur=float(rng.choice([0, 0, 1.5, 3])),
                          size=256)
            uploads.append(Upload(name=name, stream=io.BytesIO(data), size=len(data)))
            lines.append(f'{name},"{prompt}",{MODELS[m % len(MODELS)]}')
    manifest = "\n".join(lines).encode()
    items_import(project=project, uploads=uploads,
                 manifest=Upload(name="manifest.csv", stream=io.BytesIO(manifest), size=len(manifest)))
    annotator_services.consent_version_create(project=project, text="Simulated raters; no person took part.")
    annotator_services.instruction_version_create(project=project, text="Pick the better image.", created_by=owner)
    annotator_services.tasks_generate_within_prompt(project=project, random_state=3)
    return project


def _simulate(project: Project) -> int:
    """Simulated raters judge every pair by a BT model on a hidden quality; returns judgments stored."""
    from ranking.models import MetricScore

    scores: dict[str, dict[int, float]] = {}
    for name, item_id, value in (MetricScore.objects.newest().filter(item__project=project)
                                 .values_list("metric__name", "item_id", "value")):
        scores.setdefault(name, {})[item_id] = value

    def z(name):
        values = scores.get(name, {})
        arr = np.array(list(values.values()) or [0.0])
        return {k: (v - arr.mean()) / (arr.std() or 1.0) for k, v in values.items()}

    colour, sharp = z("colourfulness"), z("sharpness_laplacian_var")
    rng = np.random.default_rng(5)
    item_ids = list(project.items.values_list("id", flat=True))
    taste = {i: float(rng.normal(scale=0.7)) for i in item_ids}
    quality = {i: 0.9 * colour.get(i, 0.0) + 0.6 * sharp.get(i, 0.0) + taste[i] for i in item_ids}
    stored = 0
    for k in range(N_RATERS):
        rater, _ = annotator_services.rater_join(project=project, prolific_pid=f"SIMULATED-{k + 1:02d}")
        consent = annotator_selectors.consent_current(project=project)
        annotator_services.rater_consent(rater=rater, consent_version_id=consent.pk)
        annotator_services.demographics_submit(rater=rater, expertise=("artist", "layperson", "designer")[k % 3])
        instruction = annotator_selectors.instruction_current(project=project)
        rater = annotator_services.rater_acknowledge_instructions(rater=rater, instruction_version_id=instruction.pk)
        while (a := annotator_services.assignment_next(rater=rater)) is not None:
            gap = quality[a.left_item_id] - quality[a.right_item_id]
            u = rng.random()
            choice = "tie" if u < 0.08 else ("left" if rng.random() < 1 / (1 + np.exp(-1.2 * gap)) else "right")
            annotator_services.judgment_create(rater=rater, assignment_id=a.pk, choice=choice,
                                               idempotency_key=uuid.uuid4(), instruction_version_id=instruction.pk,
                                               response_time_ms=int(rng.integers(900, 4000)))
            stored += 1
    return stored


#: Rounds the demo's simulated raters have ranked (a fifth waits for the person trying the demo).
DEMO_ROUNDS = 4
DEMO_ROUND_RATERS = 3


def _quality(project: Project) -> dict[int, float]:
    """The simulated raters' hidden quality again (the same mix as :func:`_simulate`, without the taste)."""
    from ranking.models import MetricScore

    scores: dict[str, dict[int, float]] = {}
    for name, item_id, value in (MetricScore.objects.newest().filter(item__project=project)
                                 .values_list("metric__name", "item_id", "value")):
        scores.setdefault(name, {})[item_id] = value
    out = {}
    for name, weight in (("colourfulness", 0.9), ("sharpness_laplacian_var", 0.6)):
        values = scores.get(name, {})
        arr = np.array(list(values.values()) or [0.0])
        for k, v in values.items():
            out[k] = out.get(k, 0.0) + weight * (v - arr.mean()) / (arr.std() or 1.0)
    return out


def _simulate_rounds(project: Project, owner) -> None:
    """A gate on colourfulness at its median, then rounds ranked by simulated crowd raters (by the rounds'
    own links, through the whole rater flow), each with its result; one more round is left for a person."""
    from ranking.models import Metric, MetricScore
    from ranking.services import gates, rounds

    colour = Metric.objects.filter(project__isnull=True, name="colourfulness").first()
    values = list(MetricScore.objects.newest().filter(item__project=project, metric=colour)
                  .values_list("value", flat=True))
    gate = gates.gate_create(project=project, metric=colour, threshold=float(np.median(values)), user=owner,
                             reason="Demo: start at the median colourfulness.")
    quality = _quality(project)
    rng = np.random.default_rng(11)
    consent = annotator_selectors.consent_current(project=project)
    instruction = annotator_selectors.instruction_current(project=project)
    for number in range(DEMO_ROUNDS):
        round_ = rounds.round_create(project=project, user=owner, sample_size=8, raters="crowd",
                                     n_raters=DEMO_ROUND_RATERS, seed=100 + number,
                                     sampling="near_threshold" if number == 0 else "uniform",
                                     gate=gate if number == 0 else None,
                                     note="Demo: ranked by simulated raters (SIMULATED-R…).")
        round_ = rounds.round_start(round_=round_)
        for k in range(DEMO_ROUND_RATERS):
            rater, _ = annotator_services.rater_join(project=project, pool=round_.pool,
                                                     prolific_pid=f"SIMULATED-R{number + 1}-{k + 1}")
            annotator_services.rater_consent(rater=rater, consent_version_id=consent.pk)
            annotator_services.demographics_submit(rater=rater, expertise="layperson")
            rater = annotator_services.rater_acknowledge_instructions(rater=rater,
                                                                      instruction_version_id=instruction.pk)
            a = annotator_services.assignment_next(rater=rater)
            noisy = {i: quality.get(i, 0.0) + rng.gumbel() for i in a.shown_order}
            annotator_services.rank_answer_create(
                rater=rater, assignment_id=a.pk, ranking=sorted(a.shown_order, key=lambda i: -noisy[i]),
                idempotency_key=uuid.uuid4(), instruction_version_id=instruction.pk,
                response_time_ms=int(rng.integers(8000, 30000)))
        rounds.round_close(round_=round_)
        rounds.round_result_compute_now(round_=round_)
    rounds.round_start(round_=rounds.round_create(project=project, user=owner, sample_size=6,
                                                  note="Demo: yours to rank (Rank this round)."))


def demo_calibration_seed() -> dict:
    """Create and fill the calibration demo once (safe to call again). Returns what was done."""
    owner = get_user_model().objects.filter(username="researcher").first()
    if owner is None:
        owner, _ = get_user_model().objects.get_or_create(username="researcher")
    done: dict = {"created": False}
    project = Project.objects.filter(slug=SLUG).first()
    if project is None:
        with transaction.atomic():
            project = _project(owner)
        done["created"] = True
    done["project"] = project
    metric_runs.metric_run_seed(project=project, metrics=OFFLINE_METRICS)
    if not Judgment.objects.filter(project=project).exists():
        done["judgments"] = _simulate(project)
    if not FitRun.objects.filter(project=project, status="succeeded").exists():
        run = fit_runs.fit_run_request(project=project)
        fit_runs.fit_run_execute(fit_run_id=run.pk)
    if not CalibrationReport.objects.filter(project=project, status="succeeded").exists():
        done["report"] = calibration_reports.calibration_report_compute_now(project=project)
    if not CalibrationRound.objects.filter(project=project).exists():
        _simulate_rounds(project, owner)
        done["rounds"] = DEMO_ROUNDS
    return done
