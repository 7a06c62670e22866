"""Writes: every change to annotator data goes through a function here.

Functions are keyword-only and named ``entity_action``. Each runs in one
transaction, validates its input and raises a :mod:`annotator.errors` error that
names the field at fault, so that nothing is ever stored partly.
"""

from __future__ import annotations

import itertools
import random
import secrets
import uuid
from collections import defaultdict
from datetime import timedelta
from collections.abc import Iterable, Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, Max, OuterRef
from django.utils import timezone
from django.utils.text import slugify

from annotator import selectors
from annotator import feedback
from annotator.errors import Conflict, InvalidInput, NotFound
from annotator.models import (
    SINGLE_ITEM_KINDS,
    Annotation,
    Assignment,
    AssignmentState,
    Choice,
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
    TaskKind,
)

MAX_RESPONSE_TIME_MS = 24 * 3600 * 1000
MAX_TASKS_PER_GENERATION = 1_000_000
MAX_REPEAT_RATE = 0.5
#: A repeat re-shows a pair only after at least this many other assignments of the same rater.
REPEAT_MIN_GAP = 3


# Projects ------------------------------------------------------------------------------------------


def project_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    slug: str = "",
    description: str = "",
    overlap: int = 3,
    tasks_per_rater: int = 0,
    repeat_rate: float = 0.0,
    completion_redirect_url: str = "",
) -> Project:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A project needs a name.", field="name")
    slug = slugify(slug or name)[:64]
    if not slug:
        raise InvalidInput("The slug must contain letters or digits.", field="slug")
    _check_overlap(overlap)
    repeat_rate = _check_repeat_rate(repeat_rate)
    if tasks_per_rater < 0:
        raise InvalidInput("tasks_per_rater must be 0 (no limit) or more.", field="tasks_per_rater")
    with transaction.atomic():
        if Project.objects.filter(slug=slug).exists():
            raise Conflict(f"A project with the slug '{slug}' already exists.", field="slug")
        project = Project.objects.create(
            owner=owner,
            name=name,
            slug=slug,
            description=description,
            overlap=overlap,
            tasks_per_rater=tasks_per_rater,
            repeat_rate=repeat_rate,
            completion_redirect_url=completion_redirect_url,
        )
        Membership.objects.create(project=project, user=owner, role=Role.RESEARCHER)
    return project


def project_update(*, project: Project, **fields) -> Project:
    allowed = {"name", "description", "overlap", "tasks_per_rater", "repeat_rate", "completion_redirect_url",
               "is_open", "pairwise_flags", "completion_code"}
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidInput(f"Unknown project field(s): {', '.join(sorted(unknown))}.", field=sorted(unknown)[0])
    if "overlap" in fields:
        _check_overlap(fields["overlap"])
    if "repeat_rate" in fields:
        fields["repeat_rate"] = _check_repeat_rate(fields["repeat_rate"])
    if "pairwise_flags" in fields:
        flags = fields["pairwise_flags"]
        if not isinstance(flags, list) or not all(isinstance(f, str) and 0 < len(f) <= 40 for f in flags):
            raise InvalidInput("pairwise_flags must be a list of short strings.", field="pairwise_flags")
    for key, value in fields.items():
        setattr(project, key, value)
    project.save(update_fields=list(fields))
    return project


def _check_overlap(overlap: int) -> None:
    if not isinstance(overlap, int) or not 1 <= overlap <= 100:
        raise InvalidInput("overlap must be a whole number from 1 to 100.", field="overlap")


def _check_repeat_rate(repeat_rate) -> float:
    if (not isinstance(repeat_rate, (int, float)) or isinstance(repeat_rate, bool)
            or not 0 <= repeat_rate <= MAX_REPEAT_RATE):
        raise InvalidInput(f"repeat_rate must be a number from 0 to {MAX_REPEAT_RATE}.", field="repeat_rate")
    return float(repeat_rate)


def membership_set(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    if role not in Role.values:
        raise InvalidInput(f"role must be one of {', '.join(Role.values)}.", field="role")
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership


# Instructions and consent ----------------------------------------------------------------------------


def instruction_version_create(*, project: Project, text: str, created_by: AbstractBaseUser | None) -> InstructionVersion:
    """Store new instruction text as the next version. Earlier versions are never edited."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput("Instructions cannot be empty.", field="text")
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        latest = project.instruction_versions.aggregate(v=Max("version"))["v"] or 0
        current = project.instruction_versions.filter(version=latest).first()
        if current is not None and current.text == text:
            return current
        return InstructionVersion.objects.create(project=project, version=latest + 1, text=text, created_by=created_by)


def consent_version_create(*, project: Project, text: str) -> ConsentVersion:
    text = (text or "").strip()
    if not text:
        raise InvalidInput("Consent text cannot be empty.", field="text")
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        latest = project.consent_versions.aggregate(v=Max("version"))["v"] or 0
        return ConsentVersion.objects.create(project=project, version=latest + 1, text=text)


# Raters ----------------------------------------------------------------------------------------------


def rater_join(
    *, project: Project, prolific_pid: str = "", study_id: str = "", session_id: str = ""
) -> tuple[Rater, bool]:
    """A rater arrives. The same Prolific PID resumes its rater instead of creating another."""
    if not project.is_open:
        raise Conflict("This project is not accepting raters at the moment.", code="project_closed")
    for name, value in (("PROLIFIC_PID", prolific_pid), ("STUDY_ID", study_id), ("SESSION_ID", session_id)):
        if len(value) > 64 or not all(ch.isalnum() or ch in "-_" for ch in value):
            raise InvalidInput(f"{name} must be at most 64 letters, digits, '-' or '_'.", field=name)
    if prolific_pid:
        existing = Rater.objects.filter(project=project, prolific_pid=prolific_pid).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            rater = Rater.objects.create(
                project=project,
                source="prolific" if prolific_pid else "invite",
                prolific_pid=prolific_pid,
                study_id=study_id,
                session_id=session_id,
            )
    except IntegrityError:
        # The same PID joined concurrently: resume the rater the other request created.
        return Rater.objects.get(project=project, prolific_pid=prolific_pid), False
    return rater, True


def rater_consent(*, rater: Rater, consent_version_id: int) -> Rater:
    current = selectors.consent_current(project=rater.project)
    if current is None or current.pk != consent_version_id:
        raise Conflict("The consent text changed; please read the current version.", field="consent_version")
    rater.consent_version = current
    rater.consented_at = timezone.now()
    rater.save(update_fields=["consent_version", "consented_at"])
    return rater


DEMOGRAPHIC_FIELDS = ("country", "languages", "age_band", "gender", "expertise", "colour_vision", "device")


def demographics_submit(*, rater: Rater, **answers: str) -> Demographics:
    """Store self-reported demographics. Every field may be left blank or 'prefer_not'."""
    unknown = set(answers) - set(DEMOGRAPHIC_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown demographics field: {sorted(unknown)[0]}.", field=sorted(unknown)[0])
    clean: dict[str, str] = {}
    for name in DEMOGRAPHIC_FIELDS:
        value = (answers.get(name) or "").strip()
        field = Demographics._meta.get_field(name)
        if field.choices and value and value not in dict(field.choices):
            raise InvalidInput(f"'{value}' is not a valid choice for {name}.", field=name)
        if len(value) > field.max_length:
            raise InvalidInput(f"{name} is too long (at most {field.max_length} characters).", field=name)
        clean[name] = value
    demographics, _ = Demographics.objects.update_or_create(rater=rater, defaults=clean)
    return demographics


def rater_acknowledge_instructions(*, rater: Rater, instruction_version_id: int) -> Rater:
    """Record that the rater read the current instructions. Marks the version as shown (now immutable)."""
    current = selectors.instruction_current(project=rater.project)
    if current is None or current.pk != instruction_version_id:
        raise Conflict(
            "These instructions are no longer current; please read the new version.",
            field="instruction_version",
            code="instructions_changed",
        )
    now = timezone.now()
    InstructionVersion.objects.filter(pk=current.pk, first_shown_at__isnull=True).update(first_shown_at=now)
    rater.acknowledged_instruction = current
    rater.acknowledged_at = now
    rater.save(update_fields=["acknowledged_instruction", "acknowledged_at"])
    return rater


def rater_complete(*, rater: Rater) -> Rater:
    if rater.completed_at is None:
        rater.completed_at = timezone.now()
        rater.save(update_fields=["completed_at"])
    return rater


# Assignment -----------------------------------------------------------------------------------------


def assignment_next(*, rater: Rater) -> Assignment | None:
    """The rater's open assignment, or a new one, or None when nothing is left for them.

    Policy: tasks with the fewest assignments first (random among equals), never a task
    this rater already had, never more than ``overlap`` raters per task. The slot is taken
    with a conditional UPDATE, so concurrent raters cannot over-fill a task; on PostgreSQL
    rows being claimed by others are skipped (``SKIP LOCKED``) rather than waited for.

    Repeats: with probability ``project.repeat_rate`` (drawn from ``random.Random`` seeded by
    the rater's id and answer count, so a rater's stream is reproducible) the next assignment
    re-shows a pairwise task the rater answered at least :data:`REPEAT_MIN_GAP` assignments
    ago, sides swapped (see :func:`_repeat_create`). Repeats take no slot and do not count
    towards ``tasks_per_rater``; they are only served while a new task is still available, so
    they never delay a rater's completion.
    """
    open_assignment = selectors.assignment_open(rater=rater)
    if open_assignment is not None:
        return open_assignment
    project = rater.project
    if project.tasks_per_rater and rater.n_judgments - rater.n_repeats >= project.tasks_per_rater:
        return None
    already_seen = Assignment.objects.filter(task=OuterRef("pk"), rater=rater)
    available = Task.objects.filter(project=project, n_assigned__lt=project.overlap).exclude(Exists(already_seen))
    if project.repeat_rate > 0:
        rng = random.Random(f"{rater.pk}:{rater.n_judgments}")
        if rng.random() < project.repeat_rate and available.exists():
            repeat = _repeat_create(rater=rater, rng=rng)
            if repeat is not None:
                return repeat
    for _attempt in range(8):
        with transaction.atomic():
            task = (
                available
                .order_by("n_assigned", "shuffle_key")
                .select_for_update(skip_locked=True)
                .only("id", "item_a_id", "item_b_id")
                .first()
            )
            if task is None:
                return None
            claimed = Task.objects.filter(pk=task.pk, n_assigned__lt=project.overlap).update(
                n_assigned=F("n_assigned") + 1
            )
            if not claimed:
                continue
            left, right = (task.item_a_id, task.item_b_id)
            if right is not None and secrets.randbelow(2):
                left, right = right, left
            try:
                with transaction.atomic():
                    Assignment.objects.create(
                        task_id=task.pk, rater=rater, project=project, left_item_id=left, right_item_id=right
                    )
            except IntegrityError:
                # A concurrent request of the same rater opened an assignment first: give the slot back.
                Task.objects.filter(pk=task.pk).update(n_assigned=F("n_assigned") - 1)
        break
    # The new (or concurrently opened) assignment, with its task and images loaded in the same query.
    return selectors.assignment_open(rater=rater)


def _repeat_create(*, rater: Rater, rng: random.Random) -> Assignment | None:
    """Open a repeat of one of the rater's answered pairwise assignments, or None if none is eligible.

    Eligible: answered, not itself a repeat, not yet repeated, and followed by at least
    :data:`REPEAT_MIN_GAP` other assignments of this rater (so the repeat is never shown within
    three tasks of the first showing). One is chosen with ``rng``; the repeat shows its task with
    left and right swapped and takes no slot of the task.
    """
    recent = list(
        Assignment.objects.filter(rater=rater).order_by("-id").values_list("id", flat=True)[:REPEAT_MIN_GAP]
    )
    if len(recent) < REPEAT_MIN_GAP:
        return None
    eligible = (
        Assignment.objects.filter(rater=rater, is_repeat=False, state=AssignmentState.ANSWERED,
                                  right_item__isnull=False, id__lt=recent[-1])
        .exclude(Exists(Assignment.objects.filter(repeat_of=OuterRef("pk"))))
        .order_by("id")
    )
    n_eligible = eligible.count()
    if not n_eligible:
        return None
    original = eligible.values("id", "task_id", "left_item_id", "right_item_id")[rng.randrange(n_eligible)]
    try:
        with transaction.atomic():
            return Assignment.objects.create(
                task_id=original["task_id"], rater=rater, project=rater.project, is_repeat=True,
                repeat_of_id=original["id"], left_item_id=original["right_item_id"],
                right_item_id=original["left_item_id"],
            )
    except IntegrityError:
        # A concurrent request of the same rater opened an assignment (or this repeat) first.
        return selectors.assignment_open(rater=rater)


# Judgments -------------------------------------------------------------------------------------------


def _parse_idempotency_key(value) -> uuid.UUID:
    if value in (None, ""):
        raise InvalidInput("idempotency_key is required (a UUID the client makes once per answer).",
                           field="idempotency_key")
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput("idempotency_key must be a UUID.", field="idempotency_key") from None


def judgment_create(
    *,
    rater: Rater,
    assignment_id: int,
    choice: str,
    idempotency_key,
    instruction_version_id: int,
    response_time_ms: int | None = None,
    flags: Sequence[str] = (),
) -> tuple[Judgment, bool]:
    """Store a pairwise answer once. Returns ``(judgment, created)``.

    A retry with the same idempotency key returns the stored judgment and stores
    nothing. The answer is refused (nothing stored) if the assignment is not this
    rater's, was already answered, or the rater has not read the current instructions.
    """
    key = _parse_idempotency_key(idempotency_key)
    if choice not in Choice.values:
        raise InvalidInput(f"choice must be one of {', '.join(Choice.values)}.", field="choice")
    if response_time_ms is not None and (
        not isinstance(response_time_ms, int) or not 0 <= response_time_ms <= MAX_RESPONSE_TIME_MS
    ):
        raise InvalidInput("response_time_ms must be a whole number of milliseconds, at most a day.",
                           field="response_time_ms")
    flags = list(flags or ())
    allowed_flags = set(rater.project.pairwise_flags or ())
    bad = [f for f in flags if f not in allowed_flags]
    if bad:
        raise InvalidInput(f"Unknown flag '{bad[0]}' for this project.", field="flags")
    try:
        with transaction.atomic():
            assignment, replayed = _assignment_for_answer(rater=rater, assignment_id=assignment_id, key=key,
                                                          model=Judgment)
            if replayed is not None:
                return replayed, False
            if assignment.right_item_id is None:
                raise InvalidInput("This assignment is about one image; submit it as an annotation.",
                                   field="assignment")
            current = _instructions_read(rater=rater, instruction_version_id=instruction_version_id)
            if choice == Choice.TIE:
                winner = loser = None
            elif choice == Choice.LEFT:
                winner, loser = assignment.left_item_id, assignment.right_item_id
            else:
                winner, loser = assignment.right_item_id, assignment.left_item_id
            judgment = Judgment.objects.create(
                idempotency_key=key,
                project_id=rater.project_id,
                task_id=assignment.task_id,
                assignment=assignment,
                rater=rater,
                instruction_version=current,
                left_item_id=assignment.left_item_id,
                right_item_id=assignment.right_item_id,
                choice=choice,
                winner_id=winner,
                loser_id=loser,
                is_tie=choice == Choice.TIE,
                is_repeat=assignment.is_repeat,
                flags=flags,
                response_time_ms=response_time_ms,
                shown_at=assignment.shown_at,
            )
            _assignment_answered(assignment=assignment, rater=rater)
            _after_judgment(project_id=rater.project_id)
    except IntegrityError:
        existing = Judgment.objects.filter(idempotency_key=key).first()
        if existing is None:
            raise Conflict("This assignment was already answered.", field="assignment",
                           code="already_answered") from None
        return _replay(existing, rater=rater, assignment_id=assignment_id), False
    rater.n_judgments += 1
    rater.n_repeats += int(judgment.is_repeat)
    return judgment, True


def _replay(existing: Judgment, *, rater: Rater, assignment_id: int) -> Judgment:
    if existing.rater_id != rater.pk or existing.assignment_id != assignment_id:
        raise Conflict("This idempotency_key was already used for another answer.", field="idempotency_key")
    return existing


def _assignment_for_answer(*, rater: Rater, assignment_id: int, key: uuid.UUID, model):
    """Lock the rater's assignment for an answer. Returns ``(assignment, replayed answer or None)``.

    Refuses someone else's assignment (404) and an assignment already answered (409). The
    idempotency key is checked again after the lock: a concurrent retry may have just won it.
    """
    assignment = (
        Assignment.objects.select_for_update()
        .select_related("task", "left_item")
        .filter(pk=assignment_id, rater=rater, project_id=rater.project_id)
        .first()
    )
    if assignment is None:
        raise NotFound(f"Assignment {assignment_id} is not one of yours.", field="assignment")
    replayed = model.objects.filter(idempotency_key=key).first()
    if replayed is not None:
        return assignment, _replay(replayed, rater=rater, assignment_id=assignment_id)
    if assignment.state == AssignmentState.ANSWERED:
        raise Conflict("This assignment was already answered.", field="assignment", code="already_answered")
    return assignment, None


def _instructions_read(*, rater: Rater, instruction_version_id: int) -> InstructionVersion:
    """The current instruction version, if the rater read it and answers under it; else 409."""
    current = selectors.instruction_current(project=rater.project)
    if current is None or instruction_version_id != current.pk or rater.acknowledged_instruction_id != current.pk:
        raise Conflict("The instructions changed since you read them; please read the new version.",
                       field="instruction_version", code="instructions_changed")
    return current


def _assignment_answered(*, assignment: Assignment, rater: Rater) -> None:
    """Counters and state after an answer. A late answer to an expired assignment takes its slot back.

    A repeat's answer leaves the task's counters alone (a repeat is a consistency probe, not a
    vote towards the overlap) and is counted in the rater's ``n_repeats`` as well as ``n_judgments``.
    """
    Assignment.objects.filter(pk=assignment.pk).update(state=AssignmentState.ANSWERED, answered_at=timezone.now())
    if assignment.is_repeat:
        Rater.objects.filter(pk=rater.pk).update(n_judgments=F("n_judgments") + 1, n_repeats=F("n_repeats") + 1)
        return
    slot = 1 if assignment.state == AssignmentState.EXPIRED else 0
    Task.objects.filter(pk=assignment.task_id).update(n_judgments=F("n_judgments") + 1,
                                                      n_assigned=F("n_assigned") + slot)
    Rater.objects.filter(pk=rater.pk).update(n_judgments=F("n_judgments") + 1)


def assignments_expire(*, older_than: timedelta, limit: int = 10_000) -> int:
    """Free the slots of assignments left open longer than ``older_than`` (raters who walked away).

    The task goes back to the pool so other raters can answer it. If the rater comes back and
    answers after all, the answer is still stored (it is never lost) and the task may then have
    one answer more than its overlap. Returns the number of assignments expired.

    An expired repeat held no slot, so none is given back; its original is not repeated again.
    """
    cutoff = timezone.now() - older_than
    with transaction.atomic():
        stale = list(
            Assignment.objects.select_for_update(skip_locked=True)
            .filter(state=AssignmentState.OPEN, shown_at__lt=cutoff)
            .values_list("pk", "task_id", "is_repeat")[:limit]
        )
        if not stale:
            return 0
        Assignment.objects.filter(pk__in=[pk for pk, _, _ in stale]).update(state=AssignmentState.EXPIRED)
        per_task: dict[int, int] = defaultdict(int)
        for _, task_id, is_repeat in stale:
            if not is_repeat:
                per_task[task_id] += 1
        for task_id, n in sorted(per_task.items()):
            Task.objects.filter(pk=task_id).update(n_assigned=F("n_assigned") - n)
    return len(stale)


def _after_judgment(*, project_id: int) -> None:
    """Side effects of a new judgment, called (not signalled) inside its transaction."""
    from ranking.services import fit_refit_requested  # ranking depends on annotator, not the reverse

    fit_refit_requested(project_id=project_id)


# Task generation ----------------------------------------------------------------------------------


def _create_pairs(*, project: Project, pairs: Iterable[tuple[int, int]], random_state: int | None) -> int:
    rng = random.Random(random_state)
    normalised = {(min(a, b), max(a, b)) for a, b in pairs if a != b}
    if len(normalised) > MAX_TASKS_PER_GENERATION:
        raise InvalidInput(f"At most {MAX_TASKS_PER_GENERATION} tasks can be generated at once.", field="pairs")
    existing = set(
        Task.objects.filter(project=project, kind=TaskKind.PAIRWISE).values_list("item_a_id", "item_b_id")
    )
    new = sorted(normalised - existing)
    Task.objects.bulk_create(
        [
            Task(project=project, kind=TaskKind.PAIRWISE, item_a_id=a, item_b_id=b,
                 shuffle_key=rng.randrange(2**31))
            for a, b in new
        ],
        batch_size=2000,
    )
    return len(new)


def tasks_generate_within_prompt(*, project: Project, random_state: int | None = None) -> int:
    """All pairs of items that share a prompt. Returns the number of new tasks."""
    by_prompt: dict[str, list[int]] = defaultdict(list)
    for item_id, prompt in project.items.values_list("id", "prompt"):
        by_prompt[prompt].append(item_id)
    pairs = itertools.chain.from_iterable(itertools.combinations(ids, 2) for ids in by_prompt.values())
    with transaction.atomic():
        return _create_pairs(project=project, pairs=pairs, random_state=random_state)


def tasks_generate_random(*, project: Project, budget: int, same_prompt: bool = False,
                          random_state: int | None = None) -> int:
    """Up to ``budget`` distinct random pairs (optionally only within a prompt)."""
    if not isinstance(budget, int) or not 1 <= budget <= MAX_TASKS_PER_GENERATION:
        raise InvalidInput(f"budget must be from 1 to {MAX_TASKS_PER_GENERATION}.", field="budget")
    rng = random.Random(random_state)
    groups: dict[str, list[int]] = defaultdict(list)
    for item_id, prompt in project.items.values_list("id", "prompt"):
        groups[prompt if same_prompt else ""].append(item_id)
    pools = [ids for ids in groups.values() if len(ids) >= 2]
    if not pools:
        raise InvalidInput("The project needs at least two items (sharing a prompt, if asked) to make pairs.",
                           field="budget")
    possible = sum(len(ids) * (len(ids) - 1) // 2 for ids in pools)
    budget = min(budget, possible)
    weights = [len(ids) * (len(ids) - 1) / 2 for ids in pools]
    chosen: set[tuple[int, int]] = set()
    attempts = 0
    while len(chosen) < budget and attempts < budget * 50:
        attempts += 1
        ids = rng.choices(pools, weights=weights)[0]
        a, b = rng.sample(ids, 2)
        chosen.add((min(a, b), max(a, b)))
    with transaction.atomic():
        return _create_pairs(project=project, pairs=chosen, random_state=random_state)


def tasks_generate_from_pairs(*, project: Project, pairs: Sequence[tuple[str, str]],
                              random_state: int | None = None) -> int:
    """Pairs named by item file name, sha256 or id. Every name must resolve, or nothing is created."""
    lookup: dict[str, int] = {}
    for item_id, name, sha in project.items.values_list("id", "original_name", "sha256"):
        lookup[str(item_id)] = item_id
        lookup[sha] = item_id
        lookup.setdefault(name, item_id)
    resolved = []
    for line, (a, b) in enumerate(pairs, start=1):
        missing = [ref for ref in (a, b) if ref not in lookup]
        if missing:
            raise InvalidInput(f"Pair list line {line}: no item named '{missing[0]}' in this project.", field="pairs")
        if lookup[a] == lookup[b]:
            raise InvalidInput(f"Pair list line {line}: an item cannot be compared with itself.", field="pairs")
        resolved.append((lookup[a], lookup[b]))
    if not resolved:
        raise InvalidInput("The pair list is empty.", field="pairs")
    with transaction.atomic():
        return _create_pairs(project=project, pairs=resolved, random_state=random_state)


def tasks_generate(*, project: Project, strategy: str, budget: int | None = None, same_prompt: bool = False,
                   pairs=None, overlap: int | None = None, random_state: int | None = None) -> int:
    """Make pairwise tasks by one of the strategies (optionally setting overlap k first)."""
    if overlap is not None:
        project_update(project=project, overlap=overlap)
    if strategy == "within_prompt":
        return tasks_generate_within_prompt(project=project, random_state=random_state)
    if strategy == "random":
        return tasks_generate_random(project=project, budget=budget, same_prompt=same_prompt,
                                              random_state=random_state)
    return tasks_generate_from_pairs(project=project, pairs=[tuple(p) for p in pairs],
                                              random_state=random_state)


# Rich feedback and checklists ---------------------------------------------------------------------


def project_feedback_update(*, project: Project, likert_dimensions=None, checklist=None) -> Project:
    """Set the project's Likert dimensions and/or checklist questions (validated; None leaves as is)."""
    fields = []
    if likert_dimensions is not None:
        try:
            project.likert_dimensions = feedback.clean_likert_dimensions(likert_dimensions)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="likert_dimensions") from None
        fields.append("likert_dimensions")
    if checklist is not None:
        try:
            project.checklist = feedback.clean_checklist(checklist)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="checklist") from None
        fields.append("checklist")
    if fields:
        project.save(update_fields=fields)
    return project


def tasks_generate_single(*, project: Project, kind: str, overlap: int | None = None,
                          random_state: int | None = None) -> int:
    """One task of ``kind`` (rich or checklist) per item that has none yet. Returns the number created.

    Each task is answered by ``overlap`` raters (RichHF-18K used 3); pass ``overlap`` to set it first.
    """
    if kind not in SINGLE_ITEM_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(SINGLE_ITEM_KINDS)}.", field="kind")
    if kind == TaskKind.CHECKLIST and not project.checklist:
        raise InvalidInput("Define the checklist questions before making checklist tasks.", field="checklist")
    if overlap is not None:
        project_update(project=project, overlap=overlap)
    rng = random.Random(random_state)
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        have = set(Task.objects.filter(project=project, kind=kind).values_list("item_a_id", flat=True))
        new = [i for i in project.items.order_by("id").values_list("id", flat=True) if i not in have]
        if len(new) > MAX_TASKS_PER_GENERATION:
            raise InvalidInput(f"At most {MAX_TASKS_PER_GENERATION} tasks can be generated at once.", field="kind")
        Task.objects.bulk_create(
            [Task(project=project, kind=kind, item_a_id=i, item_b_id=None, shuffle_key=rng.randrange(2**31))
             for i in new],
            batch_size=2000,
        )
    return len(new)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _clean_points(points) -> list[dict]:
    if points is None:
        return []
    if not isinstance(points, (list, tuple)):
        raise InvalidInput("points must be a list of {x, y, kind}.", field="points")
    counts: dict[str, int] = defaultdict(int)
    clean = []
    for n, point in enumerate(points, start=1):
        if not isinstance(point, dict) or set(point) - {"x", "y", "kind"}:
            raise InvalidInput(f"Point {n} must be an object with x, y and kind.", field="points")
        kind = point.get("kind")
        if kind not in feedback.POINT_KINDS:
            raise InvalidInput(f"Point {n}: kind must be one of {', '.join(feedback.POINT_KINDS)}.", field="points")
        x, y = point.get("x"), point.get("y")
        if not (_is_number(x) and _is_number(y) and 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise InvalidInput(f"Point {n} lies outside the image: x and y must be numbers from 0 to 1.",
                               field="points")
        counts[kind] += 1
        if counts[kind] > feedback.MAX_POINTS:
            raise InvalidInput(f"At most {feedback.MAX_POINTS} {kind} points.", field="points")
        clean.append({"x": float(x), "y": float(y), "kind": kind})
    return clean


def _clean_words(words, *, n_tokens: int) -> list[int]:
    if words is None:
        return []
    if not isinstance(words, (list, tuple)) or not all(_is_int(w) for w in words):
        raise InvalidInput("misaligned_words must be a list of word indices.", field="misaligned_words")
    bad = [w for w in words if not 0 <= w < n_tokens]
    if bad:
        raise InvalidInput(f"Word index {bad[0]} is out of range: the prompt has {n_tokens} word(s).",
                           field="misaligned_words")
    return sorted(set(words))


def _clean_scores(scores, *, dimensions: list[dict]) -> dict[str, int]:
    if not isinstance(scores, dict):
        raise InvalidInput("scores must map each dimension to a score from 1 to 5.", field="scores")
    names = [d["name"] for d in dimensions]
    unknown = sorted(set(scores) - set(names))
    if unknown:
        raise InvalidInput(f"Unknown score dimension '{unknown[0]}'.", field="scores")
    clean = {}
    for name in names:
        if name not in scores or scores[name] is None:
            raise InvalidInput(f"Please give a score for {name}.", field="scores")
        value = scores[name]
        if not _is_int(value) or not feedback.LIKERT_MIN <= value <= feedback.LIKERT_MAX:
            raise InvalidInput(f"The {name} score must be a whole number from {feedback.LIKERT_MIN} to "
                               f"{feedback.LIKERT_MAX}.", field="scores")
        clean[name] = value
    return clean


def _clean_answers(answers, *, questions: list[dict]) -> dict[str, bool]:
    if not isinstance(answers, dict):
        raise InvalidInput("checklist must map question ids to true or false.", field="checklist")
    ids = {q["id"] for q in questions}
    unknown = sorted(set(answers) - ids)
    if unknown:
        raise InvalidInput(f"Unknown checklist question '{unknown[0]}'.", field="checklist")
    clean = {}
    for q in questions:
        value = answers.get(q["id"])
        if value is None:
            if q.get("required", True):
                raise InvalidInput(f"Please answer: {q['question']}", field="checklist")
            continue
        if not isinstance(value, bool):
            raise InvalidInput(f"The answer to '{q['id']}' must be true or false.", field="checklist")
        clean[q["id"]] = value
    return clean


def annotation_create(
    *,
    rater: Rater,
    assignment_id: int,
    idempotency_key,
    instruction_version_id: int,
    points=None,
    misaligned_words=None,
    scores=None,
    checklist=None,
    response_time_ms: int | None = None,
) -> tuple[Annotation, bool]:
    """Store a rich-feedback or checklist answer once. Returns ``(annotation, created)``.

    The same rules as :func:`judgment_create`: a retry with the same idempotency key returns the
    stored row; another rater's assignment is NotFound; an answered one is a Conflict; stale
    instructions are a Conflict with code ``instructions_changed``. The input is checked against the
    assignment's task kind (rich: points, misaligned_words, scores; checklist: checklist answers) and
    any fault raises InvalidInput naming the field, with nothing stored.
    """
    key = _parse_idempotency_key(idempotency_key)
    existing = Annotation.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return _replay(existing, rater=rater, assignment_id=assignment_id), False
    if response_time_ms is not None and (
        not _is_int(response_time_ms) or not 0 <= response_time_ms <= MAX_RESPONSE_TIME_MS
    ):
        raise InvalidInput("response_time_ms must be a whole number of milliseconds, at most a day.",
                           field="response_time_ms")
    project = rater.project
    try:
        with transaction.atomic():
            assignment, replayed = _assignment_for_answer(rater=rater, assignment_id=assignment_id, key=key,
                                                          model=Annotation)
            if replayed is not None:
                return replayed, False
            kind = assignment.task.kind
            if kind not in SINGLE_ITEM_KINDS:
                raise InvalidInput("This assignment is a pairwise comparison; submit it as a judgment.",
                                   field="assignment")
            current = _instructions_read(rater=rater, instruction_version_id=instruction_version_id)
            item = assignment.left_item
            values = {"points": [], "misaligned_words": [], "scores": {}, "answers": {}}
            if kind == TaskKind.RICH:
                if checklist:
                    raise InvalidInput("A rich-feedback task has no checklist.", field="checklist")
                values["points"] = _clean_points(points)
                values["misaligned_words"] = _clean_words(
                    misaligned_words, n_tokens=len(feedback.prompt_tokens(item.prompt)))
                values["scores"] = _clean_scores(scores, dimensions=project.likert_dimensions)
            else:
                for name, given in (("points", points), ("misaligned_words", misaligned_words), ("scores", scores)):
                    if given:
                        raise InvalidInput(f"A checklist task has no {name}.", field=name)
                values["answers"] = _clean_answers(checklist, questions=project.checklist)
            annotation = Annotation.objects.create(
                idempotency_key=key,
                project_id=rater.project_id,
                task_id=assignment.task_id,
                assignment=assignment,
                rater=rater,
                instruction_version=current,
                item=item,
                kind=kind,
                response_time_ms=response_time_ms,
                shown_at=assignment.shown_at,
                **values,
            )
            _assignment_answered(assignment=assignment, rater=rater)
    except IntegrityError:
        existing = Annotation.objects.filter(idempotency_key=key).first()
        if existing is None:
            raise Conflict("This assignment was already answered.", field="assignment",
                           code="already_answered") from None
        return _replay(existing, rater=rater, assignment_id=assignment_id), False
    rater.n_judgments += 1
    return annotation, True
