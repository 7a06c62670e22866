"""The rich feedback protocol (RichHF-18K): point kinds, limits, the default Likert scores, prompt words.

Shared by models, services, pages and consolidation; validation of what researchers and raters send is in
:mod:`annotator.services.annotations`.

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
