"""Reads: queries the pages, API and services share. Nothing here writes."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncDate

from annotator.models import (
    Annotation,
    Assignment,
    AssignmentState,
    ConsentVersion,
    Demographics,
    InstructionVersion,
    Item,
    Judgment,
    Membership,
    Project,
    Rater,
    Role,
    Task,
)


def instruction_current(*, project: Project) -> InstructionVersion | None:
    return project.instruction_versions.order_by("-version").first()


def consent_current(*, project: Project) -> ConsentVersion | None:
    return project.consent_versions.order_by("-version").first()


def projects_for_user(*, user: AbstractBaseUser) -> QuerySet[Project]:
    if user.is_staff:
        return Project.objects.all().order_by("-created_at")
    return Project.objects.filter(memberships__user=user).distinct().order_by("-created_at")


def project_role(*, project: Project, user: AbstractBaseUser) -> str | None:
    """The user's role in the project ('researcher' for staff), or None for non-members."""
    if not user.is_authenticated:
        return None
    if user.is_staff:
        return Role.RESEARCHER
    return Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()


def assignment_open(*, rater: Rater) -> Assignment | None:
    return (
        Assignment.objects.filter(rater=rater, state=AssignmentState.OPEN)
        .select_related("task", "left_item", "right_item")
        .first()
    )


def rater_next_step(*, rater: Rater) -> str:
    """Where the rater's flow stands: consent, demographics, instructions or task (one query)."""
    state = (
        Rater.objects.filter(pk=rater.pk)
        .annotate(
            current_consent=Subquery(ConsentVersion.objects.filter(project_id=OuterRef("project_id"))
                                     .order_by("-version").values("pk")[:1]),
            current_instructions=Subquery(InstructionVersion.objects.filter(project_id=OuterRef("project_id"))
                                          .order_by("-version").values("pk")[:1]),
            answered_demographics=Exists(Demographics.objects.filter(rater_id=OuterRef("pk"))),
        )
        .values("consent_version_id", "acknowledged_instruction_id", "current_consent", "current_instructions",
                "answered_demographics")
        .get()
    )
    if state["current_consent"] is not None and state["consent_version_id"] != state["current_consent"]:
        return "consent"
    if not state["answered_demographics"]:
        return "demographics"
    if (state["current_instructions"] is not None
            and state["acknowledged_instruction_id"] != state["current_instructions"]):
        return "instructions"
    return "task"


def rater_progress(*, rater: Rater) -> dict:
    """How far the rater is: answered tasks and how many they may do at most.

    Repeats count as done once answered (the rater cannot tell them apart), but are not part of
    ``tasks_per_rater``: a repeat answered or open adds one to the total, so the limit stays reachable.
    """
    project = rater.project
    if project.tasks_per_rater:
        current = assignment_open(rater=rater)
        open_repeat = 1 if current is not None and current.is_repeat else 0
        total = project.tasks_per_rater + rater.n_repeats + open_repeat
    else:
        # Counting the tasks still open to this rater scans the project's open slots; it is cached
        # per rater for a minute (the total then shifts only when other raters fill tasks).
        key = f"preflab:rater-total:{rater.pk}"
        total = cache.get(key)
        if total is None or total < rater.n_judgments + 1:
            remaining = (
                Task.objects.filter(project=project, n_assigned__lt=project.overlap)
                .exclude(assignments__rater=rater)
                .count()
            )
            open_now = 1 if assignment_open(rater=rater) else 0
            total = rater.n_judgments + open_now + remaining
            cache.set(key, total, timeout=60)
    return {"done": rater.n_judgments, "total": max(total, rater.n_judgments)}


def item_visible_to_rater(*, item: Item, rater: Rater) -> bool:
    """Raters see an image only while it is part of one of their assignments."""
    return Assignment.objects.filter(rater=rater, project_id=item.project_id).filter(
        Q(left_item=item) | Q(right_item=item)
    ).exists()


@dataclass(frozen=True)
class ProjectProgress:
    n_items: int
    n_tasks: int
    n_judgments: int
    n_raters: int
    n_raters_completed: int
    judgments_wanted: int
    completion: float
    median_response_ms: float | None
    tasks_by_judgments: list[tuple[int, int]]
    raters: list[dict]
    judgments_per_day: list[tuple[str, int]]


def project_progress(*, project: Project, rater_limit: int = 200) -> ProjectProgress:
    tasks = Task.objects.filter(project=project)
    n_tasks = tasks.count()
    histogram = list(
        tasks.values_list("n_judgments").annotate(n=Count("id")).order_by("n_judgments")
    )
    n_judgments = Judgment.objects.filter(project=project).count()
    n_judgments += Annotation.objects.filter(project=project).count()  # rich-feedback and checklist answers
    wanted = n_tasks * project.overlap
    done_towards_goal = sum(min(k, project.overlap) * n for k, n in histogram)
    times = list(
        Judgment.objects.filter(project=project, response_time_ms__isnull=False)
        .order_by("-id")
        .values_list("response_time_ms", flat=True)[:20000]
    )
    raters = list(
        Rater.objects.filter(project=project)
        .order_by("-n_judgments", "created_at")
        .values("public_id", "source", "n_judgments", "created_at", "completed_at")[:rater_limit]
    )
    per_day = list(
        Judgment.objects.filter(project=project)
        .annotate(day=TruncDate("submitted_at"))
        .values_list("day")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    return ProjectProgress(
        n_items=Item.objects.filter(project=project).count(),
        n_tasks=n_tasks,
        n_judgments=n_judgments,
        n_raters=Rater.objects.filter(project=project).count(),
        n_raters_completed=Rater.objects.filter(project=project, completed_at__isnull=False).count(),
        judgments_wanted=wanted,
        completion=(done_towards_goal / wanted) if wanted else 0.0,
        median_response_ms=statistics.median(times) if times else None,
        tasks_by_judgments=[(k, n) for k, n in histogram],
        raters=raters,
        judgments_per_day=[(str(d), n) for d, n in per_day],
    )
