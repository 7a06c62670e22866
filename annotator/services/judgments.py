"""Pairwise judgments: a rater's answer to a comparison, stored once, with its side effects."""

from __future__ import annotations

from collections.abc import Sequence

from annotator.errors import InvalidInput
from annotator.models import Assignment, Choice, Judgment, Rater, TaskKind
from annotator.services.answers import answer_create
from annotator.services.checks import check_passed, rater_screen_if_failing


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
    rater's, was already answered, or the rater has not read the current instructions
    (the rules of :func:`annotator.services.answers.answer_create`).

    An answer to a quality check is stored the same way, marked ``is_check`` and scored (``check_passed``);
    a failed one may screen the rater out (:func:`annotator.services.checks.rater_screen_if_failing`).
    """
    flags = list(flags or ())

    def validate() -> None:
        if choice not in Choice.values:
            raise InvalidInput(f"choice must be one of {', '.join(Choice.values)}.", field="choice")
        if choice == Choice.TIE and not rater.project.allow_tie:
            raise InvalidInput("This study has no “about the same” answer: choose left or right.", field="choice")
        allowed_flags = set(rater.project.pairwise_flags or ())
        bad = [f for f in flags if f not in allowed_flags]
        if bad:
            raise InvalidInput(f"Unknown flag '{bad[0]}' for this project.", field="flags")

    def fields(assignment: Assignment) -> dict:
        if choice == Choice.TIE:
            winner = loser = None
        elif choice == Choice.LEFT:
            winner, loser = assignment.left_item_id, assignment.right_item_id
        else:
            winner, loser = assignment.right_item_id, assignment.left_item_id
        is_check = bool(assignment.task.check_kind)
        return {
            "left_item_id": assignment.left_item_id,
            "right_item_id": assignment.right_item_id,
            "choice": choice,
            "winner_id": winner,
            "loser_id": loser,
            "is_tie": choice == Choice.TIE,
            "is_repeat": assignment.is_repeat,
            "is_check": is_check,
            "check_passed": (check_passed(task=assignment.task, winner_id=winner, is_tie=choice == Choice.TIE)
                             if is_check else None),
            "flags": flags,
        }

    def after(judgment: Judgment) -> None:
        """Side effects of a new judgment, called (not signalled) inside its transaction: a refit is asked
        for a data judgment; a failed check may screen the rater out (which asks for a refit itself)."""
        if judgment.is_check:
            if not judgment.check_passed:
                rater_screen_if_failing(rater=rater, project=rater.project)
            return
        _refit_requested(project_id=judgment.project_id)

    return answer_create(
        model=Judgment,
        rater=rater,
        assignment_id=assignment_id,
        idempotency_key=idempotency_key,
        instruction_version_id=instruction_version_id,
        response_time_ms=response_time_ms,
        kinds=(TaskKind.PAIRWISE,),
        wrong_kind="This assignment is about one image; submit it as an annotation.",
        validate=validate,
        fields=fields,
        after=after,
    )


def _refit_requested(*, project_id: int) -> None:
    from ranking.services import fit_refit_requested  # ranking depends on annotator, not the reverse

    fit_refit_requested(project_id=project_id)
