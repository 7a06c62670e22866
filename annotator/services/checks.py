"""Quality checks: gold pairs (a known answer) and attention checks (an instructed response).

A researcher makes a check from two of the project's images (``check_create``): the pair in the order
chosen (left, right), the expected answer in those terms, and for an attention check the instruction the
rater reads above the images (e.g. "Attention check: choose the image on the right."). A check is a
pairwise :class:`~annotator.models.Task` with ``check_kind`` set, so it is shown exactly like a task; but:

- it is handed out only as a check, at the project's ``check_rate``, to each rater at most once
  (:func:`annotator.services.assignments.assignment_next`); a gold pair's sides are drawn at random, an
  attention check is shown as stored;
- its answers are Judgments with ``is_check`` (append-only, stored through the same skeleton, so a retry is
  stored once) and ``check_passed``; they are never data: no fit, agreement or calibration report, export,
  release, datasheet count, progress figure or ``tasks_per_rater`` count includes them;
- a rater who fails ``check_fail_limit`` checks (when set) is screened out (:func:`rater_screen_if_failing`):
  excluded by PrefLab itself (:func:`annotator.services.quality.rater_exclude` with no author), handed no
  further task, and never given the completion code.

Retiring a check (``check_retire``) hides it from new raters; its answers are kept.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from annotator.errors import Conflict, InvalidInput, NotFound
from annotator.models import CheckKind, Choice, Item, Judgment, Project, Rater, Task, TaskKind
from annotator.services.quality import rater_exclude

MAX_INSTRUCTION_CHARS = 500


def check_create(*, project: Project, kind: str, left_item_id, right_item_id, answer: str,
                 instruction: str = "") -> Task:
    """A new quality check of ``project``: ``kind`` gold or attention; the images shown left and right (ids
    of the project's current images); ``answer`` left, right or tie; ``instruction`` (attention checks: required;
    gold pairs: none — a gold pair must look like any task). Raises InvalidInput naming the field."""
    if kind not in (CheckKind.GOLD, CheckKind.ATTENTION):
        raise InvalidInput("kind must be gold or attention.", field="kind")
    ids = []
    for field, value in (("left_item", left_item_id), ("right_item", right_item_id)):
        try:
            ids.append(int(value))
        except (TypeError, ValueError):
            raise InvalidInput(f"{field} must be the id of one of the project's images.", field=field) from None
    if ids[0] == ids[1]:
        raise InvalidInput("Choose two different images.", field="right_item")
    items = Item.objects.in_bulk(ids)
    for field, item_id in zip(("left_item", "right_item"), ids, strict=True):
        item = items.get(item_id)
        if item is None or item.project_id != project.pk:
            raise InvalidInput(f"No image {item_id} in this project.", field=field)
        if item.retired_at is not None:
            raise InvalidInput(f"The image {item.original_name} is retired.", field=field)
    if answer not in Choice.values:
        raise InvalidInput(f"answer must be one of {', '.join(Choice.values)}.", field="answer")
    if answer == Choice.TIE and not project.allow_tie:
        raise InvalidInput("This study offers no “about the same” answer, so it cannot be a check's answer.",
                           field="answer")
    instruction = " ".join((instruction or "").split()) if isinstance(instruction, str) or instruction is None else None
    if instruction is None:
        raise InvalidInput("instruction must be text.", field="instruction")
    if kind == CheckKind.ATTENTION and not instruction:
        raise InvalidInput("An attention check needs an instruction, e.g. “Attention check: choose the image on "
                           "the right.”", field="instruction")
    if kind == CheckKind.GOLD and instruction:
        raise InvalidInput("A gold pair has no instruction: it must look like any other task.", field="instruction")
    if len(instruction) > MAX_INSTRUCTION_CHARS:
        raise InvalidInput(f"The instruction must be at most {MAX_INSTRUCTION_CHARS} characters.",
                           field="instruction")
    with transaction.atomic():
        return Task.objects.create(project=project, kind=TaskKind.PAIRWISE, item_a_id=ids[0], item_b_id=ids[1],
                                   check_kind=kind, check_answer=answer, check_instruction=instruction)


def check_retire(*, project: Project, check_id) -> Task:
    """Hand the check to no new rater (an assignment already open may still be answered; answers are kept).
    Raises NotFound for a task that is not one of the project's checks, Conflict if it is retired already."""
    with transaction.atomic():
        check = (Task.objects.select_for_update().filter(pk=check_id, project=project)
                 .exclude(check_kind=CheckKind.NONE).first())
        if check is None:
            raise NotFound(f"No quality check {check_id} in this project.", field="check")
        if check.check_retired_at is not None:
            raise Conflict("This check is retired already.", field="check")
        check.check_retired_at = timezone.now()
        check.save(update_fields=["check_retired_at"])
    return check


def check_passed(*, task: Task, winner_id: int | None, is_tie: bool) -> bool:
    """Whether an answer (in terms of items: the winner, or a tie) is the check's expected one."""
    if task.check_answer == Choice.TIE:
        return is_tie
    expected = task.item_a_id if task.check_answer == Choice.LEFT else task.item_b_id
    return not is_tie and winner_id == expected


def rater_screen_if_failing(*, rater: Rater, project: Project) -> bool:
    """After a failed check: screen the rater out if they have now failed ``project.check_fail_limit`` checks
    (and are not excluded already). Runs inside the answer's transaction, which holds the rater's row (its
    counters were just updated), so the decision cannot race another answer. The places of the tasks the rater
    answered are given back (:func:`annotator.services.quality.rater_exclude` with ``release_places``). Returns
    True if screened out."""
    if not project.check_fail_limit:
        return False
    counts = Judgment.objects.filter(rater=rater, is_check=True).aggregate(
        n=Count("id"), failed=Count("id", filter=Q(check_passed=False)))
    if counts["failed"] < project.check_fail_limit:
        return False
    if Rater.objects.filter(pk=rater.pk, excluded_at__isnull=False).exists():
        return False
    # the tasks they answered go back to the pool, as when a researcher excludes with that option: their
    # answers are left out of every fit, so other raters fill those places
    rater_exclude(rater=rater, by_user=None, release_places=True,
                  reason=f"Screened out: failed {counts['failed']} of {counts['n']} quality checks.")
    return True
