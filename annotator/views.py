"""Researcher pages. Each view checks membership, calls a service or selector, renders."""

from __future__ import annotations

import csv
import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from annotator import selectors, services
from annotator.consolidation import KIND_COLOURS, item_feedback, project_feedback_summary
from annotator.errors import DomainError
from annotator.forms import (
    CheckForm,
    ChecklistQuestionsFormSet,
    ConsentForm,
    InstructionForm,
    ItemEditForm,
    LikertFormSet,
    MemberAddForm,
    MemberRoleForm,
    ProjectForm,
    SingleTaskGenerateForm,
    StudySettingsForm,
    TaskGenerateForm,
    UploadForm,
)
from annotator.imports import Upload, UploadRejected, items_import
from annotator.models import Item, Membership, Rater, Role
from annotator.permissions import project_member_or_404
from annotator.services.prolific import prolific_summary
from annotator.services.quality import rater_exclude, rater_include


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
    form = ProjectForm(*_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            project = services.project_create(owner=request.user, is_open=False, **form.cleaned_data)
        except DomainError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"Project “{project.name}” created (closed to raters). Next: upload images, "
                                      "write the consent text and instructions, make tasks, then open it in Settings.")
            return redirect("annotator:items", slug=project.slug)
    return render(request, "researcher/project_form.html", {"form": form}, status=_status(request, form))


def _posted(request: HttpRequest, *, files: bool = False) -> tuple:
    """A form's data arguments: bound to what was posted (even nothing) on POST, unbound on GET."""
    if request.method != "POST":
        return (None, None) if files else (None,)
    return (request.POST, request.FILES) if files else (request.POST,)


def _form_error(form, exc: DomainError) -> None:
    """A service's refusal shown on the field it names (or above the form)."""
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


def _status(request: HttpRequest, *forms, error: DomainError | None = None) -> int:
    """200, or for a refused POST the 4xx of the refusal (400 for a form that did not validate)."""
    if error is not None:
        return error.status
    if request.method == "POST" and any(f.is_bound and not f.is_valid() for f in forms):
        return 400
    return 200


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
        "readiness": selectors.project_readiness(project=project),
        "tasks_chart": [(str(k), n) for k, n in progress.tasks_by_judgments],
        "days_chart": progress.judgments_per_day[-30:],
        "median_response_s": progress.median_response_ms / 1000 if progress.median_response_ms else None,
    })


@login_required
@require_http_methods(["GET", "POST"])
def items(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_member_or_404(request, slug, write=request.method == "POST")
    form = UploadForm(*_posted(request, files=True))
    problems, refused = [], None
    if request.method == "POST" and form.is_valid():
        uploads = [Upload(name=f.name, stream=f, size=f.size) for f in form.cleaned_data["files"]]
        manifest = form.cleaned_data.get("manifest")
        try:
            report = items_import(
                project=project, uploads=uploads,
                manifest=Upload(name=manifest.name, stream=manifest, size=manifest.size) if manifest else None,
            )
        except UploadRejected as exc:
            problems, refused = exc.problems, exc
            messages.error(request, "Nothing was imported: fix the files below and upload again.")
        except DomainError as exc:
            refused = exc
            _form_error(form, exc)
        else:
            notes = []
            if report.already_present:
                notes.append(f"{len(report.already_present)} already present")
            if report.updated:
                notes.append(f"{len(report.updated)} earlier image(s) updated from the manifest")
            note = f" ({'; '.join(notes)})" if notes else ""
            messages.success(request, f"Imported {len(report.created)} image(s){note}.")
            return redirect("annotator:items", slug=slug)
    show = request.GET.get("show", "active")
    listed = project.items.order_by("-id")
    listed = listed.filter(retired_at__isnull=show != "retired")
    return render(request, "researcher/items.html", {
        "project": project, "role": role, "form": form, "problems": problems, "items": listed[:200],
        "n_items": project.items.filter(retired_at__isnull=True).count(),
        "n_retired": project.items.filter(retired_at__isnull=False).count(), "show": show,
    }, status=_status(request, form, error=refused))


@login_required
@require_http_methods(["GET", "POST"])
def item_edit(request: HttpRequest, slug: str, item_id: int) -> HttpResponse:
    """An image's prompt, model and metadata; retire or restore it."""
    project, role = project_member_or_404(request, slug, write=request.method == "POST")
    item = get_object_or_404(Item, pk=item_id, project=project)
    form = ItemEditForm(*_posted(request),
                        initial={"prompt": item.prompt, "source_model": item.source_model, "metadata": item.metadata})
    refused = None
    if request.method == "POST" and form.is_valid():
        try:
            services.item_update(item=item, **form.cleaned_data)
        except DomainError as exc:
            refused = exc
            _form_error(form, exc)
        else:
            messages.success(request, f"Saved {item.original_name}.")
            return redirect("annotator:item_edit", slug=slug, item_id=item.pk)
    if role != Role.RESEARCHER:
        for field in form.fields.values():
            field.disabled = True
    return render(request, "researcher/item_edit.html", {
        "project": project, "role": role, "item": item, "form": form,
        "usage": selectors.item_usage(item=item),
    }, status=_status(request, form, error=refused))


@login_required
@require_POST
def item_retire(request: HttpRequest, slug: str, item_id: int) -> HttpResponse:
    project, _ = project_member_or_404(request, slug, write=True)
    item = get_object_or_404(Item, pk=item_id, project=project)
    services.item_retire(item=item)
    messages.success(request, f"Retired {item.original_name}: it is in no new task and no longer shown to raters; "
                              "its judgments are kept.")
    return redirect("annotator:item_edit", slug=slug, item_id=item.pk)


@login_required
@require_POST
def item_restore(request: HttpRequest, slug: str, item_id: int) -> HttpResponse:
    project, _ = project_member_or_404(request, slug, write=True)
    item = get_object_or_404(Item, pk=item_id, project=project)
    services.item_restore(item=item)
    messages.success(request, f"Restored {item.original_name}: its tasks are handed out again.")
    return redirect("annotator:item_edit", slug=slug, item_id=item.pk)


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
    form = InstructionForm(*_posted(request), initial={"text": current.text if current else ""})
    refused = None
    if request.method == "POST" and form.is_valid():
        try:
            version = services.instruction_version_create(project=project, text=form.cleaned_data["text"],
                                                          created_by=request.user)
        except DomainError as exc:
            refused = exc
            _form_error(form, exc)
        else:
            messages.success(request, f"Saved as version {version.version}. Raters will see it before their next "
                                      "task.")
            return redirect("annotator:instructions", slug=slug)
    versions = project.instruction_versions.order_by("-version")
    return render(request, "researcher/instructions.html", {
        "project": project, "role": role, "form": form, "versions": versions, "current": current,
    }, status=_status(request, form, error=refused))


@login_required
@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest, slug: str) -> HttpResponse:
    """The consent text raters must agree to before anything else; each save is a new version."""
    project, role = project_member_or_404(request, slug, write=request.method == "POST")
    current = selectors.consent_current(project=project)
    form = ConsentForm(*_posted(request), initial={"text": current.text if current else ""})
    refused = None
    if request.method == "POST" and form.is_valid():
        try:
            version = services.consent_version_create(project=project, text=form.cleaned_data["text"],
                                                      created_by=request.user)
        except DomainError as exc:
            refused = exc
            _form_error(form, exc)
        else:
            if current is not None and version.pk == current.pk:
                messages.info(request, "The text is unchanged: no new version.")
            else:
                messages.success(request, f"Saved as version {version.version}. Raters are asked to agree to it "
                                          "before their next page.")
            return redirect("annotator:consent", slug=slug)
    versions = project.consent_versions.annotate(n_raters=Count("rater")).order_by("-version")
    return render(request, "researcher/consent.html", {
        "project": project, "role": role, "form": form, "versions": versions, "current": current,
    }, status=_status(request, form, error=refused))


@login_required
@require_http_methods(["GET", "POST"])
def tasks(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_member_or_404(request, slug, write=request.method == "POST")
    form = TaskGenerateForm(*_posted(request, files=True), initial={"overlap": project.overlap})
    refused = None
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
                k=data.get("k"), n_tasks=data.get("n_tasks"), target=data.get("target") or "items",
            )
        except DomainError as exc:
            refused = exc
            _form_error(form, exc)
        else:
            kind = "rank" if data["strategy"] == "rank" else "pairwise"
            messages.success(request, f"Created {created} new {kind} task(s).")
            return redirect("annotator:tasks", slug=slug)
    counts = dict(project.tasks.filter(kind__in=["pairwise", "rank"], check_kind="").values_list("kind")
                  .annotate(n=Count("id")).order_by())
    return render(request, "researcher/tasks.html", {
        "project": project, "role": role, "form": form, "n_tasks": counts.get("pairwise", 0),
        "n_rank_tasks": counts.get("rank", 0),
        "n_items": project.items.filter(retired_at__isnull=True).count(),
    }, status=_status(request, form, error=refused))


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


# Quality checks --------------------------------------------------------------------------------------

#: At most this many images are offered in the checks form's image lists (newest first).
CHECK_FORM_ITEMS = 2000


@login_required
@require_http_methods(["GET", "POST"])
def checks(request: HttpRequest, slug: str) -> HttpResponse:
    """Gold pairs and attention checks: make one, see how raters did on each, retire one."""
    project, role = project_member_or_404(request, slug, write=request.method == "POST")
    items = list(project.items.filter(retired_at__isnull=True).order_by("-id")
                 .only("id", "original_name")[:CHECK_FORM_ITEMS])
    form = CheckForm(*_posted(request), items=items)
    refused = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            check = services.check_create(project=project, kind=data["kind"], left_item_id=data["left_item"],
                                          right_item_id=data["right_item"], answer=data["answer"],
                                          instruction=data["instruction"])
        except DomainError as exc:
            refused = exc
            _form_error(form, exc)
        else:
            messages.success(request, f"Made {check.get_check_kind_display().lower()} #{check.pk}.")
            return redirect("annotator:checks", slug=slug)
    return render(request, "researcher/checks.html", {
        "project": project, "role": role, "form": form, "overview": selectors.checks_overview(project=project),
        "editable": role == Role.RESEARCHER,
    }, status=_status(request, form, error=refused))


@login_required
@require_POST
def check_retire(request: HttpRequest, slug: str, check_id: int) -> HttpResponse:
    project, _ = project_member_or_404(request, slug, write=True)
    try:
        check = services.check_retire(project=project, check_id=check_id)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("annotator:checks", slug=slug)
    messages.success(request, f"Retired check #{check.pk}: no new rater is shown it; its answers are kept.")
    return redirect("annotator:checks", slug=slug)


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


@login_required
@require_http_methods(["GET", "POST"])
def feedback(request: HttpRequest, slug: str) -> HttpResponse:
    """Rich feedback and checklists: score distributions, annotated images and task generation (the
    scores and checklist questions themselves are edited on the settings page)."""
    project, role = project_member_or_404(request, slug, write=request.method == "POST")
    tasks_form = SingleTaskGenerateForm(*_posted(request), initial={"kind": "rich", "overlap": project.overlap})
    refused = None
    if request.method == "POST" and tasks_form.is_valid():
        data = tasks_form.cleaned_data
        try:
            created = services.tasks_generate_single(project=project, kind=data["kind"], overlap=data.get("overlap"))
        except DomainError as exc:
            refused = exc
            _form_error(tasks_form, exc)
        else:
            messages.success(request, f"Created {created} new {data['kind']} task(s).")
            return redirect("annotator:feedback", slug=slug)
    summary = project_feedback_summary(project=project)
    annotated = (Item.objects.filter(project=project, annotations__isnull=False).distinct().order_by("-id")[:120])
    return render(request, "researcher/feedback.html", {
        "project": project, "role": role, "summary": summary, "annotated": annotated, "tasks_form": tasks_form,
        "task_counts": dict(project.tasks.filter(check_kind="").values_list("kind").annotate(n=Count("id"))
                            .order_by()),
    }, status=_status(request, tasks_form, error=refused))


# Settings ---------------------------------------------------------------------------------------------

_SETTINGS_FIELDS = tuple(StudySettingsForm.base_fields)


@login_required
@require_http_methods(["GET", "POST"])
def project_settings(request: HttpRequest, slug: str) -> HttpResponse:
    """The study's settings, its rich-feedback scores and its checklist questions: three forms, each saved
    on its own (``form`` = study, likert or checklist)."""
    project, role = project_member_or_404(request, slug, write=request.method == "POST")
    which = request.POST.get("form") if request.method == "POST" else None
    if which not in (None, "study", "likert", "checklist"):
        return HttpResponseBadRequest("Unknown settings form: send form=study, likert or checklist.")
    study = StudySettingsForm(request.POST if which == "study" else None,
                              initial={name: getattr(project, name) for name in _SETTINGS_FIELDS})
    likert = LikertFormSet(request.POST if which == "likert" else None, prefix="likert",
                           initial=project.likert_dimensions)
    checklist = ChecklistQuestionsFormSet(request.POST if which == "checklist" else None, prefix="checklist",
                                          initial=project.checklist)
    refused, errors = None, {"likert": None, "checklist": None}
    if which == "study" and study.is_valid():
        try:
            services.project_update(project=project, **study.cleaned_data)
        except DomainError as exc:
            refused = exc
            _form_error(study, exc)
        else:
            messages.success(request, "Saved the study settings.")
            return redirect(reverse("annotator:settings", args=[slug]) + "#study")
    elif which in ("likert", "checklist"):
        formset = likert if which == "likert" else checklist
        if formset.is_valid():
            try:
                if which == "likert":
                    services.project_feedback_update(project=project, likert_dimensions=formset.rows())
                else:
                    services.project_feedback_update(project=project, checklist=formset.rows())
            except DomainError as exc:
                refused = exc
                errors[which] = exc.message
            else:
                messages.success(request, "Saved the scores." if which == "likert" else
                                 "Saved the checklist questions.")
                return redirect(reverse("annotator:settings", args=[slug]) + f"#{which}")
    if role != Role.RESEARCHER:
        for form in (study, *likert.forms, *checklist.forms):
            for field in form.fields.values():
                field.disabled = True
    return render(request, "researcher/settings.html", {
        "project": project, "role": role, "study": study, "likert": likert, "checklist": checklist,
        "errors": errors, "readiness": selectors.project_readiness(project=project),
        "editable": role == Role.RESEARCHER,
        "n_rich_answers": project.annotations.count(),
    }, status=_status(request, study, likert, checklist, error=refused))


# Team -------------------------------------------------------------------------------------------------


def _team_page(request, project, role, *, form, row_errors=None, status=200) -> HttpResponse:
    members = selectors.project_members(project=project)
    rows = [{"membership": m, "is_owner": m.user_id == project.owner_id, "error": (row_errors or {}).get(m.pk),
             "form": MemberRoleForm(initial={"role": m.role}, prefix=f"m{m.pk}")} for m in members]
    return render(request, "researcher/team.html", {
        "project": project, "role": role, "form": form, "rows": rows,
    }, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def team(request: HttpRequest, slug: str) -> HttpResponse:
    """Who works on the project, with their role; researchers add members by username or email."""
    project, role = project_member_or_404(request, slug, write=request.method == "POST")
    form = MemberAddForm(*_posted(request))
    refused = None
    if request.method == "POST" and form.is_valid():
        try:
            membership = services.membership_add(project=project, user_reference=form.cleaned_data["user"],
                                                 role=form.cleaned_data["role"])
        except DomainError as exc:
            refused = exc
            _form_error(form, exc)
        else:
            messages.success(request, f"Added {membership.user.get_username()} as "
                                      f"{membership.get_role_display().lower()}.")
            return redirect("annotator:team", slug=slug)
    return _team_page(request, project, role, form=form, status=_status(request, form, error=refused))


@login_required
@require_POST
def member_change(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    project, role = project_member_or_404(request, slug, write=True)
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=membership_id, project=project)
    form = MemberRoleForm(request.POST, prefix=f"m{membership.pk}")
    if not form.is_valid():
        return _team_page(request, project, role, form=MemberAddForm(), status=400,
                          row_errors={membership.pk: "Choose a role: researcher or viewer."})
    try:
        services.membership_change(membership=membership, role=form.cleaned_data["role"])
    except DomainError as exc:
        return _team_page(request, project, role, form=MemberAddForm(), status=exc.status,
                          row_errors={membership.pk: exc.message})
    messages.success(request, f"{membership.user.get_username()} is now a {form.cleaned_data['role']}.")
    return redirect("annotator:team", slug=slug)


@login_required
@require_POST
def member_remove(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    project, role = project_member_or_404(request, slug, write=True)
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=membership_id, project=project)
    try:
        services.membership_remove(membership=membership)
    except DomainError as exc:
        return _team_page(request, project, role, form=MemberAddForm(), status=exc.status,
                          row_errors={membership.pk: exc.message})
    messages.success(request, f"Removed {membership.user.get_username()} from the project.")
    if membership.user_id == request.user.pk and not request.user.is_staff:
        return redirect("annotator:project_list")
    return redirect("annotator:team", slug=slug)


# Raters -----------------------------------------------------------------------------------------------


def _raters_page(request: HttpRequest, project, role, *, error: DomainError | None = None,
                 error_rater: str = "") -> HttpResponse:
    search = request.GET.get("q", "")[:64]
    listed = selectors.raters_of_project(project=project, search=search, by_crowd_ids=role == Role.RESEARCHER)
    page = Paginator(listed, 100).get_page(request.GET.get("page"))
    quality = selectors.rater_quality_by_rater(project=project)
    flagged = sum(q.flagged for q in quality.values())
    return render(request, "researcher/raters.html", {
        "project": project, "role": role, "page": page,
        "rows": selectors.rater_rows(raters=page.object_list, quality=quality),
        "search": search, "statuses": selectors.RATER_STATUSES, "show_crowd_ids": role == Role.RESEARCHER,
        "can_exclude": role == Role.RESEARCHER, "n_raters": project.raters.count(), "n_flagged": flagged,
        "n_excluded": project.raters.filter(excluded_at__isnull=False).count(),
        "n_screened_out": selectors.raters_screened_out_count(project=project),
        "thresholds": selectors.QUALITY_THRESHOLDS, "history": selectors.rater_exclusion_history(project=project),
        "error": error, "error_rater": error_rater,
        "prolific": prolific_summary(project=project) if role == Role.RESEARCHER else None,
    }, status=error.status if error is not None else 200)


@login_required
def raters(request: HttpRequest, slug: str) -> HttpResponse:
    """Every rater with their answers, time spent and quality flags; crowd ids, the CSV and exclusion for
    researchers only."""
    project, role = project_member_or_404(request, slug)
    return _raters_page(request, project, role)


@login_required
@require_POST
def rater_exclusion(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    """Exclude a rater from fits and statistics, or include them again (``action``), with a ``reason``."""
    project, role = project_member_or_404(request, slug, write=True)
    rater = get_object_or_404(Rater, project=project, public_id=public_id)
    action = request.POST.get("action", "")
    change = {"exclude": rater_exclude, "include": rater_include}.get(action)
    if change is None:
        return HttpResponseBadRequest("action must be exclude or include.")
    extra = {"release_places": request.POST.get("release_places") == "on"} if action == "exclude" else {}
    try:
        entry = change(rater=rater, by_user=request.user, reason=request.POST.get("reason", ""), **extra)
    except DomainError as exc:
        return _raters_page(request, project, role, error=exc, error_rater=rater.public_id)
    if action == "exclude":
        n = entry.places_given_back
        given_back = (f" {n} place{pluralize(n)} of tasks they held or answered went back to other raters."
                      if extra["release_places"] else "")
        messages.success(request, f"Excluded rater {rater.public_id}: their answers are left out of fits (a refit "
                                  "was requested) and of reports computed from now on, and they get no more tasks."
                                  f"{given_back} Recompute the agreement report to update it.")
    else:
        messages.success(request, f"Included rater {rater.public_id} again: their answers count in the next fit "
                                  "(requested) and report.")
    return redirect("annotator:raters", slug=slug)


#: The raters CSV: one row per rater, for approving, rejecting and paying crowd participants, with the
#: quality figures and flags of the raters page and whether the rater is excluded.
RATER_CSV_COLUMNS = (
    "rater", "source", "prolific_pid", "study_id", "session_id", "status", "answers", "repeats",
    "time_on_tasks_s", "elapsed_s", "joined_at", "consented_at", "consent_declined_at", "completed_at",
    "last_answer_at", "decisive_answers", "left_share", "position_p_holm", "timed_answers", "fast_share",
    "likert_answers", "identical_share", "quality_flags", "quality_reasons", "checks_answered", "checks_passed",
    "check_pass_rate", "failed_checks", "excluded", "excluded_at", "excluded_reason", "screened_out", "decision",
    "bonus",
)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _iso(value) -> str:
    return value.isoformat() if value else ""


def _number(value, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def _quality_cells(q) -> list[str]:
    """The CSV's quality columns, from ``decisive_answers`` to ``quality_reasons`` (blank: not measured)."""
    if q is None:
        return [""] * 9
    return [str(q.n_decisive), _number(q.left_share, ".3f"), _number(q.position_p_adjusted, ".3g"), str(q.n_timed),
            _number(q.fast_share, ".3f"), str(q.n_likert), _number(q.identical_share, ".3f"),
            " ".join(q.flag_codes), "; ".join(q.reasons)]


@login_required
def raters_csv(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    """Every rater as CSV (streamed), with empty ``decision`` and ``bonus`` columns to fill in."""
    project, _ = project_member_or_404(request, slug, write=True)  # crowd ids: researchers only
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(RATER_CSV_COLUMNS)
        for r in selectors.rater_rows_all(project=project):
            yield writer.writerow([
                r.public_id, r.source, r.prolific_pid, r.study_id, r.session_id, r.status, r.n_answers,
                r.n_repeats, f"{r.time_on_tasks_s:.1f}", "" if r.elapsed_s is None else f"{r.elapsed_s:.1f}",
                _iso(r.joined_at), _iso(r.consented_at), _iso(r.consent_declined_at), _iso(r.completed_at),
                _iso(r.last_answer_at), *_quality_cells(r.quality), r.n_checks, r.n_checks_passed,
                _number(r.check_pass_rate, ".3f"), "yes" if r.failed_checks else "no",
                "yes" if r.excluded_at else "no", _iso(r.excluded_at), r.excluded_reason,
                "yes" if r.screened_out else "no", "", "",
            ])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-raters.csv"'
    return response
