"""Ranking pages: leaderboard, fit history with live progress, personal rankings, automated metrics."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotator.errors import DomainError
from annotator.imports import Upload
from annotator.models import Rater
from annotator.permissions import project_member_or_404
from ranking import charts, presenters, selectors
from ranking.forms import FitRequestForm, MetricImportForm
from ranking.models import FitModel, FitRun, MetricRun
from ranking.services import fit_runs, metric_runs, metric_scores


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
        "models": presenters.model_leaderboard(fit.summary) if fit else None,
    })


@login_required
@require_GET
def model_leaderboard_csv(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_member_or_404(request, slug)
    fit = selectors.fit_latest(project=project)
    if fit is None or not fit.summary.get("model_ranking"):
        raise Http404("No model-level ranking yet")
    response = HttpResponse("".join(presenters.model_leaderboard_csv(fit.summary)), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-models-fit{fit.pk}.csv"'
    return response


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


# Automated metrics ---------------------------------------------------------------------------------


def _metrics_render(request: HttpRequest, project, role, *, form=None, problems=None, n_problems=0,
                    status: int = 200) -> HttpResponse:
    return render(request, "ranking/metrics.html", {
        "project": project, "role": role, "form": form or MetricImportForm(), "problems": problems or [],
        "n_problems": n_problems, **presenters.metrics_page(project=project),
    }, status=status)


@login_required
@require_GET
def metrics(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_member_or_404(request, slug)
    return _metrics_render(request, project, role)


@login_required
@require_POST
def metrics_import(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_member_or_404(request, slug, write=True)
    form = MetricImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _metrics_render(request, project, role, form=form, status=400)
    upload = form.cleaned_data["file"]
    try:
        run = metric_scores.metric_scores_import(
            project=project, upload=Upload(name=upload.name, stream=upload, size=upload.size),
            create=form.cleaned_data["create"], direction=form.cleaned_data["direction"],
            dimension=form.cleaned_data["dimension"], user=request.user)
    except metric_scores.ScoresRejected as exc:
        messages.error(request, f"Nothing was imported: {exc.total} problem{'s' if exc.total != 1 else ''} "
                                "in the file, listed below by line.")
        return _metrics_render(request, project, role, form=form, problems=exc.problems, n_problems=exc.total,
                               status=400)
    except DomainError as exc:
        messages.error(request, exc.message)
        return _metrics_render(request, project, role, form=form, status=400)
    messages.success(request, f"Imported {run.counts['rows']:,} scores of {len(run.counts['metrics'])} "
                              f"metric(s) as run #{run.pk}.")
    return redirect("ranking:metrics", slug=slug)


@login_required
@require_POST
def metrics_compute(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_member_or_404(request, slug, write=True)
    try:
        run = metric_runs.metric_run_request(project=project, metrics=request.POST.getlist("metric"),
                                             user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Computation #{run.pk} of {', '.join(run.params['plugins'])} queued.")
    return redirect("ranking:metrics", slug=slug)


@login_required
@require_GET
def metric_run_status(request: HttpRequest, slug: str, run_id: int) -> JsonResponse:
    project, _ = project_member_or_404(request, slug)
    run = get_object_or_404(MetricRun, pk=run_id, project=project)
    return JsonResponse({"id": run.pk, "status": run.status, "progress": run.progress, "error": run.error})


@login_required
@require_GET
def metric_scores_csv(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    project, _ = project_member_or_404(request, slug)
    response = StreamingHttpResponse(presenters.metric_scores_csv(project=project), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-metric-scores.csv"'
    return response
