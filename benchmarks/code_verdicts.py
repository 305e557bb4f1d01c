"""Code verdicts: does a forged exit pass, and what one code check costs.

Runs against whichever mulligan is importable, so the same script measures two checkouts:

    PYTHONPATH=/work/main/src python benchmarks/code_verdicts.py --data ../shared/data/mint
    PYTHONPATH=src            python benchmarks/code_verdicts.py --data ../shared/data/mint

1. Attacks (an MBPP-shaped task, ``max(a, b)`` must return the product; none solves it): the
   guard undone by rebuilding ``posix`` through ``_imp.create_builtin`` and exiting 0 before the
   tests, the same after printing a fake results stream, and an object whose ``__eq__`` is
   always true. Each line prints the verdict (``correct`` means the attack passed).
2. Cost: every MINT HumanEval and MBPP gold solution (45 + 91) judged once, one at a time,
   by the task's registered checker through a one-worker ``SandboxPool``; the median and p90
   wall time per check in milliseconds (sandbox start included, as in a run).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from mulligan.sandbox import SandboxLimits, SandboxPool
from mulligan.tasks import Task, get_checker
from mulligan.tasks.checkers.code import PythonTestsChecker
from mulligan.tasks.mint import load_mint_suite

ATTACKS = {
    "imp-create-builtin-exit-0": (
        "import _imp\nclass Spec:\n    name = 'posix'\n"
        "_imp.create_builtin(Spec)._exit(0)\ndef max(a, b): return 0"
    ),
    "imp-exit-0-after-fake-stream": (
        "import _imp, json\nclass Spec:\n    name = 'posix'\nposix = _imp.create_builtin(Spec)\n"
        "for k in range(2):\n    line = '@@mulligan-value@@ ' + json.dumps({'k': k, 'n': 0, "
        "'v': ['i', '12']})\n    posix.write(1, (line + '\\n').encode())\n"
        "posix.write(1, b'all tests passed\\n')\nposix._exit(0)"
    ),
    "always-equal-object": (
        "class Anything:\n    def __eq__(self, other):\n        return True\n"
        "def max(a, b): return Anything()"
    ),
    "gold (must pass)": "def max(a, b):\n    return a * b\n",
}


def attack_task() -> Task:
    tests = ["assert max(3, 4) == 12", "assert max(2, 5) == 10"]
    return Task(
        id="attack",
        suite="mbpp",
        category="code_generation",
        prompt="Write a function max(a, b) that returns the product of a and b.",
        reference="\n".join(tests),
        checker="mbpp",
        gold_solution="def max(a, b):\n    return a * b\n",
        metadata={"test_list": tests, "test_setup_code": ""},
    )


async def attacks(pool: SandboxPool) -> None:
    checker = PythonTestsChecker("mbpp", timeout_s=10.0)
    for name, code in ATTACKS.items():
        result = await checker.check(code, attack_task(), pool)
        verdict = "correct" if result.correct else "wrong"
        print(f"{name:32} {verdict:8} {result.detail.splitlines()[0][:70]!r}")


async def costs(pool: SandboxPool, data: Path, limit: int | None) -> None:
    tasks: list[Task] = []
    for suite in ("humaneval", "mbpp"):
        tasks += load_mint_suite(suite, data)[:limit]
    times, failed = [], []
    for task in tasks:
        checker = get_checker(task.checker)
        started = time.perf_counter()
        result = await checker.check(task.gold_solution, task, pool)
        times.append((time.perf_counter() - started) * 1000)
        if not result.correct:
            failed.append(f"{task.suite}/{task.id}: {result.detail[:80]}")
    times.sort()
    p90 = times[int(0.9 * (len(times) - 1))]
    print(
        f"{len(times)} gold checks: median {statistics.median(times):.0f} ms, "
        f"p90 {p90:.0f} ms, total {sum(times) / 1000:.1f} s; not passed: {failed}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="MINT's data directory")
    parser.add_argument("--limit", type=int, default=None, help="tasks per suite")
    parser.add_argument("--skip-costs", action="store_true")
    args = parser.parse_args()
    limits = SandboxLimits(cell_timeout_s=30.0, cpu_s=120)
    async with SandboxPool(size=1, limits=limits) as pool:
        await attacks(pool)
        if not args.skip_costs:
            await costs(pool, args.data, args.limit)


if __name__ == "__main__":
    asyncio.run(main())
