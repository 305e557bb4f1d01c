"""Test feedback for code tasks: compile errors, then results of a share of the unit tests.

ConvCodeWorld's execution-feedback levels by test coverage: ``none`` (compilation only: does
the code compile and load, is the function defined), ``partial`` (a fixed share of the unit
tests) and ``full`` (all of them). Failing tests show the input, the expected and the actual
value or the error raised. Which tests passed is decided in mulligan's process from the values
the sandbox reported (:mod:`mulligan.feedback.testcases`); values are shown with ``repr`` of
plain data decoded here.
"""

from __future__ import annotations

import re

from mulligan.events import FeedbackEvent, FeedbackKind
from mulligan.feedback.base import FeedbackContext
from mulligan.feedback.testcases import (
    Coverage,
    TaskTests,
    TestOutcome,
    TestRun,
    run_tests,
    select_tests,
)
from mulligan.tasks.checkers.code import task_plan


class MissingCodeRunner(RuntimeError):
    """The ``tests`` provider was called without ``FeedbackContext.runner``."""


def _tests_for(task: Task) -> TaskTests | None:
    """The task's tests, read once per task."""
    planned = task_plan(task)
    return None if planned is None else planned[0]


class UnitTestFeedback:
    """Runs the proposed code against the task's unit tests in the sandbox and reports.

    Args:
        coverage: ``none``, ``partial`` or ``full`` (see the module docstring).
        share: the share of tests shown under ``partial`` (at least one test).
        cells: also test code the policy *executes* (not only proposals) when the cell
            defines the function under test.
        test_timeout_s: wall time per test (and for loading the module) inside the sandbox.
        max_failures: failing tests shown in detail; the rest are counted.
        max_passed: passing tests listed; the rest are counted.
    """

    name = "tests"
    kind: FeedbackKind = "tests"

    def __init__(
        self,
        coverage: Coverage = "full",
        *,
        share: float = 0.5,
        cells: bool = False,
        test_timeout_s: float = 5.0,
        max_failures: int = 5,
        max_passed: int = 10,
    ) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self.coverage: Coverage = coverage
        self.share = share
        self.cells = cells
        self.test_timeout_s = test_timeout_s
        self.max_failures = max_failures
        self.max_passed = max_passed

    @property
    def source(self) -> str:
        detail = f"partial-{self.share:g}" if self.coverage == "partial" else self.coverage
        return f"rule:unit-tests:{detail}"

    def _code(self, ctx: FeedbackContext, tests: TaskTests) -> str | None:
        if ctx.action.kind == "solution":
            return ctx.action.content
        if ctx.action.kind == "execute" and self.cells:
            # Only cells that define the function: testing `print(2 + 2)` says nothing.
            defines = any(
                re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(f)}\s*\(", ctx.action.content, re.M)
                for f in tests.functions
            )
            return ctx.action.content if defines else None
        return None

    async def feedback(self, ctx: FeedbackContext) -> FeedbackEvent | None:
        if ctx.task.category != "code_generation" or (ctx.verdict and ctx.verdict.correct):
            return None
        tests = _tests_for(ctx.task)
        if tests is None:
            return None
        code = self._code(ctx, tests)
        if code is None:
            return None
        if ctx.runner is None:
            raise MissingCodeRunner(
                "the 'tests' feedback provider runs code in the sandbox and needs "
                "FeedbackContext.runner (a CodeRunner such as the SandboxPool)"
            )
        selected = select_tests(
            len(tests.tests), self.coverage, self.share, f"{ctx.task.suite}/{ctx.task.id}"
        )
        run = await run_tests(
            ctx.runner, code, ctx.task, selected, test_timeout_s=self.test_timeout_s
        )
        if run is None:
            return None
        # Every pass and failure in the text was decided here, from the values the tests
        # check; the program's exit status and printed text decide nothing.
        text = self.render(run, len(selected), len(tests.tests), run.timed_out)
        return FeedbackEvent(
            turn=ctx.turn,
            kind="tests",
            source=self.source,
            content=text,
            saw_reference=self.coverage != "none",
        )

    def render(
        self,
        run: TestRun,
        n_selected: int,
        n_tests: int,
        timed_out: bool = False,
        error: str | None = None,
    ) -> str:
        """The feedback text for a test run."""
        if run.compile_error is not None:
            line = run.compile_error.get("line")
            where = f" (line {line})" if line else ""
            text = str(run.compile_error.get("text") or "").strip()
            shown = f"\n    {text}" if text else ""
            return f"Your code does not compile: {run.compile_error.get('error')}{where}{shown}"
        if run.load_error is not None:
            if run.load_where is None:
                return f"Running your code failed before any test: {run.load_error}"
            line, text = run.load_where
            shown = f"\n    {text}" if text else ""
            return f"Running your code failed before any test, at line {line}:{shown}\n{run.load_error}"
        if not run.loaded:
            why = "it timed out" if timed_out else (error or "no result came back")
            return f"Your code could not be run ({why})."
        if run.setup_error is not None:
            # A broken test setup is our problem, not the policy's: say so plainly.
            return f"The unit tests could not be set up ({run.setup_error})."
        if self.coverage == "none" or n_selected == 0:
            return "Your code compiles and runs without errors."
        failed = [o for o in run.outcomes if not o.passed]
        passed = [o for o in run.outcomes if o.passed]
        scope = "all" if n_selected == n_tests else f"{n_selected} of the {n_tests}"
        if failed or run.not_run:
            unfinished = f", {len(run.not_run)} did not finish" if run.not_run else ""
            header = f"Unit tests: {len(failed)} of {n_selected} failed{unfinished}"
        else:
            header = f"Unit tests: all {n_selected} passed"
        lines = [f"{header} ({scope} tests were run)."]
        for outcome in failed[: self.max_failures]:
            lines.extend(_describe_failure(outcome))
        if len(failed) > self.max_failures:
            lines.append(f"... and {len(failed) - self.max_failures} more failed tests.")
        if run.not_run:
            why = (
                f"stopped {run.stopped}"
                if run.stopped
                else "the run timed out"
                if timed_out
                else "the run stopped"
            )
            lines.append(f"{len(run.not_run)} tests did not finish ({why}), starting with:")
            lines.append(f"  {_clip(run.not_run[0].display)}")
        for outcome in passed[: self.max_passed]:
            lines.append(f"Passed: {_clip(outcome.statement.display)}")
        if len(passed) > self.max_passed:
            lines.append(f"... and {len(passed) - self.max_passed} more passed tests.")
        return "\n".join(lines)


def _clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit] + " ..."


def _describe_failure(outcome: TestOutcome) -> list[str]:
    lines = [f"Failed: {_clip(outcome.statement.display)}"]
    if outcome.input:
        lines.append(f"  input: {outcome.input}")
    if outcome.error:
        lines.append(f"  error: {outcome.error}")
        return lines
    if outcome.mode == "compare":
        lines.append(f"  expected: {outcome.expected}")
        lines.append(f"  actual: {outcome.actual}")
    elif outcome.mode == "truthy":
        lines.append("  expected: a true value")
        lines.append(f"  actual: {outcome.actual}")
    elif outcome.mode == "falsy":
        lines.append("  expected: a false value")
        lines.append(f"  actual: {outcome.actual}")
    elif outcome.output is not None:
        lines.append(f"  returned: {outcome.output}")
    return lines
