"""Agreement and datasheet pages. Each view checks membership, reads a stored report, renders.

The pages render the latest succeeded :class:`~ranking.models.AgreementReport`; a researcher's
"Recompute" queues a new one for the Celery worker and the pages poll its status. With no report yet,
a small project's first view computes one on request (see ``report_jobs.SYNC_FIRST_VIEW_LIMIT``);
a large one shows a message and the button.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotator.errors import Forbidden, NotFound
from annotator.permissions import project_for_member
from ranking import report_jobs, reports
from ranking.models import AgreementReport


class LimitationsForm(forms.Form):
    limitations = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), required=False, max_length=20000,
                                  help_text="Markdown. Shown in the datasheet and its downloads.")


def _member(request: HttpRequest, slug: str, write: bool = False):
    try:
        return project_for_member(request=request, slug=slug, write=write)
    except NotFound:
        raise Http404("No such project") from None
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from None


def _stored(project) -> dict:
    """The latest succeeded report, the pending one, staleness; computes a small project's first report."""
    latest = report_jobs.agreement_report_latest(project=project)
    pending = report_jobs.agreement_report_pending(project=project)
    if (latest is None and pending is None
            and report_jobs.project_data_size(project=project) < report_jobs.SYNC_FIRST_VIEW_LIMIT):
        latest = report_jobs.agreement_report_compute_now(project=project)
    return {
        "stored": latest, "pending": pending,
        "failed": report_jobs.agreement_report_failed_since(project=project, report=latest),
        "new_data": report_jobs.agreement_report_new_data(report=latest) if latest else None,
    }


@login_required
@require_GET
def agreement(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = _member(request, slug)
    context = {"project": project, "role": role, **_stored(project)}
    if context["stored"] is not None:
        report = reports.agreement_view(result=context["stored"].result, field=request.GET.get("field", "expertise"),
                                        sort=request.GET.get("sort", "controversy"))
        context.update(report=report, icc_chart=reports.icc_chart(likert=report["rich"]["likert"]))
    return render(request, "ranking/agreement.html", context)


@login_required
@require_POST
def agreement_recompute(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _member(request, slug, write=True)
    report = report_jobs.agreement_report_request(project=project)
    messages.success(request, f"Agreement report #{report.pk} queued.")
    back = "ranking_reports:datasheet" if request.POST.get("next") == "datasheet" else "ranking_reports:agreement"
    return redirect(back, slug=slug)


@login_required
@require_GET
def agreement_report_status(request: HttpRequest, slug: str, report_id: int) -> JsonResponse:
    project, _ = _member(request, slug)
    report = get_object_or_404(AgreementReport, pk=report_id, project=project)
    return JsonResponse({"id": report.pk, "status": report.status, "progress": report.progress,
                         "error": report.error})


def _sheet(project, stored: AgreementReport) -> dict:
    return reports.datasheet_view(result=stored.result, project=project, generated_at=stored.finished_at,
                                  report=report_jobs.agreement_report_meta(report=stored))


def _stored_or_404(project) -> AgreementReport:
    stored = _stored(project)["stored"]
    if stored is None:
        raise Http404("No agreement report yet; recompute it on the datasheet page.")
    return stored


@login_required
@require_http_methods(["GET", "POST"])
def datasheet(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = _member(request, slug, write=request.method == "POST")
    form = LimitationsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        reports.datasheet_note_update(project=project, limitations=form.cleaned_data["limitations"])
        messages.success(request, "Known limitations saved.")
        return redirect("ranking_reports:datasheet", slug=slug)
    context = {"project": project, "role": role, "form": form, **_stored(project)}
    if context["stored"] is not None:
        context["sheet"] = _sheet(project, context["stored"])
        context["limitations"] = context["sheet"]["limitations"]
    else:  # no report yet: the limitations can still be read and written
        context["limitations"] = reports.datasheet_limitations(project=project)
    if request.method == "GET":
        context["form"] = LimitationsForm(initial={"limitations": context["limitations"]})
    return render(request, "ranking/datasheet.html", context)


@login_required
@require_GET
def datasheet_markdown(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _member(request, slug)
    text = render_to_string("ranking/datasheet.md", {"sheet": _sheet(project, _stored_or_404(project))})
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-datasheet.md"'
    return response


@login_required
@require_GET
def datasheet_json(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _member(request, slug)
    body = json.dumps(_sheet(project, _stored_or_404(project)), cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-datasheet.json"'
    return response
