"""Code checkers: a proposed program passes when every value its task's tests check is right.

As in MINT (``CodeGenTask.success``), the program is the proposal followed by the task's test
code (``reference``): HumanEval's ``check`` function and its ``check(<entry_point>)`` call,
MBPP's asserts, in one namespace whose ``__name__`` is not ``"__main__"``, with printed output
swallowed. The task's prompt is *not* prepended, so a HumanEval proposal must bring its own
imports (``from typing import List``); MINT judged such proposals wrong too.

How the verdict is decided (:mod:`mulligan.tasks.checkers.testplan`,
:mod:`mulligan.tasks.checkers.calls`): the sandbox runs the proposal in a child process with
no protocol descriptor, then the tests rewritten to their *call side* only (for
``assert f(x) == [1, 2]`` it evaluates ``f(x)``); the child reports each value as tagged plain
data. The expected values and the pass decision stay here: each value is decoded (built-in
types only) and compared with the expected side, a literal evaluated here, or, for tests whose
expected side is computed by code, with the task's gold solution's value at the same place
(run the same way, cached). The proposal never sees an expected literal, and its exit status
and output mean nothing: exiting early, crashing or printing a fake stream leaves values
missing or wrong. An object whose ``__eq__`` is always true is not plain data, so it fails.

The guard (``_guard.py``) still runs first, as defence in depth.
"""

from __future__ import annotations

import asyncio
import hashlib

from mulligan.tasks.base import CheckResult, CodeRunner, Task
from mulligan.tasks.checkers.calls import ProbeRun, guard_source, run_probes
from mulligan.tasks.checkers.options import CodeOptions, options_of
from mulligan.tasks.checkers.testplan import (
    TaskTests,
    TestPlan,
    TestVerdict,
    extract_tests,
    judge_tests,
    plan_tests,
)
from mulligan.tasks.checkers.verdicts import MAX_CODE_ANSWER_CHARS, too_long, verdict

__all__ = ["DEFAULT_TIMEOUT_S", "PythonTestsChecker", "guard_source", "task_plan"]

DEFAULT_TIMEOUT_S = 10.0
"""MINT's limit for one test run."""

MAX_DETAIL_CHARS = 1_500
_CACHE_SIZE = 2048
_plans: dict[str, tuple[TaskTests, TestPlan] | None] = {}
_gold_runs: dict[str, ProbeRun] = {}
_gold_pending: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Task[ProbeRun]]] = {}


def _task_key(task: Task) -> str:
    meta = task.metadata
    parts = (
        task.suite,
        task.id,
        task.reference,
        task.gold_solution,
        repr(meta.get("test_list")),
        repr(meta.get("test_setup_code")),
        repr(meta.get("entry_point")),
    )
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _remember(cache: dict[str, object], key: str, value: object) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.pop(next(iter(cache)))  # oldest first: dicts keep insertion order
    cache[key] = value


def task_plan(task: Task) -> tuple[TaskTests, TestPlan] | None:
    """The task's tests and their plan, read once per task; None when it has no tests."""
    key = _task_key(task)
    if key not in _plans:
        tests = extract_tests(task)
        _remember(_plans, key, None if tests is None else (tests, plan_tests(tests)))  # type: ignore[arg-type]
    return _plans[key]


async def gold_run(
    task: Task, plan: TestPlan, runner: CodeRunner, timeout_s: float, selected: frozenset[int]
) -> ProbeRun:
    """The gold solution's values for ``plan`` (the selected tests), computed once and cached.

    Gold code is the task's own (trusted), yet it runs in the sandbox like any proposal.
    """
    key = _task_key(task) + ":" + ",".join(map(str, sorted(selected)))
    cached = _gold_runs.get(key)
    if cached is not None:
        return cached
    # Concurrent episodes of one task share a single gold run (per event loop).
    loop = asyncio.get_running_loop()
    pending = _gold_pending.get(key)
    if pending is None or pending[0] is not loop:
        job = loop.create_task(
            run_probes(
                runner,
                task.gold_solution,
                selected_statements(plan, selected),
                setup=plan.setup,
                timeout_s=max(timeout_s, 30.0),
            )
        )
        pending = (loop, job)
        _gold_pending[key] = pending
        job.add_done_callback(lambda _: _gold_pending.pop(key, None))
    result = await asyncio.shield(pending[1])
    if result.run_error is None:  # a failed run (a busy machine) is not cached
        _remember(_gold_runs, key, result)  # type: ignore[arg-type]
    return result


def selected_statements(plan: TestPlan, selected: frozenset[int]) -> list[str]:
    """The child's statements with unselected tests left out (as ``pass``)."""
    return [
        code if not statement.is_test or statement.index in selected else "pass"
        for statement, code in zip(plan.tests.statements, plan.child_statements, strict=True)
    ]


def describe_failure(failed: TestVerdict) -> str:
    """One failed test, as a checker's detail."""
    lines = [f"failed: {failed.statement.display}"[:400]]
    if failed.error:
        lines.append(f"  {failed.input}: {failed.error}" if failed.input else f"  {failed.error}")
    elif failed.mode == "compare":
        lines.append(f"  {failed.input} returned {failed.actual}, expected {failed.expected}")
    elif failed.mode in ("truthy", "falsy"):
        want = "a true value" if failed.mode == "truthy" else "a false value"
        lines.append(f"  {failed.input} returned {failed.actual}, expected {want}")
    return "\n".join(lines)[:MAX_DETAIL_CHARS]


class PythonTestsChecker:
    """Runs ``answer`` and the task's tests in the sandbox; correct iff every test passes.

    With ``with_stub`` the task's function stub (``metadata["stub"]``: imports, signature and
    docstring) runs first, as in OpenAI's HumanEval harness: a proposal may then rely on the
    stub's imports, or be just the function body. MINT runs the proposal alone (a correct
    function that lacks ``from typing import List`` fails there), so its suites do not use it.
    """

    def __init__(
        self, name: str, timeout_s: float = DEFAULT_TIMEOUT_S, *, with_stub: bool = False
    ) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.with_stub = with_stub

    def _source(self, answer: str, task: Task) -> str:
        stub = str(task.metadata.get("stub", "")) if self.with_stub else ""
        # A body-only answer continues the stub's function; a full definition replaces it.
        if stub and answer.startswith((" ", "\t")):
            return f"{stub.rstrip()}\n{answer}"
        return f"{stub}\n\n{answer}" if stub else answer

    async def check(self, answer: str, task: Task, runner: CodeRunner) -> CheckResult:
        """Judge a proposed program. ``runner`` executes it in a separate sandbox process."""
        timeout_s = self.timeout_s
        if "checker_options" in task.metadata:  # a task file's own limit
            timeout_s = options_of(task.metadata, CodeOptions).timeout_s
        rejected = too_long(answer, MAX_CODE_ANSWER_CHARS)
        if rejected is not None:
            return rejected
        planned = task_plan(task)
        if planned is None:
            return verdict(False, "this task has no unit tests that mulligan can read")
        _, plan = planned
        everything = frozenset(s.index for s in plan.tests.tests)
        run = await run_probes(
            runner,
            self._source(answer, task),
            list(plan.child_statements),
            setup=plan.setup,
            functions=plan.tests.functions,
            timeout_s=timeout_s,
        )
        gold = (
            await gold_run(task, plan, runner, timeout_s, everything) if plan.needs_gold else None
        )
        results = judge_tests(plan, run, gold)
        failed = [v for v in results if not v.passed]
        if results and not failed:
            return verdict(True, "all tests passed")
        if run.timed_out:
            return verdict(False, f"tests did not finish within {timeout_s:g} s")
        if not results:
            return verdict(False, "no test could be run")
        return verdict(
            False, f"{len(failed)} of {len(results)} tests failed; " + describe_failure(failed[0])
        )
