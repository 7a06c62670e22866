"""Rich feedback (RichHF-18K protocol) and checklist rules shared by models, services and pages.

RichHF-18K (Liang et al., CVPR 2024) labels misaligned prompt words by their index in the prompt
split on whitespace and the characters , . ? ! " : ;  — :func:`prompt_tokens` reproduces that split so
exported word indices line up with the public dataset. Plain Python, no database access.
"""

from __future__ import annotations

import re

#: Point kinds a rater can click: implausibility/artifact, or does not match the prompt.
POINT_KINDS = ("artifact", "misalignment")

#: At most this many points per kind in one annotation (a guard against junk, far above real use).
MAX_POINTS = 200

LIKERT_MIN, LIKERT_MAX = 1, 5

_TOKEN_SPLIT = re.compile(r'[\s,.?!":;]+')
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def default_likert_dimensions() -> list[dict]:
    """RichHF-18K's four 1–5 scores, with short anchors for 1 and 5."""
    return [
        {"name": "plausibility", "label": "Plausibility", "key": "p",
         "low": "Severe artifacts, implausible", "high": "No artifacts, fully plausible"},
        {"name": "alignment", "label": "Text–image alignment", "key": "t",
         "low": "Does not match the prompt", "high": "Matches the prompt exactly"},
        {"name": "aesthetics", "label": "Aesthetics", "key": "e",
         "low": "Unpleasant, poor composition", "high": "Beautiful, well composed"},
        {"name": "overall", "label": "Overall", "key": "o",
         "low": "Very poor", "high": "Excellent"},
    ]


def prompt_tokens(prompt: str) -> list[str]:
    """The prompt's words as RichHF-18K indexes them.

    Split on runs of whitespace and of the characters ``, . ? ! " : ;``; empty pieces are dropped.
    Other punctuation (apostrophes, hyphens, parentheses) stays inside its word.

    >>> prompt_tokens('A cat, "sitting" on a mat.')
    ['A', 'cat', 'sitting', 'on', 'a', 'mat']
    """
    return [t for t in _TOKEN_SPLIT.split(prompt or "") if t]


def clean_likert_dimensions(value) -> list[dict]:
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


def clean_checklist(value) -> list[dict]:
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
