"""TheoremQA's answer checker, as MINT runs it (``TheoremqaTask``), without ``eval``.

The answer text goes through TheoremQA's clean-up (take what follows the last "=", drop
backticks, "$" and "°", map yes/no/true/false to booleans, drop "approximately", keep the first
of "x or y", strip a unit before or after a number, rewrite "10^k", "a x b", option letters),
is read as a value by :func:`~mulligan.tasks.checkers.safe_eval.evaluate_expression`, and is
compared by the task's ``answer_type``:

- ``integer``: the answer rounded equals the reference (a float reference: as for ``float``);
- ``float``: within 4% of the reference (relative);
- ``list of integer`` / ``list of float``: a list of the same length whose sorted items match
  the sorted reference items one by one, as above;
- ``bool`` / ``option``: equal to the reference, or to "(<reference>)" for an option letter.

As in MINT, "0" equals False and "1" equals True (Python's ``==``), and an option answer must
use a lower-case letter ("c)", "(c)" or "c"): "C) ..." is not read as an option.
"""

from __future__ import annotations

import re
from typing import Any

from mulligan.tasks.base import CheckResult, Task
from mulligan.tasks.checkers.safe_eval import (
    MAX_EXPRESSION_CHARS,
    ExpressionError,
    evaluate_expression,
)
from mulligan.tasks.checkers.verdicts import TextChecker, shorten, verdict

FLOAT_RELATIVE_TOLERANCE = 0.04

# TheoremQA's number is [-+]?[\d,]*\.*\d+; that form backtracks quadratically on a long run of
# digits (a second for 4,000). This one matches the same strings without ambiguity, and each
# rule's group is fixed by its context (the last space, the last digit, the end), so the same
# text is captured.
_NUMBER = r"[-+]?(?:[\d,]*\.+\d+|[\d,]*\d)"
# A number followed by a unit word ("5.2 m/s"), a unit word then a number ("$ 5"), a number with a
# one- or two-character suffix ("7%"), a one- or two-character prefix then a number ("$5").
_UNIT_AFTER = re.compile(rf"({_NUMBER}) [^0-9 ]+$")
_UNIT_BEFORE = re.compile(rf"[^0-9 ]+ ({_NUMBER})$")
_SHORT_SUFFIX = re.compile(rf"({_NUMBER})[^\d]{{1,2}}$")
_SHORT_PREFIX = re.compile(r"[^-+\d]{1,2}((?:[\d,]*\.+\d+|[\d,]*\d))$")
_GROUPED_NUMBER = re.compile(r"^[-+]?(\d{1,3}(,\d{3})*|(\d+))(\.\d+)?$")
_POWER_OF_TEN = re.compile(r"10\^(-?\d+)")
_OPTION = re.compile(r"\([a-d]\)")
# The answers judged in-process (``TheoremQAChecker.judge_inline``): a plain decimal of at most
# 15 + 15 ASCII digits. For these the clean-up's patterns run on at most 32 characters and the
# evaluator reads one constant (with a sign): no operator, call or nesting the answer controls.
_PLAIN_NUMBER = re.compile(r"[-+]?[0-9]{1,15}(?:\.[0-9]{1,15})?")


def normalize_theoremqa_answer(prediction: str) -> str:
    """TheoremQA's clean-up of an answer, step by step in the scorer's order; returns the text
    that is then read as a value."""
    if "=" in prediction:
        prediction = prediction.split("=")[-1].strip()
    if "≈" in prediction:
        prediction = prediction.split("≈")[-1].strip()
    for mark in ("`", "$", "°"):
        prediction = prediction.replace(mark, "")

    if prediction in ("true", "yes"):
        prediction = "True"
    elif prediction in ("false", "no"):
        prediction = "False"
    if "True" in prediction or "False" in prediction:
        prediction = "True" if "True" in prediction else "False"

    if "approximately" in prediction:
        prediction = prediction.replace("approximately", "").strip()
    if " or " in prediction:
        prediction = prediction.split(" or ")[0]

    # Each unit rule sees the result of the previous one, as in the scorer.
    for pattern in (_UNIT_AFTER, _UNIT_BEFORE, _SHORT_SUFFIX, _SHORT_PREFIX):
        match = pattern.match(prediction)
        if match:
            prediction = match.group(1)

    if "10^" in prediction:
        prediction = _POWER_OF_TEN.sub(r"math.pow(10, \1)", prediction)
    prediction = prediction.replace(" x ", "*").replace(" × ", "*")
    if _GROUPED_NUMBER.match(prediction):
        prediction = prediction.replace(",", "")

    # Option letters: the first of a..d named as "x)", "x )" or alone becomes "(x)".
    for letter in "abcd":
        if (
            f"{letter})" in prediction
            or f"{letter} )" in prediction
            or (prediction.lower().strip() == letter)
        ):
            prediction = f"({letter})"
    option = _OPTION.search(prediction)
    if option:
        prediction = f'"{option.group(0)}"'

    return prediction or "0"


def read_theoremqa_answer(text: str) -> Any:
    """The value of an answer after clean-up, or None when it cannot be read (as in MINT)."""
    if len(text) > MAX_EXPRESSION_CHARS:
        return None
    try:
        value = evaluate_expression(normalize_theoremqa_answer(text))
    except ExpressionError:
        return None
    # The scorer's type conversions: tuples and sets become lists (complex items keep their real
    # part), a complex number its real part. An empty tuple made the scorer fail: None.
    if isinstance(value, tuple | set):
        items = list(value)
        if not items:
            return None
        if isinstance(items[0], complex):
            items = [getattr(item, "real", item) for item in items]
        return items
    if isinstance(value, complex):
        return value.real
    return value


def _within_tolerance(prediction: float, reference: float) -> bool:
    margin = abs(reference) * FLOAT_RELATIVE_TOLERANCE
    return reference - margin <= prediction <= reference + margin


def compare_numbers(prediction: Any, reference: Any) -> bool:
    """A number against a reference number: rounded for an int reference, 4% for a float."""
    # bool is an int in Python, and the scorer lets it through as one.
    if not isinstance(prediction, int | float):
        return False
    if isinstance(reference, float):
        return _within_tolerance(prediction, reference)
    try:
        return bool(round(prediction) == reference)
    except (OverflowError, ValueError):  # round(inf), round(nan): the scorer crashed
        return False


def compare_lists(prediction: Any, reference: Any) -> bool:
    """Lists of numbers: same length, sorted items pairwise equal by :func:`compare_numbers`."""
    if not isinstance(prediction, list) or not isinstance(reference, list):
        return False
    if len(prediction) != len(reference):
        return False
    if not all(isinstance(x, int | float) for x in prediction):
        return False
    try:
        pairs = zip(sorted(prediction), sorted(reference), strict=True)
    except TypeError:
        return False
    return all(compare_numbers(p, g) for p, g in pairs)


def theoremqa_match(prediction: Any, reference: Any, answer_type: str) -> bool:
    """TheoremQA's comparison of a read answer with the reference value."""
    if not isinstance(prediction, str | int | float | list):
        return False
    if answer_type in ("bool", "option", "Option"):
        return bool(prediction == f"({reference})" or prediction == reference)
    if answer_type in ("integer", "float"):
        return compare_numbers(prediction, reference)
    if answer_type in ("list of integer", "list of float"):
        return compare_lists(prediction, reference)
    return False


class TheoremQAChecker(TextChecker):
    """TheoremQA by ``metadata["answer_type"]``; the reference is ``metadata["reference_value"]``
    (the typed JSON value), else ``task.reference`` read as a literal."""

    name = "theoremqa"

    def judge_inline(self, answer: str, task: Task) -> CheckResult | None:
        """Plain decimals ("42", "-3.75") are judged here, the common case; everything else
        (expressions, "10^k", lists, units) in a worker, since the evaluator's cost, bounded as
        it is, depends on what the answer writes. (A task without ``reference_value`` has its
        own reference read by the same evaluator: task data, not the model's text.)"""
        if _PLAIN_NUMBER.fullmatch(answer):
            return self.judge(answer, task)
        return None

    def judge(self, answer: str, task: Task) -> CheckResult:
        answer_type = task.metadata.get("answer_type")
        if not isinstance(answer_type, str):
            raise ValueError(
                f"task {task.suite}/{task.id}: the theoremqa checker needs metadata['answer_type']"
            )
        if "reference_value" in task.metadata:
            reference = task.metadata["reference_value"]
        else:
            try:
                reference = evaluate_expression(task.reference)
            except ExpressionError:
                reference = task.reference
        prediction = read_theoremqa_answer(answer)
        if prediction is None:
            return verdict(False, f"answer could not be read as a {answer_type}")
        ok = theoremqa_match(prediction, reference, answer_type)
        shown = shorten(repr(prediction), 60)
        return verdict(
            ok, f"read as {shown}; {'matches' if ok else 'does not match'} ({answer_type})"
        )
