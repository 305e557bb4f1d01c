"""Latency a check pays for running off the event loop (issue 12, item 4).

Text checkers judge in a worker process (``tasks/checkers/workers.py``) so that no answer can
stall the loop. This measures, on warm workers, the in-process judge against the full
``check`` (pickling, the round trip, the result), and the throughput of many concurrent checks.

    python benchmarks/check_latency.py --calls 300
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from mulligan.tasks.base import Task
from mulligan.tasks.checkers import CHECKERS
from mulligan.tasks.checkers.verdicts import TextChecker

_TASK = Task(id="t1", suite="theoremqa", category="reasoning", prompt="?", reference="5",
             checker="theoremqa", gold_solution="5",
             metadata={"answer_type": "integer", "reference_value": 5})  # fmt: skip


async def _measure(name: str, answer: str, calls: int) -> str:
    checker = CHECKERS[name]
    assert isinstance(checker, TextChecker)
    task = _TASK.model_copy(update={"checker": name, "suite": name})
    await checker.check(answer, task)  # start a worker
    judged, checked = [], []
    for _ in range(calls):
        start = time.perf_counter()
        checker.judge(answer, task)
        judged.append(time.perf_counter() - start)
        start = time.perf_counter()
        await checker.check(answer, task)
        checked.append(time.perf_counter() - start)
    p95 = sorted(checked)[int(0.95 * (calls - 1))]
    return (f"| {name} | {statistics.median(judged) * 1e3:.3f} ms | "
            f"{statistics.median(checked) * 1e3:.3f} ms | {p95 * 1e3:.3f} ms |")  # fmt: skip


async def _main(calls: int) -> None:
    print("| checker | judge in-process (median) | check off-loop (median) | p95 |")
    print("|---|---|---|---|")
    for name, answer in (("theoremqa", "5"), ("gsm8k", "The answer is 5"), ("mmlu", "(c)")):
        print(await _measure(name, answer, calls))
    theoremqa = CHECKERS["theoremqa"]
    assert isinstance(theoremqa, TextChecker)
    start = time.perf_counter()
    await asyncio.gather(*(theoremqa.check("5", _TASK) for _ in range(1000)))
    print(f"\n1,000 concurrent theoremqa checks: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="sequential checks per checker")
    asyncio.run(_main(parser.parse_args().calls))
