"""The demo project: generated images with prompts, instructions, consent and pairwise tasks."""

from __future__ import annotations

import io
import math
import random
import secrets

from django.contrib.auth import get_user_model
from django.db import transaction
from PIL import Image, ImageDraw, ImageFilter

from annotator import services
from annotator.imports import Upload, items_import
from annotator.models import Project

DEMO_SLUG = "demo"
RICH_SLUG = "demo-rich"
RICH_INSTRUCTIONS = """\
## Mark what is wrong

For each image:

1. **Click the image** where something looks wrong. Choose the kind first: **A** = artifact or
   implausible (melted shapes, stray blobs, blur), **M** = does not match the prompt. Click a mark again
   to remove it; Ctrl+Z undoes.
2. **Click the prompt words** that the image does not show correctly.
3. **Score** plausibility, text–image alignment, aesthetics and overall from 1 to 5 (press P, T, E or O,
   then 1–5).

Then a short yes/no checklist for some images (Y / N keys).
"""
CHECKLIST = [
    {"id": "subject", "dimension": "alignment", "question": "Is the main subject of the prompt shown?", "required": True},
    {"id": "colours", "dimension": "alignment", "question": "Are the colours the prompt asks for right?", "required": True},
    {"id": "artifacts", "dimension": "fidelity", "question": "Is the image free of stray blobs or distortions?", "required": True},
    {"id": "sharp", "dimension": "aesthetics", "question": "Is the image sharp?", "required": True},
]
PROMPTS = [
    ("a red apple on a wooden table", (200, 40, 40), (150, 100, 60)),
    ("a lighthouse at sunset over a calm sea", (250, 170, 60), (40, 80, 140)),
    ("a green cactus in a blue pot", (60, 160, 70), (50, 90, 200)),
    ("three yellow balloons in a clear sky", (245, 210, 40), (120, 180, 240)),
]
MODELS = ["model-a", "model-b", "model-c"]

INSTRUCTIONS = """\
## Your task

You will see **two images** made by image generators from a text prompt. Choose the image that is
**better overall**: it shows what the prompt asks for, has no visual errors (extra limbs, melted
objects, garbled text), and looks good.

- Press **←** (or click *Left is better*) if the left image is better.
- Press **→** if the right image is better.
- Press **↓** if they are **about the same**. Use it honestly; do not guess.

There are no right answers: we want *your* judgment. Take a few seconds per pair.
"""

CONSENT = """\
This study collects your judgments of AI-generated images for research. Taking part is voluntary;
you may stop at any time. We store your answers, response times and the optional demographic
answers you give, under a pseudonymous id. We never publish information that identifies you.
"""


def render_demo_image(prompt_index: int, model_index: int, rng: random.Random, size: int = 384) -> bytes:
    """A simple synthetic picture whose quality varies by 'model' (blur, noise, clutter)."""
    _, fg, bg = PROMPTS[prompt_index]
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    for y in range(size):
        shade = int(40 * y / size)
        draw.line([(0, y), (size, y)], fill=tuple(max(0, c - shade) for c in bg))
    cx, cy = size // 2 + rng.randint(-40, 40), size // 2 + rng.randint(-30, 30)
    r = size // 5 + rng.randint(-10, 10)
    if prompt_index == 3:
        for k in range(3):
            bx = cx + int(math.cos(k * 2.1) * r)
            by = cy + int(math.sin(k * 2.1) * r * 0.6)
            draw.ellipse([bx - r // 2, by - r // 1.6, bx + r // 2, by + r // 1.6], fill=fg)
            draw.line([(bx, by + r // 1.6), (bx, size - 10)], fill=(90, 90, 90), width=2)
    elif prompt_index == 1:
        draw.rectangle([cx - r // 4, cy - r, cx + r // 4, cy + r * 1.5], fill=(235, 235, 235))
        draw.polygon([(cx - r // 3, cy - r), (cx + r // 3, cy - r), (cx, cy - r * 1.4)], fill=fg)
        draw.rectangle([0, int(size * 0.8), size, size], fill=(30, 60, 110))
    elif prompt_index == 2:
        draw.rectangle([cx - r // 2, cy + r // 2, cx + r // 2, cy + r * 1.3], fill=(50, 90, 200))
        draw.rounded_rectangle([cx - r // 4, cy - r, cx + r // 4, cy + r // 2], radius=r // 4, fill=fg)
    else:
        draw.rectangle([0, int(size * 0.75), size, size], fill=bg)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
        draw.line([(cx, cy - r), (cx + 6, cy - r - 18)], fill=(80, 50, 20), width=4)
    if model_index >= 1:  # weaker 'models': clutter and artifacts
        for _ in range(6 * model_index):
            x, y = rng.randrange(size), rng.randrange(size)
            draw.ellipse([x, y, x + 12, y + 12], fill=tuple(rng.randrange(256) for _ in range(3)))
    if model_index == 2:
        img = img.filter(ImageFilter.GaussianBlur(2.5))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def demo_seed(*, images_per_prompt: int = 5) -> tuple[Project, str]:
    """Create the demo project once; give its researcher a fresh random password every time.

    Returns the project and the researcher's new password (printed by the run command).
    """
    User = get_user_model()
    password = secrets.token_urlsafe(12)
    with transaction.atomic():
        user, _ = User.objects.get_or_create(username="researcher")
        user.set_password(password)
        user.is_staff = True  # the demo's one person runs calibration rounds too (staff only)
        user.save(update_fields=["password", "is_staff"])
        project = Project.objects.filter(slug=DEMO_SLUG).first()
        if project is not None:
            return project, password
        project = services.project_create(owner=user, name="Demo: which image is better?", slug=DEMO_SLUG,
                                          description="Generated images for trying PrefLab.", overlap=3,
                                          tasks_per_rater=12)
        rng = random.Random(7)
        uploads, lines = [], ["file,prompt,model"]
        for p, (prompt, _, _) in enumerate(PROMPTS):
            for m in range(images_per_prompt):
                name = f"p{p}_{MODELS[m % len(MODELS)]}_{m}.png"
                data = render_demo_image(p, m % len(MODELS), rng)
                uploads.append(Upload(name=name, stream=io.BytesIO(data), size=len(data)))
                lines.append(f'{name},"{prompt}",{MODELS[m % len(MODELS)]}')
        manifest = "\n".join(lines).encode()
        items_import(project=project, uploads=uploads,
                     manifest=Upload(name="manifest.csv", stream=io.BytesIO(manifest), size=len(manifest)))
        services.consent_version_create(project=project, text=CONSENT)
        services.instruction_version_create(project=project, text=INSTRUCTIONS, created_by=user)
        services.tasks_generate_within_prompt(project=project, random_state=1)
        services.tasks_generate_random(project=project, budget=20, random_state=2)  # connects the prompts
        _seed_rich(owner=user)
    return project, password


def _seed_rich(*, owner) -> Project:
    """A second demo project: rich feedback (points, words, scores) and checklist tasks on 6 images."""
    project = services.project_create(owner=owner, name="Demo: rich feedback", slug=RICH_SLUG,
                                      description="Mark problems on generated images.", overlap=3)
    rng = random.Random(11)
    uploads, lines = [], ["file,prompt,model"]
    for p, (prompt, _, _) in enumerate(PROMPTS[:3]):
        for m in range(2):
            name = f"rich_p{p}_{MODELS[m]}.png"
            data = render_demo_image(p, m * 2, rng)
            uploads.append(Upload(name=name, stream=io.BytesIO(data), size=len(data)))
            lines.append(f'{name},"{prompt}",{MODELS[m]}')
    manifest = "\n".join(lines).encode()
    items_import(project=project, uploads=uploads,
                 manifest=Upload(name="manifest.csv", stream=io.BytesIO(manifest), size=len(manifest)))
    services.consent_version_create(project=project, text=CONSENT)
    services.instruction_version_create(project=project, text=RICH_INSTRUCTIONS, created_by=owner)
    services.project_feedback_update(project=project, checklist=CHECKLIST)
    services.tasks_generate_single(project=project, kind="rich", random_state=3)
    services.tasks_generate_single(project=project, kind="checklist", random_state=4)
    return project
