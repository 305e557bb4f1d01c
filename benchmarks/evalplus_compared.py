"""How many of an EvalPlus task's inputs get a comparable expected value, and does the
canonical solution pass: the canonical program run through the ``evalplus`` checker.

    PYTHONPATH=src python benchmarks/evalplus_compared.py HumanEval/14 Mbpp/255 ...

Defaults to the tasks whose outputs once exceeded the reporting limits (100,000 characters a
value; integers past Python's 4,300-digit ``str`` limit). Needs ``../shared/data``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from mulligan.sandbox import SandboxPool
from mulligan.tasks import get_checker, load_tasks
from mulligan.tasks.checkers.evalplus import expected_outputs, task_inputs

DEFAULT = [
    "HumanEval/14", "HumanEval/15", "HumanEval/100", "HumanEval/130", "HumanEval/83",
    "HumanEval/139", "Mbpp/255", "Mbpp/462", "Mbpp/630",
]  # fmt: skip
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


async def main(wanted: list[str]) -> None:
    tasks = {
        t.id: t
        for suite in ("humaneval+", "mbpp+")
        for t in load_tasks(suite, ["plus"], data_dir=DATA)
        if t.id in wanted
    }
    checker = get_checker("evalplus")
    async with SandboxPool(size=2) as pool:
        for task_id in wanted:
            task = tasks[task_id]
            start = time.monotonic()
            expected = await expected_outputs(task, pool)
            compared = sum(e.ok for e in expected)
            gold = await checker.check(task.gold_solution, task, pool)
            print(
                f"{task_id}: {compared} of {len(task_inputs(task))} inputs compared; "
                f"canonical correct={gold.correct} ({time.monotonic() - start:.0f} s) "
                f"{gold.detail[:120]}",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or DEFAULT))
