"""prompt_tokens follows RichHF-18K's word split exactly (no database; annotator.feedback is plain Python)."""

import pytest

from annotator.feedback import prompt_tokens

DELIMITERS = ' ,.?!":;'  # RichHF-18K: a plain space and these seven characters, nothing else


def richhf_split(prompt):
    """The rule RichHF-18K's matching code applies, written out character by character."""
    tokens, word = [], ""
    for ch in prompt:
        if ch in DELIMITERS:
            if word:
                tokens.append(word)
            word = ""
        else:
            word += ch
    if word:
        tokens.append(word)
    return tokens


@pytest.mark.parametrize("prompt, tokens", [
    ('A cat, "sitting" on a mat.', ["A", "cat", "sitting", "on", "a", "mat"]),
    ("A photo of a dog; it's running: fast!", ["A", "photo", "of", "a", "dog", "it's", "running", "fast"]),
    ("Why?  Two   cats...and a dog", ["Why", "Two", "cats", "and", "a", "dog"]),
    ("a well-known (old) café", ["a", "well-known", "(old)", "café"]),
    ("", []),
    (' , . ? ! " : ; ', []),
    # Only U+0020 separates words: tabs, newlines and no-break spaces stay inside a word.
    ("two\tcats", ["two\tcats"]),
    ("a dog\nrunning", ["a", "dog\nrunning"]),
    ("red\u00a0car, blue\u2009sky", ["red\u00a0car", "blue\u2009sky"]),
    ("\tleading tab", ["\tleading", "tab"]),
])
def test_prompt_tokens_match_richhf(prompt, tokens):
    assert prompt_tokens(prompt) == tokens
    assert richhf_split(prompt) == tokens


def test_prompt_tokens_equal_the_reference_on_random_text():
    import random

    rng = random.Random(0)
    alphabet = "ab-'()é" + DELIMITERS + "\t\n\r\u00a0\u2003\u3000\x0b"
    for _ in range(2000):
        prompt = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert prompt_tokens(prompt) == richhf_split(prompt)


def test_normalised_prompts_split_as_on_any_whitespace():
    # With every other whitespace character replaced by a plain space (how prompts are meant to be
    # stored), the tokens are those of a split on any whitespace: stored word indices keep their words.
    import re

    prompt = "Two\tcats\n on a\u00a0mat,  one\u2003asleep."
    normalised = "".join(" " if ch.isspace() else ch for ch in prompt)
    assert prompt_tokens(normalised) == [t for t in re.split(r'[\s,.?!":;]+', prompt) if t]
    assert prompt_tokens(None) == []


def test_normalise_prompt_keeps_length_and_word_positions():
    from annotator.feedback import normalise_prompt, prompt_tokens

    raw = "a cat\ton a\u00a0mat,\nsleeping"
    clean = normalise_prompt(raw)
    assert clean == "a cat on a mat, sleeping" and len(clean) == len(raw)
    assert prompt_tokens(clean) == ["a", "cat", "on", "a", "mat", "sleeping"]
