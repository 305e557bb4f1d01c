"""The ``math_equiv`` checker: mathematical equivalence of LaTeX or numeric answers.

Plain numbers are compared directly (relative 1e-6, exact fractions where possible). Anything
else ("\\frac{1}{2}", "2\\sqrt{2}", "\\boxed{10}", "x = 10") goes to math-verify in a worker
process (see ``_math_worker``): math-verify parses LaTeX with ANTLR into sympy, never through
``eval``, and the process boundary bounds the time a pathological expression can take.
"""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import os
import re
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from mulligan.tasks.base import CheckResult, CodeRunner, Task
from mulligan.tasks.checkers._math_worker import math_equivalent
from mulligan.tasks.checkers.numbers import numbers_equal, parse_number
from mulligan.tasks.checkers.verdicts import too_long, verdict

MAX_MATH_ANSWER_CHARS = 1_000
"""Longer answers are refused: a final mathematical answer is short, and parse time grows
quickly with length."""

WORKER_TIMEOUT_S = 20.0
"""Outer limit per comparison, above the worker's own 5 s parse + 5 s verify limits; the first
call also pays for starting the worker (about a second)."""

_MAY_DENOTE_A_NUMBER = re.compile(r"[\d\\π∞]")

MATH_WORKERS = max(1, min(4, (os.cpu_count() or 1)))
"""Worker processes for comparisons (each holds sympy, about 100 MB)."""

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _get_pool() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # spawn, not fork: the evaluating process has threads and an event loop.
            _pool = ProcessPoolExecutor(
                max_workers=MATH_WORKERS, mp_context=multiprocessing.get_context("spawn")
            )
        return _pool


def _discard_pool(pool: ProcessPoolExecutor) -> None:
    """Kill a pool whose worker is stuck or dead; the next call starts a fresh one."""
    global _pool
    with _pool_lock:
        if _pool is pool:
            _pool = None
    # The executor has no public way to stop a running call; kill its processes directly.
    for process in list(getattr(pool, "_processes", {}).values()):
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown_math_worker() -> None:
    """Stop the worker process, if any (also done at interpreter exit)."""
    with _pool_lock:
        pool = _pool
    if pool is not None:
        _discard_pool(pool)


atexit.register(shutdown_math_worker)


async def _equivalent_isolated(answer: str, reference: str) -> tuple[bool, str]:
    loop = asyncio.get_running_loop()
    pool = _get_pool()
    try:
        return await asyncio.wait_for(
            loop.run_in_executor(pool, math_equivalent, answer, reference), WORKER_TIMEOUT_S
        )
    except TimeoutError:
        _discard_pool(pool)
        return False, f"comparison did not finish within {WORKER_TIMEOUT_S:g} s"
    except BrokenProcessPool:
        _discard_pool(pool)
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
            ok = numbers_equal(value, reference)
            return verdict(ok, f"read as {float(value):g}; {'equal' if ok else 'not equal'}")
        if reference is not None and not _MAY_DENOTE_A_NUMBER.search(answer):
            # Words without digits or LaTeX cannot equal a numeric reference; skip the worker.
            return verdict(False, "no number or LaTeX in the answer")
        ok, how = await _equivalent_isolated(answer.strip(), task.reference.strip())
        return verdict(ok, f"{how}; {'equivalent' if ok else 'not equivalent'}")
