"""Adversarial answers and sample tasks for the text checkers' in-process path, shared by
``tests/test_check_inline.py`` (same verdict in-process as in a worker) and
``benchmarks/check_latency.py --adversarial`` (the worst judge time per checker).

Each adversarial answer is written to stall a judge at the checker's inline size limit: long
digit runs, huge exponents, powers spelled in text, nesting, separators, unicode digits and
look-alikes, the patterns that make regexes backtrack, and mixtures of them.
"""

from __future__ import annotations

from mulligan.tasks.base import Task
from mulligan.tasks.checkers import CHECKERS
from mulligan.tasks.checkers.verdicts import TextChecker, _judge_pickled, declares_inline

Outcome = tuple[str, object]
"""What judging one answer gave: ``("verdict", CheckResult)`` or ``("raised", "Type: message")``."""

# Short answers that are bombs for some judge somewhere (an evaluator, a float, a regex).
BOMBS = (
    "9e999999999", "1e-999999999", "-9e999999999", "9E+999999999", "10**10**10", "10^10^10",
    "10^999999999", "9**9**9**9", "2**-99999999", "round(1, -10**7)", "1/0", "0/0", "inf",
    "-inf", "nan", "NaN", "infinity", "1_000_000", "1__0", "0x10", "1e", "e5", ".", "-", "+",
    "", " ", "0", "-0", "+0.0", "007", "00", "1.", ".5", "1.2.3", "1,000", "1,00", "$1,000",
    "12%", "3/4", "3/0", "\\frac{3}{4}", "\\frac{1}{0}", "\\boxed{36}", "$\\boxed{36}$",
    "(a)", "a)", "A)", "(c) 18107", "answer: b", "The answer is (C)", "option d", "a ) b )",
    "True", "False", "yes", "no", "[1, 2]", "(1, 2)", "{1}", "x = 5", "≈ 3", "5°", "5 m/s",
    "٣", "١٢٣", "１２", "²", "𝟗", "Ⅻ", "½", "−5", "\u200b5", "5\ufeff", "İ", "ﬁ", "\x00",
    "\ud800", "\U0001f600", "the", "an apple", "a the an", "123456789012345.123456789012345",
    "1234567890123456", "-987654321",
)  # fmt: skip


def _fill(unit: str, size: int, tail: str = "") -> str:
    """``unit`` repeated to exactly ``size`` characters, the last ones ``tail``."""
    body = size - len(tail)
    return (unit * (body // max(1, len(unit)) + 1))[: max(0, body)] + tail


def adversarial_answers(size: int) -> dict[str, str]:
    """Named answers of exactly ``size`` characters (``size`` >= 16), each built to make some
    judge slow, plus :data:`BOMBS` (short)."""
    half = size // 2
    answers = {
        "digits": _fill("9", size),
        "digits then letter": _fill("9", size, "x"),
        "huge exponent": "9e" + _fill("9", size - 2),
        "tiny exponent": "1e-" + _fill("9", size - 3),
        "long fraction": "0." + _fill("0", size - 3) + "1",
        "digits with exponent": _fill("1", size - 11) + "e-999999999",
        "thousands separators": _fill("1,", size),
        "grouped thousands": "1" + _fill(",000", size - 1),
        "separators then dot": _fill("1,", size, ".x"),
        "underscores": _fill("1_", size - 1) + "1",
        "dots": _fill(".", size - 1) + "1",
        "signs": _fill("-", size - 1) + "1",
        "open parentheses": _fill("(", size),
        "nested parentheses": _fill("(", half) + _fill(")", size - half),
        "nested brackets": _fill("[", half) + _fill("]", size - half),
        "nested braces": _fill("\\boxed{", half) + _fill("}", size - half),
        "letters then bang": _fill("a", size, "!"),
        "spaces": _fill(" ", size),
        "spaces then x": "a" + _fill(" ", size - 2) + "x",
        "keyword then spaces": "answer" + _fill(" ", size - 7) + "x",
        "keyword spaces is spaces": "answer"
        + _fill(" ", half - 6, "is")
        + _fill(" ", size - half, ":x"),
        "keyword is colon": _fill(" ", half, "is") + _fill(" ", size - half, ":x"),
        "many keywords": _fill("option is: ", size),
        "option letters": _fill("(a) ", size),
        "letter parens": _fill("a )", size),
        "power tower": _fill("10**", size - 2) + "10",
        "caret tower": _fill("10^", size - 2) + "10",
        "unicode digits": _fill("٣", size),
        "fullwidth digits": _fill("１", size),
        "superscripts": _fill("²", size),
        "dotted capital I": _fill("İ", size),
        "ligatures": _fill("ﬁ", size),
        "zero width": _fill("\u200b9", size),
        "articles": _fill("the a an ", size),
        "punctuation": _fill("!?.,;", size),
        "surrogates": _fill("\ud800", size),
        "emoji": _fill("\U0001f600", size),
        "latex fractions": _fill("\\frac{1}{", size),
        "math delimiters": "$" + _fill("$", size - 2) + "$",
        "equals signs": _fill("=1", size),
        "or chains": _fill(" or 1", size),
        "mixed": _fill("(a) 1,2e9 the İ٣ [x] 10^ ", size),
    }
    for index, bomb in enumerate(BOMBS):
        answers[f"bomb {index}: {bomb[:20]!r}"] = bomb
    return answers


def _task(checker: str, reference: str, **metadata: object) -> Task:
    return Task(
        id=f"{checker}-sample",
        suite=checker,
        category="reasoning",
        prompt="Which option? Options: (A) 6 , (B) 7 , (C) 18107 , (D) none of the above",
        reference=reference,
        checker=checker,
        gold_solution=reference,
        metadata=metadata,
    )


_OPTIONS = {"a": "6", "b": "7", "c": "18107", "d": "none of the above"}

SAMPLE_TASKS: dict[str, list[Task]] = {
    "gsm8k": [_task("gsm8k", "18"), _task("gsm8k", "-150"), _task("gsm8k", "0")],
    "math": [_task("math", "10.0"), _task("math", "\\frac{1}{2}"), _task("math", "0.5")],
    "hotpotqa": [_task("hotpotqa", "the Roman Empire"), _task("hotpotqa", "yes")],
    "mmlu": [_task("mmlu", "c", options=_OPTIONS), _task("mmlu", "a", options=_OPTIONS)],
    "theoremqa": [
        _task("theoremqa", "5", answer_type="integer", reference_value=5),
        _task("theoremqa", "-0.125", answer_type="float", reference_value=-0.125),
        _task("theoremqa", "[1, 2]", answer_type="list of integer", reference_value=[1, 2]),
        _task("theoremqa", "True", answer_type="bool", reference_value=True),
        _task("theoremqa", "(c)", answer_type="option", reference_value="(c)"),
    ],
    "number": [_task("number", "18"), _task("number", "3/4"), _task("number", "1.5e3")],
    "exact_match": [_task("exact_match", "Paris, France"), _task("exact_match", "no")],
    "multiple_choice": [
        _task("multiple_choice", "c", options=_OPTIONS),
        _task("multiple_choice", "b", options=_OPTIONS),
    ],
}
"""Tasks like the suites' own, per checker that judges short answers in-process."""


PRE_DECISION_SIZES = {"theoremqa": 32}
"""The longest answer each checker with its own pre-decision (``judge_inline``) may judge
in-process: theoremqa's plain decimal, 15 + 15 digits with a sign and a dot."""


def inline_size(checker: TextChecker) -> int:
    """The size limit of ``checker``'s in-process path (0: none)."""
    return PRE_DECISION_SIZES.get(checker.name, checker.inline_max_chars)


def inline_checkers() -> list[TextChecker]:
    """The registered text checkers that judge some answers in-process."""
    return [
        checker
        for checker in CHECKERS.values()
        if isinstance(checker, TextChecker)
        and declares_inline(type(checker))
        and inline_size(checker) > 0
    ]


def _outcome(judge: object, *args: object) -> Outcome:
    try:
        result = judge(*args)  # type: ignore[operator]
    except Exception as exc:  # a judge's own error is a result to compare, too
        return ("raised", f"{type(exc).__name__}: {exc}")
    return ("verdict", result)


def judge_each(checker: bytes, task: bytes, answers: list[str]) -> list[Outcome]:
    """Runs in a check worker (``check_workers().call(..., judge_each, ...)``): each answer
    judged exactly as ``TextChecker.check`` has a worker judge it (``_judge_pickled``)."""
    return [_outcome(_judge_pickled, checker, task, answer) for answer in answers]


def judge_inline_each(checker: TextChecker, task: Task, answers: list[str]) -> list[Outcome | None]:
    """Each answer through ``checker.judge_inline`` in this process, as ``check`` calls it
    (None: left to a worker)."""
    results: list[Outcome | None] = []
    for answer in answers:
        outcome = _outcome(checker.judge_inline, answer, task)
        results.append(None if outcome == ("verdict", None) else outcome)
    return results
