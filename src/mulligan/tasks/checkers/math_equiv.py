"""The ``math_equiv`` checker: mathematical equivalence of LaTeX or numeric answers.

Plain numbers are compared directly (relative 1e-6, exact fractions where possible). Anything
else ("\\frac{1}{2}", "2\\sqrt{2}", "\\boxed{10}", "x = 10") goes to math-verify in a worker
process (see ``_math_worker`` and ``workers``): math-verify parses LaTeX with ANTLR into sympy,
never through ``eval``, and the process boundary bounds the time a pathological expression can
take.
"""

from __future__ import annotations

import re

from mulligan.tasks.base import CheckResult, CodeRunner, Task
from mulligan.tasks.checkers._math_worker import math_equivalent
from mulligan.tasks.checkers.numbers import numbers_equal, parse_number
from mulligan.tasks.checkers.options import ToleranceOptions, options_of
from mulligan.tasks.checkers.verdicts import too_long, verdict
from mulligan.tasks.checkers.workers import CallTimedOut, WorkerDied, check_workers

MAX_MATH_ANSWER_CHARS = 1_000
"""Longer answers are refused: a final mathematical answer is short, and parse time grows
quickly with length."""

WORKER_TIMEOUT_S = 20.0
"""Outer limit per comparison, above the worker's own 5 s parse + 5 s verify limits."""

_MAY_DENOTE_A_NUMBER = re.compile(r"[\d\\π∞]")


async def _equivalent_isolated(answer: str, reference: str) -> tuple[bool, str]:
    try:
        return await check_workers().call(WORKER_TIMEOUT_S, math_equivalent, answer, reference)
    except CallTimedOut:
        return False, f"wrong: comparison timed out after {WORKER_TIMEOUT_S:g} s"
    except WorkerDied:
        return False, "the comparison worker died"


class MathEquivalenceChecker:
    """Correct iff the answer is mathematically equal to the reference (math in strict mode)."""

    name = "math_equiv"

    async def check(self, answer: str, task: Task, runner: CodeRunner | None = None) -> CheckResult:
        """Judge ``answer`` against ``task.reference``; the runner is unused."""
        rejected = too_long(answer, MAX_MATH_ANSWER_CHARS)
        if rejected is not None:
            return rejected
        if not answer.strip():
            return verdict(False, "empty answer")
        reference, value = parse_number(task.reference), parse_number(answer)
        if reference is not None and value is not None:
            ok = numbers_equal(
                value, reference, options_of(task.metadata, ToleranceOptions).rel_tol
            )
            return verdict(ok, f"read as {float(value):g}; {'equal' if ok else 'not equal'}")
        if reference is not None and not _MAY_DENOTE_A_NUMBER.search(answer):
            # Words without digits or LaTeX cannot equal a numeric reference; skip the worker.
            return verdict(False, "no number or LaTeX in the answer")
        ok, how = await _equivalent_isolated(answer.strip(), task.reference.strip())
        return verdict(ok, f"{how}; {'equivalent' if ok else 'not equivalent'}")
