"""Calibration rounds and metric gates (staff only): create and run rounds, rank them, read their results,
apply or reject the gate changes they propose, and follow each metric's agreement across rounds.

Every page and form here refuses anyone who is not staff (403). A GET never writes, except the rank
page, which makes the staff member's rater for the round on first use (as opening a study link does).
"""

from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotator import selectors as annotator_selectors
from annotator import services as annotator_services
from annotator.errors import DomainError, NotFound
from annotator.models import Item, Project
from annotator.permissions import rater_into_session
from ranking import presenters, selectors
from ranking.forms import GateForm, RoundForm, ScheduleForm
from ranking.models import GateProposal, MetricGate, RoundRaters, RoundSchedule
from ranking.services import gates as gate_services
from ranking.services import rounds as round_services


def _staff_project(request: HttpRequest, slug: str) -> Project:
    if not request.user.is_staff:
        raise PermissionDenied("Calibration rounds and metric gates are for staff.")
    return get_object_or_404(Project, slug=slug)


def _round(project: Project, number: int):
    try:
        return selectors.round_get(project=project, number=number)
    except NotFound:
        from django.http import Http404

        raise Http404("No such round") from None


def _staff_users():
    return get_user_model().objects.filter(is_staff=True, is_active=True).order_by("username")


@login_required
@require_http_methods(["GET", "POST"])
def rounds(request: HttpRequest, slug: str) -> HttpResponse:
    project = _staff_project(request, slug)
    form = RoundForm(request.POST or None, project=project, staff=_staff_users())
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            round_ = round_services.round_create(
                project=project, user=request.user, sample_size=data["sample_size"], sampling=data["sampling"],
                raters=data["raters"], panel=data["panel"] or (), n_raters=data.get("n_raters") or 3,
                gate=data.get("gate"), note=data.get("note", ""))
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Round {round_.number} drafted. Start it to draw its sample.")
            return redirect("ranking:round", slug=slug, number=round_.number)
    schedule = RoundSchedule.objects.filter(project=project).first()
    schedule_form = ScheduleForm(initial={
        "every_n_images": schedule.every_n_images, "every_days": schedule.every_days,
        "sample_size": schedule.sample_size, "sampling": schedule.sampling, "raters": schedule.raters,
        "n_raters": schedule.n_raters, "is_active": schedule.is_active} if schedule else None)
    drift = selectors.rounds_drift(project=project)
    latest = selectors.round_result_newest(project=project)
    return render(request, "ranking/rounds.html", {
        "alarm": (latest.result.get("alarm") if latest else None) or {},
        "project": project, "tab": "rounds", "rounds": selectors.rounds_of(project=project), "form": form,
        "schedule": schedule, "schedule_form": schedule_form, "drift": presenters.drift_rows(drift),
        "pending": selectors.gate_proposals_pending(project=project)})


@login_required
@require_POST
def round_schedule(request: HttpRequest, slug: str) -> HttpResponse:
    project = _staff_project(request, slug)
    form = ScheduleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Schedule not saved: " + "; ".join(
            f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()))
        return redirect("ranking:rounds", slug=slug)
    data = form.cleaned_data
    try:
        round_services.round_schedule_set(
            project=project, user=request.user, every_n_images=data.get("every_n_images"),
            every_days=data.get("every_days"), sample_size=data["sample_size"], sampling=data["sampling"],
            raters=data["raters"], n_raters=data.get("n_raters") or 3, is_active=data.get("is_active", False))
    except DomainError as exc:
        messages.error(request, f"Schedule not saved: {exc.message}")
    else:
        messages.success(request, "Round schedule saved.")
    return redirect("ranking:rounds", slug=slug)


@login_required
@require_GET
def round_detail(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    project = _staff_project(request, slug)
    round_ = _round(project, number)
    result = selectors.round_result_latest(round_=round_)
    pending = selectors.round_result_pending(round_=round_)
    may_rank, why_not = round_services.round_may_rank(round_=round_, user=request.user)
    join_url = (request.build_absolute_uri(reverse("join", args=[project.slug, round_.pool.join_token]))
                if round_.pool_id and round_.raters == RoundRaters.CROWD else "")
    context = {"project": project, "tab": "rounds", "round": round_, "result": result, "pending": pending,
               "may_rank": may_rank, "why_not": why_not, "join_url": join_url,
               "n_rankings": selectors.round_n_rankings(round_=round_),
               "panel": list(round_.panel.all()), "proposals": round_.proposals.select_related(
                   "gate__metric", "decided_by").order_by("-id")}
    if result is not None:
        context.update(presenters.round_result_page(result=result.result, project=project))
    return render(request, "ranking/round.html", context)


def _act(request: HttpRequest, slug: str, number: int, action, done: str) -> HttpResponse:
    project = _staff_project(request, slug)
    round_ = _round(project, number)
    try:
        action(round_)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done.format(number=round_.number))
    return redirect("ranking:round", slug=slug, number=number)


@login_required
@require_POST
def round_start(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    return _act(request, slug, number, lambda r: round_services.round_start(round_=r),
                "Round {number} started: its sample is drawn and frozen.")


@login_required
@require_POST
def round_close(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    return _act(request, slug, number, lambda r: round_services.round_close(round_=r), "Round {number} closed.")


@login_required
@require_POST
def round_delete(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    project = _staff_project(request, slug)
    round_ = _round(project, number)
    try:
        round_services.round_delete_draft(round_=round_)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("ranking:round", slug=slug, number=number)
    messages.success(request, f"Draft round {number} deleted.")
    return redirect("ranking:rounds", slug=slug)


@login_required
@require_POST
def round_compute(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    project = _staff_project(request, slug)
    round_ = _round(project, number)
    if round_.pool_id is None:
        messages.error(request, "The round has not started: there is nothing to compute.")
    else:
        result = round_services.round_result_compute_now(round_=round_)
        messages.add_message(request, *presenters.job_outcome_message(noun="Round result", job=result))
    return redirect("ranking:round", slug=slug, number=number)


@login_required
@require_GET
def round_result_status(request: HttpRequest, slug: str, number: int) -> JsonResponse:
    project = _staff_project(request, slug)
    round_ = _round(project, number)
    pending = selectors.round_result_pending(round_=round_)
    latest = selectors.round_result_latest(round_=round_)
    return JsonResponse({"pending": pending.status if pending else None,
                         "latest_id": latest.pk if latest else None,
                         "n_rankings": selectors.round_n_rankings(round_=round_)})


@login_required
@require_http_methods(["GET", "POST"])
def round_rank(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """Rank the round as a staff member: the project's instructions first (acknowledged once), then the
    rank page of the rater flow, whose answers go through the same API and rules as every rater's."""
    project = _staff_project(request, slug)
    round_ = _round(project, number)
    try:
        rater = round_services.round_rater(round_=round_, user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("ranking:round", slug=slug, number=number)
    rater_into_session(request=request, rater=rater)
    instruction = annotator_selectors.instruction_current(project=project)
    if request.method == "POST" and instruction is not None:
        try:
            annotator_services.rater_acknowledge_instructions(
                rater=rater, instruction_version_id=int(request.POST.get("instruction_version", 0)))
        except (DomainError, ValueError):
            messages.error(request, "The instructions changed; read them again.")
        return redirect("ranking:round_rank", slug=slug, number=number)
    if instruction is not None and rater.acknowledged_instruction_id != instruction.pk:
        return render(request, "ranking/round_instructions.html", {
            "project": project, "round": round_, "instruction": instruction})
    round_url = reverse("ranking:round", args=[slug, number])
    return render(request, "rater/rank.html", {
        "project": project, "rater": rater, "done_url": round_url, "instructions_url": request.path,
        "task_url": "", "round": round_})


# ------------------------------------------------------------------------------------------------
# Gates
# ------------------------------------------------------------------------------------------------


def _gate_metrics(project: Project):
    from django.db.models import Q

    from ranking.models import Metric

    return (Metric.objects.filter(Q(project=project) | Q(project__isnull=True), kind="item",
                                  scores__item__project=project).distinct().order_by("name", "version"))


@login_required
@require_http_methods(["GET", "POST"])
def gates(request: HttpRequest, slug: str) -> HttpResponse:
    project = _staff_project(request, slug)
    form = GateForm(request.POST or None, metrics=_gate_metrics(project))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            gate = gate_services.gate_create(project=project, metric=data["metric"], threshold=data["threshold"],
                                             user=request.user, dimension=data["dimension"],
                                             direction=data.get("direction") or None, reason=data.get("reason", ""))
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Gate {gate} created.")
            return redirect("ranking:gates", slug=slug)
    all_gates = list(selectors.gates_of(project=project))
    _, decisions = selectors.gate_decisions(project=project)
    return render(request, "ranking/gates.html", {
        "project": project, "tab": "rounds", "form": form,
        "gates": presenters.gate_rows(all_gates, decisions),
        "history": selectors.gate_history(project=project),
        "pending": selectors.gate_proposals_pending(project=project)})


@login_required
@require_POST
def gate_threshold(request: HttpRequest, slug: str, gate_id: int) -> HttpResponse:
    project = _staff_project(request, slug)
    gate = get_object_or_404(MetricGate, pk=gate_id, project=project)
    try:
        gate_services.gate_set_threshold(gate=gate, threshold=request.POST.get("threshold"), user=request.user,
                                         reason=request.POST.get("reason", ""))
    except DomainError as exc:
        messages.error(request, f"Threshold not changed: {exc.message}")
    else:
        messages.success(request, "Threshold changed; the change is in the gate's history.")
    return redirect("ranking:gates", slug=slug)


@login_required
@require_POST
def gate_active(request: HttpRequest, slug: str, gate_id: int) -> HttpResponse:
    project = _staff_project(request, slug)
    gate = get_object_or_404(MetricGate, pk=gate_id, project=project)
    try:
        gate_services.gate_set_active(gate=gate, is_active=request.POST.get("is_active") == "1", user=request.user,
                                      reason=request.POST.get("reason", ""))
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("ranking:gates", slug=slug)


def _decide(request: HttpRequest, slug: str, proposal_id: int, apply: bool) -> HttpResponse:
    project = _staff_project(request, slug)
    proposal = get_object_or_404(GateProposal.objects.select_related("round", "gate"), pk=proposal_id,
                                 gate__project=project)
    reason = request.POST.get("reason", "")
    try:
        if apply:
            gate_services.proposal_apply(proposal=proposal, user=request.user, reason=reason)
        else:
            gate_services.proposal_reject(proposal=proposal, user=request.user, reason=reason)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Proposal for {proposal.gate.metric.name} {'applied' if apply else 'rejected'}.")
    target = request.POST.get("next", "")
    if target == "round":
        return redirect("ranking:round", slug=slug, number=proposal.round.number)
    return redirect("ranking:gates", slug=slug)


@login_required
@require_POST
def proposal_apply(request: HttpRequest, slug: str, proposal_id: int) -> HttpResponse:
    return _decide(request, slug, proposal_id, apply=True)


@login_required
@require_POST
def proposal_reject(request: HttpRequest, slug: str, proposal_id: int) -> HttpResponse:
    return _decide(request, slug, proposal_id, apply=False)


class _Echo:
    def write(self, value):
        return value


@login_required
@require_GET
def gate_decisions_csv(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    """Every current image with its score and pass/fail for each active gate (blank: no score)."""
    project = _staff_project(request, slug)
    gate_list, decisions = selectors.gate_decisions(project=project)
    writer = csv.writer(_Echo())

    def rows():
        header = ["item_id", "sha256", "original_name", "source_model"]
        for gate in gate_list:
            label = f"{gate.metric.name}:{gate.dimension}"
            header += [f"{label}:score", f"{label}:pass"]
        yield writer.writerow(header)
        items = (Item.objects.filter(project=project, retired_at__isnull=True).order_by("id")
                 .values_list("id", "sha256", "original_name", "source_model"))
        for item_id, sha, name, source in items.iterator(chunk_size=5000):
            row = [item_id, sha, name, source]
            for score, passed in decisions.get(item_id, [(None, None)] * len(gate_list)):
                row += ["" if score is None else repr(score), "" if passed is None else ("pass" if passed else "fail")]
            yield writer.writerow(row)

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-gate-decisions.csv"'
    return response
