"""The rater flow: join → consent → demographics → instructions → tasks → completion.

Raters are anonymous: the session remembers which rater they are in each project.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from annotator import selectors, services
from annotator.errors import Conflict, DomainError
from annotator.forms import DemographicsForm
from annotator.models import Item, Project, TaskPool
from annotator.permissions import rater_from_session, rater_into_session
from annotator.throttles import JoinThrottle


def _rater_or_join(request: HttpRequest, slug: str):
    project = get_object_or_404(Project, slug=slug)
    rater = rater_from_session(request=request, project=project)
    return project, rater


def _error_page(request, message: str, status: int) -> HttpResponse:
    return render(request, "rater/message.html", {"title": "Sorry", "message": message}, status=status)


def _with_code(url: str, code: str) -> str:
    """``url`` with ``cc=code`` (replacing a ``cc`` it had): how crowd platforms take a participant back."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "cc"] + [("cc", code)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _is_crowd(request: HttpRequest, rater=None) -> bool:
    return bool(request.GET.get("PROLIFIC_PID")) or (rater is not None and bool(rater.prolific_pid))


def _sent_back(request: HttpRequest, project: Project, *, code: str, title: str, message: str, code_note: str,
               status: int = 200) -> HttpResponse:
    """The end of the road without the completion code: a crowd participant is sent back to the platform with
    ``code`` when there is one and a completion URL; anyone else is shown ``message`` (and ``code``)."""
    if code and project.completion_redirect_url:
        return HttpResponseRedirect(_with_code(project.completion_redirect_url, code))
    return render(request, "rater/message.html", {"title": title, "message": message, "code": code,
                                                  "code_note": code_note}, status=status)


def _no_places(request: HttpRequest, project: Project, *, crowd: bool, status: int = 200) -> HttpResponse:
    """A latecomer to a full study: told so (never given a completion code); a crowd participant is sent
    back to the platform with the project's "no places" code when it has one and a completion URL."""
    return _sent_back(
        request, project, code=project.no_places_code if crowd else "", status=status,
        title="This study is full",
        message="Sorry: every place in this study has been taken, so there is nothing for you to do. "
                "Thank you for your interest.",
        code_note="Return to the study platform and enter this code, or return the study.")


def _screened_out(request: HttpRequest, project: Project, *, crowd: bool) -> HttpResponse:
    """A rater screened out after failed quality checks: never given the completion code; a crowd participant
    is sent back to the platform with the project's "screened out" code when it has one and a completion URL."""
    return _sent_back(
        request, project, code=project.screened_out_code if crowd else "", title="Thank you",
        message="Your session has ended: some of your answers to the study's attention and quality checks did "
                "not match what was asked, so there are no more tasks for you. Thank you for your time.",
        code_note="Return to the study platform and enter this code.")


def join(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    """A study link: the project's own (``join_token``), or a task pool's (a calibration round's crowd link)."""
    project = Project.objects.filter(slug=slug, join_token=token).first()
    pool = None
    if project is None:
        pool = TaskPool.objects.select_related("project").filter(project__slug=slug, join_token=token).first()
        project = pool.project if pool is not None else None
    if project is None:
        return _error_page(request, "This link is not valid. Check the link you were given.", 404)
    pid = request.GET.get("PROLIFIC_PID", "")
    rater = rater_from_session(request=request, project=project)
    pool_id = pool.pk if pool is not None else None
    if rater is None or (pid and rater.prolific_pid != pid) or rater.pool_id != pool_id:
        throttle = JoinThrottle()
        if not throttle.allow_request(request, None):
            return _error_page(request, "Too many attempts to join from here; please wait a minute.", 429)
        try:
            rater, _ = services.rater_join(
                project=project, prolific_pid=pid, study_id=request.GET.get("STUDY_ID", ""),
                session_id=request.GET.get("SESSION_ID", ""), pool=pool,
            )
        except Conflict as exc:
            if exc.code == "study_full":
                return _no_places(request, project, crowd=bool(pid), status=exc.status)
            return _error_page(request, exc.message, exc.status)
        except DomainError as exc:
            return _error_page(request, exc.message, exc.status)
        rater_into_session(request=request, rater=rater)
    return redirect("rater:flow", slug=slug)


def flow(request: HttpRequest, slug: str) -> HttpResponse:
    project, rater = _rater_or_join(request, slug)
    if rater is None:
        return _error_page(request, "Please open the study link you were given to join.", 403)
    if selectors.rater_without_places(rater=rater):
        return _no_places(request, project, crowd=_is_crowd(request, rater))
    return redirect(f"rater:{selectors.rater_next_step(rater=rater)}", slug=slug)


@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest, slug: str) -> HttpResponse:
    project, rater = _rater_or_join(request, slug)
    if rater is None:
        return _error_page(request, "Please open the study link you were given to join.", 403)
    current = selectors.consent_current(project=project)
    if current is None:
        return redirect("rater:flow", slug=slug)
    if request.method == "POST":
        try:
            version_id = int(request.POST.get("consent_version", 0))
        except ValueError:
            return redirect("rater:consent", slug=slug)
        if request.POST.get("decision") != "agree":
            return _declined(request, project, rater, version_id)
        try:
            services.rater_consent(rater=rater, consent_version_id=version_id)
        except DomainError:
            return redirect("rater:consent", slug=slug)
        return redirect("rater:flow", slug=slug)
    if selectors.rater_without_places(rater=rater):
        return _no_places(request, project, crowd=_is_crowd(request, rater))
    return render(request, "rater/consent.html", {"project": project, "consent": current})


def _declined(request: HttpRequest, project: Project, rater, version_id: int) -> HttpResponse:
    """A rater who does not consent: recorded; a crowd participant is sent back with the project's
    "consent declined" code when it has one and a completion URL."""
    try:
        services.rater_consent_decline(rater=rater, consent_version_id=version_id)
    except DomainError:
        return redirect("rater:consent", slug=project.slug)
    code = project.consent_declined_code if rater.prolific_pid else ""
    if code and project.completion_redirect_url:
        return HttpResponseRedirect(_with_code(project.completion_redirect_url, code))
    return render(request, "rater/message.html", {
        "title": "Thank you", "message": "You chose not to take part. Nothing more is recorded; you can close "
                                         "this page.",
        "code": code, "code_note": "Return to the study platform and enter this code.",
    })


@require_http_methods(["GET", "POST"])
def demographics(request: HttpRequest, slug: str) -> HttpResponse:
    project, rater = _rater_or_join(request, slug)
    if rater is None:
        return _error_page(request, "Please open the study link you were given to join.", 403)
    form = DemographicsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.demographics_submit(rater=rater, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            return redirect("rater:flow", slug=slug)
    return render(request, "rater/demographics.html", {"project": project, "form": form})


@require_http_methods(["GET", "POST"])
def instructions(request: HttpRequest, slug: str) -> HttpResponse:
    project, rater = _rater_or_join(request, slug)
    if rater is None:
        return _error_page(request, "Please open the study link you were given to join.", 403)
    current = selectors.instruction_current(project=project)
    if current is None:
        return redirect("rater:flow", slug=slug)
    error = None
    if request.method == "POST":
        if request.POST.get("acknowledge") != "yes":
            error = "Please confirm that you have read the instructions."
        else:
            try:
                services.rater_acknowledge_instructions(
                    rater=rater, instruction_version_id=int(request.POST.get("instruction_version", 0)))
            except (DomainError, ValueError):
                return redirect("rater:instructions", slug=slug)
            return redirect("rater:flow", slug=slug)
    changed = rater.acknowledged_instruction_id is not None and rater.acknowledged_instruction_id != current.pk
    return render(request, "rater/instructions.html", {
        "project": project, "instruction": current, "changed": changed, "error": error})


def task(request: HttpRequest, slug: str) -> HttpResponse:
    project, rater = _rater_or_join(request, slug)
    if rater is None:
        return _error_page(request, "Please open the study link you were given to join.", 403)
    following = services.rater_next(rater=rater)
    if following.status == "blocked":
        return redirect(f"rater:{following.step}", slug=slug)
    if following.status == "done":
        return redirect("rater:done", slug=slug)
    template = {"rich": "rater/rich.html", "checklist": "rater/checklist.html", "rank": "rater/rank.html"}.get(
        following.assignment.task.kind, "rater/pairwise.html")
    return render(request, template, {"project": project, "rater": rater})


def done(request: HttpRequest, slug: str) -> HttpResponse:
    """The completion code (or the redirect to the project's completion URL), once nothing is left — and
    only for a rater who answered something (a latecomer who found no task is told the study is full), was
    not screened out after failed quality checks (told so, or sent back with the "screened out" code) and
    was not excluded by a researcher before finishing (told the session has ended, with no code).

    Shows; records nothing: completion is recorded when the last answer is stored (see
    :func:`annotator.services.rater_next_after_answer`).
    """
    project, rater = _rater_or_join(request, slug)
    if rater is None:
        return _error_page(request, "Please open the study link you were given to join.", 403)
    if services.rater_next(rater=rater).status != "done":
        return redirect("rater:flow", slug=slug)
    if selectors.rater_screened_out(rater=rater):
        return _screened_out(request, project, crowd=_is_crowd(request, rater))
    if rater.excluded_at is not None and rater.completed_at is None:
        # excluded by a researcher (or their places released) before finishing: the researcher decides on
        # payment on the platform (raters CSV); the completion code is not handed out here
        return _sent_back(request, project, code="", title="Thank you",
                          message="Your session has ended: there are no more tasks for you in this study. "
                                  "Thank you for your time.", code_note="")
    if rater.n_judgments == 0:  # nothing was left for them: no completion code for no work
        return _no_places(request, project, crowd=_is_crowd(request, rater))
    if project.completion_redirect_url:
        return HttpResponseRedirect(_with_code(project.completion_redirect_url, project.completion_code))
    return render(request, "rater/done.html", {"project": project, "rater": rater})


def image(request: HttpRequest, slug: str, item_id: int) -> FileResponse:
    project, rater = _rater_or_join(request, slug)
    item = Item.objects.filter(pk=item_id, project=project).first() if rater else None
    if item is None or not selectors.item_visible_to_rater(item=item, rater=rater):
        raise Http404("No such image")
    response = FileResponse(item.image.open("rb"), content_type=f"image/{item.image_format.lower()}")
    response["Cache-Control"] = "private, max-age=3600"
    return response
