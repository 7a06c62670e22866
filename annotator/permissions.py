"""Who may do what: project membership for researchers, the session's rater for raters.

Non-members get 404 (a project's existence is not disclosed); viewers who try to
change something get 403. :func:`project_for_member` raises the domain errors (the API turns them
into JSON); :func:`project_member_or_404` is the same check for server-rendered pages.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from annotator import selectors
from annotator.errors import Forbidden, NotFound
from annotator.models import Project, Rater, Role

SESSION_RATERS = "preflab_raters"


def project_for_member(*, request: HttpRequest, slug: str, write: bool = False) -> tuple[Project, str]:
    """The project if the user is a member (staff see all), else NotFound; Forbidden for viewer writes."""
    project = Project.objects.filter(slug=slug).first()
    role = selectors.project_role(project=project, user=request.user) if project else None
    if project is None or role is None:
        raise NotFound(f"No project '{slug}' that you are a member of.", field="project")
    if write and role != Role.RESEARCHER:
        raise Forbidden("Viewers cannot change this project; ask a researcher of the project.")
    return project, role


def project_member_or_404(request: HttpRequest, slug: str, *, write: bool = False) -> tuple[Project, str]:
    """:func:`project_for_member` for pages: Http404 for non-members, PermissionDenied (403) for viewer writes."""
    try:
        return project_for_member(request=request, slug=slug, write=write)
    except NotFound:
        raise Http404("No such project") from None
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from None


def rater_from_session(*, request: HttpRequest, project: Project) -> Rater | None:
    rater_id = request.session.get(SESSION_RATERS, {}).get(str(project.pk))
    if rater_id is None:
        return None
    return Rater.objects.select_related("project").filter(pk=rater_id, project=project).first()


def rater_into_session(*, request: HttpRequest, rater: Rater) -> None:
    raters = dict(request.session.get(SESSION_RATERS, {}))
    if str(rater.project_id) not in raters:
        request.session.cycle_key()
    raters[str(rater.project_id)] = rater.pk
    request.session[SESSION_RATERS] = raters
