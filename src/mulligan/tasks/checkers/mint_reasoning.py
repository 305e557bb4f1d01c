"""MINT's criterion for gsm8k, math and hotpotqa (its ``ReasoningTask``).

Both texts are lower-cased and stripped. If both read as floats, the answer is correct when
within 5% of the reference (relative); otherwise it is correct when the reference occurs
anywhere in the answer. The substring rule is generous ("16" passes for reference "6", "Yes,
both are musicians" for "yes"), and a non-decimal answer such as "\\frac{1}{2}" never matches a
decimal reference; both are MINT's behaviour and kept here so success rates compare with
MINT's. ``checkers="strict"`` selects the ``number``, ``math_equiv`` and ``exact_match``
checkers instead.

The logs MINT published predate a fix in its checker: there the tolerance was
``0.05 * reference`` without ``abs()``, so no answer could match a negative reference. This
module follows the fixed rule (MINT at commit 3f7f12c).
"""

from __future__ import annotations

from mulligan.tasks.base import CheckResult, Task
from mulligan.tasks.checkers.text_match import normalize_answer, token_f1
from mulligan.tasks.checkers.verdicts import TextChecker, verdict

RELATIVE_TOLERANCE = 0.05

INLINE_MAX_CHARS = 2_000
"""Answers judged in-process (``TextChecker.inline_max_chars``). :func:`mint_reasoning_match`
is linear in the answer's length: ``strip``/``lower``, ``float()`` (CPython's parser reads a
digit run, unicode digits or an exponent of any length in linear time, and the value is a
double, so nothing computed afterwards grows with the text: "9e999999999" is ``inf``), one
subtraction of doubles, and ``str.__contains__`` with the task's reference as the needle."""

HOTPOTQA_INLINE_MAX_CHARS = 500
"""The same, plus :func:`~mulligan.tasks.checkers.text_match.normalize_answer` three times
(``lower``, ``translate``, one regex of alternated literals between ``\\b`` anchors, ``split``)
and a ``Counter`` of tokens: linear too, but with a larger constant on non-ASCII text
("İ" * 2,000: about 1.7 ms), hence the lower limit."""


def _as_float(text: str) -> float | None:
    # Python's float() parses text without evaluating it ("1e3", "inf", "1_000" included),
    # which is exactly what MINT's float(answer) accepted.
    try:
        return float(text)
    except ValueError:
        return None


def mint_reasoning_match(reference: str, answer: str) -> tuple[bool, str]:
    """MINT's ReasoningTask comparison. Returns (correct, which rule decided)."""
    ref = reference.strip().lower()
    ans = answer.lower().strip()
    ref_value, ans_value = _as_float(ref), _as_float(ans)
    if ref_value is not None and ans_value is not None:
        ok = abs(ref_value - ans_value) <= RELATIVE_TOLERANCE * abs(ref_value)
        return ok, f"numeric: {'within' if ok else 'not within'} 5% of the reference"
    ok = ref in ans
    return ok, f"text: reference {'found' if ok else 'not found'} in the answer"


class MintNumericChecker(TextChecker):
    """gsm8k and math as MINT judged them (see the module docstring)."""

    inline_max_chars = INLINE_MAX_CHARS

    def __init__(self, name: str) -> None:
        self.name = name

    def judge(self, answer: str, task: Task) -> CheckResult:
        ok, rule = mint_reasoning_match(task.reference, answer)
        return verdict(ok, f"MINT criterion, {rule}")


class MintHotpotQAChecker(TextChecker):
    """hotpotqa as MINT judged it (reference contained in the answer), with HotpotQA's
    exact match and token F1 reported; ``score`` is the F1."""

    name = "hotpotqa"
    inline_max_chars = HOTPOTQA_INLINE_MAX_CHARS

    def judge(self, answer: str, task: Task) -> CheckResult:
        ok, rule = mint_reasoning_match(task.reference, answer)
        exact = normalize_answer(answer) == normalize_answer(task.reference)
        f1 = token_f1(answer, task.reference)
        return verdict(
            ok,
            f"MINT criterion, {rule}; exact match: {'yes' if exact else 'no'}; F1={f1:.3f}",
            score=f1,
        )
