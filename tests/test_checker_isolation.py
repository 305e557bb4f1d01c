"""Checkers that evaluate model text cannot stall the event loop (issue 12, item 4).

The TheoremQA answer ``round(1, -10**7)`` once computed ``10**(10**7)`` inside the parent's
event loop and froze every concurrent episode for 20 s. Two layers now stop that: the safe
evaluator bounds each operation's cost, and every text checker runs in a worker process under
a time limit whose overrun kills and replaces the worker.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from mulligan.tasks.base import CheckResult, Task
from mulligan.tasks.checkers import CHECKERS
from mulligan.tasks.checkers.safe_eval import ExpressionError, evaluate_expression
from mulligan.tasks.checkers.verdicts import TextChecker
from mulligan.tasks.checkers.workers import CallTimedOut, check_workers


def _theoremqa_task(answer_type: str = "integer", reference: Any = 5) -> Task:
    return Task(
        id="t1",
        suite="theoremqa",
        category="reasoning",
        prompt="?",
        reference=str(reference),
        checker="theoremqa",
        gold_solution=str(reference),
        metadata={"answer_type": answer_type, "reference_value": reference},
    )


async def _check_while_ticking(
    checker_name: str, answer: str, task: Task
) -> tuple[CheckResult, float, float]:
    """Run one check beside a coroutine that ticks every 10 ms; returns the result, the check's
    wall time and the longest gap between ticks (how long the loop was blocked)."""
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    start = time.monotonic()
    result = await CHECKERS[checker_name].check(answer, task, None)  # type: ignore[arg-type]
    elapsed = time.monotonic() - start
    await asyncio.sleep(0.02)
    ticking.cancel()
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    return result, elapsed, max(gaps)


async def test_round_bomb_neither_stalls_the_loop_nor_the_check() -> None:
    # The exact answer: before the fix the check took 20-40 s and no tick ran meanwhile.
    result, elapsed, longest_gap = await _check_while_ticking(
        "theoremqa", "round(1, -10**7)", _theoremqa_task()
    )
    assert not result.correct
    assert elapsed < 10.0  # the first call may start the worker process
    assert longest_gap < 1.0


@pytest.mark.parametrize(
    "text",
    [
        "round(1, -10**7)",
        "round(10**3000, -3000)",
        "round(2.5, 10**9)",
        "pow(3, 10**3000, 10**3000 + 7)",
        "pow(2**10000 - 1, 2**10000 - 1, 2**10000 + 1)",
        "10**10**10",
        "(10**2000) * (10**2000) * (10**2000) * (10**2000)",
        "9**9**9",
        "2**99999",
        "abs(" * 40 + "1" + ")" * 40,
        "-" * 1900 + "1",
        "~" * 1900 + "1",
        "int(1e308) * int(1e308) * int(1e308) * int(1e308) * int(1e308) * int(1e308)"
        " * int(1e308) * int(1e308) * int(1e308) * int(1e308)",
        "sum([10**2900] * 3)",
        "[" * 100 + "]" * 100,
    ],
)
def test_every_accepted_expression_is_cheap(text: str) -> None:
    start = time.perf_counter()
    try:
        value = evaluate_expression(text)
    except ExpressionError:
        value = None
    assert time.perf_counter() - start < 0.25, text
    repr(value)  # a value accepted is also printable (ints stay under the str-conversion limit)


def test_round_keeps_its_ordinary_meaning() -> None:
    assert evaluate_expression("round(2.567, 2)") == 2.57
    assert evaluate_expression("round(1234, -2)") == 1200
    assert evaluate_expression("round(7.5)") == 8
    assert evaluate_expression("round(1.5e300, -299)") == 1.5e300
    with pytest.raises(ExpressionError):
        evaluate_expression("round(1, -10**7)")
    with pytest.raises(ExpressionError):
        evaluate_expression("round('a')")


class _SpinningChecker(TextChecker):
    """A checker whose judge never returns (module level, so that a worker can unpickle it)."""

    name = "spinning-test-checker"

    def judge(self, answer: str, task: Task) -> CheckResult:
        while True:
            pass


class _RaisingChecker(TextChecker):
    name = "raising-test-checker"

    def judge(self, answer: str, task: Task) -> CheckResult:
        raise ValueError(f"bad task {task.id}")


async def test_a_judge_that_never_returns_is_killed_and_the_worker_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checker = _SpinningChecker()
    monkeypatch.setattr(checker, "timeout_s", 0.5)
    start = time.monotonic()
    result = await checker.check("anything", _theoremqa_task())
    assert time.monotonic() - start < 5.0
    assert not result.correct
    assert "timed out" in result.detail
    # The next check gets a fresh worker and works ("round(5)": not a plain number, which
    # would be judged in-process).
    ok = await CHECKERS["theoremqa"].check("round(5)", _theoremqa_task(), None)  # type: ignore[arg-type]
    assert ok.correct


async def test_a_judges_own_error_still_reaches_the_caller() -> None:
    # A misconfigured task (not the answer) is the caller's error, as before the isolation.
    with pytest.raises(ValueError, match="bad task t1"):
        await _RaisingChecker().check("x", _theoremqa_task())


async def test_pool_call_timeout_kills_only_the_overrunning_call() -> None:
    pool = check_workers()
    slow = asyncio.create_task(pool.call(0.5, time.sleep, 30))
    fast = [pool.call(5.0, sum, [1, 2, 3]) for _ in range(5)]
    assert await asyncio.gather(*fast) == [6] * 5
    with pytest.raises(CallTimedOut):
        await slow
    assert await pool.call(5.0, max, [1, 9, 3]) == 9


async def test_concurrent_bombs_do_not_delay_an_honest_check() -> None:
    task = _theoremqa_task()
    bombs = [
        CHECKERS["theoremqa"].check(text, task, None)  # type: ignore[arg-type]
        for text in ("round(1, -10**7)", "9**9**9**9", "pow(7, 10**1999, 10**1999 + 1)") * 3
    ]
    results = await asyncio.gather(*bombs)
    assert not any(r.correct for r in results)
    start = time.monotonic()
    honest = await CHECKERS["theoremqa"].check("round(5)", task, None)  # type: ignore[arg-type]
    assert honest.correct
    assert time.monotonic() - start < 2.0
