"""The calibration page: which automated metrics agree with this project's raters, and how much.

Members read the latest succeeded :class:`~ranking.models.CalibrationReport`; researchers ask for a
new one ("Compute": a small project's in the request, a large one's on a worker, whose progress the
page polls). A GET never writes.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotator.permissions import project_member_or_404
from ranking import presenters, selectors
from ranking.models import CalibrationReport
from ranking.services import calibration_reports


@login_required
@require_GET
def calibration(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_member_or_404(request, slug)
    state = selectors.calibration_report_state(project=project)
    context = {"project": project, "role": role, **state}
    if state["stored"] is not None:
        context.update(presenters.calibration_page(report=state["stored"], sort=request.GET.get("sort", "accuracy"),
                                                   signal=request.GET.get("signal", "bt")))
    return render(request, "ranking/calibration.html", context)


@login_required
@require_POST
def calibration_compute(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_member_or_404(request, slug, write=True)
    report = calibration_reports.calibration_report_ask(project=project)
    messages.add_message(request, *presenters.job_outcome_message(noun="Calibration report", job=report))
    return redirect("ranking:calibration", slug=slug)


@login_required
@require_GET
def calibration_report_status(request: HttpRequest, slug: str, report_id: int) -> JsonResponse:
    project, _ = project_member_or_404(request, slug)
    report = get_object_or_404(CalibrationReport, pk=report_id, project=project)
    return JsonResponse({"id": report.pk, "status": report.status, "progress": report.progress,
                         "error": report.error})
