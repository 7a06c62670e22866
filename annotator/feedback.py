"""The rich feedback protocol (RichHF-18K): point kinds, limits, the default Likert scores, prompt words.

Shared by models, services, pages and consolidation; validation of what researchers and raters send is in
:mod:`annotator.services.annotations`.

RichHF-18K (Liang et al., CVPR 2024) labels misaligned prompt words by their index in the prompt
split on plain spaces and the characters , . ? ! " : ;  — :func:`prompt_tokens` reproduces that split so
exported word indices line up with the public dataset, and :func:`normalise_prompt` (applied to every
prompt PrefLab stores) turns other whitespace into plain spaces first. Plain Python, no database access.
"""

from __future__ import annotations

import re

#: Point kinds a rater can click: implausibility/artifact, or does not match the prompt.
POINT_KINDS = ("artifact", "misalignment")

#: At most this many points per kind in one annotation (a guard against junk, far above real use).
MAX_POINTS = 200

LIKERT_MIN, LIKERT_MAX = 1, 5



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


def normalise_prompt(prompt: str) -> str:
    """The prompt as PrefLab stores it: every whitespace character (tab, newline, no-break space…) made a
    plain space, so that :func:`prompt_tokens` splits it where a reader sees a word boundary. Index
    preserving: one character in, one character out."""
    return "".join(" " if ch.isspace() else ch for ch in prompt)


def prompt_tokens(prompt: str) -> list[str]:
    r"""The prompt's words exactly as RichHF-18K indexes them.

    RichHF-18K's own matching code splits the prompt at every plain space (U+0020) and every one of
    the characters ``, . ? ! " : ;`` and drops the empty pieces. Nothing else separates words:
    a tab, a newline or a no-break space stays inside its word, as it does there, so the word
    indices PrefLab stores and exports line up with what RichHF's code finds in the same prompt
    text. (Prompts are meant to be stored with every other whitespace character already replaced
    by a plain space; for such prompts this split equals splitting on any whitespace.) Other
    punctuation (apostrophes, hyphens, parentheses) stays inside its word.

    >>> prompt_tokens('A cat, "sitting" on a mat.')
    ['A', 'cat', 'sitting', 'on', 'a', 'mat']
    >>> prompt_tokens("two\tcats")
    ['two\tcats']
    """
    return [t for t in re.split(r'[ ,.?!":;]+', prompt or "") if t]
