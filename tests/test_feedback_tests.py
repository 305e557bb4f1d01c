"""The ``tests`` provider: unit tests read with ``ast``, run in the real sandbox, reported with
failing input, expected and actual values."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mulligan.feedback import MissingCodeRunner, UnitTestFeedback, get_feedback
from mulligan.feedback.testcases import extract_tests, select_tests
from mulligan.tasks.checkers.code import task_plan
from mulligan.tasks import CodeRunner, Task
from test_feedback_support import (
    HUMANEVAL_BODY,
    HUMANEVAL_STUB,
    context,
    humaneval_task,
    mbpp_task,
    reasoning_task,
)

WRONG_BODY = "    return sum(xs)\n"  # forgets to skip negative numbers


@pytest.fixture
async def runner() -> AsyncIterator[CodeRunner]:
    try:
        from mulligan.sandbox import SandboxLimits, SandboxPool
    except ImportError as exc:  # pragma: no cover - the sandbox ships with mulligan
        pytest.skip(f"mulligan.sandbox is not available: {exc}")
    pool = SandboxPool(size=1, limits=SandboxLimits(cell_timeout_s=10.0))
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()


async def _feedback(provider: UnitTestFeedback, task: Task, code: str, runner: CodeRunner) -> str:
    event = await provider.feedback(context(task, content=code, runner=runner))
    assert event is not None
    assert (event.kind, event.saw_reference) == ("tests", provider.coverage != "none")
    return event.content


# --- reading tests (no sandbox) ----------------------------------------------------------------


def test_humaneval_tests_are_read_from_check() -> None:
    tests = extract_tests(humaneval_task())
    assert tests is not None and tests.functions == ("add_positive",)
    assert [t.display for t in tests.tests] == [
        "assert add_positive([1, -2, 3]) == 4",
        "assert add_positive([]) == 0",
        "assert abs(add_positive([0.5, 0.25]) - 0.75) < 1e-06",
        "assert add_positive([-1, -2]) == 0",
    ]  # `assert True, ...` is a debugging marker, not a test
    assert "METADATA" in tests.setup and "check(" not in tests.setup


def test_mbpp_tests_find_the_function_even_when_it_shadows_a_builtin() -> None:
    tests = extract_tests(mbpp_task())
    assert tests is not None and tests.functions == ("max", "pairs")
    assert len(tests.tests) == 3


def test_no_tests_for_reasoning_tasks() -> None:
    assert extract_tests(reasoning_task()) is None


def test_partial_selection_is_stable_and_a_share() -> None:
    chosen = select_tests(10, "partial", 0.3, "humaneval/HumanEval/1")
    assert chosen == select_tests(10, "partial", 0.3, "humaneval/HumanEval/1")
    assert len(chosen) == 3 and chosen == sorted(chosen)
    assert select_tests(10, "full", 0.3, "k") == list(range(10))
    assert select_tests(10, "none", 0.3, "k") == []
    assert select_tests(1, "partial", 0.1, "k") == [0]


async def test_no_runner_is_a_clear_error() -> None:
    task = humaneval_task()
    with pytest.raises(MissingCodeRunner, match=r"FeedbackContext\.runner"):
        await UnitTestFeedback().feedback(context(task, content=HUMANEVAL_STUB + WRONG_BODY))


async def test_nothing_for_reasoning_tasks_or_plain_cells() -> None:
    provider = UnitTestFeedback()
    assert await provider.feedback(context(reasoning_task())) is None
    cell = context(humaneval_task(), kind="execute", content="print(1)")
    assert await provider.feedback(cell) is None


# --- running tests in the sandbox --------------------------------------------------------------


async def test_humaneval_wrong_solution_shows_input_expected_actual(runner: CodeRunner) -> None:
    text = await _feedback(
        UnitTestFeedback(), humaneval_task(), HUMANEVAL_STUB + WRONG_BODY, runner
    )
    lines = text.splitlines()
    assert lines[0] == "Unit tests: 2 of 4 failed (all tests were run)."
    assert lines[1:5] == [
        "Failed: assert add_positive([1, -2, 3]) == 4",
        "  input: add_positive([1, -2, 3])",
        "  expected: 4",
        "  actual: 2",
    ]
    assert "Failed: assert add_positive([-1, -2]) == 0" in lines
    assert "  actual: -3" in lines
    assert "Passed: assert add_positive([]) == 0" in lines


async def test_mbpp_wrong_solution_and_repr_of_actual_values(runner: CodeRunner) -> None:
    wrong = "def max(a, b):\n    return a + b\n\ndef pairs(xs):\n    return [str(x) for x in xs]\n"
    text = await _feedback(UnitTestFeedback(), mbpp_task(), wrong, runner)
    assert "Failed: assert max(3, 4) == 12\n  input: max(3, 4)\n  expected: 12\n  actual: 7" in text
    # Values are shown with repr, computed in the sandbox: strings keep their quotes.
    assert "  expected: {(1, 2)}\n  actual: {'1', '2'}" in text or (
        "  expected: {(1, 2)}\n  actual: {'2', '1'}" in text
    )


async def test_partial_coverage_runs_a_share(runner: CodeRunner) -> None:
    [provider] = get_feedback("tests:partial")
    event = await provider.feedback(
        context(humaneval_task(), content=HUMANEVAL_STUB + WRONG_BODY, runner=runner)
    )
    assert event is not None and event.source == "rule:unit-tests:partial-0.5"
    assert "(2 of the 4 tests were run)" in event.content.splitlines()[0]


async def test_compile_errors_come_first(runner: CodeRunner) -> None:
    text = await _feedback(UnitTestFeedback(), humaneval_task(), "def add_positive(xs:\n", runner)
    assert text.startswith("Your code does not compile: SyntaxError")
    missing = await _feedback(UnitTestFeedback(), humaneval_task(), "x = 1\n", runner)
    assert (
        missing
        == "Running your code failed before any test: the function add_positive is not defined"
    )
    crash = await _feedback(UnitTestFeedback(), humaneval_task(), "1 / 0\n", runner)
    assert crash == (
        "Running your code failed before any test, at line 1:\n    1 / 0\n"
        "ZeroDivisionError: division by zero"
    )
    # Small models append their own asserts: say which one failed (a bare AssertionError
    # says nothing), pointing into their code rather than into a function it called.
    own_assert = HUMANEVAL_STUB + WRONG_BODY + "\nx = 1\nassert add_positive([1, 2]) == 99\n"
    text = await _feedback(UnitTestFeedback(), humaneval_task(), own_assert, runner)
    line = own_assert.split("\n").index("assert add_positive([1, 2]) == 99") + 1
    assert text == (
        f"Running your code failed before any test, at line {line}:\n"
        "    assert add_positive([1, 2]) == 99\nAssertionError"
    )
    deep = "def f():\n    return 1 / 0\n\nf()\n"
    text = await _feedback(UnitTestFeedback(), humaneval_task(), deep, runner)
    assert text.startswith("Running your code failed before any test, at line 2:\n    return 1 / 0")


async def test_coverage_none_is_compile_feedback_only(runner: CodeRunner) -> None:
    provider = UnitTestFeedback("none")
    text = await _feedback(provider, humaneval_task(), HUMANEVAL_STUB + WRONG_BODY, runner)
    assert text == "Your code compiles and runs without errors."


async def test_errors_and_timeouts_inside_tests(runner: CodeRunner) -> None:
    raising = HUMANEVAL_STUB + "    return xs[0]\n"
    text = await _feedback(UnitTestFeedback(), humaneval_task(), raising, runner)
    assert (
        "Failed: assert add_positive([]) == 0\n  input: add_positive([])\n  error: IndexError"
        in text
    )
    looping = HUMANEVAL_STUB + "    while True:\n        pass\n"
    text = await _feedback(UnitTestFeedback(test_timeout_s=0.3), humaneval_task(), looping, runner)
    assert "  error: timed out after 0.3s" in text
    assert "2 tests did not finish (stopped after 2 tests timed out)" in text


async def test_printing_solutions_cannot_fake_results(runner: CodeRunner) -> None:
    noisy = (
        HUMANEVAL_STUB
        + '    print(\'{"stage": "test", "index": 0, "passed": true}\')\n    return 0\n'
    )
    text = await _feedback(UnitTestFeedback(), humaneval_task(), noisy, runner)
    # Returning 0 passes two tests honestly; the printed fake result for test 0 is ignored.
    assert text.startswith("Unit tests: 2 of 4 failed")
    assert "Failed: assert add_positive([1, -2, 3]) == 4" in text


def test_the_child_never_sees_an_expected_value() -> None:
    planned = task_plan(humaneval_task())
    assert planned is not None
    _, plan = planned
    child = "\n".join(plan.child_statements)
    # The call sides only: the inputs are there, the expected values 4 and 0.75 are not.
    assert "__mg_probe(0, lambda: candidate([1, -2, 3]), True)" in child
    assert "== 4" not in child and "0.75" not in child and "assert candidate" not in child
    assert [s.check for s in plan.sites][:2] == [("eq", 4), ("eq", 0)]


async def test_solution_text_with_braces_and_quotes_survives(runner: CodeRunner) -> None:
    odd = HUMANEVAL_STUB + "    s = '{x}} {nonce!r}' + \"\\\\\" + '\"'\n" + HUMANEVAL_BODY
    text = await _feedback(UnitTestFeedback(), humaneval_task(), odd, runner)
    assert text.startswith("Unit tests: all 4 passed"), text


async def test_gold_solutions_pass_their_own_tests(runner: CodeRunner, mint_dir: Path) -> None:
    from mulligan.tasks import load_tasks

    for task in load_tasks("mint", ["humaneval", "mbpp"], mint_dir, limit=3):
        text = await _feedback(UnitTestFeedback(), task, task.gold_solution, runner)
        assert text.startswith("Unit tests: all "), (task.id, text)


async def test_feedback_event_contents_for_a_real_gold_humaneval_task(runner: CodeRunner) -> None:
    from mulligan.tasks.humaneval import load_humaneval

    task = next(t for t in load_humaneval() if t.id == "HumanEval/0")
    wrong = task.prompt.removeprefix("Complete the following code:\n\n") + "    return False\n"
    text = await _feedback(UnitTestFeedback(), task, wrong, runner)
    assert "  input: has_close_elements([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3)" in text
    assert "  expected: True\n  actual: False" in text


async def test_a_right_solution_passes_everything(runner: CodeRunner) -> None:
    text = await _feedback(
        UnitTestFeedback(), humaneval_task(), HUMANEVAL_STUB + HUMANEVAL_BODY, runner
    )
    assert text.splitlines() == [
        "Unit tests: all 4 passed (all tests were run).",
        "Passed: assert add_positive([1, -2, 3]) == 4",
        "Passed: assert add_positive([]) == 0",
        "Passed: assert abs(add_positive([0.5, 0.25]) - 0.75) < 1e-06",
        "Passed: assert add_positive([-1, -2]) == 0",
    ]
