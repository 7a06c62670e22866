"""Dataset releases: the page that lists a project's releases and asks for a new one, and the download.

Members see the releases and download them; researchers ask for new ones. A GET never writes.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from annotator.errors import DomainError
from annotator.permissions import project_member_or_404
from ranking.forms import ReleaseForm
from ranking.models import DatasetRelease, JobStatus
from ranking.services import releases


@login_required
@require_http_methods(["GET", "POST"])
def release_list(request: HttpRequest, slug: str) -> HttpResponse:
    project, role = project_member_or_404(request, slug, write=request.method == "POST")
    form = ReleaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            release = releases.release_request(project=project, user=request.user, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Release #{release.pk} queued; this page shows its progress.")
            return redirect("ranking:releases", slug=slug)
    listed = list(DatasetRelease.objects.filter(project=project).select_related("requested_by")[:50])
    for release in listed:  # (name, rows) pairs: a table is named "items", which a template reads as a dict key
        tables = release.manifest.get("tables") or {}  # jsonb does not keep key order: list them in TABLES' order
        release.table_rows = [(name, tables[name]["rows"]) for name in releases.TABLES if name in tables]
    pending = [r for r in listed if r.status in (JobStatus.QUEUED, JobStatus.RUNNING)]
    return render(request, "ranking/releases.html", {
        "project": project, "role": role, "tab": "releases", "form": form, "releases": listed,
        "pending": pending[0] if pending else None, "estimate": releases.release_estimate(project=project)})


@login_required
@require_GET
def release_status(request: HttpRequest, slug: str, release_id: int) -> JsonResponse:
    project, _ = project_member_or_404(request, slug)
    release = get_object_or_404(DatasetRelease, pk=release_id, project=project)
    return JsonResponse({"id": release.pk, "status": release.status, "progress": release.progress,
                         "error": release.error})


@login_required
@require_GET
def release_download(request: HttpRequest, slug: str, release_id: int) -> FileResponse:
    project, _ = project_member_or_404(request, slug)
    release = get_object_or_404(DatasetRelease, pk=release_id, project=project)
    if release.status != JobStatus.SUCCEEDED:
        raise Http404("This release is not ready")
    archive = releases.release_folder(release).with_suffix(".zip")
    if not archive.exists():
        raise Http404("This release's files are gone")
    return FileResponse(archive.open("rb"), as_attachment=True,
                        filename=f"{project.slug}-release-{release.pk}.zip", content_type="application/zip")
