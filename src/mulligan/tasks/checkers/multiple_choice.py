"""Multiple-choice checkers: MINT's (for mmlu) and a strict one-letter checker.

MINT's ``MultipleChoiceTask`` judges a lower-cased answer against a lower-case reference letter:

1. If the answer contains "a)" or "a )", it becomes "a". (MINT meant to look for every letter,
   but its loop returns on the first one, so only "a" is ever detected.)
2. Correct if the reference letter occurs anywhere in the answer. This accepts "C", "(c)" and
   "C) 18107", but also any sentence containing the letter: "None of the above" passes for
   reference "a", "I cannot determine" for "c".
3. Otherwise the option texts decide: wrong if another option's text (or a digit answer within
   5% of it) occurs in the answer, correct if the reference option's text does.

The strict checker (``multiple_choice``) wants exactly one option letter, or an answer equal to
exactly one option's text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from mulligan.tasks.base import CheckResult, Task
from mulligan.tasks.checkers.text_match import normalize_answer
from mulligan.tasks.checkers.verdicts import TextChecker, shorten, verdict
from mulligan.tasks.mint import parse_mint_options

MINT_INLINE_MAX_CHARS = 2_000
"""Answers MINT's rule judges in-process (``TextChecker.inline_max_chars``):
:func:`mint_multiple_choice` is ``lower``/``strip``, substring tests with the reference letter
and the task's option texts as needles, and ``isdigit`` + ``float()`` of the answer (linear in
its length; the value is a double). The options come from the task, not the answer."""

STRICT_INLINE_MAX_CHARS = 500
"""Answers the strict rule judges in-process. :func:`extract_choice`'s three patterns are
linear: every ``\\s*`` is followed by a token that cannot be whitespace (a letter, ")", "is",
":"), so a failed match gives back each run of spaces once, never in combination with another
run; then :func:`~mulligan.tasks.checkers.text_match.normalize_answer` (linear). Lower than
MINT's because these regex passes cost about 0.5 us a character on non-ASCII text."""


def task_options(task: Task) -> dict[str, str]:
    """The task's options ``{letter: text}``: from metadata, else parsed from the prompt."""
    options = task.metadata.get("options")
    if isinstance(options, Mapping):
        return {str(k): str(v) for k, v in options.items()}
    return parse_mint_options(task.prompt)


def _mint_contains(needle: str, answer: str) -> bool:
    # MINT's compare_w_digits: two digit strings compare within 5%; anything else by substring.
    if needle.isdigit() and answer.isdigit():
        try:
            return abs(float(needle) - float(answer)) <= 0.05 * float(needle)
        except ValueError:  # "²".isdigit() holds but float() refuses it (MINT crashed here)
            pass
    return needle in answer


def _mint_distractors(options: Mapping[str, str], correct_text: str) -> list[str]:
    """The option texts MINT tests as wrong answers.

    MINT removes the texts contained in the correct option while iterating over the same list,
    so the element after each removed one is skipped (and stays). The correct option itself is
    in the list and contained in itself, so it is removed, and its successor survives even if
    also contained in the correct text. Reproduced step by step.
    """
    texts = list(options.values())
    index = 0
    while index < len(texts):
        text = texts[index]
        if text in correct_text:
            texts.remove(text)  # removes the first equal element, as list.remove does
        index += 1
    return texts


def mint_multiple_choice(
    reference: str, answer: str, options: Mapping[str, str]
) -> tuple[bool, str]:
    """MINT's multiple-choice criterion. Returns (correct, which rule decided)."""
    ref = reference.strip().lower()
    ans = answer.lower().strip()
    if "a)" in ans or "a )" in ans:
        ans = "a"
    if _mint_contains(ref, ans):
        return True, f"reference letter '{ref}' found in the answer"
    if ref not in options:  # MINT raised KeyError here, which it counted as a wrong answer
        return False, f"reference letter '{ref}' is not among the options"
    correct_text = options[ref]
    for text in _mint_distractors(options, correct_text):
        if _mint_contains(text, ans) or text in ans:
            return False, f"answer contains the text of another option ({shorten(text, 40)!r})"
    if _mint_contains(correct_text, ans) or correct_text in ans:
        return True, "answer contains the text of the reference option"
    return False, "no option letter or text recognised"


class MintMultipleChoiceChecker(TextChecker):
    """mmlu as MINT judged it (see the module docstring)."""

    name = "mmlu"
    inline_max_chars = MINT_INLINE_MAX_CHARS

    def judge(self, answer: str, task: Task) -> CheckResult:
        ok, rule = mint_multiple_choice(task.reference, answer, task_options(task))
        return verdict(ok, f"MINT criterion: {rule}")


def extract_choice(answer: str, letters: str) -> str | None:
    """The one option letter an answer names, or None when it names none or several.

    Recognised: a bare letter ("C", "(c)", "c."), a letter followed by ")" anywhere ("C) 18107",
    "The answer is (C) 18107"), "option C" / "answer: C".
    """
    text = answer.strip()
    cls = f"[{letters}{letters.upper()}]"
    # One \s* per gap: "\s*\)?\s*" backtracked quadratically on "a", 10,000 spaces, "x" (4 s).
    bare = re.fullmatch(rf"\(?\s*({cls})\s*(?:\)\s*)?\.?", text)
    if bare:
        return bare.group(1).lower()
    found = {m.lower() for m in re.findall(rf"(?<![A-Za-z0-9])\(?({cls})\s?\)", text)}
    found |= {
        m.lower()
        for m in re.findall(
            # The same strings as "\s*(?:is\s*)?:?\s*", without two adjacent \s* that
            # backtracked for 10 s on "answer", 10,000 spaces, "x".
            rf"\b(?:option|answer|choice)\s*(?:is\s*)?(?::\s*)?\(?({cls})\b",
            text,
            re.I,
        )
    }
    return found.pop() if len(found) == 1 else None


class MultipleChoiceChecker(TextChecker):
    """Strict: correct iff the answer names exactly the reference letter, or its text equals
    exactly the reference option's text (after normalisation)."""

    name = "multiple_choice"
    inline_max_chars = STRICT_INLINE_MAX_CHARS

    def judge(self, answer: str, task: Task) -> CheckResult:
        options = task_options(task)
        reference = task.reference.strip().lower()
        letters = "".join(sorted(options)) or "abcd"
        choice = extract_choice(answer, letters)
        if choice is None:
            normalized = normalize_answer(answer)
            by_text = [k for k, v in options.items() if normalize_answer(v) == normalized]
            if len(by_text) == 1:
                choice = by_text[0]
        if choice is None:
            return verdict(False, "no single option letter found in the answer")
        ok = choice == reference
        return verdict(ok, f"answer names option '{choice}'")
