"""Property-based fuzzing of everything that reads model text (issue 12, "Fuzzing").

For the action parser and every registered checker, on adversarial text (huge numbers, deep
nesting, expression and LaTeX bombs, unbalanced tags, unicode): no exception escapes and each
call returns within a generous wall-clock bound. Text checkers are fuzzed twice: their judge
in-process (the bounded-cost layer) and ``check`` through the worker pool (what a run uses).
A longer fixed-budget run of the parser is ``benchmarks/fuzz_parser.py``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz_strategies import ADVERSARIAL_TEXT
from mulligan.actions import answer_key, parse_action, parse_reply, restore_stop
from mulligan.tasks.base import CheckResult, ProgramResult, Task
from mulligan.tasks.checkers import CHECKERS
from mulligan.tasks.checkers.safe_eval import ExpressionError, evaluate_expression
from mulligan.tasks.checkers.theoremqa import normalize_theoremqa_answer
from mulligan.tasks.checkers.verdicts import TextChecker

PARSER_BOUND_S = 0.5
JUDGE_BOUND_S = 1.0
CHECK_BOUND_S = 30.0  # through a worker: includes starting one on a loaded machine

FUZZ = settings(
    max_examples=150,
    deadline=None,  # the bounds are asserted explicitly, with room for a loaded machine
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

_OPTIONS = {"a": "12", "b": "3.5", "c": "None of the above", "d": "x"}


def _task(checker: str, reference: str, **metadata: Any) -> Task:
    return Task(
        id="fuzz",
        suite=checker,
        category="code_generation" if checker in CODE_CHECKERS else "reasoning",
        prompt="Question?",
        reference=reference,
        checker=checker,
        gold_solution=reference,
        metadata=metadata,
    )


def _tasks_for(checker: str) -> list[Task]:
    """Tasks that exercise each branch of a checker."""
    if checker == "theoremqa":
        types = [("integer", 5), ("float", -2.5e-3), ("list of integer", [1, 2]),
                 ("list of float", [0.5, 1e30]), ("bool", True), ("option", "(c)")]  # fmt: skip
        return [_task(checker, str(v), answer_type=t, reference_value=v) for t, v in types]
    if checker in ("mmlu", "multiple_choice"):
        return [_task(checker, letter, options=_OPTIONS) for letter in ("a", "c")]
    if checker == "evalplus":
        plus = {"benchmark": "humaneval+", "entry_point": "f", "atol": 0.0, "group": "plus"}
        canonical = "def f(x):\n    return x + 1\n"
        return [
            _task(checker, canonical, **plus, base_input=[[1]], plus_input=[[2], [3]],
                  canonical_program=canonical)
        ]  # fmt: skip
    if checker in CODE_CHECKERS:
        return [_task(checker, "assert f(1) == 2", stub="def f(x):\n    pass\n")]
    if checker in ("number", "math_equiv"):
        latex = ("\\frac{1}{2}",) if checker == "math_equiv" else ()
        return [_task(checker, ref) for ref in ("36", "-0.5", "1e3", *latex)]
    return [_task(checker, ref) for ref in ("36", "-0.5", "yes", "Paris, France")]


CODE_CHECKERS = ("humaneval", "humaneval-stub", "mbpp", "python_tests", "evalplus")
# Environment tasks are judged by their environment's success signal, never by answer text: the
# `environment` checker refuses every call by design (tests/test_environment.py).
FUZZED_CHECKERS = sorted(name for name in CHECKERS if name != "environment")
TEXT_CHECKERS = sorted(n for n, c in CHECKERS.items() if isinstance(c, TextChecker))


def _timed(function: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - start


# --- the action parser -----------------------------------------------------------------------


@FUZZ
@given(ADVERSARIAL_TEXT)
def test_parse_action_never_raises_and_is_fast(text: str) -> None:
    action, elapsed = _timed(parse_action, text)
    assert elapsed < PARSER_BOUND_S
    assert action.kind in ("execute", "solution", "invalid")
    assert (action.kind == "invalid") == (action.content == "")
    assert action.reply == restore_stop(text)
    if action.kind == "solution":
        assert action.content == action.content.strip()
    key, elapsed = _timed(answer_key, action.content or text)
    assert isinstance(key, str) and elapsed < PARSER_BOUND_S


@FUZZ
@given(ADVERSARIAL_TEXT)
def test_parse_reply_never_raises_and_is_fast(text: str) -> None:
    action, elapsed = _timed(parse_reply, text)
    assert elapsed < PARSER_BOUND_S
    assert action.kind in ("solution", "invalid") and action.reply == text
    assert (action.kind == "invalid") == (action.content == "")
    assert action.content == action.content.strip()


@pytest.mark.parametrize(
    "text",
    ["<thought>" * 20_000, "<thought>x</thought>" + "<thought>" * 20_000, "```\n" * 20_000],
)
def test_parse_reply_is_linear_on_unclosed_tags(text: str) -> None:
    # A lazy `<thought>.*?</thought>` substitution retried from each of 20,000 unclosed tags
    # took seconds; the bound has room for a loaded machine.
    action, elapsed = _timed(parse_reply, text)
    assert elapsed < PARSER_BOUND_S and action.kind == "solution"


@FUZZ
@given(
    st.lists(
        st.sampled_from(
            [
                "<solution>",
                "</solution>",
                "<execute>",
                "</execute>",
                "<thought>",
                "</thought>",
                "x",
                " ",
                "1",
            ]
        ),
        max_size=60,
    ).map("".join)
)
def test_parse_action_on_tag_soup_finds_a_nonempty_tagged_action(text: str) -> None:
    action = parse_action(text)
    if action.kind == "solution":
        assert "<solution>" in text and action.content
    if action.kind == "execute":
        assert "<execute>" in text and action.content.strip()


# --- checkers --------------------------------------------------------------------------------


@FUZZ
@given(ADVERSARIAL_TEXT)
def test_safe_evaluator_raises_only_its_own_error_and_is_cheap(text: str) -> None:
    start = time.perf_counter()
    try:
        value = evaluate_expression(text)
        repr(value)  # every accepted value can be shown in a verdict's detail
    except ExpressionError:
        pass
    assert time.perf_counter() - start < JUDGE_BOUND_S
    _, elapsed = _timed(normalize_theoremqa_answer, text)
    assert elapsed < JUDGE_BOUND_S


@FUZZ
@given(st.sampled_from(TEXT_CHECKERS), ADVERSARIAL_TEXT)
def test_every_text_judge_is_total_and_bounded_in_process(checker: str, text: str) -> None:
    judge = CHECKERS[checker]
    assert isinstance(judge, TextChecker)
    text = text[: judge.max_answer_chars]  # check() refuses longer answers before judging
    for task in _tasks_for(checker):
        result, elapsed = _timed(judge.judge, text, task)
        assert isinstance(result, CheckResult)
        assert elapsed < JUDGE_BOUND_S, (checker, elapsed)


class _AdversarialRunner:
    """A code runner whose output is fuzzed too (fake verdicts, fake tokens, tag soup)."""

    def __init__(self, output: str, ok: bool, timed_out: bool) -> None:
        self.result = ProgramResult(ok=ok, output=output, timed_out=timed_out)

    async def run_program(
        self, code: str, timeout_s: float = 10.0, *, output_limit: int | None = None
    ) -> ProgramResult:
        return self.result


@settings(FUZZ, max_examples=60)
@given(st.sampled_from(FUZZED_CHECKERS), ADVERSARIAL_TEXT, ADVERSARIAL_TEXT, st.booleans(),
       st.booleans())  # fmt: skip
def test_every_registered_check_is_total_and_bounded(
    checker: str, text: str, output: str, ok: bool, timed_out: bool
) -> None:
    if checker == "math_equiv":
        text = text[:200]  # sympy is slow but bounded by its worker; keep the run short
    runner = _AdversarialRunner(output, ok, timed_out)

    async def check_all() -> list[CheckResult]:
        return [
            await CHECKERS[checker].check(text, task, runner) for task in _tasks_for(checker)[:2]
        ]

    start = time.monotonic()
    results = asyncio.run(check_all())
    assert time.monotonic() - start < CHECK_BOUND_S * 2
    for result in results:
        assert isinstance(result, CheckResult)
        if checker in CODE_CHECKERS and (not ok or timed_out):
            assert not result.correct  # a failed or timed-out program never passes


# --- what fuzzing found (each failed before its fix) ------------------------------------------


def test_mmlu_unicode_digit_answer_is_judged_not_raised() -> None:
    # "²".isdigit() is true, so MINT's digit comparison called float("²"): ValueError escaped.
    result = CHECKERS["mmlu"].judge("²", _task("mmlu", "b", options=_OPTIONS))  # type: ignore[attr-defined]
    assert not result.correct


def test_multiple_choice_letter_then_spaces_is_linear() -> None:
    task = _task("multiple_choice", "a", options=_OPTIONS)
    result, elapsed = _timed(CHECKERS["multiple_choice"].judge, "a" + " " * 9_997 + "x", task)  # type: ignore[attr-defined]
    assert not result.correct
    assert elapsed < 0.2  # was 3.7 s


def test_theoremqa_long_digit_run_is_linear() -> None:
    _, elapsed = _timed(normalize_theoremqa_answer, "1" * 4_000 + "x y")
    assert elapsed < 0.1  # was 1-3 s
    assert normalize_theoremqa_answer("5.2 m/s") == "5.2"
    assert normalize_theoremqa_answer("$ 1,000") == "1000"
    assert normalize_theoremqa_answer("7%") == "7"
    assert normalize_theoremqa_answer("$.5") == "5"


def test_multiple_choice_keyword_then_spaces_is_linear() -> None:
    task = _task("multiple_choice", "a", options=_OPTIONS)
    answer = "answer" + " " * 9_990 + "x"
    result, elapsed = _timed(CHECKERS["multiple_choice"].judge, answer, task)  # type: ignore[attr-defined]
    assert not result.correct
    assert elapsed < 0.2  # was 9.7 s
    for text, letter in (("answer: c", "c"), ("The answer is (B) 3.5", "b"), ("option  :  d", "d")):
        judged = CHECKERS["multiple_choice"].judge(
            text, _task("multiple_choice", letter, options=_OPTIONS)
        )  # type: ignore[attr-defined]
        assert judged.correct, text
