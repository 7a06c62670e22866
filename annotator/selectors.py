"""Reads: queries the pages, API and services share. Nothing here writes."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate

from annotator import sql
from annotator.models import (
    STAFF_SOURCE,
    Annotation,
    Assignment,
    AssignmentState,
    CheckKind,
    Choice,
    ConsentVersion,
    Demographics,
    ExclusionAction,
    InstructionVersion,
    Item,
    Judgment,
    Membership,
    Project,
    RankAnswer,
    Rater,
    RaterExclusion,
    Role,
    Task,
    TaskItem,
)
from ranking.core.quality import QualityThresholds, RaterQuality, rater_quality_flags, straight_lining


def instruction_current(*, project: Project) -> InstructionVersion | None:
    return project.instruction_versions.order_by("-version").first()


def consent_current(*, project: Project) -> ConsentVersion | None:
    return project.consent_versions.order_by("-version").first()


@dataclass(frozen=True)
class ProjectReadiness:
    """Whether raters can join the project, and why not.

    ``missing`` names what the project needs before it may open (a consent text, instructions);
    ``accepting`` is true when it is open, has both, and has a task with a free place.
    """

    is_open: bool
    has_consent: bool
    has_instructions: bool
    has_tasks: bool
    has_places: bool

    @property
    def missing(self) -> list[str]:
        return [what for what, present in (("a consent text", self.has_consent),
                                           ("instructions", self.has_instructions)) if not present]

    @property
    def accepting(self) -> bool:
        return self.is_open and not self.missing and self.has_places


def project_readiness(*, project: Project) -> ProjectReadiness:
    tasks = Task.objects.filter(project=project, is_active=True, pool__isnull=True, check_kind=CheckKind.NONE)
    return ProjectReadiness(
        is_open=project.is_open,
        has_consent=ConsentVersion.objects.filter(project=project).exists(),
        has_instructions=InstructionVersion.objects.filter(project=project).exists(),
        has_tasks=tasks.exists(),
        has_places=tasks.filter(n_assigned__lt=project.overlap).exists(),
    )


def tasks_available_to(*, rater: Rater) -> QuerySet[Task]:
    """Tasks the rater could still be handed: of the rater's pool (the project's own tasks for a rater of
    no pool), active, with a free place, never given to them before. Quality checks are not tasks here
    (:func:`checks_unseen_by`)."""
    project = rater.project
    return (Task.objects.filter(project=project, pool_id=rater.pool_id, is_active=True, check_kind=CheckKind.NONE)
            .filter(n_assigned__lt=task_slots(project))
            # is_repeat=False: the same rows (a repeat exists only beside its original), but the probe can use
            # the unique (task, rater) index of first showings, one index look-up per candidate task
            .exclude(Exists(Assignment.objects.filter(task=OuterRef("pk"), rater=rater, is_repeat=False))))


def checks_unseen_by(*, rater: Rater) -> QuerySet[Task]:
    """The project's quality checks the rater could be handed: active, not retired, never shown to them
    (and, where the project offers no tie, none whose expected answer is a tie). None for a pool's rater."""
    if rater.pool_id is not None:
        return Task.objects.none()
    checks = (Task.objects.filter(project_id=rater.project_id, is_active=True, check_retired_at__isnull=True)
              .exclude(check_kind=CheckKind.NONE)
              .exclude(Exists(Assignment.objects.filter(task=OuterRef("pk"), rater=rater))))
    return checks if rater.project.allow_tie else checks.exclude(check_answer=Choice.TIE)


def rater_screened_out(*, rater: Rater) -> bool:
    """True when the rater is excluded by PrefLab itself (a screen-out after failed quality checks): their
    newest exclusion decision has no author. They get no completion code."""
    if rater.excluded_at is None:
        return False
    newest = RaterExclusion.objects.filter(rater=rater).order_by("-id").values_list("created_by_id", "action")[:1]
    return any(author is None and action == ExclusionAction.EXCLUDE for author, action in newest)


def task_slots(project: Project):
    """How many raters a task may be handed to: its own ``max_raters``, else the project's overlap."""
    return Coalesce(F("max_raters"), Value(project.overlap))


def rater_without_places(*, rater: Rater) -> bool:
    """True when the rater has answered nothing, holds no open assignment, and no task is left for them:
    a latecomer to a full study, who must be told so (and never be given a completion code)."""
    if rater.n_judgments:
        return False
    if Assignment.objects.filter(rater=rater, state=AssignmentState.OPEN).exists():
        return False
    return not tasks_available_to(rater=rater).exists()


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
    """The rater's open assignment with its task and images (one hand-written statement: every rater request
    that has no answer in it asks, see :mod:`annotator.sql`)."""
    return sql.assignment_open(rater_id=rater.pk)


def rater_next_step(*, rater: Rater) -> str:
    """Where the rater's flow stands: consent, demographics, instructions or task (one query; none when
    the rater was loaded with its flow state, ``rater_from_session(..., flow_state=True)``)."""
    if hasattr(rater, "flow_current_instructions"):
        state = {"consent_version_id": rater.consent_version_id,
                 "acknowledged_instruction_id": rater.acknowledged_instruction_id,
                 "current_consent": rater.flow_current_consent,
                 "current_instructions": rater.flow_current_instructions,
                 "answered_demographics": rater.flow_demographics}
        return _flow_step(rater, state)
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
    return _flow_step(rater, state)


def _flow_step(rater: Rater, state: dict) -> str:
    participant = rater.source != STAFF_SOURCE  # staff ranking a round are not study participants
    if (participant and state["current_consent"] is not None
            and state["consent_version_id"] != state["current_consent"]):
        return "consent"
    if participant and not state["answered_demographics"]:
        return "demographics"
    if (state["current_instructions"] is not None
            and state["acknowledged_instruction_id"] != state["current_instructions"]):
        return "instructions"
    return "task"


_UNKNOWN = object()


def rater_progress(*, rater: Rater, current=_UNKNOWN) -> dict:
    """How far the rater is: answered tasks and how many they may do at most.

    Repeats and quality checks count as done once answered (the rater cannot tell them apart), but are not
    part of ``tasks_per_rater``: one answered or open adds one to the total, so the limit stays reachable.
    ``current``: the rater's open assignment (or None) when the caller already has it.
    """
    project = rater.project
    if project.tasks_per_rater:
        if current is _UNKNOWN:
            current = assignment_open(rater=rater)
        open_extra = 1 if current is not None and (current.is_repeat or current.task.check_kind) else 0
        total = project.tasks_per_rater + rater.n_repeats + rater.n_checks + open_extra
    else:
        # Counting the tasks still open to this rater scans the project's open slots; it is cached
        # per rater for a minute (the total then shifts only when other raters fill tasks).
        key = f"preflab:rater-total:{rater.pk}"
        total = cache.get(key)
        if total is None or total < rater.n_judgments + 1:
            remaining = tasks_available_to(rater=rater).count()
            open_now = 1 if (assignment_open(rater=rater) if current is _UNKNOWN else current) else 0
            total = rater.n_judgments + open_now + remaining
            cache.set(key, total, timeout=60)
    return {"done": rater.n_judgments, "total": max(total, rater.n_judgments)}


def item_visible_to_rater(*, item: Item, rater: Rater) -> bool:
    """Raters see an image only while it is part of one of their assignments (a rank task's: any of its k)."""
    return Assignment.objects.filter(rater=rater, project_id=item.project_id).filter(
        Q(left_item=item) | Q(right_item=item)
        | Exists(TaskItem.objects.filter(task_id=OuterRef("task_id"), item=item))
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
    # a retired image's tasks are done with; a pool's (calibration round's) tasks are not the study's;
    # quality checks are not data (nor are their answers)
    tasks = Task.objects.filter(project=project, is_active=True, pool__isnull=True, check_kind=CheckKind.NONE)
    n_tasks = tasks.count()
    histogram = list(
        tasks.values_list("n_judgments").annotate(n=Count("id")).order_by("n_judgments")
    )
    judgments = Judgment.objects.filter(project=project, is_check=False)
    n_judgments = judgments.count()
    n_judgments += Annotation.objects.filter(project=project).count()  # rich-feedback and checklist answers
    n_judgments += RankAnswer.objects.filter(project=project, task__pool__isnull=True).count()  # rankings
    wanted = n_tasks * project.overlap
    done_towards_goal = sum(min(k, project.overlap) * n for k, n in histogram)
    times = list(
        judgments.filter(response_time_ms__isnull=False)
        .order_by("-id")
        .values_list("response_time_ms", flat=True)[:20000]
    )
    participants = Rater.objects.filter(project=project, pool__isnull=True)
    raters = list(
        participants
        .order_by("-n_judgments", "created_at")
        .values("public_id", "source", "n_judgments", "created_at", "completed_at")[:rater_limit]
    )
    per_day = list(
        judgments
        .annotate(day=TruncDate("submitted_at"))
        .values_list("day")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    return ProjectProgress(
        n_items=Item.objects.filter(project=project).count(),
        n_tasks=n_tasks,
        n_judgments=n_judgments,
        n_raters=participants.count(),
        n_raters_completed=participants.filter(completed_at__isnull=False).count(),
        judgments_wanted=wanted,
        completion=(done_towards_goal / wanted) if wanted else 0.0,
        median_response_ms=statistics.median(times) if times else None,
        tasks_by_judgments=[(k, n) for k, n in histogram],
        raters=raters,
        judgments_per_day=[(str(d), n) for d, n in per_day],
    )


def project_members(*, project: Project) -> list[Membership]:
    """The project's team: the owner first, then researchers, then viewers, by username."""
    members = list(Membership.objects.filter(project=project).select_related("user"))
    order = {Role.RESEARCHER: 0, Role.VIEWER: 1}
    members.sort(key=lambda m: (m.user_id != project.owner_id, order.get(m.role, 2), m.user.get_username().lower()))
    return members


# Raters page and the payments CSV -------------------------------------------------------------------


@dataclass(frozen=True)
class RaterRow:
    """One rater as the raters page and its CSV list them (answers include repeats)."""

    public_id: str
    source: str
    prolific_pid: str
    study_id: str
    session_id: str
    status: str
    n_answers: int
    n_repeats: int
    time_on_tasks_s: float
    elapsed_s: float | None
    joined_at: datetime
    consented_at: datetime | None
    consent_declined_at: datetime | None
    completed_at: datetime | None
    last_answer_at: datetime | None
    rater_id: int = 0
    excluded_at: datetime | None = None
    excluded_reason: str = ""
    places_released: bool = False  # the places of the tasks they were handed were given back to other raters
    quality: RaterQuality | None = None
    n_checks: int = 0
    n_checks_passed: int = 0
    screened_out: bool = False

    @property
    def check_pass_rate(self) -> float | None:
        """Share of the quality checks answered that passed (None: none answered)."""
        return self.n_checks_passed / self.n_checks if self.n_checks else None

    @property
    def failed_checks(self) -> bool:
        """The "failed checks" flag: at least one quality check answered wrongly."""
        return self.n_checks_passed < self.n_checks


RATER_STATUSES = {
    "screened_out": "screened out",
    "excluded": "stopped (excluded)",
    "finished": "finished",
    "answering": "answering",
    "declined": "declined consent",
    "not_started": "not started",
}


def _rater_status(rater: Rater, *, screened_out: bool = False) -> str:
    if screened_out:  # checked first: a screened-out rater reaches "nothing left", but did not finish
        return "screened_out"
    if rater.completed_at is not None:
        return "finished"
    if rater.excluded_at is not None:  # excluded before finishing: handed no further task
        return "excluded"
    if rater.n_judgments:
        return "answering"
    if rater.consent_declined_at is not None and rater.consent_version_id is None:
        return "declined"
    return "not_started"


def raters_of_project(*, project: Project, search: str = "", by_crowd_ids: bool = False) -> QuerySet[Rater]:
    """The project's raters, oldest first. ``search`` matches the public id exactly, and with
    ``by_crowd_ids`` (researchers) a Prolific PID, study or session id too."""
    raters = Rater.objects.filter(project=project).order_by("id")
    search = search.strip()
    if search:
        match = Q(public_id=search)
        if by_crowd_ids:
            match |= Q(prolific_pid=search) | Q(study_id=search) | Q(session_id=search)
        raters = raters.filter(match)
    return raters


def rater_rows(*, raters: Iterable[Rater], quality: dict[int, RaterQuality] | None = None) -> list[RaterRow]:
    """Rows for the given raters, with time on tasks and last answer from two grouped queries, quality checks
    answered and passed from one more, and each rater's quality figures and flags from ``quality``
    (:func:`rater_quality_by_rater`) when given."""
    raters = list(raters)
    ids = [r.pk for r in raters]
    checks = rater_check_counts(rater_ids=ids)
    screened = raters_screened_out(rater_ids=[r.pk for r in raters if r.excluded_at is not None])
    totals: dict[int, tuple[int, datetime | None]] = {}
    for model in (Judgment, Annotation):
        grouped = (model.objects.filter(rater_id__in=ids).values("rater_id")
                   .annotate(ms=Sum("response_time_ms"), last=Max("submitted_at")).order_by())
        for row in grouped:
            ms, last = totals.get(row["rater_id"], (0, None))
            newest = max((t for t in (last, row["last"]) if t is not None), default=None)
            totals[row["rater_id"]] = (ms + (row["ms"] or 0), newest)
    rows = []
    for rater in raters:
        ms, last = totals.get(rater.pk, (0, None))
        n_checks, n_passed = checks.get(rater.pk, (0, 0))
        rows.append(RaterRow(
            public_id=rater.public_id, source=rater.source, prolific_pid=rater.prolific_pid,
            study_id=rater.study_id, session_id=rater.session_id,
            status=_rater_status(rater, screened_out=rater.pk in screened),
            n_answers=rater.n_judgments, n_repeats=rater.n_repeats, time_on_tasks_s=ms / 1000,
            elapsed_s=(last - rater.created_at).total_seconds() if last else None,
            joined_at=rater.created_at, consented_at=rater.consented_at,
            consent_declined_at=rater.consent_declined_at, completed_at=rater.completed_at, last_answer_at=last,
            rater_id=rater.pk, excluded_at=rater.excluded_at, excluded_reason=rater.excluded_reason,
            places_released=rater.places_released_at is not None,
            quality=(quality or {}).get(rater.pk), n_checks=n_checks, n_checks_passed=n_passed,
            screened_out=rater.pk in screened,
        ))
    return rows


def rater_check_counts(*, rater_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Quality checks answered and passed, by rater id (one grouped query; raters with none are absent)."""
    grouped = (Judgment.objects.filter(rater_id__in=rater_ids, is_check=True).values("rater_id")
               .annotate(n=Count("id"), passed=Count("id", filter=Q(check_passed=True))).order_by())
    return {row["rater_id"]: (row["n"], row["passed"]) for row in grouped}


def raters_screened_out(*, rater_ids: list[int]) -> set[int]:
    """Of the given (excluded) raters, those whose newest exclusion decision is PrefLab's own screen-out."""
    if not rater_ids:
        return set()
    newest = RaterExclusion.objects.filter(rater_id=OuterRef("pk")).order_by("-id")
    return set(Rater.objects.filter(pk__in=rater_ids, excluded_at__isnull=False)
               .annotate(newest_action=Subquery(newest.values("action")[:1]),
                         newest_author=Subquery(newest.values("created_by_id")[:1]))
               .filter(newest_action=ExclusionAction.EXCLUDE, newest_author__isnull=True)
               .values_list("pk", flat=True))


def rater_rows_all(*, project: Project, chunk: int = 500) -> Iterator[RaterRow]:
    """Every rater of the project as rows with their quality flags, read in chunks (for the streamed CSV)."""
    quality = rater_quality_by_rater(project=project)
    last_id = 0
    while True:
        batch = list(Rater.objects.filter(project=project, id__gt=last_id).order_by("id")[:chunk])
        if not batch:
            return
        yield from rater_rows(raters=batch, quality=quality)
        last_id = batch[-1].pk


# Rater quality (flags) and exclusions -------------------------------------------------------------------

#: When a rater is flagged: the project-independent defaults of :class:`ranking.core.quality.QualityThresholds`
#: (position bias: exact binomial test, Holm-corrected at 0.05, ≥ 10 decisive answers, left share outside
#: 40–60 %; too fast: > 20 % of ≥ 10 timed pairwise answers under 800 ms; straight-lining: ≥ 80 % of ≥ 10
#: Likert answers with one score for every dimension, 20 points above all raters' share).
QUALITY_THRESHOLDS = QualityThresholds()


def rater_quality_by_rater(*, project: Project, cutoff_judgment_id: int | None = None,
                           cutoff_annotation_id: int | None = None,
                           thresholds: QualityThresholds = QUALITY_THRESHOLDS) -> dict[int, RaterQuality]:
    """Every rater's quality figures and flags (:func:`ranking.core.quality.rater_quality_flags`), by rater id.

    Pairwise judgments (up to ``cutoff_judgment_id`` if given) give the position-bias test (left picks
    among decisive answers, i.e. left or right, not ties) and the response times; answers to repeat
    assignments are left out of both (a repeat shows a pair with its sides swapped, not re-drawn), and so are
    answers to quality checks (scored on their own: :func:`rater_check_counts`). Rich
    feedback (up to ``cutoff_annotation_id``) gives straight-lining over the project's Likert dimensions.
    Excluded raters are included (a flag stays visible after the decision it led to). One grouped query
    over judgments, one read of the rich-feedback scores.
    """
    judgments = Judgment.objects.filter(project=project, is_repeat=False, is_check=False, right_item__isnull=False)
    if cutoff_judgment_id is not None:
        judgments = judgments.filter(id__lte=cutoff_judgment_id)
    fast_below = math.ceil(thresholds.too_fast_ms)  # whole milliseconds: t < 800.0 ⇔ t < 800
    counts = {row["rater_id"]: row for row in judgments.values("rater_id").annotate(
        n_decisive=Count("id", filter=Q(is_tie=False)),
        left=Count("id", filter=Q(is_tie=False, choice=Choice.LEFT)),
        n_timed=Count("response_time_ms"),
        n_fast=Count("id", filter=Q(response_time_ms__lt=fast_below)),
    ).order_by()}
    dims = [d["name"] for d in project.likert_dimensions or [] if isinstance(d, dict) and d.get("name")]
    scores_by_rater: dict[int, list[list[float]]] = {}
    if dims:
        annotations = Annotation.objects.filter(project=project, kind="rich")
        if cutoff_annotation_id is not None:
            annotations = annotations.filter(id__lte=cutoff_annotation_id)
        for rater_id, scores in annotations.values_list("rater_id", "scores").iterator(chunk_size=5000):
            scores = scores if isinstance(scores, dict) else {}
            scores_by_rater.setdefault(rater_id, []).append(
                [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
                 for v in (scores.get(d) for d in dims)])
    rater_ids = list(Rater.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    lines = [straight_lining(scores_by_rater[r]) if r in scores_by_rater else None for r in rater_ids]
    zero = {"n_decisive": 0, "left": 0, "n_timed": 0, "n_fast": 0}
    rows = [counts.get(r, zero) for r in rater_ids]
    results = rater_quality_flags(
        left_picks=[row["left"] for row in rows], n_decisive=[row["n_decisive"] for row in rows],
        n_fast=[row["n_fast"] for row in rows], n_timed=[row["n_timed"] for row in rows],
        n_likert=[sl.n_answers if sl else 0 for sl in lines], n_identical=[sl.n_identical if sl else 0 for sl in lines],
        likert_sd=[sl.sd if sl else None for sl in lines], thresholds=thresholds)
    return dict(zip(rater_ids, results, strict=True))


def rater_exclusion_history(*, project: Project, limit: int = 50) -> list[RaterExclusion]:
    """The project's newest exclusion decisions (exclude / include), newest first, with rater and author."""
    return list(RaterExclusion.objects.filter(rater__project=project).select_related("rater", "created_by")
                .order_by("-id")[:limit])


@dataclass(frozen=True)
class ItemUsage:
    n_tasks: int
    n_active_tasks: int
    n_judgments: int
    n_annotations: int


def item_usage(*, item: Item) -> ItemUsage:
    """How much of the study involves the image: its tasks and the answers about it."""
    tasks = Task.objects.filter(Q(item_a=item) | Q(item_b=item))
    return ItemUsage(
        n_tasks=tasks.count(),
        n_active_tasks=tasks.filter(is_active=True).count(),
        n_judgments=Judgment.objects.filter(Q(left_item=item) | Q(right_item=item)).count(),
        n_annotations=Annotation.objects.filter(item=item).count(),
    )


# Quality checks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckRow:
    """One quality check as the checks page lists it, with how its raters did."""

    task: Task
    n_shown: int
    n_answered: int
    n_passed: int

    @property
    def pass_rate(self) -> float | None:
        return self.n_passed / self.n_answered if self.n_answered else None


def checks_of_project(*, project: Project) -> list[CheckRow]:
    """The project's quality checks, newest first, each with raters shown it, answers and passes (one query)."""
    return _check_rows(Task.objects.filter(project=project).exclude(check_kind=CheckKind.NONE)
                       .select_related("item_a", "item_b").order_by("-id"))


def check_row(*, check: Task) -> CheckRow:
    """One quality check's row (as :func:`checks_of_project` lists it)."""
    return _check_rows(Task.objects.filter(pk=check.pk))[0]


def _check_rows(tasks) -> list[CheckRow]:
    answers = (Judgment.objects.filter(task_id=OuterRef("pk")).values("task_id")
               .annotate(n=Count("id"), passed=Count("id", filter=Q(check_passed=True))).order_by())
    shown = (Assignment.objects.filter(task_id=OuterRef("pk")).values("task_id").annotate(n=Count("id"))
             .order_by().values("n"))
    checks = tasks.annotate(n_shown=Coalesce(Subquery(shown), 0), n_answered=Coalesce(Subquery(answers.values("n")), 0),
                            n_passed=Coalesce(Subquery(answers.values("passed")), 0))
    return [CheckRow(task=t, n_shown=t.n_shown, n_answered=t.n_answered, n_passed=t.n_passed) for t in checks]


@dataclass(frozen=True)
class ChecksOverview:
    """The checks page: every check with its figures, and the totals over all of them."""

    rows: list[CheckRow]
    n_active: int
    n_answered: int
    n_passed: int
    n_screened_out: int

    @property
    def pass_rate(self) -> float | None:
        return self.n_passed / self.n_answered if self.n_answered else None


def checks_overview(*, project: Project) -> ChecksOverview:
    rows = checks_of_project(project=project)
    return ChecksOverview(
        rows=rows, n_active=sum(1 for r in rows if r.task.check_retired_at is None and r.task.is_active),
        n_answered=sum(r.n_answered for r in rows), n_passed=sum(r.n_passed for r in rows),
        n_screened_out=raters_screened_out_count(project=project))


def raters_screened_out_count(*, project: Project) -> int:
    """How many of the project's raters are screened out now (excluded by PrefLab after failed checks)."""
    excluded = list(Rater.objects.filter(project=project, excluded_at__isnull=False).values_list("pk", flat=True))
    return len(raters_screened_out(rater_ids=excluded))
