"""Rich feedback (RichHF-18K protocol) and checklists: a project's scores and questions, and a rater's answers.

The protocol itself (point kinds, Likert range, how a prompt is split into words) is defined in
:mod:`annotator.feedback`; this module validates what researchers and raters send against it and stores it.
"""

from __future__ import annotations

import re
from collections import defaultdict

from annotator.errors import InvalidInput
from annotator.feedback import LIKERT_MAX, LIKERT_MIN, MAX_POINTS, POINT_KINDS, prompt_tokens
from annotator.models import SINGLE_ITEM_KINDS, Annotation, Assignment, Project, Rater, TaskKind
from annotator.services.answers import answer_create, is_whole_number

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


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

    The same rules as :func:`annotator.services.judgment_create` (see
    :func:`annotator.services.answers.answer_create`): a retry with the same idempotency key returns the
    stored row; another rater's assignment is NotFound; an answered one is a Conflict; stale
    instructions are a Conflict with code ``instructions_changed``. The input is checked against the
    assignment's task kind (rich: points, misaligned_words, scores; checklist: checklist answers) and
    any fault raises InvalidInput naming the field, with nothing stored.
    """
    project = rater.project

    def fields(assignment: Assignment) -> dict:
        item = assignment.left_item
        values = {"item": item, "kind": assignment.task.kind,
                  "points": [], "misaligned_words": [], "scores": {}, "answers": {}}
        if assignment.task.kind == TaskKind.RICH:
            if checklist:
                raise InvalidInput("A rich-feedback task has no checklist.", field="checklist")
            values["points"] = _clean_points(points)
            values["misaligned_words"] = _clean_words(misaligned_words, n_tokens=len(prompt_tokens(item.prompt)))
            values["scores"] = _clean_scores(scores, dimensions=project.likert_dimensions)
        else:
            for name, given in (("points", points), ("misaligned_words", misaligned_words), ("scores", scores)):
                if given:
                    raise InvalidInput(f"A checklist task has no {name}.", field=name)
            values["answers"] = _clean_answers(checklist, questions=project.checklist)
        return values

    return answer_create(
        model=Annotation,
        rater=rater,
        assignment_id=assignment_id,
        idempotency_key=idempotency_key,
        instruction_version_id=instruction_version_id,
        response_time_ms=response_time_ms,
        kinds=SINGLE_ITEM_KINDS,
        wrong_kind="This assignment is a pairwise comparison; submit it as a judgment.",
        fields=fields,
    )


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
        if kind not in POINT_KINDS:
            raise InvalidInput(f"Point {n}: kind must be one of {', '.join(POINT_KINDS)}.", field="points")
        x, y = point.get("x"), point.get("y")
        if not (_is_number(x) and _is_number(y) and 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise InvalidInput(f"Point {n} lies outside the image: x and y must be numbers from 0 to 1.",
                               field="points")
        counts[kind] += 1
        if counts[kind] > MAX_POINTS:
            raise InvalidInput(f"At most {MAX_POINTS} {kind} points.", field="points")
        clean.append({"x": float(x), "y": float(y), "kind": kind})
    return clean


def _clean_words(words, *, n_tokens: int) -> list[int]:
    if words is None:
        return []
    if not isinstance(words, (list, tuple)) or not all(is_whole_number(w) for w in words):
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
        if not is_whole_number(value) or not LIKERT_MIN <= value <= LIKERT_MAX:
            raise InvalidInput(f"The {name} score must be a whole number from {LIKERT_MIN} to "
                               f"{LIKERT_MAX}.", field="scores")
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


# Project settings: Likert dimensions and checklist questions ----------------------------------------


def project_feedback_update(*, project: Project, likert_dimensions=None, checklist=None) -> Project:
    """Set the project's Likert dimensions and/or checklist questions (validated; None leaves as is)."""
    fields = []
    if likert_dimensions is not None:
        try:
            project.likert_dimensions = _likert_dimensions_clean(likert_dimensions)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="likert_dimensions") from None
        fields.append("likert_dimensions")
    if checklist is not None:
        try:
            project.checklist = _checklist_clean(checklist)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="checklist") from None
        fields.append("checklist")
    if fields:
        project.save(update_fields=fields)
    return project


def _likert_dimensions_clean(value) -> list[dict]:
    """Validated Likert dimension definitions; raises ValueError with a message naming the problem."""
    if not isinstance(value, list) or not 1 <= len(value) <= 12:
        raise ValueError("likert_dimensions must be a list of 1 to 12 dimensions.")
    seen_names, seen_keys, out = set(), set(), []
    for i, dim in enumerate(value, start=1):
        if not isinstance(dim, dict):
            raise ValueError(f"Dimension {i} must be an object with name, label, low and high.")
        unknown = set(dim) - {"name", "label", "low", "high", "key"}
        if unknown:
            raise ValueError(f"Dimension {i}: unknown key '{sorted(unknown)[0]}'.")
        name = dim.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"Dimension {i}: name must be lower-case letters, digits or _ (at most 40).")
        if name in seen_names:
            raise ValueError(f"Dimension {i}: the name '{name}' is used twice.")
        seen_names.add(name)
        clean = {"name": name}
        for field, limit in (("label", 80), ("low", 120), ("high", 120)):
            text = dim.get(field, name if field == "label" else "")
            if not isinstance(text, str) or len(text) > limit:
                raise ValueError(f"Dimension {i}: {field} must be text of at most {limit} characters.")
            clean[field] = text.strip()
        key = dim.get("key", name[0])
        if not isinstance(key, str) or len(key) != 1 or not key.isalpha() or key.lower() in "amyn":
            raise ValueError(f"Dimension {i}: key must be one letter other than A, M, Y and N.")
        key = key.lower()
        if key in seen_keys:
            raise ValueError(f"Dimension {i}: the key '{key}' is used twice.")
        seen_keys.add(key)
        clean["key"] = key
        out.append(clean)
    return out


def _checklist_clean(value) -> list[dict]:
    """Validated checklist questions; raises ValueError with a message naming the problem."""
    if not isinstance(value, list) or len(value) > 200:
        raise ValueError("checklist must be a list of at most 200 questions.")
    seen, out = set(), []
    for i, q in enumerate(value, start=1):
        if not isinstance(q, dict):
            raise ValueError(f"Question {i} must be an object with id, dimension, question and required.")
        unknown = set(q) - {"id", "dimension", "question", "required"}
        if unknown:
            raise ValueError(f"Question {i}: unknown key '{sorted(unknown)[0]}'.")
        qid = q.get("id")
        if not isinstance(qid, str) or not _NAME.match(qid):
            raise ValueError(f"Question {i}: id must be lower-case letters, digits or _ (at most 40).")
        if qid in seen:
            raise ValueError(f"Question {i}: the id '{qid}' is used twice.")
        seen.add(qid)
        dimension = q.get("dimension", "general")
        question = q.get("question")
        if not isinstance(dimension, str) or not 0 < len(dimension.strip()) <= 60:
            raise ValueError(f"Question {i}: dimension must be text of 1 to 60 characters.")
        if not isinstance(question, str) or not 0 < len(question.strip()) <= 300:
            raise ValueError(f"Question {i}: question must be text of 1 to 300 characters.")
        required = q.get("required", True)
        if not isinstance(required, bool):
            raise ValueError(f"Question {i}: required must be true or false.")
        out.append({"id": qid, "dimension": dimension.strip(), "question": question.strip(), "required": required})
    return out
