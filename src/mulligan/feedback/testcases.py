"""Unit tests of code tasks for the ``tests`` feedback: choose them, run them, collect results.

Reading a task's tests and deciding each test's result have one home,
:mod:`mulligan.tasks.checkers.testplan` (the code checkers use the same): the proposal runs in
a sandbox child that only reports the values the tests check (no expected value enters it),
and each test's pass or failure, with its expected and actual values, is decided here in the
parent. Nothing the proposal prints or writes can make a test count as passed: the feedback
text is built from those decisions, never from the child's own words. The child's reports of
why it could not run (a syntax error, an exception while loading) are its own code's story and
only ever explain a failure.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from typing import Any, Literal

from mulligan.tasks.base import CodeRunner, Task
from mulligan.tasks.checkers.calls import ProbeRun, run_probes
from mulligan.tasks.checkers.code import gold_run, selected_statements, task_plan
from mulligan.tasks.checkers.testplan import (
    TaskTests,
    TestPlan,
    TestStatement,
    TestVerdict,
    extract_tests,
    judge_tests,
)

__all__ = [
    "COVERAGES",
    "Coverage",
    "TaskTests",
    "TestOutcome",
    "TestRun",
    "TestStatement",
    "extract_tests",
    "run_tests",
    "select_tests",
]

Coverage = Literal["none", "partial", "full"]
COVERAGES: tuple[Coverage, ...] = ("none", "partial", "full")

TestOutcome = TestVerdict
"""One test's result (decided in the parent)."""


def select_tests(n: int, coverage: Coverage, share: float, key: str) -> list[int]:
    """Positions (among ``n`` tests) to run: all, none, or a share chosen by a hash of ``key``.

    The partial choice is stable for a task across turns, runs and processes, so the policy
    sees the same tests each turn (ConvCodeWorld's partial coverage), kept in their order.
    """
    if coverage == "none" or n == 0:
        return []
    if coverage == "full":
        return list(range(n))
    k = min(n, max(1, math.ceil(share * n)))
    rng = random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
    return sorted(rng.sample(range(n), k))


@dataclass(slots=True)
class TestRun:
    """What running the selected tests gave."""

    __test__ = False  # not a pytest test class

    compile_error: dict[str, Any] | None = None
    load_error: str | None = None
    load_where: tuple[int, str] | None = None
    """The solution's line (number, text) where loading it failed, when known."""
    setup_error: str | None = None
    loaded: bool = False
    timed_out: bool = False
    stopped: str | None = None
    """Why the run stopped before the last selected test (repeated timeouts)."""
    outcomes: list[TestOutcome] = field(default_factory=list)
    not_run: list[TestStatement] = field(default_factory=list)


def _source_line(solution: str, line: object) -> tuple[int, str] | None:
    """The solution's own line ``line`` (text taken from the solution we hold)."""
    if type(line) is not int:
        return None
    lines = solution.split("\n")
    text = lines[line - 1].strip()[:240] if 0 < line <= len(lines) else ""
    return line, text


def _outcome_text(verdict: TestVerdict, statement_timeout_s: float) -> TestVerdict:
    if verdict.error == "timed out":
        verdict.error = f"timed out after {statement_timeout_s:g}s"
    return verdict


def collect(
    solution: str,
    plan: TestPlan,
    run: ProbeRun,
    gold: ProbeRun | None,
    selected: set[int],
    statement_timeout_s: float,
) -> TestRun:
    """The :class:`TestRun` of a child's reports: each selected test judged here."""
    result = TestRun(setup_error=run.setup_error, stopped=run.stopped, timed_out=run.timed_out)
    if run.compile_error is not None:
        result.compile_error = run.compile_error
        return result
    if run.load_error is not None:
        result.load_error = str(run.load_error.get("error", ""))[:300]
        result.load_where = _source_line(solution, run.load_error.get("line"))
        return result
    result.loaded = True
    for verdict in judge_tests(plan, run, gold, selected):
        if verdict.missing:
            result.not_run.append(verdict.statement)
        else:
            result.outcomes.append(_outcome_text(verdict, statement_timeout_s))
    return result


async def run_tests(
    runner: CodeRunner,
    solution: str,
    task: Task,
    selected: list[int],
    *,
    test_timeout_s: float = 5.0,
) -> TestRun | None:
    """Runs ``solution`` against the selected tests (positions in ``tests.tests``); None when
    the task has no readable tests. With nothing selected it only loads the solution."""
    planned = task_plan(task)
    if planned is None:
        return None
    tests, plan = planned
    chosen = frozenset(tests.tests[i].index for i in selected)
    # Every test has its own timer inside the child; this outer limit only catches a child
    # that cannot set timers.
    budget = min(120.0, test_timeout_s * (len(selected) + 2) + 5.0)
    run = await run_probes(
        runner,
        solution,
        selected_statements(plan, chosen),
        setup=plan.setup,
        functions=tests.functions,
        timeout_s=budget,
        statement_timeout_s=test_timeout_s,
    )
    gold = None
    if plan.needs_gold and chosen:
        gold = await gold_run(task, plan, runner, budget, chosen)
    return collect(solution, plan, run, gold, set(chosen), test_timeout_s)
