"""Researcher pages. Each view checks membership, calls a service or selector, renders."""

from __future__ import annotations

import csv
import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from annotator import selectors, services
from annotator.consolidation import KIND_COLOURS, item_feedback, project_feedback_summary
from annotator.errors import DomainError
from annotator.forms import (
    FeedbackSettingsForm,
    InstructionForm,
    ProjectForm,
    SingleTaskGenerateForm,
    TaskGenerateForm,
    UploadForm,
)
from annotator.imports import Upload, UploadRejected, items_import
from annotator.models import Item
from annotator.permissions import project_member_or_404


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("annotator:project_list")
    return redirect("login")


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    projects = selectors.projects_for_user(user=request.user)
    return render(request, "researcher/project_list.html", {"projects": projects})


@login_required
@require_http_methods(["GET", "POST"])
def project_create(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.project_create(owner=request.user, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Project “{project.name}” created. Next: upload images.")
            return redirect("annotator:items", slug=project.slug)
    return render(request, "researcher/project_form.html", {"form": form})


@login_required
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_member_or_404(request, slug)
    progress = selectors.project_progress(project=project)
    join_url = request.build_absolute_uri(reverse("join", args=[project.slug, project.join_token]))
    return render(request, "researcher/project_detail.html", {
        "project": project,
        "role": role,
        "progress": progress,
        "join_url": join_url,
        "prolific_url": join_url + "?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}",
        "instruction": selectors.instruction_current(project=project),
        "tasks_chart": [(str(k), n) for k, n in progress.tasks_by_judgments],
        "days_chart": progress.judgments_per_day[-30:],
        "median_response_s": progress.median_response_ms / 1000 if progress.median_response_ms else None,
    })


@login_required
@require_http_methods(["GET", "POST"])
def items(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_member_or_404(request, slug, write=request.method == "POST")
    form = UploadForm(request.POST or None, request.FILES or None)
    problems = []
    if request.method == "POST" and form.is_valid():
        uploads = [Upload(name=f.name, stream=f, size=f.size) for f in request.FILES.getlist("files")]
        manifest = request.FILES.get("manifest")
        try:
            report = items_import(
                project=project, uploads=uploads,
                manifest=Upload(name=manifest.name, stream=manifest, size=manifest.size) if manifest else None,
            )
        except UploadRejected as exc:
            problems = exc.problems
            messages.error(request, "Nothing was imported: fix the files below and upload again.")
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            note = f" ({len(report.already_present)} already present)" if report.already_present else ""
            messages.success(request, f"Imported {len(report.created)} image(s){note}.")
            return redirect("annotator:items", slug=slug)
    page = project.items.order_by("-id")[:200]
    return render(request, "researcher/items.html", {
        "project": project, "role": role, "form": form, "problems": problems, "items": page,
        "n_items": project.items.count(),
    })


@login_required
def item_image(request: HttpRequest, slug: str, item_id: int) -> FileResponse:
    project, _ = project_member_or_404(request, slug)
    item = get_object_or_404(Item, pk=item_id, project=project)
    return FileResponse(item.image.open("rb"), content_type=f"image/{item.image_format.lower()}")


@login_required
@require_http_methods(["GET", "POST"])
def instructions(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_member_or_404(request, slug, write=request.method == "POST")
    current = selectors.instruction_current(project=project)
    form = InstructionForm(request.POST or None, initial={"text": current.text if current else ""})
    if request.method == "POST" and form.is_valid():
        version = services.instruction_version_create(project=project, text=form.cleaned_data["text"],
                                                      created_by=request.user)
        messages.success(request, f"Saved as version {version.version}. Raters will see it before their next task.")
        return redirect("annotator:instructions", slug=slug)
    versions = project.instruction_versions.order_by("-version")
    return render(request, "researcher/instructions.html", {
        "project": project, "role": role, "form": form, "versions": versions, "current": current,
    })


@login_required
@require_http_methods(["GET", "POST"])
def tasks(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_member_or_404(request, slug, write=request.method == "POST")
    form = TaskGenerateForm(request.POST or None, request.FILES or None, initial={"overlap": project.overlap})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            pairs = None
            if data["strategy"] == "pairs":
                if not data.get("pair_list"):
                    raise DomainError("Choose a pair list file.", field="pair_list")
                pairs = _read_pair_list(data["pair_list"])
            created = services.tasks_generate(
                project=project, strategy=data["strategy"], budget=data.get("budget"),
                same_prompt=data.get("same_prompt", False), pairs=pairs, overlap=data.get("overlap"),
            )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Created {created} new pairwise task(s).")
            return redirect("annotator:tasks", slug=slug)
    n_tasks = project.tasks.count()
    return render(request, "researcher/tasks.html", {
        "project": project, "role": role, "form": form, "n_tasks": n_tasks,
        "n_items": project.items.count(),
    })


def _read_pair_list(upload) -> list[tuple[str, str]]:
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DomainError("The pair list must be UTF-8 CSV.", field="pair_list") from None
    rows = [row for row in csv.reader(io.StringIO(text)) if row and any(cell.strip() for cell in row)]
    if rows and rows[0][:2] in (["a", "b"], ["item_a", "item_b"], ["left", "right"]):
        rows = rows[1:]
    bad = next((i for i, row in enumerate(rows, start=1) if len(row) < 2), None)
    if bad:
        raise DomainError(f"Pair list line {bad} needs two columns.", field="pair_list")
    return [(row[0].strip(), row[1].strip()) for row in rows]


# Rich feedback ---------------------------------------------------------------------------------------


@login_required
def item_detail(request: HttpRequest, slug: str, item_id: int) -> HttpResponse:
    """One item: consolidated heatmaps over the image, word votes, every rater's scores."""
    project, role = project_member_or_404(request, slug)
    item = get_object_or_404(Item, pk=item_id, project=project)
    fb = item_feedback(item=item, project=project)
    raters = [a.rater for a in fb.answers]
    radius = project.effective_radius * item.height
    return render(request, "researcher/item.html", {
        "project": project, "role": role, "item": item, "fb": fb, "tab": "feedback",
        "words": [{"word": w, "share": s, "majority": m, "n": round(s * fb.n_raters)}
                  for w, s, m in zip(fb.tokens, fb.word_vote_share, fb.word_majority)],
        "score_rows": [dict(s, values=[s["per_rater"].get(r) for r in raters]) for s in fb.scores],
        "raters": raters,
        "kinds": [{"kind": k, "colour": "rgb({}, {}, {})".format(*KIND_COLOURS[k]),
                   "agreement": fb.heatmap_agreement[k], "max": float(fb.heatmaps[k].max())}
                  for k in KIND_COLOURS],
        "raw_points": [{"rater": a.rater, "points": [
            {"cx": p["x"] * item.width, "cy": p["y"] * item.height, "kind": p["kind"]} for p in a.points]}
            for a in fb.answers],
        "dot_radius": max(item.height * 0.012, 1.0),
        "disk_radius": radius,
    })


def _ordered(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """JSON objects with their keys in a readable order (PostgreSQL's jsonb does not keep it)."""
    return [{k: row[k] for k in keys if k in row} for row in rows]


@login_required
@require_http_methods(["GET", "POST"])
def feedback(request: HttpRequest, slug: str) -> HttpResponse:
    """Rich feedback and checklists: score distributions, annotated images, settings and task generation."""
    project, role = project_member_or_404(request, slug, write=request.method == "POST")
    settings_form = FeedbackSettingsForm(
        request.POST if request.POST.get("form") == "settings" else None,
        initial={"likert_dimensions": _ordered(project.likert_dimensions, ("name", "label", "low", "high", "key")),
                 "checklist": _ordered(project.checklist, ("id", "dimension", "question", "required"))})
    tasks_form = SingleTaskGenerateForm(
        request.POST if request.POST.get("form") == "tasks" else None,
        initial={"kind": "rich", "overlap": project.overlap})
    if request.method == "POST":
        form = settings_form if request.POST.get("form") == "settings" else tasks_form
        if form.is_valid():
            data = form.cleaned_data
            try:
                if form is settings_form:
                    services.project_feedback_update(project=project, likert_dimensions=data["likert_dimensions"],
                                                     checklist=data["checklist"])
                    note = "Saved the scores and checklist questions."
                else:
                    created = services.tasks_generate_single(project=project, kind=data["kind"],
                                                             overlap=data.get("overlap"))
                    note = f"Created {created} new {data['kind']} task(s)."
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, note)
                return redirect("annotator:feedback", slug=slug)
    summary = project_feedback_summary(project=project)
    annotated = (Item.objects.filter(project=project, annotations__isnull=False).distinct().order_by("-id")[:120])
    return render(request, "researcher/feedback.html", {
        "project": project, "role": role, "summary": summary, "annotated": annotated,
        "settings_form": settings_form, "tasks_form": tasks_form,
        "task_counts": dict(project.tasks.values_list("kind").annotate(n=Count("id")).order_by()),
    })
