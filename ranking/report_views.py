"""Agreement and datasheet pages. Each view checks membership, calls ranking.reports, renders."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods

from annotator.errors import Forbidden, NotFound
from annotator.permissions import project_for_member
from ranking import reports


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


@login_required
@require_GET
def agreement(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = _member(request, slug)
    report = reports.agreement_report(project=project, field=request.GET.get("field", "expertise"),
                                      sort=request.GET.get("sort", "controversy"))
    return render(request, "ranking/agreement.html", {
        "project": project, "role": role, "report": report,
        "icc_chart": reports.icc_chart(likert=report["rich"]["likert"]),
    })


@login_required
@require_http_methods(["GET", "POST"])
def datasheet(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = _member(request, slug, write=request.method == "POST")
    form = LimitationsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        reports.datasheet_note_update(project=project, limitations=form.cleaned_data["limitations"])
        messages.success(request, "Known limitations saved.")
        return redirect("ranking_reports:datasheet", slug=slug)
    sheet = reports.datasheet_build(project=project)
    if request.method == "GET":
        form = LimitationsForm(initial={"limitations": sheet["limitations"]})
    return render(request, "ranking/datasheet.html", {"project": project, "role": role, "sheet": sheet,
                                                      "form": form})


@login_required
@require_GET
def datasheet_markdown(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _member(request, slug)
    text = render_to_string("ranking/datasheet.md", {"sheet": reports.datasheet_build(project=project)})
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-datasheet.md"'
    return response


@login_required
@require_GET
def datasheet_json(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = _member(request, slug)
    body = json.dumps(reports.datasheet_build(project=project), cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-datasheet.json"'
    return response
