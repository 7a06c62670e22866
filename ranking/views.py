"""Ranking pages: leaderboard, fit history with live progress, personal rankings."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from annotator.errors import DomainError
from annotator.models import Rater
from annotator.permissions import project_member_or_404
from ranking import charts, selectors
from ranking.forms import FitRequestForm
from ranking.models import FitModel, FitRun
from ranking.services import fit_runs


@login_required
def leaderboard(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_member_or_404(request, slug)
    fit = selectors.fit_latest(project=project)
    rows = selectors.leaderboard(fit=fit) if fit else []
    hbt = selectors.fit_latest(project=project, model=FitModel.HBT)
    return render(request, "ranking/leaderboard.html", {
        "project": project, "role": role, "fit": fit, "rows": rows, "plot": charts.forest_plot(rows[:60]),
        "hbt": hbt, "hbt_raters": selectors.hbt_raters(fit=hbt)[:50] if hbt else [],
        "pending": selectors.fit_pending(project=project),
    })


@login_required
@require_http_methods(["GET", "POST"])
def fits(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_member_or_404(request, slug, write=request.method == "POST")
    form = FitRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            run = fit_runs.fit_run_request(project=project, model=form.cleaned_data["model"], params=form.params())
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Fit #{run.pk} queued.")
            return redirect("ranking:fits", slug=slug)
    return render(request, "ranking/fits.html", {
        "project": project, "role": role, "form": form, "runs": selectors.fit_runs(project=project),
    })


@login_required
def fit_status(request: HttpRequest, slug: str, fit_id: int) -> JsonResponse:
    project, _ = project_member_or_404(request, slug)
    run = get_object_or_404(FitRun, pk=fit_id, project=project)
    return JsonResponse({"id": run.pk, "status": run.status, "progress": run.progress, "error": run.error})


@login_required
def rater_ranking(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    project, role = project_member_or_404(request, slug)
    rater = Rater.objects.filter(project=project, public_id=public_id).first()
    fit = selectors.fit_latest(project=project, model=FitModel.HBT)
    if rater is None or fit is None:
        raise Http404("No hierarchical fit for this rater")
    rows = selectors.personal_ranking(fit=fit, rater=rater)
    return render(request, "ranking/rater.html", {"project": project, "role": role, "rater": rater, "fit": fit,
                                                  "rows": rows})
