"""The strict ``number`` checker: the answer must be one number equal to the reference.

Accepted forms: "36", "-150.0", "130,000", "$131,250", "1.5e3", "7%", "36 hours" (a number then
at most a few unit words), "3/4", "\\frac{3}{4}", "\\boxed{36}", "$36$". The values must agree to
a relative 1e-6 (an integer reference thus needs the exact integer; a task's
``checker_options: {rel_tol: ...}`` sets another); a percent sign is kept as
written ("7%" reads 7). Sentences with several numbers are refused rather than guessed at.
"""

from __future__ import annotations

import re
from fractions import Fraction

from mulligan.tasks.base import CheckResult, Task
from mulligan.tasks.checkers.options import ToleranceOptions, options_of
from mulligan.tasks.checkers.verdicts import TextChecker, shorten, verdict

RELATIVE_TOLERANCE = 1e-6

_DECIMAL = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+"
_FRACTION = r"[-+]?\d+\s*/\s*\d+"
_LATEX_FRACTION = re.compile(r"^([-+]?)\\d?frac\{\s*([-+]?\d+)\s*\}\{\s*(\d+)\s*\}$")
_ANSWER = re.compile(
    rf"^(?:[$€£]\s*)?(?P<value>{_FRACTION}|{_DECIMAL})\s*(?:%|[A-Za-z][A-Za-z./ ]{{0,30}})?$"
)
_BOXED = re.compile(r"^\\boxed\{(.*)\}$", re.DOTALL)
_MATH_DELIMITERS = re.compile(r"^(?:\$\$?|\\\(|\\\[)(.*?)(?:\$\$?|\\\)|\\\])$", re.DOTALL)


def _unwrap(text: str) -> str:
    text = text.strip().rstrip(".").strip()
    for _ in range(3):  # "$\boxed{36}$" needs two passes
        before = text
        for pattern in (_MATH_DELIMITERS, _BOXED):
            match = pattern.match(text)
            if match:
                text = match.group(1).strip()
        if text == before:
            break
    return text


def parse_number(text: str) -> Fraction | float | None:
    """The number ``text`` states, exactly when it can be (``Fraction``), else as a float.

    Returns None when the text is not a single number in one of the accepted forms.
    """
    if len(text) > 200:
        return None
    text = _unwrap(text)
    latex = _LATEX_FRACTION.match(text)
    if latex:
        sign = -1 if latex.group(1) == "-" else 1
        bottom = int(latex.group(3))
        return None if bottom == 0 else sign * Fraction(int(latex.group(2)), bottom)
    match = _ANSWER.match(text)
    if not match:
        return None
    value = match.group("value").replace(",", "").replace(" ", "")
    try:
        if "/" in value:
            numerator, denominator = value.split("/")
            return None if int(denominator) == 0 else Fraction(int(numerator), int(denominator))
        if "e" in value.lower():
            return float(value)
        return Fraction(value)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def numbers_equal(
    answer: Fraction | float, reference: Fraction | float, rel_tol: float = RELATIVE_TOLERANCE
) -> bool:
    """Equal within a relative ``rel_tol`` (exactly, for a zero reference)."""
    # Compare as floats when either is one: mixing Fraction and float is what Python does anyway.
    if isinstance(answer, float) or isinstance(reference, float):
        return abs(float(answer) - float(reference)) <= rel_tol * abs(float(reference))
    return abs(answer - reference) <= rel_tol * abs(reference)


class NumberChecker(TextChecker):
    """Strict numeric answers (gsm8k in ``strict`` mode); see the module docstring."""

    name = "number"
    inline_max_chars = 2_000
    """Judged in-process up to this length: :func:`parse_number` reads at most 200 characters
    (longer text is "not a number" after one ``len``), so its anchored patterns and ``int`` /
    ``Fraction`` of at most 200 digits are bounded; an exponent goes through ``float()``, never
    ``Fraction``, so "1e999999999" is ``inf``, not a 10**9-digit integer."""

    def judge(self, answer: str, task: Task) -> CheckResult:
        reference = parse_number(task.reference)
        if reference is None:
            raise ValueError(
                f"task {task.suite}/{task.id}: reference {task.reference!r} is not a number"
            )
        value = parse_number(answer)
        if value is None:
            return verdict(False, f"not a single number: {shorten(answer.strip(), 60)!r}")
        tolerance = options_of(task.metadata, ToleranceOptions).rel_tol
        ok = numbers_equal(value, reference, tolerance)
        return verdict(ok, f"read as {float(value):g}; {'equal' if ok else 'not equal'}")
