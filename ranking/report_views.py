"""Agreement and datasheet pages. Each view checks membership, reads a stored report, renders.

The pages render the latest succeeded :class:`~ranking.models.AgreementReport`. "Compute" (a POST)
computes a small project's report in the request and queues a large one for the Celery worker,
whose progress the pages poll. A GET never writes.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotator.permissions import project_member_or_404
from ranking import presenters, selectors
from ranking.models import AgreementReport
from ranking.services import agreement_reports


class LimitationsForm(forms.Form):
    limitations = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), required=False, max_length=20000,
                                  help_text="Markdown. Shown in the datasheet and its downloads.")


@login_required
@require_GET
def agreement(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_member_or_404(request, slug)
    context = {"project": project, "role": role, **selectors.agreement_report_state(project=project)}
    if context["stored"] is not None:
        context.update(presenters.agreement_page(report=context["stored"],
                                                 field=request.GET.get("field", "expertise"),
                                                 sort=request.GET.get("sort", "controversy")))
    return render(request, "ranking/agreement.html", context)


@login_required
@require_POST
def agreement_recompute(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_member_or_404(request, slug, write=True)
    report = agreement_reports.agreement_report_ask(project=project)
    messages.add_message(request, *presenters.job_outcome_message(noun="Agreement report", job=report))
    back = "ranking_reports:datasheet" if request.POST.get("next") == "datasheet" else "ranking_reports:agreement"
    return redirect(back, slug=slug)


@login_required
@require_GET
def agreement_report_status(request: HttpRequest, slug: str, report_id: int) -> JsonResponse:
    project, _ = project_member_or_404(request, slug)
    report = get_object_or_404(AgreementReport, pk=report_id, project=project)
    return JsonResponse({"id": report.pk, "status": report.status, "progress": report.progress,
                         "error": report.error})


def _stored_or_404(project) -> AgreementReport:
    stored = selectors.agreement_report_latest(project=project)
    if stored is None:
        raise Http404("No agreement report yet; compute it on the datasheet page.")
    return stored


@login_required
@require_http_methods(["GET", "POST"])
def datasheet(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_member_or_404(request, slug, write=request.method == "POST")
    form = LimitationsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        agreement_reports.datasheet_note_update(project=project, limitations=form.cleaned_data["limitations"])
        messages.success(request, "Known limitations saved.")
        return redirect("ranking_reports:datasheet", slug=slug)
    context = {"project": project, "role": role, "form": form, **selectors.agreement_report_state(project=project)}
    if context["stored"] is not None:
        context["sheet"] = presenters.datasheet(project=project, report=context["stored"])
        context["limitations"] = context["sheet"]["limitations"]
    else:  # no report yet: the limitations can still be read and written
        context["limitations"] = selectors.datasheet_limitations(project=project)
    if request.method == "GET":
        context["form"] = LimitationsForm(initial={"limitations": context["limitations"]})
    return render(request, "ranking/datasheet.html", context)


@login_required
@require_GET
def datasheet_markdown(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_member_or_404(request, slug)
    sheet = presenters.datasheet(project=project, report=_stored_or_404(project))
    text = render_to_string("ranking/datasheet.md", {"sheet": sheet})
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-datasheet.md"'
    return response


@login_required
@require_GET
def datasheet_json(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_member_or_404(request, slug)
    sheet = presenters.datasheet(project=project, report=_stored_or_404(project))
    body = json.dumps(sheet, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-datasheet.json"'
    return response
