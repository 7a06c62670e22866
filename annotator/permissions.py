"""Who may do what: project membership for researchers, the session's rater for raters.

Non-members get 404 (a project's existence is not disclosed); viewers who try to
change something get 403. :func:`project_for_member` raises the domain errors (the API turns them
into JSON); :func:`project_member_or_404` is the same check for server-rendered pages.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from annotator import selectors, sql
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


def rater_from_session(*, request: HttpRequest, project: Project | None = None, slug: str | None = None,
                       flow_state: bool = False) -> Rater | None:
    """The session's rater of ``project`` (or of the project called ``slug``: then the project is loaded
    with the rater, in one query), else None.

    ``flow_state``: also load what :func:`annotator.selectors.rater_next_step` needs (the current consent
    and instructions, whether demographics were answered) in the same query, for a request that asks
    for the rater's next step and writes none of these.
    """
    raters = request.session.get(SESSION_RATERS, {})  # no query with cached sessions (settings.SESSION_ENGINE)
    if project is not None:
        rater_id = raters.get(str(project.pk))
        if not isinstance(rater_id, int):
            return None
        # one hand-written statement: this runs on every rater request (see annotator.sql)
        rater = sql.rater_with_project(rater_ids=[rater_id], project_id=project.pk, flow_state=flow_state)
    else:
        ids = [rater_id for rater_id in raters.values() if isinstance(rater_id, int)]
        if not ids or not slug:
            return None
        rater = sql.rater_with_project(rater_ids=ids, slug=slug, flow_state=flow_state)
    if rater is None or raters.get(str(rater.project_id)) != rater.pk:
        return None
    return rater


def rater_into_session(*, request: HttpRequest, rater: Rater) -> None:
    session = request.session
    raters = dict(session.get(SESSION_RATERS, {}))
    if str(rater.project_id) not in raters:
        session.cycle_key()
    raters[str(rater.project_id)] = rater.pk
    session[SESSION_RATERS] = raters
