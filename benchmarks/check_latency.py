"""Latency a check pays for running off the event loop (issue 12, item 4).

Text checkers judge in a worker process (``tasks/checkers/workers.py``) so that no answer can
stall the loop. This measures, on warm workers, the in-process judge against the full
``check`` (pickling, the round trip, the result), and the throughput of many concurrent checks.

    python benchmarks/check_latency.py --calls 300
    python benchmarks/check_latency.py --adversarial [--repeats 5]

``--adversarial`` (issue 17): short answers to the checkers whose judge is bounded by
construction are judged in-process (``TextChecker.judge_inline``); this measures, per such
checker, the worst in-process judge time over adversarial answers at its size limit
(``tests/check_inputs.py``: long digit runs, huge exponents, powers in text, nesting,
separators, unicode digits, regex bombs), each answer's time the fastest of ``--repeats``, and
what the same judge costs on those answers at the 10,000-character answer limit (judged in a
worker there). A measurement, not a pass/fail check.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import pickle
import statistics
import sys
import time
from pathlib import Path

from mulligan.tasks.base import Task
from mulligan.tasks.checkers import CHECKERS
from mulligan.tasks.checkers.verdicts import (
    MAX_TEXT_ANSWER_CHARS,
    TextChecker,
    _judge_pickled,
    _task_payload,
)
from mulligan.tasks.checkers.workers import check_workers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from check_inputs import SAMPLE_TASKS, adversarial_answers, inline_checkers, inline_size

_TASK = Task(id="t1", suite="theoremqa", category="reasoning", prompt="?", reference="5",
             checker="theoremqa", gold_solution="5",
             metadata={"answer_type": "integer", "reference_value": 5})  # fmt: skip


async def _off_loop(checker: TextChecker, answer: str, task: Task) -> object:
    """The worker's round trip as ``TextChecker.check`` makes it for a long answer."""
    payload = (pickle.dumps(checker), _task_payload(task))
    return await check_workers().call(checker.timeout_s, _judge_pickled, *payload, answer)


async def _measure(name: str, answer: str, calls: int) -> str:
    checker = CHECKERS[name]
    assert isinstance(checker, TextChecker)
    task = _TASK.model_copy(update={"checker": name, "suite": name})
    await _off_loop(checker, answer, task)  # start a worker
    judged, checked, off_loop = [], [], []
    for _ in range(calls):
        start = time.perf_counter()
        checker.judge(answer, task)
        judged.append(time.perf_counter() - start)
        start = time.perf_counter()
        await checker.check(answer, task)  # in-process where judge_inline decides
        checked.append(time.perf_counter() - start)
        start = time.perf_counter()
        await _off_loop(checker, answer, task)
        off_loop.append(time.perf_counter() - start)
    p95 = sorted(off_loop)[int(0.95 * (calls - 1))]
    return (f"| {name} | {answer!r} | {statistics.median(judged) * 1e3:.3f} ms | "
            f"{statistics.median(checked) * 1e3:.3f} ms | "
            f"{statistics.median(off_loop) * 1e3:.3f} ms | {p95 * 1e3:.3f} ms |")  # fmt: skip


async def _main(calls: int) -> None:
    print("| checker | answer | judge in-process (median) | check (median) | check off-loop "
          "(median) | off-loop p95 |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, answer in (("theoremqa", "5"), ("theoremqa", "round(5)"),
                         ("gsm8k", "The answer is 5"), ("mmlu", "(c)")):  # fmt: skip
        print(await _measure(name, answer, calls))
    theoremqa = CHECKERS["theoremqa"]
    assert isinstance(theoremqa, TextChecker)
    start = time.perf_counter()
    await asyncio.gather(*(theoremqa.check("round(5)", _TASK) for _ in range(1000)))
    print(f"\n1,000 concurrent theoremqa checks off-loop: {time.perf_counter() - start:.2f} s")


def _fastest(judge: object, answer: str, task: Task, repeats: int) -> float:
    """The fastest of ``repeats`` calls, in seconds (a judge's error counts as its end)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        with contextlib.suppress(Exception):
            judge(answer, task)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def _worst(
    checker: TextChecker, size: int, repeats: int, inline_only: bool
) -> tuple[float, str, int]:
    """The slowest answer of size ``size`` over the checker's sample tasks: (seconds, which,
    answers timed). ``inline_only``: only the answers ``judge_inline`` decides, timed through it."""
    worst, which, timed = 0.0, "-", 0
    for task in SAMPLE_TASKS[checker.name]:
        for name, answer in adversarial_answers(size).items():
            if inline_only and checker.judge_inline(answer, task) is None:
                continue
            judge = checker.judge_inline if inline_only else checker.judge
            elapsed = _fastest(judge, answer, task, repeats)
            timed += 1
            if elapsed > worst:
                worst, which = elapsed, f"{name} (ref {task.reference!r})"
    return worst, which, timed


def adversarial(repeats: int) -> None:
    """The table of worst in-process judge times (see the module docstring)."""
    print(
        "| checker | inline limit (chars) | answers judged in-process | worst in-process ms "
        "| slowest answer | worst ms at 10,000 chars (worker) |"
    )
    print("|---|---|---|---|---|---|")
    for checker in inline_checkers():
        size = inline_size(checker)
        worst, which, timed = _worst(checker, max(size, 16), repeats, inline_only=True)
        at_max, _, _ = _worst(checker, MAX_TEXT_ANSWER_CHARS, max(1, repeats // 2), False)
        print(
            f"| {checker.name} | {size:,} | {timed} | {worst * 1e3:.3f} | {which[:60]} "
            f"| {at_max * 1e3:.2f} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="sequential checks per checker")
    parser.add_argument(
        "--adversarial", action="store_true", help="worst in-process judge time per checker"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timings per adversarial answer")
    args = parser.parse_args()
    if args.adversarial:
        adversarial(args.repeats)
    else:
        asyncio.run(_main(args.calls))
