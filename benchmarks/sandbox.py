"""Sandbox latency and code-check throughput.

    .venv/bin/python benchmarks/sandbox.py [--cells 200] [--sizes 1,2,3,4,5,6,7,8] \\
        [--isolation auto] [--out runs/bench-sandbox]

- **cold cell**: a new ``Sandbox`` (isolated worker started) and its first cell, ``1 + 1``;
- **warm cell**: a trivial cell (``x = 1``) on a live sandbox: the round trip the parent pays
  for every cell after the first;
- **50 ms cell**: ``time.sleep(0.05)``: what the round trip adds to a cell that does work;
- **code checks**: HumanEval's 164 canonical solutions checked against their tests (the
  ``humaneval`` checker, each check a program in the sandbox) with a ``SandboxPool`` of each
  ``--sizes`` value and as many checks in flight: checks/s, the parent's CPU ms per check and
  the CPU of the sandbox processes per check (reaped children). The pool keeps warm program
  runners (``SandboxPool.run_program``); ``--runners 0`` measures a fresh sandbox per check.

Latencies are medians and 95th percentiles over ``--cells`` cells (a few for cold). Writes
``sandbox.json`` and ``.md`` into ``--out``. Wall figures suffer from other load on the machine;
the load average is recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness_overhead import markdown, write_results  # a sibling script

from mulligan.sandbox import Sandbox, SandboxLimits, SandboxPool
from mulligan.tasks import load_tasks
from mulligan.tasks.checkers.code import PythonTestsChecker


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {
        "median_ms": round(1000 * statistics.median(ordered), 2),
        "p95_ms": round(1000 * p95, 2),
    }


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


async def cell_latencies(args: argparse.Namespace) -> list[dict[str, Any]]:
    limits = SandboxLimits(cell_timeout_s=10.0)
    allow = args.isolation != "auto"
    cold = []
    for _ in range(args.cold):
        started = time.perf_counter()
        sandbox = await Sandbox.create(limits, isolation=args.isolation, allow_weak=allow)
        await sandbox.execute("1 + 1")
        cold.append(time.perf_counter() - started)
        await sandbox.close()
    rows = [{"what": "cold cell (new sandbox + first cell)", "n": len(cold), **_ms(cold)}]
    async with await Sandbox.create(limits, isolation=args.isolation, allow_weak=allow) as box:
        for label, code in (("warm cell (x = 1)", "x = 1"), ("50 ms cell", "time.sleep(0.05)")):
            await box.execute("import time")
            times = []
            cpu0 = _cpu(resource.RUSAGE_SELF)
            for _ in range(args.cells):
                started = time.perf_counter()
                await box.execute(code)
                times.append(time.perf_counter() - started)
            cpu = _cpu(resource.RUSAGE_SELF) - cpu0
            row = {"what": label, "n": len(times), **_ms(times)}
            row["parent_cpu_ms"] = round(1000 * cpu / len(times), 3)
            rows.append(row)
    return rows


async def code_checks(size: int, args: argparse.Namespace) -> dict[str, Any]:
    tasks = load_tasks("humaneval")
    checker = PythonTestsChecker("humaneval", with_stub=True)
    pool = SandboxPool(
        size=size,
        limits=SandboxLimits(cell_timeout_s=10.0),
        isolation=args.isolation,
        allow_weak=args.isolation != "auto",
        runners=size if args.runners is None else args.runners,
    )
    await pool.start()
    gate = asyncio.Semaphore(size)
    cpu0, child0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()

    async def one(task: Any) -> bool:
        async with gate:
            result = await checker.check(task.gold_solution, task, pool)
            return bool(result.correct)

    try:
        verdicts = await asyncio.gather(*(one(t) for t in tasks))
        wall = time.perf_counter() - started
        cpu = _cpu(resource.RUSAGE_SELF) - cpu0
    finally:
        await pool.close()
    children = _cpu(resource.RUSAGE_CHILDREN) - child0
    n = len(tasks)
    return {
        "what": f"code checks, pool {size}",
        "n": n,
        "passed": sum(verdicts),
        "checks_per_s": round(n / wall, 1),
        "parent_cpu_ms": round(1000 * cpu / n, 3),
        "sandbox_cpu_ms": round(1000 * children / n, 3),
        "warm_share": round(pool.programs_warm / max(pool.programs_run, 1), 2),
        "wall_s": round(wall, 2),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


COLUMNS = (
    ("what", "measurement"),
    ("n", "n"),
    ("median_ms", "median ms"),
    ("p95_ms", "p95 ms"),
    ("passed", "passed"),
    ("checks_per_s", "checks/s"),
    ("parent_cpu_ms", "parent CPU ms each"),
    ("sandbox_cpu_ms", "sandbox CPU ms each"),
    ("warm_share", "warm runs"),
    ("wall_s", "wall s"),
    ("load_avg_1m", "load avg"),
)


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = await cell_latencies(args)
    for row in rows:
        row["load_avg_1m"] = round(os.getloadavg()[0], 2)
        print(row, flush=True)
    for size in [int(x) for x in args.sizes.split(",") if x]:
        row = await code_checks(size, args)
        print(row, flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--cold", type=int, default=10)
    parser.add_argument("--sizes", default="1,2,3,4,5,6,7,8")
    parser.add_argument("--runners", type=int, default=None, help="default: the pool size")
    parser.add_argument("--isolation", default="auto")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-sandbox"))
    args = parser.parse_args()
    rows = asyncio.run(main_async(args))
    write_results(args.out, "sandbox", rows, markdown(rows, COLUMNS))


if __name__ == "__main__":
    main()
